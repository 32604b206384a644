"""Security against a live server: traversal, symlinks, Destination abuse, response splitting
and leaking tracebacks.

Traversal requests are sent as raw bytes so that no client library normalises `..` away.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import check_head, lockinfo, proppatch_body, request_bytes, with_provider
from lxml import etree

from davserver.model import Resource

SECRET = "TOPSECRET-" + uuid.uuid4().hex
OUTSIDE_SECRET = "OUTSIDE-DIR-SECRET-" + uuid.uuid4().hex
GENERIC_500 = b"Internal server error; the details are in the server log.\n"
DAV = "{DAV:}"


@dataclasses.dataclass
class Answer:
    status: int
    head: bytes
    body: bytes
    raw: bytes


def parse(raw: bytes) -> Answer:
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no complete response head in {raw[:300]!r}"
    status_line = head.split(b"\r\n", 1)[0]
    assert re.match(rb"^HTTP/1\.[01] \d{3}( |$)", status_line), status_line
    return Answer(int(status_line.split()[1]), head, body, raw)


def check_no_leak(answer: Answer) -> None:
    assert SECRET.encode() not in answer.raw
    assert OUTSIDE_SECRET.encode() not in answer.raw
    assert b"Traceback" not in answer.raw
    assert b'File "' not in answer.raw


def send(
    server: Any,
    method: str,
    target: bytes,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Answer:
    """A raw request (Host: x); the answer is checked for split headers and leaks."""
    answer = parse(server.raw(request_bytes(method, target, headers, body)))
    check_head(answer.head)
    check_no_leak(answer)
    return answer


def tree_snapshot(directory: Path) -> dict[str, bytes | None]:
    """Everything under `directory` (not following links): path -> content (None for dirs)."""
    snap: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in dirnames:
            snap[os.path.join(dirpath, name)] = None
        for name in filenames:
            full = os.path.join(dirpath, name)
            snap[full] = (
                os.readlink(full).encode() if os.path.islink(full) else Path(full).read_bytes()
            )
    return snap


@dataclasses.dataclass
class Layout:
    root: Path
    parent: Path
    secret: Path
    outside_dir: Path

    def outside_snapshot(self) -> dict[str, bytes | None]:
        """The parent of the root minus the root itself and the server's state folder."""
        snap = tree_snapshot(self.parent)
        return {
            k: v
            for k, v in snap.items()
            if not k.startswith(str(self.root) + os.sep)
            and not k.startswith(str(self.parent / "state"))
        }


@pytest.fixture
def layout(server: Any) -> Layout:
    root: Path = server.root
    parent = root.parent
    secret = parent / "secret.txt"
    secret.write_text(SECRET)
    outside_dir = parent / "outside"
    outside_dir.mkdir()
    (outside_dir / "secret2.txt").write_text(OUTSIDE_SECRET)
    (root / "a").mkdir()
    (root / "a" / "inner.txt").write_text("inner")
    (root / "f.txt").write_text("hello")
    (root / "link_file").symlink_to(secret)
    (root / "link_dir").symlink_to(outside_dir, target_is_directory=True)
    (root / "a" / "deep_link").symlink_to(Path("..") / ".." / "secret.txt")
    (root / "inside_link.txt").symlink_to(root / "f.txt")
    (root / "inside_dir").symlink_to(Path("a"), target_is_directory=True)
    return Layout(root, parent, secret, outside_dir)


# -- traversal in the request target --------------------------------------------------------

TRAVERSALS = [
    b"/../secret.txt",
    b"/..",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/secret.txt",
    b"/%2E%2e/secret.txt",
    b"/.%2e/secret.txt",
    b"/%2e%2e%2fsecret.txt",
    b"/%2e%2e%2Fsecret.txt",
    b"/..%2fsecret.txt",
    b"/..%2Fsecret.txt",
    b"/a/..%2f..%2fsecret.txt",
    b"/%5c..%5csecret.txt",
    b"/..%5csecret.txt",
    b"/..%5Csecret.txt",
    b"/a\\..\\..\\secret.txt",
    b"//../secret.txt",
    b"/a/../../secret.txt",
    b"/a/%2e%2e/%2e%2e/secret.txt",
    b"/./../secret.txt",
    b"/%2e/%2e%2e/secret.txt",
    b"/a/%00",
    b"/secret.txt%00.txt",
    b"/%c0%ae%c0%ae/secret.txt",
    b"/%c0%af../secret.txt",
    b"http://x/../../secret.txt",
    b"http://x/%2e%2e/secret.txt",
    b"/../outside/secret2.txt",
    b"/%2e%2e/outside/secret2.txt",
]


