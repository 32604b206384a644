"""The `davserver` command, run as a real subprocess (`python -m davserver`)."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from helpers import free_port

STARTUP_TIMEOUT = 30.0
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+)" (?P<status>\d{3}) \d+ ')


def child_env(tmp_path: Path) -> dict[str, str]:
    """The environment of every subprocess: nothing may land in the real home."""
    env = dict(os.environ)
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg-state")
    env["HOME"] = str(tmp_path / "home")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONWARNINGS", None)
    return env


class Proc:
    """A davserver subprocess whose stdout and stderr are read line by line in threads."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "davserver", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: dict[str, queue.Queue[str | None]] = {
            "stdout": queue.Queue(),
            "stderr": queue.Queue(),
        }
        self._threads = [
            threading.Thread(target=self._pump, args=("stdout",), daemon=True),
            threading.Thread(target=self._pump, args=("stderr",), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, name: str) -> None:
        stream = getattr(self.popen, name)
        for line in stream:
            self._lines[name].put(line)
        self._lines[name].put(None)

    def wait_for(
        self, name: str, predicate: Callable[[str], bool], timeout: float = STARTUP_TIMEOUT
    ) -> str:
        """The first new line on `name` for which `predicate` holds; fails on timeout or EOF."""
        seen = getattr(self, name)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"timed out waiting on {name}; got {seen!r}; other: {self.output()}")
            try:
                line = self._lines[name].get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"{name} closed before the expected line; got {seen!r} {self.output()}")
            seen.append(line)
            if predicate(line):
                return line

    def url(self) -> str:
        line = self.wait_for("stdout", lambda text: "URL:" in text)
        match = re.search(r"URL:\s+(http://\S+)", line)
        assert match, line
        return match.group(1)

    def drain(self, timeout: float = 10) -> None:
        """Collect the rest of both streams once the process has ended."""
        for thread in self._threads:
            thread.join(timeout)
        for name in ("stdout", "stderr"):
            while True:
                try:
                    line = self._lines[name].get_nowait()
                except queue.Empty:
                    break
                if line is not None:
                    getattr(self, name).append(line)

    def output(self) -> str:
        return f"stdout={self.stdout!r} stderr={self.stderr!r}"

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=10)
        for thread in self._threads:
            thread.join(10)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start davserver subprocesses; every one is killed at the end whatever happened."""
    procs: list[Proc] = []
    env = child_env(tmp_path)

    def start(*args: str, cwd: Path | None = None) -> Proc:
        proc = Proc(list(args), cwd or tmp_path, env)
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            proc.kill()


def run_to_end(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "davserver", *args],
        cwd=cwd or tmp_path,
        env=child_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- help -------------------------------------------------------------------------------------


def test_help_exits_0_and_names_the_options(tmp_path: Path) -> None:
    result = run_to_end(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    for word in ("serve", "--port", "--config", "--readonly"):
        assert word in result.stdout, word


def test_serve_help_lists_every_flag(tmp_path: Path) -> None:
    result = run_to_end(tmp_path, "serve", "--help")
    assert result.returncode == 0, result.stderr
    for word in ("ROOT", "--port", "--config", "--readonly", "--host", "--state-dir"):
        assert word in result.stdout, word


# -- serving ----------------------------------------------------------------------------------


def test_serve_prints_url_logs_requests_and_stops_on_sigterm(
    tmp_path: Path, run: Callable[..., Proc]
) -> None:
    root = tmp_path / "root"
    state = tmp_path / "state"
    proc = run("serve", str(root), "--port", "0", "--state-dir", str(state))
    url = proc.url()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url
    assert not url.endswith(":0/")
    assert root.is_dir()

    with requests.Session() as session:
        options = session.request("OPTIONS", url, timeout=10)
        assert options.status_code == 200
        assert "1" in options.headers["DAV"] and "2" in options.headers["DAV"]
        assert session.put(url + "hello.txt", data=b"hi", timeout=10).status_code == 201
        assert session.get(url + "hello.txt", timeout=10).text == "hi"
        assert session.get(url + "missing.txt", timeout=10).status_code == 404
    assert (root / "hello.txt").read_bytes() == b"hi"

    expected = [
        ("OPTIONS", "/", "200"),
        ("PUT", "/hello.txt", "201"),
        ("GET", "/hello.txt", "200"),
        ("GET", "/missing.txt", "404"),
    ]
    logged = []
    for _ in expected:
        line = proc.wait_for("stderr", lambda text: ACCESS_LINE.search(text) is not None)
        match = ACCESS_LINE.search(line)
        assert match is not None
        logged.append((match["method"], match["path"], match["status"]))
    assert logged == expected
    # The whole line: logging's time format, the level, client, user, request, status, size.
    assert re.fullmatch(
        r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO 127\.0\.0\.1 - "GET /hello\.txt" 200 2 '
        r"\d+\.\d{3}s\n?",
        next(line for line in proc.stderr if '"GET /hello.txt"' in line),
    )

    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(timeout=10) == 0
    proc.drain()
    assert "stopped" in "".join(proc.stdout)
    # Exactly one access line per request, nothing logged twice after the fact.
    assert sum(1 for line in proc.stderr if ACCESS_LINE.search(line)) == len(expected)
    assert "Traceback" not in "".join(proc.stderr)
    # The state folder is the one asked for, and the real home was never touched.
    assert state.is_dir()
    assert not (tmp_path / "home").exists()


def test_no_root_shares_dot_share_in_the_working_directory(
    tmp_path: Path, run: Callable[..., Proc]
) -> None:
    cwd = tmp_path / "empty"
    cwd.mkdir()
    proc = run("serve", "--port", "0", cwd=cwd)
    url = proc.url()
    assert (cwd / "share").is_dir()
    assert requests.put(url + "f.txt", data=b"x", timeout=10).status_code == 201
    assert (cwd / "share" / "f.txt").read_bytes() == b"x"
    # With no --state-dir, state goes under $XDG_STATE_HOME, never the real home.
    assert (tmp_path / "xdg-state" / "davserver").is_dir()
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(timeout=10) == 0


def test_serve_is_the_default_command(tmp_path: Path, run: Callable[..., Proc]) -> None:
    cwd = tmp_path / "implicit"
    cwd.mkdir()
    proc = run("--port", "0", cwd=cwd)
    url = proc.url()
    assert requests.request("OPTIONS", url, timeout=10).status_code == 200
    assert (cwd / "share").is_dir()


def test_readonly_flag_refuses_changes(tmp_path: Path, run: Callable[..., Proc]) -> None:
    root = tmp_path / "ro"
    root.mkdir()
    (root / "keep.txt").write_text("keep")
    proc = run("serve", str(root), "--port", "0", "--readonly", "--state-dir", str(tmp_path / "s"))
    url = proc.url()
    assert requests.get(url + "keep.txt", timeout=10).text == "keep"
    assert requests.put(url + "keep.txt", data=b"new", timeout=10).status_code == 403
    assert requests.delete(url + "keep.txt", timeout=10).status_code == 403
    assert (root / "keep.txt").read_text() == "keep"


def test_no_readonly_flag_overrides_a_read_only_config(
    tmp_path: Path, run: Callable[..., Proc]
) -> None:
    # Flags override the file both ways, not only to switch something on.
    root = tmp_path / "rw"
    root.mkdir()
    config = tmp_path / "ro.toml"
    config.write_text("[storage]\nreadonly = true\n[log]\naccess_log = true\n")
    proc = run(
        "serve", str(root), "--config", str(config), "--port", "0", "--no-readonly",
        "--no-access-log", "--state-dir", str(tmp_path / "s"),
    )  # fmt: skip
    url = proc.url()
    assert requests.put(url + "new.txt", data=b"new", timeout=10).status_code == 201
    assert (root / "new.txt").read_bytes() == b"new"


# -- configuration ------------------------------------------------------------------------------


def test_config_with_unknown_key_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nprot = 8080\n")
    result = run_to_end(tmp_path, "serve", "--config", str(config), "--port", "0")
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(config) in result.stderr
    assert "prot" in result.stderr
    assert "Traceback" not in result.stderr
    assert "URL:" not in result.stdout


def test_config_with_wrong_value_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[server]\nport = "eighty"\n')
    result = run_to_end(tmp_path, "serve", "--config", str(config))
    assert result.returncode == 2
    assert str(config) in result.stderr
    assert "port" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = run_to_end(tmp_path, "serve", "--config", str(missing), "--port", "0")
    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_config_file_port_is_used(tmp_path: Path, run: Callable[..., Proc]) -> None:
    port = free_port()
    config = tmp_path / "dav.toml"
    config.write_text(f'[server]\nport = {port}\n[storage]\nroot = "data"\nstate_dir = "state"\n')
    proc = run("serve", "--config", str(config))
    url = proc.url()
    assert url == f"http://127.0.0.1:{port}/"
    assert requests.request("OPTIONS", url, timeout=10).status_code == 200
    # Relative folders in the file are relative to the file.
    assert (tmp_path / "data").is_dir()


def test_port_flag_overrides_config_file(tmp_path: Path, run: Callable[..., Proc]) -> None:
    # The file names a port that is taken: only the flag lets the server start.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = int(taken.getsockname()[1])
        config = tmp_path / "dav.toml"
        config.write_text(f'[server]\nport = {busy}\n[storage]\nroot = "data"\n')
        proc = run(
            "serve", "--config", str(config), "--port", "0", "--state-dir", str(tmp_path / "s")
        )
        url = proc.url()
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        assert port not in (0, busy)
        assert requests.request("OPTIONS", url, timeout=10).status_code == 200


def test_busy_port_exits_1_with_a_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = int(taken.getsockname()[1])
        result = run_to_end(
            tmp_path, "serve", str(tmp_path / "r"), "--port", str(busy), "--state-dir", "s"
        )
    assert result.returncode == 1
    assert str(busy) in result.stderr
    assert "Traceback" not in result.stderr
