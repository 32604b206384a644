"""`[server] workers`: several worker processes on one port are one server (issue 16)."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from helpers import digest_authorization, digest_challenge, lockinfo, wait_for
from procs import ServerProcess
from test_hostile import check_slow_connections_do_not_starve

from davserver import prefork
from davserver.config import ENGINES, load
from davserver.passwords import set_password


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        # Fields after the command name, which may hold spaces: state, then the parent's pid.
        if int(stat[stat.rfind(b")") + 2 :].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def blocks_stop_signals(pid: int) -> bool:
    """Whether the main thread of process `pid` blocks SIGINT or SIGTERM (/proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    blocked = int(re.search(r"^SigBlk:\s*([0-9a-f]+)$", status, re.MULTILINE).group(1), 16)
    return any(blocked & (1 << (signum - 1)) for signum in (signal.SIGINT, signal.SIGTERM))


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """Two workers on the default engine, or on the one a test names (`indirect`)."""
    (tmp_path / "root").mkdir()
    engine = getattr(request, "param", None)
    extra = ("--engine", engine) if engine else ()
    proc = ServerProcess(tmp_path / "root", tmp_path / "state", *extra, workers=2)
    # The first worker answers before the parent has started the second.
    assert proc.proc is not None
    assert wait_for(lambda: len(children(proc.proc.pid)) == 2, 20)
    yield proc
    proc.stop()


def test_two_workers_serve_one_port(served: ServerProcess) -> None:
    assert served.proc is not None
    assert len(children(served.proc.pid)) == 2
    assert requests.put(served.base + "/a.txt", data=b"one", timeout=10).status_code == 201
    assert requests.get(served.base + "/a.txt", timeout=10).content == b"one"


@pytest.mark.parametrize("served", ENGINES, indirect=True)
def test_sigterm_stops_every_worker(served: ServerProcess) -> None:
    assert served.proc is not None
    workers = children(served.proc.pid)
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(30) == 0
    assert all(gone(pid) for pid in workers)


@pytest.mark.parametrize("served", ENGINES, indirect=True)
@pytest.mark.parametrize("_attempt", range(4))
def test_ctrl_c_stops_every_worker(served: ServerProcess, _attempt: int) -> None:
    """Ctrl-C: SIGINT to the terminal's whole process group, parent and workers at once (the
    parent's SIGTERM follows). Several times: a stop signal the kernel delivered to a server
    thread, not the main one, used to leave a worker running until it was killed 20 s later,
    one time in three."""
    assert served.proc is not None
    workers = children(served.proc.pid)
    os.killpg(served.proc.pid, signal.SIGINT)
    assert served.proc.wait(30) == 0
    assert all(gone(pid) for pid in workers)
    served.stop()
    assert served.errors() == ""


# A sitecustomize that sends SIGTERM at every line of a SIGINT handler (see its docstring).
SECOND_SIGNAL_HOOK = Path(__file__).parent / "hooks" / "second_signal"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("workers", [1, 2])
def test_a_stop_signal_while_another_is_handled_stops(
    tmp_path: Path, engine: str, workers: int
) -> None:
    """Ctrl-C, then SIGTERM (the parent's) while the SIGINT handler runs: the process stops.
    A handler that set a threading.Event took the Event's lock, which is not reentrant, and
    the second handler, run inside the first, waited for it forever: a worker killed after
    20 s, a lone server that never stopped (test_ctrl_c_stops_every_worker under load)."""
    (tmp_path / "root").mkdir()
    path = os.pathsep.join(filter(None, [str(SECOND_SIGNAL_HOOK), os.environ.get("PYTHONPATH")]))
    proc = ServerProcess(
        tmp_path / "root",
        tmp_path / "state",
        *("--engine", engine),
        env={"PYTHONPATH": path},
        workers=workers,
    )
    try:
        assert proc.proc is not None
        processes = [proc.proc.pid, *children(proc.proc.pid)]
        # Not while a main thread blocks the stop signals (the old code did, around its start):
        # it would run the second handler after the first, never inside it.
        assert wait_for(lambda: not any(map(blocks_stop_signals, processes)), 20)
        os.killpg(proc.proc.pid, signal.SIGINT)
        assert proc.proc.wait(30) == 0
    finally:
        proc.stop()
    assert proc.errors() == ""


def test_stopping_a_worker_reaped_already_is_no_error(tmp_path: Path) -> None:
    """Ctrl-C: the workers end at once, serve()'s os.wait() reaps one, and the parent's own
    SIGINT interrupts it before it strikes that worker off. stop() then waited for a process
    that was no longer its child (ChildProcessError, a traceback and exit status 1, about one
    Ctrl-C in twenty under test_a_stop_signal_while_another_is_handled_stops)."""
    workers = prefork.Workers(load(None, {"root": str(tmp_path)}), 1)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    workers._started[pid] = time.monotonic()
    workers.stop()
    assert workers._started == {}


def test_a_worker_that_dies_is_replaced(served: ServerProcess) -> None:
    assert served.proc is not None
    first = children(served.proc.pid)
    # A worker that dies right after its start is not replaced (it would fail again).
    time.sleep(prefork.SHORTEST_LIFE)
    os.kill(first[0], signal.SIGKILL)
    assert wait_for(lambda: len(set(children(served.proc.pid)) - {first[0]}) == 2, 20)
    for _ in range(6):
        assert requests.get(served.base + "/", timeout=10).status_code == 200


def test_workers_end_with_a_killed_parent(served: ServerProcess) -> None:
    """A parent killed outright (no stop()) leaves no worker serving on."""
    assert served.proc is not None
    workers = children(served.proc.pid)
    os.kill(served.proc.pid, signal.SIGKILL)
    served.proc.wait(10)
    assert wait_for(lambda: all(gone(pid) for pid in workers), 20)


def _owner(workers: list[int], server_port: int, client_port: int) -> int:
    """The worker holding the server's end of the connection from `client_port` (/proc)."""
    inode = ""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            inode = fields[9]
    assert inode, "no such connection"
    for pid in workers:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        if f"socket:[{inode}]" in links:
            return pid
    raise AssertionError("no worker holds the connection")


def test_new_connections_go_to_each_worker_in_turn(served: ServerProcess) -> None:
    """The workers accept on one shared socket, waiting in turn: two clients are served by two
    processes (two CPUs), where SO_REUSEPORT's hash put them on one half the time."""
    assert served.proc is not None
    workers = children(served.proc.pid)
    owners = []
    with contextlib.ExitStack() as stack:
        for _ in range(8):
            conn = stack.enter_context(
                contextlib.closing(http.client.HTTPConnection("127.0.0.1", served.port, timeout=10))
            )
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            owners.append(_owner(workers, served.port, conn.sock.getsockname()[1]))
    assert owners[0] != owners[1]
    assert owners == owners[:2] * 4


class _Urls:
    """A ServerProcess as test_hostile's checks use a server."""

    def __init__(self, proc: ServerProcess) -> None:
        self.port = proc.port
        self.root = proc.root
        self.base = proc.base

    def url(self, path: str) -> str:
        return self.base + path


def test_slow_connections_do_not_starve_the_workers(served: ServerProcess) -> None:
    check_slow_connections_do_not_starve(_Urls(served))


def test_digest_nonce_replay_is_refused_by_every_process(tmp_path: Path) -> None:
    """A nonce from one process is good on another (their secret is in the state folder), and
    a request replayed to another process after it was accepted is refused (RFC 7616 3.4):
    two single-process servers on one state folder, so each request's process is known."""
    (tmp_path / "root").mkdir()
    users = tmp_path / "users"
    digest = tmp_path / "digest"
    set_password(str(users), "alice", "secret", str(digest), "davserver")
    auth = ("--htpasswd", str(users), "--digest-file", str(digest))
    first = ServerProcess(tmp_path / "root", tmp_path / "state", *auth, workers=1)
    second = ServerProcess(tmp_path / "root", tmp_path / "state", *auth, workers=1)
    try:
        challenge = digest_challenge(requests.get(first.base + "/", timeout=10), "SHA-256")

        def get(proc: ServerProcess, nc: int) -> int:
            header = digest_authorization("GET", "/", "alice", "secret", challenge, "SHA-256", nc)
            r = requests.get(proc.base + "/", headers={"Authorization": header}, timeout=10)
            return r.status_code

        assert get(second, 1) == 200
        assert get(first, 1) == 401
        assert get(first, 2) == 200
        assert get(second, 2) == 401
    finally:
        first.stop()
        second.stop()


def test_a_lock_taken_through_one_worker_binds_them_all(served: ServerProcess) -> None:
    """Each request on a new connection (the kernel picks its worker): every one sees the
    lock, and the lock token works whichever worker it reaches."""
    lock = requests.request("LOCK", served.base + "/locked.txt", data=lockinfo(), timeout=10)
    assert lock.status_code == 201
    token = lock.headers["Lock-Token"]
    for _ in range(12):
        r = requests.put(served.base + "/locked.txt", data=b"x", timeout=10)
        assert r.status_code == 423
    for _ in range(6):
        r = requests.put(
            served.base + "/locked.txt", data=b"y", headers={"If": f"({token})"}, timeout=10
        )
        assert r.status_code == 204


def test_every_worker_reloads_the_users_file(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    users = tmp_path / "users"
    set_password(str(users), "alice", "one")
    proc = ServerProcess(
        tmp_path / "root",
        tmp_path / "state",
        "--htpasswd",
        str(users),
        "--basic",
        "always",
        workers=2,
    )
    try:
        for _ in range(6):
            r = requests.get(proc.base + "/", auth=("alice", "one"), timeout=10)
            assert r.status_code == 200
        set_password(str(users), "bob", "two")
        # Each on a new connection: the kernel spreads them over both workers.
        for _ in range(12):
            r = requests.get(proc.base + "/", auth=("bob", "two"), timeout=10)
            assert r.status_code == 200
    finally:
        proc.stop()


def hammer(base: str, n: int, done: threading.Event) -> None:
    """Writes and listings on one connection until `done`, whatever the answers."""
    with requests.Session() as session:
        while not done.is_set():
            with contextlib.suppress(requests.RequestException):
                session.put(f"{base}/f{n}.txt", data=b"x" * 4096, timeout=5)
                session.request("PROPFIND", base + "/", headers={"Depth": "1"}, timeout=5)


@pytest.mark.parametrize(
    ("engine", "workers"), [("httptools", 1), ("httptools", 2), ("cheroot", 1), ("cheroot", 2)]
)
def test_sigterm_under_load_always_stops(tmp_path: Path, engine: str, workers: int) -> None:
    """SIGTERM may arrive while a thread holds a lock (cheroot's, logging's): the stop still
    ends, every time. A handler that raised inside such a lock once left a process waiting in
    its own stop forever."""
    (tmp_path / "root").mkdir()
    for round_ in range(4):
        proc = ServerProcess(
            tmp_path / "root",
            tmp_path / f"state{round_}",
            *("--engine", engine, "--log-level", "debug"),
            workers=workers,
        )
        done = threading.Event()
        threads = [threading.Thread(target=hammer, args=(proc.base, n, done)) for n in range(8)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.3 + round_ * 0.2)  # a different instant each round
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGTERM)
            assert proc.proc.wait(30) == 0
        finally:
            done.set()
            for thread in threads:
                thread.join()
            proc.stop()
