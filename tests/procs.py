"""davserver as separate processes on one root and state folder, as worker processes or
instances behind a load balancer run it: for tests of what must hold across processes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests
from helpers import free_port


class PortTaken(RuntimeError):
    """The port chosen for a server was taken by someone else before it could bind it."""


class ServerProcess:
    """`davserver serve` in a child process; `kill()` is a SIGKILL, as a crash would be.
    `workers` is `--workers` (None: the default, one worker process per CPU)."""

    def __init__(
        self,
        root: Path,
        state: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        workers: int | None = None,
    ):
        self.root = root
        self.state = state
        self.extra = extra if workers is None else (*extra, "--workers", str(workers))
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.logged = ""
        self.port = 0
        self.start()

    def start(self) -> None:
        # Another program may take the free port before the server binds it (the machine is
        # shared): then a new port, a few times.
        for attempt in range(4):
            try:
                self._start_on(free_port())
                return
            except PortTaken:
                if attempt == 3:
                    raise

    def _start_on(self, port: int) -> None:
        self.port = port
        args = [sys.executable, "-m", "davserver", "serve", str(self.root)]
        args += ["--port", str(self.port), "--state-dir", str(self.state), "--no-access-log"]
        self.proc = subprocess.Popen(
            [*args, *self.extra],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its worker processes with it: kill() ends them all
        )
        # Read as it comes: a full pipe would block the server in its next log line.
        assert self.proc.stderr is not None
        self._reader = threading.Thread(
            target=self._read_stderr, args=(self.proc.stderr,), daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(10)
                if "Address already in use" in self.logged:
                    raise PortTaken(self.logged)
                raise RuntimeError(f"davserver exited: {self.logged}")
            try:
                requests.request("OPTIONS", self.base + "/", timeout=10)
                return
            except requests.RequestException:
                # Not listening yet, or too busy to answer in time on a loaded machine.
                time.sleep(0.05)
        raise RuntimeError("davserver did not start within 30 s")

    def _read_stderr(self, stream: IO[bytes]) -> None:
        with stream:
            for line in stream:
                self.logged += line.decode(errors="replace")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """As LiveServer.request, on a new connection each time."""
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.base + path, **kwargs)

    def kill(self) -> None:
        """SIGKILL to the server and every worker process at once, as a power cut would."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)
        # Whatever is left (a worker that outlived its parent) holds stderr open.
        self.kill()
        self._reader.join(10)

    def errors(self) -> str:
        """What the process logged as errors (after `stop()`)."""
        lines = self.logged.splitlines()
        return "\n".join(line for line in lines if re.search(r"ERROR|Traceback", line))


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two davserver processes on one root and one state folder, as two workers."""
    root, state = tmp_path / "root", tmp_path / "state"
    root.mkdir()
    first = ServerProcess(root, state)
    second = ServerProcess(root, state)
    yield first, second
    first.stop()
    second.stop()
