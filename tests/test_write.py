"""Live-server tests for PUT, MKCOL and DELETE (RFC 9110 9.3.4, RFC 4918 9.3, 9.6, 9.7),
read-only shares and unknown methods."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from helpers import (
    COLOR,
    Refusing,
    color_of,
    lockinfo,
    make_tree,
    multistatus,
    parse_listing,
    proppatch_body,
    snapshot,
    temp_files,
    wait_for,
    with_provider,
)
from lxml import etree

from davserver.methods.read import EXISTING_METHODS
from davserver.provider import fs, trash

TEMP_PREFIX = ".davserver-tmp-"


def read_head(sock: socket.socket) -> bytes:
    """Bytes up to and including the first blank line, read one at a time (no over-read)."""
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            break
        data += byte
    return data


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


# -- PUT ----------------------------------------------------------------------------------------


def test_put_new_then_replace(server):
    r = server.request("PUT", "/new.txt", data=b"first")
    assert r.status_code == 201
    first_etag = r.headers["ETag"]
    assert first_etag.startswith('"')
    assert (server.root / "new.txt").read_bytes() == b"first"
    assert server.request("HEAD", "/new.txt").headers["ETag"] == first_etag

    r = server.request("PUT", "/new.txt", data=b"second, longer")
    assert r.status_code == 204
    assert r.content == b""
    assert r.headers["ETag"] not in ("", first_etag)
    assert (server.root / "new.txt").read_bytes() == b"second, longer"
    get = server.request("GET", "/new.txt")
    assert get.content == b"second, longer"
    assert get.headers["ETag"] == r.headers["ETag"]
    assert temp_files(server.root) == []


def test_put_empty_body_and_in_subcollection(server):
    (server.root / "sub").mkdir()
    r = server.request("PUT", "/sub/empty.bin", data=b"")
    assert r.status_code == 201
    assert (server.root / "sub" / "empty.bin").read_bytes() == b""


def test_put_non_ascii_name(server):
    r = server.request("PUT", "/%C3%A9t%C3%A9%20caf%C3%A9.txt", data=b"x")
    assert r.status_code == 201
    assert (server.root / "été café.txt").read_bytes() == b"x"


@pytest.mark.rfc4918("R-107")
def test_put_missing_parent_is_409(server):
    r = server.request("PUT", "/no/such/file.txt", data=b"x")
    assert r.status_code == 409
    assert list(server.root.iterdir()) == []


def test_put_below_a_file_is_409(server):
    make_tree(server.root, {"file.txt": b"f"})
    r = server.request("PUT", "/file.txt/child.txt", data=b"x")
    assert r.status_code == 409
    assert snapshot(server.root) == {"file.txt": b"f"}


@pytest.mark.rfc4918("R-109")
def test_put_onto_collection_is_405(server):
    make_tree(server.root, {"dir/inside.txt": b"i"})
    r = server.request("PUT", "/dir", data=b"x")
    assert r.status_code == 405
    assert r.text == "PUT cannot replace a collection\n"
    allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert "PUT" not in allow
    assert {"GET", "DELETE", "PROPFIND"} <= allow
    assert snapshot(server.root) == {"dir": None, "dir/inside.txt": b"i"}


def test_put_if_none_match_star(server):
    make_tree(server.root, {"exists.txt": b"old"})
    r = server.request("PUT", "/exists.txt", data=b"new", headers={"If-None-Match": "*"})
    assert r.status_code == 412
    assert (server.root / "exists.txt").read_bytes() == b"old"
    r = server.request("PUT", "/fresh.txt", data=b"new", headers={"If-None-Match": "*"})
    assert r.status_code == 201
    assert (server.root / "fresh.txt").read_bytes() == b"new"


def test_put_if_match(server):
    make_tree(server.root, {"f.txt": b"old"})
    etag = server.request("HEAD", "/f.txt").headers["ETag"]
    r = server.request("PUT", "/f.txt", data=b"new", headers={"If-Match": '"wrong"'})
    assert r.status_code == 412
    assert r.text == "a conditional header does not match the current state\n"
    assert (server.root / "f.txt").read_bytes() == b"old"
    r = server.request("PUT", "/f.txt", data=b"new", headers={"If-Match": etag})
    assert r.status_code == 204
    assert (server.root / "f.txt").read_bytes() == b"new"
    # The old etag no longer matches.
    r = server.request("PUT", "/f.txt", data=b"newer", headers={"If-Match": etag})
    assert r.status_code == 412
    assert (server.root / "f.txt").read_bytes() == b"new"


def test_put_if_match_on_missing_file_is_412(server):
    r = server.request("PUT", "/missing.txt", data=b"x", headers={"If-Match": "*"})
    assert r.status_code == 412
    assert not (server.root / "missing.txt").exists()


def test_put_with_content_range_writes_that_range_in_place(server):
    make_tree(server.root, {"f.txt": b"0123456789"})
    r = server.request("PUT", "/f.txt", data=b"ab", headers={"Content-Range": "bytes 2-3/10"})
    assert r.status_code == 204
    assert (server.root / "f.txt").read_bytes() == b"01ab456789"
    # A range that would leave a gap does not fit: 416 with the size to continue from.
    r = server.request("PUT", "/f.txt", data=b"z", headers={"Content-Range": "bytes 20-20/30"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */10"
    assert (server.root / "f.txt").read_bytes() == b"01ab456789"


@pytest.mark.parametrize(("content_range", "stored"), [(None, b"new"), ("bytes 3-5/6", b"oldnew")])
def test_put_onto_a_file_keeps_its_dead_properties(server, content_range, stored):
    make_tree(server.root, {"f.txt": b"old"})
    assert server.request("PROPPATCH", "/f.txt", data=proppatch_body()).status_code == 207
    headers = {"Content-Range": content_range} if content_range else {}
    r = server.request("PUT", "/f.txt", data=b"new", headers=headers)
    assert r.status_code == 204
    assert (server.root / "f.txt").read_bytes() == stored
    assert color_of(server, "/f.txt") == "red"


@pytest.mark.parametrize("content_range", [None, "bytes 0-2/3"])
def test_put_of_a_new_file_forgets_properties_left_by_one_removed_outside(server, content_range):
    make_tree(server.root, {"f.txt": b"old"})
    assert server.request("PROPPATCH", "/f.txt", data=proppatch_body()).status_code == 207
    (server.root / "f.txt").unlink()  # by another program: the server's store still has it
    headers = {"Content-Range": content_range} if content_range else {}
    r = server.request("PUT", "/f.txt", data=b"new", headers=headers)
    assert r.status_code == 201
    assert color_of(server, "/f.txt") is None


def test_adding_or_removing_a_member_needs_the_token_of_a_lock_on_its_collection(server):
    # RFC 4918 7.4: a depth-0 lock on a collection locks its membership, not its members'
    # content: a new file, or deleting one, needs the lock's token; replacing one does not.
    make_tree(server.root, {"d/old.txt": b"old"})
    r = server.request("LOCK", "/d/", data=lockinfo(), headers={"Depth": "0"})
    assert r.status_code == 200
    token = r.headers["Lock-Token"]
    assert server.request("PUT", "/d/new.txt", data=b"new").status_code == 423
    assert not (server.root / "d" / "new.txt").exists()
    assert server.request("PUT", "/d/old.txt", data=b"changed").status_code == 204
    tagged = f"<{server.url('/d/')}> ({token})"  # the lock is the collection's
    r = server.request("PUT", "/d/new.txt", data=b"new", headers={"If": tagged})
    assert r.status_code == 201
    assert snapshot(server.root, "d") == {"new.txt": b"new", "old.txt": b"changed"}
    assert server.request("DELETE", "/d/old.txt").status_code == 423
    assert server.request("DELETE", "/d/old.txt", headers={"If": tagged}).status_code == 204
    assert snapshot(server.root, "d") == {"new.txt": b"new"}


class Intruding:
    """Delegates, but another program writes "theirs" at a path just before the server gives
    an upload that name (a whole PUT's commit, a resumable upload's piece)."""

    def __init__(self, inner: Any, root: Any) -> None:
        self.inner, self.root = inner, root

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def intrude(self, path: str) -> None:
        (self.root / path.lstrip("/")).write_bytes(b"theirs")

    def stage(self, path: str, chunks: Any) -> Any:
        return _IntrudedUpload(self, path, self.inner.stage(path, chunks))

    def write_range(self, path: str, offset: int, piece: Any, *, create: bool = False) -> Any:
        self.intrude(path)
        return self.inner.write_range(path, offset, piece.staged, create=create)


class _IntrudedUpload:
    def __init__(self, provider: Intruding, path: str, staged: Any) -> None:
        self.provider, self.path, self.staged = provider, path, staged

    def __getattr__(self, name: str) -> Any:
        return getattr(self.staged, name)

    def commit(self, **options: Any) -> Any:
        self.provider.intrude(self.path)
        return self.staged.commit(**options)


def test_a_file_made_by_another_program_while_the_body_arrived(server):
    with_provider(server, lambda provider: Intruding(provider, server.root))
    # If-None-Match: * holds at the commit too: the other program's file is kept.
    r = server.request("PUT", "/a.txt", data=b"ours", headers={"If-None-Match": "*"})
    assert r.status_code == 412
    assert r.text == "something was created there meanwhile\n"
    assert (server.root / "a.txt").read_bytes() == b"theirs"
    # Without it, the upload replaces that file, as it would have a moment later; davserver
    # answers for the file it found missing when the PUT began.
    r = server.request("PUT", "/b.txt", data=b"ours")
    assert r.status_code == 201
    assert (server.root / "b.txt").read_bytes() == b"ours"
    # A resumable upload's first piece only ever makes a new file: it cannot continue one it
    # never saw.
    r = server.request("PUT", "/c.txt", data=b"ours", headers={"Content-Range": "bytes 0-3/4"})
    assert r.status_code == 412
    assert r.text == "something was created there meanwhile\n"
    assert (server.root / "c.txt").read_bytes() == b"theirs"
    assert temp_files(server.root) == []


class WholeFilesOnly:
    """A provider that cannot write part of a file, as an object store cannot."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in ("write_range", "truncate"):
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_put_content_range_where_the_storage_cannot_is_501(server):
    make_tree(server.root, {"f.txt": b"0123"})
    with_provider(server, WholeFilesOnly)
    r = server.request("PUT", "/f.txt", data=b"45", headers={"Content-Range": "bytes 4-5/6"})
    assert r.status_code == 501
    assert r.text == "this storage cannot write part of a file\n"
    assert (server.root / "f.txt").read_bytes() == b"0123"
    assert server.request("PUT", "/f.txt", data=b"012345").status_code == 204


