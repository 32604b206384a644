"""Deferred removal of deleted files: a DELETE costs a rename, the disk work comes later.

Unlinking a file whose blocks are on disk makes the kernel free its extents and journal that:
80-150 µs per small file on ext4 here, more for a large one, and most of what a DELETE costs.
A deleted file is instead renamed into a hidden folder on the same filesystem (about 20 µs).
That takes the name away at once, which is all a client can see, and a background thread
unlinks the file once deletions have paused. The pause matters: an unlink releases the GIL and
every return from it asks for the GIL back, so a thread unlinking beside a busy request slows
that request down more than unlinking in place would.

Nothing is lost or kept by this: the name is gone when `discard` returns, whatever happens
next; a crash leaves only files that were already deleted, and the next start (or the next
pause of any process sharing the folder) removes them.
The disk space comes back a moment later, so when the filesystem runs low on space, or
too many files are waiting, or the rename is impossible (another filesystem mounted inside the
share), a file is unlinked at once, as before.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections import deque

# Trash names must not collide between processes sharing the folder, nor between the
# providers of one process (tests run many): the pid and one counter for the process.
_names = itertools.count()


class Trash:
    """A hidden folder, `directory`, where deleted files wait for a background unlink."""

    def __init__(
        self,
        directory: str,
        *,
        quiet: float = 0.05,
        max_delay: float = 5.0,
        max_pending: int = 10_000,
        min_free: int = 1 << 30,
        min_free_ratio: float = 0.05,
    ) -> None:
        """`quiet`: how long deletions must pause before the thread unlinks; `max_delay`: how
        long a file may wait when they never pause; `max_pending`: how many may wait at once;
        `min_free`/`min_free_ratio`: below this much free space (bytes, or a share of the
        filesystem), files are unlinked at once because the space is wanted back."""
        self.directory = directory
        self.quiet = quiet
        self.max_delay = max_delay
        self.max_pending = max_pending
        self.min_free = min_free
        self.min_free_ratio = min_free_ratio
        self._pending: deque[tuple[str, float]] = deque()
        self._last = 0.0
        self._closed = False
        self._ready = False
        self._space_checked = 0.0
        self._space_low = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def discard(self, local: str) -> None:
        """Remove the file (or link) at `local` from its folder now; its data goes later.
        Raises the OSError that unlinking it would."""
        now = time.monotonic()
        if self._closed or len(self._pending) >= self.max_pending or self._low_on_space(now):
            os.unlink(local)
            return
        name = f"{os.getpid()}-{next(_names)}"
        try:
            self._prepare()
            os.rename(local, os.path.join(self.directory, name))
        except OSError:
            # Another filesystem, a vanished trash folder, or a file that cannot be removed:
            # unlinking says which, with the error a client should see.
            self._ready = False
            os.unlink(local)
            return
        with self._wake:
            first = not self._pending
            self._pending.append((name, now))
            self._last = now
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="trash", daemon=True)
                self._thread.start()
            elif first:
                # Only an idle thread needs waking: a waiting one looks at `_last` when its
                # timer ends, and waking it on every deletion would cost a switch each.
                self._wake.notify()

    @property
    def waiting(self) -> int:
        """How many deleted files still hold their disk space."""
        return len(self._pending)

    def empty(self) -> int:
        """Unlink everything in the trash folder now; returns how many files went.

        That includes what other processes sharing the folder have put there and what a
        crash left behind: it is all deleted already (their threads ignore a file that is
        no longer there). Used at startup, on close, and by the thread itself, so a process
        that never stops cleanly (a gunicorn worker) leaves nothing behind for long.
        """
        with self._wake:
            self._pending.clear()
        removed = 0
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        for name in names:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.directory, name))
                removed += 1
        return removed

    def close(self) -> None:
        """Stop the thread after it has unlinked everything; later deletions unlink at once."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        self.empty()

    # -- inside --------------------------------------------------------------------------

    def _prepare(self) -> None:
        if not self._ready:
            os.makedirs(self.directory, exist_ok=True)
            self._ready = True

    def _low_on_space(self, now: float) -> bool:
        # statvfs once a second: a burst of deletions should not pay for one each.
        if now - self._space_checked >= 1.0:
            self._space_checked = now
            try:
                fs = os.statvfs(os.path.dirname(self.directory))
            except OSError:
                self._space_low = True
            else:
                free = fs.f_bavail * fs.f_frsize
                total = fs.f_blocks * fs.f_frsize
                self._space_low = free < self.min_free or free < total * self.min_free_ratio
        return self._space_low

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                # Wait for deletions to pause, but not for ever.
                while self._pending and not self._closed:
                    now = time.monotonic()
                    due = min(self._last + self.quiet, self._pending[0][1] + self.max_delay)
                    if now >= due:
                        break
                    self._wake.wait(due - now)
            self.empty()
