"""Network drives and sync clients, replayed request by request against a live davserver.

None of these clients runs in CI, so each test sends what the client sends (its headers, bodies
and order), as seen in public captures and documentation: the Windows WebDAV Mini-Redirector
(MS-WDV, MS-WDVME and captures in peers' trackers: wsgidav, copyparty, GCDWebServer, sabre/dav),
macOS Finder / WebDAVFS (sabre/dav's client notes, wsgidav and pydio threads), Microsoft Office
(sabre/dav and npm-WebDAV-Server threads), and sync clients speaking ownCloud's protocol
(rclone's webdav backend with `vendor = owncloud`, the ownCloud sync protocol notes).

Every answer is checked, and so is the result on the server's disk and over PROPFIND.
"""

from __future__ import annotations

import calendar
import hashlib
import os
import re
import shutil
import unicodedata
from collections.abc import Iterator
from email.utils import formatdate, parsedate_tz
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

import pytest
import requests
from clients_util import no_server_errors
from helpers import lockinfo, parse_listing, propfind_body, shared_names, split_raw, write_users
from lxml import etree

if TYPE_CHECKING:
    from conftest import LiveServer

D = "{DAV:}"
MS_NS = "urn:schemas-microsoft-com:"
OC_NS = "http://owncloud.org/ns"
CHECKSUMS = "{" + OC_NS + "}checksums"

EXPLORER = {
    "User-Agent": "Microsoft-WebDAV-MiniRedir/10.0.19045",
    "Translate": "f",
    "Connection": "Keep-Alive",
    "Pragma": "no-cache",
    "Cache-Control": "no-cache",
}
FINDER = {
    "User-Agent": "WebDAVFS/3.0.0 (03008000) Darwin/22.1.0 (x86_64)",
    "Accept": "*/*",
}
OFFICE_DISCOVERY = {"User-Agent": "Microsoft Office Protocol Discovery"}
WORD = {
    "User-Agent": "Microsoft Office Word 2014",
    "X-Office-Major-Version": "16",
    "X-MS-CookieUri-Requested": "t",
    "X-FeatureVersion": "1",
    "X-IDCRL_ACCEPTED": "t",
}
RCLONE = {"User-Agent": "rclone/v1.60.1"}

XML = {"Content-Type": 'text/xml; charset="utf-8"'}


def owner_lockinfo(owner: str) -> bytes:
    """The lock request body of the Mini-Redirector and of Office: exclusive write, owner as an
    href."""
    return lockinfo(f"<D:href>{owner}</D:href>")


# Finder asks for these on every listing.
FINDER_PROPFIND = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:propfind xmlns:D="DAV:">\n<D:prop>\n<D:getlastmodified/>\n<D:getcontentlength/>\n'
    b"<D:creationdate/>\n<D:resourcetype/>\n</D:prop>\n</D:propfind>\n"
)

RFC1123 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$"
)


@pytest.fixture(autouse=True)
def _no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture the access log (shown on failure); any 5xx answer fails the test."""
    yield from no_server_errors(caplog)


# -- helpers ------------------------------------------------------------------------------------


def show(response: requests.Response) -> str:
    """A request and its answer, for assertion messages."""
    req = response.request
    return (
        f"{req.method} {req.url} -> {response.status_code}\n"
        f"answer headers: {dict(response.headers)}\nanswer body: {response.text[:2000]}"
    )


def expect(response: requests.Response, *statuses: int) -> requests.Response:
    assert response.status_code in statuses, f"expected {statuses}\n{show(response)}"
    return response


def href_path(href: str) -> str:
    return unquote(urlsplit(href).path)


PropMap = dict[str, dict[str, tuple[int, etree._Element]]]


def parse_multistatus(response: requests.Response) -> PropMap:
    """{href path (decoded): {property: (status, element)}} of a 207 answer."""
    expect(response, 207)
    tree = etree.fromstring(response.content)
    result: PropMap = {}
    for resp in tree.iter(D + "response"):
        props = result.setdefault(href_path(resp.findtext(D + "href") or ""), {})
        for propstat in resp.iter(D + "propstat"):
            code = int((propstat.findtext(D + "status") or "").split()[1])
            container = propstat.find(D + "prop")
            for prop in container if container is not None else ():
                props[prop.tag] = (code, prop)
    return result


def propfind(
    server: LiveServer,
    path: str,
    names: list[str] | None = None,
    depth: str = "0",
    headers: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> PropMap:
    sent = {"Depth": depth, **XML, **(headers or {})}
    body = propfind_body(*names) if names is not None else b""
    response = server.request(
        "PROPFIND", path, headers=sent, data=body, auth=auth, allow_redirects=False
    )
    return parse_multistatus(response)


def one(props: PropMap) -> dict[str, tuple[int, etree._Element]]:
    assert len(props) == 1, props.keys()
    return next(iter(props.values()))


def value(props: dict[str, tuple[int, etree._Element]], name: str) -> str | None:
    """The text of a property reported 200, else None."""
    status, element = props.get(name, (404, None))
    if status != 200 or element is None:
        return None
    return "".join(element.itertext()).strip()


def lock_token(response: requests.Response) -> str:
    header = response.headers.get("Lock-Token", "").strip()
    assert header.startswith("<") and header.endswith(">"), show(response)
    return header[1:-1]


def lock_answer(response: requests.Response) -> tuple[str, int]:
    """(token, granted seconds) from a LOCK answer's lockdiscovery."""
    tree = etree.fromstring(response.content)
    active = tree.findall(f".//{D}activelock")
    assert len(active) == 1, show(response)
    token = active[0].findtext(f"{D}locktoken/{D}href") or ""
    timeout = active[0].findtext(D + "timeout") or ""
    match = re.fullmatch(r"Second-(\d+)", timeout.strip())
    assert match, f"timeout {timeout!r}\n{show(response)}"
    return token.strip(), int(match[1])


def gmt(text: str) -> float:
    """Seconds since the epoch of an HTTP date such as 'Tue, 05 Mar 2024 10:00:00 GMT'."""
    parsed = parsedate_tz(text)
    assert parsed is not None, text
    return float(calendar.timegm(parsed[:9]))


def mtime_on_disk(server: LiveServer, *parts: str) -> float:
    return server.root.joinpath(*parts).stat().st_mtime


