"""Security against a live server: traversal, symlinks, Destination abuse, response splitting
and leaking tracebacks.

Traversal requests are sent as raw bytes so that no client library normalises `..` away.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    check_head,
    lockinfo,
    parse_listing,
    proppatch_body,
    request_bytes,
    snapshot,
    with_provider,
)
from lxml import etree

from davserver.config import ENGINES
from davserver.model import Resource

SECRET = "TOPSECRET-" + uuid.uuid4().hex
OUTSIDE_SECRET = "OUTSIDE-DIR-SECRET-" + uuid.uuid4().hex
SIBLING_SECRET = "SIBLING-SECRET-" + uuid.uuid4().hex
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
    assert SIBLING_SECRET.encode() not in answer.raw
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
    sibling: Path

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
    # A sibling whose name starts with the share's: a containment check that compares
    # strings without the separator would take it for a part of the share.
    sibling = parent / (root.name + "-evil")
    sibling.mkdir()
    (sibling / "secret3.txt").write_text(SIBLING_SECRET)
    (root / "peek.txt").symlink_to(Path("..") / sibling.name / "secret3.txt")
    (root / "peekdir").symlink_to(Path("..") / sibling.name, target_is_directory=True)
    (root / "a" / "near").symlink_to(Path("..") / ".." / sibling.name, target_is_directory=True)
    return Layout(root, parent, secret, outside_dir, sibling)


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


# A target naming what no path can: a segment that is not UTF-8 (400), or one the server
# refuses to map (`..`, `/` or `\\` inside a segment, NUL: 403, paths.check_segment).
NOT_UTF8 = {b"/%c0%ae%c0%ae/secret.txt", b"/%c0%af../secret.txt"}
# Targets cheroot reads as absolute-form; it refuses them itself ("Absolute URI not allowed if
# server is not a proxy", 400) for every method but OPTIONS, which reaches davserver. The
# httptools engine passes them on (RFC 9112 3.2.2: a server accepts the absolute-form), and
# davserver refuses their `..` as any other.
ABSOLUTE_FORM = {
    b"//../secret.txt",
    b"http://x/../../secret.txt",
    b"http://x/%2e%2e/secret.txt",
    b"http://x/../evil.txt",
}


def traversal_status(method: str, target: bytes, engine: str) -> int:
    if target in NOT_UTF8:
        return 400
    if engine == "cheroot" and target in ABSOLUTE_FORM and method != "OPTIONS":
        return 400
    return 403


@pytest.fixture
def server(make_server: Callable[..., Any], request: pytest.FixtureRequest) -> Any:
    """conftest's server, on the engine a test names (`indirect` parametrization), or the
    default one."""
    engine = getattr(request, "param", None)
    return make_server(engine=engine) if engine else make_server()


@pytest.mark.parametrize("server", ENGINES, indirect=True)
def test_traversal_reads_are_refused(server: Any, layout: Layout):
    wrong = {}
    for method in ("GET", "HEAD", "PROPFIND", "OPTIONS"):
        for target in TRAVERSALS:
            answer = send(server, method, target, {"Depth": "1"})
            if answer.status != traversal_status(method, target, server.config.engine):
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
JSON = {"Content-Type": "application/json"}
# Every method that changes something: its headers and body.
WRITES: dict[str, tuple[dict[str, str], bytes]] = {
    "PUT": ({}, b"evil"),
    "LOCK": ({}, LOCKINFO),
    "PROPPATCH": ({}, PROPPATCH),
    "DELETE": ({}, b""),
    "MKCOL": ({}, b""),
    "COPY": ({"Destination": "/copied"}, b""),
    "MOVE": ({"Destination": "/moved"}, b""),
    "POST": (JSON, b'{"operations": [{"op": "mkcol", "path": "made/"}]}'),
}


@pytest.mark.parametrize("server", ENGINES, indirect=True)
def test_traversal_writes_change_nothing_outside(server: Any, layout: Layout):
    before = layout.outside_snapshot()
    inside = snapshot(layout.root)
    wrong = {}
    for method, (headers, body) in WRITES.items():
        for target in WRITE_TRAVERSALS:
            answer = send(server, method, target, headers, body)
            if answer.status != traversal_status(method, target, server.config.engine):
                wrong[method, target] = answer.raw[:300]
    assert not wrong
    assert layout.outside_snapshot() == before
    assert snapshot(layout.root) == inside
    assert layout.secret.read_text() == SECRET


def test_traversal_never_shows_the_parent_listing(server: Any, layout: Layout):
    for target in (b"/..", b"/../", b"/%2e%2e/", b"/a/../..", b"/..%2f"):
        answer = send(server, "GET", target)
        assert answer.status == 403, target
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


# Links out of the share: to a file and a folder beside it, from a subfolder, and to a sibling
# whose name starts with the share's own (root0 -> root0-evil).
OUTSIDE_LINKS = [
    "/link_file",
    "/link_dir",
    "/link_dir/",
    "/link_dir/secret2.txt",
    "/a/deep_link",
    "/a/near",
    "/a/near/secret3.txt",
    "/peek.txt",
    "/peekdir",
    "/peekdir/",
    "/peekdir/secret3.txt",
]
# What the share shows: the links that stay inside it, never those that lead out.
ROOT_MEMBERS = ["/", "/a/", "/f.txt", "/inside_dir/", "/inside_link.txt"]
A_MEMBERS = ["/a/", "/a/inner.txt"]


def test_symlink_out_of_the_root_is_not_found(server: Any, layout: Layout):
    for path in OUTSIDE_LINKS:
        for method, depth in (("GET", "0"), ("HEAD", "0"), ("PROPFIND", "0"), ("PROPFIND", "1")):
            answer = send(server, method, path.encode(), {"Depth": depth})
            assert answer.status == 404, (method, path, answer.raw[:300])


def propfind_hrefs(server: Any, path: str, depth: str = "1") -> list[str]:
    response = server.request("PROPFIND", path, headers={"Depth": depth})
    assert response.status_code == 207
    doc = etree.fromstring(response.content)
    return sorted(el.text or "" for el in doc.iter(DAV + "href"))


def test_symlinks_out_of_the_root_are_not_listed(server: Any, layout: Layout):
    assert propfind_hrefs(server, "/") == ROOT_MEMBERS
    assert propfind_hrefs(server, "/a/") == A_MEMBERS
    assert parse_listing(server.request("GET", "/").text).names == [
        "a/",
        "inside_dir/",
        "f.txt",
        "inside_link.txt",
    ]
    assert parse_listing(server.request("GET", "/a/").text).names == ["inner.txt"]


def test_depth_infinity_does_not_follow_links_out(server: Any, layout: Layout):
    # A link inside the share is listed but not walked into (tree operations treat links as
    # leaves: test_links_inside_the_root_are_leaves_for_tree_operations).
    hrefs = propfind_hrefs(server, "/", "infinity")
    assert hrefs == sorted([*ROOT_MEMBERS, "/a/inner.txt"])


def test_symlink_inside_the_root_works(server: Any, layout: Layout):
    response = server.request("GET", "/inside_link.txt")
    assert response.status_code == 200
    assert response.text == "hello"
    assert server.request("PROPFIND", "/inside_link.txt", headers={"Depth": "0"}).status_code == 207
    assert server.request("GET", "/inside_dir/inner.txt").text == "inner"
    assert propfind_hrefs(server, "/inside_dir/") == ["/inside_dir/", "/inside_dir/inner.txt"]


def outside_writes(file_link: str, dir_link: str, member: str) -> list[tuple[str, str, Any, int]]:
    """Changes aimed at or through a link out of the share: (method, path, request keywords,
    the answer). Whatever leads out is not there (404), a link itself included: it can be
    neither replaced nor removed over WebDAV. A LOCK below it finds no parent collection
    (409, RFC 4918 9.10.4: locking an unmapped URL needs one)."""
    return [
        ("PUT", file_link, {"data": b"overwritten"}, 404),
        ("PUT", dir_link, {"data": b"replaced"}, 404),
        ("PUT", f"{dir_link}/new.txt", {"data": b"new"}, 404),
        ("MKCOL", dir_link, {}, 404),
        ("MKCOL", f"{dir_link}/newdir", {}, 404),
        ("DELETE", file_link, {}, 404),
        ("DELETE", dir_link, {}, 404),
        ("DELETE", f"{dir_link}/{member}", {}, 404),
        ("PROPPATCH", file_link, {"data": PROPPATCH}, 404),
        ("PROPPATCH", dir_link, {"data": PROPPATCH}, 404),
        ("LOCK", file_link, {"data": LOCKINFO}, 404),
        ("LOCK", f"{dir_link}/{member}", {"data": LOCKINFO}, 409),
        ("POST", dir_link, {"data": b'{"operations": []}', "headers": JSON}, 404),
    ]


@pytest.mark.parametrize(
    ("file_link", "dir_link", "member"),
    [("/link_file", "/link_dir", "secret2.txt"), ("/peek.txt", "/peekdir", "secret3.txt")],
)
def test_writes_through_outside_symlinks_are_refused(
    server: Any, layout: Layout, file_link: str, dir_link: str, member: str
):
    before = layout.outside_snapshot()
    inside = snapshot(layout.root)
    for method, path, kwargs, status in outside_writes(file_link, dir_link, member):
        response = server.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.text)
    assert layout.outside_snapshot() == before
    assert snapshot(layout.root) == inside
    assert layout.secret.read_text() == SECRET


def test_a_copy_leaves_links_out_of_the_share_behind(server: Any, layout: Layout):
    response = server.request("COPY", "/a", headers={"Destination": "/copied"})
    assert response.status_code == 201
    assert snapshot(layout.root, "copied") == {"inner.txt": b"inner"}


def test_a_batch_cannot_reach_through_links_out_of_the_share(server: Any, layout: Layout):
    operations = [
        {"op": "propfind", "path": "peek.txt"},
        {"op": "propfind", "path": "peekdir/secret3.txt"},
        {"op": "copy", "path": "peekdir/", "destination": "stolen/"},
        {"op": "copy", "path": "peek.txt", "destination": "stolen.txt"},
        {"op": "move", "path": "link_dir/", "destination": "moved/"},
        {"op": "delete", "path": "peekdir/secret3.txt"},
        {"op": "proppatch", "path": "peek.txt", "set": {"{urn:x}x": "1"}},
        {"op": "mkcol", "path": "peekdir/new/"},
    ]
    before = layout.outside_snapshot()
    inside = snapshot(layout.root)
    response = server.request("POST", "/", json={"operations": operations})
    assert response.status_code == 207
    assert [item["status"] for item in response.json()["results"]] == [404] * len(operations)
    assert SIBLING_SECRET not in response.text
    assert layout.outside_snapshot() == before
    assert snapshot(layout.root) == inside


# -- COPY / MOVE destinations ---------------------------------------------------------------

# Destinations outside the share, and what each gets: a `..` or a segment no path can hold is
# refused as such (403), a relative reference is no Destination at all (400, RFC 4918 10.3),
# and whatever lies through a link out of the share is not there (404).
BAD_DESTINATIONS = {
    "/../escaped.txt": 403,
    "/a/../../escaped.txt": 403,
    "/%2e%2e/escaped.txt": 403,
    "/%2E%2e/escaped.txt": 403,
    "/..%2fescaped.txt": 403,
    "/%5c..%5cescaped.txt": 403,
    "/a%00": 403,
    "http://{host}/../escaped.txt": 403,
    "http://{host}/%2e%2e/escaped.txt": 403,
    "http://{host}/a/%2e%2e/%2e%2e/escaped.txt": 403,
    "/link_dir/escaped.txt": 404,
    "/link_dir/secret2.txt": 404,
    "/link_file": 404,
    "/a/deep_link": 404,
    "/peek.txt": 404,
    "/peekdir": 404,
    "/peekdir/escaped.txt": 404,
    "/a/near/escaped.txt": 404,
    "http://{host}/link_dir/escaped.txt": 404,
    "../escaped.txt": 400,
}


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
@pytest.mark.parametrize("source", ["/f.txt", "/a"])
def test_copy_move_destination_cannot_escape(server: Any, layout: Layout, method: str, source: str):
    before = layout.outside_snapshot()
    inside = snapshot(layout.root)
    wrong = {}
    for destination, status in BAD_DESTINATIONS.items():
        dest = destination.format(host=f"127.0.0.1:{server.port}")
        response = server.request(method, source, headers={"Destination": dest, "Overwrite": "T"})
        if response.status_code != status:
            wrong[dest] = (response.status_code, response.text[:200])
        assert SECRET not in response.text
    assert not wrong
    assert snapshot(layout.root) == inside
    assert layout.outside_snapshot() == before
    assert layout.secret.read_text() == SECRET
    assert list(layout.parent.rglob("escaped.txt")) == []


def test_copy_move_from_an_outside_symlink_is_404(server: Any, layout: Layout):
    for method in ("COPY", "MOVE"):
        for source in OUTSIDE_LINKS:
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
    links = parse_listing(listing.body.decode()).links
    assert (CRLF_NAME, "/evil%0D%0AX-Injected:%201.txt") in links
    multistatus = send(server, "PROPFIND", b"/", {"Depth": "1"})
    assert multistatus.status == 207
    assert b"<D:href>/evil%0D%0AX-Injected:%201.txt</D:href>" in multistatus.body
    for method, status in (("GET", 200), ("HEAD", 200), ("PROPFIND", 207), ("DELETE", 204)):
        answer = send(server, method, encoded, {"Depth": "0"})
        assert answer.status == status, (method, answer.raw[:300])
    assert not (layout.root / CRLF_NAME).exists()


def test_crlf_in_destination_does_not_split_headers(server: Any, layout: Layout):
    # CR and LF are allowed in names (this filesystem takes them); they only must never reach
    # a header unescaped. `send` checks every answer's head.
    for method, source, status in (("COPY", b"/f.txt", 201), ("MOVE", b"/a", 204)):
        answer = send(
            server,
            method,
            source,
            {"Destination": "/x%0d%0aX-Injected:%201", "Overwrite": "T"},
        )
        assert answer.status == status, method
    assert (layout.root / "x\r\nX-Injected: 1" / "inner.txt").read_text() == "inner"
    absolute = "http://x/y%0D%0AX-Injected: 1"  # Host: x, so this server
    answer = send(server, "COPY", b"/f.txt", {"Destination": absolute})
    assert answer.status == 201
    assert (layout.root / "y\r\nX-Injected: 1").read_text() == "hello"


def test_crlf_in_request_target_and_headers_does_not_split(server: Any, layout: Layout):
    # In order: nothing there, a PUT creates it, then MKCOL finds it (405); a LOCK without a
    # body is a refresh, which needs an If header (400).
    answers = [("GET", 404), ("PROPFIND", 404), ("PUT", 201), ("MKCOL", 405), ("LOCK", 400)]
    for target in (b"/missing%0d%0aX-Injected:%201", b"/a%0AX-Injected:%201/", b"/%0d%0a%0d%0a"):
        for method, status in answers:
            assert send(server, method, target).status == status, (method, target)
    assert send(server, "GET", b"/f.txt", {"If-None-Match": '"x%0d%0aX-Injected: 1"'}).status == 200
    # A space is not allowed inside a Coded-URL (RFC 4918 10.4.2, RFC 3986): a malformed If.
    assert send(server, "PUT", b"/f.txt", {"If": "(<urn:x%0d%0aX-Injected: 1>)"}).status == 400


def test_html_listing_escapes_names(server: Any, layout: Layout):
    evil = '<img src=x onerror="alert(1)">.txt'
    (layout.root / evil).write_text("x")
    (layout.root / "a&b'c.txt").write_text("y")
    page = parse_listing(server.request("GET", "/").text)
    # Read back as a browser would: the names are text, never markup.
    assert "img" not in page.tags
    assert page.links == [
        ("a/", "/a/"),
        ("inside_dir/", "/inside_dir/"),
        (evil, "/%3Cimg%20src=x%20onerror=%22alert(1)%22%3E.txt"),
        ("a&b'c.txt", "/a%26b%27c.txt"),
        ("f.txt", "/f.txt"),
        ("inside_link.txt", "/inside_link.txt"),
    ]


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
    # A spread of 4xx answers (and a 502): malformed XML, bad headers, unknown methods, huge
    # values.
    cases: list[tuple[str, str, dict[str, str], bytes, int]] = [
        ("PROPFIND", "/", {"Depth": "1"}, b"<not xml", 400),
        ("PROPFIND", "/", {"Depth": "2"}, b"", 400),
        ("PROPPATCH", "/f.txt", {}, b"<?xml version='1.0'?><D:nope xmlns:D='DAV:'/>", 400),
        ("LOCK", "/f.txt", {"Timeout": "Second-x"}, b"<x", 400),
        ("COPY", "/f.txt", {"Destination": "http://elsewhere.example/x"}, b"", 502),
        ("COPY", "/f.txt", {"Overwrite": "maybe", "Destination": "/g"}, b"", 400),
        ("MOVE", "/f.txt", {}, b"", 400),
        ("PUT", "/f.txt", {"If": "(garbage"}, b"x", 400),
        ("GET", "/f.txt", {"Range": "bytes=100-"}, b"", 416),
        ("BREW", "/", {}, b"", 405),
        ("GET", "/nope/" + "x" * 3000, {}, b"", 404),
        ("UNLOCK", "/f.txt", {"Lock-Token": "<bogus>"}, b"", 409),
    ]
    for method, path, headers, body, status in cases:
        response = server.request(method, path, headers=headers, data=body)
        assert response.status_code == status, (method, path)
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