def test_traversal_reads_are_refused(server: Any, layout: Layout):
    wrong = {}
    for method in ("GET", "HEAD", "PROPFIND", "OPTIONS"):
        for target in TRAVERSALS:
            answer = send(server, method, target, {"Depth": "1"})
            if answer.status not in (400, 403, 404):
                wrong[method, target] = answer.raw[:300]
    assert not wrong


WRITE_TRAVERSALS = [
    b"/../secret.txt",
    b"/%2e%2e/secret.txt",
    b"/..%2fsecret.txt",
    b"/%5c..%5csecret.txt",
    b"/a/../../evil.txt",
    b"/%2e%2e/evil.txt",
    b"/%2E%2e/evil",
    b"/%2e%2e/outside/secret2.txt",
    b"/..%2foutside",
    b"/../outside/evil",
    b"http://x/../evil.txt",
]
LOCKINFO = lockinfo(owner=None)
PROPPATCH = proppatch_body("{urn:x}x", "1")
BODIES = {"PUT": b"evil", "LOCK": LOCKINFO, "PROPPATCH": PROPPATCH, "DELETE": b"", "MKCOL": b""}


def test_traversal_writes_change_nothing_outside(server: Any, layout: Layout):
    before = layout.outside_snapshot()
    wrong = {}
    for method, body in BODIES.items():
        for target in WRITE_TRAVERSALS:
            answer = send(server, method, target, body=body)
            if answer.status not in (400, 403, 404):
                wrong[method, target] = answer.raw[:300]
    assert not wrong
    assert layout.outside_snapshot() == before
    assert layout.secret.read_text() == SECRET


def test_traversal_never_shows_the_parent_listing(server: Any, layout: Layout):
    for target in (b"/..", b"/../", b"/%2e%2e/", b"/a/../..", b"/..%2f"):
        answer = send(server, "GET", target)
        assert answer.status in (400, 403, 404)
        assert b"secret.txt" not in answer.body
        assert b"outside" not in answer.body


def test_legitimate_dot_names_still_work(server: Any, layout: Layout):
    (layout.root / "..hidden").write_text("dots")
    (layout.root / "...").write_text("three")
    assert server.request("GET", "/..hidden").text == "dots"
    answer = send(server, "GET", b"/...")
    assert answer.status == 200
    assert answer.body == b"three"


# -- fragments ------------------------------------------------------------------------------


def test_request_target_with_fragment_is_400(server: Any, layout: Layout):
    for target in (b"/f.txt#frag", b"/#", b"/a/#/../../secret.txt", b"/f.txt?q=1#x"):
        for method in ("GET", "PROPFIND", "PUT"):
            assert send(server, method, target).status == 400, (method, target)


def test_encoded_hash_is_a_name_not_a_fragment(server: Any, layout: Layout):
    (layout.root / "a#b.txt").write_text("hash")
    answer = send(server, "GET", b"/a%23b.txt")
    assert answer.status == 200
    assert answer.body == b"hash"


# -- symlinks -------------------------------------------------------------------------------


OUTSIDE_LINKS = ["/link_file", "/link_dir", "/link_dir/", "/link_dir/secret2.txt", "/a/deep_link"]


def test_symlink_out_of_the_root_is_not_found(server: Any, layout: Layout):
    for path in OUTSIDE_LINKS:
        for method, depth in (("GET", "0"), ("HEAD", "0"), ("PROPFIND", "0"), ("PROPFIND", "1")):
            answer = send(server, method, path.encode(), {"Depth": depth})
            assert answer.status == 404, (method, path, answer.raw[:300])