def chunked(data: bytes, sizes: list[int]) -> bytes:
    """`data` in HTTP/1.1 chunked framing, cut into the given sizes (the rest in one chunk)."""
    out, pos = [], 0
    for size in [*sizes, len(data)]:
        piece = data[pos : pos + size]
        if not piece:
            break
        out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        pos += len(piece)
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def one_shot(method: str, url: str, **kwargs) -> requests.Response:
    """A request on its own connection, closed afterwards.

    Used for chunked uploads: cheroot leaves the CRLF that ends a chunked body unread, so the
    kept-alive connection goes back to a worker that waits for the next request line, and the
    server's shutdown then waits for that worker. Closing the connection ends the wait.
    """
    kwargs.setdefault("timeout", 30)
    with requests.Session() as session:
        return session.request(method, url, **kwargs)


def payload(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


# -- discovery ----------------------------------------------------------------------------------


def test_options_answers_without_credentials_everywhere(make_server, tmp_path):
    htpasswd = write_users(tmp_path / "users.htpasswd", {"alice": "wonderland"})
    server = make_server(htpasswd=htpasswd)
    (server.root / "Documents").mkdir()
    (server.root / "Documents" / "plan.txt").write_bytes(b"plan")

    # Users exist: anything else without credentials is 401, so OPTIONS is really exempt.
    refused = server.request("PROPFIND", "/", headers={"Depth": "0", **EXPLORER})
    assert refused.status_code == 401, show(refused)
    assert "WWW-Authenticate" in refused.headers

    for path in ("/", "/Documents", "/Documents/", "/Documents/plan.txt", "/missing/deep.txt"):
        for client in (EXPLORER, OFFICE_DISCOVERY, FINDER):
            response = expect(server.request("OPTIONS", path, headers=client), 200)
            classes = {c.strip() for c in response.headers.get("DAV", "").split(",")}
            assert {"1", "2"} <= classes, show(response)
            assert response.headers.get("MS-Author-Via") == "DAV", show(response)
            allow = {m.strip() for m in response.headers.get("Allow", "").split(",")}
            assert {"LOCK", "UNLOCK", "PROPFIND", "PROPPATCH", "PUT", "MKCOL"} <= allow, show(
                response
            )

    # With credentials the mount goes on.
    listing = propfind(
        server, "/Documents", depth="1", headers=EXPLORER, auth=("alice", "wonderland")
    )
    assert "/Documents/plan.txt" in listing


def test_propfind_with_empty_body_is_allprop(server):
    (server.root / "Documents").mkdir()
    (server.root / "Documents" / "plan.txt").write_bytes(b"twelve bytes")
    os.utime(server.root / "Documents" / "plan.txt", (1709632800, 1709632800))
    # Explorer lists with Content-Length: 0.
    response = server.request(
        "PROPFIND",
        "/Documents",
        headers={"Depth": "1", "Content-Length": "0", **EXPLORER},
        data=b"",
        allow_redirects=False,
    )
    assert response.request.headers.get("Content-Length") == "0"
    listing = parse_multistatus(response)
    assert set(listing) == {"/Documents/", "/Documents/plan.txt"}
    folder, plan = listing["/Documents/"], listing["/Documents/plan.txt"]
    assert folder[D + "resourcetype"][1].find(D + "collection") is not None
    assert value(plan, D + "getcontentlength") == "12"
    assert value(plan, D + "getlastmodified") == "Tue, 05 Mar 2024 10:00:00 GMT"
    for name in ("getetag", "creationdate", "displayname", "supportedlock", "lockdiscovery"):
        assert D + name in plan and plan[D + name][0] == 200, name
    assert plan[D + "resourcetype"][1].find(D + "collection") is None


def test_propfind_on_missing_name_is_plain_404(server):
    for path in ("/New Text Document.txt", "/desktop.ini", "/Documents/folder.jpg"):
        response = server.request(
            "PROPFIND",
            quote(path),
            headers={"Depth": "0", **EXPLORER},
            data=b"",
            allow_redirects=False,
        )
        assert response.status_code == 404, show(response)
        assert "multistatus" not in response.text
    assert shared_names(server.root) == []


# -- collections without the trailing slash -----------------------------------------------------


def test_collection_without_trailing_slash_is_answered_directly(server):
    folder = server.root / "Photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"meow")

    listing = propfind(server, "/Photos", depth="1", headers=EXPLORER)
    assert set(listing) == {"/Photos/", "/Photos/cat.jpg"}

    for path in ("/Photos", "/Photos/"):
        head = server.request("HEAD", path, headers=EXPLORER, allow_redirects=False)
        assert head.status_code == 200, show(head)
        get = server.request("GET", path, headers=EXPLORER, allow_redirects=False)
        assert get.status_code == 200, show(get)
        assert parse_listing(get.text).names == ["cat.jpg"]

    moved = server.request(
        "MOVE",
        "/Photos",
        headers={"Destination": server.url("/Pictures"), "Overwrite": "F", **EXPLORER},
        allow_redirects=False,
    )
    assert moved.status_code == 201, show(moved)
    assert not folder.exists()
    assert (server.root / "Pictures" / "cat.jpg").read_bytes() == b"meow"

    deleted = server.request("DELETE", "/Pictures", headers=EXPLORER, allow_redirects=False)
    assert deleted.status_code == 204, show(deleted)
    assert shared_names(server.root) == []


# -- Windows Explorer ---------------------------------------------------------------------------


def win32_proppatch(modified: str, created: str, accessed: str, attributes: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:">'
        "<D:set><D:prop>"
        f"<Z:Win32CreationTime>{created}</Z:Win32CreationTime>"
        f"<Z:Win32LastAccessTime>{accessed}</Z:Win32LastAccessTime>"
        f"<Z:Win32LastModifiedTime>{modified}</Z:Win32LastModifiedTime>"
        f"<Z:Win32FileAttributes>{attributes}</Z:Win32FileAttributes>"
        "</D:prop></D:set></D:propertyupdate>"
    ).encode()


WIN32_NAMES = [
    "{" + MS_NS + "}" + n
    for n in (
        "Win32CreationTime",
        "Win32LastAccessTime",
        "Win32LastModifiedTime",
        "Win32FileAttributes",
    )
]


def assert_all_200(response: requests.Response, path: str, names: list[str]) -> None:
    result = parse_multistatus(response)
    assert set(result) == {path}, show(response)
    for name in names:
        assert result[path].get(name, (None,))[0] == 200, f"{name}\n{show(response)}"


def test_explorer_new_file_sequence(server):
    """Drag a file onto a mapped drive: PROPFIND 404, empty PUT, LOCK, PROPPATCH Win32 times,
    HEAD, PUT with the token, PROPPATCH again, UNLOCK with a bare token."""
    name = "Quarterly report.txt"
    path = "/" + quote(name)
    content = b"Quarterly figures\r\n" * 500
    modified = "Tue, 05 Mar 2024 10:00:00 GMT"
    created = "Mon, 04 Mar 2024 09:15:30 GMT"
    accessed = "Wed, 06 Mar 2024 17:45:00 GMT"

    probe = server.request("PROPFIND", path, headers={"Depth": "0", **EXPLORER}, data=b"")
    assert probe.status_code == 404, show(probe)

    empty = server.request("PUT", path, headers={"Content-Length": "0", **EXPLORER}, data=b"")
    assert empty.status_code == 201, show(empty)
    assert (server.root / name).read_bytes() == b""

    locked = server.request(
        "LOCK",
        path,
        headers={"Timeout": "Second-3600", **XML, **EXPLORER},
        data=owner_lockinfo("DESKTOP-7Q2L\\alice"),
    )
    assert locked.status_code == 200, show(locked)
    token = lock_token(locked)
    assert lock_answer(locked) == (token, 3600)
    if_header = {"If": f"(<{token}>)"}

    patched = server.request(
        "PROPPATCH",
        path,
        headers={**XML, **EXPLORER, **if_header},
        data=win32_proppatch(modified, created, accessed, "00000020"),
    )
    assert_all_200(patched, "/" + name, WIN32_NAMES)
    assert mtime_on_disk(server, name) == gmt(modified)
    stored = one(propfind(server, path, [*WIN32_NAMES, D + "getlastmodified"]))
    assert value(stored, "{" + MS_NS + "}Win32FileAttributes") == "00000020"
    assert value(stored, D + "getlastmodified") == modified

    head = server.request("HEAD", path, headers=EXPLORER)
    assert head.status_code == 200, show(head)
    assert head.headers["Content-Length"] == "0"

    # Without the token the locked file cannot be written (by anyone else).
    other = server.request("PUT", path, headers=EXPLORER, data=b"intruder")
    assert other.status_code == 423, show(other)

    written = server.request("PUT", path, headers={**EXPLORER, **if_header}, data=content)
    assert written.status_code == 204, show(written)
    assert (server.root / name).read_bytes() == content
    assert mtime_on_disk(server, name) != gmt(modified)  # a write is a new modification

    again = server.request(
        "PROPPATCH",
        path,
        headers={**XML, **EXPLORER, **if_header},
        data=win32_proppatch(modified, created, accessed, "00000020"),
    )
    assert_all_200(again, "/" + name, WIN32_NAMES)
    assert mtime_on_disk(server, name) == gmt(modified)

    # Explorer sends the token without angle brackets.
    unlocked = server.request("UNLOCK", path, headers={"Lock-Token": token, **EXPLORER})
    assert unlocked.status_code == 204, show(unlocked)

    final = one(propfind(server, path, [D + "getlastmodified", D + "getcontentlength"]))
    assert value(final, D + "getlastmodified") == modified
    assert value(final, D + "getcontentlength") == str(len(content))
    discovery = one(propfind(server, path, [D + "lockdiscovery"]))
    assert discovery[D + "lockdiscovery"][1].find(D + "activelock") is None
    # Unlocked: a write without a token goes through again.
    assert server.request("PUT", path, headers=EXPLORER, data=b"free").status_code == 204


def test_explorer_win32_times_on_a_folder_and_refused_values(server):
    (server.root / "Archive").mkdir()
    modified = "Sat, 01 Jun 2019 12:00:00 GMT"
    patched = server.request(
        "PROPPATCH",
        "/Archive",
        headers={**XML, **EXPLORER},
        data=win32_proppatch(modified, modified, modified, "00000010"),
    )
    assert_all_200(patched, "/Archive/", WIN32_NAMES)
    assert mtime_on_disk(server, "Archive") == gmt(modified)

    # A value that is not a time changes nothing (and says so per property).
    before = mtime_on_disk(server, "Archive")
    bad = server.request(
        "PROPPATCH",
        "/Archive",
        headers={**XML, **EXPLORER},
        data=win32_proppatch("yesterday-ish", modified, modified, "00000011"),
    )
    result = one(parse_multistatus(bad))
    assert result["{" + MS_NS + "}Win32LastModifiedTime"][0] == 409, show(bad)
    assert result["{" + MS_NS + "}Win32FileAttributes"][0] == 424, show(bad)
    assert mtime_on_disk(server, "Archive") == before
    attrs = one(propfind(server, "/Archive", ["{" + MS_NS + "}Win32FileAttributes"]))
    assert value(attrs, "{" + MS_NS + "}Win32FileAttributes") == "00000010"


def test_explorer_new_folder_and_rename(server):
    new_folder = "/" + quote("New folder")

    made = server.request("MKCOL", new_folder, headers=EXPLORER)
    assert made.status_code == 201, show(made)
    listed = propfind(server, new_folder, depth="0", headers=EXPLORER)
    assert set(listed) == {"/New folder/"}

    renamed = server.request(
        "MOVE",
        new_folder,
        headers={"Destination": server.url("/Projects"), "Overwrite": "F", **EXPLORER},
        allow_redirects=False,
    )
    assert renamed.status_code == 201, show(renamed)
    assert (server.root / "Projects").is_dir()
    assert not (server.root / "New folder").exists()

    # A file in it, renamed the same way.
    new_file = "/Projects/" + quote("New Text Document.txt")
    assert server.request("PUT", new_file, headers=EXPLORER, data=b"").status_code == 201
    file_renamed = server.request(
        "MOVE",
        new_file,
        headers={"Destination": server.url("/Projects/todo.txt"), "Overwrite": "F", **EXPLORER},
    )
    assert file_renamed.status_code == 201, show(file_renamed)
    assert sorted(os.listdir(server.root / "Projects")) == ["todo.txt"]

    # A second "New folder" renamed onto the existing name: 412, and nothing moves.
    assert server.request("MKCOL", new_folder, headers=EXPLORER).status_code == 201
    (server.root / "New folder" / "keep.txt").write_bytes(b"keep")
    clash = server.request(
        "MOVE",
        new_folder,
        headers={"Destination": server.url("/Projects"), "Overwrite": "F", **EXPLORER},
        allow_redirects=False,
    )
    assert clash.status_code == 412, show(clash)
    assert (server.root / "New folder" / "keep.txt").read_bytes() == b"keep"
    assert sorted(os.listdir(server.root / "Projects")) == ["todo.txt"]

    file_clash = server.request(
        "MOVE",
        "/" + quote("New folder") + "/keep.txt",
        headers={"Destination": server.url("/Projects/todo.txt"), "Overwrite": "F", **EXPLORER},
    )
    assert file_clash.status_code == 412, show(file_clash)
    assert (server.root / "Projects" / "todo.txt").read_bytes() == b""


# -- macOS Finder -------------------------------------------------------------------------------


def test_finder_mounts_read_write(server):
    """Finder mounts read-only unless OPTIONS says class 2 and a LOCK works."""
    options = expect(server.request("OPTIONS", "/", headers=FINDER), 200)
    assert "2" in {c.strip() for c in options.headers["DAV"].split(",")}
    root = propfind(server, "/", depth="0", headers=FINDER)
    assert set(root) == {"/"}
    listing = server.request(
        "PROPFIND", "/", headers={"Depth": "1", **XML, **FINDER}, data=FINDER_PROPFIND
    )
    assert set(parse_multistatus(listing)) == {"/"}

    # Finder creates some files by locking the unmapped name first (RFC 4918 7.3: 201 and an
    # empty file), then writes it with the token, as in its AppleDouble sequence.
    probe = "/._notes.txt"
    locked = server.request(
        "LOCK",
        probe,
        headers={"Timeout": "Second-600", "Depth": "0", **XML, **FINDER},
        data=owner_lockinfo("http://www.apple.com/webdav_fs/"),
    )
    assert locked.status_code == 201, show(locked)
    token = lock_token(locked)
    assert lock_answer(locked) == (token, 600)
    assert (server.root / "._notes.txt").read_bytes() == b""
    refused = server.request("PUT", probe, headers=FINDER, data=b"no token")
    assert refused.status_code == 423, show(refused)
    written = server.request(
        "PUT", probe, headers={"If": f"(<{token}>)", **FINDER}, data=b"\x00\x05\x16\x07"
    )
    assert written.status_code == 204, show(written)
    unlocked = server.request("UNLOCK", probe, headers={"Lock-Token": f"<{token}>", **FINDER})
    assert unlocked.status_code == 204, show(unlocked)
    assert (server.root / "._notes.txt").read_bytes() == b"\x00\x05\x16\x07"
    assert server.request("DELETE", probe, headers=FINDER).status_code == 204
    assert shared_names(server.root) == []


def test_finder_copy_with_chunked_upload_and_lock_refresh(server):
    """Finder's copy: PUT 0 bytes, LOCK (600 s), PUT chunked with X-Expected-Entity-Length,
    refresh the lock with an empty LOCK, write the AppleDouble file, UNLOCK."""
    name = "report.pdf"
    content = payload(300_000, seed=1)

    assert (
        server.request("PROPFIND", "/" + name, headers={"Depth": "0", **FINDER}).status_code == 404
    )
    created = server.request("PUT", "/" + name, headers=FINDER, data=b"")
    assert created.status_code == 201, show(created)

    locked = server.request(
        "LOCK",
        "/" + name,
        headers={"Timeout": "Second-600", "Depth": "0", **XML, **FINDER},
        data=owner_lockinfo("http://www.apple.com/webdav_fs/"),
    )
    assert locked.status_code == 200, show(locked)
    token = lock_token(locked)
    assert lock_answer(locked) == (token, 600)

    request = (
        f"PUT /{name} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"User-Agent: {FINDER['User-Agent']}\r\n"
        "Accept: */*\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"X-Expected-Entity-Length: {len(content)}\r\n"
        f"If: (<{token}>)\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + chunked(content, [32768, 1, 65536, 4095, 100_000])
    status_line, headers, body = split_raw(server.raw(request))
    status = int(status_line.split()[1])
    assert status == 204, (status, headers, body[:500])
    on_disk = (server.root / name).read_bytes()
    assert len(on_disk) == len(content) and on_disk == content
    size = one(propfind(server, "/" + name, [D + "getcontentlength"]))
    assert value(size, D + "getcontentlength") == str(len(content))

    # The refresh: no body, the token in If; the same lock comes back.
    refreshed = server.request(
        "LOCK",
        "/" + name,
        headers={"Timeout": "Second-600", "If": f"(<{token}>)", **FINDER},
        data=b"",
    )
    assert refreshed.status_code == 200, show(refreshed)
    assert lock_answer(refreshed) == (token, 600)
    discovery = one(propfind(server, "/" + name, [D + "lockdiscovery"]))
    active = discovery[D + "lockdiscovery"][1].findall(D + "activelock")
    tokens = [(a.findtext(f"{D}locktoken/{D}href") or "").strip() for a in active]
    assert tokens == [token]

    # The AppleDouble companion, streamed with requests (chunked, no Content-Length).
    apple_double = payload(4096, seed=2)

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(apple_double), 1000):
            yield apple_double[i : i + 1000]

    companion = one_shot(
        "PUT",
        server.url("/._" + name),
        headers={"X-Expected-Entity-Length": str(len(apple_double)), **FINDER},
        data=pieces(),
    )
    assert companion.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in companion.request.headers
    assert companion.status_code == 201, show(companion)
    assert (server.root / ("._" + name)).read_bytes() == apple_double

    unlocked = server.request("UNLOCK", "/" + name, headers={"Lock-Token": f"<{token}>", **FINDER})
    assert unlocked.status_code == 204, show(unlocked)
    listing = propfind(server, "/", depth="1", headers=FINDER)
    assert {"/report.pdf", "/._report.pdf"} <= set(listing)


def test_finder_large_chunked_upload_is_stored_whole(server):
    content = payload(3 * 1024 * 1024 + 17, seed=3)

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(content), 65536):
            yield content[i : i + 65536]

    response = one_shot(
        "PUT",
        server.url("/movie.mov"),
        headers={"X-Expected-Entity-Length": str(len(content)), **FINDER},
        data=pieces(),
    )
    assert response.status_code == 201, show(response)
    assert (server.root / "movie.mov").stat().st_size == len(content)
    assert (
        hashlib.sha256((server.root / "movie.mov").read_bytes()).digest()
        == hashlib.sha256(content).digest()
    )


