"""Where the server's log goes: standard error, each message one line written by one system
call; and the access log's line per request.

The access log costs something on every request. Through the logging module (a LogRecord, a
formatter, StreamHandler's lock and a text stream flushed per line) it was the largest single
cost of a small GET: a worker's CPU per request went from about 86 to 150 us with it on
(bench/RESULTS.md, "Engines"). Once `configure` has sent the log to standard error, an access
line is formatted here and written with one `os.write`. A program that embeds the app without
calling `configure` gets the access lines as records of the `davserver.access` logger.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time

FORMAT = "%(asctime)s %(levelname)s %(message)s"

access_logger = logging.getLogger("davserver.access")


class LineWriter(logging.Handler):
    """Writes each record as one line with one `os.write` on `fd`: no buffer to flush, and no
    lock, since the kernel writes one call's bytes together (lines from several threads or
    worker processes never interleave within a line, up to the pipe's atomic size)."""

    def __init__(self, fd: int = 2) -> None:
        super().__init__()
        self.fd = fd
        self.fallback = logging.Formatter(FORMAT)
        # The second last formatted and its text, replaced together: threads write lines at
        # once, and two separate fields could pair one second with another's text.
        self._stamp = (-1, "")

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.exc_info or record.stack_info:
                self.write(self.fallback.format(record))
            else:
                self.line(record.created, record.levelname, record.getMessage())
        except Exception:
            self.handleError(record)

    def line(self, created: float, level: str, message: str) -> None:
        """Write `message` in the log's format (FORMAT, with logging's default time)."""
        second = int(created)
        stamped, stamp = self._stamp
        if second != stamped:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._stamp = (second, stamp)
        self.write(f"{stamp},{int((created - second) * 1000):03d} {level} {message}")

    def write(self, text: str) -> None:
        # Standard error closed, or its reader gone (EPIPE): the line is lost, as it was with
        # logging's StreamHandler, and the request it tells of goes on regardless.
        with contextlib.suppress(OSError):
            os.write(self.fd, (text + "\n").encode("utf-8", "backslashreplace"))


# Set by configure() when access lines go straight to the writer.
_access_writer: LineWriter | None = None


def configure(level: str, access_log: bool) -> None:
    """Send every log to standard error at `level`; the access log only when `access_log`."""
    global _access_writer
    if sys.stderr is None:
        # Descriptor 2 was closed when Python started: whatever is opened next may get it
        # (SQLite puts /dev/null there, read-only), and no log line may land in that.
        return
    # The format names no source file, thread or process: not looking them up per record is
    # logging's own documented optimisation (HOWTO, "Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    writer = LineWriter()
    root = logging.getLogger()
    root.addHandler(writer)
    root.setLevel(level.upper())
    access_logger.setLevel(logging.INFO if access_log else logging.WARNING)
    _access_writer = writer if access_log else None


def access_wanted() -> bool:
    """Whether access lines are logged (formatting one costs a little)."""
    return _access_writer is not None or access_logger.isEnabledFor(logging.INFO)


def access(message: str) -> None:
    """Log one request's access line."""
    writer = _access_writer
    if writer is not None:
        writer.line(time.time(), "INFO", message)
    elif access_logger.isEnabledFor(logging.INFO):
        access_logger.info("%s", message)
