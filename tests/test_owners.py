"""davserver/owners.py piece by piece: reading /proc (boot, pid namespace, process start time),
and the liveness rules where /proc tells less than usual. test_claims.py covers the common
cases through whole owner names; these were found by mutation testing (docs/mutation.md)."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest

from davserver import owners

# Linux never numbers a process above 2**22 (the largest pid_max), so no such process exists.
NO_SUCH_PID = 2**22 + 1


def test_boot_id_is_the_boot_and_the_pid_namespace() -> None:
    boot, _, namespace = owners._boot_id().partition(".")
    assert boot == Path(owners._BOOT_ID_FILE).read_text().strip()
    assert re.fullmatch(r"\d+", namespace)
    assert os.readlink("/proc/self/ns/pid") == f"pid:[{namespace}]"


def test_boot_id_without_proc_is_unknown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(owners, "_BOOT_ID_FILE", str(tmp_path / "missing"))
    assert owners._boot_id() == "-"


def test_boot_id_without_a_namespace_link(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(path: str) -> str:
        raise PermissionError(path)

    boot = Path(owners._BOOT_ID_FILE).read_text().strip()
    monkeypatch.setattr(os, "readlink", no_link)
    assert owners._boot_id() == f"{boot}.-"


def _fake_stat(monkeypatch: pytest.MonkeyPatch, content: bytes) -> None:
    def fake_open(path: str, mode: str = "r") -> io.BytesIO:
        assert (path, mode) == ("/proc/42/stat", "rb")
        return io.BytesIO(content)

    monkeypatch.setattr(owners, "open", fake_open, raising=False)


# Fields 3 to 22 of /proc/PID/stat; field 22 (the start time) is 7777.
_AFTER_NAME = b"S 1 1 1 0 -1 4194560 100 0 0 0 1 1 0 0 20 0 1 0 7777 1000 200"


@pytest.mark.parametrize("name", [b"python", b"a) b", b"x (y) z", b") ) )"])
def test_start_time_is_field_22_whatever_the_command_name(
    monkeypatch: pytest.MonkeyPatch, name: bytes
) -> None:
    _fake_stat(monkeypatch, b"42 (" + name + b") " + _AFTER_NAME + b"\n")
    assert owners._start_time(42) == "7777"


def test_start_time_needs_exactly_field_22(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = _AFTER_NAME.split()
    _fake_stat(monkeypatch, b"42 (p) " + b" ".join(fields[:20]))  # up to field 22
    assert owners._start_time(42) == "7777"
    _fake_stat(monkeypatch, b"42 (p) " + b" ".join(fields[:19]))  # up to field 21
    assert owners._start_time(42) == "-"


def test_start_time_of_a_process_that_does_not_exist_is_empty() -> None:
    assert owners._start_time(NO_SUCH_PID) == ""


def test_start_time_is_unknown_when_proc_cannot_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: str, mode: str = "r") -> io.BytesIO:
        raise PermissionError(path)

    monkeypatch.setattr(owners, "open", refuse, raising=False)
    assert owners._start_time(42) == "-"


def test_pid_exists() -> None:
    assert owners._pid_exists(os.getpid())
    assert not owners._pid_exists(NO_SUCH_PID)


def test_a_pid_we_may_not_signal_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_yours(pid: int, signal: int) -> None:
        raise PermissionError(pid)

    monkeypatch.setattr(os, "kill", not_yours)
    assert owners._pid_exists(1)


def test_a_file_tag_is_a_file_name_and_keeps_the_owner_dead_or_alive() -> None:
    owner = owners.new_owner()
    tag = owners.file_tag(owner)
    assert "/" not in tag
    assert owners.tag_alive(tag)
    owners.retire(owner)
    assert not owners.tag_alive(tag)


def test_an_owner_whose_boot_is_unknown_is_never_presumed_dead() -> None:
    host, _boot, pid, start, nonce = owners.new_owner().split("/")
    assert owners.is_alive("/".join([host, "-", pid, start, nonce]))


def test_without_our_own_boot_no_owner_is_presumed_dead(monkeypatch: pytest.MonkeyPatch) -> None:
    host, boot, pid, start, nonce = owners.new_owner().split("/")
    monkeypatch.setattr(owners, "_BOOT", "-")
    assert owners.is_alive("/".join([host, boot, pid, start, nonce]))


def test_an_owner_without_a_start_time_is_alive_while_its_pid_runs() -> None:
    host, boot, _pid, _start, nonce = owners.new_owner().split("/")
    # Our parent runs, but its start time was not recorded: the pid decides.
    assert owners.is_alive("/".join([host, boot, str(os.getppid()), "-", nonce]))
    assert not owners.is_alive("/".join([host, boot, str(NO_SUCH_PID), "-", nonce]))


def test_without_proc_the_pid_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    host, boot, _pid, start, nonce = owners.new_owner().split("/")
    monkeypatch.setattr(owners, "_start_time", lambda pid: "-")
    assert owners.is_alive("/".join([host, boot, str(os.getppid()), start, nonce]))
    assert not owners.is_alive("/".join([host, boot, str(NO_SUCH_PID), start, nonce]))
