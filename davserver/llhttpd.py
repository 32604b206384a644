"""The httptools engine: an HTTP/1.1 server whose connections wait in epoll and whose messages
are parsed by llhttp (C, through httptools), with the WSGI app run on the thread that found
the request.

Why: under cheroot, a 4 KiB GET spent most of its time in cheroot's own Python (reading the
request line and headers, building the answer's head, handing each connection from a selector
thread to a worker through a queue), and the app itself little (bench/RESULTS.md, "Engines").
cheroot also gives each new connection a worker thread until its headers are read, so a
thousand slow clients stop everyone else.

The shape (leader and followers): the pool threads share one epoll, each connection registered
with EPOLLONESHOT, so an event goes to one thread and the connection is that thread's until it
re-arms or closes it. One thread at a time, the leader, waits in it (see `_work`); an acceptor
thread hands it new connections. The thread reads what has arrived without blocking and
feeds it to the parser. A request whose head is incomplete goes back to epoll, holding no
thread however slowly it comes; a thread on which the sweeper finds its deadline passed
(`header_timeout` from its first byte, or from the accept for a new connection, through the
TLS handshake) shuts it down. A request whose head is complete is served by the same thread at
once, with no hand-over between threads: the app reads the body as it asks for it (one read
from the socket at a time, so a 1 GiB upload takes no more memory than a small one) and the
answer is written, then the connection is re-armed. When a thread begins a request and none
would be left waiting in epoll, another is started, up to `max_threads`.

Framing (RFC 9112 6.3): llhttp refuses a doubled or malformed Content-Length, one beside
Transfer-Encoding, a malformed chunk size or chunk end, a bare LF and obs-fold (which RFC 9112
5.2 lets a server refuse): 400, and the connection closed. A body that ends early (the client
closed, reset or fell silent past `request_timeout`) raises OSError in `wsgi.input.read`, and a
malformed chunk met while the app reads raises ValueError, so the app discards the upload. The
request target reaches the app as sent, #fragment included, in REQUEST_URI.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from email.utils import formatdate
from typing import IO, Any
from urllib.parse import unquote_to_bytes, urlsplit

import httptools

from .httpd import PLAIN_HTTP_REFUSAL
from .request import BODY_DEADLINE, environ_key

log = logging.getLogger("davserver.httpd")

# The request head (line and headers) may take this many bytes, give or take one read.
MAX_HEAD = 64 * 1024
# The most read from a socket at once: an upload arrives in pieces of at most this size.
READ_SIZE = 256 * 1024
# A file answer at most this large is read and sent with the head in one write; a larger one
# goes from the file to the socket in the kernel (sendfile).
SMALL_FILE = 64 * 1024
# How often the sweeper looks for connections past their deadline.
SWEEP_INTERVAL = 0.1
# The longest a thread serving a request keeps the lead (see LlhttpServer._work), and how
# often the watchdog looks meanwhile; while nothing is being served it looks less often.
LEAD_HOLD = 0.002
LEAD_IDLE_CHECK = 0.05
# The most ready connections one poll takes (see LlhttpServer._work).
READY_BATCH = 64
# How long stop() lets requests in progress finish before cutting their connections.
STOP_GRACE = 5.0

_READ = select.EPOLLIN | select.EPOLLONESHOT
_WRITE = select.EPOLLOUT | select.EPOLLONESHOT
_NO_BODY_STATUS = ("1", "204", "304")
# RFC 9110 5.6.2: a method is a token.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

# What a connection is doing, which decides its deadline.
_HANDSHAKE = 0  # TLS handshake, then the first request's head: header_timeout from the accept
_IDLE = 1  # between requests: request_timeout (a new plain one: header_timeout from the accept)
_HEAD = 2  # a request's head is arriving: header_timeout from its first byte
_BUSY = 3  # a thread serves a request: the socket's own timeouts apply


# An app's way past WSGI for the requests it can answer from the head alone: given the
# method, the target, the headers (as environ keys) and the client's address, a status,
# headers and an open file to send whole; or None, and the request goes to the WSGI app.
Shortcut = Callable[
    [str, str, Mapping[str, str], str], "tuple[str, list[tuple[str, str]], Any] | None"
]


class _Message:
    """One request as the parser fills it in."""

    __slots__ = (
        "body",
        "chunked",
        "complete",
        "drained",
        "expect_continue",
        "fields",
        "head_done",
        "keep_alive",
        "method",
        "url",
        "version",
    )

    def __init__(self) -> None:
        self.url = b""
        # The headers as WSGI environ entries (HTTP_ACCEPT, CONTENT_LENGTH...).
        self.fields: dict[str, str] = {}
        self.method = ""
        self.version = "1.1"
        self.keep_alive = False
        self.head_done = False
        self.complete = False
        self.chunked = False
        # The app read the body to its end (for a chunked one: until read gave b"").
        self.drained = False
        self.expect_continue = False
        self.body: deque[bytes] = deque()


class _Connection:
    """A client connection, its parser and the requests parsed from it; also the parser's
    callbacks. Used by one thread at a time (the one epoll gave it to)."""

    def __init__(self, server: LlhttpServer, sock: socket.socket, addr: Any) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.parser = httptools.HttpRequestParser(self)
        self.messages: deque[_Message] = deque()
        self.parsing: _Message | None = None
        self.begun = 0  # messages begun so far
        # A framing error met after the queued messages; nothing after it is parsed.
        self.error: str | None = None
        # The parser stopped at a request asking to switch protocols: nothing after it is read.
        self.upgraded = False
        # The start of a request whose method llhttp does not know, until its first space.
        self.unknown_start: bytes | None = None
        self.method_override: str | None = None
        self.head_bytes = 0
        self.state = _HANDSHAKE if self.tls else _IDLE
        self.deadline = time.monotonic() + server.header_timeout
        self.waiting = False  # in epoll, nobody's
        # Shut down by cut(): a request read from it afterwards (recv still returns what had
        # arrived) is not served, since no answer can reach the client.
        self.cut_off = False
        self.reading_body = False  # a thread waits for the body the app reads
        self.body_deadline: float | None = None

    # -- parser callbacks (httptools) -----------------------------------------------------------

    def on_message_begin(self) -> None:
        self.parsing = _Message()
        self.messages.append(self.parsing)
        self.begun += 1

    def on_url(self, url: bytes) -> None:
        assert self.parsing is not None
        self.parsing.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        message = self.parsing
        assert message is not None
        key = _ENVIRON_KEYS.get(name)
        if key is None:
            key = _environ_key(name)
        if not key:
            return  # a name with "_" (see _environ_key)
        text = value.decode("latin-1")
        fields = message.fields
        if key in fields:
            if key == "HTTP_HOST":
                # RFC 9112 3.2: a server MUST answer 400; which one named the server?
                raise ValueError("more than one Host header")
            # Repeated headers are one list (RFC 9110 5.3); cookies join with "; ".
            text = fields[key] + ("; " if key == "HTTP_COOKIE" else ", ") + text
        elif key == "HTTP_TRANSFER_ENCODING":
            message.chunked = True  # llhttp refuses any other final coding
        fields[key] = text
        if key == "HTTP_EXPECT" and text.lower() == "100-continue":
            message.expect_continue = True

    def on_headers_complete(self) -> None:
        message = self.parsing
        assert message is not None
        parser = self.parser
        message.method = self.method_override or parser.get_method().decode("ascii")
        self.method_override = None
        message.version = parser.get_http_version()
        message.keep_alive = parser.should_keep_alive()
        message.head_done = True
        self.head_bytes = 0
        # An HTTP/1.0 client does not wait for 100 Continue (RFC 9110 10.1.1).
        message.expect_continue = message.expect_continue and message.version == "1.1"
        message.drained = not message.chunked
        if parser.should_upgrade() and (
            message.chunked or message.fields.get("CONTENT_LENGTH", "0") != "0"
        ):
            # httptools then skips the body and stops parsing: refuse rather than serve a
            # request whose body would go unread.
            raise ValueError("a request with a body may not ask to switch protocols")

    def on_body(self, body: bytes) -> None:
        assert self.parsing is not None
        self.parsing.body.append(body)

    def on_message_complete(self) -> None:
        assert self.parsing is not None
        self.parsing.complete = True

    # -- parsing --------------------------------------------------------------------------------

    def feed(self, data: bytes | memoryview) -> None:
        """Parse what arrived. A framing error is kept in `error` and answered once the
        requests parsed before it are; a request with an unknown method is parsed as a GET
        and given its method back (see `_unknown_method`)."""
        if self.error is not None or self.upgraded:
            return
        if self.unknown_start is not None:
            data = self.unknown_start + bytes(data)
            self.unknown_start = None
        between = self.parsing is None or self.parsing.complete
        begun = self.begun
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.upgraded = True
        except httptools.HttpParserInvalidMethodError as exc:
            # The unknown method's message began in this data; if at its start (not behind
            # another request in the same read), its head can still be parsed.
            if between and self.begun == begun + 1:
                self._unknown_method(bytes(data).lstrip(b"\r\n"))
            else:
                self._failed(str(exc))
        except (httptools.HttpParserError, ValueError) as exc:
            self._failed(str(exc) or type(exc).__name__)

    def _failed(self, reason: str) -> None:
        if self.parsing is not None and not self.parsing.head_done:
            self.messages.pop()  # never served: its head was not whole
        self.parsing = None
        self.error = reason

    def _unknown_method(self, start: bytes) -> None:
        """llhttp knows a fixed list of methods and refuses any other; the app answers those
        itself (405 with Allow, RFC 9110 15.5.6). So the head is parsed by a fresh parser as
        a GET's (the method does not change how a request is framed) and the method is put
        back into the message."""
        self.messages.pop()
        self.parsing = None
        self.parser = httptools.HttpRequestParser(self)
        method, space, rest = start.partition(b" ")
        if not _TOKEN.fullmatch(method) or len(method) > 64:
            self.error = "invalid method"
        elif not space:
            self.unknown_start = start  # the rest of the method is on its way
        else:
            self.method_override = method.decode("ascii")
            self.feed(b"GET " + rest)

    def head_incomplete(self) -> bool:
        """A request's head has begun and is not whole."""
        if self.unknown_start is not None:
            return True
        return bool(self.messages) and not self.messages[-1].head_done

    # -- socket ---------------------------------------------------------------------------------

    def recv_nowait(self, buf: bytearray, size: int) -> int | None:
        """Bytes read into `buf` (0: the client closed), or None when nothing is there."""
        try:
            return self.sock.recv_into(buf, size)
        except _WOULD_BLOCK:
            return None

    def recv_body(self, buf: bytearray) -> int:
        """Read what arrives next, for the body the app is reading; waits for it up to
        `request_timeout` of silence (or what is left of the small-body deadline)."""
        server = self.server
        self.reading_body = True
        try:
            while True:
                if server.stopping:
                    # Its upload is discarded, not committed (the app sees the body end early).
                    raise ConnectionAbortedError("the server is stopping")
                try:
                    return self.sock.recv_into(buf, READ_SIZE)
                except _WOULD_BLOCK as exc:
                    timeout = server.request_timeout
                    if self.body_deadline is not None:
                        timeout = min(timeout, self.body_deadline - time.monotonic())
                    server.hand_over()
                    if timeout <= 0 or not _wait(self.sock, exc, False, timeout):
                        raise TimeoutError("timed out") from None
        finally:
            self.reading_body = False

    def send_all(self, data: bytes | memoryview) -> None:
        """Send everything; waits for the client up to `request_timeout` at a time."""
        view = memoryview(data)
        sock = self.sock
        while view:
            try:
                sent = sock.send(view)
            except _WOULD_BLOCK as exc:
                self.server.hand_over()
                if not _wait(sock, exc, True, self.server.request_timeout):
                    raise TimeoutError("timed out") from None
                continue
            view = view[sent:]

    def send_file(self, file: IO[bytes], count: int) -> int:
        """Send `count` bytes of `file` from its position with sendfile; the bytes sent (fewer
        when the file got shorter)."""
        out = self.sock.fileno()
        fd = file.fileno()
        offset = file.tell()
        sent = 0
        while sent < count:
            try:
                done = os.sendfile(out, fd, offset + sent, count - sent)
            except _WOULD_BLOCK as exc:
                self.server.hand_over()
                if not _wait(self.sock, exc, True, self.server.request_timeout):
                    raise TimeoutError("timed out") from None
                continue
            if done == 0:
                break
            sent += done
        return sent

    def cut(self) -> None:
        """Shut the connection down (from another thread): the thread that has it, or the next
        one epoll gives it to, sees it end and closes it."""
        self.cut_off = True
        # socket.socket's own shutdown: the TLS layer's would tear down state a thread may be
        # using.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    @contextlib.contextmanager
    def small_body(self, size: int) -> Iterator[None]:
        """`davserver.body_deadline`: a small body the app reads whole gets `header_timeout`
        plus a second per 32 KiB, however it trickles (as the head does)."""
        self.body_deadline = time.monotonic() + self.server.header_timeout + size / 32768
        try:
            yield
        finally:
            self.body_deadline = None


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Threads started inside do not take SIGINT and SIGTERM (a thread inherits its creator's
    signal mask), so the kernel delivers them to the main thread, the only one that runs
    Python's handlers. davserver's own processes wait for a stop on the interpreter's wakeup
    descriptor (server.StopSignals), which any thread's signal wakes; a program that embeds
    the server and waits on an Event in its main thread would sleep on through a signal
    delivered to a server thread."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _wait(sock: socket.socket, blocked: BaseException, writing: bool, timeout: float) -> bool:
    """Wait until `sock` can go on after `blocked`; False after `timeout` seconds. TLS may
    need to read to write, or to write to read."""
    if isinstance(blocked, ssl.SSLWantWriteError):
        writing = True
    elif isinstance(blocked, ssl.SSLWantReadError):
        writing = False
    poller = select.poll()
    poller.register(sock, select.POLLOUT if writing else select.POLLIN)
    return bool(poller.poll(max(timeout, 0.0) * 1000))


