"""Which process holds a claim, and whether it is still running.

An owner is named `host/boot/pid/start/nonce`: the machine, its boot and pid namespace, the
process id with the time the process started (pid numbers are reused; the pair is not), and a
random nonce per store object, since one process may open the state folder several times (a
server stopped and started again in one process, as tests do) and the claims of a closed store
are as dead as a crashed process's.

Liveness is decided only for owners on this machine and in this pid namespace: a process whose
boot or start time differs, or that no longer exists, is gone. An owner on another host, or in
another container's pid namespace, is never presumed dead; a store shared across machines
needs leases instead (see docs/state.md).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid

_BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"

_live_nonces: set[str] = set()
_live_lock = threading.Lock()


def _boot_id() -> str:
    try:
        with open(_BOOT_ID_FILE) as f:
            boot = f.read().strip()
    except OSError:
        return "-"
    # The pid namespace too: two containers on one host (one boot) number their processes
    # each in their own, and one cannot tell whether the other's pid is running.
    try:
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        namespace = "-"
    return f"{boot}.{namespace}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or "-"
    where /proc is missing; "" when no such process runs."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return ""
    except OSError:
        return "-"
    # The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    if fields and fields[0] == b"Z":
        # A zombie has ended and only waits to be reaped: a killed server's worker processes
        # wait for init, which may take a while after a new server started.
        return ""
    return fields[19].decode() if len(fields) > 19 else "-"


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Host names may hold anything; owners are also spelled into file names.
_HOST = "".join(c if c.isalnum() or c in ".-" else "_" for c in socket.gethostname())
_BOOT = _boot_id()


def new_owner() -> str:
    """A fresh owner name for this process, alive until `retire` is called with it."""
    pid = os.getpid()
    nonce = uuid.uuid4().hex[:12]
    with _live_lock:
        _live_nonces.add(nonce)
    return f"{_HOST}/{_BOOT}/{pid}/{_start_time(pid)}/{nonce}"


def retire(owner: str) -> None:
    """The store that used `owner` is closed: its leftover claims are orphans."""
    with _live_lock:
        _live_nonces.discard(owner.rsplit("/", 1)[-1])


def file_tag(owner: str) -> str:
    """`owner` spelled for a file name (uploads in progress are named after their process)."""
    return owner.replace("/", "+")


def tag_alive(tag: str) -> bool:
    """`is_alive` for a name made by `file_tag`."""
    return is_alive(tag.replace("+", "/"))


def is_alive(owner: str) -> bool:
    """Whether the process (and store) named by `owner` may still hold its claims."""
    try:
        host, boot, pid_text, start, nonce = owner.split("/")
        pid = int(pid_text)
    except ValueError:
        return True  # not a name this module made: never presume it dead
    if host != _HOST:
        return True
    if boot != _BOOT:
        their_boot, my_boot = boot.partition(".")[0], _BOOT.partition(".")[0]
        if their_boot != my_boot:
            # A reboot ended every process of the old boot (when both boots are known).
            return their_boot == "-" or my_boot == "-"
        return True  # another pid namespace on this boot: its processes are not ours to see
    now = _start_time(pid)
    if pid == os.getpid() and now == start:
        with _live_lock:
            return nonce in _live_nonces
    if now == "-" or start == "-":
        return _pid_exists(pid)
    return now == start
