"""cheroot, adjusted: a worker pool that grows under load, and errors in our log.

cheroot serves each request on a pool thread that blocks while it reads the request. A client
that sends its headers or body slowly therefore holds a thread, and a fixed pool lets a few
dozen such connections starve everyone else. This server starts `threads` workers and, whenever
a connection arrives with none idle, adds more in the background, up to `max_threads`; each
stalled connection is still closed after the configured timeout of silence.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from cheroot import server, wsgi

log = logging.getLogger("davserver.httpd")

_GROW_STEP = 8


class _Request(server.HTTPRequest):
    def send_headers(self) -> None:
        # cheroot decides on its own whether to keep a connection; honour the app's
        # `Connection: close` too, so a refused upload is not read to its end first and no
        # further request is served on that connection (RFC 9112 9.6).
        if any(
            k.lower() == b"connection" and v.strip().lower() == b"close" for k, v in self.outheaders
        ):
            self.close_connection = True
        super().send_headers()


class _Connection(server.HTTPConnection):
    RequestHandlerClass = _Request


class ElasticServer(wsgi.Server):
    """`cheroot.wsgi.Server` whose pool grows when every worker is busy, and which closes
    connections the application asks to close."""

    ConnectionClass = _Connection

    # How often idle connections are checked, and so how long stop() may wait (cheroot: 0.5).
    expiration_interval = 0.1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wanted = threading.Event()
        self._stopped = threading.Event()
        self._grower: threading.Thread | None = None

    def prepare(self) -> None:
        super().prepare()
        self._stopped.clear()
        self._grower = threading.Thread(target=self._grow_when_needed, name="grow", daemon=True)
        self._grower.start()

    def process_conn(self, conn: Any) -> None:
        super().process_conn(conn)
        # Called by the connection manager's thread: only signal here, since growing the pool
        # waits for new threads to start.
        if self._starved():
            self._wanted.set()

    def _starved(self) -> bool:
        """Connections wait in the queue and no worker is free to take them."""
        pool = self.requests
        return bool(pool.qsize > 0 and pool.idle == 0 and len(pool._threads) < pool.max)

    def _grow_when_needed(self) -> None:
        # Woken by process_conn, and every 0.1 s in any case: a worker that looked idle when a
        # connection arrived may have taken an earlier one from the queue instead.
        while not self._stopped.is_set():
            self._wanted.wait(0.1)
            self._wanted.clear()
            pool = self.requests
            # Every queued connection needs a worker of its own: a slow one ahead in the queue
            # would otherwise take the new thread.
            while self.ready and not self._stopped.is_set() and self._starved():
                before = len(pool._threads)
                pool.grow(pool.qsize + _GROW_STEP)
                log.debug("worker pool grown from %d to %d threads", before, len(pool._threads))

    def stop(self) -> None:
        self._stopped.set()
        self._wanted.set()
        super().stop()

    def error_log(self, msg: str = "", level: int = 20, traceback: bool = False) -> None:
        # cheroot reports client timeouts and resets with full tracebacks on stderr; they are
        # ordinary network events, so they go to our log, with the traceback only at debug.
        log.log(
            logging.DEBUG if level < logging.ERROR else logging.WARNING,
            "http: %s",
            msg.strip(),
            exc_info=traceback and log.isEnabledFor(logging.DEBUG),
        )
