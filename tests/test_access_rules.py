"""Access rules on every path through every method and every batch operation.

bob may read the share, write his own folder, and neither read `/pub/private` nor write
`/bob/ro` or `/bob/box/sealed`. A request that needs more than that anywhere it would read or
change is refused as a whole (403) and changes nothing: a COPY reads every member below its
source, a DELETE or MOVE changes every member below its path, an overwritten destination is
deleted first. Beside each refused folder lies one whose name starts with the same letters
(`/pub/priv`, `/pub/private-notes`, `/bob/r`), which no rule covers: a rule applies to its
path and below, never to a sibling that merely shares a prefix.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from conftest import LiveServer
from helpers import (
    lockinfo,
    make_tree,
    parse_listing,
    proppatch_body,
    snapshot,
    write_users,
)
from lxml import etree

BOB = ("bob", "bob-pw")
ALICE = ("alice", "alice-pw")
RULES = (
    ("/", "bob", "read"),
    ("/pub/private", "bob", "none"),
    ("/bob", "bob", "write"),
    ("/bob/ro", "bob", "read"),
    ("/bob/box/sealed", "bob", "read"),
)
TREE = {
    "pub/open.txt": b"open",
    "pub/private/s.txt": b"classified",
    "pub/private-notes/n.txt": b"notes",
    "pub/priv/p.txt": b"priv",
    "bob/own.txt": b"own",
    "bob/ro/keep.txt": b"keep",
    "bob/r/r.txt": b"r",
    "bob/box/b.txt": b"b",
    "bob/box/sealed/k.txt": b"k",
}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_users(tmp_path_factory.mktemp("users") / "htpasswd", dict([BOB, ALICE]))


@pytest.fixture
def ruled(make_server: Any, users: str) -> LiveServer:
    live: LiveServer = make_server(htpasswd=users, access=RULES)
    make_tree(live.root, TREE)
    return live


def as_user(live: LiveServer, user: tuple[str, str], method: str, path: str, **kwargs: Any) -> Any:
    kwargs.setdefault("timeout", 30)
    headers = dict(kwargs.pop("headers", {}))
    if headers.get("Destination", "").startswith("/"):
        headers["Destination"] = live.url(headers["Destination"])
    return requests.request(method, live.url(path), auth=user, headers=headers, **kwargs)


def batch(live: LiveServer, user: tuple[str, str], at: str, operations: list[Any]) -> Any:
    body = json.dumps({"operations": operations}).encode()
    return as_user(live, user, "POST", at, headers=JSON, data=body)


def dest(path: str, overwrite: str = "T", depth: str = "infinity") -> dict[str, Any]:
    return {"headers": {"Destination": path, "Overwrite": overwrite, "Depth": depth}}


LOCK_INFINITY = {"data": lockinfo("bob"), "headers": {"Depth": "infinity"}}
# Everything bob may not do, as (method, path, request keywords); each is refused with 403.
REFUSED: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/pub/private/s.txt", {}),
    ("HEAD", "/pub/private/s.txt", {}),
    ("GET", "/pub/private/", {}),
    ("PROPFIND", "/pub/private/", {"headers": {"Depth": "0"}}),
    ("PUT", "/pub/new.txt", {"data": b"x"}),
    ("PUT", "/bob/ro/keep.txt", {"data": b"x"}),
    ("PUT", "/bob/ro/new.txt", {"data": b"x"}),
    ("MKCOL", "/pub/d", {}),
    ("MKCOL", "/bob/ro/d", {}),
    ("DELETE", "/bob/ro/keep.txt", {}),
    ("DELETE", "/bob/ro", {}),
    ("DELETE", "/bob/box", {}),  # a read-only member below
    ("PROPPATCH", "/pub/open.txt", {"data": proppatch_body()}),
    ("PROPPATCH", "/bob/ro/keep.txt", {"data": proppatch_body()}),
    ("LOCK", "/pub/new.txt", {"data": lockinfo("bob")}),
    ("LOCK", "/bob/ro/keep.txt", {"data": lockinfo("bob")}),
    ("LOCK", "/bob/box", LOCK_INFINITY),  # it would keep others from writing in sealed/
    # COPY reads every member of its source: one bob may not read refuses it all.
    ("COPY", "/pub", dest("/bob/copy")),
    ("COPY", "/pub/private", dest("/bob/copy")),
    ("COPY", "/pub/private/s.txt", dest("/bob/s.txt")),
    # davserver's choice: a COPY needs read on the whole source tree even at Depth 0, when
    # only the collection and its properties are copied.
    ("COPY", "/pub", dest("/bob/copy", depth="0")),
    ("COPY", "/pub/open.txt", dest("/pub/copy.txt")),
    ("COPY", "/bob/own.txt", dest("/bob/ro/own.txt")),
    ("COPY", "/bob/own.txt", dest("/bob/ro/keep.txt")),
    ("COPY", "/bob/own.txt", dest("/bob/box")),  # the overwrite would delete sealed/
    ("MOVE", "/pub/open.txt", dest("/bob/open.txt")),
    ("MOVE", "/bob/box", dest("/bob/moved")),
    ("MOVE", "/bob/ro", dest("/bob/moved")),
    ("MOVE", "/bob/own.txt", dest("/bob/ro/own.txt")),
    ("MOVE", "/bob/own.txt", dest("/bob/box")),
    ("POST", "/pub/private/", {"headers": JSON, "data": b'{"operations": []}'}),
]


def case_id(method: str, path: str, kwargs: dict[str, Any]) -> str:
    headers = kwargs.get("headers", {})
    to = f" to {headers['Destination']}" if "Destination" in headers else ""
    depth = f" depth {headers['Depth']}" if "Depth" in headers else ""
    return f"{method} {path}{to}{depth}"


@pytest.mark.parametrize(("method", "path", "kwargs"), REFUSED, ids=[case_id(*c) for c in REFUSED])
def test_what_the_rules_refuse_is_403_and_changes_nothing(
    ruled: LiveServer, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    before = snapshot(ruled.root)
    response = as_user(ruled, BOB, method, path, **kwargs)
    assert response.status_code == 403, response.text
    assert b"classified" not in response.content
    assert snapshot(ruled.root) == before
    assert ruled.services.props.get(path.rstrip("/")) == {}


def test_unlock_of_a_lock_where_the_user_may_not_write_is_403(ruled: LiveServer) -> None:
    locked = as_user(ruled, ALICE, "LOCK", "/bob/ro/keep.txt", data=lockinfo("alice"))
    assert locked.status_code == 200
    token = locked.headers["Lock-Token"]
    unlock = as_user(ruled, BOB, "UNLOCK", "/bob/ro/keep.txt", headers={"Lock-Token": token})
    assert unlock.status_code == 403
    put = as_user(ruled, ALICE, "PUT", "/bob/ro/keep.txt", data=b"x")
    assert put.status_code == 423  # still locked


def test_every_batch_operation_follows_the_rules(ruled: LiveServer) -> None:
    # The same refusals, item by item, in a batch bob may send to the root (he reads it);
    # the items he may run beside them succeed.
    operations = [
        ({"op": "propfind", "path": "pub/private/s.txt"}, 403),
        ({"op": "propfind", "path": "pub/private-notes/n.txt"}, 200),
        ({"op": "copy", "path": "pub/", "destination": "bob/copy/"}, 403),
        ({"op": "copy", "path": "pub/private/s.txt", "destination": "bob/s.txt"}, 403),
        ({"op": "copy", "path": "pub/", "destination": "bob/copy0/", "depth": "0"}, 403),
        ({"op": "copy", "path": "bob/own.txt", "destination": "bob/ro/own.txt"}, 403),
        ({"op": "copy", "path": "bob/own.txt", "destination": "bob/box/"}, 403),
        ({"op": "move", "path": "bob/box/", "destination": "bob/moved/"}, 403),
        ({"op": "move", "path": "pub/open.txt", "destination": "bob/open.txt"}, 403),
        ({"op": "move", "path": "bob/own.txt", "destination": "bob/box/"}, 403),
        ({"op": "delete", "path": "bob/box/"}, 403),
        ({"op": "delete", "path": "bob/ro/keep.txt"}, 403),
        ({"op": "mkcol", "path": "bob/ro/d/"}, 403),
        ({"op": "mkcol", "path": "pub/d/"}, 403),
        ({"op": "proppatch", "path": "bob/ro/keep.txt", "set": {"{urn:t}x": "1"}}, 403),
        ({"op": "copy", "path": "pub/priv/", "destination": "bob/privcopy/"}, 201),
        ({"op": "delete", "path": "bob/r/"}, 204),
    ]
    before = snapshot(ruled.root)
    response = batch(ruled, BOB, "/", [op for op, _ in operations])
    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["status"] for r in results] == [status for _, status in operations]
    assert all(r["error"] == "forbidden" for r in results if r["status"] == 403)
    assert b"classified" not in response.content
    expected = {k: v for k, v in before.items() if k.split("/")[:2] != ["bob", "r"]}
    expected.update({"bob/privcopy": None, "bob/privcopy/p.txt": b"priv"})
    assert snapshot(ruled.root) == expected
    assert ruled.services.props.get("/bob/ro/keep.txt") == {}


# -- a rule covers its path and below, not a sibling sharing its prefix ----------------------


def test_a_rule_does_not_reach_a_sibling_whose_name_starts_alike(ruled: LiveServer) -> None:
    notes = as_user(ruled, BOB, "GET", "/pub/private-notes/n.txt")
    assert (notes.status_code, notes.content) == (200, b"notes")
    # /pub/private is not below /pub/priv: bob may copy all of it...
    copy = as_user(ruled, BOB, "COPY", "/pub/priv", **dest("/bob/privcopy"))
    assert copy.status_code == 201
    assert snapshot(ruled.root, "bob/privcopy") == {"p.txt": b"priv"}
    # ... and /bob/ro is not below /bob/r: he may write and delete all of that.
    assert as_user(ruled, BOB, "PUT", "/bob/r/new.txt", data=b"n").status_code == 201
    assert as_user(ruled, BOB, "DELETE", "/bob/r").status_code == 204
    assert not (ruled.root / "bob" / "r").exists()


def test_a_listing_shows_a_forbidden_folder_as_403_and_nothing_below(ruled: LiveServer) -> None:
    response = as_user(ruled, BOB, "PROPFIND", "/pub/", headers={"Depth": "infinity"})
    assert response.status_code == 207
    statuses = multistatus_or_propstat(response.content)
    assert statuses == {
        "/pub/": 200,
        "/pub/open.txt": 200,
        "/pub/private/": 403,
        "/pub/private-notes/": 200,
        "/pub/private-notes/n.txt": 200,
        "/pub/priv/": 200,
        "/pub/priv/p.txt": 200,
    }
    page = parse_listing(as_user(ruled, BOB, "GET", "/pub/").text)
    assert page.names == ["priv/", "private-notes/", "open.txt"]


def multistatus_or_propstat(content: bytes) -> dict[str, int]:
    """href -> the response's status, or 200 for one that carries properties."""
    found = {}
    for response in etree.fromstring(content).iter("{DAV:}response"):
        href = response.findtext("{DAV:}href") or ""
        status = response.findtext("{DAV:}status")
        found[href] = 200 if status is None else int(status.split()[1])
    return found