FINDER_PROBES = [
    "/._.",
    "/.DS_Store",
    "/.hidden",
    "/.metadata_never_index",
    "/.metadata_never_index_unless_rootfs",
    "/.metadata_direct_scope_only",
    "/.ql_disablethumbnails",
    "/.ql_disablecache",
    "/.Spotlight-V100",
    "/.localized",
    "/Backups.backupdb",
    "/mach_kernel",
    "/Documents/._Documents",
    "/Documents/.DS_Store",
]


def test_finder_probes_get_plain_404(server):
    (server.root / "Documents").mkdir()
    for path in FINDER_PROBES:
        found = server.request(
            "PROPFIND",
            path,
            headers={"Depth": "0", **XML, **FINDER},
            data=FINDER_PROPFIND,
            allow_redirects=False,
        )
        assert found.status_code == 404, show(found)
        assert "multistatus" not in found.text
        got = server.request("GET", path, headers=FINDER, allow_redirects=False)
        assert got.status_code == 404, show(got)
    # Nothing was created by the probes.
    assert shared_names(server.root) == ["Documents"]
    assert os.listdir(server.root / "Documents") == []


def put_apple_files(server: LiveServer) -> None:
    for path, body in (
        ("/foo.txt", b"foo"),
        ("/._foo.txt", b"\x00\x05\x16\x07apple double"),
        ("/.DS_Store", b"\x00\x00\x00\x01Bud1"),
        ("/Sub/bar.txt", b"bar"),
        ("/Sub/._bar.txt", b"\x00\x05\x16\x07"),
        ("/Sub/.DS_Store", b"Bud1"),
    ):
        if path.startswith("/Sub/") and not (server.root / "Sub").exists():
            assert server.request("MKCOL", "/Sub", headers=FINDER).status_code == 201
        response = server.request("PUT", path, headers=FINDER, data=body)
        assert response.status_code == 201, show(response)
        assert server.root.joinpath(*path.strip("/").split("/")).read_bytes() == body


