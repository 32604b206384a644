"""Live-server tests for OPTIONS, GET and HEAD (RFC 9110 9.3, 13, 14; RFC 4918 9.4, 10.1)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import pytest
from helpers import parse_listing, split_raw

# A fixed modification time well in the past, so that Last-Modified is a strong validator
# (RFC 9110 8.8.2.2) and date conditionals are unambiguous.
PAST = 1577836800  # 2020-01-01 00:00:00 GMT
PAST_DATE = "Wed, 01 Jan 2020 00:00:00 GMT"
EARLIER_DATE = "Tue, 31 Dec 2019 00:00:00 GMT"
LATER_DATE = "Thu, 02 Jan 2020 00:00:00 GMT"

CONTENT = bytes(range(256)) * 4  # 1024 bytes, every offset distinguishable by its value


def make_file(root: Path, rel: str, data: bytes, mtime: float | None = PAST) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def list_header(value: str) -> set[str]:
    return {item.strip() for item in value.split(",") if item.strip()}


# -- OPTIONS ----------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-177", "R-260")
@pytest.mark.parametrize("path", ["/", "/file.txt", "/dir/", "/missing.txt", "/no/such/deep"])
def test_options_advertises_dav_and_methods(server, path):
    make_file(server.root, "file.txt", b"x")
    (server.root / "dir").mkdir()
    r = server.request("OPTIONS", path)
    assert r.status_code == 200
    assert list_header(r.headers["DAV"]) >= {"1", "2"}
    allow = list_header(r.headers["Allow"])
    assert allow >= {
        "OPTIONS",
        "GET",
        "HEAD",
        "PUT",
        "DELETE",
        "MKCOL",
        "COPY",
        "MOVE",
        "PROPFIND",
        "PROPPATCH",
        "LOCK",
        "UNLOCK",
    }
    assert r.headers["MS-Author-Via"] == "DAV"
    assert r.content == b""
    # OPTIONS creates nothing.
    assert sorted(p.name for p in server.root.iterdir()) == ["dir", "file.txt"]


# -- GET and HEAD of files ----------------------------------------------------------------------


def test_get_file_body_and_headers(server):
    path = make_file(server.root, "a.txt", CONTENT)
    r = server.request("GET", "/a.txt")
    assert r.status_code == 200
    assert r.content == CONTENT
    assert r.headers["Content-Length"] == str(len(CONTENT))
    assert r.headers["Content-Type"].split(";")[0].strip() == "text/plain"
    etag = r.headers["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag), etag  # strong: quoted, no W/
    assert r.headers["Last-Modified"] == PAST_DATE
    assert parsedate_to_datetime(r.headers["Last-Modified"]).timestamp() == int(
        path.stat().st_mtime
    )
    assert r.headers.get("Accept-Ranges") == "bytes"


@pytest.mark.rfc4918("R-169")
def test_get_empty_file(server):
    make_file(server.root, "empty.txt", b"")
    r = server.request("GET", "/empty.txt")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Content-Length"] == "0"


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("note.txt", "text/plain"),
        ("page.html", "text/html"),
        ("pic.png", "image/png"),
        ("photo.jpg", "image/jpeg"),
        ("doc.pdf", "application/pdf"),
        ("data.json", "application/json"),
        ("UPPER.PNG", "image/png"),
        ("noextension", "application/octet-stream"),
        ("strange.zz9unknown", "application/octet-stream"),
    ],
)
def test_get_content_type_by_extension(server, name, media_type):
    make_file(server.root, name, b"payload")
    for method in ("GET", "HEAD"):
        r = server.request(method, "/" + name)
        assert r.status_code == 200
        assert r.headers["Content-Type"].split(";")[0].strip().lower() == media_type


@pytest.mark.rfc4918("R-064")
def test_etag_changes_on_every_put_even_same_size_and_immediate(server):
    make_file(server.root, "e.bin", b"0000", mtime=None)
    seen = [server.request("GET", "/e.bin").headers["ETag"]]
    for i in range(1, 8):
        body = b"%04d" % i  # always 4 bytes
        put = server.request("PUT", "/e.bin", data=body)
        assert put.status_code == 204
        got = server.request("GET", "/e.bin")
        assert got.content == body
        assert got.headers["ETag"] == put.headers["ETag"]
        seen.append(got.headers["ETag"])
    assert len(set(seen)) == len(seen), seen


def test_etag_changes_after_same_size_in_place_rewrite_on_disk(server):
    path = make_file(server.root, "inplace.bin", b"aaaa", mtime=None)
    seen = [server.request("GET", "/inplace.bin").headers["ETag"]]
    for i in range(1, 6):
        with open(path, "r+b") as f:  # same inode, same size, immediately
            f.write(b"%04d" % i)
        r = server.request("GET", "/inplace.bin")
        assert r.content == b"%04d" % i
        seen.append(r.headers["ETag"])
    assert len(set(seen)) == len(seen), seen


@pytest.mark.rfc4918("R-258")
def test_head_has_headers_of_get_and_no_body(server):
    make_file(server.root, "h.html", CONTENT)
    get = server.request("GET", "/h.html")
    head = server.request("HEAD", "/h.html")
    assert head.status_code == 200
    assert head.content == b""
    for name in ("ETag", "Last-Modified", "Content-Type", "Content-Length", "Accept-Ranges"):
        assert head.headers[name] == get.headers[name], name
    # On the wire: nothing after the header block, even though Content-Length says 1024.
    answer = server.raw(
        b"HEAD /h.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    status, headers, rest = split_raw(answer)
    assert status.startswith("HTTP/1.1 200")
    assert headers["content-length"] == str(len(CONTENT))
    assert rest == b""


def test_head_of_missing_file_is_404_without_body(server):
    r = server.request("HEAD", "/missing.txt")
    assert r.status_code == 404
    assert r.content == b""


# -- ranges -------------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-258")
def test_single_range(server):
    make_file(server.root, "r.bin", CONTENT)
    r = server.request("GET", "/r.bin", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206
    assert r.content == CONTENT[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(CONTENT)}"
    assert r.headers["Content-Length"] == "10"
    assert "ETag" in r.headers


def test_range_end_beyond_size_is_clamped(server):
    make_file(server.root, "r.bin", CONTENT)
    r = server.request("GET", "/r.bin", headers={"Range": "bytes=1000-5000"})
    assert r.status_code == 206
    assert r.content == CONTENT[1000:]
    assert r.headers["Content-Range"] == f"bytes 1000-1023/{len(CONTENT)}"


def test_suffix_range(server):
    make_file(server.root, "r.bin", CONTENT)
    r = server.request("GET", "/r.bin", headers={"Range": "bytes=-5"})
    assert r.status_code == 206
    assert r.content == CONTENT[-5:]
    assert r.headers["Content-Range"] == f"bytes 1019-1023/{len(CONTENT)}"
    assert r.headers["Content-Length"] == "5"


def test_suffix_range_longer_than_file_is_whole_file(server):
    make_file(server.root, "small.bin", b"abcdef")
    r = server.request("GET", "/small.bin", headers={"Range": "bytes=-100"})
    assert r.status_code == 206
    assert r.content == b"abcdef"
    assert r.headers["Content-Range"] == "bytes 0-5/6"


def test_open_ended_range(server):
    make_file(server.root, "r.bin", CONTENT)
    r = server.request("GET", "/r.bin", headers={"Range": "bytes=1000-"})
    assert r.status_code == 206
    assert r.content == CONTENT[1000:]
    assert r.headers["Content-Range"] == f"bytes 1000-1023/{len(CONTENT)}"
    assert r.headers["Content-Length"] == "24"


def test_head_with_range_has_range_headers_and_no_body(server):
    make_file(server.root, "r.bin", CONTENT)
    r = server.request("HEAD", "/r.bin", headers={"Range": "bytes=0-9"})
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes 0-9/{len(CONTENT)}"
    assert r.content == b""


def parse_byteranges(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/byteranges body: (headers lower-cased, data) each."""
    media, _, params = content_type.partition(";")
    assert media.strip().lower() == "multipart/byteranges"
    match = re.search(r'boundary="?([^";]+)"?', params)
    assert match, content_type
    delimiter = b"--" + match.group(1).encode("ascii")
    pieces = body.split(b"\r\n" + delimiter)
    # Before the first delimiter: an empty (or CRLF-free) preamble.
    assert pieces[0] in (b"", b"\r\n") or not pieces[0].strip(), pieces[0]
    assert pieces[-1].startswith(b"--"), "no closing delimiter"
    parts = []
    for piece in pieces[1:-1]:
        assert piece.startswith(b"\r\n"), piece[:20]
        head, sep, data = piece[2:].partition(b"\r\n\r\n")
        assert sep, piece[:200]
        headers = {}
        for line in head.decode("ascii").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, data))
    return parts