def propfind_hrefs(server: Any, path: str, depth: str = "1") -> list[str]:
    response = server.request("PROPFIND", path, headers={"Depth": depth})
    assert response.status_code == 207
    doc = etree.fromstring(response.content)
    return [el.text for el in doc.iter(DAV + "href")]


def test_symlinks_out_of_the_root_are_not_listed(server: Any, layout: Layout):
    hrefs = propfind_hrefs(server, "/")
    assert "/f.txt" in hrefs
    assert "/inside_link.txt" in hrefs
    assert not any("link_file" in h or "link_dir" in h for h in hrefs), hrefs
    assert not any("deep_link" in h for h in propfind_hrefs(server, "/a/"))

    page = server.request("GET", "/").text
    assert "f.txt" in page and "inside_link.txt" in page
    assert "link_file" not in page and "link_dir" not in page
    assert "deep_link" not in server.request("GET", "/a/").text


def test_depth_infinity_does_not_follow_links_out(server: Any, layout: Layout):
    response = server.request("PROPFIND", "/", headers={"Depth": "infinity"})
    assert response.status_code == 207
    assert "secret2" not in response.text
    assert "link_dir" not in response.text
    assert "deep_link" not in response.text
    assert SECRET not in response.text


def test_symlink_inside_the_root_works(server: Any, layout: Layout):
    response = server.request("GET", "/inside_link.txt")
    assert response.status_code == 200
    assert response.text == "hello"
    assert server.request("PROPFIND", "/inside_link.txt", headers={"Depth": "0"}).status_code == 207
    assert server.request("GET", "/inside_dir/inner.txt").text == "inner"
    hrefs = propfind_hrefs(server, "/inside_dir/")
    assert "/inside_dir/inner.txt" in hrefs


def test_writes_through_outside_symlinks_are_refused(server: Any, layout: Layout):
    before = layout.outside_snapshot()
    assert server.request("PUT", "/link_file", data=b"overwritten").status_code in (403, 404, 409)
    assert server.request("PUT", "/link_dir/new.txt", data=b"new").status_code in (403, 404, 409)
    assert server.request("MKCOL", "/link_dir/newdir").status_code in (403, 404, 409)
    assert server.request("DELETE", "/link_dir/secret2.txt").status_code in (403, 404)
    assert server.request("DELETE", "/link_file").status_code in (403, 404)
    assert server.request("PROPPATCH", "/link_file", data=PROPPATCH).status_code in (403, 404)
    assert layout.outside_snapshot() == before
    assert layout.secret.read_text() == SECRET


# -- COPY / MOVE destinations ---------------------------------------------------------------

BAD_DESTINATIONS = [
    "/../escaped.txt",
    "/a/../../escaped.txt",
    "/%2e%2e/escaped.txt",
    "/%2E%2e/escaped.txt",
    "/..%2fescaped.txt",
    "/%5c..%5cescaped.txt",
    "/a%00",
    "http://{host}/../escaped.txt",
    "http://{host}/%2e%2e/escaped.txt",
    "http://{host}/a/%2e%2e/%2e%2e/escaped.txt",
    "/link_dir/escaped.txt",
    "/link_dir/secret2.txt",
    "/link_file",
    "/a/deep_link",
    "http://{host}/link_dir/escaped.txt",
    "../escaped.txt",
]


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
@pytest.mark.parametrize("source", ["/f.txt", "/a"])
def test_copy_move_destination_cannot_escape(server: Any, layout: Layout, method: str, source: str):
    before = layout.outside_snapshot()
    wrong = {}
    for destination in BAD_DESTINATIONS:
        dest = destination.format(host=f"127.0.0.1:{server.port}")
        response = server.request(method, source, headers={"Destination": dest, "Overwrite": "T"})
        if not (400 <= response.status_code < 500 or response.status_code == 502):
            wrong[dest] = (response.status_code, response.text[:200])
        assert SECRET not in response.text
        assert (layout.root / source.lstrip("/")).exists(), dest
    assert not wrong
    assert layout.outside_snapshot() == before
    assert layout.secret.read_text() == SECRET
    assert list(layout.parent.rglob("escaped.txt")) == []


