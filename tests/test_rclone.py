"""The real rclone (Debian's package) syncing a tree of dated files up to davserver and back.

rclone's webdav backend with `vendor = owncloud` sends `X-OC-Mtime` and `OC-Checksum` with each
upload and reads `{http://owncloud.org/ns}checksums` and `getlastmodified` back, so after a sync
both ways the dates (to the second), the bytes and the hashes must all agree. rclone is
configured through environment variables only, with HOME and RCLONE_CONFIG inside tmp_path.
A missing rclone fails the test (CI installs it, see tests/run); nothing here is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from clients_util import no_server_errors
from helpers import write_users
from procs import ServerProcess

if TYPE_CHECKING:
    from conftest import LiveServer

USER, PASSWORD = "syncer", "correct horse battery staple"

# Names with spaces, punctuation that URLs must escape, and non-ASCII text; none of them is
# one that rclone's webdav backend re-encodes (such as '#', '%', '\\'), so the server's disk
# holds the same names as the local tree.
NAMES = [
    "readme.txt",
    "Quarterly report 2023.pdf",
    "a&b+c (1).txt",
    "semi;colon=eq@at.txt",
    "[brackets] and 'quotes'.txt",
    "résumé, final.doc",
    "日本語 ファイル.txt",
    "emoji \U0001f389 party.md",
    "Ünïcödé/naïve café.txt",
    "Ünïcödé/Ελληνικά.txt",
    "deep/er/still deeper/leaf.bin",
    "deep/er/ok.json",
    "space dir/inner space file.txt",
    "empty.txt",
]


def _tree_spec() -> list[tuple[str, int, int]]:
    """(relative path, size, mtime) of about 50 files: mixed sizes, dates from 2001 on."""
    sizes = [0, 1, 17, 100, 1023, 4096, 65_536, 65_537, 250_000, 1_048_576 + 5]
    files = list(NAMES)
    files += [f"bulk/file {i:02d}.dat" for i in range(30)]
    files += [f"bulk/sub dir/nested {i}.log" for i in range(6)]
    spec = []
    for i, rel in enumerate(files):
        size = 0 if rel == "empty.txt" else sizes[i % len(sizes)]
        mtime = 978_307_200 + i * 7_776_000 + i * 3_607  # whole seconds, 2001 .. 2018
        spec.append((rel, size, mtime))
    return spec


def _content(rel: str, size: int) -> bytes:
    seed = hashlib.sha256(rel.encode("utf-8")).digest()
    return (seed * (size // len(seed) + 1))[:size]


def make_tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Write the tree under `root`; {relative path: (content, mtime)}."""
    expected = {}
    for rel, size, mtime in _tree_spec():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _content(rel, size)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
        expected[rel] = (data, mtime)
    return expected


def files_under(root: Path) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".davserver")
    }


def require_rclone() -> str:
    found = shutil.which("rclone") or shutil.which("rclone", path="/usr/bin:/bin")
    if found is None:
        pytest.fail(
            "rclone is not installed: this test drives the real rclone against davserver. "
            "Install it with `apt-get install -y rclone` (tests/run does this in CI).",
            pytrace=False,
        )
    return found