def html_links(text: str) -> set[str]:
    return {href_path(h) for h in re.findall(r'href="([^"]*)"', text)}


def test_apple_metadata_files_are_ordinary_files_by_default(server):
    put_apple_files(server)
    listing = propfind(server, "/", depth="1", headers=FINDER)
    assert {"/foo.txt", "/._foo.txt", "/.DS_Store", "/Sub/"} <= set(listing)
    sub = propfind(server, "/Sub", depth="1", headers=FINDER)
    assert set(sub) == {"/Sub/", "/Sub/bar.txt", "/Sub/._bar.txt", "/Sub/.DS_Store"}
    page = expect(server.request("GET", "/"), 200)
    assert {"/._foo.txt", "/.DS_Store", "/foo.txt"} <= html_links(page.text)


def test_hide_apple_metadata_hides_from_listings_only(make_server):
    server = make_server(hide_apple_metadata=True)
    put_apple_files(server)

    listing = propfind(server, "/", depth="1", headers=FINDER)
    assert set(listing) == {"/", "/foo.txt", "/Sub/"}
    sub = propfind(server, "/Sub", depth="1", headers=FINDER)
    assert set(sub) == {"/Sub/", "/Sub/bar.txt"}
    infinity = propfind(server, "/", depth="infinity", headers=FINDER)
    assert set(infinity) == {"/", "/foo.txt", "/Sub/", "/Sub/bar.txt"}

    page = expect(server.request("GET", "/"), 200)
    links = html_links(page.text)
    assert "/foo.txt" in links and "/Sub/" in links
    assert "/._foo.txt" not in links and "/.DS_Store" not in links
    sub_page = expect(server.request("GET", "/Sub/"), 200)
    assert "/Sub/._bar.txt" not in html_links(sub_page.text)

    # Still there, by name: Finder reads and rewrites them.
    got = expect(server.request("GET", "/._foo.txt", headers=FINDER), 200)
    assert got.content == b"\x00\x05\x16\x07apple double"
    assert expect(server.request("GET", "/.DS_Store", headers=FINDER), 200).content == (
        b"\x00\x00\x00\x01Bud1"
    )
    by_name = propfind(server, "/._foo.txt", [D + "getcontentlength"], headers=FINDER)
    assert value(one(by_name), D + "getcontentlength") == str(len(got.content))
    assert server.request("PUT", "/.DS_Store", headers=FINDER, data=b"new").status_code == 204
    assert (server.root / ".DS_Store").read_bytes() == b"new"