# Header names as environ keys, for the names seen so far. Clients choose them, so both how
# many and how long are bounded (a name may be nearly MAX_HEAD long): at most ~64 KiB in all.
_ENVIRON_KEYS: dict[bytes, str] = {}
_ENVIRON_KEYS_KEPT = 512
_ENVIRON_KEY_LONGEST = 64


def _environ_key(name: bytes) -> str:
    """The WSGI environ key of a header name (PEP 3333: CGI's HTTP_ variables), or "" for a
    name with "_", which is dropped as nginx and Apache drop it: `X_Forwarded_For` would be
    the same key as `X-Forwarded-For`, so a client could add to or (on cheroot) replace what a
    trusted proxy says, where the proxy strips or overwrites only the dashed name."""
    key = "" if b"_" in name else environ_key(name.decode("latin-1"))
    if len(_ENVIRON_KEYS) < _ENVIRON_KEYS_KEPT and len(name) <= _ENVIRON_KEY_LONGEST:
        _ENVIRON_KEYS[name] = key
    return key


class _Input:
    """`wsgi.input`: the request body as the app reads it, read from the socket only when the
    app asks for more than has arrived. Raises OSError when the body ends early (the client
    closed or reset the connection, or fell silent) and ValueError on malformed chunks."""

    def __init__(self, conn: _Connection, message: _Message, buf: bytearray) -> None:
        self.conn = conn
        self.message = message
        self.buf = buf

    def _fill(self) -> bool:
        """Wait for more of the body; False once it is complete."""
        message = self.message
        conn = self.conn
        while not message.body:
            if message.complete:
                message.drained = True
                return False
            if conn.error is not None:
                raise ValueError(conn.error)
            if message.expect_continue:
                message.expect_continue = False
                conn.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            size = conn.recv_body(self.buf)
            if size == 0:
                raise ConnectionAbortedError("the client closed the connection mid-body")
            conn.feed(memoryview(self.buf)[:size])
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(READ_SIZE), b""))
        if size == 0 or not self._fill():
            return b""
        body = self.message.body
        pieces = []
        wanted = size
        while body and wanted > 0:
            piece = body.popleft()
            if len(piece) > wanted:
                body.appendleft(piece[wanted:])
                piece = piece[:wanted]
            pieces.append(piece)
            wanted -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readline(self, size: int | None = -1) -> bytes:
        line = b""
        limit = sys.maxsize if size is None or size < 0 else size
        while len(line) < limit and not line.endswith(b"\n") and self._fill():
            body = self.message.body
            piece = body.popleft()
            end = piece.find(b"\n") + 1 or len(piece)
            end = min(end, limit - len(line))
            if end < len(piece):
                body.appendleft(piece[end:])
            line += piece[:end]
        return line

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class FileWrapper:
    """`wsgi.file_wrapper`: a file the engine sends itself (sendfile) where it can."""

    def __init__(self, filelike: IO[bytes], blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.filelike.read(self.blksize), b"")

    def close(self) -> None:
        self.filelike.close()


