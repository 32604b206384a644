"""cheroot, adjusted: a worker pool that grows under load, TLS handshakes on the workers, a
deadline for headers, and errors in our log.

cheroot serves each request on a pool thread that blocks while it reads the request. A client
that sends its headers or body slowly therefore holds a thread, and a fixed pool lets a few
dozen such connections starve everyone else. This server starts `threads` workers and, whenever
a connection arrives with none idle, adds more in the background, up to `max_threads`; each
stalled connection is still closed after the configured timeout of silence. A client that
never falls silent but sends its headers a byte at a time is cut off once `header_timeout`
has passed since a worker began reading them, at their first byte: until then a connection,
new or kept alive, waits in cheroot's selector and holds no thread (a new one that sends
nothing is closed `header_timeout` after it was accepted).

cheroot does each TLS handshake on the one thread that accepts connections, so a client that
connected to the HTTPS port and sent nothing stalled every new connection until its timeout.
`DeferredTLSAdapter` leaves the handshake to the worker, under the same deadline as the
headers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

from cheroot import server, wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from .request import BODY_DEADLINE

log = logging.getLogger("davserver.httpd")

_GROW_STEP = 8


class DeferredTLSAdapter(BuiltinSSLAdapter):
    """cheroot's TLS adapter, but the handshake happens on the worker (`_Connection`)."""

    def wrap(self, sock: socket.socket) -> tuple[ssl.SSLSocket, dict[str, Any]]:
        tls = self.context.wrap_socket(sock, do_handshake_on_connect=False, server_side=True)
        return tls, {}  # the environ entries come once the handshake is done


class _HeaderReader(server.HeaderReader):
    """cheroot's header reader keeps the last of several Content-Length headers, so a body
    framed as 3 bytes by one and 5 by the other was read as 5. RFC 9112 6.3 makes a doubled
    Content-Length a framing error, and a doubled Host is as bad (RFC 9112 3.2); a ValueError
    here is cheroot's 400 and closes. A name with "_" is dropped (see llhttpd._environ_key)."""

    def __call__(self, rfile: Any, hdict: Any = None) -> Any:
        return _OneHeaderBlock()(rfile, hdict)


class _OneHeaderBlock(server.HeaderReader):
    def __init__(self) -> None:
        self.seen: set[bytes] = set()

    def _allow_header(self, key_name: bytes) -> bool:
        if b"_" in key_name:
            return False  # as the httptools engine drops it (llhttpd._environ_key)
        if key_name in _SINGLE and key_name in self.seen:
            raise ValueError(f"More than one {key_name.decode()} header.")
        self.seen.add(key_name)
        return True


# Headers a request may carry once: a second Content-Length is a framing error (RFC 9112
# 6.3), a second Host a 400 (RFC 9112 3.2).
_SINGLE = frozenset({b"Content-Length", b"Host"})


# RFC 9112 7.1: chunk-size is 1*HEXDIG, then optional extensions.
_CHUNK_SIZE_LINE = re.compile(rb"[0-9A-Fa-f]+(;[^\r\n]*)?\r\n")


class _ChunkSizeLines:
    """The connection's stream under cheroot's chunked reader, which reads each chunk-size
    line with int(size, 16): that takes "-5", which it then reads as the last chunk, so a
    malformed body ended early and was stored. Size lines are checked here; a ValueError is
    what cheroot raises for its own framing errors. After the last chunk, lines are trailers.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.trailers = False

    def read(self, size: int = -1) -> bytes:
        return bytes(self.stream.read(size))

    def readline(self, size: int = -1) -> bytes:
        line = bytes(self.stream.readline(size))
        if not self.trailers:
            if not _CHUNK_SIZE_LINE.fullmatch(line):
                raise ValueError(f"Bad chunked transfer size: {line[:40]!r}")
            self.trailers = int(line.split(b";", 1)[0], 16) == 0
        return line


class _Request(server.HTTPRequest):
    server: ElasticServer
    header_reader = _HeaderReader()

    def parse_request(self) -> None:
        srv = self.server
        srv.watch(self.conn)
        try:
            super().parse_request()
        except OSError:
            if not srv.cut_off(self.conn):
                raise
            self.ready = False  # the connection is shut: there is no one to answer
        finally:
            srv.unwatch(self.conn)

    def send_headers(self) -> None:
        # cheroot decides on its own whether to keep a connection; honour the app's
        # `Connection: close` too, so a refused upload is not read to its end first and no
        # further request is served on that connection (RFC 9112 9.6).
        if any(
            k.lower() == b"connection" and v.strip().lower() == b"close" for k, v in self.outheaders
        ):
            self.close_connection = True
        super().send_headers()


class _Gateway(wsgi.Gateway_10):
    """WSGI 1.0, plus `davserver.body_deadline` in the environ: a context manager the app
    wraps around reading a small body, which `ElasticServer` bounds like headers."""

    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]
        req = self.req
        if isinstance(req.rfile, server.ChunkedRFile):
            req.rfile.rfile = _ChunkSizeLines(req.rfile.rfile)
        environ: dict[str, Any] = super().get_environ()  # type: ignore[no-untyped-call]
        environ[BODY_DEADLINE] = functools.partial(req.server.body_deadline, req.conn)
        return environ


class _Connection(server.HTTPConnection):
    RequestHandlerClass = _Request
    server: ElasticServer
    # Whether the connection has waited in the selector for its first byte (`process_conn`).
    awaited = False

    def communicate(self) -> bool:
        if isinstance(self.socket, ssl.SSLSocket) and not self.ssl_env and not self._handshake():
            return False
        return bool(super().communicate())  # type: ignore[no-untyped-call]

    def _handshake(self) -> bool:
        """The TLS handshake `DeferredTLSAdapter` left; the deadline it starts runs on
        through the first request's headers."""
        srv = self.server
        sock = self.socket
        srv.watch(self)
        try:
            sock.do_handshake()
        except OSError as exc:  # ssl.SSLError, a timeout, a reset
            srv.unwatch(self)
            if "http request" in str(exc).lower():
                # Plain HTTP on the HTTPS port: say so, in plain HTTP, as cheroot does.
                with contextlib.suppress(OSError):
                    socket.socket.sendall(sock, PLAIN_HTTP_REFUSAL)
            log.debug("TLS handshake with %s failed: %s", self.remote_addr, exc)
            return False
        self.ssl_env = srv.ssl_adapter.get_environ(sock)
        return True