def test_nfd_names_are_kept_byte_for_byte(server):
    nfd_file = "Cafe\u0301.txt"
    nfd_folder = "Re\u0301sume\u0301s"
    assert unicodedata.normalize("NFC", nfd_file) != nfd_file

    made = server.request("MKCOL", "/" + quote(nfd_folder), headers=FINDER)
    assert made.status_code == 201, show(made)
    put = server.request("PUT", "/" + quote(nfd_file), headers=FINDER, data=b"espresso")
    assert put.status_code == 201, show(put)
    inner = "/" + quote(nfd_folder) + "/" + quote(nfd_file)
    assert server.request("PUT", inner, headers=FINDER, data=b"cv").status_code == 201

    on_disk = set(os.listdir(os.fsencode(server.root)))
    assert on_disk == {nfd_file.encode("utf-8"), nfd_folder.encode("utf-8")}
    assert os.listdir(os.fsencode(server.root / nfd_folder)) == [nfd_file.encode("utf-8")]

    listing = propfind(server, "/", [D + "displayname"], depth="1", headers=FINDER)
    assert set(listing) == {"/", "/" + nfd_file, "/" + nfd_folder + "/"}
    assert value(listing["/" + nfd_file], D + "displayname") == nfd_file
    inner_listing = propfind(server, "/" + quote(nfd_folder), depth="1", headers=FINDER)
    assert set(inner_listing) == {"/" + nfd_folder + "/", "/" + nfd_folder + "/" + nfd_file}

    assert server.request("GET", "/" + quote(nfd_file)).content == b"espresso"
    assert server.request("GET", inner).content == b"cv"


