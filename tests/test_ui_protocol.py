"""The browser page's protocol side (issue 17), without a browser: the safety headers on user
files, the refusal of changes from foreign origins, the zip download and the page's assets."""

from __future__ import annotations

import pytest

from tests.conftest import LiveServer


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