def test_copy_move_from_an_outside_symlink_is_404(server: Any, layout: Layout):
    for method in ("COPY", "MOVE"):
        for source in ("/link_file", "/link_dir", "/link_dir/secret2.txt"):
            response = server.request(method, source, headers={"Destination": "/stolen"})
            assert response.status_code == 404, (method, source)
    assert not (layout.root / "stolen").exists()
    assert layout.secret.read_text() == SECRET
    assert (layout.outside_dir / "secret2.txt").read_text() == OUTSIDE_SECRET


# -- response splitting -----------------------------------------------------------------------

CRLF_NAME = "evil\r\nX-Injected: 1.txt"


def crlf_file(root: Path) -> bool:
    try:
        (root / CRLF_NAME).write_text("crlf content")
    except OSError:
        return False
    return True


def test_file_name_with_crlf_cannot_split_headers(server: Any, layout: Layout):
    assert crlf_file(layout.root), "this filesystem refuses CR/LF in names"
    encoded = b"/evil%0D%0AX-Injected%3A%201.txt"
    listing = send(server, "GET", b"/")
    assert listing.status == 200
    # Listed, with its href percent-encoded, in the body only.
    assert b'href="/evil%0D%0AX-Injected:%201.txt"' in listing.body
    multistatus = send(server, "PROPFIND", b"/", {"Depth": "1"})
    assert multistatus.status == 207
    assert b"<D:href>/evil%0D%0AX-Injected:%201.txt</D:href>" in multistatus.body
    for method in ("GET", "HEAD", "PROPFIND", "DELETE"):
        answer = send(server, method, encoded, {"Depth": "0"})
        assert answer.status in (200, 204, 207), (method, answer.raw[:300])


def test_crlf_in_destination_does_not_split_headers(server: Any, layout: Layout):
    for method, source in (("COPY", b"/f.txt"), ("MOVE", b"/a")):
        answer = send(
            server,
            method,
            source,
            {"Destination": "/x%0d%0aX-Injected:%201", "Overwrite": "T"},
        )
        assert answer.status < 500
    absolute = "http://x/y%0D%0AX-Injected: 1"
    answer = send(server, "COPY", b"/f.txt", {"Destination": absolute})
    assert answer.status < 500


def test_crlf_in_request_target_and_headers_does_not_split(server: Any, layout: Layout):
    for target in (b"/missing%0d%0aX-Injected:%201", b"/a%0AX-Injected:%201/", b"/%0d%0a%0d%0a"):
        for method in ("GET", "PROPFIND", "PUT", "MKCOL", "LOCK"):
            send(server, method, target)
    send(server, "GET", b"/f.txt", {"If-None-Match": '"x%0d%0aX-Injected: 1"'})
    send(server, "PUT", b"/f.txt", {"If": "(<urn:x%0d%0aX-Injected: 1>)"})


def test_html_listing_escapes_names(server: Any, layout: Layout):
    (layout.root / '<img src=x onerror="alert(1)">.txt').write_text("x")
    (layout.root / "a&b'c.txt").write_text("y")
    page = server.request("GET", "/").text
    assert "<img" not in page
    assert "&lt;img" in page
    assert "a&b'c" not in page


# -- no tracebacks to clients -----------------------------------------------------------------