def test_quota_properties_on_the_root(server):
    names = [D + "quota-available-bytes", D + "quota-used-bytes"]
    root = one(propfind(server, "/", names, headers=FINDER))
    available, used = value(root, names[0]), value(root, names[1])
    assert available is not None and available.isdigit(), root
    assert used is not None and used.isdigit(), root
    # The filesystem's figures (what Finder shows as free space): used + free is its size.
    assert int(available) + int(used) == shutil.disk_usage(server.root).total
    assert int(available) > 0


def test_dates_are_rfc1123_gmt(server):
    (server.root / "old.txt").write_bytes(b"old")
    os.utime(server.root / "old.txt", (1262304000, 1262304000))  # 2010-01-01 00:00:00 UTC
    (server.root / "new.txt").write_bytes(b"new")
    listing = parse_multistatus(
        server.request(
            "PROPFIND", "/", headers={"Depth": "1", **XML, **FINDER}, data=FINDER_PROPFIND
        )
    )
    assert value(listing["/old.txt"], D + "getlastmodified") == "Fri, 01 Jan 2010 00:00:00 GMT"
    for href, props in listing.items():
        stamp = value(props, D + "getlastmodified")
        assert stamp is not None and RFC1123.match(stamp), (href, stamp)
        disk = server.root.joinpath(href.strip("/")) if href != "/" else server.root
        assert stamp == formatdate(int(disk.stat().st_mtime), usegmt=True), href
    head = expect(server.request("HEAD", "/old.txt", headers=FINDER), 200)
    assert head.headers["Last-Modified"] == "Fri, 01 Jan 2010 00:00:00 GMT"


# -- Microsoft Office ---------------------------------------------------------------------------


def test_office_open_edit_save_close_and_second_user(make_server, tmp_path):
    htpasswd = write_users(tmp_path / "users.htpasswd", {"alice": "alice-pw", "bob": "bob-pw"})
    server = make_server(htpasswd=htpasswd)
    alice, bob = ("alice", "alice-pw"), ("bob", "bob-pw")
    (server.root / "Shared").mkdir()
    original = payload(20_000, seed=4)
    (server.root / "Shared" / "Budget.docx").write_bytes(original)
    path = "/Shared/Budget.docx"
    url = server.url(path)

    # Open: discovery without credentials, then the probes with Brief: t.
    discovery = expect(server.request("OPTIONS", "/", headers=OFFICE_DISCOVERY), 200)
    assert discovery.headers.get("MS-Author-Via") == "DAV"
    expect(server.request("OPTIONS", "/Shared/", headers=WORD), 200)
    head = expect(server.request("HEAD", path, headers=WORD, auth=alice), 200)
    assert head.headers["Content-Length"] == str(len(original))
    probe = server.request(
        "PROPFIND",
        path,
        headers={"Depth": "0", "Brief": "t", **XML, **WORD},
        data=propfind_body(
            D + "getlastmodified",
            D + "getcontentlength",
            D + "resourcetype",
            D + "lockdiscovery",
            "{" + MS_NS + "}Win32FileAttributes",
            "{urn:schemas-microsoft-com:office:office}Author",
        ),
        auth=alice,
    )
    props = one(parse_multistatus(probe))
    assert value(props, D + "getcontentlength") == str(len(original))
    # Brief: t leaves out the properties that are not there.
    assert all(status == 200 for status, _ in props.values()), show(probe)
    assert expect(server.request("GET", path, headers=WORD, auth=alice), 200).content == original

    # Open for editing: an exclusive lock of at least 30 minutes.
    locked = server.request(
        "LOCK",
        path,
        headers={"Timeout": "Second-3600", **XML, **WORD},
        data=owner_lockinfo("ACME\\alice"),
        auth=alice,
    )
    assert locked.status_code == 200, show(locked)
    token = lock_token(locked)
    seen_token, granted = lock_answer(locked)
    assert seen_token == token and granted >= 1800
    tagged_if = {"If": f"<{url}> (<{token}>)"}

    # Office refreshes the lock with an empty body while the document stays open.
    refreshed = server.request(
        "LOCK", path, headers={"Timeout": "Second-3600", **tagged_if, **WORD}, data=b"", auth=alice
    )
    assert refreshed.status_code == 200, show(refreshed)
    refreshed_token, refreshed_for = lock_answer(refreshed)
    assert refreshed_token == token and refreshed_for >= 1800

    # Bob opens the same document: the lock is visible, and neither a write nor a lock of his
    # succeeds, so Office offers him a read-only copy.
    seen = one(propfind(server, path, [D + "lockdiscovery"], headers=WORD, auth=bob))
    assert "ACME\\alice" in "".join(seen[D + "lockdiscovery"][1].itertext())
    bob_put = server.request("PUT", path, headers=WORD, data=b"bob's version", auth=bob)
    assert bob_put.status_code == 423, show(bob_put)
    bob_lock = server.request(
        "LOCK",
        path,
        headers={"Timeout": "Second-3600", **XML, **WORD},
        data=owner_lockinfo("ACME\\bob"),
        auth=bob,
    )
    assert bob_lock.status_code == 423, show(bob_lock)
    assert (server.root / "Shared" / "Budget.docx").read_bytes() == original

    # Save: PUT with the token; close: UNLOCK.
    saved_content = payload(21_000, seed=5)
    saved = server.request(
        "PUT", path, headers={**tagged_if, **WORD}, data=saved_content, auth=alice
    )
    assert saved.status_code == 204, show(saved)
    assert (server.root / "Shared" / "Budget.docx").read_bytes() == saved_content
    closed = server.request(
        "UNLOCK", path, headers={"Lock-Token": f"<{token}>", **WORD}, auth=alice
    )
    assert closed.status_code == 204, show(closed)

    # Now Bob can open it for editing.
    bob_again = server.request(
        "LOCK",
        path,
        headers={"Timeout": "Second-3600", **XML, **WORD},
        data=owner_lockinfo("ACME\\bob"),
        auth=bob,
    )
    assert bob_again.status_code == 200, show(bob_again)