_PLAIN_HTTP_MESSAGE = b"This server speaks HTTPS only on this port."
PLAIN_HTTP_REFUSAL = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_PLAIN_HTTP_MESSAGE), _PLAIN_HTTP_MESSAGE)
)


class ElasticServer(wsgi.Server):
    """`cheroot.wsgi.Server` whose pool grows when every worker is busy, which cuts off
    clients too slow with their handshake, headers or small body, and which closes
    connections the application asks to close."""

    ConnectionClass = _Connection

    # How often idle connections are checked, and so how long stop() may wait (cheroot: 0.5).
    expiration_interval = 0.1

    def __init__(self, *args: Any, header_timeout: float = 30.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gateway = _Gateway
        self.header_timeout = header_timeout
        self._wanted = threading.Event()
        self._stopped = threading.Event()
        self._supervisor: threading.Thread | None = None
        # Connections whose handshake, headers or small body are being read: when each must
        # be done, and those cut off for missing it.
        self._reading: dict[server.HTTPConnection, float] = {}
        self._cut: set[server.HTTPConnection] = set()
        self._reading_lock = threading.Lock()

    def watch(self, conn: server.HTTPConnection, extra: float = 0.0) -> None:
        """Give what `conn` is sending `header_timeout` (plus `extra`) seconds from now, or
        keep the deadline already running (a handshake's runs on through the headers)."""
        with self._reading_lock:
            self._reading.setdefault(conn, time.monotonic() + self.header_timeout + extra)

    def unwatch(self, conn: server.HTTPConnection) -> None:
        with self._reading_lock:
            self._reading.pop(conn, None)
            self._cut.discard(conn)

    @contextlib.contextmanager
    def body_deadline(self, conn: server.HTTPConnection, size: int) -> Iterator[None]:
        """Bound the reading of a small body of `size` bytes as headers are bound, plus a
        second per 32 KiB. A client that trickles a PROPFIND body would otherwise hold a
        worker for as long as it goes on."""
        self.watch(conn, size / 32768)
        try:
            yield
        finally:
            self.unwatch(conn)

    def cut_off(self, conn: server.HTTPConnection) -> bool:
        """Whether `conn` was shut down for missing its deadline."""
        with self._reading_lock:
            return conn in self._cut

    def _cut_off_overdue(self, now: float | None = None) -> list[server.HTTPConnection]:
        """Shut down connections whose deadline has passed at `now` (default: the present):
        the worker reading them sees the end of the stream, answers nothing and is free."""
        now = time.monotonic() if now is None else now
        with self._reading_lock:
            overdue = [conn for conn, deadline in self._reading.items() if deadline <= now]
            for conn in overdue:
                del self._reading[conn]
                self._cut.add(conn)
                # socket.socket's own shutdown: for a TLS socket, the TLS layer's would
                # tear down state the worker is still reading with.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(conn.socket, socket.SHUT_RDWR)
        return overdue

    def prepare(self) -> None:
        super().prepare()
        self._stopped.clear()
        self._supervisor = threading.Thread(target=self._supervise, name="supervise", daemon=True)
        self._supervisor.start()

    def process_conn(self, conn: Any) -> None:
        if not conn.awaited:
            # A new connection waits for its first byte in cheroot's selector, as a kept-alive
            # one does, rather than on a worker thread: a thousand silent connections hold no
            # thread. One that stays silent is closed `header_timeout` after it was accepted
            # (the selector closes connections idle for `timeout` since `last_used`).
            conn.awaited = True
            self._connections.put(conn)  # type: ignore[attr-defined]
            conn.last_used -= max(0.0, self.timeout - self.header_timeout)
            return
        super().process_conn(conn)
        # Called by the connection manager's thread: only signal here, since growing the pool
        # waits for new threads to start.
        if self._starved():
            self._wanted.set()

    def _starved(self) -> bool:
        """Connections wait in the queue and no worker is free to take them."""
        pool = self.requests
        return bool(pool.qsize > 0 and pool.idle == 0 and len(pool._threads) < pool.max)

    def _supervise(self) -> None:
        """Every 0.1 s, and when process_conn finds no idle worker: cut off overdue clients,
        and grow the pool while connections wait for a worker (one that looked idle when a
        connection arrived may have taken an earlier one from the queue instead)."""
        while not self._stopped.is_set():
            self._wanted.wait(0.1)
            self._wanted.clear()
            for conn in self._cut_off_overdue():
                log.info(
                    "closed %s: headers not complete after %g s (or a small body too slow)",
                    conn.remote_addr,
                    self.header_timeout,
                )
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
        # A thread the supervisor adds while cheroot stops would get no shutdown request, and
        # cheroot would wait for it forever.
        if self._supervisor is not None:
            self._supervisor.join()
        # Connections still in their handshake or headers carry no request yet: end them
        # rather than wait for their clients.
        self._cut_off_overdue(math.inf)
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
