"""The HTTP engines (`[server] engine`, issue 16): what the protocol tests do not reach by
themselves. Raw bytes on sockets, against `davserver serve` processes.

The default start (the httptools engine, a worker process per CPU) keeps a connection that
has not sent a whole request head in epoll, holding no thread; pipelined requests, `Expect:
100-continue` and HTTP/1.0 are answered as on cheroot.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import temp_files, wait_for
from procs import ServerProcess
from test_hostile import read_answer

from davserver import llhttpd
from davserver.config import ENGINES
from davserver.llhttpd import LlhttpServer

CONNECTIONS = 1000


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("engine")
    (base / "root").mkdir()
    proc = ServerProcess(base / "root", base / "state", "--engine", engine, workers=1)
    yield proc
    proc.stop()
    assert proc.errors() == ""


@contextlib.contextmanager
def open_files(count: int) -> Iterator[None]:
    """Room for `count` more open files in this process and the processes it starts: the soft
    limit raised towards the hard one (tests/run lowers it to 1024), then put back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 1024
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("workers", [None, 1], ids=["default-start", "one-process"])
def test_a_thousand_idle_or_slow_connections_do_not_stop_a_new_client(
    tmp_path: Path, workers: int | None
) -> None:
    """Half the connections silent, half having sent part of a head; a new client is answered
    at once. On cheroot each of the latter holds a thread, and past `max_threads` (256 per
    process) the new client waited for `header_timeout` (30 s)."""
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "f.txt").write_bytes(b"still here")
    sockets: list[socket.socket] = []
    with open_files(2 * CONNECTIONS):
        proc = ServerProcess(tmp_path / "root", tmp_path / "state", workers=workers)
        try:
            for i in range(CONNECTIONS):
                sock = socket.create_connection(("127.0.0.1", proc.port), timeout=10)
                sockets.append(sock)
                if i % 2:
                    sock.sendall(b"GET /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            # A liveness bound, not a benchmark (bench/engines.py measures the time).
            response = requests.get(proc.url("/f.txt"), timeout=5)
            assert response.content == b"still here"
        finally:
            for sock in sockets:
                sock.close()
            proc.stop()


def test_pipelined_requests_are_answered_in_order(served: ServerProcess) -> None:
    (served.root / "a.txt").write_bytes(b"first")
    (served.root / "b.txt").write_bytes(b"second")
    requests_ = b"".join(
        b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % name for name in (b"a.txt", b"b.txt")
    )
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(requests_ + b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_answer(sock)  # everything until the close: the three answers
    assert answer.closed
    parts = (answer.head + b"\r\n\r\n" + answer.body).split(b"HTTP/1.1 ")[1:]
    assert [part.split(b"\r\n", 1)[0] for part in parts] == [b"200 OK"] * 3
    assert [part.split(b"\r\n\r\n", 1)[1] for part in parts] == [b"first", b"second", b"first"]


def test_expect_100_continue_is_answered_before_the_body(served: ServerProcess) -> None:
    head = b"PUT /e.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(head)
        interim = read_answer(sock, until_closed=False)
        assert interim.status == 100
        sock.sendall(b"hello")
        assert read_answer(sock, until_closed=False).status == 201
    assert (served.root / "e.txt").read_bytes() == b"hello"


def test_http_1_0_gets_a_body_ended_by_the_close(served: ServerProcess) -> None:
    """A streamed answer (a PROPFIND's) without chunked coding, which HTTP/1.0 lacks."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(b"PROPFIND / HTTP/1.0\r\nDepth: 0\r\n\r\n")
        answer = read_answer(sock)
    assert answer.status == 207
    assert answer.header("Transfer-Encoding") is None
    assert answer.closed
    assert answer.body.rstrip().endswith(b"</D:multistatus>")


def test_a_head_too_large_is_refused(served: ServerProcess, engine: str) -> None:
    """A head past 64 KiB, however it comes: refused and closed, not buffered on."""
    head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: %s\r\n" % (b"b" * 1000) * 100
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(head)
        answer = read_answer(sock)
    assert answer.status == {"httptools": 431, "cheroot": 413}[engine]
    assert answer.closed


def test_an_upload_cut_off_by_sigterm_keeps_the_old_file(tmp_path: Path, engine: str) -> None:
    """Ctrl-C or SIGTERM while a body arrives: every worker stops, the upload is discarded."""
    (tmp_path / "root").mkdir()
    target = tmp_path / "root" / "kept.txt"
    target.write_bytes(b"old")
    proc = ServerProcess(tmp_path / "root", tmp_path / "state", "--engine", engine)
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=20) as sock:
            sock.sendall(b"PUT /kept.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nnew")
            assert wait_for(lambda: bool(temp_files(proc.root)), 10)
            assert proc.proc is not None
            proc.proc.terminate()
            assert proc.proc.wait(30) == 0
    finally:
        proc.stop()
    assert target.read_bytes() == b"old"
    assert temp_files(proc.root) == []


class Gated:
    """A WSGI app that answers `ok`, holding a request for one of `paths` at its gate until
    the test opens it; `entered` tells when one got there, `ran` lists the paths run."""

    def __init__(self, *paths: str) -> None:
        self.gates = {path: threading.Event() for path in paths}
        self.entered = {path: threading.Event() for path in paths}
        self.ran: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ["PATH_INFO"]
        self.ran.append(path)
        if path in self.gates:
            self.entered[path].set()
            self.gates[path].wait(30)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    def open_all(self) -> None:
        for gate in self.gates.values():
            gate.set()


def engine_on(app: Gated, threads: int, max_threads: int, request_timeout: float) -> LlhttpServer:
    """An httptools engine serving `app` on a free port, prepared (serving)."""
    server = LlhttpServer(
        ("127.0.0.1", 0),
        app,
        threads=threads,
        max_threads=max_threads,
        request_timeout=request_timeout,
        header_timeout=10,
    )
    server.prepare()
    return server


def test_a_request_taken_in_the_same_poll_as_a_blocked_one_is_still_served() -> None:
    """One poll takes every ready connection (READY_BATCH) into a queue the leader works
    through; when the request at its head blocks, whoever leads next serves the rest."""
    app = Gated("/c1", "/c2", "/a")
    gates, entered = app.gates, app.entered
    # Two threads at most: both held in the app while A and B arrive, so neither is in epoll.
    server = engine_on(app, threads=1, max_threads=2, request_timeout=30)
    port = server.bind_addr[1]
    socks = {p: socket.create_connection(("127.0.0.1", port), timeout=10) for p in gates}
    socks["/b"] = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        for path in ("/c1", "/c2"):
            socks[path].sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert entered[path].wait(10)
        socks["/a"].sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.05)  # ordering only: A is ready before B
        socks["/b"].sendall(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.05)
        gates["/c2"].set()  # its thread polls: A and B together; A blocks
        assert entered["/a"].wait(10)
        gates["/c1"].set()  # the other thread leads next, and serves B from the queue
        assert socks["/b"].recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
        assert not gates["/a"].is_set()
    finally:
        app.open_all()
        for sock in socks.values():
            sock.close()
        server.stop()


def test_a_request_blocked_in_the_app_does_not_hold_up_the_next_client() -> None:
    """The thread serving a request keeps the pool's lead, so no other thread waits in epoll
    meanwhile (llhttpd's LlhttpServer._work); one that blocks in the app, where the engine
    cannot see it wait, loses the lead to the watchdog and the next client is served."""
    app = Gated("/block")
    server = engine_on(app, threads=2, max_threads=4, request_timeout=30)
    try:
        port = server.bind_addr[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as blocked:
            blocked.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
            assert app.entered["/block"].wait(10)
            answer = requests.get(f"http://127.0.0.1:{port}/next", timeout=10)
            assert (answer.status_code, answer.content) == (200, b"ok")
            app.open_all()
            assert blocked.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        app.open_all()
        server.stop()


def test_header_names_remembered_are_few_and_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """The names mapped to environ keys are the clients' to choose: 10,000 distinct ones, half
    of them 8 KiB long, leave at most _ENVIRON_KEYS_KEPT short ones remembered."""
    remembered: dict[bytes, str] = {}
    monkeypatch.setattr(llhttpd, "_ENVIRON_KEYS", remembered)
    for number in range(5000):
        long_name = b"X-%d-" % number + b"a" * 8192
        assert llhttpd._environ_key(long_name) == "HTTP_" + long_name.decode().upper().replace(
            "-", "_"
        )
        assert llhttpd._environ_key(b"X-Short-%d" % number) == f"HTTP_X_SHORT_{number}"
    assert len(remembered) == llhttpd._ENVIRON_KEYS_KEPT
    assert max(len(name) for name in remembered) == len(b"X-Short-511")


def test_a_connection_the_sweeper_cut_is_not_served_afterwards() -> None:
    """A kept-alive connection whose request waits (in epoll or `_ready`) while every thread
    is busy, until its idle deadline passes, is cut by the sweeper: its socket is shut down,
    so an answer can never reach the client. The request must not run all the same (a
    DELETE done with no answer, retried by the client)."""
    app = Gated("/block")
    server = engine_on(app, threads=1, max_threads=1, request_timeout=0.5)
    port = server.bind_addr[1]
    late = socket.create_connection(("127.0.0.1", port), timeout=10)
    blocker = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        late.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        assert late.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")  # now idle, kept alive
        blocker.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
        assert app.entered["/block"].wait(10)  # the one thread is held
        late.sendall(b"DELETE /late HTTP/1.1\r\nHost: x\r\n\r\n")
        # Its idle deadline (request_timeout) passes while it waits: the sweeper cuts it.
        assert wait_for(lambda: late.recv(4096) == b"", 10)
        app.open_all()
        assert blocker.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
        # The thread is free again, and has gone through what was ready.
        check = socket.create_connection(("127.0.0.1", port), timeout=10)
        with check:
            check.sendall(b"GET /check HTTP/1.1\r\nHost: x\r\n\r\n")
            assert check.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
        assert app.ran == ["/first", "/block", "/check"]
    finally:
        app.open_all()
        late.close()
        blocker.close()
        server.stop()
