"""The browser page's protocol side (issue 17), without a browser: the safety headers on user
files, the refusal of changes from foreign origins, the zip download and the page's assets."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from davserver import listing, paths
from davserver.model import Resource
from tests.conftest import LiveServer
from tests.helpers import make_tree


@pytest.mark.parametrize(
    ("name", "sandboxed"),
    [
        ("page.html", True),
        ("page.htm", True),
        ("logo.svg", True),
        ("data.xml", True),
        ("page.xhtml", True),
        ("notes.txt", False),
        ("photo.png", False),
        ("blob.bin", False),
    ],
)
def test_user_files_are_served_nosniff_and_active_types_sandboxed(
    server: LiveServer, name: str, sandboxed: bool
) -> None:
    (server.root / name).write_bytes(b"<script>alert(1)</script>")
    for headers in ({}, {"Range": "bytes=0-3"}, {"Range": "bytes=0-1,4-5"}):
        answer = server.request("GET", "/" + name, headers=headers)
        assert answer.status_code in (200, 206)
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        csp = answer.headers.get("Content-Security-Policy")
        assert csp == ("sandbox" if sandboxed else None)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPPATCH", "LOCK"])
@pytest.mark.parametrize("origin", ["http://evil.example", "null", "https://127.0.0.1"])
def test_a_change_from_a_foreign_origin_is_refused(
    server: LiveServer, method: str, origin: str
) -> None:
    (server.root / "a.txt").write_bytes(b"keep")
    headers = {"Origin": origin, "Destination": server.url("/b.txt")}
    answer = server.request(method, "/a.txt", headers=headers, data=b"changed")
    assert answer.status_code == 403
    assert (server.root / "a.txt").read_bytes() == b"keep"
    assert not (server.root / "b.txt").exists()


def test_a_batch_from_a_foreign_origin_is_refused(server: LiveServer) -> None:
    (server.root / "a.txt").write_bytes(b"keep")
    answer = server.request(
        "POST",
        "/",
        headers={"Origin": "http://evil.example", "Content-Type": "application/json"},
        data=b'{"operations": [{"op": "delete", "path": "a.txt"}]}',
    )
    assert answer.status_code == 403
    assert (server.root / "a.txt").exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_batch_needs_a_json_body(server: LiveServer, content_type: str) -> None:
    (server.root / "a.txt").write_bytes(b"keep")
    answer = server.request(
        "POST",
        "/",
        headers={"Content-Type": content_type},
        data=b'{"operations": [{"op": "delete", "path": "a.txt"}]}',
    )
    assert answer.status_code == 405
    assert (server.root / "a.txt").exists()


def test_a_change_from_our_own_origin_or_without_origin_goes_through(server: LiveServer) -> None:
    answer = server.request("PUT", "/own.txt", headers={"Origin": server.base}, data=b"x")
    assert answer.status_code == 201
    assert server.request("PUT", "/plain.txt", data=b"x").status_code == 201
    # Reads are not refused: a foreign page cannot read the answer anyway (no CORS).
    answer = server.request("GET", "/own.txt", headers={"Origin": "http://evil.example"})
    assert answer.status_code == 200


def _zip(server: LiveServer, target: str, **kwargs: object) -> zipfile.ZipFile:
    answer = server.request("GET", target, **kwargs)  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/zip"
    assert "Content-Length" not in answer.headers  # streamed as it is made
    return zipfile.ZipFile(io.BytesIO(answer.content))


def test_a_folder_downloads_as_a_zip_of_everything_in_it(server: LiveServer) -> None:
    big = os.urandom(3 * 1024 * 1024 + 17)
    make_tree(
        server.root,
        {"f/a.txt": b"alpha", "f/sub/b.bin": big, "f/sub/deeper/ü ñ.txt": b"unicode"},
        ("f/empty",),
    )
    answer = server.request("GET", "/f/?zip")
    assert answer.headers["Content-Disposition"] == (
        "attachment; filename=\"f.zip\"; filename*=UTF-8''f.zip"
    )
    archive = _zip(server, "/f/?zip")
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == [
        "a.txt",
        "empty/",
        "sub/",
        "sub/b.bin",
        "sub/deeper/",
        "sub/deeper/ü ñ.txt",
    ]
    assert archive.read("a.txt") == b"alpha"
    assert archive.read("sub/b.bin") == big
    assert archive.read("sub/deeper/ü ñ.txt") == b"unicode"


def test_a_selection_downloads_as_one_zip(server: LiveServer) -> None:
    make_tree(server.root, {"a.txt": b"a", "b.txt": b"b", "c/d.txt": b"d", "e.txt": b"e"})
    archive = _zip(server, "/?zip&name=a.txt&name=c")
    assert sorted(archive.namelist()) == ["a.txt", "c/", "c/d.txt"]
    # A name may lie further down (a search's result); one inside another comes once.
    archive = _zip(server, "/?zip&name=c/d.txt&name=c&name=e.txt&name=c")
    assert sorted(archive.namelist()) == ["c/", "c/d.txt", "e.txt"]
    archive = _zip(server, "/?zip&name=c/d.txt")
    assert archive.namelist() == ["c/d.txt"]
    for bad in ("../etc", "c/../..", "", "c//d.txt", "./a.txt"):
        assert server.request("GET", "/c/?zip&name=" + bad).status_code == 403
    assert server.request("GET", "/?zip&name=missing").status_code == 404


def test_a_zip_leaves_out_what_the_user_may_not_read(make_server: Any) -> None:
    server = make_server(access=(("/f/secret", "anonymous", "none"),))
    make_tree(server.root, {"f/open.txt": b"o", "f/secret/s.txt": b"s", "f/secretly.txt": b"x"})
    archive = _zip(server, "/f/?zip")
    assert sorted(archive.namelist()) == ["open.txt", "secretly.txt"]


def test_a_zip_is_bounded_like_depth_infinity(make_server: Any) -> None:
    server = make_server(max_propfind_resources=5)
    make_tree(server.root, {f"f/{i}.txt": b"x" for i in range(5)})
    answer = server.request("GET", "/f/?zip")
    assert answer.status_code == 403
    assert "at most 5" in answer.text
    assert server.request("GET", "/f/?zip&name=1.txt&name=2.txt").status_code == 200


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "page"),
    [
        (BROWSER_ACCEPT, True),
        ("text/html", True),
        (None, False),
        ("*/*", False),
        ("application/xml", False),
        ("text/html;q=0", False),
    ],
)
def test_a_browser_gets_the_page_and_other_clients_the_listing(
    server: LiveServer, accept: str | None, page: bool
) -> None:
    (server.root / "a.txt").write_bytes(b"a")
    headers = {"Accept": accept} if accept is not None else {}
    answer = server.request("GET", "/", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["Vary"] == "Accept"
    assert ('src="?ui=app.js' in answer.text) == page
    assert ("a.txt" in answer.text) == (not page)  # the page lists with PROPFIND


def test_the_page_has_a_strict_policy_and_no_inline_script(server: LiveServer) -> None:
    answer = server.request("GET", "/", headers={"Accept": "text/html"})
    policy = answer.headers["Content-Security-Policy"]
    # Nothing but what the page uses: its own script, style, images and requests; no frames,
    # no media, no blob: or data: URLs, no form posts, no <base>, no framing by anyone.
    assert policy == (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", answer.text, re.S)
    assert scripts == [""]
    assert "style=" not in answer.text and "<style" not in answer.text


def test_the_page_escapes_the_folder_name(server: LiveServer) -> None:
    (server.root / '<b>"x').mkdir()
    answer = server.request("GET", "/%3Cb%3E%22x/", headers={"Accept": "text/html"})
    assert "<title>&lt;b&gt;&quot;x</title>" in answer.text


def test_assets_are_cached_long_with_etags_and_small(server: LiveServer) -> None:
    page = server.request("GET", "/", headers={"Accept": "text/html"}).text
    total = 0
    for name in ("app.js", "app.css"):
        target = re.search(rf'"(\?ui={re.escape(name)}&amp;v=\w+)"', page)
        assert target is not None
        answer = server.request("GET", "/" + target.group(1).replace("&amp;", "&"))
        assert answer.status_code == 200
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        etag = answer.headers["ETag"]
        assert target.group(1).endswith(etag.strip('"'))  # the URL changes with the content
        total += len(answer.content)
        again = server.request("GET", f"/?ui={name}", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
    assert (
        server.request("GET", "/?ui=app.js").headers["Content-Type"].startswith("text/javascript")
    )
    assert total < 150 * 1024
    assert server.request("GET", "/?ui=../config.py").status_code == 404


def test_assets_do_not_hide_a_users_file(server: LiveServer) -> None:
    # A file whose name looks like the reserved query is an ordinary file.
    (server.root / "?ui=app.js").write_bytes(b"mine")
    assert server.request("GET", "/%3Fui=app.js").content == b"mine"


def test_assets_are_package_data() -> None:
    from importlib import resources

    static = resources.files("davserver.ui").joinpath("static")
    assert {p.name for p in static.iterdir()} >= {"app.js", "app.css"}
    text = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert '"davserver.ui" = ["static/*"]' in text


def _listing(server: LiveServer, target: str) -> list[dict[str, Any]]:
    answer = server.request("GET", target)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cache-Control"] == "no-store"
    members: list[dict[str, Any]] = answer.json()["members"]
    return sorted(members, key=lambda m: str(m["path"]))


def test_the_json_listing_has_what_the_page_shows(server: LiveServer) -> None:
    make_tree(server.root, {"f/a.txt": b"alpha", 'f/<"ü">.png': b"", "f/sub/deep.txt": b"d"})
    os.utime(server.root / "f" / "a.txt", (1_700_000_000, 1_700_000_000))
    members = _listing(server, "/f/?list")
    assert members == [
        {
            "path": '<"ü">.png',
            "folder": False,
            "size": 0,
            "modified": members[0]["modified"],
            "type": "image/png",
        },
        {
            "path": "a.txt",
            "folder": False,
            "size": 5,
            "modified": 1_700_000_000,
            "type": "text/plain; charset=utf-8",
        },
        {"path": "sub", "folder": True, "size": 0, "modified": members[2]["modified"], "type": ""},
    ]
    assert _listing(server, "/f/?list=1") == members
    everything = _listing(server, "/f/?list=infinity")
    assert [m["path"] for m in everything] == ['<"ü">.png', "a.txt", "sub", "sub/deep.txt"]
    head = server.request("HEAD", "/f/?list")
    assert head.status_code == 200 and head.content == b""
    assert server.request("GET", "/f/?list=2").status_code == 400


def test_the_json_listing_leaves_out_what_the_user_may_not_read(make_server: Any) -> None:
    server = make_server(access=(("/f/secret", "anonymous", "none"),), hide_apple_metadata=True)
    make_tree(
        server.root,
        {"f/open.txt": b"o", "f/secret/s.txt": b"s", "f/secretly.txt": b"x", "f/._open.txt": b""},
    )
    assert [m["path"] for m in _listing(server, "/f/?list")] == ["open.txt", "secretly.txt"]
    assert [m["path"] for m in _listing(server, "/f/?list=infinity")] == [
        "open.txt",
        "secretly.txt",
    ]


def test_the_deep_json_listing_is_bounded_like_depth_infinity(make_server: Any) -> None:
    server = make_server(max_propfind_resources=5)
    make_tree(server.root, {f"f/{i}.txt": b"x" for i in range(5)})
    answer = server.request("GET", "/f/?list=infinity")
    assert answer.status_code == 403
    assert "more than 5 resources" in answer.text
    assert len(_listing(server, "/f/?list")) == 5  # one level is not bounded, as Depth: 1


# Any name a provider path may hold (paths.py): no "/", NUL or backslash, never "." or "..".
SEGMENTS = st.text(st.characters(blacklist_characters="/\\\x00"), min_size=1).filter(
    lambda s: s not in (".", "..")
)


@given(
    base=st.lists(SEGMENTS, max_size=2),
    members=st.lists(
        st.tuples(st.lists(SEGMENTS, min_size=1, max_size=3), st.booleans(), st.integers(0, 2**53)),
        max_size=20,
    ),
)
def test_the_json_listing_is_json_whatever_the_names(
    base: list[str], members: list[tuple[list[str], bool, int]]
) -> None:
    folder = Resource(paths.join(base), True, 0, 0.0, 0.0, "")
    resources = [
        Resource(paths.join([*base, *rel]), is_dir, size, 1e9 + 0.7, 0.0, "e")
        for rel, is_dir, size in members
    ]
    text = b"".join(listing._json(iter(resources), folder, lambda r: 'a/"b"\\'))
    assert json.loads(text) == {
        "members": [
            {
                "path": "/".join(rel),
                "folder": is_dir,
                "size": 0 if is_dir else size,
                "modified": 1_000_000_000,
                "type": "" if is_dir else 'a/"b"\\',
            }
            for rel, is_dir, size in members
        ]
    }