@pytest.mark.parametrize("timeout", ["Second-3600", None])
def test_office_lock_timeout_is_at_least_30_minutes(server, timeout):
    (server.root / "Slides.pptx").write_bytes(b"PK\x03\x04")
    headers = {**XML, **WORD}
    if timeout is not None:
        headers["Timeout"] = timeout
    locked = server.request(
        "LOCK", "/Slides.pptx", headers=headers, data=owner_lockinfo("ACME\\carol")
    )
    assert locked.status_code == 200, show(locked)
    token, granted = lock_answer(locked)
    assert token == lock_token(locked)
    assert granted >= 1800, show(locked)


# -- sync clients: modification times -----------------------------------------------------------


def test_put_with_x_oc_mtime_keeps_the_date(server):
    created = server.request(
        "PUT", "/notes.md", headers={"X-OC-Mtime": "1700000000", **RCLONE}, data=b"# notes"
    )
    assert created.status_code == 201, show(created)
    assert created.headers.get("X-OC-Mtime") == "accepted", show(created)
    assert mtime_on_disk(server, "notes.md") == 1700000000
    props = one(propfind(server, "/notes.md", [D + "getlastmodified"]))
    assert value(props, D + "getlastmodified") == "Tue, 14 Nov 2023 22:13:20 GMT"

    replaced = server.request(
        "PUT", "/notes.md", headers={"X-OC-Mtime": "1600000000", **RCLONE}, data=b"# notes 2"
    )
    assert replaced.status_code == 204, show(replaced)
    assert replaced.headers.get("X-OC-Mtime") == "accepted"
    assert mtime_on_disk(server, "notes.md") == 1600000000
    assert (server.root / "notes.md").read_bytes() == b"# notes 2"
    head = expect(server.request("HEAD", "/notes.md"), 200)
    assert head.headers["Last-Modified"] == formatdate(1600000000, usegmt=True)

    # Without the header the date is the time of the write, and nothing claims "accepted".
    plain = server.request("PUT", "/plain.md", headers=RCLONE, data=b"x")
    assert plain.status_code == 201 and "X-OC-Mtime" not in plain.headers
    assert mtime_on_disk(server, "plain.md") > 1700000000


def test_copy_and_move_with_x_oc_mtime(server):
    (server.root / "a.txt").write_bytes(b"alpha")
    os.utime(server.root / "a.txt", (1500000000, 1500000000))

    copied = server.request(
        "COPY",
        "/a.txt",
        headers={"Destination": server.url("/b.txt"), "X-OC-Mtime": "1400000000", **RCLONE},
    )
    assert copied.status_code == 201, show(copied)
    assert copied.headers.get("X-OC-Mtime") == "accepted", show(copied)
    assert mtime_on_disk(server, "b.txt") == 1400000000
    assert mtime_on_disk(server, "a.txt") == 1500000000
    assert (server.root / "b.txt").read_bytes() == b"alpha"

    moved = server.request(
        "MOVE",
        "/b.txt",
        headers={"Destination": server.url("/c.txt"), "X-OC-Mtime": "1300000000", **RCLONE},
    )
    assert moved.status_code == 201, show(moved)
    assert moved.headers.get("X-OC-Mtime") == "accepted", show(moved)
    assert not (server.root / "b.txt").exists()
    assert mtime_on_disk(server, "c.txt") == 1300000000

    # Onto an existing file (204), the destination gets the date too.
    over = server.request(
        "MOVE",
        "/c.txt",
        headers={
            "Destination": server.url("/a.txt"),
            "Overwrite": "T",
            "X-OC-Mtime": "1200000000",
            **RCLONE,
        },
    )
    assert over.status_code == 204, show(over)
    assert over.headers.get("X-OC-Mtime") == "accepted"
    assert mtime_on_disk(server, "a.txt") == 1200000000
    props = one(propfind(server, "/a.txt", [D + "getlastmodified"]))
    assert value(props, D + "getlastmodified") == formatdate(1200000000, usegmt=True)


# rclone's body for setting a modification time (backend/webdav, vendor owncloud/nextcloud).
RCLONE_SET_MTIME = """<?xml version="1.0" encoding="utf-8" ?>
<D:propertyupdate xmlns:D="DAV:">
 <D:set>
  <D:prop>
   <lastmodified xmlns="DAV:">{seconds}</lastmodified>
  </D:prop>
 </D:set>
</D:propertyupdate>
"""