class _DateCache:
    """The Date header (RFC 9110 6.6.1), formatted once a second."""

    def __init__(self) -> None:
        self.second = 0
        self.value = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self.second:
            self.value = formatdate(now, usegmt=True)
            self.second = now
        return self.value


_date = _DateCache()


class _Answer:
    """One request's response: start_response, then the body framed and written."""

    def __init__(self, conn: _Connection, message: _Message) -> None:
        self.conn = conn
        self.message = message
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.head_sent = False
        self.keep_alive = False
        self.length: int | None = None  # Content-Length, when the app gave one
        self.chunked = False
        self.bodiless = False
        self.sent = 0

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called twice without exc_info")
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """WSGI's write callable, and every body chunk."""
        if not self.head_sent:
            self.conn.send_all(self._head() + self._framed(data))
        elif data:
            self.conn.send_all(self._framed(data))

    def _framed(self, data: bytes) -> bytes:
        if self.bodiless or not data:
            return b""
        if self.length is not None:
            room = self.length - self.sent
            if len(data) > room:
                log.error("the app sent more than its Content-Length: cut to %d bytes", room)
                data = data[:room]
                self.keep_alive = False
        self.sent += len(data)
        if self.chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return data

    def _head(self) -> bytes:
        if self.status is None:
            raise AssertionError("the app sent a body before start_response")
        message = self.message
        conn = self.conn
        lines = [f"HTTP/1.1 {self.status}\r\n"]
        close = False
        dated = False
        for name, value in self.headers:
            lines.append(f"{name}: {value}\r\n")
            lowered = name.lower()
            if lowered == "content-length":
                self.length = int(value)
            elif lowered == "connection":
                close = close or "close" in value.lower()
            elif lowered == "date":
                dated = True
        if not dated:
            lines.append(f"Date: {_date()}\r\n")
        lines.append("Server: davserver\r\n")
        self.bodiless = message.method == "HEAD" or self.status.startswith(_NO_BODY_STATUS)
        if not self.bodiless and self.length is None:
            if message.version == "1.1":
                self.chunked = True
                lines.append("Transfer-Encoding: chunked\r\n")
            else:
                close = True  # the end of the connection ends the body
        # A body the app did not read whole may still be on its way, and where the next
        # request begins is then unknown: the connection ends with this answer (RFC 9112 9.6).
        self.keep_alive = (
            message.keep_alive
            and not close
            and message.complete
            and message.drained
            and not message.body
            and not conn.server.stopping
            and not conn.upgraded
        )
        if not self.keep_alive and not close:
            lines.append("Connection: close\r\n")
        elif self.keep_alive and message.version == "1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        self.head_sent = True
        return "".join(lines).encode("latin-1")

    def send(self, result: Iterable[bytes]) -> bool:
        """Send the app's answer; whether the connection may serve another request."""
        conn = self.conn
        if isinstance(result, FileWrapper) and not conn.tls and _has_descriptor(result.filelike):
            head = self._head()
            if not self.bodiless and self.length is not None:
                self._send_file(head, result.filelike, self.length)
                return self._done()
            conn.send_all(head)
        for chunk in result:
            if chunk:
                self.write(chunk)
        if not self.head_sent:
            conn.send_all(self._head())
        if self.chunked:
            conn.send_all(b"0\r\n\r\n")
        return self._done()

    def _send_file(self, head: bytes, file: IO[bytes], length: int) -> None:
        if length <= SMALL_FILE:
            data = file.read(length)
            self.sent = len(data)
            self.conn.send_all(head + data)
        else:
            self.conn.send_all(head)
            self.sent = self.conn.send_file(file, length)

    def _done(self) -> bool:
        if self.length is not None and not self.bodiless and self.sent != self.length:
            # The file changed size meanwhile: the client must not wait for the rest.
            log.error("sent %d bytes of a Content-Length of %d", self.sent, self.length)
            return False
        return self.keep_alive


