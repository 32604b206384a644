"""What a crash leaves: the server SIGKILLed between the steps of a change, then restarted.

Each failpoint (`davserver.failpoints`) kills the server process at one step; the restart
recovers (`davserver.recovery`), and then every resource is as it was before the request or as
the request would have left it, with its own dead properties and locks and no one else's, and
nothing of the server's own is left over (README: "After a crash").

Every file in these trees holds a unique text, and its dead property COLOR holds the same
text: a property that ends up on the wrong file, or a file without its property, shows.
"""

from __future__ import annotations

import json
import random
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from helpers import COLOR, lockinfo, make_tree, prop_xml, wait_for
from procs import ServerProcess

from davserver import failpoints
from davserver.provider.fs import TEMP_PREFIX, TRASH_NAME, UPLOAD_PREFIX
from davserver.server import STORE_FILE


def _proppatch(base: str, path: str, value: str) -> int:
    body = (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
        f"{prop_xml(COLOR, value)}</D:prop></D:set></D:propertyupdate>"
    )
    return requests.request("PROPPATCH", base + path, data=body, timeout=30).status_code


def _labelled_tree(server: ServerProcess, folder: str, count: int) -> dict[str, str]:
    """`count` files under /folder/, each holding and labelled with a unique text; the
    folder labelled too. Returns {path: label}."""
    labels = {f"/{folder}/f{i:03}.txt": f"{folder}-{i}-{random.random()}" for i in range(count)}
    make_tree(server.root, {p[1:]: label.encode() for p, label in labels.items()})
    for path, label in labels.items():
        assert _proppatch(server.base, path, label) == 207
    assert _proppatch(server.base, f"/{folder}/", f"folder-{folder}") == 207
    return labels


def _rows(state: Path) -> tuple[dict[str, str], list[str]]:
    """The state database's property values of COLOR {path: value} and lock roots."""
    with sqlite3.connect(state / STORE_FILE) as db:
        props = dict(db.execute("SELECT path, value FROM props WHERE name = ?", (COLOR,)))
        locks = [root for (root,) in db.execute("SELECT root FROM locks")]
    return {p: _text(v) for p, v in props.items()}, locks


def _text(value_xml: str) -> str:
    return value_xml.split(">", 1)[1].rsplit("<", 1)[0]


def check_agreement(server: ServerProcess) -> None:
    """Files, properties and locks agree, and nothing of the server's own is left over."""
    root = server.root
    props, locks = _rows(server.state)
    for path, label in props.items():
        local = root / path.lstrip("/")
        assert local.exists(), f"property of {path}, which does not exist"
        if local.is_file():
            assert local.read_text() == label, f"{path} holds another file's property"
    for lock_root in locks:
        assert (root / lock_root.lstrip("/")).exists(), f"lock on {lock_root}, which is gone"
    for local in root.rglob("*.txt"):
        rel = "/" + local.relative_to(root).as_posix()
        if TEMP_PREFIX not in rel:
            assert props.get(rel) == local.read_text(), f"{rel} lost its property"

    def leftovers() -> list[str]:
        return [
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.name.startswith(TEMP_PREFIX) and TRASH_NAME not in p.parts
        ]

    # The sweep of uploads runs in the background after the start.
    assert wait_for(lambda: leftovers() == [], 10), leftovers()