def test_proppatch_dav_lastmodified_sets_the_date(server):
    (server.root / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    response = server.request(
        "PROPPATCH",
        "/photo.jpg",
        headers={"Content-Type": "application/xml", **RCLONE},
        data=RCLONE_SET_MTIME.format(seconds=1700000000).encode(),
    )
    result = one(parse_multistatus(response))
    assert result[D + "lastmodified"][0] == 200, show(response)
    assert mtime_on_disk(server, "photo.jpg") == 1700000000
    props = one(propfind(server, "/photo.jpg", [D + "getlastmodified"]))
    assert value(props, D + "getlastmodified") == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert (server.root / "photo.jpg").read_bytes() == b"\xff\xd8\xff"


# -- sync clients: checksums --------------------------------------------------------------------


def checksums(server: LiveServer, path: str) -> str | None:
    return value(one(propfind(server, path, [CHECKSUMS])), CHECKSUMS)


def put_with_checksum(
    server: LiveServer, path: str, checksum: str, data: bytes
) -> requests.Response:
    """An upload as rclone (vendor owncloud) sends it: PUT with OC-Checksum."""
    return server.request("PUT", path, headers={"OC-Checksum": checksum, **RCLONE}, data=data)


def put_range(server: LiveServer, path: str, content_range: str, data: bytes) -> requests.Response:
    """One piece of a resumable upload, as rclone sends it: PUT with Content-Range."""
    return server.request(
        "PUT", path, headers={"Content-Range": content_range, **RCLONE}, data=data
    )


def digests(data: bytes) -> dict[str, str]:
    return {
        "SHA1": hashlib.sha1(data).hexdigest(),
        "MD5": hashlib.md5(data).hexdigest(),
        "SHA256": hashlib.sha256(data).hexdigest(),
    }


def test_oc_checksum_is_checked_and_reported(server):
    first = payload(10_000, seed=6)
    d1 = digests(first)
    stored = put_with_checksum(server, "/data.bin", f"SHA1:{d1['SHA1']}", first)
    assert stored.status_code == 201, show(stored)
    assert (server.root / "data.bin").read_bytes() == first
    assert checksums(server, "/data.bin") == f"SHA1:{d1['SHA1']} MD5:{d1['MD5']}"

    # A wrong checksum: 400, and the old content and checksum stay.
    second = payload(12_000, seed=7)
    wrong = put_with_checksum(
        server, "/data.bin", f"SHA1:{hashlib.sha1(b'other').hexdigest()}", second
    )
    assert wrong.status_code == 400, show(wrong)
    assert (server.root / "data.bin").read_bytes() == first
    assert checksums(server, "/data.bin") == f"SHA1:{d1['SHA1']} MD5:{d1['MD5']}"
    assert shared_names(server.root) == ["data.bin"]  # no temporary file left behind

    # A wrong checksum for a new name stores nothing.
    new_wrong = put_with_checksum(server, "/fresh.bin", f"MD5:{'0' * 32}", second)
    assert new_wrong.status_code == 400, show(new_wrong)
    assert not (server.root / "fresh.bin").exists()

    # MD5: and SHA256: forms.
    d2 = digests(second)
    md5 = put_with_checksum(server, "/data.bin", f"MD5:{d2['MD5']}", second)
    assert md5.status_code == 204, show(md5)
    assert (server.root / "data.bin").read_bytes() == second
    assert checksums(server, "/data.bin") == f"SHA1:{d2['SHA1']} MD5:{d2['MD5']}"

    third = payload(5_000, seed=8)
    d3 = digests(third)
    sha256 = put_with_checksum(server, "/data.bin", f"SHA256:{d3['SHA256']}", third)
    assert sha256.status_code == 204, show(sha256)
    reported = checksums(server, "/data.bin") or ""
    assert reported.startswith(f"SHA1:{d3['SHA1']} MD5:{d3['MD5']}"), reported
    parsed = dict(item.split(":", 1) for item in reported.split())
    assert parsed.get("SHA256", d3["SHA256"]) == d3["SHA256"]
    bad_sha256 = put_with_checksum(server, "/data.bin", f"SHA256:{d2['SHA256']}", first)
    assert bad_sha256.status_code == 400, show(bad_sha256)
    assert (server.root / "data.bin").read_bytes() == third

    # A later write without a checksum drops the stale value.
    plain = server.request("PUT", "/data.bin", headers=RCLONE, data=b"plain")
    assert plain.status_code == 204, show(plain)
    assert checksums(server, "/data.bin") is None


def test_checksum_follows_copy_and_move(server):
    content = payload(7_777, seed=9)
    d = digests(content)
    expected = f"SHA1:{d['SHA1']} MD5:{d['MD5']}"
    stored = put_with_checksum(server, "/src.bin", f"SHA1:{d['SHA1']}", content)
    assert stored.status_code == 201, show(stored)
    copied = server.request("COPY", "/src.bin", headers={"Destination": server.url("/copy.bin")})
    assert copied.status_code == 201, show(copied)
    assert checksums(server, "/copy.bin") == expected
    assert checksums(server, "/src.bin") == expected
    moved = server.request("MOVE", "/copy.bin", headers={"Destination": server.url("/moved.bin")})
    assert moved.status_code == 201, show(moved)
    assert checksums(server, "/moved.bin") == expected
    assert server.request("PROPFIND", "/copy.bin", headers={"Depth": "0"}).status_code == 404


# -- resumable uploads --------------------------------------------------------------------------


def test_put_content_range_assembles_a_file(server):
    content = payload(300, seed=10)
    path = "/upload.iso"
    for first in (0, 100, 200):
        piece = put_range(
            server, path, f"bytes {first}-{first + 99}/300", content[first : first + 100]
        )
        assert piece.status_code == (201 if first == 0 else 204), show(piece)
        assert (server.root / "upload.iso").read_bytes() == content[: first + 100]
        # After a dropped connection the client asks how much arrived.
        head = expect(server.request("HEAD", path), 200)
        assert head.headers["Content-Length"] == str(first + 100)
    assert expect(server.request("GET", path), 200).content == content


def test_put_content_range_that_does_not_fit(server):
    content = payload(300, seed=11)
    (server.root / "part.bin").write_bytes(content[:100])

    gap = put_range(server, "/part.bin", "bytes 150-199/300", content[150:200])
    assert gap.status_code == 416, show(gap)
    assert gap.headers.get("Content-Range") == "bytes */100", show(gap)
    assert gap.text == "the upload may continue at byte 100, not 150\n"
    assert (server.root / "part.bin").read_bytes() == content[:100]

    short = put_range(server, "/part.bin", "bytes 100-199/300", content[100:150])
    assert short.status_code == 400, show(short)
    assert short.text == "Content-Range announces 100 bytes, the body has another size\n"
    assert (server.root / "part.bin").read_bytes() == content[:100]

    long = put_range(server, "/part.bin", "bytes 100-199/300", content[100:250])
    assert long.status_code == 400, show(long)
    assert long.text == "Content-Range announces 100 bytes, the body has another size\n"
    assert (server.root / "part.bin").read_bytes() == content[:100]

    # The right piece still continues the upload.
    right = put_range(server, "/part.bin", "bytes 100-299/300", content[100:])
    assert right.status_code == 204, show(right)
    assert (server.root / "part.bin").read_bytes() == content


def test_put_content_range_drops_a_stale_checksum(server):
    content = payload(200, seed=12)
    d = digests(content[:100])
    first = put_with_checksum(server, "/resume.bin", f"SHA1:{d['SHA1']}", content[:100])
    assert first.status_code == 201, show(first)
    assert checksums(server, "/resume.bin") == f"SHA1:{d['SHA1']} MD5:{d['MD5']}"
    rest = put_range(server, "/resume.bin", "bytes 100-199/200", content[100:])
    assert rest.status_code == 204, show(rest)
    assert (server.root / "resume.bin").read_bytes() == content
    assert checksums(server, "/resume.bin") is None
