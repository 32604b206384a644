"""Every check whether one path lies inside another, against a sibling whose name merely starts
with the same letters: /a and /ab, /src and /s, /out and /outer.

A check that compares strings without the separator takes such a sibling for a member. Links
out of the share (tests/test_security.py) and access rules (tests/test_access_rules.py) are
checked for it where they are tested; here: locks, the property and lock store, COPY and
MOVE into themselves, and the links a COPY follows.
"""

from __future__ import annotations

import os

from conftest import LiveServer
from helpers import (
    color_of,
    lockinfo,
    make_tree,
    multistatus,
    propfind_body,
    proppatch_body,
    snapshot,
)
from lxml import etree


def lock(server: LiveServer, path: str, depth: str = "infinity") -> str:
    """Lock the existing `path`; the Lock-Token header's value (`<urn:uuid:...>`)."""
    response = server.request("LOCK", path, headers={"Depth": depth}, data=lockinfo())
    assert response.status_code == 200, response.text
    return str(response.headers["Lock-Token"])


def set_color(server: LiveServer, path: str) -> None:
    assert server.request("PROPPATCH", path, data=proppatch_body()).status_code == 207


def test_a_depth_infinity_lock_does_not_cover_a_sibling_named_alike(server: LiveServer) -> None:
    make_tree(server.root, {"a/x.txt": b"x", "ab/f.txt": b"f"})
    lock(server, "/a")
    assert server.request("PUT", "/ab/f.txt", data=b"changed").status_code == 204
    assert server.request("PUT", "/ab/new.txt", data=b"new").status_code == 201
    assert server.request("PROPPATCH", "/ab", data=proppatch_body()).status_code == 207
    assert server.request("MKCOL", "/ab/sub").status_code == 201
    assert server.request("DELETE", "/ab/new.txt").status_code == 204
    lock(server, "/ab")  # no conflict with the lock on /a
    # The lock on /a still holds where it should.
    assert server.request("PUT", "/a/x.txt", data=b"changed").status_code == 423


def test_a_walk_over_both_tells_a_locked_folder_from_its_sibling(server: LiveServer) -> None:
    # A walk from their parent looks up the locks once and asks, for each member, which of
    # them cover it: /p/a's lock covers /p/a/x.txt, never /p/ab/f.txt.
    make_tree(server.root, {"p/a/x.txt": b"x", "p/ab/f.txt": b"f"})
    token = lock(server, "/p/a")
    discovery = server.request("PROPFIND", "/p/", headers={"Depth": "infinity"}, data=LOCKDISCOVERY)
    assert discovery.status_code == 207
    assert lock_tokens(discovery.content) == {
        "/p/": [],
        "/p/a/": [token[1:-1]],
        "/p/a/x.txt": [token[1:-1]],
        "/p/ab/": [],
        "/p/ab/f.txt": [],
    }
    response = server.request("DELETE", "/p")
    assert multistatus(response.content) == {"/p/a/": 423}
    assert snapshot(server.root, "p") == {"a": None, "a/x.txt": b"x"}


LOCKDISCOVERY = propfind_body("{DAV:}lockdiscovery")


def lock_tokens(content: bytes) -> dict[str, list[str]]:
    """href -> the tokens of the locks its lockdiscovery reports."""
    found = {}
    for response in etree.fromstring(content).iter("{DAV:}response"):
        href = response.findtext("{DAV:}href") or ""
        tokens = response.iterfind(".//{DAV:}activelock/{DAV:}locktoken/{DAV:}href")
        found[href] = [(t.text or "").strip() for t in tokens]
    return found


def test_the_store_keeps_what_a_sibling_named_alike_holds(server: LiveServer) -> None:
    # Properties and locks of /ab stay where they are whatever happens to /a: copied, moved,
    # deleted (each selects /a's subtree in one query).
    make_tree(server.root, {"a/x.txt": b"x", "ab/f.txt": b"f"})
    for path in ("/a", "/a/x.txt", "/ab", "/ab/f.txt"):
        set_color(server, path)
    token = lock(server, "/ab/f.txt", depth="0")
    assert server.request("COPY", "/a", headers={"Destination": "/c"}).status_code == 201
    assert server.request("MOVE", "/a", headers={"Destination": "/m"}).status_code == 201
    assert server.request("DELETE", "/m").status_code == 204
    for path in ("/c", "/c/x.txt", "/ab", "/ab/f.txt"):
        assert color_of(server, path) == "red", path
    # Nothing of /ab was carried along (to /cb, /mb) or lost.
    props = server.services.props
    assert [props.get(p) for p in ("/cb", "/cb/f.txt", "/mb", "/mb/f.txt")] == [{}] * 4
    assert server.request("PUT", "/ab/f.txt", data=b"changed").status_code == 423
    put = server.request("PUT", "/ab/f.txt", data=b"changed", headers={"If": f"({token})"})
    assert put.status_code == 204


def test_copy_and_move_beside_a_folder_named_alike_are_not_into_itself(
    server: LiveServer,
) -> None:
    # RFC 4918 9.8.5: only a destination inside the source (or the source inside the
    # destination) is refused (403); a sibling that shares a prefix is neither.
    make_tree(server.root, {"a/x.txt": b"x", "xy.txt": b"xy"})
    assert server.request("COPY", "/a", headers={"Destination": "/ab"}).status_code == 201
    assert server.request("MOVE", "/ab", headers={"Destination": "/abc"}).status_code == 201
    assert server.request("COPY", "/xy.txt", headers={"Destination": "/x"}).status_code == 201
    assert snapshot(server.root) == {
        "a": None,
        "a/x.txt": b"x",
        "abc": None,
        "abc/x.txt": b"x",
        "x": b"xy",
        "xy.txt": b"xy",
    }


def test_a_copy_follows_links_to_folders_named_like_its_source_or_destination(
    server: LiveServer,
) -> None:
    # A COPY follows a link to a folder in the share unless that would never end: a link to
    # where the walk is (a loop) or into or onto where the copy is written. /s, /o and /outer
    # are none of these for a copy of /src to /out, however their names begin.
    make_tree(server.root, {"s/1.txt": b"1", "o/2.txt": b"2", "outer/3.txt": b"3", "src/f": b""})
    for name, target in (("l1", "../s"), ("l2", "../o"), ("l3", "../outer")):
        os.symlink(target, server.root / "src" / name)
    response = server.request("COPY", "/src", headers={"Destination": "/out"})
    assert response.status_code == 201, response.text
    assert snapshot(server.root, "out") == {
        "f": b"",
        "l1": None,
        "l1/1.txt": b"1",
        "l2": None,
        "l2/2.txt": b"2",
        "l3": None,
        "l3/3.txt": b"3",
    }