class Rclone:
    def __init__(self, program: str, env: dict[str, str]) -> None:
        self.program = program
        self.env = env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [
            self.program,
            *args,
            "--retries",
            "1",
            "--low-level-retries",
            "1",
            "--contimeout",
            "10s",
            "--timeout",
            "60s",
        ]
        try:
            result = subprocess.run(
                command,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{' '.join(command)} did not finish in 120 s\nstderr:\n{exc.stderr}")
        if check:
            assert result.returncode == 0, (
                f"{' '.join(command)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result


@pytest.fixture(params=["in-process", "default-start"])
def rclone_env(
    make_server, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[LiveServer | ServerProcess, Rclone]]:
    """rclone and a server: in this process, or the default start (`davserver serve`, a worker
    process per CPU: a checksum stored through one is reported by another)."""
    users = write_users(tmp_path / "users.htpasswd", {USER: PASSWORD})
    server: LiveServer | ServerProcess
    if request.param == "in-process":
        server = make_server(htpasswd=users)
    else:
        (tmp_path / "root").mkdir()
        server = ServerProcess(
            tmp_path / "root", tmp_path / "state", "--htpasswd", users, "--basic", "always"
        )
        request.addfinalizer(lambda: _stopped_without_errors(server))
    yield server, rclone_for(server, tmp_path)


def rclone_for(server: LiveServer | ServerProcess, tmp_path: Path) -> Rclone:
    """rclone with the remote `dav:` set up for `server` (which has the user USER)."""
    program = require_rclone()
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "rclone.conf"
    config.write_text("")
    base_env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C.UTF-8",
        "RCLONE_CONFIG": str(config),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }
    obscured = subprocess.run(
        [program, "obscure", PASSWORD],
        env=base_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    env = {
        **base_env,
        "RCLONE_CONFIG_DAV_TYPE": "webdav",
        "RCLONE_CONFIG_DAV_URL": server.base + "/",
        "RCLONE_CONFIG_DAV_VENDOR": "owncloud",
        "RCLONE_CONFIG_DAV_USER": USER,
        "RCLONE_CONFIG_DAV_PASS": obscured,
    }
    return Rclone(program, env)


def _stopped_without_errors(server: ServerProcess) -> None:
    server.stop()
    assert server.errors() == ""


@pytest.fixture(autouse=True)
def _no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture the access log (shown on failure); any 5xx answer fails the test."""
    yield from no_server_errors(caplog)


def assert_same_tree(
    where: str, root: Path, expected: dict[str, tuple[bytes, int]], check_mtime: bool = True
) -> None:
    found = files_under(root)
    assert set(found) == set(expected), (
        f"{where}: missing {sorted(set(expected) - set(found))}, "
        f"extra {sorted(set(found) - set(expected))}"
    )
    wrong_bytes = [rel for rel, (data, _) in expected.items() if found[rel].read_bytes() != data]
    assert not wrong_bytes, f"{where}: different content in {wrong_bytes}"
    if check_mtime:
        wrong_dates = {
            rel: (int(found[rel].stat().st_mtime), mtime)
            for rel, (_, mtime) in expected.items()
            if int(found[rel].stat().st_mtime) != mtime
        }
        assert not wrong_dates, f"{where}: (mtime, expected) differ: {wrong_dates}"


def test_rclone_sync_up_and_down_keeps_dates_and_checksums(rclone_env, tmp_path):
    server, rclone = rclone_env
    local = tmp_path / "local"
    expected = make_tree(local)
    assert 45 <= len(expected) <= 60

    # Up.
    rclone.run("sync", str(local), "dav:dir", "-v")
    assert_same_tree("server disk after the upload", server.root / "dir", expected)

    checked = rclone.run("check", str(local), "dav:dir")
    assert "0 differences found" in checked.stderr, checked.stderr
    assert f"{len(expected)} matching files" in checked.stderr, checked.stderr
    # Every hash was compared: the server reported the checksums rclone sent.
    assert "hashes could not be checked" not in checked.stderr, checked.stderr

    # The hashes the server reports are those of the content.
    listed = rclone.run("lsjson", "--hash", "-R", "--files-only", "dav:dir")
    entries = {e["Path"]: e for e in json.loads(listed.stdout)}
    assert set(entries) == set(expected)
    wrong_hashes = {}
    for rel, (data, _) in expected.items():
        hashes = entries[rel].get("Hashes") or {}
        want = {"sha1": hashlib.sha1(data).hexdigest(), "md5": hashlib.md5(data).hexdigest()}
        if {k: hashes.get(k) for k in want} != want:
            wrong_hashes[rel] = (hashes, want)
    assert not wrong_hashes, f"lsjson --hash disagrees with the content: {wrong_hashes}"

    # A second sync finds nothing to do: sizes and dates already match.
    again = rclone.run("sync", str(local), "dav:dir", "-v")
    redone = [
        line
        for line in again.stderr.splitlines()
        if "Copied" in line or "Updated modification time" in line
    ]
    assert not redone, "the second sync transferred again:\n" + "\n".join(redone)

    # Down, into a fresh folder: the dates survive the way back.
    local2 = tmp_path / "local2"
    rclone.run("sync", "dav:dir", str(local2), "-v")
    assert_same_tree("second local copy", local2, expected)
    checked_back = rclone.run("check", "dav:dir", str(local2))
    assert "0 differences found" in checked_back.stderr, checked_back.stderr
    assert f"{len(expected)} matching files" in checked_back.stderr, checked_back.stderr
    assert "hashes could not be checked" not in checked_back.stderr, checked_back.stderr


def test_rclone_sees_a_changed_file(rclone_env, tmp_path):
    """A file changed on the server (new content, its stored checksum dropped) is a difference
    for `rclone check`, and the next sync restores it with its date."""
    server, rclone = rclone_env
    local = tmp_path / "local"
    expected = make_tree(local)
    rclone.run("sync", str(local), "dav:dir")

    victim = "résumé, final.doc"
    response = server.request(
        "PUT", "/dir/" + quote(victim), data=b"changed on the server", auth=(USER, PASSWORD)
    )
    assert response.status_code == 204, (response.status_code, response.text)
    checked = rclone.run("check", str(local), "dav:dir", check=False)
    assert checked.returncode != 0, checked.stderr
    assert "1 differences found" in checked.stderr, checked.stderr
    assert victim in checked.stderr

    rclone.run("sync", str(local), "dav:dir")
    assert_same_tree("server disk after the repair", server.root / "dir", expected)
    rclone.run("check", str(local), "dav:dir")