def test_put_content_range_with_x_oc_mtime_dates_the_file(server):
    make_tree(server.root, {"f.bin": b"aaaa"})
    r = server.request(
        "PUT",
        "/f.bin",
        data=b"bbbb",
        headers={"Content-Range": "bytes 4-7/8", "X-OC-Mtime": "1500000000"},
    )
    assert r.status_code == 204
    assert r.headers["X-OC-Mtime"] == "accepted"
    assert r.headers["Last-Modified"] == "Fri, 14 Jul 2017 02:40:00 GMT"
    assert (server.root / "f.bin").read_bytes() == b"aaaabbbb"
    assert os.stat(server.root / "f.bin").st_mtime == 1500000000
    assert server.request("HEAD", "/f.bin").headers["ETag"] == r.headers["ETag"]


def test_put_content_range_cuts_a_longer_file_to_the_total(server):
    # A restarted upload of a file that became shorter: the total is the file's new size.
    make_tree(server.root, {"f.bin": b"x" * 10, "g.bin": b"x" * 10})
    r = server.request("PUT", "/f.bin", data=b"abcd", headers={"Content-Range": "bytes 0-3/4"})
    assert r.status_code == 204
    assert (server.root / "f.bin").read_bytes() == b"abcd"
    assert server.request("HEAD", "/f.bin").headers["ETag"] == r.headers["ETag"]
    # With the total unknown (*), the rest of the file stays.
    r = server.request("PUT", "/g.bin", data=b"abcd", headers={"Content-Range": "bytes 0-3/*"})
    assert r.status_code == 204
    assert (server.root / "g.bin").read_bytes() == b"abcd" + b"x" * 6


