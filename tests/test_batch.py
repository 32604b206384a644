"""Live-server tests for the JSON batch endpoint (issue 8): POST {"operations": [...]} to a
collection, a 207 with each operation's own outcome, as JSON or as a <D:multistatus>.

Each operation must behave exactly as the WebDAV method it stands for; the hypothesis test at the
end runs random batches on one server and the same operations as single WebDAV requests on a
second server with an identical tree, lock and properties, and compares everything.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests
from conftest import LiveServer
from helpers import (
    COLOR,
    Pausing,
    Refusing,
    color_of,
    lockinfo,
    make_tree,
    multistatus,
    post_batch,
    prop_xml,
    propfind_body,
    proppatch_body,
    shared_server,
    snapshot,
    wait_for,
    with_provider,
    write_users,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from test_copymove import RefusingCopy

from davserver import paths, xmlout
from davserver.errors import DavError
from davserver.methods import batch

D = "{DAV:}"
JSON = {"Content-Type": "application/json"}
SHAPE = "{urn:t}shape"


# -- helpers ------------------------------------------------------------------------------------


def run(server: Any, operations: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """POST a batch that must be accepted; the parsed JSON answer, checked for its frame."""
    response = post_batch(server, operations, **kwargs)
    assert response.status_code == 207, response.text
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    document = response.json()
    results = document["results"]
    assert [r["index"] for r in results] == list(range(len(operations)))
    assert [r["op"] for r in results] == [op["op"] for op in operations]
    assert [r["path"] for r in results] == [op["path"] for op in operations]
    failed = sum(1 for r in results if not (200 <= r["status"] < 300 and r["status"] != 207))
    assert document["summary"] == {
        "total": len(operations),
        "succeeded": len(operations) - failed,
        "failed": failed,
    }
    return document


def statuses(document: dict[str, Any]) -> list[int]:
    return [r["status"] for r in document["results"]]


def lock(server: Any, path: str, depth: str = "infinity") -> str:
    response = server.request(
        "LOCK",
        path,
        headers={"Content-Type": "application/xml", "Depth": depth, "Timeout": "Second-3600"},
        data=lockinfo("batch-test"),
    )
    assert response.status_code == 200, response.text  # an existing resource
    return response.headers["Lock-Token"].strip("<>")


def dead_props(server: Any, path: str) -> dict[str, str]:
    return server.services.props.get(path)


def prop_value(xml: str) -> str:
    element = etree.fromstring(f'<w xmlns:D="DAV:">{xml}</w>')[0]
    return element.text or ""


# -- each operation succeeding --------------------------------------------------------------


def test_every_operation_succeeds_with_results_in_order(server):
    make_tree(
        server.root,
        {
            "old/report.pdf": b"%PDF",
            "draft.txt": b"draft",
            "photos/raw/x.jpg": b"jpeg",
            "photos/y.jpg": b"y",
            "a.txt": b"aaa",
            "docs/a.txt": b"12345",
        },
        ("archive", "backup"),
    )
    operations = [
        {"op": "delete", "path": "old/report.pdf"},
        {"op": "move", "path": "draft.txt", "destination": "archive/draft.txt", "overwrite": False},
        {"op": "copy", "path": "photos/", "destination": "backup/photos/", "depth": "infinity"},
        {"op": "mkcol", "path": "new folder/"},
        {
            "op": "proppatch",
            "path": "a.txt",
            "set": {COLOR: "red & <blue>"},
            "remove": ["{urn:t}old"],
        },
        {
            "op": "propfind",
            "path": "docs/a.txt",
            "props": ["{DAV:}getcontentlength", "{DAV:}getetag"],
        },
    ]
    document = run(server, operations)
    results = document["results"]
    assert statuses(document) == [204, 201, 201, 201, 200, 200]
    assert [r["href"] for r in results] == [
        "/old/report.pdf",
        "/draft.txt",
        "/photos/",
        "/new%20folder/",
        "/a.txt",
        "/docs/a.txt",
    ]
    for result in results:
        assert "error" not in result and "members" not in result, result
    assert document["summary"] == {"total": 6, "succeeded": 6, "failed": 0}

    etag = server.request("HEAD", "/docs/a.txt").headers["ETag"]
    assert results[5]["props"] == {"{DAV:}getcontentlength": "5", "{DAV:}getetag": etag}
    assert results[5]["missing"] == []

    files = snapshot(server.root)
    assert "old/report.pdf" not in files and "old" in files
    assert "draft.txt" not in files and files["archive/draft.txt"] == b"draft"
    assert files["backup/photos/raw/x.jpg"] == b"jpeg" and files["photos/raw/x.jpg"] == b"jpeg"
    assert files["backup/photos/y.jpg"] == b"y"
    assert files["new folder"] is None
    assert prop_value(dead_props(server, "/a.txt")[COLOR]) == "red & <blue>"
    # The property is the same one a WebDAV client sees.
    assert color_of(server, "/a.txt") == "red & <blue>"


def test_hrefs_are_percent_encoded_and_collections_keep_their_slash(server):
    make_tree(server.root, {"sp ace/é.txt": b"x", "100%.txt": b"y"})
    operations = [
        {"op": "propfind", "path": "sp ace/é.txt", "props": ["{DAV:}getcontentlength"]},
        {"op": "propfind", "path": "sp ace/", "props": ["{DAV:}resourcetype"]},
        {"op": "delete", "path": "100%.txt"},
        {"op": "mkcol", "path": "neu/"},
        {"op": "mkcol", "path": "neu/ü"},
    ]
    results = run(server, operations)["results"]
    assert [r["status"] for r in results] == [200, 200, 204, 201, 201]
    assert [r["href"] for r in results] == [
        "/sp%20ace/%C3%A9.txt",
        "/sp%20ace/",
        "/100%25.txt",
        "/neu/",
        "/neu/%C3%BC",
    ]
    assert "collection" in results[1]["props"]["{DAV:}resourcetype"]
    assert (server.root / "neu" / "ü").is_dir()


def test_copy_and_move_over_an_existing_destination_answer_204(server):
    make_tree(server.root, {"a.txt": b"new a", "b.txt": b"new b", "x.txt": b"old", "y.txt": b"o"})
    document = run(
        server,
        [
            {"op": "copy", "path": "a.txt", "destination": "x.txt"},
            {"op": "move", "path": "b.txt", "destination": "y.txt", "overwrite": True},
            {"op": "copy", "path": "a.txt", "destination": "z.txt", "depth": "0"},
        ],
    )
    assert statuses(document) == [204, 204, 201]
    assert snapshot(server.root) == {
        "a.txt": b"new a",
        "x.txt": b"new a",
        "y.txt": b"new b",
        "z.txt": b"new a",
    }


def test_copy_depth_zero_copies_only_the_collection(server):
    make_tree(server.root, {"src/a.txt": b"a"})
    run(server, [{"op": "copy", "path": "src/", "destination": "dst/", "depth": "0"}])
    assert (server.root / "dst").is_dir()
    assert list((server.root / "dst").iterdir()) == []


def test_propfind_with_missing_names_and_allprop(server):
    make_tree(server.root, {"f.txt": b"hello"}, ("coll",))
    patched = run(server, [{"op": "proppatch", "path": "f.txt", "set": {COLOR: "green"}}])
    assert statuses(patched) == [200]
    document = run(
        server,
        [
            {
                "op": "propfind",
                "path": "f.txt",
                "props": ["{DAV:}getcontentlength", COLOR, "{urn:t}nope", "{DAV:}nope"],
            },
            {"op": "propfind", "path": "f.txt"},
            {"op": "propfind", "path": "coll/"},
        ],
    )
    named, every, coll = document["results"]
    assert named["status"] == 200
    assert named["props"] == {"{DAV:}getcontentlength": "5", COLOR: "green"}
    assert sorted(named["missing"]) == ["{DAV:}nope", "{urn:t}nope"]

    assert every["status"] == 200 and every["missing"] == []
    props = every["props"]
    assert props["{DAV:}getcontentlength"] == "5"
    assert props[COLOR] == "green"
    assert props["{DAV:}getetag"] == server.request("HEAD", "/f.txt").headers["ETag"]
    for name in ("{DAV:}getlastmodified", "{DAV:}resourcetype", "{DAV:}displayname"):
        assert name in props, props
    assert props["{DAV:}resourcetype"] == ""
    assert coll["href"] == "/coll/"
    assert "collection" in coll["props"]["{DAV:}resourcetype"]
    assert "{DAV:}getcontentlength" not in coll["props"]


def test_propfind_reports_the_locks_a_propfind_reports(make_server):
    # A lock's entry in lockdiscovery is the one property made of the request (the lock root's
    # href, under the prefix clients use) and of the clock (the time the lock has left); a
    # depth-infinity lock on a folder covers its members too.
    live = make_server(prefix="/dav", prefix_mode="keep")
    now = [time.time()]
    services = dataclasses.replace(live.services, clock=lambda: now[0])
    live.stop()
    live.start(services=services)
    make_tree(live.root, {"f.txt": b"f", "coll/in.txt": b"i", "free.txt": b"x"})
    file_token = lock(live, "/dav/f.txt", depth="0")
    folder_token = lock(live, "/dav/coll/")
    now[0] += 60

    def activelock(depth: str, token: str, root: str) -> str:
        return (
            "<D:activelock><D:locktype><D:write/></D:locktype>"
            "<D:lockscope><D:exclusive/></D:lockscope>"
            f"<D:depth>{depth}</D:depth>"
            # The owner as LOCK stored it: a fragment that declares its own namespace.
            '<D:owner xmlns:D="DAV:">batch-test</D:owner>'
            "<D:timeout>Second-3540</D:timeout>"
            f"<D:locktoken><D:href>{token}</D:href></D:locktoken>"
            f"<D:lockroot><D:href>{root}</D:href></D:lockroot></D:activelock>"
        )

    named = {"props": ["{DAV:}lockdiscovery"]}
    document = run(
        live,
        [
            {"op": "propfind", "path": "f.txt", **named},
            {"op": "propfind", "path": "coll/in.txt", **named},
            {"op": "propfind", "path": "coll/"},
            {"op": "propfind", "path": "free.txt", **named},
        ],
        at="/dav/",
    )
    results = document["results"]
    assert [r["href"] for r in results] == [
        "/dav/f.txt",
        "/dav/coll/in.txt",
        "/dav/coll/",
        "/dav/free.txt",
    ]
    in_folder = activelock("infinity", folder_token, "/dav/coll/")
    assert [r["props"].get("{DAV:}lockdiscovery") for r in results] == [
        activelock("0", file_token, "/dav/f.txt"),
        in_folder,
        in_folder,
        "",
    ]


def test_propfind_of_the_collection_it_was_sent_to_reports_its_dead_properties(server):
    # The store is asked which members of a folder hold dead properties, and the root is no
    # member of any folder: the resource a propfind starts from is always asked directly
    # (a dead property of a file or a subfolder is found either way).
    make_tree(server.root, {"f.txt": b"f"})
    document = run(
        server,
        [
            {"op": "proppatch", "path": "/", "set": {COLOR: "blue"}},
            {"op": "propfind", "path": "/", "props": [COLOR]},
            {"op": "propfind", "path": "/"},
        ],
    )
    assert statuses(document) == [200, 200, 200]
    _, named, every = document["results"]
    assert (named["href"], named["props"], named["missing"]) == ("/", {COLOR: "blue"}, [])
    assert every["props"][COLOR] == "blue"
    assert color_of(server, "/") == "blue"


# -- each failure ------------------------------------------------------------------------------


def test_missing_sources_are_404_and_the_rest_still_runs(server):
    make_tree(server.root, {"here.txt": b"x"})
    document = run(
        server,
        [
            {"op": "delete", "path": "gone.txt"},
            {"op": "move", "path": "gone.txt", "destination": "g.txt"},
            {"op": "copy", "path": "gone/", "destination": "g/"},
            {"op": "proppatch", "path": "gone.txt", "set": {COLOR: "x"}},
            {"op": "propfind", "path": "gone.txt"},
            {"op": "mkcol", "path": "no/parent/"},
            {"op": "delete", "path": "here.txt"},
        ],
    )
    results = document["results"]
    assert statuses(document) == [404, 404, 404, 404, 404, 409, 204]
    assert [r["error"] for r in results[:5]] == ["not-found"] * 5
    assert results[5]["error"] == "conflict"
    # Each says what was missing, in the words of the WebDAV method it stands for.
    assert [r["message"] for r in results[:3]] == [
        "/gone.txt does not exist",
        "/gone.txt does not exist",
        "/gone does not exist",
    ]
    assert all(r["message"] for r in results[:6])
    assert document["summary"] == {"total": 7, "succeeded": 1, "failed": 6}
    assert snapshot(server.root) == {}


def test_locked_target_without_its_token_is_423(server):
    make_tree(server.root, {"locked.txt": b"L", "free.txt": b"F", "lc/in.txt": b"i"})
    lock(server, "/locked.txt")
    lock(server, "/lc/")
    document = run(
        server,
        [
            {"op": "delete", "path": "locked.txt"},
            {"op": "proppatch", "path": "locked.txt", "set": {COLOR: "x"}},
            {"op": "copy", "path": "free.txt", "destination": "locked.txt"},
            {"op": "move", "path": "free.txt", "destination": "lc/free.txt"},
            {"op": "mkcol", "path": "lc/sub/"},
            {"op": "delete", "path": "lc/in.txt"},
            {"op": "propfind", "path": "locked.txt", "props": ["{DAV:}getcontentlength"]},
        ],
    )
    results = document["results"]
    assert statuses(document) == [423, 423, 423, 423, 423, 423, 200]
    for result in results[:6]:
        assert result["error"] == "lock-token-submitted", result
    assert snapshot(server.root) == {
        "locked.txt": b"L",
        "free.txt": b"F",
        "lc": None,
        "lc/in.txt": b"i",
    }
    assert dead_props(server, "/locked.txt") == {}


def test_locked_members_and_locked_collections_refuse_every_tree_item(server):
    # The lock checks of COPY and MOVE as the WebDAV methods make them: a locked member below
    # an overwritten destination or a moved source, and the membership of a collection locked
    # at depth 0. Each is refused whole (423) before anything changes.
    tree = {"keep/a.txt": b"a", "keep/sub/locked.txt": b"L", "src/s.txt": b"s", "z0/m.txt": b"m"}
    make_tree(server.root, {**tree, "free.txt": b"F"})
    lock(server, "/keep/sub/locked.txt", depth="0")
    lock(server, "/z0/", depth="0")
    before = snapshot(server.root)
    document = run(
        server,
        [
            {"op": "copy", "path": "free.txt", "destination": "keep/"},
            {"op": "copy", "path": "src/", "destination": "keep/"},
            {"op": "move", "path": "free.txt", "destination": "keep/"},
            {"op": "move", "path": "src/", "destination": "keep/"},
            {"op": "move", "path": "keep/", "destination": "elsewhere/"},
            {"op": "move", "path": "z0/m.txt", "destination": "m.txt"},
            {"op": "copy", "path": "free.txt", "destination": "z0/free.txt"},
            {"op": "delete", "path": "z0/m.txt"},
        ],
    )
    assert statuses(document) == [423] * 8
    assert all(r["error"] == "lock-token-submitted" for r in document["results"])
    assert snapshot(server.root) == before


def test_locked_target_with_its_token_in_the_if_header(server):
    make_tree(server.root, {"locked.txt": b"L", "other.txt": b"O"})
    token = lock(server, "/locked.txt")
    # A tagged list names the locked resource; the If header is evaluated for it.
    document = run(
        server,
        [
            {"op": "proppatch", "path": "locked.txt", "set": {COLOR: "x"}},
            {"op": "copy", "path": "other.txt", "destination": "locked.txt"},
            {"op": "delete", "path": "locked.txt"},
        ],
        headers={"If": f"<{server.url('/locked.txt')}> (<{token}>)"},
    )
    assert statuses(document) == [200, 204, 204]
    assert snapshot(server.root) == {"other.txt": b"O"}


def test_batch_to_a_locked_collection_with_an_untagged_token(server):
    make_tree(server.root, {"lc/a.txt": b"a", "lc/b.txt": b"b"})
    token = lock(server, "/lc/")
    without = run(server, [{"op": "delete", "path": "a.txt"}], at="/lc/")
    assert statuses(without) == [423]
    document = run(
        server,
        [
            {"op": "delete", "path": "a.txt"},
            {"op": "move", "path": "b.txt", "destination": "c.txt"},
            {"op": "mkcol", "path": "d/"},
        ],
        at="/lc/",
        headers={"If": f"(<{token}>)"},
    )
    assert statuses(document) == [204, 201, 201]
    assert snapshot(server.root) == {"lc": None, "lc/c.txt": b"b", "lc/d": None}


def test_locked_target_with_its_token_in_lock_tokens(server):
    make_tree(server.root, {"locked.txt": b"L", "lc/in.txt": b"i", "f.txt": b"f"})
    file_token = lock(server, "/locked.txt")
    coll_token = lock(server, "/lc/")
    document = run(
        server,
        [
            {"op": "proppatch", "path": "locked.txt", "set": {COLOR: "y"}},
            {"op": "delete", "path": "locked.txt"},
            {"op": "move", "path": "f.txt", "destination": "lc/f.txt"},
            {"op": "mkcol", "path": "lc/sub/"},
        ],
        lock_tokens=[f"{file_token}", coll_token],
    )
    assert statuses(document) == [200, 204, 201, 201]
    assert snapshot(server.root) == {
        "lc": None,
        "lc/in.txt": b"i",
        "lc/f.txt": b"f",
        "lc/sub": None,
    }
    # A token given for one request is not remembered for the next.
    again = run(server, [{"op": "mkcol", "path": "lc/other/"}])
    assert statuses(again) == [423]


def test_existing_destination_with_overwrite_false_is_412(server):
    make_tree(server.root, {"draft.txt": b"new", "archive/draft.txt": b"old", "c/x": b"x"})
    (server.root / "d").mkdir()
    document = run(
        server,
        [
            {
                "op": "move",
                "path": "draft.txt",
                "destination": "archive/draft.txt",
                "overwrite": False,
            },
            {"op": "copy", "path": "c/", "destination": "d/", "overwrite": False},
        ],
    )
    move, copy = document["results"]
    assert statuses(document) == [412, 412]
    assert move["error"] == copy["error"] == "precondition-failed"
    assert move["href"] == "/draft.txt"
    # The message names the destination as the batch gave it (issue 8's example).
    assert move["message"] == "archive/draft.txt exists and overwrite is false"
    assert copy["message"] == "d/ exists and overwrite is false"
    assert snapshot(server.root) == {
        "draft.txt": b"new",
        "archive": None,
        "archive/draft.txt": b"old",
        "c": None,
        "c/x": b"x",
        "d": None,
    }


def test_read_only_path_for_a_user_is_403_for_that_item_only(make_server, tmp_path):
    htpasswd = write_users(tmp_path / "htpasswd", {"alice": "alice-pw", "bob": "bob-pw"})
    live = make_server(htpasswd=htpasswd, access=(("/", "*", "write"), ("/ro", "bob", "read")))
    make_tree(live.root, {"ro/f.txt": b"ro", "ro/g.txt": b"g", "mine.txt": b"m", "x.txt": b"x"})
    bob = ("bob", "bob-pw")
    anonymous = post_batch(live, [{"op": "delete", "path": "x.txt"}])
    assert anonymous.status_code == 401
    document = run(
        live,
        [
            {"op": "delete", "path": "ro/f.txt"},
            {"op": "mkcol", "path": "ok/"},
            {"op": "proppatch", "path": "ro/g.txt", "set": {COLOR: "x"}},
            {"op": "copy", "path": "ro/g.txt", "destination": "copied.txt"},
            {"op": "move", "path": "mine.txt", "destination": "ro/mine.txt"},
            {"op": "copy", "path": "x.txt", "destination": "ro/x.txt"},
            {"op": "mkcol", "path": "ro/new/"},
            {"op": "propfind", "path": "ro/f.txt", "props": ["{DAV:}getcontentlength"]},
            {"op": "delete", "path": "x.txt"},
        ],
        headers={"Authorization": requests.auth._basic_auth_str(*bob)},
    )
    results = document["results"]
    assert statuses(document) == [403, 201, 403, 201, 403, 403, 403, 200, 204]
    for index in (0, 2, 4, 5, 6):
        assert results[index]["error"] == "forbidden"
    assert snapshot(live.root) == {
        "ro": None,
        "ro/f.txt": b"ro",
        "ro/g.txt": b"g",
        "ok": None,
        "copied.txt": b"g",
        "mine.txt": b"m",
    }
    assert dead_props(live, "/ro/g.txt") == {}
    # alice may write there: the rule is bob's alone.
    alice = run(
        live,
        [{"op": "delete", "path": "ro/f.txt"}],
        headers={"Authorization": requests.auth._basic_auth_str("alice", "alice-pw")},
    )
    assert statuses(alice) == [204]


def test_a_batch_copy_only_reads_its_source(server):
    """A batch claims a copy's source as a COPY does, shared (davserver.ordering): another
    COPY of the same source runs beside it rather than waiting for the batch to end."""
    make_tree(server.root, {"src/a.txt": b"a", "src/b.txt": b"b"})
    slow = with_provider(server, Pausing)
    with ThreadPoolExecutor(1) as pool:
        batched = pool.submit(
            post_batch, server, [{"op": "copy", "path": "src/", "destination": "b/"}]
        )
        assert slow.pausing.wait(30)
        copied = requests.request(
            "COPY", server.url("/src/"), headers={"Destination": server.url("/c/")}, timeout=30
        )
        answer = batched.result()
    assert copied.status_code == 201
    assert answer.status_code == 207
    assert [r["status"] for r in answer.json()["results"]] == [201]
    assert slow.met
    for folder in ("b", "c", "src"):
        assert snapshot(server.root, folder) == {"a.txt": b"a", "b.txt": b"b"}


def test_paths_escaping_the_collection_are_403(server):
    make_tree(server.root, {"top.txt": b"t", "sub/a.txt": b"a", "sub/b.txt": b"b"})
    operations = [
        {"op": "delete", "path": "../top.txt"},
        {"op": "delete", "path": "a.txt/../../top.txt"},
        {"op": "copy", "path": "a.txt", "destination": "../stolen.txt"},
        {"op": "move", "path": "b.txt", "destination": "x/../../../moved.txt"},
        {"op": "mkcol", "path": "../escaped/"},
        {"op": "proppatch", "path": "..", "set": {COLOR: "x"}},
        {"op": "propfind", "path": "../top.txt"},
        {"op": "delete", "path": "a.txt"},
    ]
    document = run(server, operations, at="/sub/")
    results = document["results"]
    assert statuses(document) == [403] * 7 + [204]
    for result in results[:7]:
        assert result["error"] == "forbidden", result
        assert result["message"] == "the path leaves the collection the batch was sent to"
        assert "../" not in result["href"] and "/.." not in result["href"], result
    assert snapshot(server.root) == {"top.txt": b"t", "sub": None, "sub/b.txt": b"b"}
    assert dead_props(server, "/") == {}
    # At the shared root too.
    rooted = run(
        server,
        [{"op": "delete", "path": "../x"}, {"op": "delete", "path": "sub/../../x"}],
    )
    assert statuses(rooted) == [403, 403]


def test_collection_with_an_undeletable_member_is_207_like_delete(server):
    tree = {"keep.txt": b"k", "gone.txt": b"g", "sub/keep.txt": b"sk", "sub/gone.txt": b"sg"}
    make_tree(server.root, {f"t1/{k}": v for k, v in tree.items()})
    make_tree(server.root, {f"t2/{k}": v for k, v in tree.items()})
    with_provider(server, lambda inner: Refusing(inner, {"keep.txt"}))

    webdav = server.request("DELETE", "/t2/")
    assert webdav.status_code == 207
    expected = multistatus(webdav.content)
    assert expected == {"/t2/keep.txt": 403, "/t2/sub/keep.txt": 403}

    document = run(server, [{"op": "delete", "path": "t1/"}, {"op": "mkcol", "path": "n/"}])
    item, after = document["results"]
    assert item["status"] == 207
    assert after["status"] == 201
    assert document["summary"] == {"total": 2, "succeeded": 1, "failed": 1}
    members = item["members"]
    assert {unquote(m["href"]).replace("/t1/", "/t2/"): m["status"] for m in members} == expected
    assert sorted(m["path"] for m in members) == ["t1/keep.txt", "t1/sub/keep.txt"]
    assert sorted(m["href"] for m in members) == ["/t1/keep.txt", "/t1/sub/keep.txt"]
    files = snapshot(server.root)
    assert {k for k in files if k.startswith("t1")} == {
        k.replace("t2", "t1", 1) for k in files if k.startswith("t2")
    }
    assert "t1/gone.txt" not in files and files["t1/keep.txt"] == b"k"


def test_proppatch_of_a_protected_property_changes_nothing(server):
    make_tree(server.root, {"f.txt": b"f"})
    run(server, [{"op": "proppatch", "path": "f.txt", "set": {SHAPE: "round"}}])
    before = dead_props(server, "/f.txt")
    document = run(
        server,
        [
            {
                "op": "proppatch",
                "path": "f.txt",
                "set": {COLOR: "red", "{DAV:}getetag": '"forged"'},
                "remove": [SHAPE],
            }
        ],
    )
    (item,) = document["results"]
    assert item == {
        "index": 0,
        "op": "proppatch",
        "path": "f.txt",
        "href": "/f.txt",
        "status": 403,
        "error": "forbidden",
        "propstat": {COLOR: 424, "{DAV:}getetag": 403, SHAPE: 424},
    }
    assert document["summary"] == {"total": 1, "succeeded": 0, "failed": 1}
    assert dead_props(server, "/f.txt") == before
    assert prop_value(before[SHAPE]) == "round"


def test_batch_to_a_subcollection_resolves_paths_relative_to_it(server):
    make_tree(
        server.root,
        {"sub/a.txt": b"a", "sub/b.txt": b"b", "a.txt": b"top a", "sub/deep/c.txt": b"c"},
    )
    document = run(
        server,
        [
            {"op": "delete", "path": "a.txt"},
            {"op": "copy", "path": "b.txt", "destination": "deep/b2.txt"},
            {"op": "move", "path": "deep/", "destination": "moved/"},
            {"op": "mkcol", "path": "new/"},
            {"op": "proppatch", "path": "b.txt", "set": {COLOR: "sub"}},
            {"op": "propfind", "path": "moved/c.txt", "props": ["{DAV:}getcontentlength"]},
        ],
        at="/sub/",
    )
    assert statuses(document) == [204, 201, 201, 201, 200, 200]
    assert [r["href"] for r in document["results"]] == [
        "/sub/a.txt",
        "/sub/b.txt",
        "/sub/deep/",
        "/sub/new/",
        "/sub/b.txt",
        "/sub/moved/c.txt",
    ]
    assert snapshot(server.root) == {
        "a.txt": b"top a",
        "sub": None,
        "sub/b.txt": b"b",
        "sub/moved": None,
        "sub/moved/c.txt": b"c",
        "sub/moved/b2.txt": b"b",
        "sub/new": None,
    }
    assert COLOR in dead_props(server, "/sub/b.txt")
    assert dead_props(server, "/b.txt") == {}


def test_undeletable_member_path_is_relative_to_a_subcollection(server):
    make_tree(server.root, {"sub/t/keep.txt": b"k", "sub/t/gone.txt": b"g"})
    with_provider(server, lambda inner: Refusing(inner, {"keep.txt"}))
    (item,) = run(server, [{"op": "delete", "path": "t/"}], at="/sub/")["results"]
    assert item["status"] == 207
    assert [(m["path"], m["href"], m["status"]) for m in item["members"]] == [
        ("t/keep.txt", "/sub/t/keep.txt", 403)
    ]


def test_copy_and_move_with_uncopyable_members_are_207_like_copy(server):
    # Names starting with "X" and the batch sent to the root: a member's path is the provider
    # path without its one leading "/", never with more cut off.
    tree = {"src/Xa.txt": b"a", "src/ok.txt": b"ok", "src/Xdeep/x.txt": b"x", "lone.txt": b"l"}
    make_tree(server.root, tree)
    with_provider(server, lambda inner: RefusingCopy(inner, {"Xa.txt", "Xdeep", "lone.txt"}))
    webdav = server.request("COPY", "/src/", headers={"Destination": "/Y/"})
    assert webdav.status_code == 207
    assert multistatus(webdav.content) == {"/Y/Xa.txt": 403, "/Y/Xdeep/": 403}

    document = run(
        server,
        [
            {"op": "copy", "path": "src/", "destination": "Xdst/"},
            {"op": "move", "path": "src/", "destination": "Xmoved/"},
            {"op": "copy", "path": "lone.txt", "destination": "lone2.txt"},
        ],
    )
    copied, moved, lone = document["results"]

    def refused(at: str) -> list[dict[str, Any]]:
        return [
            {
                "path": f"{at}/Xa.txt",
                "href": f"/{at}/Xa.txt",
                "status": 403,
                "message": "/src/Xa.txt may not be copied",
            },
            {
                "path": f"{at}/Xdeep/",
                "href": f"/{at}/Xdeep/",
                "status": 403,
                "message": "/src/Xdeep may not be copied",
            },
        ]

    frame = {"href": "/src/", "status": 207, "error": "partial-failure"}
    assert copied == {"index": 0, "op": "copy", "path": "src/", **frame, "members": refused("Xdst")}
    assert moved == {
        "index": 1,
        "op": "move",
        "path": "src/",
        **frame,
        "members": refused("Xmoved"),
    }
    # One file refused is that file's own status, as a plain COPY answers it.
    assert lone == {
        "index": 2,
        "op": "copy",
        "path": "lone.txt",
        "href": "/lone.txt",
        "status": 403,
        "error": "forbidden",
        "message": "/lone.txt may not be copied",
    }
    plain_move = server.request("MOVE", "/src/", headers={"Destination": "/Z/"})
    assert plain_move.status_code == 207
    # The copy keeps what it could copy; the move, like a plain MOVE, leaves its source whole
    # and nothing at its destination.
    assert snapshot(server.root) == {
        **tree,
        "src": None,
        "src/Xdeep": None,
        "Y": None,
        "Y/ok.txt": b"ok",
        "Xdst": None,
        "Xdst/ok.txt": b"ok",
    }


class HeldElsewhere:
    """A provider that refuses delete() of the chosen names as locked by someone else (423
    with `lock-token-submitted`), as a share another program holds files of might."""

    def __init__(self, inner: Any, names: set[str]) -> None:
        self.inner = inner
        self.names = names

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete(self, path: str) -> None:
        if paths.name(path) in self.names:
            raise DavError(f"{path} is held", status=423, condition="lock-token-submitted")
        self.inner.delete(path)


def test_a_refused_member_keeps_its_condition_like_delete(server):
    make_tree(server.root, {"t/held.txt": b"h", "t/gone.txt": b"g", "u/held.txt": b"h"})
    with_provider(server, lambda inner: HeldElsewhere(inner, {"held.txt"}))
    webdav = server.request("DELETE", "/u/")
    assert webdav.status_code == 207
    (response,) = etree.fromstring(webdav.content).findall(D + "response")
    assert response.find(f"{D}error/{D}lock-token-submitted") is not None
    (item,) = run(server, [{"op": "delete", "path": "t/"}])["results"]
    assert item["members"] == [
        {
            "path": "t/held.txt",
            "href": "/t/held.txt",
            "status": 423,
            "error": "lock-token-submitted",
            "message": "/t/held.txt is held",
        }
    ]
    assert snapshot(server.root) == {"t": None, "t/held.txt": b"h", "u": None, "u/held.txt": b"h"}


class FailingMkcol:
    """Delegates, but refuses to make a folder named after a status with that status and no
    condition, as a provider refuses a full disk (507) or a link loop (508)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def make_collection(self, path: str) -> None:
        if paths.name(path).isdigit():
            raise DavError(f"refused with {paths.name(path)}", status=int(paths.name(path)))
        self.inner.make_collection(path)