def test_multiple_ranges_are_multipart_byteranges(server):
    make_file(server.root, "m.txt", CONTENT)
    r = server.request("GET", "/m.txt", headers={"Range": "bytes=0-9, 100-149, -4"})
    assert r.status_code == 206
    assert "Content-Range" not in r.headers
    assert r.headers["Content-Length"] == str(len(r.content))
    parts = parse_byteranges(r.headers["Content-Type"], r.content)
    size = len(CONTENT)
    expected = [
        ((0, 9), CONTENT[0:10]),
        ((100, 149), CONTENT[100:150]),
        ((1020, 1023), CONTENT[-4:]),
    ]
    assert len(parts) == len(expected)
    for (headers, data), ((first, last), want) in zip(parts, expected, strict=True):
        assert headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert headers["content-type"].split(";")[0].strip() == "text/plain"
        assert data == want


def test_overlapping_ranges_are_still_correct(server):
    make_file(server.root, "m.bin", CONTENT)
    r = server.request("GET", "/m.bin", headers={"Range": "bytes=0-50,40-60,500-510"})
    assert r.status_code == 206
    if r.headers["Content-Type"].startswith("multipart/byteranges"):
        parts = parse_byteranges(r.headers["Content-Type"], r.content)
    else:
        parts = [({"content-range": r.headers["Content-Range"]}, r.content)]
    covered = set()
    for headers, data in parts:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", headers["content-range"])
        assert match, headers
        first, last, size = (int(g) for g in match.groups())
        assert size == len(CONTENT)
        assert data == CONTENT[first : last + 1]
        covered.update(range(first, last + 1))
    assert covered >= set(range(61)) | set(range(500, 511))


