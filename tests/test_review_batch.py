"""The JSON batch endpoint against the findings of the independent review (issue 14): the
POST target's conditional headers, a batch that outlives its client, the access line's item
counts, read-only shares and anonymous users.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests
from helpers import make_tree, post_batch, snapshot, wait_for, with_provider, write_users

from davserver import paths

ACCESS_LOGGER = "davserver.access"
OLD_DATE = "Sat, 01 Jan 2000 00:00:00 GMT"


def access_lines(caplog: pytest.LogCaptureFixture, method: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == ACCESS_LOGGER and f'"{method} ' in r.getMessage()
    ]


# -- the POST target's preconditions (RFC 9110 13.2, RFC 4918 10.4) -----------------------------


@pytest.mark.parametrize(
    "conditional",
    [
        {"If-Match": '"nope"'},
        {"If-None-Match": "*"},
        {"If-Unmodified-Since": OLD_DATE},
        # The If header on the POST target: an untagged list the collection does not meet.
        {"If": '(["nope"])'},
        {"If": "(<urn:uuid:00000000-0000-0000-0000-000000000000>)"},
    ],
)
def test_a_failed_precondition_on_the_target_is_412_and_runs_nothing(
    server: Any, conditional: dict[str, str]
) -> None:
    make_tree(server.root, {"sub/a.txt": b"a", "sub/b.txt": b"b"})
    (server.root / "sub").touch()  # modified after OLD_DATE
    before = snapshot(server.root)
    operations = [{"op": "delete", "path": "a.txt"}, {"op": "mkcol", "path": "new/"}]
    response = post_batch(server, operations, at="/sub/", headers=conditional)
    assert response.status_code == 412, response.text
    assert snapshot(server.root) == before


@pytest.mark.parametrize(
    "conditional",
    [{"If-Match": "*"}, {"If-Unmodified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}],
)
def test_a_precondition_that_holds_lets_the_batch_run(
    server: Any, conditional: dict[str, str]
) -> None:
    make_tree(server.root, {"sub/a.txt": b"a"})
    response = post_batch(
        server, [{"op": "delete", "path": "a.txt"}], at="/sub/", headers=conditional
    )
    assert response.status_code == 207, response.text
    assert [r["status"] for r in response.json()["results"]] == [204]
    assert not (server.root / "sub" / "a.txt").exists()


# -- the batch runs to its end, whatever the client does ------------------------------------


class Gate:
    """A provider whose make_collection() of one name waits until the test opens the gate."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner = inner
        self.name = name
        self.reached = threading.Event()
        self.opened = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def make_collection(self, path: str) -> None:
        if paths.name(path) == self.name:
            self.reached.set()
            assert self.opened.wait(30)
        self.inner.make_collection(path)


def test_a_batch_whose_client_went_away_still_runs_every_item(
    make_server: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    count = 3000  # results far larger than one 64 KiB chunk of the answer
    live = make_server(max_batch_operations=count)
    gate = with_provider(live, lambda inner: Gate(inner, "d0000"))
    body = json.dumps({"operations": [{"op": "mkcol", "path": f"d{i:04}/"} for i in range(count)]})
    head = (
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=30)
    sock.sendall(head.encode() + body.encode())
    assert gate.reached.wait(30)
    # The client gives up while the first item runs: a reset, so that every write of the
    # answer fails at once.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    gate.opened.set()
    assert wait_for(lambda: bool(access_lines(caplog, "POST")), 60)
    assert len(list(live.root.glob("d*"))) == count
    [line] = access_lines(caplog, "POST")
    assert line.endswith(f" items={count} ran={count} failed=0"), line


def test_the_access_line_counts_the_items_that_ran_and_failed(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    make_tree(server.root, {"a.txt": b"a", "b.txt": b"b"})
    operations = [
        {"op": "delete", "path": "a.txt"},
        {"op": "delete", "path": "missing.txt"},
        {"op": "delete", "path": "b.txt"},
        {"op": "mkcol", "path": "c/"},
    ]
    assert post_batch(server, operations).status_code == 207
    assert post_batch(server, operations, stop_on_error=True).status_code == 207
    # The line is written when the server closes the answer, just after its last byte.
    assert wait_for(lambda: len(access_lines(caplog, "POST")) == 2)
    first, second = access_lines(caplog, "POST")
    assert first.endswith(" items=4 ran=4 failed=1"), first
    # stop_on_error: the first item fails (a.txt is gone), the other three are not run.
    assert second.endswith(" items=4 ran=1 failed=1"), second


# -- read-only shares --------------------------------------------------------------------------


def test_a_read_only_share_answers_a_batch_of_propfinds(make_server: Callable[..., Any]) -> None:
    live = make_server(readonly=True)
    make_tree(live.root, {"a.txt": b"abc"})
    operations = [{"op": "propfind", "path": "a.txt", "props": ["{DAV:}getcontentlength"]}]
    response = post_batch(live, operations)
    assert response.status_code == 207, response.text
    [result] = response.json()["results"]
    assert (result["status"], result["props"]) == (200, {"{DAV:}getcontentlength": "3"})


@pytest.mark.parametrize(
    "change",
    [
        {"op": "delete", "path": "a.txt"},
        {"op": "mkcol", "path": "new/"},
        {"op": "copy", "path": "a.txt", "destination": "b.txt"},
        {"op": "move", "path": "a.txt", "destination": "b.txt"},
        {"op": "proppatch", "path": "a.txt", "set": {"{urn:t}color": "red"}},
    ],
)
def test_a_read_only_share_refuses_a_batch_with_any_change(
    make_server: Callable[..., Any], change: dict[str, Any]
) -> None:
    live = make_server(readonly=True)
    make_tree(live.root, {"a.txt": b"abc"})
    before = snapshot(live.root)
    operations = [{"op": "propfind", "path": "a.txt"}, change]
    response = post_batch(live, operations)
    assert response.status_code == 403, response.text
    assert response.text == "this share is read-only: a batch here may only hold propfind items\n"
    assert snapshot(live.root) == before
    assert live.services.props.get("/a.txt") == {}


def test_a_read_only_share_refuses_any_other_post(make_server: Callable[..., Any]) -> None:
    live = make_server(readonly=True)
    response = live.request("POST", "/", data=b"x=1", headers={"Content-Type": "text/plain"})
    assert response.status_code == 403


# -- anonymous users -----------------------------------------------------------------------------


def test_an_anonymous_batch_needing_a_login_is_401_before_anything_runs(
    make_server: Callable[..., Any], tmp_path: Any
) -> None:
    htpasswd = write_users(tmp_path / "htpasswd", {"bob": "bob-pw"})
    live = make_server(htpasswd=htpasswd, anonymous="read")
    make_tree(live.root, {"a.txt": b"a", "b.txt": b"b"})
    before = snapshot(live.root)
    # A read first: had the items run in order, it would have run before the refusal.
    operations = [
        {"op": "propfind", "path": "a.txt"},
        {"op": "mkcol", "path": "new/"},
        {"op": "delete", "path": "b.txt"},
    ]
    response = post_batch(live, operations)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert snapshot(live.root) == before
    # What the client does with the challenge: the same batch with credentials.
    response = post_batch(
        live, operations, headers={"Authorization": requests.auth._basic_auth_str("bob", "bob-pw")}
    )
    assert [r["status"] for r in response.json()["results"]] == [200, 201, 204]
    # Reads alone need no login.
    response = post_batch(live, [{"op": "propfind", "path": "a.txt"}])
    assert [r["status"] for r in response.json()["results"]] == [200]