# The `error` of an item that failed with a status and no RFC 4918 condition.
ERROR_CODES = {
    400: "bad-request",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
    413: "too-large",
    415: "unsupported-media-type",
    423: "locked",
    424: "failed-dependency",
    502: "bad-gateway",
    507: "insufficient-storage",
    508: "loop-detected",
    500: "error",
    503: "error",
}


def test_each_status_an_item_fails_with_has_its_error_code(server):
    with_provider(server, FailingMkcol)
    document = run(server, [{"op": "mkcol", "path": f"{status}/"} for status in ERROR_CODES])
    assert [(r["status"], r["error"], r["message"]) for r in document["results"]] == [
        (status, code, f"refused with {status}") for status, code in ERROR_CODES.items()
    ]


# -- the XML form --------------------------------------------------------------------------


def test_accept_xml_gives_a_multistatus_in_order(server):
    make_tree(server.root, {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c", "locked.txt": b"l"})
    lock(server, "/locked.txt")
    operations = [
        {"op": "delete", "path": "a.txt"},
        {"op": "copy", "path": "b.txt", "destination": "c.txt", "overwrite": False},
        {"op": "mkcol", "path": "new dir/"},
        {"op": "delete", "path": "locked.txt"},
        {"op": "propfind", "path": "b.txt"},
        {"op": "delete", "path": "missing.txt"},
    ]
    response = post_batch(server, operations, headers={"Accept": "application/xml"})
    assert response.status_code == 207
    assert response.headers["Content-Type"] == 'application/xml; charset="utf-8"'
    doc = etree.fromstring(response.content)
    assert doc.tag == D + "multistatus"
    responses = doc.findall(D + "response")
    assert len(responses) == len(operations)
    hrefs = [r.findtext(D + "href") for r in responses]
    codes = [int((r.findtext(D + "status") or "").split()[1]) for r in responses]
    assert hrefs == ["/a.txt", "/b.txt", "/new%20dir/", "/locked.txt", "/b.txt", "/missing.txt"]
    assert codes == [204, 412, 201, 423, 200, 404]
    for response_element in responses:
        assert len(response_element.findall(D + "href")) == 1
        assert (response_element.findtext(D + "status") or "").startswith("HTTP/1.1 ")
    # Only RFC 4918's own conditions go into <D:error>; the message is the description.
    assert [[child.tag for child in r.iterfind(f"{D}error/*")] for r in responses] == [
        [],
        [],
        [],
        [D + "lock-token-submitted"],
        [],
        [],
    ]
    assert [r.findtext(D + "responsedescription") for r in responses] == [
        None,
        "c.txt exists and overwrite is false",
        None,
        "/locked.txt is locked",
        None,
        "/missing.txt does not exist",
    ]
    assert snapshot(server.root) == {
        "b.txt": b"b",
        "c.txt": b"c",
        "locked.txt": b"l",
        "new dir": None,
    }


def test_accept_text_xml_gives_the_multistatus_too(server):
    make_tree(server.root, {"a.txt": b"a"})
    response = post_batch(
        server, [{"op": "delete", "path": "a.txt"}], headers={"Accept": "text/xml"}
    )
    assert response.status_code == 207
    assert response.headers["Content-Type"] == 'application/xml; charset="utf-8"'
    (element,) = etree.fromstring(response.content).findall(D + "response")
    assert element.findtext(D + "href") == "/a.txt"
    assert element.findtext(D + "status") == "HTTP/1.1 204 No Content"


def test_xml_form_lists_failed_members(server):
    make_tree(server.root, {"t/keep.txt": b"k", "t/sub/x.txt": b"x", "t/gone.txt": b"g"})
    refusing = with_provider(server, lambda inner: Refusing(inner, {"keep.txt", "sub"}))
    response = post_batch(
        server, [{"op": "delete", "path": "t/"}], headers={"Accept": "application/xml"}
    )
    # The members in the order the walk met them (the folder's listing order).
    failed = {"/t/keep.txt": "t/keep.txt (403)", "/t/sub": "t/sub/ (403)"}
    listed = ", ".join(failed[path] for path in refusing.refused)
    assert response.status_code == 207
    (element,) = etree.fromstring(response.content).findall(D + "response")
    assert element.findtext(D + "href") == "/t/"
    assert element.findtext(D + "status") == "HTTP/1.1 207 Multi-Status"
    # No <D:error>: "partial-failure" is our own code, not an RFC 4918 condition.
    assert element.find(D + "error") is None
    assert element.findtext(D + "responsedescription") == f"2 members failed: {listed}"


# The lock answers of a batch under the prefix /dav, sent without the tokens: a locked file, a
# folder holding a locked member (a 207 naming it), and a file in a locked folder.
LOCK_ANSWER_TREE = {"locked file.txt": b"L", "dir/x.txt": b"x", "dir/sub/held.txt": b"h"}
LOCK_ANSWER_ITEMS = [
    {"op": "delete", "path": "locked file.txt"},
    {"op": "delete", "path": "dir/"},
    {"op": "delete", "path": "dir/sub/held.txt"},
]


def _locked_for_answers(make_server: Callable[..., Any]) -> Any:
    live = make_server(prefix="/dav", prefix_mode="keep")
    make_tree(live.root, LOCK_ANSWER_TREE)
    lock(live, "/dav/locked%20file.txt")
    lock(live, "/dav/dir/sub/")
    return live


def _error_xml(element: Any) -> str | None:
    error = element.find(D + "error")
    return None if error is None else etree.tostring(error, encoding="unicode")


def test_xml_form_names_the_locked_resource_in_its_error_like_delete(make_server):
    # RFC 4918 16: <D:lock-token-submitted> SHOULD hold the URL of the locked resource, under
    # the prefix clients use, a collection's with its trailing slash: the <D:error> a DELETE
    # of the same resource answers.
    live = _locked_for_answers(make_server)
    response = post_batch(
        live, LOCK_ANSWER_ITEMS, at="/dav/", headers={"Accept": "application/xml"}
    )
    assert response.status_code == 207, response.text
    responses = etree.fromstring(response.content).findall(D + "response")
    named = '<D:error xmlns:D="DAV:"><D:lock-token-submitted><D:href>{}</D:href>'
    named += "</D:lock-token-submitted></D:error>"
    assert [_error_xml(r) for r in responses] == [
        named.format("/dav/locked%20file.txt"),
        None,  # "partial-failure" is our own code; its members are in the description
        named.format("/dav/dir/sub/"),
    ]
    for path, element in (
        ("/dav/locked%20file.txt", responses[0]),
        ("/dav/dir/sub/held.txt", responses[2]),
    ):
        webdav = live.request("DELETE", path)
        assert webdav.status_code == 423
        answered = etree.tostring(etree.fromstring(webdav.content), encoding="unicode")
        assert answered == _error_xml(element)
    assert snapshot(live.root) == {
        "locked file.txt": b"L",
        "dir": None,
        "dir/sub": None,
        "dir/sub/held.txt": b"h",
    }


def test_json_form_names_the_locked_resource_in_error_hrefs(make_server):
    live = _locked_for_answers(make_server)
    results = run(live, LOCK_ANSWER_ITEMS, at="/dav/")["results"]
    assert results == [
        {
            "index": 0,
            "op": "delete",
            "path": "locked file.txt",
            "href": "/dav/locked%20file.txt",
            "status": 423,
            "error": "lock-token-submitted",
            "error_hrefs": ["/dav/locked%20file.txt"],
            "message": "/locked file.txt is locked",
        },
        {
            "index": 1,
            "op": "delete",
            "path": "dir/",
            "href": "/dav/dir/",
            "status": 207,
            "error": "partial-failure",
            "members": [
                {
                    "path": "dir/sub/",
                    "href": "/dav/dir/sub/",
                    "status": 423,
                    "error": "lock-token-submitted",
                    "error_hrefs": ["/dav/dir/sub/"],
                    "message": "/dir/sub is locked",
                }
            ],
        },
        {
            "index": 2,
            "op": "delete",
            "path": "dir/sub/held.txt",
            "href": "/dav/dir/sub/held.txt",
            "status": 423,
            "error": "lock-token-submitted",
            "error_hrefs": ["/dav/dir/sub/"],
            "message": "/dir/sub is locked",
        },
    ]


# -- stop_on_error -----------------------------------------------------------------------------


def test_stop_on_error_skips_the_rest_with_424(server):
    make_tree(server.root, {"c.txt": b"c", "d.txt": b"d"})
    document = run(
        server,
        [
            {"op": "mkcol", "path": "a/"},
            {"op": "delete", "path": "missing.txt"},
            {"op": "mkcol", "path": "b/"},
            {"op": "delete", "path": "c.txt"},
            {"op": "move", "path": "d.txt", "destination": "e.txt"},
        ],
        stop_on_error=True,
    )
    results = document["results"]
    assert statuses(document) == [201, 404, 424, 424, 424]
    assert [r["error"] for r in results[2:]] == ["failed-dependency"] * 3
    assert [r["message"] for r in results[2:]] == ["not run: an earlier operation failed"] * 3
    assert [r["href"] for r in results[2:]] == ["/b/", "/c.txt", "/d.txt"]
    assert document["summary"] == {"total": 5, "succeeded": 1, "failed": 4}
    assert snapshot(server.root) == {"a": None, "c.txt": b"c", "d.txt": b"d"}


def test_stop_on_error_false_runs_everything(server):
    make_tree(server.root, {"c.txt": b"c"})
    document = run(
        server,
        [
            {"op": "delete", "path": "missing.txt"},
            {"op": "mkcol", "path": "b/"},
            {"op": "delete", "path": "c.txt"},
        ],
        stop_on_error=False,
    )
    assert statuses(document) == [404, 201, 204]
    assert snapshot(server.root) == {"b": None}


def test_stop_on_error_counts_a_partial_failure_as_a_failure(server):
    make_tree(server.root, {"t/keep.txt": b"k", "x.txt": b"x"})
    with_provider(server, lambda inner: Refusing(inner, {"keep.txt"}))
    document = run(
        server,
        [{"op": "delete", "path": "t/"}, {"op": "delete", "path": "x.txt"}],
        stop_on_error=True,
    )
    assert statuses(document) == [207, 424]
    assert (server.root / "x.txt").exists()


# -- limits and malformed bodies --------------------------------------------------------------


def test_more_operations_than_the_limit_is_400_and_runs_nothing(make_server):
    live = make_server(max_batch_operations=3)
    make_tree(live.root, {"a.txt": b"a"})
    before = snapshot(live.root)
    operations = [
        {"op": "delete", "path": "a.txt"},
        {"op": "mkcol", "path": "b/"},
        {"op": "mkcol", "path": "c/"},
        {"op": "mkcol", "path": "d/"},
    ]
    response = post_batch(live, operations)
    assert response.status_code == 400
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    body = response.json()
    assert body == {"error": "too-many-operations", "message": "4 operations; the limit is 3"}
    assert snapshot(live.root) == before
    # Exactly the limit is fine.
    assert statuses(run(live, operations[:3])) == [204, 201, 201]


def test_a_body_over_the_limit_is_413_and_runs_nothing(make_server):
    live = make_server(max_batch_body=200)
    make_tree(live.root, {"a.txt": b"a"})
    before = snapshot(live.root)
    operations = [{"op": "mkcol", "path": f"dir{i}/"} for i in range(10)]
    operations.insert(0, {"op": "delete", "path": "a.txt"})
    assert len(json.dumps({"operations": operations})) > 200
    response = post_batch(live, operations)
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Length"] == str(len(response.content))
    assert response.json() == {
        "error": "too-large",
        "message": "the request body is limited to 200 bytes",
    }
    assert snapshot(live.root) == before
    # A small batch still works on that server.
    assert statuses(run(live, [{"op": "mkcol", "path": "x/"}])) == [201]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the many malformed-body cases (each resets the tree)."""
    yield from shared_server(tmp_path_factory, "batch")


def _ops(*items: Any) -> bytes:
    return json.dumps({"operations": list(items)}).encode()


GOOD = {"op": "mkcol", "path": "made/"}
NOT_A_BATCH = 'the body must be {"operations": [...]}'
OPS = "delete, move, copy, mkcol, proppatch, propfind"
NOT_UNICODE = "the body holds text that is not valid Unicode"

MALFORMED = [
    # (id, body, error, index, the message: the reason the client reads, word for word)
    ("not-json", b"delete everything", "invalid-json", None,
     "the body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    ("truncated", b'{"operations": [', "invalid-json", None,
     "the body is not valid JSON: Expecting value: line 1 column 17 (char 16)"),
    ("not-utf8", b'{"operations": ["\xff"]}', "invalid-json", None,
     "the body is not valid JSON: 'utf-8' codec can't decode byte 0xff in position 17: "
     "invalid start byte"),
    ("array", b"[]", "invalid-batch", None, NOT_A_BATCH),
    ("string", b'"operations"', "invalid-batch", None, NOT_A_BATCH),
    ("no-operations", b'{"ops": []}', "invalid-batch", None, NOT_A_BATCH),
    ("operations-object", b'{"operations": {"op": "mkcol"}}', "invalid-batch", None,
     NOT_A_BATCH),
    ("unknown-keys", _ops(GOOD)[:-1] + b', "stop": true, "atomic": true}', "invalid-batch", None,
     "unknown keys: atomic, stop"),
    ("too-deep", b"[" * 100_000, "invalid-json", None,
     "the body is not valid JSON: maximum recursion depth exceeded while decoding a JSON array "
     "from a unicode string"),
    # JSON can spell lone surrogates, which no path, property or token can hold: anywhere in
    # the document, keys included.
    ("lone-surrogate-in-a-path", _ops(GOOD, {"op": "mkcol", "path": "\ud800/"}), "invalid-json",
     None, NOT_UNICODE),
    ("lone-surrogate-in-a-key", _ops(GOOD, {"op": "proppatch", "path": "a.txt",
                                            "set": {"{urn:t}\udc00": "x"}}),
     "invalid-json", None, NOT_UNICODE),
    ("lone-surrogate-in-a-token", _ops(GOOD)[:-1] + b', "lock_tokens": ["\\udfff"]}',
     "invalid-json", None, NOT_UNICODE),
    ("stop-not-bool", _ops(GOOD)[:-1] + b', "stop_on_error": "yes"}', "invalid-batch", None,
     "stop_on_error must be true or false"),
    ("tokens-not-list", _ops(GOOD)[:-1] + b', "lock_tokens": "opaquelocktoken:x"}',
     "invalid-batch", None, "lock_tokens must be a list of strings"),
    ("tokens-not-strings", _ops(GOOD)[:-1] + b', "lock_tokens": ["urn:uuid:x", 7]}',
     "invalid-batch", None, "lock_tokens must be a list of strings"),
    ("stop-null", _ops(GOOD)[:-1] + b', "stop_on_error": null}', "invalid-batch", None,
     "stop_on_error must be true or false"),
    ("item-not-object", _ops(GOOD, "delete a.txt"), "invalid-operation", 1,
     "operation 1 is not an object"),
    ("item-null", _ops(GOOD, None), "invalid-operation", 1, "operation 1 is not an object"),
    ("unknown-op", _ops(GOOD, {"op": "rename", "path": "a.txt"}), "unknown-op", 1,
     f"operation 1: unknown op 'rename'; use one of {OPS}"),
    ("missing-op", _ops(GOOD, {"path": "a.txt"}), "unknown-op", 1,
     f"operation 1: unknown op None; use one of {OPS}"),
    ("missing-path", _ops(GOOD, {"op": "delete"}), "invalid-operation", 1,
     "operation 1: 'path' must be a string"),
    ("empty-path", _ops(GOOD, {"op": "delete", "path": ""}), "invalid-operation", 1,
     "operation 1: 'path' must be a string"),
    ("path-number", _ops(GOOD, {"op": "delete", "path": 7}), "invalid-operation", 1,
     "operation 1: 'path' must be a string"),
    ("missing-destination", _ops(GOOD, {"op": "move", "path": "a.txt"}), "invalid-operation", 1,
     "operation 1: 'destination' must be a string"),
    ("destination-list", _ops(GOOD, {"op": "copy", "path": "a.txt", "destination": ["b"]}),
     "invalid-operation", 1, "operation 1: 'destination' must be a string"),
    ("overwrite-string",
     _ops(GOOD, {"op": "copy", "path": "a.txt", "destination": "b", "overwrite": "F"}),
     "invalid-operation", 1, "operation 1: overwrite must be true or false"),
    ("bad-depth", _ops(GOOD, {"op": "copy", "path": "a.txt", "destination": "b", "depth": "1"}),
     "invalid-operation", 1, "operation 1: depth '1' is not allowed"),
    ("move-depth-0",
     _ops(GOOD, {"op": "move", "path": "a.txt", "destination": "b", "depth": "0"}),
     "invalid-operation", 1, "operation 1: depth '0' is not allowed"),
    ("set-list", _ops(GOOD, {"op": "proppatch", "path": "a.txt", "set": ["x"]}),
     "invalid-operation", 1, "operation 1: 'set' must map property names to string values"),
    ("set-number-value", _ops(GOOD, {"op": "proppatch", "path": "a.txt", "set": {COLOR: 3}}),
     "invalid-operation", 1, "operation 1: 'set' must map property names to string values"),
    ("remove-string", _ops(GOOD, {"op": "proppatch", "path": "a.txt", "remove": COLOR}),
     "invalid-operation", 1,
     "operation 1: 'remove' must be a list of property names like '{DAV:}getetag'"),
    ("nothing-to-patch", _ops(GOOD, {"op": "proppatch", "path": "a.txt"}), "invalid-operation",
     1, "operation 1: nothing to set or remove"),
    ("empty-patch",
     _ops(GOOD, {"op": "proppatch", "path": "a.txt", "set": {}, "remove": []}),
     "invalid-operation", 1, "operation 1: nothing to set or remove"),
    ("remove-empty-name",
     _ops(GOOD, {"op": "proppatch", "path": "a.txt", "remove": [COLOR, ""]}),
     "invalid-operation", 1,
     "operation 1: 'remove' must be a list of property names like '{DAV:}getetag'"),
    ("bad-property-name", _ops(GOOD, {"op": "proppatch", "path": "a.txt", "set": {"color": "x"}}),
     "invalid-operation", 1,
     "operation 1: 'color' is not a property name in Clark notation ({namespace}name)"),
    ("name-with-colon",
     _ops(GOOD, {"op": "proppatch", "path": "a.txt", "set": {"{urn:t}a:b": "x"}}),
     "invalid-operation", 1, "operation 1: 'a:b' is not an XML name (XML 1.0 2.3; no ':')"),
    ("name-starting-with-digit",
     _ops(GOOD, {"op": "proppatch", "path": "a.txt", "set": {"{urn:t}1st": "x"}}),
     "invalid-operation", 1, "operation 1: '1st' is not an XML name (XML 1.0 2.3; no ':')"),
    ("props-string", _ops(GOOD, {"op": "propfind", "path": "a.txt", "props": "{DAV:}getetag"}),
     "invalid-operation", 1,
     "operation 1: 'props' must be a list of property names like '{DAV:}getetag'"),
    ("bad-props-name", _ops(GOOD, {"op": "propfind", "path": "a.txt", "props": ["getetag"]}),
     "invalid-operation", 1,
     "operation 1: 'getetag' is not a property name in Clark notation ({namespace}name)"),
    ("bad-later-item", _ops(GOOD, GOOD, GOOD, {"op": "delete", "path": None}),
     "invalid-operation", 3, "operation 3: 'path' must be a string"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "error", "index", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in MALFORMED],
)
def test_malformed_bodies_are_400_and_change_nothing(shared, body, error, index, message):
    server = shared
    for child in server.root.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    make_tree(server.root, {"a.txt": b"a", "keep/b.txt": b"b"})
    before = snapshot(server.root)
    response = server.request("POST", "/", headers=JSON, data=body)
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    assert response.headers["Content-Length"] == str(len(response.content))
    indexed = {} if index is None else {"index": index}
    assert response.json() == {"error": error, "message": message, **indexed}
    assert snapshot(server.root) == before
    assert not (server.root / "made").exists()


def test_post_with_another_content_type_is_405(server):
    make_tree(server.root, {"a.txt": b"a"})
    body = _ops({"op": "delete", "path": "a.txt"})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = server.request("POST", "/", headers={"Content-Type": content_type}, data=body)
        assert response.status_code == 405, content_type
        assert "POST" in response.headers["Allow"]
        assert response.text == "POST takes a JSON batch\n"
    no_type = server.request("POST", "/", data=body)
    assert no_type.status_code == 405
    assert (server.root / "a.txt").exists()
    # Parameters on the JSON media type are fine.
    charset = server.request(
        "POST", "/", headers={"Content-Type": "application/json; charset=utf-8"}, data=body
    )
    assert charset.status_code == 207
    assert not (server.root / "a.txt").exists()


def test_post_of_a_batch_to_a_file_is_405(server):
    make_tree(server.root, {"a.txt": b"a", "b.txt": b"b"})
    response = post_batch(server, [{"op": "delete", "path": "b.txt"}], at="/a.txt")
    assert response.status_code == 405
    assert "Allow" in response.headers
    assert response.text == "a batch is sent to a collection\n"
    assert snapshot(server.root) == {"a.txt": b"a", "b.txt": b"b"}


def test_options_allow_includes_post(server):
    for target in ("/", "/x.txt"):
        if target == "/x.txt":
            make_tree(server.root, {"x.txt": b"x"})
        response = server.request("OPTIONS", target)
        assert response.status_code == 200
        allowed = {m.strip() for m in response.headers["Allow"].split(",")}
        assert "POST" in allowed, response.headers["Allow"]


# -- the answer --------------------------------------------------------------------------------


def test_a_spool_gives_its_answer_back_in_pieces_of_a_chunk():
    # The server sends what the iteration yields: read back whole, an answer spooled to a
    # file would sit in memory at once, which the spool is there to avoid.
    written = [bytes([i]) * 1000 for i in range(200)]
    spool = batch.Spool(iter(written))
    try:
        pieces = list(spool)
    finally:
        spool.close()
    assert spool.size == 200_000
    assert [len(piece) for piece in pieces] == [xmlout.CHUNK] * 3 + [200_000 - 3 * xmlout.CHUNK]
    assert b"".join(pieces) == b"".join(written)


def test_a_large_batch_is_answered_in_full_from_a_file(make_server, monkeypatch):
    # Every item runs before the answer starts (a client that stops reading cannot stop the
    # batch); results beyond SPOOL_IN_MEMORY wait in a temporary file, not in memory.
    monkeypatch.setattr(batch, "SPOOL_IN_MEMORY", 4096)
    spools: list[batch.Spool] = []

    def spool(chunks: Any, made: Callable[..., batch.Spool] = batch.Spool) -> batch.Spool:
        spools.append(made(chunks))
        return spools[-1]

    monkeypatch.setattr(batch, "Spool", spool)
    live = make_server(max_batch_operations=5000)
    operations = [{"op": "mkcol", "path": f"d{i:04}/"} for i in range(2000)]
    response = post_batch(live, operations)
    assert response.status_code == 207
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert "Transfer-Encoding" not in response.headers
    document = response.json()
    assert [r["index"] for r in document["results"]] == list(range(2000))
    assert {r["status"] for r in document["results"]} == {201}
    assert document["results"][1999]["href"] == "/d1999/"
    assert document["summary"] == {"total": 2000, "succeeded": 2000, "failed": 0}
    assert len(list(live.root.iterdir())) == 2000
    [spool] = spools
    assert spool.size == len(response.content) > 4096
    assert spool.file._rolled  # on disk
    assert wait_for(lambda: spool.file.closed)  # closed by the server once sent
    # The same in XML.
    operations = [{"op": "delete", "path": f"d{i:04}/"} for i in range(2000)]
    response = post_batch(live, operations, headers={"Accept": "application/xml"})
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert set(multistatus(response.content).values()) == {204}
    assert list(live.root.iterdir()) == []


# -- the batch equals the WebDAV requests (hypothesis) ---------------------------------------

TREE = {"a/x.txt": b"x in a", "a/y.txt": b"y in a", "c.txt": b"c at the top"}
TREE_DIRS = ("a", "b")
# Existing names come twice, so that most operations meet the tree, its property and its lock.
EXISTING = ["a", "a/", "a/x.txt", "a/y.txt", "b/", "c.txt"]
PATHS = [*EXISTING, *EXISTING, "/", "a/z.txt", "b/x.txt", "d", "d/", "e/f"]
NAMES = [COLOR, SHAPE]
VALUES = ["red", "", "a<b & c>", "ünï"]
FIND = ["{DAV:}getcontentlength", "{DAV:}resourcetype", "{DAV:}getcontenttype", COLOR, SHAPE]
LOCK_ROOTS = [None, "/a/", "/a/", "/a/x.txt", "/c.txt", "/b/", "/", "/"]


def _operation(draw: Callable[..., Any]) -> dict[str, Any]:
    op = draw(st.sampled_from(["delete", "move", "copy", "mkcol", "proppatch", "propfind"]))
    item: dict[str, Any] = {"op": op, "path": draw(st.sampled_from(PATHS))}
    if op in ("move", "copy"):
        item["destination"] = draw(st.sampled_from(PATHS))
        overwrite = draw(st.sampled_from([None, True, False]))
        if overwrite is not None:
            item["overwrite"] = overwrite
        if op == "copy":
            depth = draw(st.sampled_from([None, "0", "infinity"]))
            if depth is not None:
                item["depth"] = depth
    elif op == "proppatch":
        names = [*NAMES, "{DAV:}getetag"]
        sets = draw(st.dictionaries(st.sampled_from(names), st.sampled_from(VALUES), max_size=2))
        removes = draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True))
        if not sets and not removes:
            sets = {COLOR: "blue"}
        if sets:
            item["set"] = sets
        if removes:
            item["remove"] = removes
    elif op == "propfind" and draw(st.booleans()):
        item["props"] = draw(st.lists(st.sampled_from(FIND), min_size=1, max_size=3, unique=True))
    return item


@st.composite
def scenarios(draw: Callable[..., Any]) -> dict[str, Any]:
    return {
        "operations": draw(st.lists(st.composite(_operation)(), min_size=1, max_size=6)),
        "lock_root": draw(st.sampled_from(LOCK_ROOTS)),
        "supply": draw(st.sampled_from(["none", "body", "if"])),
    }


def _reset(server: Any, lock_root: str | None) -> str | None:
    """The shared starting state: TREE on disk, one dead property, maybe one lock."""
    for child in server.root.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    make_tree(server.root, TREE, TREE_DIRS)
    services = server.services
    now = time.time()
    for held in services.locks.around("/", now):
        services.locks.release(held.token)
    services.props.delete(["/"], recursive=True)
    patched = server.request("PROPPATCH", "/a/x.txt", data=proppatch_body(COLOR, "initial"))
    assert patched.status_code == 207, patched.text
    return None if lock_root is None else lock(server, lock_root)


def _webdav(server: Any, item: dict[str, Any], if_header: str | None) -> requests.Response:
    """The operation as its own WebDAV request."""
    url = "/" + quote(item["path"].lstrip("/"))
    headers: dict[str, str] = {}
    if if_header is not None:
        headers["If"] = if_header
    body: bytes | None = None
    method = item["op"].upper()
    if item["op"] in ("move", "copy"):
        headers["Destination"] = server.url("/" + quote(item["destination"].lstrip("/")))
        headers["Overwrite"] = "T" if item.get("overwrite", True) else "F"
        if "depth" in item:
            headers["Depth"] = item["depth"]
    elif item["op"] == "proppatch":
        parts = ['<D:propertyupdate xmlns:D="DAV:">']
        if item.get("set"):
            parts.append("<D:set><D:prop>")
            parts += [prop_xml(n, v) for n, v in item["set"].items()]
            parts.append("</D:prop></D:set>")
        if item.get("remove"):
            parts.append("<D:remove><D:prop>")
            parts += [prop_xml(n) for n in item["remove"]]
            parts.append("</D:prop></D:remove>")
        parts.append("</D:propertyupdate>")
        body = "".join(parts).encode()
        headers["Content-Type"] = "application/xml"
    elif item["op"] == "propfind":
        headers["Depth"] = "0"
        headers["Content-Type"] = "application/xml"
        if "props" in item:
            body = propfind_body(*item["props"])
        else:
            body = b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    return server.request(method, url, headers=headers, data=body)


def _webdav_outcome(item: dict[str, Any], response: requests.Response) -> tuple[Any, ...]:
    status = response.status_code
    if status != 207:
        return (status,)
    doc = etree.fromstring(response.content)
    if item["op"] in ("proppatch", "propfind"):
        (element,) = doc.findall(D + "response")
        found: dict[str, int] = {}
        for propstat in element.findall(D + "propstat"):
            code = int((propstat.findtext(D + "status") or "").split()[1])
            holder = propstat.find(D + "prop")
            for prop in holder if holder is not None else []:
                found[prop.tag] = code
        if item["op"] == "proppatch":
            return ("props", found)
        return (
            "found",
            sorted(n for n, c in found.items() if c == 200),
            sorted(n for n, c in found.items() if c != 200),
        )
    return ("members", multistatus(response.content))


def _batch_outcome(item: dict[str, Any], result: dict[str, Any]) -> tuple[Any, ...]:
    status = result["status"]
    if item["op"] == "proppatch" and (status == 200 or "propstat" in result):
        if status == 200:
            names = [*item.get("set", {}), *item.get("remove", [])]
            return ("props", dict.fromkeys(names, 200))
        return ("props", result["propstat"])
    if item["op"] == "propfind" and status == 200:
        return ("found", sorted(result["props"]), sorted(result["missing"]))
    if status == 207:
        return ("members", {unquote(m["href"]): m["status"] for m in result["members"]})
    return (status,)


def _normal(xml: str) -> tuple[str, str]:
    element = etree.fromstring(f'<w xmlns:D="DAV:">{xml}</w>')[0]
    return element.tag, element.text or ""


def _state(server: Any, token_names: dict[str, str]) -> dict[str, Any]:
    files = snapshot(server.root)
    services = server.services
    candidates = {"/"} | {"/" + rel for rel in files}
    candidates |= {"/" + p.strip("/") for p in PATHS}
    props = {}
    for path in sorted(candidates):
        stored = services.props.get(path)
        if stored:
            props[path] = {name: _normal(value) for name, value in stored.items()}
    now = time.time()
    held = services.locks.around("/", now)
    locks = sorted((token_names.get(h.token, "?"), h.root, h.depth, h.scope) for h in held)
    return {"files": files, "props": props, "locks": locks}


@pytest.fixture
def twins(make_server: Callable[..., Any]) -> tuple[Any, Any]:
    return make_server(), make_server()


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_a_batch_equals_the_same_webdav_requests(twins, scenario):
    batch_server, webdav_server = twins
    operations = list(scenario["operations"])
    token_a = _reset(batch_server, scenario["lock_root"])
    token_b = _reset(webdav_server, scenario["lock_root"])
    assert _state(batch_server, {token_a or "": "lock"}) == _state(
        webdav_server, {token_b or "": "lock"}
    )

    supply = scenario["supply"] if token_a else "none"
    extra: dict[str, Any] = {}
    batch_if = webdav_if = None
    if supply == "body":
        extra["lock_tokens"] = [token_a]
    if supply in ("body", "if"):
        # The second list always holds, so only the token's submission matters.
        webdav_if = f"(<{token_b}>) (Not <DAV:no-lock>)"
    if supply == "if":
        batch_if = f"(<{token_a}>) (Not <DAV:no-lock>)"

    response = post_batch(
        batch_server, operations, headers={"If": batch_if} if batch_if else None, **extra
    )
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert len(results) == len(operations)

    for item, result in zip(operations, results, strict=True):
        single = _webdav(webdav_server, item, webdav_if)
        assert _batch_outcome(item, result) == _webdav_outcome(item, single), (item, result)

    assert _state(batch_server, {token_a or "": "lock"}) == _state(
        webdav_server, {token_b or "": "lock"}
    )