def test_unsatisfiable_range_is_416_with_size(server):
    make_file(server.root, "u.bin", CONTENT)
    r = server.request("GET", "/u.bin", headers={"Range": "bytes=2000-3000"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(CONTENT)}"
    assert CONTENT[:16] not in r.content


def test_any_range_of_empty_file_is_416(server):
    make_file(server.root, "empty.bin", b"")
    r = server.request("GET", "/empty.bin", headers={"Range": "bytes=0-0"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */0"


@pytest.mark.parametrize(
    "value",
    ["bytes=9-3", "items=0-1", "bytes=abc", "bytes=", "bytes=1-2-3", "bytes=--5", "garbage"],
)
def test_invalid_range_header_is_ignored(server, value):
    make_file(server.root, "i.bin", CONTENT)
    r = server.request("GET", "/i.bin", headers={"Range": value})
    assert r.status_code == 200
    assert r.content == CONTENT
    assert "Content-Range" not in r.headers


# -- If-Range -----------------------------------------------------------------------------------


def test_if_range_with_matching_etag_sends_range(server):
    make_file(server.root, "ir.bin", CONTENT)
    etag = server.request("HEAD", "/ir.bin").headers["ETag"]
    r = server.request("GET", "/ir.bin", headers={"Range": "bytes=0-3", "If-Range": etag})
    assert r.status_code == 206
    assert r.content == CONTENT[:4]


@pytest.mark.parametrize("validator", ['"not-the-etag"', "W/{etag}"])
def test_if_range_with_other_etag_sends_whole_file(server, validator):
    make_file(server.root, "ir.bin", CONTENT)
    etag = server.request("HEAD", "/ir.bin").headers["ETag"]
    headers = {"Range": "bytes=0-3", "If-Range": validator.format(etag=etag)}
    r = server.request("GET", "/ir.bin", headers=headers)
    assert r.status_code == 200
    assert r.content == CONTENT
    assert "Content-Range" not in r.headers


def test_if_range_with_matching_date_sends_range(server):
    make_file(server.root, "ir.bin", CONTENT)
    last_modified = server.request("HEAD", "/ir.bin").headers["Last-Modified"]
    assert last_modified == PAST_DATE
    headers = {"Range": "bytes=4-7", "If-Range": last_modified}
    r = server.request("GET", "/ir.bin", headers=headers)
    assert r.status_code == 206
    assert r.content == CONTENT[4:8]


@pytest.mark.parametrize("date", [EARLIER_DATE, LATER_DATE, "not a date"])
def test_if_range_with_other_date_sends_whole_file(server, date):
    make_file(server.root, "ir.bin", CONTENT)
    r = server.request("GET", "/ir.bin", headers={"Range": "bytes=4-7", "If-Range": date})
    assert r.status_code == 200
    assert r.content == CONTENT


def test_if_range_after_change_sends_new_whole_file(server):
    path = make_file(server.root, "ir.bin", CONTENT)
    etag = server.request("HEAD", "/ir.bin").headers["ETag"]
    path.write_bytes(b"new content")
    r = server.request("GET", "/ir.bin", headers={"Range": "bytes=0-2", "If-Range": etag})
    assert r.status_code == 200
    assert r.content == b"new content"


# -- conditionals -------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-197")
def test_if_match(server):
    make_file(server.root, "c.txt", b"content")
    etag = server.request("HEAD", "/c.txt").headers["ETag"]
    for value in ('"wrong"', f'"wrong", W/{etag}'):
        r = server.request("GET", "/c.txt", headers={"If-Match": value})
        assert r.status_code == 412, value
        assert b"content" not in r.content
    for value in (etag, f'"other", {etag}', "*"):
        r = server.request("GET", "/c.txt", headers={"If-Match": value})
        assert r.status_code == 200, value
        assert r.content == b"content"


def test_if_match_on_missing_file(server):
    r = server.request("GET", "/missing.txt", headers={"If-Match": "*"})
    # RFC 9110 13.2.1: preconditions are ignored when the answer would not be 2xx anyway.
    assert r.status_code == 404


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_if_none_match_current_etag_is_304(server, method):
    make_file(server.root, "c.txt", b"content")
    etag = server.request("HEAD", "/c.txt").headers["ETag"]
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = server.request(method, "/c.txt", headers={"If-None-Match": value})
        assert r.status_code == 304, value
        assert r.content == b""
        assert r.headers["ETag"] == etag
    r = server.request(method, "/c.txt", headers={"If-None-Match": '"other"'})
    assert r.status_code == 200
    assert r.content == (b"content" if method == "GET" else b"")


def test_304_carries_no_body_on_the_wire(server):
    make_file(server.root, "c.txt", b"content")
    etag = server.request("HEAD", "/c.txt").headers["ETag"]
    answer = server.raw(
        b"GET /c.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"If-None-Match: " + etag.encode("ascii") + b"\r\n\r\n"
    )
    status, _headers, rest = split_raw(answer)
    assert status.startswith("HTTP/1.1 304")
    assert rest == b""


def test_if_modified_since(server):
    make_file(server.root, "c.txt", b"content")
    for date in (PAST_DATE, LATER_DATE):
        r = server.request("GET", "/c.txt", headers={"If-Modified-Since": date})
        assert r.status_code == 304, date
        assert r.content == b""
    for date in (EARLIER_DATE, "not a date"):
        r = server.request("GET", "/c.txt", headers={"If-Modified-Since": date})
        assert r.status_code == 200, date
        assert r.content == b"content"


def test_if_none_match_takes_precedence_over_if_modified_since(server):
    make_file(server.root, "c.txt", b"content")
    # RFC 9110 13.2.2: If-Modified-Since is ignored when If-None-Match is present.
    headers = {"If-None-Match": '"other"', "If-Modified-Since": LATER_DATE}
    r = server.request("GET", "/c.txt", headers=headers)
    assert r.status_code == 200
    assert r.content == b"content"


def test_if_unmodified_since(server):
    make_file(server.root, "c.txt", b"content")
    r = server.request("GET", "/c.txt", headers={"If-Unmodified-Since": EARLIER_DATE})
    assert r.status_code == 412
    assert b"content" not in r.content
    for date in (PAST_DATE, LATER_DATE):
        r = server.request("GET", "/c.txt", headers={"If-Unmodified-Since": date})
        assert r.status_code == 200, date
        assert r.content == b"content"


def test_if_modified_since_after_change_is_200(server):
    path = make_file(server.root, "c.txt", b"content")
    since = server.request("HEAD", "/c.txt").headers["Last-Modified"]
    path.write_bytes(b"changed")
    os.utime(path, (PAST + 3600, PAST + 3600))
    r = server.request("GET", "/c.txt", headers={"If-Modified-Since": since})
    assert r.status_code == 200
    assert r.content == b"changed"
    assert r.headers["Last-Modified"] == formatdate(PAST + 3600, usegmt=True)


# -- collections and errors ---------------------------------------------------------------------

HOSTILE = "<script>alert(1)<script>&\"'.txt"  # '/' cannot be part of a file name


def test_get_collection_is_escaped_html_listing(server):
    make_file(server.root, "dir/" + HOSTILE, b"boo")
    make_file(server.root, "dir/plain.txt", b"plain")
    (server.root / "dir" / "<b>sub").mkdir()
    r = server.request("GET", "/dir/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0].strip() == "text/html"
    assert r.headers["Content-Length"] == str(len(r.content))
    page = parse_listing(r.text)
    # Read as a browser reads it: the names are text, no element of their own.
    assert {"script", "b"}.isdisjoint(page.tags)
    assert page.title == "Index of /dir/"
    assert page.names == ["<b>sub/", HOSTILE, "plain.txt"]
    # The link to the hostile file is percent-encoded and leads back to it.
    link = dict(page.links)[HOSTILE]
    assert link == "/dir/%3Cscript%3Ealert(1)%3Cscript%3E%26%22%27.txt"
    got = server.request("GET", link)
    assert got.status_code == 200
    assert got.content == b"boo"


def test_get_collection_without_trailing_slash_and_head(server):
    make_file(server.root, "dir/x.txt", b"x")
    r = server.request("GET", "/dir", allow_redirects=False)
    assert r.status_code == 200
    assert parse_listing(r.text).links == [("../", "/"), ("x.txt", "/dir/x.txt")]
    head = server.request("HEAD", "/dir/")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Type"].split(";")[0].strip() == "text/html"


def test_get_root_listing(server):
    make_file(server.root, "top.txt", b"t")
    r = server.request("GET", "/")
    assert r.status_code == 200
    assert parse_listing(r.text).links == [("top.txt", "/top.txt")]


@pytest.mark.parametrize("path", ["/missing.txt", "/no/such/file.txt", "/file.txt/below"])
def test_get_missing_is_404_without_traceback(server, path):
    make_file(server.root, "file.txt", b"f")
    r = server.request("GET", path)
    assert r.status_code == 404
    assert b"Traceback" not in r.content
    assert b'File "' not in r.content
    assert b".py" not in r.content
    assert str(server.root).encode() not in r.content


def test_a_fifo_is_refused_at_once_not_waited_on(server):
    # Opening a FIFO for reading waits for a writer: a GET would hold a thread forever.
    os.mkfifo(server.root / "pipe")
    for path in ("/pipe", "/sub/pipe"):
        if path == "/sub/pipe":
            (server.root / "sub").mkdir()
            os.mkfifo(server.root / "sub" / "pipe")
        r = server.request("GET", path, timeout=10)
        assert r.status_code == 403
        assert r.text == f"{path} is not a regular file\n"
    assert server.request("GET", "/", timeout=10).status_code == 200


def test_a_link_that_loops_is_not_found(server):
    # Followed, a loop fails with ELOOP, which was an unexpected error (500).
    (server.root / "loop").symlink_to("loop")
    (server.root / "sub").mkdir()
    (server.root / "sub" / "a").symlink_to("b")
    (server.root / "sub" / "b").symlink_to("a")
    for path in ("/loop", "/sub/a", "/loop/below"):
        r = server.request("GET", path)
        assert r.status_code == 404, (path, r.text)
        assert r.text == f"{path} does not exist\n"


def test_a_file_read_through_a_link_in_the_share_is_its_target(server):
    make_file(server.root, "sub/target.txt", b"target")
    (server.root / "via.txt").symlink_to("sub/target.txt")
    (server.root / "viadir").symlink_to("sub")
    assert server.request("GET", "/via.txt").content == b"target"
    assert server.request("GET", "/viadir/target.txt").content == b"target"
    # A link to a folder is a collection there, as the folder is.
    assert server.request("GET", "/viadir").status_code == 200
    assert "target.txt" in parse_listing(server.request("GET", "/viadir/").text).names


def test_temporary_upload_files_are_not_served_or_listed(server):
    make_file(server.root, ".davserver-tmp-abc123", b"partial upload")
    make_file(server.root, "real.txt", b"real")
    listing = server.request("GET", "/").text
    assert "real.txt" in listing
    assert "davserver-tmp" not in listing


# -- large files --------------------------------------------------------------------------------


def iter_pattern(total: int, block: int = 1 << 20) -> Iterator[bytes]:
    """Deterministic, non-repeating-per-MiB content."""
    for i in range(0, total, block):
        seed = hashlib.sha256(str(i).encode()).digest()
        yield (seed * (block // len(seed) + 1))[: min(block, total - i)]


def test_large_file_streams_back_identical(server):
    size = 20 * 1024 * 1024 + 7
    expected = hashlib.sha256()
    with open(server.root / "big.bin", "wb") as f:
        for chunk in iter_pattern(size):
            f.write(chunk)
            expected.update(chunk)
    r = server.request("GET", "/big.bin", stream=True)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(size)
    got = hashlib.sha256()
    received = 0
    for chunk in r.iter_content(1 << 20):
        got.update(chunk)
        received += len(chunk)
    assert received == size
    assert got.hexdigest() == expected.hexdigest()
    # A range deep inside the large file.
    r = server.request("GET", "/big.bin", headers={"Range": "bytes=15728640-15728649"})
    assert r.status_code == 206
    with open(server.root / "big.bin", "rb") as f:
        f.seek(15728640)
        assert r.content == f.read(10)


def test_get_hands_the_file_to_wsgi_file_wrapper_when_the_server_offers_one(server, caplog):
    # gunicorn offers wsgi.file_wrapper and then sends the file with sendfile(); the body
    # must reach it as the wrapper itself, not re-iterated by the app.
    import io
    import logging
    import wsgiref.util

    from davserver.app import DavApp

    (server.root / "big.bin").write_bytes(b"x" * 100_000)
    app = DavApp(server.services)
    environ = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": "/big.bin",
        "PATH_INFO": "/big.bin",
        "SCRIPT_NAME": "",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "x",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.file_wrapper": wsgiref.util.FileWrapper,
    }
    statuses = []
    with caplog.at_level(logging.INFO, logger="davserver.access"):
        body = app(environ, lambda status, headers: statuses.append(status))
    assert isinstance(body, wsgiref.util.FileWrapper)
    assert statuses == ["200 OK"]
    assert b"".join(body) == b"x" * 100_000
    body.close()
    assert any('"GET /big.bin" 200 100000' in r.getMessage() for r in caplog.records)
