"""Edge cases found by an adversarial review: shared locks, conditionals on every method, races
with creation, dates kept by MOVE, atomic PROPPATCH, stale properties, links onto or into
themselves, leftover uploads."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import LiveServer
from helpers import CopyBudget, color_of, lockinfo, proppatch_body, with_provider, write_users

from davserver.errors import InsufficientStorage


def lock(server: LiveServer, path: str, scope: str = "exclusive", **headers: str) -> str:
    """Lock the existing resource `path`; the bare token."""
    r = server.request(
        "LOCK", path, headers={"Timeout": "Second-600", **headers}, data=lockinfo(scope=scope)
    )
    assert r.status_code == 200, (r.status_code, r.text)
    return r.headers["Lock-Token"].strip("<>")


def test_shared_lock_holder_may_write_with_own_token(server: LiveServer) -> None:
    # RFC 4918 6.2: "any principal that has both access privileges and a valid lock can use
    # the locked resource"; 7.5: one token per locked resource. A second shared lock taken by
    # someone else must not lock out the first holder.
    (server.root / "f.txt").write_bytes(b"old")
    mine = lock(server, "/f.txt", scope="shared")
    lock(server, "/f.txt", scope="shared")
    r = server.request("PUT", "/f.txt", data=b"new", headers={"If": f"(<{mine}>)"})
    assert r.status_code == 204, r.status_code


ALICE = ("alice", "alice-Pa55")
BOB = ("bob", "b0b-secret")


@pytest.fixture
def ruled(make_server: Callable[..., Any], tmp_path: Path) -> LiveServer:
    """alice writes everywhere; bob reads everywhere, writes /bob but only reads /bob/ro."""
    htpasswd = write_users(tmp_path / "users", dict([ALICE, BOB]))
    live = make_server(
        htpasswd=htpasswd,
        anonymous="none",
        access=(
            ("/", "alice", "write"),
            ("/", "bob", "read"),
            ("/bob", "bob", "write"),
            ("/bob/ro", "bob", "read"),
        ),
    )
    (live.root / "bob" / "ro").mkdir(parents=True)
    (live.root / "bob" / "ro" / "keep.txt").write_bytes(b"keep")
    return live


def as_user(live: LiveServer, user: tuple[str, str], method: str, path: str, **kw: Any):
    kw.setdefault("timeout", 30)
    return requests.request(method, live.url(path), auth=user, **kw)


def test_depth_infinity_lock_needs_write_on_the_whole_tree(ruled: LiveServer) -> None:
    # bob may only read /bob/ro, so he may not lock it (not even from above) against alice.
    r = as_user(ruled, BOB, "LOCK", "/bob/", data=lockinfo(), headers={"Depth": "infinity"})
    assert r.status_code == 403, r.status_code
    put = as_user(ruled, ALICE, "PUT", "/bob/ro/keep.txt", data=b"alice")
    assert put.status_code == 204, put.status_code


def test_lock_with_if_match_star_does_not_create_a_resource(server: LiveServer) -> None:
    # RFC 4918 appendix D.1: "If-Match: *" keeps a LOCK from creating a new resource;
    # RFC 9110 13.1.1: If-Match: * is false when there is no current representation (412).
    r = server.request("LOCK", "/missing.txt", headers={"If-Match": "*"}, data=lockinfo())
    assert r.status_code == 412, r.status_code
    assert not (server.root / "missing.txt").exists()


@pytest.mark.parametrize("method", ["PROPPATCH", "LOCK"])
def test_if_match_is_evaluated_on_an_existing_resource(server: LiveServer, method: str) -> None:
    # RFC 9110 13.1.1: with a false If-Match the server MUST NOT perform the method.
    (server.root / "f.txt").write_bytes(b"x")
    body = proppatch_body() if method == "PROPPATCH" else lockinfo()
    r = server.request(method, "/f.txt", headers={"If-Match": '"stale"'}, data=body)
    assert r.status_code == 412, r.status_code
    assert color_of(server, "/f.txt") is None
    assert server.services.locks.covering("/f.txt", server.services.clock()) == []


def test_mkcol_with_if_match_star_on_unmapped_url_is_412(server: LiveServer) -> None:
    r = server.request("MKCOL", "/newdir", headers={"If-Match": "*"})
    assert r.status_code == 412, r.status_code
    assert not (server.root / "newdir").exists()


class PutRacesLock:
    """A provider that lets a concurrent PUT of `path` land right after the LOCK looked."""

    def __init__(self, inner: Any, root: Path, path: str) -> None:
        self.inner, self.root, self.path, self.raced = inner, root, path, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stat(self, path: str) -> Any:
        if path == self.path and not self.raced:
            self.raced = True
            try:
                return self.inner.stat(path)
            finally:
                (self.root / path.lstrip("/")).write_bytes(b"uploaded meanwhile")
        return self.inner.stat(path)


def test_lock_of_unmapped_url_never_truncates_a_file_created_meanwhile(server: LiveServer) -> None:
    # RFC 4918 7.3: LOCK creates an *empty* resource only where nothing is mapped; a file
    # written between the LOCK's look and its creation must not be replaced by zero bytes.
    with_provider(server, lambda inner: PutRacesLock(inner, server.root, "/race.txt"))
    r = server.request("LOCK", "/race.txt", data=lockinfo())
    # The file is locked as it is: 200, as for any existing resource, not 201 (created).
    assert r.status_code == 200, r.status_code
    assert (server.root / "race.txt").read_bytes() == b"uploaded meanwhile"
    assert server.request("PUT", "/race.txt", data=b"x").status_code == 423
    token = r.headers["Lock-Token"]
    put = server.request("PUT", "/race.txt", data=b"x", headers={"If": f"({token})"})
    assert put.status_code == 204


class NoRename:
    """A provider whose renames always cross a device boundary (EXDEV): MOVE falls back."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def move(self, src: str, dst: str) -> bool:
        return False