@pytest.fixture
def spaces(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    root, state = tmp_path / "root", tmp_path / "state"
    root.mkdir()
    yield root, state


def _crash(
    root: Path,
    state: Path,
    point: str,
    method: str,
    path: str,
    *,
    args: tuple[str, ...] = (),
    **kw: object,
) -> None:
    """Start a server (with `args`) armed with `point`, send one request, and see it die at
    that point."""
    # One process: with worker processes, the one that dies is replaced and the server lives.
    dying = ServerProcess(root, state, *args, env={failpoints.VARIABLE: point}, workers=1)
    try:
        try:
            answer = requests.request(method, dying.base + path, timeout=30, **kw)  # type: ignore[arg-type]
        except requests.ConnectionError:
            pass
        else:
            dying.stop()
            pytest.fail(
                f"{method} {path} was answered, not cut off at {point}: {answer.status_code} "
                f"{answer.text[:2000]!r}; logged: {dying.logged[-3000:]}"
            )
        assert dying.proc is not None
        assert dying.proc.wait(10) == -9
    finally:
        dying.stop()


STEPS = ["transfer.rows-aside", "transfer.set-aside", "transfer.transferred", "transfer.done"]
# A MOVE within one filesystem is a rename: it copies no member, but its properties follow.
TRANSFERS = [
    *[("MOVE", p) for p in [*STEPS, "transfer.props-moved", "transfer.aside-forgotten"]],
    *[("COPY", p) for p in [*STEPS, "transfer.aside-forgotten", "copy.member@3"]],
]


@pytest.mark.parametrize(("method", "point"), TRANSFERS)
def test_overwriting_transfer_killed_at_each_step(
    spaces: tuple[Path, Path], method: str, point: str
) -> None:
    root, state = spaces
    setup = ServerProcess(root, state)
    a = _labelled_tree(setup, "a", 6)
    b = _labelled_tree(setup, "b", 4)
    setup.stop()
    _crash(root, state, point, method, "/a/", headers={"Destination": "/b/", "Overwrite": "T"})
    after = ServerProcess(root, state)
    try:
        check_agreement(after)
        files = {"/" + p.relative_to(root).as_posix() for p in root.rglob("*.txt")}
        b_now = {p.replace("/a/", "/b/", 1) for p in a}
        before = set(a) | set(b)
        done = b_now if method == "MOVE" else set(a) | b_now
        assert files in (before, done), sorted(files)
        # And the server works on the recovered paths.
        r = requests.request("PUT", after.base + "/b/new.txt", data=b"n", timeout=30)
        assert r.status_code == 201
    finally:
        after.stop()


@pytest.mark.parametrize("point", ["transfer.transferred", "transfer.done"])
def test_move_killed_before_its_properties_followed(spaces: tuple[Path, Path], point: str) -> None:
    """Issue 21's first finding: the rename done, the property rows not yet moved."""
    root, state = spaces
    setup = ServerProcess(root, state)
    a = _labelled_tree(setup, "a", 3)
    setup.stop()
    _crash(root, state, point, "MOVE", "/a/", headers={"Destination": "/moved/"})
    after = ServerProcess(root, state)
    try:
        check_agreement(after)
        assert sorted(p.name for p in root.iterdir() if p.name != TRASH_NAME) == ["moved"]
        props, _ = _rows(state)
        assert props["/moved"] == "folder-a"
        assert {p.replace("/a/", "/moved/") for p in a} <= set(props)
    finally:
        after.stop()


def test_folder_delete_killed_midway_leaves_no_rows_of_deleted_files(
    spaces: tuple[Path, Path],
) -> None:
    root, state = spaces
    setup = ServerProcess(root, state)
    _labelled_tree(setup, "d", 40)
    r = requests.request("LOCK", setup.base + "/d/f030.txt", data=lockinfo(), timeout=30)
    assert r.status_code == 200
    setup.stop()
    # The locked member stays (a 207 had the DELETE finished); the server dies before that.
    _crash(root, state, "delete.member@20", "DELETE", "/d/")
    after = ServerProcess(root, state)
    try:
        check_agreement(after)
        left = sorted(p.name for p in (root / "d").iterdir())
        assert 0 < len(left) < 40
        assert "f030.txt" in left
        # A file made anew where a deleted one was starts bare: no property, no lock.
        gone = next(f"/d/f{i:03}.txt" for i in range(40) if f"f{i:03}.txt" not in left)
        r = requests.request("PUT", after.base + gone, data=b"new", timeout=30)
        assert r.status_code == 201
        assert (
            requests.request("PUT", after.base + gone, data=b"again", timeout=30).status_code == 204
        )
        assert gone not in _rows(state)[0]
    finally:
        after.stop()


@pytest.mark.parametrize("point", ["put.staged", "put.committed"])
def test_put_killed_leaves_the_old_or_the_new_content_and_no_temporary_file(
    spaces: tuple[Path, Path], point: str
) -> None:
    root, state = spaces
    setup = ServerProcess(root, state)
    labels = _labelled_tree(setup, "p", 1)
    setup.stop()
    [(path, label)] = labels.items()
    _crash(root, state, point, "PUT", path, data=label.encode())
    after = ServerProcess(root, state)
    try:
        check_agreement(after)
        assert (root / path.lstrip("/")).read_text() == label
    finally:
        after.stop()


def test_lock_of_an_unmapped_url_killed_before_its_file_leaves_no_lock(
    spaces: tuple[Path, Path],
) -> None:
    root, state = spaces
    _crash(root, state, "lock.acquired", "LOCK", "/new.txt", data=lockinfo())
    after = ServerProcess(root, state)
    try:
        check_agreement(after)
        assert _rows(state)[1] == []
        assert (
            requests.request("PUT", after.base + "/new.txt", data=b"x", timeout=30).status_code
            == 201
        )
        assert (
            requests.request("PUT", after.base + "/new.txt", data=b"y", timeout=30).status_code
            == 204
        )
    finally:
        after.stop()


def test_random_kills_during_a_mixed_workload(spaces: tuple[Path, Path]) -> None:
    """SIGKILL at random moments while clients move, copy, delete, write and label trees;
    after every restart, files, properties and locks agree."""
    root, state = spaces
    rng = random.Random(4918)
    server = ServerProcess(root, state)
    _labelled_tree(server, "t0", 30)
    for round_ in range(12):
        stop = threading.Event()

        def work(seed: int, base: str = server.base, stop: threading.Event = stop) -> None:
            local = random.Random(seed)
            while not stop.is_set():
                a, b = local.sample(["t0", "t1", "t2"], 2)
                kind = local.choice(["MOVE", "COPY", "DELETE", "PUT"])
                try:
                    if kind == "PUT":
                        # Unlabelled (.bin): a PUT and a PROPPATCH are two requests, and a
                        # crash may fall between them.
                        name = f"/{a}/w{local.randrange(5)}.bin"
                        requests.request("PUT", base + name, data=b"w", timeout=5)
                    elif kind == "DELETE":
                        requests.request("DELETE", f"{base}/{a}/", timeout=5)
                    else:
                        requests.request(
                            kind, f"{base}/{a}/", headers={"Destination": f"/{b}/"}, timeout=5
                        )
                except requests.RequestException:
                    return

        threads = [threading.Thread(target=work, args=(rng.random(),)) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.05, 0.4))
        server.kill()
        stop.set()
        for t in threads:
            t.join(30)
        server = ServerProcess(root, state)
        check_agreement(server)
        if not any((root / f"t{i}").exists() for i in range(3)):
            _labelled_tree(server, f"t{round_ % 3}", 30)
    server.stop()


