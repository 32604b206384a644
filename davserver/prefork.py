"""Several cheroot processes serving one port (`[server] workers`).

A Python process runs one thread's Python code at a time, so one process uses about one CPU
however many threads it has. With more than one worker, this parent process checks the
configuration, finishes what a crash left (as a lone server does at start), takes the port
and starts the workers. Each is a whole davserver (`DavServer`): its own engine, threads and
store connections. They share the root and the state folder as separate davserver processes
always could: claims order changes across them (ordering.py), locks and properties live in its
SQLite files, and the Digest secret is read from it.

On the httptools engine the parent makes the listening socket and the workers inherit it, each
accepting on it in turn (llhttpd's acceptor), so two clients go to two workers. cheroot binds
a socket per worker with SO_REUSEPORT, where the kernel hashes each connection to one; the
parent then holds the port without listening on it (a socket that does not listen takes no
connections). Either way `--port 0` names one port for all. The parent only watches: a worker
that dies is replaced (and inherits the same socket); SIGTERM or Ctrl-C stops every worker,
each as a lone server stops.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import signal
import socket
import time

from .config import Config
from .llhttpd import listen
from .ordering import recover_orphans
from .server import DavServer, StopSignals, build_services, close_services, site_of, urls

log = logging.getLogger("davserver")

# A worker that ends sooner than this after it started is not replaced: it would only fail
# again (a broken store, a port taken meanwhile), in a loop.
SHORTEST_LIFE = 1.0
# How long stop() waits for the workers to finish what they serve before killing them.
_STOP_WAIT = 20.0
_PR_SET_PDEATHSIG = 1
_STOPPING = (signal.SIGINT, signal.SIGTERM)


class Workers:
    """`count` worker processes on one port; `start()` binds, `serve()` blocks, `stop()` ends
    them. Same interface as `DavServer` for the command line."""

    def __init__(self, config: Config, count: int) -> None:
        self.config = config
        self.count = count
        self.port = config.port
        # The port: the workers' listening socket, or (cheroot) a socket holding it.
        self._reserved: socket.socket | None = None
        self._started: dict[int, float] = {}  # worker pid -> when it started

    def start(self) -> None:
        services = build_services(self.config)  # ConfigError here names the option
        try:
            recovered = recover_orphans(services)
        finally:
            close_services(services)
        if recovered:
            log.info("finished or undid %d changes interrupted by a crash", recovered)
        if self.config.engine == "cheroot":
            self._reserved = _reserve(self.config.host, self.config.port)
        else:
            self._reserved = listen(self.config.host, self.config.port)
        self.port = int(self._reserved.getsockname()[1])
        self.config = dataclasses.replace(self.config, port=self.port)
        try:
            for _ in range(self.count):
                self._spawn()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return urls(self.config, self.port, site_of(self.config))[0]

    @property
    def public_url(self) -> str:
        return urls(self.config, self.port, site_of(self.config))[1]

    def serve(self) -> None:
        """Wait on the workers, replacing one that dies, until none is left."""
        while self._started:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                return
            began = self._started.pop(pid, None)
            if began is None:
                continue
            if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                # Stopped as asked: Ctrl-C reaches every process of the terminal's group.
                log.info("worker %d stopped", pid)
                continue
            how = _describe(status)
            if time.monotonic() - began < SHORTEST_LIFE:
                log.error("worker %d %s right after it started; not replaced", pid, how)
                continue
            log.warning("worker %d %s; starting another", pid, how)
            try:
                self._spawn()
            except OSError as exc:
                log.error("%s", exc)

    def stop(self) -> None:
        """SIGTERM to every worker (each finishes as a lone server does), then wait."""
        # A second Ctrl-C or SIGTERM must not cut this short and leave workers behind.
        handlers = {signum: signal.signal(signum, signal.SIG_IGN) for signum in _STOPPING}
        try:
            self._stop_workers()
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        if self._reserved is not None:
            self._reserved.close()

    def _stop_workers(self) -> None:
        for pid in self._started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_WAIT
        while self._started:
            for pid in list(self._started):
                try:
                    done, _status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    # Reaped already: serve()'s os.wait() returned it, and the stop signal
                    # (Ctrl-C reaches the workers too, so they end at once) came before serve()
                    # could strike it off.
                    done = pid
                if done:
                    del self._started[pid]
            if time.monotonic() > deadline:
                for pid in self._started:
                    log.error("worker %d did not stop; killed", pid)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.02)

    def _spawn(self) -> None:
        """Start a worker and return once it listens: the URL printed after start() must
        answer at once."""
        parent = os.getpid()
        ready, listening = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(ready)
                code = _worker(self.config, parent, self._reserved, listening)
            except KeyboardInterrupt:
                code = 0  # stopped before it was serving
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                os._exit(code)
        os.close(listening)
        self._started[pid] = time.monotonic()
        try:
            # One byte once it listens; nothing (end of file) if it died first.
            if not os.read(ready, 1):
                raise OSError(f"worker process {pid} ended before it listened (see above)")
        finally:
            os.close(ready)


def _worker(config: Config, parent: int, reserved: socket.socket | None, listening: int) -> int:
    """One worker process's life: a DavServer on the shared socket (or, on cheroot, its own
    SO_REUSEPORT socket); one byte to `listening` once it listens."""
    stopping = StopSignals()
    _die_with(parent)
    if config.engine == "cheroot":
        if reserved is not None:
            reserved.close()
        server = DavServer(config, reuse_port=True)
    else:
        server = DavServer(config, listener=reserved)
    try:
        # A stop signal that comes meanwhile is noted: serve_until() returns at once.
        server.start()
        try:
            os.write(listening, b".")
        except BrokenPipeError:
            return 0  # the parent stopped waiting for it: it is stopping, so is this worker
        finally:
            os.close(listening)
        server.serve_until(stopping)
    finally:
        server.stop()
    return 0


def _die_with(parent: int) -> None:
    """Have the kernel send SIGTERM to this worker when the parent dies (Linux), so a killed
    parent leaves no worker serving on; elsewhere the parent's stop() is all there is."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _reserve(host: str, port: int) -> socket.socket:
    """For cheroot's workers: a socket bound to the port, with SO_REUSEPORT so the workers'
    sockets may bind there too, and not listening: connections go only to the workers."""
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
