"""Named points where a test can make the server die, as a crash or a power cut would.

`DAVSERVER_FAILPOINTS` holds comma-separated names; when the server reaches a listed point it
kills itself with SIGKILL at once (no clean-up, no flushing, nothing a real crash would not
skip). A name may end in `@N` to die at its N-th hit instead of the first. Off, and free, unless
the variable is set: the check is one membership test in an empty frozenset.

Tests use it to prove that every step of a change can be interrupted and recovered
(tests/test_crash.py); nobody else should set it.
"""

from __future__ import annotations

import os
import signal
import threading

VARIABLE = "DAVSERVER_FAILPOINTS"


def _parse(raw: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in raw.split(","):
        name, _, nth = item.strip().partition("@")
        if name:
            points[name] = int(nth) if nth.isdigit() else 1
    return points


_armed = _parse(os.environ.get(VARIABLE, ""))
_names = frozenset(_armed)
_hits: dict[str, int] = {}
_lock = threading.Lock()


def hit(name: str) -> None:
    """Die here if a test armed `name` (and this is the hit it chose)."""
    if name not in _names:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] >= _armed[name]:
            os.kill(os.getpid(), signal.SIGKILL)
