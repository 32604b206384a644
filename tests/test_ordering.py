"""Requests that meet on one path give the outcome of running them one after the other.

Regression tests for the review's findings (issue 14: crossing MOVEs, a PUT in flight against a
LOCK, ETags that repeat) and for the ordering that fixes them (`davserver.ordering`), in one
process and across separate server processes sharing a root and a state folder.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from conftest import LiveServer
from helpers import (
    Failing,
    color_of,
    lockinfo,
    make_tree,
    proppatch_body,
    shared_names,
    temp_files,
    wait_for,
    with_provider,
)
from procs import ServerProcess

from davserver.errors import Forbidden, InsufficientStorage
from davserver.provider.fs import UPLOAD_PREFIX
from davserver.server import STORE_FILE

FILES = 300  # per tree: enough that a delete walk takes a while, few enough to repeat often


def _two_trees(root: Path) -> None:
    make_tree(
        root,
        {f"A/a{i:04}.txt": b"from A" for i in range(FILES)}
        | {f"B/b{i:04}.txt": b"from B" for i in range(FILES)},
    )


def _race(*calls: Callable[[], requests.Response]) -> list[int]:
    """Run the calls at the same moment, each on its own thread; their statuses in order."""
    barrier = threading.Barrier(len(calls))
    statuses: list[int] = [0] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        statuses[i] = calls[i]().status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses


def _move(base: str, src: str, dst: str) -> Callable[[], requests.Response]:
    return lambda: requests.request(
        "MOVE",
        base + src,
        headers={"Destination": base + dst, "Overwrite": "T"},
        timeout=60,
    )


def _check_one_tree_left(root: Path, statuses: list[int]) -> None:
    """Run one after the other, the first MOVE replaces the other tree (204) and the second
    moves the result back to the name just vacated (201): one whole tree is left, the
    first one's, under one of the two names."""
    assert sorted(statuses) == [201, 204], statuses
    left = {p.name: sorted(f.name for f in p.iterdir()) for p in root.iterdir() if p.is_dir()}
    left = {name: files for name, files in left.items() if not name.startswith(".davserver")}
    assert len(left) == 1, left
    [files] = left.values()
    assert len(files) == FILES
    assert {f[0] for f in files} in ({"a"}, {"b"})


def test_crossing_moves_run_one_after_the_other(server: LiveServer) -> None:
    for _ in range(8):
        for child in server.root.iterdir():
            if child.name in ("A", "B"):
                assert server.request("DELETE", f"/{child.name}/").status_code == 204
        _two_trees(server.root)
        statuses = _race(_move(server.base, "/A/", "/B/"), _move(server.base, "/B/", "/A/"))
        _check_one_tree_left(server.root, statuses)


def test_crossing_moves_across_processes(
    two_processes: tuple[ServerProcess, ServerProcess],
) -> None:
    first, second = two_processes
    for _ in range(5):
        for name in ("A", "B"):
            requests.request("DELETE", f"{first.base}/{name}/", timeout=30)
        _two_trees(first.root)
        statuses = _race(_move(first.base, "/A/", "/B/"), _move(second.base, "/B/", "/A/"))
        _check_one_tree_left(first.root, statuses)


def test_overwriting_move_that_fails_keeps_the_destination(server: LiveServer) -> None:
    """A MOVE whose source cannot be moved changes nothing: the destination it would have
    replaced is still there, with its properties."""
    make_tree(server.root, {"src/a.txt": b"source", "dst/keep.txt": b"destination"})
    assert server.request("PROPPATCH", "/dst/keep.txt", data=proppatch_body()).status_code == 207

    with_provider(server, lambda inner: Failing(inner, "move", Forbidden("refused")))
    r = server.request("MOVE", "/src/", headers={"Destination": server.url("/dst/")})
    assert r.status_code == 403
    assert (server.root / "dst" / "keep.txt").read_bytes() == b"destination"
    assert (server.root / "src" / "a.txt").read_bytes() == b"source"
    assert color_of(server, "/dst/keep.txt") == "red"
    # Nothing is left aside either.
    assert sorted(p.name for p in server.root.iterdir() if "aside" in p.name) == []
    assert shared_names(server.root) == ["dst", "src"]


def test_overwriting_copy_whose_destination_cannot_be_made_keeps_it(server: LiveServer) -> None:
    make_tree(server.root, {"src.txt": b"new", "dst.txt": b"old"})
    assert server.request("PROPPATCH", "/dst.txt", data=proppatch_body()).status_code == 207

    with_provider(server, lambda inner: Failing(inner, "copy", InsufficientStorage("full")))
    r = server.request("COPY", "/src.txt", headers={"Destination": server.url("/dst.txt")})
    assert r.status_code == 507
    assert (server.root / "dst.txt").read_bytes() == b"old"
    assert color_of(server, "/dst.txt") == "red"


