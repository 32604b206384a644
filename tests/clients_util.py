"""Helpers for the client tests (test_clients, test_desktop_clients, test_rclone): drive real
WebDAV clients (cadaver, davfs2) and watch the server's access log.

A missing program or device is a test failure that names the Debian package to install, never
a skip: CI installs them (tests/run), and a client test that silently does nothing proves nothing.
"""

from __future__ import annotations

import grp
import hashlib
import logging
import os
import re
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from davserver.provider.fs import TEMP_PREFIX

# Debian package of each program the client tests run.
PACKAGES = {"cadaver": "cadaver", "mount.davfs": "davfs2", "umount.davfs": "davfs2"}


def require_program(name: str) -> str:
    """The program's path; fails the test (naming the package) when it is not installed."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        package = PACKAGES.get(name, name)
        pytest.fail(
            f"{name} is not installed: this test drives the real client. "
            f"Install it with `apt-get install -y {package}` (tests/run does this in CI).",
            pytrace=False,
        )
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def snapshot(root: Path) -> tuple[set[str], dict[str, str]]:
    """(directories, {file: sha256}) under `root`, as '/'-joined paths relative to it; the
    server's own hidden files (uploads in progress, the trash) are left out."""
    dirs: set[str] = set()
    files: dict[str, str] = {}
    for dirpath, dirnames, all_files in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
        filenames = [f for f in all_files if not f.startswith(TEMP_PREFIX)]
        for d in dirnames:
            dirs.add((rel / d).as_posix())
        for name in filenames:
            files[(rel / name).as_posix()] = sha256_file(Path(dirpath) / name)
    return dirs, files


ACCESS_LINE = re.compile(r'"(?P<method>\S+) (?P<target>\S*)" (?P<status>\d{3}) ')


def access_entries(records: Iterable[Any]) -> list[tuple[str, str, int]]:
    """(method, target, status) of each davserver.access line among captured log records."""
    entries = []
    for record in records:
        if record.name == "davserver.access":
            match = ACCESS_LINE.search(record.getMessage())
            if match:
                entries.append((match["method"], match["target"], int(match["status"])))
    return entries


def server_errors(records: Iterable[Any]) -> list[str]:
    """Access-log lines (davserver.access) whose status is 5xx."""
    return [f"{m} {t} -> {s}" for m, t, s in access_entries(records) if s >= 500]


def capture_server_log(caplog: pytest.LogCaptureFixture) -> None:
    """Capture the server's log and access log (shown on failure, read by server_errors)."""
    caplog.set_level(logging.INFO, logger="davserver.access")
    caplog.set_level(logging.INFO, logger="davserver")


def assert_no_server_errors(caplog: pytest.LogCaptureFixture) -> None:
    """No captured access-log line has a 5xx status."""
    errors = server_errors(caplog.records)
    assert not errors, "the server answered 5xx:\n" + "\n".join(errors)


def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The body of an autouse fixture: capture the logs, and fail the test on any 5xx answer."""
    capture_server_log(caplog)
    yield
    assert_no_server_errors(caplog)


class CadaverSession:
    """One interactive cadaver process, driven command by command over pipes.

    HOME is a private folder holding only a `.netrc` (mode 600) with credentials for the host,
    so cadaver never prompts for a user name; every read has a deadline, so a prompt or a hang
    fails the test instead of blocking it.
    """

    PROMPT = re.compile(rb"(?:^|\n)dav:[^\n]*> $")

    def __init__(self, url: str, home: Path, cwd: Path, timeout: float = 30) -> None:
        self.timeout = timeout
        self.transcript = ""
        home.mkdir(parents=True, exist_ok=True)
        netrc = home / ".netrc"
        netrc.write_text("machine 127.0.0.1\nlogin dummy-user\npassword dummy-password\n")
        netrc.chmod(0o600)
        env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C.UTF-8",
            "TERM": "dumb",
        }
        self.proc = subprocess.Popen(
            [require_program("cadaver"), url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
        )
        self.banner = self._read_until_prompt()

    def _read_until_prompt(self) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + self.timeout
        # selectors, not select.select: the descriptor may be above 1023 in a busy process.
        with selectors.DefaultSelector() as watcher:
            watcher.register(fd, selectors.EVENT_READ)
            buf = self._read_prompt(fd, watcher, deadline)
        text = buf.decode("utf-8", "replace")
        self.transcript += text
        return text

    def _read_prompt(self, fd: int, watcher: selectors.BaseSelector, deadline: float) -> bytes:
        buf = b""
        while not self.PROMPT.search(buf):
            remaining = deadline - time.monotonic()
            ready = watcher.select(remaining) if remaining > 0 else []
            if not ready:
                self.kill()
                pytest.fail(
                    f"cadaver gave no prompt within {self.timeout}s (is it waiting for input?)\n"
                    f"transcript:\n{self.transcript}{buf.decode('utf-8', 'replace')}"
                )
            chunk = os.read(fd, 65536)
            if not chunk:
                self.kill()
                pytest.fail(
                    "cadaver exited unexpectedly\n"
                    f"transcript:\n{self.transcript}{buf.decode('utf-8', 'replace')}"
                )
            buf += chunk
        return buf

    def run(self, command: str) -> str:
        """Send one command; its output without the echoed command line and the next prompt."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode("utf-8") + b"\n")
        self.proc.stdin.flush()
        out = self._read_until_prompt()
        out = out[: out.rstrip().rfind("\n") + 1]  # drop the next prompt
        first, _, rest = out.partition("\n")
        return rest if first.strip() == command.strip() else out

    def ok(self, command: str, expect: str = "succeeded.") -> str:
        """Run a command that must succeed: `expect` in its output and no failure reported."""
        out = self.run(command)
        failed = re.search(r"\bfailed\b|^[45]\d\d [A-Z]", out, re.IGNORECASE | re.MULTILINE)
        assert expect in out and not failed, (
            f"cadaver command {command!r} did not succeed:\n{out}\n"
            f"--- whole transcript ---\n{self.transcript}"
        )
        return out

    def quit(self) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"quit\n")
        self.proc.stdin.flush()
        try:
            rest, _ = self.proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"cadaver did not quit\ntranscript:\n{self.transcript}")
        text = rest.decode("utf-8", "replace")
        self.transcript += text
        assert self.proc.returncode == 0, f"cadaver exited {self.proc.returncode}:\n{text}"
        return text

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