def test_a_start_sweeps_a_dead_workers_upload_but_not_a_live_ones(
    spaces: tuple[Path, Path],
) -> None:
    """Two workers share the folder; one dies mid-upload, the other is mid-upload when a
    third starts: the dead one's file goes at once (whatever its age), the live one's upload
    goes on and lands."""
    root, state = spaces
    live = ServerProcess(root, state)
    body = b"x" * 200_000
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=30)
    sock.sendall(
        f"PUT /live.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n".encode()
        + body[:1000]
    )
    assert wait_for(lambda: any(p.name.startswith(UPLOAD_PREFIX) for p in root.iterdir()))
    try:
        _crash(root, state, "put.staged", "PUT", "/dead.bin", data=b"y" * 1000)
        uploads = sorted(p.name for p in root.iterdir() if p.name.startswith(UPLOAD_PREFIX))
        assert len(uploads) == 2, uploads  # the live upload's and the dead one's
        third = ServerProcess(root, state)
        try:
            assert wait_for(
                lambda: len([p for p in root.iterdir() if p.name.startswith(UPLOAD_PREFIX)]) == 1
            )
            sock.sendall(body[1000:])
            assert sock.recv(100).split()[1] == b"201"
            assert (root / "live.bin").read_bytes() == body
            assert not (root / "dead.bin").exists()
            check_agreement(third)
        finally:
            third.stop()
    finally:
        sock.close()
        live.stop()


def test_proppatch_setting_the_time_killed_between_its_two_stores_is_finished(
    spaces: tuple[Path, Path],
) -> None:
    """Win32LastModifiedTime changes the file's time, the other property goes to the store:
    killed between the two, the restart finishes the PROPPATCH (both are recorded first)."""
    root, state = spaces
    (root / "w.txt").write_text("w")
    body = (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
        'xmlns:Z="urn:schemas-microsoft-com:">'
        "<D:set><D:prop><Z:Win32LastModifiedTime>Wed, 01 Jan 2020 00:00:00 GMT"
        f"</Z:Win32LastModifiedTime>{prop_xml(COLOR, 'w')}</D:prop></D:set></D:propertyupdate>"
    )
    _crash(root, state, "proppatch.mtime-set", "PROPPATCH", "/w.txt", data=body)
    after = ServerProcess(root, state)
    try:
        check_agreement(after)
        assert (root / "w.txt").stat().st_mtime == 1577836800
        assert _rows(state)[0] == {"/w.txt": "w"}
    finally:
        after.stop()


def test_chunked_put_killed_before_its_commit_keeps_the_old_content(
    spaces: tuple[Path, Path],
) -> None:
    root, state = spaces
    (root / "c.bin").write_text("old")

    def chunks() -> Iterator[bytes]:
        yield b"new "
        yield b"content"

    _crash(root, state, "put.staged", "PUT", "/c.bin", data=chunks())
    after = ServerProcess(root, state)
    try:
        assert (root / "c.bin").read_text() == "old"
        check_agreement(after)
    finally:
        after.stop()