def _put_half(port: int, path: str, body: bytes, root: Path) -> socket.socket:
    """Send a PUT's headers and the first half of its body, and wait until the server is
    writing it (its upload file exists under `root`); the socket, to finish it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    sock.sendall(head + body[: len(body) // 2])
    assert wait_for(lambda: any(p.name.startswith(UPLOAD_PREFIX) for p in root.rglob("*")))
    return sock


def _finish(sock: socket.socket, body: bytes) -> int:
    sock.sendall(body[len(body) // 2 :])
    answer = b""
    while b"\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    sock.close()
    return int(answer.split()[1])


def _put_then_lock(put_port: int, lock_base: str, root: Path) -> None:
    (root / "f.txt").write_bytes(b"original")
    body = b"0123456789" * 1000
    sock = _put_half(put_port, "/f.txt", body, root)
    r = requests.request("LOCK", lock_base + "/f.txt", data=lockinfo(), timeout=30)
    assert r.status_code == 200
    # The lock came first: the PUT, though begun before it, may not change the file.
    assert _finish(sock, body) == 423
    assert (root / "f.txt").read_bytes() == b"original"
    assert temp_files(root) == []


def test_put_in_flight_does_not_overwrite_a_file_locked_meanwhile(server: LiveServer) -> None:
    _put_then_lock(server.port, server.base, server.root)


def test_put_in_flight_against_a_lock_from_another_process(
    two_processes: tuple[ServerProcess, ServerProcess],
) -> None:
    first, second = two_processes
    _put_then_lock(first.port, second.base, first.root)


def test_put_in_flight_lands_when_the_lock_is_its_own(server: LiveServer) -> None:
    """The check at the commit uses the request's own tokens: a locked file stays writable by
    its lock holder, however long the body takes."""
    (server.root / "f.txt").write_bytes(b"original")
    r = server.request("LOCK", "/f.txt", data=lockinfo())
    token = r.headers["Lock-Token"]
    body = b"new content"
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(
        (
            f"PUT /f.txt HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            f"If: ({token})\r\nConnection: close\r\n\r\n"
        ).encode()
        + body[:4]
    )
    assert _finish_rest(sock, body[4:]) == 204
    assert (server.root / "f.txt").read_bytes() == body


def _finish_rest(sock: socket.socket, rest: bytes) -> int:
    sock.sendall(rest)
    answer = sock.recv(4096)
    sock.close()
    return int(answer.split()[1])


def test_upload_into_a_folder_moved_meanwhile_leaves_nothing(server: LiveServer) -> None:
    """The upload began in /dir/; /dir/ moved to /moved/ before the body ended: the PUT fails
    (409: its folder is gone) and no temporary file stays, at either place."""
    (server.root / "dir").mkdir()
    body = b"x" * 100_000
    sock = _put_half(server.port, "/dir/f.bin", body, server.root)
    r = server.request("MOVE", "/dir/", headers={"Destination": server.url("/moved/")})
    assert r.status_code == 201
    assert _finish(sock, body) == 409
    assert sorted(p.name for p in (server.root / "moved").iterdir()) == []
    assert temp_files(server.root) == []


def test_etag_changes_with_every_rewrite_whatever_mtime_a_client_sets(
    server: LiveServer,
) -> None:
    """Same size, same X-OC-Mtime, inodes reused at once: 200 rewrites, 200 ETags."""
    seen: dict[str, int] = {}
    for i in range(200):
        r = server.request(
            "PUT", "/same.txt", data=f"{i % 10:04}".encode(), headers={"X-OC-Mtime": "1000000"}
        )
        assert r.status_code in (201, 204) and (r.status_code == 201) == (i == 0)
        etag = r.headers["ETag"]
        assert etag not in seen, f"rewrite {i} repeats the ETag of rewrite {seen[etag]}"
        seen[etag] = i


def test_etag_changes_with_a_content_range_write(server: LiveServer) -> None:
    server.request("PUT", "/r.bin", data=b"aaaa", headers={"X-OC-Mtime": "1000000"})
    before = server.request("HEAD", "/r.bin").headers["ETag"]
    r = server.request(
        "PUT",
        "/r.bin",
        data=b"bb",
        headers={"Content-Range": "bytes 1-2/4", "X-OC-Mtime": "1000000"},
    )
    assert r.status_code == 204
    assert (server.root / "r.bin").read_bytes() == b"abba"
    after = server.request("HEAD", "/r.bin")
    assert after.headers["ETag"] != before
    # A client holding the old ETag gets the new content, not a 304.
    r = server.request("GET", "/r.bin", headers={"If-None-Match": before})
    assert r.status_code == 200 and r.content == b"abba"


def test_content_range_put_creating_a_file_gets_no_deleted_files_properties(
    server: LiveServer,
) -> None:
    (server.root / "f.txt").write_bytes(b"old")
    assert server.request("PROPPATCH", "/f.txt", data=proppatch_body()).status_code == 207
    (server.root / "f.txt").unlink()  # deleted behind the server's back
    r = server.request("PUT", "/f.txt", data=b"new", headers={"Content-Range": "bytes 0-2/3"})
    assert r.status_code == 201
    assert color_of(server, "/f.txt") is None


def test_content_range_put_honours_if_none_match_star(server: LiveServer) -> None:
    (server.root / "f.txt").write_bytes(b"old")
    r = server.request(
        "PUT",
        "/f.txt",
        data=b"new",
        headers={"Content-Range": "bytes 0-2/3", "If-None-Match": "*"},
    )
    assert r.status_code == 412
    assert (server.root / "f.txt").read_bytes() == b"old"


def test_a_lock_on_a_path_without_a_file_stops_the_first_put(server: LiveServer) -> None:
    r = server.request("LOCK", "/n.txt", data=lockinfo())
    assert r.status_code == 201
    (server.root / "n.txt").unlink()  # the empty file goes behind the server's back
    r = server.request("PUT", "/n.txt", data=b"x")
    assert r.status_code == 423
    assert not (server.root / "n.txt").exists()


def test_lock_waits_for_a_folder_delete_and_locks_what_it_left(server: LiveServer) -> None:
    """A LOCK meeting a DELETE of the folder above runs before or after it, never between:
    after it, the file is gone and the LOCK fails (409, no parent); before it, the DELETE
    meets the lock (423 for that member) and the file stays, locked."""
    for _ in range(10):
        make_tree(server.root, {f"d/f{i:03}.txt": b"x" for i in range(FILES)})
        statuses = _race(
            lambda: requests.request("DELETE", server.url("/d/"), timeout=60),
            lambda: requests.request(
                "LOCK", server.url(f"/d/f{FILES - 1:03}.txt"), data=lockinfo(), timeout=60
            ),
        )
        delete, lock = statuses
        now = server.services.clock()
        last = f"/d/f{FILES - 1:03}.txt"
        if lock == 200:
            assert delete == 207
            assert sorted(p.name for p in (server.root / "d").iterdir()) == [last[3:]]
            [held] = server.services.locks.covering(last, now)
            assert held.root == last
        else:
            assert (delete, lock) == (204, 409)
            assert not (server.root / "d").exists()
            assert server.services.locks.around("/d", now) == []
        server.services.locks.delete(["/d"], recursive=True)
        shutil.rmtree(server.root / "d", ignore_errors=True)


def test_proppatch_racing_a_move_lands_on_the_moved_file(server: LiveServer) -> None:
    """Either order: the PROPPATCH before the MOVE (207, the property moves with the file) or
    after it (404 at the old path); never a 207 whose property stays behind at the old path."""
    for i in range(20):
        make_tree(server.root, {f"m{i}/f.txt": b"x"})
        statuses = _race(
            lambda i=i: requests.request(  # type: ignore[misc]
                "PROPPATCH", server.url(f"/m{i}/f.txt"), data=proppatch_body(), timeout=60
            ),
            _move(server.base, f"/m{i}/", f"/n{i}/"),
        )
        patch, move = statuses
        assert move == 201
        assert server.services.props.described(f"/m{i}") == []
        if patch == 207:
            assert color_of(server, f"/n{i}/f.txt") == "red"
        else:
            assert patch == 404
            assert color_of(server, f"/n{i}/f.txt") is None


# -- every change against every tree operation on the folder above ---------------------------

CHANGES = {
    "PROPPATCH": lambda base: requests.request(
        "PROPPATCH", base + "/t/f.txt", data=proppatch_body(), timeout=60
    ),
    "LOCK": lambda base: requests.request("LOCK", base + "/t/f.txt", data=lockinfo(), timeout=60),
    "PUT": lambda base: requests.request("PUT", base + "/t/f.txt", data=b"put", timeout=60),
    "MKCOL": lambda base: requests.request("MKCOL", base + "/t/new/", timeout=60),
}
TREE_OPS = {
    "MOVE": lambda base: requests.request(
        "MOVE", base + "/t/", headers={"Destination": base + "/u/"}, timeout=60
    ),
    "COPY": lambda base: requests.request(
        "COPY", base + "/t/", headers={"Destination": base + "/u/"}, timeout=60
    ),
    "DELETE": lambda base: requests.request("DELETE", base + "/t/", timeout=60),
}


def _serial_outcomes(change: str, op: str) -> set[tuple[int, int]]:
    """The (change, tree operation) statuses of running them in either order."""
    # Change first: it succeeds on /t/; then the tree operation (a DELETE meets the lock).
    first = {"PROPPATCH": 207, "LOCK": 200, "PUT": 204, "MKCOL": 201}[change]
    op_after = {"MOVE": 201, "COPY": 201, "DELETE": 204}[op]
    if change == "LOCK" and op in ("MOVE", "DELETE"):
        op_after = 423 if op == "MOVE" else 207  # the lock holds the member
    # Tree operation first: after MOVE or DELETE, /t/ is gone; after COPY it is still there.
    gone = {"PROPPATCH": 404, "LOCK": 409, "PUT": 409, "MKCOL": 409}[change]
    change_after = first if op == "COPY" else gone
    return {(first, op_after), (change_after, {"MOVE": 201, "COPY": 201, "DELETE": 204}[op])}


def _agree(root: Path, state: Path) -> None:
    """No property or lock row names a resource that is not there."""
    with sqlite3.connect(state / STORE_FILE) as db:
        rows = [p for (p,) in db.execute("SELECT path FROM props")]
        rows += [r for (r,) in db.execute("SELECT root FROM locks")]
        assert all((root / path.lstrip("/")).exists() for path in rows), rows
        db.execute("DELETE FROM props")
        db.execute("DELETE FROM locks")


@pytest.mark.parametrize("op", sorted(TREE_OPS))
@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("where", ["threads", "processes"])
def test_change_against_a_tree_operation_above_it(
    tmp_path: Path, make_server: Callable[..., LiveServer], where: str, change: str, op: str
) -> None:
    """In one process, and with the two requests sent to two processes sharing the state."""
    if where == "threads":
        server = make_server()
        root, state, bases = server.root, server.state, (server.base, server.base)
        procs: list[ServerProcess] = []
    else:
        root, state = tmp_path / "shared", tmp_path / "shared-state"
        root.mkdir()
        procs = [ServerProcess(root, state), ServerProcess(root, state)]
        bases = (procs[0].base, procs[1].base)
    try:
        for _ in range(6):
            for name in ("t", "u"):
                shutil.rmtree(root / name, ignore_errors=True)
            make_tree(root, {"t/f.txt": b"old", "t/g.txt": b"g"})
            statuses = _race(lambda: CHANGES[change](bases[0]), lambda: TREE_OPS[op](bases[1]))
            assert tuple(statuses) in _serial_outcomes(change, op), statuses
            if change == "PROPPATCH" and statuses[0] == 207 and op != "DELETE":
                # The property went wherever the file went.
                moved_to = "/u/f.txt" if op == "MOVE" else "/t/f.txt"
                with sqlite3.connect(state / STORE_FILE) as db:
                    found = db.execute("SELECT path FROM props").fetchall()
                assert (moved_to,) in found, found
            _agree(root, state)
    finally:
        for proc in procs:
            proc.stop()


def test_a_batch_crossing_a_move_runs_before_or_after_it(server: LiveServer) -> None:
    """A batch holds all its items' paths at once: a MOVE that crosses its MOVE runs wholly
    before or after the batch, never between its items."""

    def batch() -> requests.Response:
        body = {"operations": [{"op": "move", "path": "A/", "destination": "B/"}]}
        r = requests.post(server.url("/"), json=body, timeout=60)
        assert r.status_code == 207
        r.status_code = r.json()["results"][0]["status"]
        return r

    for _ in range(6):
        for child in server.root.iterdir():
            if child.name in ("A", "B"):
                shutil.rmtree(child)
        _two_trees(server.root)
        statuses = _race(batch, _move(server.base, "/B/", "/A/"))
        _check_one_tree_left(server.root, statuses)


def test_a_change_that_waits_too_long_gets_503_with_retry_after(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another live process holds a claim on the folder (a long COPY, say): a change below it
    waits, then gives up with 503 and Retry-After, and changes nothing."""
    from davserver import ordering
    from davserver.store.sqlite_claims import SqliteClaimStore

    monkeypatch.setattr(ordering, "WAIT_SECONDS", 0.3)
    other = SqliteClaimStore(str(server.state / "claims.sqlite3"))
    held, _ = other.try_take(["/busy"], [], {"op": "copy"})
    assert held is not None
    (server.root / "busy").mkdir()
    try:
        r = server.request("PUT", "/busy/f.txt", data=b"x")
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "5"
        assert not (server.root / "busy" / "f.txt").exists()
        assert server.request("PUT", "/elsewhere.txt", data=b"x").status_code == 201
    finally:
        other.release(held)
        other.close()
    assert server.request("PUT", "/busy/f.txt", data=b"x").status_code == 201