# --- davfs2 -----------------------------------------------------------------------------------


def require_davfs() -> None:
    """Fail (with what is missing) unless this machine can make a davfs2 mount."""
    require_program("mount.davfs")
    require_program("umount.davfs")
    problems = []
    if os.geteuid() != 0:
        problems.append("the davfs2 test must run as root (mount -t davfs)")
    if not os.path.exists("/dev/fuse"):
        problems.append("/dev/fuse is missing (load the fuse module or pass --device /dev/fuse)")
    try:
        grp.getgrnam("davfs2")
    except KeyError:
        problems.append("the group davfs2 is missing (reinstall the davfs2 package)")
    if problems:
        pytest.fail("cannot mount with davfs2: " + "; ".join(problems), pytrace=False)


def _daemon_pids(mountpoint: Path) -> list[int]:
    """Running mount.davfs processes serving `mountpoint`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"mount.davfs") and os.fsencode(mountpoint) in argv:
            pids.append(int(entry.name))
    return pids


def _is_mounted(mountpoint: Path) -> bool:
    target = os.fsencode(mountpoint)
    with open("/proc/self/mounts", "rb") as f:
        for line in f:
            fields = line.split(b" ")
            # spaces and other special bytes in mount points are written as octal escapes
            where = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]), fields[1])
            if where == target:
                return True
    return False


@contextmanager
def davfs_mount(url: str, mountpoint: Path, workdir: Path) -> Iterator[Path]:
    """Mount `url` on `mountpoint` with davfs2 and a private configuration and empty cache.

    The cache lives in a fresh folder under the system temporary directory, group davfs2,
    because mount.davfs drops root for user davfs2 and pytest's tmp_path is private to root.
    On exit: umount (which waits for davfs2 to upload what it holds), then wait for the daemon
    to be gone. A failure to unmount fails the test.
    """
    require_davfs()
    mountpoint.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    cache = Path(tempfile.mkdtemp(prefix="davserver-davfs-cache-"))
    os.chown(cache, 0, grp.getgrnam("davfs2").gr_gid)
    cache.chmod(0o770)
    secrets = workdir / "secrets"
    secrets.write_text(f'"{mountpoint}" dummy-user dummy-password\n')
    secrets.chmod(0o600)
    conf = workdir / "davfs2.conf"
    conf.write_text(
        "use_locks 1\n"
        "buf_size 64\n"  # at least 48, or listings fail with EINVAL on recent kernels
        f'cache_dir "{cache}"\n'
        f'secrets "{secrets}"\n'
        "ask_auth 0\n"
        "delay_upload 0\n"
        "gui_optimize 0\n"
        "dir_refresh 1\n"
        "file_refresh 1\n"
    )
    try:
        result = subprocess.run(
            ["mount", "-t", "davfs", "-o", f"conf={conf}", url, str(mountpoint)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0 and _is_mounted(mountpoint), (
            f"mount -t davfs {url} failed (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )
        pids = _daemon_pids(mountpoint)
        assert pids, "mount.davfs is not running after the mount"
        unmounted = False
        try:
            yield mountpoint
            unmount(mountpoint, pids)
            unmounted = True
        finally:
            if not unmounted and _is_mounted(mountpoint):
                # The test failed: get rid of the mount without waiting for uploads.
                subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=30)
                _wait_gone(pids, 30, kill=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def unmount(mountpoint: Path, pids: list[int]) -> None:
    result = subprocess.run(
        ["umount", str(mountpoint)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (
        f"umount {mountpoint} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
    )
    assert _wait_gone(pids, 120), f"mount.davfs {pids} still running after umount"
    assert not _is_mounted(mountpoint)


def _wait_gone(pids: list[int], timeout: float, kill: bool = False) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in pids if _running(p)]
        if not alive:
            return True
        if time.monotonic() > deadline:
            if kill:
                for pid in alive:
                    os.kill(pid, 9)
            return False
        time.sleep(0.05)


def _running(pid: int) -> bool:
    """Alive and not a zombie (in a container nobody may reap the daemon)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split(" ", 1)[0] not in ("Z", "X")
