"""An adversarial review of the ordering of changes (`davserver.ordering`), the transfers that
keep a replaced resource aside (`davserver.transfers`), recovery and the upload sweep.

Each test is named for what a user sees. Seven of them proved defects found in the review
(an If header or If-Match not checked again at the commit, a GET mixing a Content-Range
rewrite, a stalled piece holding its folder, a start sweeping a resource set aside, claims not
meeting through a link, a COPY trying members of a destination it could not make); the others
are attacks that held and add coverage the other suites lack.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import LiveServer
from helpers import (
    COLOR,
    Failing,
    color_of,
    make_tree,
    proppatch_body,
    temp_files,
    wait_for,
    with_provider,
)
from procs import ServerProcess

from davserver import failpoints
from davserver.errors import InsufficientStorage
from davserver.provider.fs import ASIDE_PREFIX
from davserver.server import CLAIMS_FILE, STORE_FILE

# -- tools ----------------------------------------------------------------------------------


def _send_head(port: int, head: str, first: bytes) -> socket.socket:
    """Open a connection and send a request's head and the first part of its body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.encode() + first)
    return sock


def _status_after(sock: socket.socket, rest: bytes) -> int:
    """Send the rest of the body; the status of the answer."""
    sock.sendall(rest)
    answer = b""
    while b"\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    sock.close()
    return int(answer.split()[1])


def _claims(state: Path) -> list[tuple[str, str]]:
    """The claims (owner, intent) left in the claims store."""
    with sqlite3.connect(state / CLAIMS_FILE) as db:
        return list(db.execute("SELECT owner, intent FROM claims"))


def _asides(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(ASIDE_PREFIX))


class Gate:
    """Delegates to the provider, but its method `name` stops at its first call until the
    test opens the gate (then runs, or raises `error`): a change held at a known step."""

    def __init__(self, inner: Any, name: str, error: Exception | None = None) -> None:
        self.inner, self.name, self.error = inner, name, error
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.inner, name)
        if name != self.name:
            return real

        def gated(*args: Any, **kwargs: Any) -> Any:
            if not self.entered.is_set():
                self.entered.set()
                assert self.opened.wait(30), "the test never opened the gate"
                if self.error is not None:
                    raise self.error
            return real(*args, **kwargs)

        return gated


class Counting:
    """Delegates to the provider, counting `stat` calls on one path."""

    def __init__(self, inner: Any, path: str) -> None:
        self.inner, self.path = inner, path
        self.stats = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stat(self, path: str) -> Any:
        if path == self.path:
            self.stats += 1
        return self.inner.stat(path)


