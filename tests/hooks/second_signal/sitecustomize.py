"""Loaded by a davserver process whose PYTHONPATH starts with this folder (test_workers.py):
while a SIGINT handler runs, a SIGTERM comes at every line of it and of everything it calls, as
the parent's SIGTERM follows a Ctrl-C sent to the whole process group, but at every instant,
where chance picks one in many runs. None comes while a SIGTERM handler runs: the second signal
must be handled inside the first one's handler, not set off a chain of them."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import Any

_install = signal.signal
# Stop signals whose handler is running now, the innermost last.
_running: list[int] = []


def _each_line(_frame: FrameType, event: str, _arg: object) -> Any:
    if event == "line" and _running == [signal.SIGINT]:
        os.kill(os.getpid(), signal.SIGTERM)
    return _each_line


def _traced(signum: int, handler: Any) -> Any:
    def run(number: int, frame: FrameType | None) -> Any:
        _running.append(signum)
        previous = sys.gettrace()
        sys.settrace(_each_line)
        try:
            return handler(number, frame)
        finally:
            sys.settrace(previous)
            _running.pop()

    return run


def _signal(signum: int, handler: Any) -> Any:
    """signal.signal, the stop signals' handlers run as described above."""
    if signum in (signal.SIGINT, signal.SIGTERM) and callable(handler):
        handler = _traced(signum, handler)
    return _install(signum, handler)


signal.signal = _signal
