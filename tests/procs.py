"""davserver as separate processes on one root and state folder, as worker processes or
instances behind a load balancer run it: for tests of what must hold across processes."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests


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
        """Start on a port the server picks itself (`--port 0`) and prints: a port chosen here
        could be taken by another program before the server bound it, and then the server
        that answered would not be this one."""
        args = [sys.executable, "-m", "davserver", "serve", str(self.root)]
        args += ["--port", "0", "--state-dir", str(self.state), "--no-access-log"]
        self.proc = subprocess.Popen(
            [*args, *self.extra],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its worker processes with it: kill() ends them all
        )
        # Both read as they come: a full pipe would block the server in its next line.
        assert self.proc.stdout is not None and self.proc.stderr is not None
        listening: queue.Queue[int] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read_stdout, args=(self.proc.stdout, listening)),
            threading.Thread(target=self._read_stderr, args=(self.proc.stderr,)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()
        try:
            self.port = listening.get(timeout=60)
        except queue.Empty:
            self.kill()
            raise RuntimeError(f"davserver did not start within 60 s: {self.logged}") from None
        if self.port == 0:
            self.proc.wait(10)
            self._readers[1].join(10)
            raise RuntimeError(f"davserver exited: {self.logged}")

    @staticmethod
    def _read_stdout(stream: IO[bytes], listening: queue.Queue[int]) -> None:
        """Put the port the server listens on (its `listening on` line, else its URL line)
        in `listening`, or 0 when it ends without one."""
        port = 0
        with stream:
            for raw in stream:
                line = raw.decode(errors="replace").strip()
                found = re.match(r"(?:URL:|listening on)\s+https?://[^/]*:(\d+)", line)
                if found:
                    port = int(found.group(1))
                if line.startswith("state:") and port:
                    listening.put(port)
                    port = -1
        if port != -1:
            listening.put(0)

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
        for reader in self._readers:
            reader.join(10)

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