def test_move_keeps_the_modification_time_when_it_cannot_rename(server: LiveServer) -> None:
    # A MOVE is a rename for the client whatever the disks below: the date (and so what sync
    # clients compare) must not change because the destination is on another filesystem.
    (server.root / "f.txt").write_bytes(b"f")
    os.utime(server.root / "f.txt", (1_000_000, 1_000_000))
    with_provider(server, NoRename)
    r = server.request("MOVE", "/f.txt", headers={"Destination": server.url("/g.txt")})
    assert r.status_code == 201, r.status_code
    assert os.stat(server.root / "g.txt").st_mtime == 1_000_000


class FullPropertyStore:
    """A property store on a full disk: every write fails (SQLITE_FULL is a 507)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def patch(self, path: str, changes: Any) -> None:
        raise InsufficientStorage("no space left for properties and locks")


def test_proppatch_that_fails_to_store_leaves_the_date_alone(server: LiveServer) -> None:
    # RFC 4918 9.2: PROPPATCH is all or nothing. The date set through {DAV:}lastmodified is
    # one of its changes, so it must not stay changed when the rest could not be stored.
    (server.root / "f.txt").write_bytes(b"x")
    os.utime(server.root / "f.txt", (1_000_000, 1_000_000))
    services = server.services
    server.stop()
    server.start(services=dataclasses.replace(services, props=FullPropertyStore(services.props)))
    body = (
        '<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
        '<D:lastmodified>2000000</D:lastmodified><x:color xmlns:x="urn:t">red</x:color>'
        "</D:prop></D:set></D:propertyupdate>"
    )
    r = server.request("PROPPATCH", "/f.txt", data=body.encode())
    assert r.status_code == 507, r.status_code
    assert os.stat(server.root / "f.txt").st_mtime == 1_000_000


CHECKSUMS = "{http://owncloud.org/ns}checksums"


def test_a_new_file_does_not_inherit_properties_of_a_file_removed_out_of_band(
    server: LiveServer,
) -> None:
    # The share is a plain folder: a file deleted there (not through DAV) leaves its dead
    # properties in the store. A new file created later at that path is a new resource
    # (201) and must start without them, above all without the old oc:checksums, which
    # would describe other bytes.
    old = b"old content"
    sha1 = hashlib.sha1(old).hexdigest()
    put = server.request("PUT", "/f.txt", data=old, headers={"OC-Checksum": f"SHA1:{sha1}"})
    assert put.status_code == 201
    assert server.request("PROPPATCH", "/f.txt", data=proppatch_body()).status_code == 207
    (server.root / "f.txt").unlink()
    assert server.request("PUT", "/f.txt", data=b"new").status_code == 201
    assert color_of(server, "/f.txt") is None
    assert server.services.props.get("/f.txt", [CHECKSUMS]) == {}


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
def test_copy_or_move_onto_itself_through_a_link_loses_nothing(
    server: LiveServer, method: str
) -> None:
    # Links that stay inside the root are followed, so /alias/a.txt and /dir/a.txt are one
    # file. Overwriting one with the other first deletes the destination, which is the
    # source: the file must survive (RFC 4918 9.8.5 / 9.9.4: 403 when source and
    # destination are the same resource).
    (server.root / "dir").mkdir()
    (server.root / "dir" / "a.txt").write_bytes(b"precious")
    (server.root / "alias").symlink_to("dir")
    r = server.request(method, "/alias/a.txt", headers={"Destination": server.url("/dir/a.txt")})
    assert (server.root / "dir" / "a.txt").exists(), r.status_code
    assert (server.root / "dir" / "a.txt").read_bytes() == b"precious"


def test_copy_of_a_collection_into_itself_through_a_link_is_refused(server: LiveServer) -> None:
    # /alias is a link to /dir, so /alias/c/ lies inside /dir/: a collection cannot be copied
    # into itself (RFC 4918 9.8.5, 403). Without the check the walk meets its own copies and
    # recurses, /dir/c/c/c/..., until names get too long (minutes, and the disk fills).
    (server.root / "dir").mkdir()
    (server.root / "dir" / "a.txt").write_bytes(b"a")
    (server.root / "alias").symlink_to("dir")
    provider = with_provider(server, lambda inner: CopyBudget(inner, 40))
    r = server.request("COPY", "/dir/", headers={"Destination": server.url("/alias/c/")})
    assert not (server.root / "dir" / "c" / "c").exists(), (r.status_code, provider.copies)
    assert r.status_code == 403, r.status_code


def test_a_collection_holding_a_leftover_upload_can_be_deleted(server: LiveServer) -> None:
    # An upload a crash left behind is not a member; it must not make DELETE of its folder
    # fail after every visible member is gone.
    folder = server.root / "d"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a")
    (folder / ".davserver-tmp-crashed").write_bytes(b"half")
    assert server.request("DELETE", "/d").status_code == 204
    assert not folder.exists()