def _has_descriptor(file: IO[bytes]) -> bool:
    """Whether `file` is a file of the system's (sendfile can send it), not a stream such
    as an S3 object's."""
    try:
        file.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on `host`, `port` (0: a free port), for one LlhttpServer or shared by
    several processes."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=1024)


class LlhttpServer:
    """The engine's server: `prepare()` binds, `serve()` blocks until `stop()`; the same
    interface as the cheroot server (davserver.httpd) for `DavServer`."""

    def __init__(
        self,
        bind_addr: tuple[str, int],
        app: Callable[..., Iterable[bytes]],
        *,
        threads: int,
        max_threads: int,
        request_timeout: float,
        header_timeout: float,
        tls: ssl.SSLContext | None = None,
        listener: socket.socket | None = None,
        shortcut: Shortcut | None = None,
    ) -> None:
        self.bind_addr: tuple[str, int] = bind_addr
        self.app = app
        self.shortcut = shortcut
        self.threads = threads
        self.max_threads = max(max_threads, threads)
        self.request_timeout = request_timeout
        self.header_timeout = header_timeout
        self.tls = tls
        # A listening socket other processes accept on too (davserver.prefork), or None to
        # bind one of its own in prepare().
        self.shared = listener
        self.stopping = False
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        # Set once the acceptor is about to wait in accept(): from then on it has its turn.
        self._accepting = threading.Event()
        self._epoll: select.epoll | None = None
        self._wake_r = self._wake_w = -1
        self._conns: dict[int, _Connection] = {}
        self._workers: list[threading.Thread] = []
        self._serving = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        # The lead (see _work): held by the one thread that may wait in epoll.
        self._lead = threading.Lock()
        self._lead_state = threading.Lock()  # guards handing the lead over
        self._leader = 0  # the thread ident holding the lead, 0 while between threads
        self._led_since: float | None = None  # when the leader began serving what it serves
        self._served = 0  # events served so far: the watchdog looks often while it grows
        # Connections epoll found ready, not yet served: only the leader takes from it.
        self._ready: deque[int] = deque()
        self._environ: dict[str, Any] = {}

    # -- life -----------------------------------------------------------------------------------

    def prepare(self) -> None:
        host, port = self.bind_addr
        listener = self.shared or listen(host, port)
        # The acceptor waits in accept() itself (see _accept_loop).
        listener.setblocking(True)
        self._listener = listener
        self.bind_addr = listener.getsockname()[:2]
        self._epoll = select.epoll()
        self._ready.clear()
        self._wake_r, self._wake_w = os.pipe()
        # Level-triggered and never re-armed: once written, it wakes every thread to stop.
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._environ = {
            "SCRIPT_NAME": "",
            "SERVER_NAME": host,
            "SERVER_PORT": str(self.bind_addr[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if self.tls else "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.shared is not None,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
        }
        if self.tls:
            self._environ["HTTPS"] = "on"
        self.stopping = False
        self._stopped.clear()
        self._accepting.clear()
        for _ in range(self.threads):
            self._spawn()
        self._sweeper = threading.Thread(target=self._sweep, name="deadlines", daemon=True)
        self._acceptor = threading.Thread(target=self._accept_loop, name="accept", daemon=True)
        self._watchdog = threading.Thread(target=self._watch_lead, name="lead", daemon=True)
        with stop_signals_blocked():
            self._sweeper.start()
            self._acceptor.start()
            self._watchdog.start()
        # Until it waits there, the other workers would take every new connection.
        self._accepting.wait()

    def serve(self) -> None:
        """Block until stop()."""
        self._stopped.wait()

    def stop(self) -> None:
        """Stop taking connections, cut uploads in flight (the app discards them), let the
        requests being answered finish for up to STOP_GRACE seconds, then end everything."""
        if self._epoll is None or self.stopping:
            return
        self.stopping = True
        if self.shared is None and self._listener is not None:
            # Wakes the acceptor from accept() (Linux). A shared socket is left alone: the
            # other processes go on accepting on it, and this one's acceptor, a daemon thread,
            # ends with the process (one connection it may take meanwhile is closed).
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            if self._acceptor is not None:
                self._acceptor.join()
        for conn in list(self._conns.values()):
            if conn.reading_body or conn.waiting:
                conn.cut()
        os.write(self._wake_w, b"x")
        deadline = time.monotonic() + STOP_GRACE
        for worker in list(self._workers):
            worker.join(max(0.0, deadline - time.monotonic()))
        if any(worker.is_alive() for worker in self._workers):
            for conn in list(self._conns.values()):
                conn.cut()
            for worker in list(self._workers):
                worker.join(self.request_timeout)
        self._stopped.set()
        if self._sweeper is not None:
            self._sweeper.join()
        if self._watchdog is not None:
            self._watchdog.join()
        for conn in list(self._conns.values()):
            self._close(conn)
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._epoll = None
        self._workers.clear()

    def _spawn(self) -> None:
        buf = bytearray(READ_SIZE)
        worker = threading.Thread(target=self._work, args=(buf,), name="http", daemon=True)
        with self._lock:
            self._workers.append(worker)
        with stop_signals_blocked():
            worker.start()

    def _work(self, buf: bytearray) -> None:
        """A pool thread: take the lead, wait in epoll, serve what it hands over, until stop().

        Only the leader waits in epoll, and it keeps the lead while it serves: a request that
        arrives meanwhile waits in epoll until the leader polls again, where with every idle
        thread waiting in epoll it woke one that could only wait for the GIL (three context
        switches per small GET, a fifth of its CPU). A leader about to wait for its client
        hands the lead over first, and the watchdog takes it from one serving longer than
        LEAD_HOLD (a slow disk, a lock, a large PROPFIND), so another thread then polls.

        One poll takes up to READY_BATCH ready connections into `_ready`, which the leader
        serves one by one before it polls again (one epoll_wait for many requests under load);
        whoever leads next goes on with what is left there."""
        epoll = self._epoll
        if epoll is None:
            return  # started as stop() began
        conns = self._conns
        ready = self._ready
        me = threading.get_ident()
        while not self.stopping:
            self._lead.acquire()
            with self._lead_state:
                self._leader = me
            try:
                while self._leader == me:
                    if not ready:
                        try:
                            events = epoll.poll(-1, READY_BATCH)
                        except OSError:
                            return  # closed by stop()
                        if self.stopping:
                            return
                        ready.extend([fd for fd, _mask in events])
                        continue
                    conn = conns.get(ready.popleft())
                    if conn is not None:
                        self._served += 1
                        self._led_since = time.monotonic()
                        self._readable(conn, buf)
                        with self._lead_state:
                            if self._leader == me:
                                self._led_since = None
            finally:
                self.hand_over()

    def hand_over(self) -> None:
        """Give up the lead if this thread holds it: it is about to wait, or to stop."""
        with self._lead_state:
            if self._leader == threading.get_ident():
                self._release_lead()

    def _release_lead(self) -> None:
        self._leader = 0
        self._led_since = None
        self._lead.release()

    def _watch_lead(self) -> None:
        """Take the lead from a thread serving one request for longer than LEAD_HOLD."""
        served = self._served
        interval = LEAD_IDLE_CHECK
        while not self._stopped.wait(interval):
            since = self._led_since
            if since is not None and time.monotonic() - since >= LEAD_HOLD:
                with self._lead_state:
                    if self._leader and self._led_since == since:
                        self._release_lead()
            interval = LEAD_HOLD if self._served != served else LEAD_IDLE_CHECK
            served = self._served

    def _sweep(self) -> None:
        """Shut down connections waiting past their deadline: a head or TLS handshake too
        slow, or a kept-alive connection idle too long."""
        while not self._stopped.wait(SWEEP_INTERVAL):
            now = time.monotonic()
            for conn in list(self._conns.values()):
                if conn.waiting and conn.deadline <= now:
                    conn.waiting = False
                    if conn.state in (_HEAD, _HANDSHAKE):
                        log.info(
                            "closed %s: headers not complete after %g s",
                            conn.addr,
                            self.header_timeout,
                        )
                    conn.cut()

    # -- connections ----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        """The acceptor thread: take each new connection and hand it to epoll.

        It waits in a blocking accept() because the kernel wakes the processes waiting there
        in turn, first come first served: worker processes sharing the listening socket
        (davserver.prefork) take new connections one after the other. SO_REUSEPORT instead
        hashed each connection to a worker, so two clients landed on one worker (one GIL) half
        the time; and waiting in epoll, even with EPOLLEXCLUSIVE, wakes the first process
        registered that has a thread waiting, which with a pool of threads per process is
        nearly always the same one."""
        listener = self._listener
        assert listener is not None
        self._accepting.set()
        while not self.stopping:
            try:
                sock, addr = listener.accept()
            except OSError as exc:
                if self.stopping:
                    return
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: what is queued waits until connections close.
                    log.warning("cannot accept connections: %s", exc)
                    time.sleep(SWEEP_INTERVAL)
                continue  # otherwise: this one was reset before it was accepted
            if self.stopping:
                sock.close()
                return
            self._admit(sock, addr)

    def _admit(self, sock: socket.socket, addr: Any) -> None:
        """Hand a new connection to epoll, where it waits for its first bytes."""
        epoll = self._epoll
        if epoll is None:  # stopped meanwhile
            sock.close()
            return
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        conn = _Connection(self, sock, addr)
        self._conns[conn.fd] = conn
        conn.waiting = True
        try:
            epoll.register(conn.fd, _READ)
        except (OSError, ValueError):  # closed by stop() meanwhile
            self._close(conn)

    def _readable(self, conn: _Connection, buf: bytearray) -> None:
        """`conn` is this thread's until it is re-armed or closed."""
        conn.waiting = False
        try:
            if conn.state == _HANDSHAKE:
                blocked = self._handshake(conn)
                if blocked is not None:
                    if blocked is not False:
                        self._rearm(conn, blocked)
                    return
            while True:
                size = conn.recv_nowait(buf, MAX_HEAD)
                if size is None:
                    break
                if size == 0:
                    self._close(conn)
                    return
                if conn.state == _IDLE:
                    conn.state = _HEAD
                    conn.deadline = time.monotonic() + self.header_timeout
                conn.head_bytes += size
                conn.feed(memoryview(buf)[:size])
                if not self._serve_ready(conn, buf):
                    return
                # TLS may hold decrypted bytes that epoll knows nothing of.
                if not (conn.tls and conn.sock.pending()):  # type: ignore[attr-defined]
                    break
            self._rearm(conn, _READ)
        except Exception as exc:
            if isinstance(exc, OSError):
                log.debug("connection from %s ended: %s", conn.addr, exc)
            else:
                log.exception("serving %s failed", conn.addr)
            self._close(conn)

    def _handshake(self, conn: _Connection) -> int | bool | None:
        """Go on with the TLS handshake: None once done; the epoll event to wait for; False
        when it failed (the connection closed)."""
        sock = conn.sock
        try:
            sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            return _READ
        except ssl.SSLWantWriteError:
            return _WRITE
        except OSError as exc:  # ssl.SSLError, a reset
            if "http request" in str(exc).lower():
                # Plain HTTP on the HTTPS port: say so, in plain HTTP.
                with contextlib.suppress(OSError):
                    socket.socket.sendall(sock, PLAIN_HTTP_REFUSAL)
            log.debug("TLS handshake with %s failed: %s", conn.addr, exc)
            self._close(conn)
            return False
        # The handshake's deadline runs on through the first request's head.
        conn.state = _HEAD
        return None

    def _serve_ready(self, conn: _Connection, buf: bytearray) -> bool:
        """Serve each request whose head is whole; then False if the connection is done
        (closed here), True to wait for more."""
        messages = conn.messages
        while messages and messages[0].head_done:
            if self.stopping or conn.cut_off or not self._respond(conn, messages[0], buf):
                self._close(conn)
                return False
            messages.popleft()
        if conn.error is not None:
            self._refuse(conn, "400 Bad Request", conn.error)
            return False
        if conn.upgraded:
            self._close(conn)
            return False
        if conn.head_incomplete():
            if conn.head_bytes > MAX_HEAD:
                self._refuse(conn, "431 Request Header Fields Too Large", "headers too large")
                return False
            if conn.state in (_IDLE, _BUSY):
                conn.state = _HEAD
                conn.deadline = time.monotonic() + self.header_timeout
        else:
            conn.state = _IDLE
            conn.head_bytes = 0
            conn.deadline = time.monotonic() + self.request_timeout
        return True

    def _respond(self, conn: _Connection, message: _Message, buf: bytearray) -> bool:
        """Run the app for `message` on this thread; whether the connection may go on."""
        conn.state = _BUSY
        with self._lock:
            self._serving += 1
            # Keep a thread waiting in epoll for everyone else while this one serves.
            grow = len(self._workers) <= self._serving < self.max_threads
        if grow and not self.stopping:
            self._spawn()
        try:
            answer = _Answer(conn, message)
            result = self._shortcut(conn, message, answer) or self.app(
                self._environ_for(conn, message, buf), answer.start_response
            )
            try:
                return answer.send(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            with self._lock:
                self._serving -= 1

    def _shortcut(
        self, conn: _Connection, message: _Message, answer: _Answer
    ) -> FileWrapper | None:
        """The app's answer without WSGI, when it has one for this request (`Shortcut`)."""
        if self.shortcut is None or not message.complete:
            return None
        addr = conn.addr
        peer = addr[0] if isinstance(addr, tuple) else ""
        found = self.shortcut(message.method, message.url.decode("latin-1"), message.fields, peer)
        if found is None:
            return None
        status, headers, file = found
        answer.start_response(status, headers)
        return FileWrapper(file)

    def _environ_for(self, conn: _Connection, message: _Message, buf: bytearray) -> dict[str, Any]:
        url = message.url.decode("latin-1")
        if url.startswith("/"):
            path, _, query = url.partition("?")
            query = query.partition("#")[0]
        else:  # absolute-form (RFC 9112 3.2.2), or "*"
            parts = urlsplit(url)
            path, query = parts.path or url, parts.query
        path = path.partition("#")[0]
        environ = self._environ.copy()
        environ["REQUEST_METHOD"] = message.method
        environ["REQUEST_URI"] = url
        environ["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1") if "%" in path else path
        environ["QUERY_STRING"] = query
        environ["SERVER_PROTOCOL"] = "HTTP/" + message.version
        addr = conn.addr
        if isinstance(addr, tuple):
            environ["REMOTE_ADDR"] = addr[0]
            environ["REMOTE_PORT"] = str(addr[1])
        environ.update(message.fields)
        environ["wsgi.input"] = _Input(conn, message, buf)
        environ[BODY_DEADLINE] = conn.small_body
        return environ

    def _refuse(self, conn: _Connection, status: str, reason: str) -> None:
        """Answer a request that never reached the app, and close."""
        body = f"{reason}\n".encode("latin-1", "replace")
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\nDate: {_date()}\r\nServer: davserver\r\n\r\n"
        ).encode("latin-1")
        log.debug("refused a request from %s: %s", conn.addr, reason)
        with contextlib.suppress(OSError):
            conn.send_all(head + body)
        self._close(conn)

    def _rearm(self, conn: _Connection, events: int) -> None:
        """Hand `conn` back to epoll; from here on another thread may have it."""
        epoll = self._epoll
        if epoll is None or self.stopping:
            self._close(conn)
            return
        conn.waiting = True
        try:
            epoll.modify(conn.fd, events)
        except OSError:
            conn.waiting = False
            self._close(conn)

    def _close(self, conn: _Connection) -> None:
        conn.waiting = False
        if self._conns.get(conn.fd) is conn:
            del self._conns[conn.fd]
        with contextlib.suppress(OSError, ValueError):
            if self._epoll is not None:
                self._epoll.unregister(conn.fd)
        with contextlib.suppress(OSError):
            conn.sock.close()