def _in_thread(call: Callable[[], requests.Response]) -> tuple[threading.Thread, list[Any]]:
    """Run `call` on a thread; the thread and a list that receives its response."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as exc:  # reported to the test as the outcome
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


# -- conditions checked before the claim ------------------------------------------------------


def test_put_with_if_header_etag_does_not_overwrite_a_file_changed_while_its_body_arrived(
    server: LiveServer,
) -> None:
    """A lost update: client A sends `If: (["etag"])` with a slow body; client B rewrites
    the file meanwhile. Run one after the other, A's PUT comes after B's and must fail 412."""
    r = server.request("PUT", "/f.txt", data=b"first")
    etag = r.headers["ETag"]
    body = b"A" * 10_000
    sock = _send_head(
        server.port,
        f"PUT /f.txt HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        f"If: ([{etag}])\r\nConnection: close\r\n\r\n",
        body[:10],
    )
    # The upload has begun (its staging file exists): its conditions were looked at.
    assert wait_for(lambda: temp_files(server.root) != [])
    assert server.request("PUT", "/f.txt", data=b"B's work").status_code == 204
    assert _status_after(sock, body[10:]) == 412
    assert (server.root / "f.txt").read_bytes() == b"B's work"


def test_put_with_if_match_does_not_overwrite_a_file_changed_while_its_body_arrived(
    server: LiveServer,
) -> None:
    """The same race with If-Match holds: the condition is checked again at the commit."""
    etag = server.request("PUT", "/f.txt", data=b"first").headers["ETag"]
    body = b"A" * 10_000
    sock = _send_head(
        server.port,
        f"PUT /f.txt HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        f"If-Match: {etag}\r\nConnection: close\r\n\r\n",
        body[:10],
    )
    assert wait_for(lambda: temp_files(server.root) != [])
    assert server.request("PUT", "/f.txt", data=b"B's work").status_code == 204
    assert _status_after(sock, body[10:]) == 412
    assert (server.root / "f.txt").read_bytes() == b"B's work"


def test_proppatch_with_if_match_is_refused_when_the_file_changed_while_its_body_arrived(
    server: LiveServer,
) -> None:
    etag = server.request("PUT", "/f.txt", data=b"first").headers["ETag"]
    counting = with_provider(server, lambda inner: Counting(inner, "/f.txt"))
    body = proppatch_body(COLOR, "for the first version")
    sock = _send_head(
        server.port,
        f"PROPPATCH /f.txt HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        f"If-Match: {etag}\r\nConnection: close\r\n\r\n",
        body[:10],
    )
    # Its condition was looked at (the file was stat'ed); the body has not all come.
    assert wait_for(lambda: counting.stats > 0)
    assert server.request("PUT", "/f.txt", data=b"second").status_code == 204
    assert _status_after(sock, body[10:]) == 412
    assert color_of(server, "/f.txt") is None


# -- a Content-Range upload writes in place, under its claim, while the body arrives -----------


def test_get_during_a_content_range_rewrite_reads_the_old_or_the_new_content(
    server: LiveServer,
) -> None:
    size = 3 << 20  # a piece is read 1 MiB at a time (request.BODY_CHUNK)
    (server.root / "f.bin").write_bytes(b"A" * size)
    sock = _send_head(
        server.port,
        f"PUT /f.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n"
        f"Content-Range: bytes 0-{size - 1}/{size}\r\nConnection: close\r\n\r\n",
        b"B" * (size // 2),
    )
    try:
        # Part of the new piece is in the file already (as it is now; a bound, if fixed).
        wait_for(lambda: (server.root / "f.bin").read_bytes()[:1] == b"B")
        seen = server.request("GET", "/f.bin").content
        assert seen in (b"A" * size, b"B" * size), (seen.count(b"A"), seen.count(b"B"))
    finally:
        assert _status_after(sock, b"B" * (size - size // 2)) == 204


def test_a_stalled_content_range_upload_does_not_hold_up_deleting_its_folder(
    server: LiveServer,
) -> None:
    (server.root / "dir").mkdir()
    sock = _send_head(
        server.port,
        "PUT /dir/f.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
        "Content-Range: bytes 0-999/1000\r\nConnection: close\r\n\r\n",
        b"x" * 10,
    )
    try:
        wait_for(lambda: (server.root / "dir" / "f.bin").exists(), 2)  # the piece has begun
        try:
            status = server.request("DELETE", "/dir/", timeout=5).status_code
        except requests.Timeout:
            status = 0  # still waiting for the stalled upload
        assert status == 204
    finally:
        sock.close()


def test_a_content_range_upload_cut_off_mid_body_leaves_no_claim(server: LiveServer) -> None:
    """The client vanishes mid-piece: its claim goes with the request, and the next change
    on the path (and its folder) runs at once."""
    sock = _send_head(
        server.port,
        "PUT /f.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
        "Content-Range: bytes 0-999/1000\r\nConnection: close\r\n\r\n",
        b"x" * 10,
    )
    wait_for(lambda: (server.root / "f.bin").exists(), 2)  # the piece has begun
    sock.close()
    assert wait_for(lambda: _claims(server.state) == [], 10)
    assert server.request("PUT", "/f.bin", data=b"whole", timeout=10).status_code in (201, 204)
    assert server.request("DELETE", "/f.bin", timeout=10).status_code == 204


# -- the sweep at a start, against another worker's transfer in progress ----------------------


def _copy_that_fails_onto_an_old_file(first: LiveServer, start_a_second_worker: bool) -> None:
    """Worker one overwrites /dst.txt (last changed two hours ago) with a COPY that then
    fails (507 making the copy), optionally while worker two starts on the same folders. A
    failed COPY changes nothing: /dst.txt is still there with its content and property."""
    make_tree(first.root, {"src/a.txt": b"new", "dst.txt": b"old"})
    old = time.time() - 7200
    os.utime(first.root / "dst.txt", (old, old))
    assert first.request("PROPPATCH", "/dst.txt", data=proppatch_body()).status_code == 207
    gate = with_provider(first, lambda inner: Gate(inner, "copy", InsufficientStorage("full")))
    thread, out = _in_thread(
        lambda: first.request(
            "COPY", "/src/", headers={"Destination": first.url("/dst.txt"), "Overwrite": "T"}
        )
    )
    second: LiveServer | None = None
    try:
        assert gate.entered.wait(10)
        assert len(_asides(first.root)) == 1  # /dst.txt is set aside, the copy under way
        if start_a_second_worker:
            second = LiveServer(first.root, first.state, {})
            for sweep in [t for t in threading.enumerate() if t.name == "sweep"]:
                sweep.join(30)
    finally:
        gate.opened.set()
        thread.join(30)
        if second is not None:
            second.stop()
    assert out[0].status_code != 204
    assert sorted(os.listdir(first.root)) == ["dst.txt", "src"]
    assert (first.root / "dst.txt").read_bytes() == b"old"
    assert color_of(first, "/dst.txt") == "red"


def test_a_copy_that_fails_onto_an_old_file_keeps_it(server: LiveServer) -> None:
    _copy_that_fails_onto_an_old_file(server, start_a_second_worker=False)


def test_a_second_worker_starting_does_not_destroy_a_file_another_copy_set_aside(
    server: LiveServer,
) -> None:
    _copy_that_fails_onto_an_old_file(server, start_a_second_worker=True)


def test_a_copy_whose_destination_folder_cannot_be_made_answers_that_failure(
    server: LiveServer,
) -> None:
    """RFC 4918 9.8.8: only the Destination failed, so the answer is its status (507), not a
    207 that also lists its members as 409 (they were never to be tried)."""
    make_tree(server.root, {"src/a.txt": b"new"})
    with_provider(server, lambda inner: Failing(inner, "copy", InsufficientStorage("full")))
    r = server.request("COPY", "/src/", headers={"Destination": server.url("/dst/")})
    assert r.status_code == 507, r.text
    assert sorted(os.listdir(server.root)) == ["src"]


# -- claims name paths, links name resources -------------------------------------------------


def test_put_by_the_real_path_waits_for_a_copy_onto_the_file_through_a_linked_folder(
    server: LiveServer,
) -> None:
    """COPY /src.txt onto /link/f.txt (the link leads to /real/) sets /real/f.txt aside; a
    PUT to /real/f.txt meanwhile sees no file and answers 201 Created, and the COPY then
    silently replaces what it stored. Run one after the other, the PUT replaces an existing
    file either way: 204."""
    make_tree(server.root, {"src.txt": b"copied", "real/f.txt": b"old"})
    os.symlink("real", server.root / "link")
    gate = with_provider(server, lambda inner: Gate(inner, "copy"))
    copy_thread, copied = _in_thread(
        lambda: server.request(
            "COPY", "/src.txt", headers={"Destination": server.url("/link/f.txt")}
        )
    )
    try:
        assert gate.entered.wait(10)
        put_thread, put = _in_thread(
            lambda: requests.put(server.url("/real/f.txt"), data=b"put", timeout=30)
        )
        wait_for(lambda: put != [], 2)  # done already if it did not wait for the COPY
    finally:
        gate.opened.set()
    copy_thread.join(30)
    put_thread.join(30)
    assert copied[0].status_code == 204
    assert put[0].status_code == 204


# -- things that held ---------------------------------------------------------------------------


def test_recovery_itself_killed_at_start_is_finished_by_the_next_start(tmp_path: Path) -> None:
    """A MOVE onto an existing folder dies once its rename is done; the next start, recovering
    it, dies too (at the step that forgets what was set aside); the start after that finishes
    the job: the moved tree with its properties, nothing set aside, no claim left."""
    root, state = tmp_path / "root", tmp_path / "state"
    root.mkdir()
    setup = ServerProcess(root, state)
    make_tree(root, {"a/one.txt": b"a1", "b/two.txt": b"b2"})
    for path in ("/a/one.txt", "/b/two.txt"):
        r = requests.request("PROPPATCH", setup.base + path, data=proppatch_body(), timeout=30)
        assert r.status_code == 207
    setup.stop()

    dying = ServerProcess(root, state, env={failpoints.VARIABLE: "transfer.done"})
    try:
        with pytest.raises(requests.ConnectionError):
            requests.request("MOVE", dying.base + "/a/", headers={"Destination": "/b/"}, timeout=30)
    finally:
        dying.stop()
    assert len(_claims(state)) == 1
    with pytest.raises(RuntimeError, match="exited"):
        ServerProcess(root, state, env={failpoints.VARIABLE: "transfer.aside-forgotten"})
    assert len(_claims(state)) == 1  # still there, now owned by the dead recoverer

    after = ServerProcess(root, state)
    try:
        assert _claims(state) == []
        assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["b"]
        assert (root / "b" / "one.txt").read_bytes() == b"a1"
        assert not (root / "b" / "two.txt").exists()
        assert _asides(root) == []
        with sqlite3.connect(state / STORE_FILE) as db:
            described = sorted(p for (p,) in db.execute("SELECT DISTINCT path FROM props"))
        assert described == ["/b/one.txt"]
    finally:
        after.stop()


def _batch(base: str, operations: list[dict[str, Any]]) -> requests.Response:
    return requests.post(base + "/", json={"operations": operations}, timeout=60)


def test_batches_moving_files_in_a_ring_across_processes_lose_nothing(
    two_processes: tuple[ServerProcess, ServerProcess],
) -> None:
    """Two workers each run batches that rotate files through a ring of names (x -> tmp,
    y -> x, tmp -> y, never overwriting) while the other does the same: whatever the
    interleaving, every file is still there exactly once, no claim is left, and no answer is
    a 503 or a 500."""
    first, second = two_processes
    root = first.root
    names = [f"r{i}" for i in range(4)]
    make_tree(root, {f"{n}.txt": n.encode() for n in names})
    keep = {"overwrite": False}  # a move may fail, but never replace (lose) a file

    def rotate(base: str, tag: str) -> list[int]:
        statuses = []
        for round_ in range(15):
            a, b = names[round_ % 4], names[(round_ + 1) % 4]
            tmp = f"t-{tag}.txt"
            r = _batch(
                base,
                [
                    {"op": "move", "path": f"{a}.txt", "destination": tmp, **keep},
                    {"op": "move", "path": f"{b}.txt", "destination": f"{a}.txt", **keep},
                    {"op": "move", "path": tmp, "destination": f"{b}.txt", **keep},
                ],
            )
            statuses.append(r.status_code)
            statuses += [item["status"] for item in r.json()["results"]]
        return statuses

    results: list[list[int]] = [[], []]

    def run(i: int, base: str) -> None:
        results[i] = rotate(base, str(i))

    threads = [threading.Thread(target=run, args=(i, s.base)) for i, s in enumerate(two_processes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    statuses = results[0] + results[1]
    assert 503 not in statuses and 500 not in statuses, statuses
    contents = sorted(
        p.read_bytes() for p in root.iterdir() if p.is_file() and not p.name.startswith(".")
    )
    assert contents == sorted(n.encode() for n in names)
    assert _claims(first.state) == []
    assert second.base != first.base


def test_overwriting_copy_and_move_of_names_at_the_longest_the_filesystem_allows(
    server: LiveServer,
) -> None:
    """The names a transfer sets aside and an upload stages under are the provider's own,
    of a fixed length: a destination named with 255 bytes is replaced like any other."""
    long = "n" * 251 + ".txt"
    assert server.request("PUT", f"/{long}", data=b"old").status_code == 201
    assert server.request("PUT", "/src.txt", data=b"new").status_code == 201
    r = server.request("COPY", "/src.txt", headers={"Destination": server.url(f"/{long}")})
    assert r.status_code == 204
    assert (server.root / long).read_bytes() == b"new"
    assert server.request("PUT", "/other.txt", data=b"moved").status_code == 201
    r = server.request("MOVE", "/other.txt", headers={"Destination": server.url(f"/{long}")})
    assert r.status_code == 204
    assert (server.root / long).read_bytes() == b"moved"
    assert _asides(server.root) == [] and temp_files(server.root) == []
    assert _claims(server.state) == []