def test_content_range_put_killed_keeps_what_arrived_and_nothing_else(
    spaces: tuple[Path, Path],
) -> None:
    """A piece of a resumable upload is written in place, by design: what arrived stays (the
    client resumes from the file's size), and nothing else does."""
    root, state = spaces
    (root / "r.bin").write_bytes(b"aaaa")
    _crash(
        root,
        state,
        "put-range.written",
        "PUT",
        "/r.bin",
        data=b"bbbb",
        headers={"Content-Range": "bytes 4-7/8"},
    )
    after = ServerProcess(root, state)
    try:
        assert (root / "r.bin").read_bytes() == b"aaaabbbb"
        r = requests.request("PUT", after.base + "/r.bin", data=b"x", timeout=30)
        assert r.status_code == 204
    finally:
        after.stop()


def test_mkcol_killed_after_forgetting_stale_rows_leaves_nothing_attached(
    spaces: tuple[Path, Path],
) -> None:
    root, state = spaces
    setup = ServerProcess(root, state)
    (root / "gone").mkdir()
    assert _proppatch(setup.base, "/gone/", "stale") == 207
    setup.stop()
    (root / "gone").rmdir()  # removed behind the server's back: its row is stale
    _crash(root, state, "mkcol.forgotten", "MKCOL", "/gone/")
    after = ServerProcess(root, state)
    try:
        assert _rows(state)[0] == {}
        assert requests.request("MKCOL", after.base + "/gone/", timeout=30).status_code == 201
        assert _rows(state)[0] == {}
    finally:
        after.stop()


def test_recovery_at_start_is_bounded_by_the_interrupted_change_not_the_store(
    spaces: tuple[Path, Path],
) -> None:
    """A million property rows elsewhere, a DELETE of a small folder interrupted: the restart
    recovers that folder only (the rows elsewhere stay as they are) and starts in seconds,
    while another worker on the same folder keeps serving."""
    root, state = spaces
    setup = ServerProcess(root, state)
    _labelled_tree(setup, "d", 30)
    setup.stop()
    with sqlite3.connect(state / STORE_FILE) as db:
        db.executemany(
            "INSERT INTO props (path, parent, name, value) VALUES (?, ?, ?, ?)",
            ((f"/bulk/{i:07}", "/bulk", COLOR, "<c/>") for i in range(1_000_000)),
        )
    worker = ServerProcess(root, state)
    try:
        _crash(root, state, "delete.member@10", "DELETE", "/d/")
        started = time.monotonic()
        after = ServerProcess(root, state)
        took = time.monotonic() - started
        try:
            for i in range(20):
                r = requests.request("PUT", f"{worker.base}/w{i}.bin", data=b"w", timeout=30)
                assert r.status_code == 201
            assert took < 60, f"the restart took {took:.1f} s"
            with sqlite3.connect(state / STORE_FILE) as db:
                bulk = db.execute("SELECT COUNT(*) FROM props WHERE parent = '/bulk'").fetchone()
                left = [p for (p,) in db.execute("SELECT path FROM props WHERE path LIKE '/d/%'")]
            assert bulk == (1_000_000,)
            assert sorted(left) == sorted(
                "/d/" + p.name for p in (root / "d").iterdir() if p.suffix == ".txt"
            )
        finally:
            after.stop()
    finally:
        worker.stop()


def _batch(base: str, operations: list[dict[str, object]]) -> requests.Response:
    body = json.dumps({"operations": operations}).encode()
    return requests.request(
        "POST", base + "/", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )


@pytest.mark.parametrize("point", ["delete.member@15", "transfer.set-aside", "transfer.done"])
def test_batch_killed_midway_is_recovered_item_by_item(
    spaces: tuple[Path, Path], point: str
) -> None:
    """A batch deleting one folder, then moving another onto a third, killed inside either:
    every item is as before or after, with its own properties, nothing left over."""
    root, state = spaces
    setup = ServerProcess(root, state)
    for name in ("d", "a", "b"):
        _labelled_tree(setup, name, 20)
    setup.stop()
    body = json.dumps(
        {
            "operations": [
                {"op": "delete", "path": "d/"},
                {"op": "move", "path": "a/", "destination": "b/"},
            ]
        }
    ).encode()
    _crash(root, state, point, "POST", "/", data=body, headers={"Content-Type": "application/json"})
    after = ServerProcess(root, state)
    try:
        check_agreement(after)
        r = _batch(after.base, [{"op": "mkcol", "path": "d/"}, {"op": "mkcol", "path": "c/"}])
        assert r.status_code == 207
    finally:
        after.stop()