class ExplodingProvider:
    """Delegates to the real provider, but looking at one path is a bug (RuntimeError)."""

    def __init__(self, inner: Any, bad: str) -> None:
        self._inner = inner
        self._bad = bad

    def _check(self, path: str) -> None:
        if path == self._bad:
            raise RuntimeError(f'boom in {path}: File "/secret/code.py", line 1')

    def stat(self, path: str) -> Resource:
        self._check(path)
        return self._inner.stat(path)  # type: ignore[no-any-return]

    def open_read(self, path: str) -> Any:
        self._check(path)
        return self._inner.open_read(path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def exploding(server: Any) -> Iterator[Any]:
    (server.root / "boom.txt").write_text("never served")
    (server.root / "dir").mkdir()
    (server.root / "dir" / "boom2.txt").write_text("never served")
    with_provider(server, lambda inner: ExplodingProvider(inner, "/boom.txt"))
    yield server


def test_unexpected_error_is_a_generic_500(exploding: Any):
    cases: list[tuple[str, dict[str, str], bytes]] = [
        ("GET", {}, b""),
        ("HEAD", {}, b""),
        ("PROPFIND", {"Depth": "0"}, b""),
        ("DELETE", {}, b""),
        ("PUT", {}, b"new"),
        ("COPY", {"Destination": "/copy.txt"}, b""),
        ("MOVE", {"Destination": "/moved.txt"}, b""),
        ("LOCK", {}, LOCKINFO),
        ("PROPPATCH", {}, PROPPATCH),
    ]
    for method, headers, body in cases:
        answer = send(exploding, method, b"/boom.txt", headers, body)
        assert answer.status == 500, (method, answer.raw[:300])
        if method != "HEAD":
            assert answer.body == GENERIC_500, method
        assert b"RuntimeError" not in answer.raw
        assert b"boom in" not in answer.raw
        assert b"code.py" not in answer.raw


def test_server_keeps_serving_after_a_500(exploding: Any):
    assert exploding.request("GET", "/boom.txt").status_code == 500
    response = exploding.request("GET", "/dir/boom2.txt")
    assert response.status_code == 200
    assert response.text == "never served"


def test_error_bodies_never_contain_tracebacks(server: Any, layout: Layout):
    # A spread of 4xx answers: malformed XML, bad headers, unknown methods, huge values.
    cases: list[tuple[str, str, dict[str, str], bytes]] = [
        ("PROPFIND", "/", {"Depth": "1"}, b"<not xml"),
        ("PROPFIND", "/", {"Depth": "2"}, b""),
        ("PROPPATCH", "/f.txt", {}, b"<?xml version='1.0'?><D:nope xmlns:D='DAV:'/>"),
        ("LOCK", "/f.txt", {"Timeout": "Second-x"}, b"<x"),
        ("COPY", "/f.txt", {"Destination": "http://elsewhere.example/x"}, b""),
        ("COPY", "/f.txt", {"Overwrite": "maybe", "Destination": "/g"}, b""),
        ("MOVE", "/f.txt", {}, b""),
        ("PUT", "/f.txt", {"If": "(garbage"}, b"x"),
        ("GET", "/f.txt", {"Range": "bytes=100-"}, b""),
        ("BREW", "/", {}, b""),
        ("GET", "/nope/" + "x" * 3000, {}, b""),
        ("UNLOCK", "/f.txt", {"Lock-Token": "<bogus>"}, b""),
    ]
    for method, path, headers, body in cases:
        response = server.request(method, path, headers=headers, data=body)
        assert response.status_code < 500 or response.status_code == 502, (method, path)
        assert "Traceback" not in response.text, (method, path)
        assert 'File "' not in response.text, (method, path)


def test_links_inside_the_root_are_leaves_for_tree_operations(server: Any):
    # A link to a folder inside the share can be read through, but Depth: infinity must not
    # loop through a link to an ancestor, and deleting the folder holding a link removes the
    # link, never what it points to.
    root = server.root
    (root / "data").mkdir()
    (root / "data" / "keep.txt").write_text("precious")
    (root / "tree").mkdir()
    os.symlink("../data", root / "tree" / "link")
    os.symlink("..", root / "data" / "loop")
    r = server.request("PROPFIND", "/", headers={"Depth": "infinity"})
    assert r.status_code == 207
    hrefs = [e.text for e in etree.fromstring(r.content).iter("{DAV:}href")]
    assert sorted(hrefs) == sorted(
        ["/", "/data/", "/data/keep.txt", "/data/loop/", "/tree/", "/tree/link/"]
    )
    assert server.request("GET", "/tree/link/keep.txt").text == "precious"
    assert server.request("DELETE", "/tree").status_code == 204
    assert (root / "data" / "keep.txt").read_text() == "precious"
    assert not (root / "tree").exists()