def test_put_content_range_of_a_new_file_starts_at_byte_0(server):
    r = server.request("PUT", "/new.bin", data=b"bc", headers={"Content-Range": "bytes 1-2/3"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */0"
    assert r.text == "the upload may continue at byte 0, not 1\n"
    assert not (server.root / "new.bin").exists()


MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("sent", "status", "answer"),
    [
        (2 * MIB, 201, ""),
        (2 * MIB + 1, 400, "the body is longer than its Content-Range\n"),
        (MIB + 10, 400, "the body is shorter than its Content-Range\n"),
    ],
)
def test_put_content_range_with_a_chunked_body_must_send_exactly_that_range(
    server, sent, status, answer
):
    """Without a Content-Length, the body's size is only known as it arrives (in pieces of up
    to 1 MiB each), and must add up to the range."""

    def body() -> Iterator[bytes]:
        for start in range(0, sent, 65536):
            yield b"z" * min(65536, sent - start)

    headers = {"Content-Range": f"bytes 0-{2 * MIB - 1}/{2 * MIB}"}
    r = server.request("PUT", "/big.bin", data=body(), headers=headers)
    assert r.status_code == status
    assert r.text == answer
    assert (server.root / "big.bin").exists() == (status == 201)
    assert temp_files(server.root) == []


@pytest.mark.rfc4918("R-258")
def test_put_chunked_body_is_stored_completely(server):
    pieces = [bytes([i % 251]) * (i * 977 + 1) for i in range(1, 60)]
    pieces.insert(10, b"")  # requests skips empty chunks; harmless either way
    expected = b"".join(pieces)

    def body() -> Iterator[bytes]:
        yield from pieces

    r = server.request("PUT", "/chunked.bin", data=body())
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 201
    assert (server.root / "chunked.bin").read_bytes() == expected
    # The connection (kept alive) is still in step: the next request works.
    r = server.request("GET", "/chunked.bin")
    assert r.status_code == 200
    assert r.content == expected


def test_put_chunked_body_on_raw_socket(server):
    request = (
        b"PUT /raw.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\n\r\n"
    )
    answer = server.raw(request)
    assert answer.startswith(b"HTTP/1.1 201"), answer
    assert (server.root / "raw.txt").read_bytes() == b"hello, world"


@pytest.mark.rfc4918("R-258")
def test_put_expect_100_continue(server):
    body = b"sent after the interim answer"
    head = (
        b"PUT /expect.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        interim = read_head(sock)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
        assert not (server.root / "expect.txt").exists()
        sock.sendall(body)
        final = read_all(sock)
    assert final.startswith(b"HTTP/1.1 201"), final
    assert (server.root / "expect.txt").read_bytes() == body


@pytest.mark.parametrize("existing", [True, False])
def test_cut_off_upload_leaves_old_file_and_no_temporary(server, existing):
    if existing:
        make_tree(server.root, {"target.bin": b"the old content"})
    total = 1_000_000
    head = (
        b"PUT /target.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Length: " + str(total).encode() + b"\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(head + b"x" * (total // 2))
        # The upload is under way: its temporary file is in the target's directory.
        assert wait_for(lambda: temp_files(server.root) != []), "the upload never started"
    finally:
        sock.close()
    assert wait_for(lambda: temp_files(server.root) == []), temp_files(server.root)
    if existing:
        assert snapshot(server.root) == {"target.bin": b"the old content"}
    else:
        assert snapshot(server.root) == {}
    r = server.request("GET", "/target.bin")
    assert r.status_code == (200 if existing else 404)
    if existing:
        assert r.content == b"the old content"


@pytest.mark.parametrize("method", ["PUT", "MKCOL"])
def test_reserved_temporary_name_is_refused(server, method):
    # Names with the upload prefix are hidden from listings and removed by the startup sweep,
    # so accepting one would store something that vanishes; it must be refused instead.
    r = server.request(
        method, "/" + TEMP_PREFIX + "mine", data=b"data" if method == "PUT" else None
    )
    assert r.status_code == 403
    assert snapshot(server.root) == {}


# -- MKCOL --------------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-090")
def test_mkcol(server):
    r = server.request("MKCOL", "/newdir")
    assert r.status_code == 201
    assert (server.root / "newdir").is_dir()
    r = server.request("MKCOL", "/newdir/")
    assert r.status_code == 405
    assert "Allow" in r.headers
    r = server.request("MKCOL", "/newdir/inner/")
    assert r.status_code == 201
    assert (server.root / "newdir" / "inner").is_dir()


def test_mkcol_forgets_what_a_folder_removed_outside_left_below_it(server):
    # A file another program then writes into the new folder must not take over the
    # properties of the one that was there before.
    make_tree(server.root, {"d/x.txt": b"old"})
    assert server.request("PROPPATCH", "/d/x.txt", data=proppatch_body()).status_code == 207
    shutil.rmtree(server.root / "d")  # by another program: the server's store still has it
    assert server.request("MKCOL", "/d/").status_code == 201
    (server.root / "d" / "x.txt").write_bytes(b"theirs")
    assert color_of(server, "/d/x.txt") is None


@pytest.mark.rfc4918("R-089")
def test_mkcol_on_existing_file_is_405(server):
    make_tree(server.root, {"f.txt": b"f"})
    r = server.request("MKCOL", "/f.txt")
    assert r.status_code == 405
    assert r.text == "something already exists there\n"
    assert r.headers["Allow"] == EXISTING_METHODS
    assert (server.root / "f.txt").read_bytes() == b"f"


def test_mkcol_checks_the_conditional_headers_against_what_is_there(server):
    # RFC 9110 13.1.1: If-Match * is false where nothing is, so nothing is created.
    r = server.request("MKCOL", "/new/", headers={"If-Match": "*"})
    assert r.status_code == 412
    assert not (server.root / "new").exists()
    # If-None-Match * is false where something is: 412, judged before the 405 of an existing
    # name, and true where nothing is.
    (server.root / "old").mkdir()
    r = server.request("MKCOL", "/old/", headers={"If-None-Match": "*"})
    assert r.status_code == 412
    r = server.request("MKCOL", "/new/", headers={"If-None-Match": "*"})
    assert r.status_code == 201
    assert snapshot(server.root) == {"new": None, "old": None}


@pytest.mark.rfc4918("R-091", "R-092")
def test_mkcol_missing_parent_is_409(server):
    r = server.request("MKCOL", "/a/b/c")
    assert r.status_code == 409
    assert list(server.root.iterdir()) == []


@pytest.mark.rfc4918("R-060", "R-094")
def test_mkcol_with_body_is_415_and_creates_nothing(server):
    r = server.request(
        "MKCOL",
        "/withbody",
        data=b'<?xml version="1.0"?><D:mkcol xmlns:D="DAV:"/>',
        headers={"Content-Type": "application/xml"},
    )
    assert r.status_code == 415
    assert not (server.root / "withbody").exists()
    # The connection is still usable, and an empty MKCOL then works.
    assert server.request("MKCOL", "/withbody").status_code == 201


# -- DELETE -------------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-098")
def test_delete_file(server):
    make_tree(server.root, {"f.txt": b"f", "other.txt": b"o"})
    r = server.request("DELETE", "/f.txt")
    assert r.status_code == 204
    assert snapshot(server.root) == {"other.txt": b"o"}
    assert server.request("GET", "/f.txt").status_code == 404


def test_delete_missing_is_404(server):
    assert server.request("DELETE", "/missing.txt").status_code == 404
    assert server.request("DELETE", "/no/such/dir/").status_code == 404


@pytest.mark.rfc4918("R-100")
def test_delete_collection_with_contents(server):
    make_tree(
        server.root,
        {"c/a.txt": b"a", "c/sub/b.txt": b"b", "c/sub/deep/er/d.txt": b"d", "keep.txt": b"k"},
        dirs=("c/empty",),
    )
    r = server.request("DELETE", "/c/")
    assert r.status_code == 204
    assert snapshot(server.root) == {"keep.txt": b"k"}


def test_delete_with_wrong_if_match_is_412(server):
    make_tree(server.root, {"f.txt": b"f"})
    r = server.request("DELETE", "/f.txt", headers={"If-Match": '"nope"'})
    assert r.status_code == 412
    assert (server.root / "f.txt").exists()


@pytest.mark.parametrize("depth", ["0", "1", "bogus"])
def test_delete_collection_with_depth_other_than_infinity_is_400(server, depth):
    make_tree(server.root, {"c/a.txt": b"a"})
    r = server.request("DELETE", "/c/", headers={"Depth": depth})
    assert r.status_code == 400
    assert snapshot(server.root) == {"c": None, "c/a.txt": b"a"}
    r = server.request("DELETE", "/c/", headers={"Depth": "infinity"})
    assert r.status_code == 204
    assert snapshot(server.root) == {}


def test_delete_collection_if_match_star(server):
    # RFC 9110 13.1.1: "*" matches whenever the resource has a current representation, which
    # a collection has (GET answers with its listing); it has no ETag, but needs none for "*".
    make_tree(server.root, {"c/a.txt": b"a"})
    r = server.request("DELETE", "/c/", headers={"If-Match": "*"})
    assert r.status_code == 204
    assert snapshot(server.root) == {}


def test_delete_collection_if_none_match_star_is_412(server):
    make_tree(server.root, {"c/a.txt": b"a"})
    r = server.request("DELETE", "/c/", headers={"If-None-Match": "*"})
    assert r.status_code == 412
    assert snapshot(server.root) == {"c": None, "c/a.txt": b"a"}


def test_delete_of_the_root_is_refused_and_deletes_nothing(server):
    make_tree(server.root, {"a.txt": b"a", "d/b.txt": b"b"}, dirs=("empty",))
    before = snapshot(server.root)
    r = server.request("DELETE", "/")
    assert r.status_code == 403
    assert r.text == "the shared root cannot be deleted\n"
    # A refused DELETE must not have emptied the share.
    assert snapshot(server.root) == before


PARTIAL_TREE = {
    "c/a.txt": b"a",
    "c/keep/locked.txt": b"locked",
    "c/keep/other.txt": b"other",
    "c/sub/b.txt": b"b",
    "c/sub/deeper/d.txt": b"d",
    "sibling.txt": b"s",
}


@pytest.mark.rfc4918("R-101", "R-105", "R-106")
def test_delete_collection_with_refused_members_is_207(server):
    make_tree(server.root, PARTIAL_TREE, dirs=("c/stuck",))
    with_provider(server, lambda inner: Refusing(inner, {"locked.txt", "stuck"}))
    r = server.request("DELETE", "/c/")
    assert r.status_code == 207
    assert r.headers["Content-Type"].split(";")[0].strip() in ("application/xml", "text/xml")
    # Only the members that failed, each with its own status; no 424 for their ancestors.
    assert multistatus(r.content) == {"/c/keep/locked.txt": 403, "/c/stuck/": 403}
    assert snapshot(server.root) == {
        "c": None,
        "c/keep": None,
        "c/keep/locked.txt": b"locked",
        "c/stuck": None,
        "sibling.txt": b"s",
    }


def test_delete_of_one_refused_file_is_403(server):
    make_tree(server.root, {"locked.txt": b"l"})
    with_provider(server, lambda inner: Refusing(inner, {"locked.txt"}))
    r = server.request("DELETE", "/locked.txt")
    assert r.status_code == 403
    assert (server.root / "locked.txt").read_bytes() == b"l"


class _OsRefusing:
    """Stands in for the `os` module inside davserver.provider.fs and .trash: unlink and rmdir
    raise the PermissionError the OS would for the chosen names; everything else is the real
    module."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def _check(self, path: Any) -> None:
        if os.path.basename(os.fspath(path)) in self.names:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    def unlink(self, path: Any, *args: Any, **kwargs: Any) -> None:
        self._check(path)
        os.unlink(path, *args, **kwargs)

    def remove(self, path: Any, *args: Any, **kwargs: Any) -> None:
        self._check(path)
        os.remove(path, *args, **kwargs)

    def rmdir(self, path: Any, *args: Any, **kwargs: Any) -> None:
        self._check(path)
        os.rmdir(path, *args, **kwargs)


def refuse(monkeypatch: pytest.MonkeyPatch, names: set[str]) -> None:
    """Make the provider meet a PermissionError for `names`, however it removes them."""
    for module in (fs, trash):
        monkeypatch.setattr(module, "os", _OsRefusing(names))


def test_delete_os_permission_error_is_per_member_403(server, monkeypatch):
    make_tree(server.root, PARTIAL_TREE, dirs=("c/stuck",))
    refuse(monkeypatch, {"locked.txt", "stuck"})
    r = server.request("DELETE", "/c/")
    assert r.status_code == 207
    assert multistatus(r.content) == {"/c/keep/locked.txt": 403, "/c/stuck/": 403}
    assert snapshot(server.root) == {
        "c": None,
        "c/keep": None,
        "c/keep/locked.txt": b"locked",
        "c/stuck": None,
        "sibling.txt": b"s",
    }


def test_delete_os_permission_error_on_the_target_is_403(server, monkeypatch):
    make_tree(server.root, {"locked.txt": b"l"})
    refuse(monkeypatch, {"locked.txt"})
    r = server.request("DELETE", "/locked.txt")
    assert r.status_code == 403
    assert (server.root / "locked.txt").exists()


# -- read-only share and unknown methods ---------------------------------------------------------


READONLY_BATCHES = [
    {"op": "mkcol", "path": "newdir/"},
    {"op": "delete", "path": "f.txt"},
    {"op": "copy", "path": "f.txt", "destination": "copy.txt"},
    {"op": "move", "path": "f.txt", "destination": "moved.txt"},
    {"op": "proppatch", "path": "f.txt", "set": {COLOR: "red"}},
    # A batch of propfind items alone is answered (it changes nothing): see test_review_batch.
]


def test_readonly_share_refuses_every_change(make_server):
    server = make_server(readonly=True)
    make_tree(server.root, {"f.txt": b"f", "dir/g.txt": b"g"})
    before = snapshot(server.root)
    json_type = {"Content-Type": "application/json"}
    attempts: list[tuple[str, str, dict[str, str], bytes]] = [
        ("PUT", "/f.txt", {}, b"changed"),
        ("PUT", "/new.txt", {}, b"new"),
        ("PUT", "/f.txt", {"Content-Range": "bytes 0-0/1"}, b"c"),
        ("DELETE", "/f.txt", {}, b""),
        ("DELETE", "/dir/", {}, b""),
        ("MKCOL", "/newdir", {}, b""),
        ("COPY", "/f.txt", {"Destination": server.url("/copy.txt")}, b""),
        ("COPY", "/dir/", {"Destination": server.url("/f.txt"), "Overwrite": "T"}, b""),
        ("MOVE", "/f.txt", {"Destination": server.url("/moved.txt")}, b""),
        ("PROPPATCH", "/f.txt", {"Content-Type": "application/xml"}, proppatch_body()),
        ("LOCK", "/f.txt", {"Content-Type": "application/xml"}, lockinfo("t")),
        ("LOCK", "/unmapped.txt", {"Content-Type": "application/xml"}, lockinfo("t")),
        ("UNLOCK", "/f.txt", {"Lock-Token": "<urn:uuid:0>"}, b""),
    ] + [
        ("POST", "/", json_type, json.dumps({"operations": [op]}).encode())
        for op in READONLY_BATCHES
    ]
    for method, path, headers, body in attempts:
        r = server.request(method, path, headers=headers, data=body)
        assert r.status_code == 403, (method, path, body, r.status_code)
    assert snapshot(server.root) == before
    # Reading still works.
    assert server.request("GET", "/f.txt").content == b"f"
    assert server.request("HEAD", "/f.txt").status_code == 200
    assert server.request("OPTIONS", "/").status_code == 200
    assert parse_listing(server.request("GET", "/dir/").text).names == ["g.txt"]
    r = server.request("PROPFIND", "/dir/", headers={"Depth": "1"})
    assert r.status_code == 207
    doc = etree.fromstring(r.content)
    hrefs = {unquote(h.text or "") for h in doc.iterfind("{DAV:}response/{DAV:}href")}
    assert hrefs == {"/dir/", "/dir/g.txt"}
    # And the dead property was never stored, nor a lock taken.
    assert color_of(server, "/f.txt") is None
    assert server.services.locks.around("/", server.services.clock()) == []


def test_post_that_is_not_a_json_batch_is_405(server):
    make_tree(server.root, {"f.txt": b"f"})
    r = server.request("POST", "/f.txt", data=b"body", headers={"Content-Type": "text/plain"})
    assert r.status_code == 405
    assert "POST" in r.headers["Allow"]  # POST exists: a JSON batch on a collection
    assert snapshot(server.root) == {"f.txt": b"f"}


@pytest.mark.parametrize("method", ["FOO", "PATCH", "SEARCH"])
def test_unknown_method_is_405_with_allow(server, method):
    make_tree(server.root, {"f.txt": b"f"})
    r = server.request(method, "/f.txt", data=b"body")
    assert r.status_code == 405
    allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "PUT", "PROPFIND", "LOCK"} <= allow
    assert method not in allow
    assert snapshot(server.root) == {"f.txt": b"f"}


def test_delete_of_a_large_tree_forgets_every_member(server):
    # Hundreds of members go to the stores in one call; each keeps its properties until then.
    files = {f"big/d{i % 3}/f{i:04d}.txt": b"x" for i in range(700)}
    make_tree(server.root, files)
    assert (
        server.request("PROPPATCH", "/big/d0/f0000.txt", data=proppatch_body()).status_code == 207
    )
    r = server.request("DELETE", "/big")
    assert r.status_code == 204
    assert not (server.root / "big").exists()
    assert server.services.props.get("/big/d0/f0000.txt") == {}
