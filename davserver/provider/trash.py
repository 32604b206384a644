"""Deferred removal of deleted files: a DELETE costs a hard link, the disk work comes later.

Unlinking a file whose blocks are on disk makes the kernel free its extents and journal that:
80-150 µs per small file on ext4 here, more for a large one, and most of what a DELETE costs.
A deleted file is instead hard-linked into a hidden folder on the same filesystem and its name
unlinked (about 25 µs together: the last link is not the one removed, so nothing is freed).
That takes the name away at once, which is all a client can see, and a background thread
unlinks the file's last link once deletions have paused. A hard link rather than a rename:
link() refuses a folder, so a name that became a folder meanwhile is never carried away, and
the name is removed by a plain unlink, with its errors.

The pause matters: an unlink releases the GIL and every return from it asks for the GIL back,
so a thread unlinking beside a busy request slows that request down more than unlinking in
place would.

Nothing is lost or kept by this: the name is gone when `discard` returns, whatever happens
next; a crash leaves only files that were already deleted, and the next start (or the next
pause of any process sharing the folder) removes them.
The disk space comes back a moment later, so when the filesystem runs low on space, or
too many files are waiting, or the link is impossible (another filesystem mounted inside the
share), a file is unlinked at once, as before.

The folder is private (0700), opened once without following links and used only through that
descriptor: if its name is taken by a link or by anything that is not the server's own folder,
there is no trash and files are unlinked at once, so deleted data can neither leave the share
nor be read by other local users meanwhile, and emptying the trash can only unlink what is in
that folder.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import stat
import threading
import time
import uuid

# Trash names must not collide between processes sharing the folder, nor between the
# providers of one process (tests run many), nor between instances on several machines
# sharing one volume (whose pids repeat): the pid, a random id for the instance, and one
# counter for the process.
_names = itertools.count()
_INSTANCE = uuid.uuid4().hex[:12]

# The trash works through a folder descriptor (linkat, unlinkat, fdopendir); where the
# platform lacks any of that, there is no trash and files are unlinked at once.
SUPPORTED = (
    os.link in os.supports_dir_fd
    and os.unlink in os.supports_dir_fd
    and os.listdir in os.supports_fd
    and hasattr(os, "O_NOFOLLOW")
    and hasattr(os, "O_DIRECTORY")
)

log = logging.getLogger(__name__)


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
        # How many files wait for the thread, since when the oldest, and when the last came.
        self._waiting = 0
        self._oldest = 0.0
        self._last = 0.0
        self._closed = False
        self._space_checked = 0.0
        self._space_low = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        # The folder's descriptor, and how many discards are using it: close() waits for
        # them, so that a descriptor is never closed (and its number reused) under one.
        self._fd: int | None = None
        self._busy = 0
        self._retired: list[int] = []
        self._warned = False

    def discard(self, local: str, where: int | None = None) -> None:
        """Remove the file (or link) at `local` from its folder now; its data goes later.
        `local` is a path, or with `where` (a folder's descriptor: the `dir_fd` of os) a name
        in that folder. Raises the OSError that unlinking it would (a folder:
        IsADirectoryError)."""
        now = time.monotonic()
        folder = self._borrow(now)
        if folder is None:
            os.unlink(local, dir_fd=where)
            return
        kept: str | None = None
        try:
            name = f"{os.getpid()}-{_INSTANCE}-{next(_names)}"
            try:
                os.link(local, name, src_dir_fd=where, dst_dir_fd=folder, follow_symlinks=False)
            except OSError as exc:
                # A folder, another filesystem, a vanished trash folder: unlinking says
                # which, with the error a client should see.
                if exc.errno == errno.ENOENT:
                    self._retire(folder)
                os.unlink(local, dir_fd=where)
                return
            try:
                os.unlink(local, dir_fd=where)
            except OSError:
                _remove(folder, name)
                raise
            kept = name
        finally:
            self._give_back(folder, kept, now)

    @property
    def waiting(self) -> int:
        """How many deleted files still hold their disk space."""
        return self._waiting

    def empty(self) -> int:
        """Unlink everything in the trash folder now; returns how many files went.

        That includes what other processes sharing the folder have put there and what a
        crash left behind: it is all deleted already (their threads ignore a file that is
        no longer there). Used at startup, on close, and by the thread itself, so a process
        that never stops cleanly (a gunicorn worker) leaves nothing behind for long.
        """
        with self._wake:
            self._waiting = 0
        folder = _open_private(self.directory, create=False)
        if folder is None:
            return 0
        try:
            return sum(_remove(folder, name) for name in os.listdir(folder))
        except OSError:
            return 0
        finally:
            os.close(folder)

    def close(self) -> None:
        """Stop the thread after it has unlinked everything; later deletions unlink at once."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
            while self._busy:
                self._wake.wait()
            thread = self._thread
        if thread is not None:
            thread.join()
        self.empty()
        with self._wake:
            if self._fd is not None:
                self._retired.append(self._fd)
                self._fd = None
            for fd in self._retired:
                os.close(fd)
            self._retired = []

    # -- inside --------------------------------------------------------------------------

    def _borrow(self, now: float) -> int | None:
        """The folder's descriptor for one discard, or None when the file is to be unlinked
        at once."""
        if self._closed or self._waiting >= self.max_pending or self._low_on_space(now):
            return None
        with self._wake:
            if self._closed:
                return None
            if self._fd is None:
                self._fd = _open_private(self.directory, create=True)
                if self._fd is None and not self._warned:
                    self._warned = True
                    log.warning(
                        "%s cannot be the trash (a link, another user's, or not supported "
                        "here): deleted files are unlinked at once",
                        self.directory,
                    )
            if self._fd is not None:
                self._busy += 1
            return self._fd

    def _give_back(self, folder: int, name: str | None, now: float) -> None:
        """End a discard; `name` is its file in the trash, if it put one there."""
        with self._wake:
            self._busy -= 1
            if self._closed:
                if name is not None:
                    _remove(folder, name)  # close() has emptied the trash already
                self._wake.notify_all()
                return
            if name is None:
                return
            first = not self._waiting
            if first:
                self._oldest = now
            self._waiting += 1
            self._last = now
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="trash", daemon=True)
                self._thread.start()
            elif first:
                # Only an idle thread needs waking: a waiting one looks at `_last` when its
                # timer ends, and waking it on every deletion would cost a switch each.
                self._wake.notify()

    def _retire(self, folder: int) -> None:
        """The folder is gone: make it anew next time. The old descriptor stays open until
        close(), since another discard may be using it."""
        with self._wake:
            if self._fd == folder:
                self._fd = None
                self._retired.append(folder)

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
                while not self._waiting and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                # Wait for deletions to pause, but not for ever.
                while self._waiting and not self._closed:
                    now = time.monotonic()
                    due = min(self._last + self.quiet, self._oldest + self.max_delay)
                    if now >= due:
                        break
                    self._wake.wait(due - now)
            self.empty()


def _open_private(directory: str, create: bool) -> int | None:
    """Open `directory` without following a link, making it (0700) when missing; None unless
    it is a real folder of this user, which is then made private."""
    if not SUPPORTED:
        return None
    if create:
        with contextlib.suppress(OSError):
            os.mkdir(directory, 0o700)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None  # missing, a link, a file: no trash
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise PermissionError(errno.EPERM, "the trash folder belongs to another user")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, 0o700)
    except OSError:
        os.close(fd)
        return None
    return fd


def _remove(folder: int, name: str) -> bool:
    """Unlink `name` in the trash folder; False when it is gone already (another process)."""
    try:
        os.unlink(name, dir_fd=folder)
    except OSError:
        return False
    return True
