"""The small request and response values method handlers work with.

`Request` wraps the WSGI environ with what handlers need (the provider path, headers, bodies);
`Response` is a status, headers and an iterable body. Handlers return a Response or raise
`DavError`; the app turns either into WSGI.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import paths
from .errors import BadGateway, BadRequest, DavError, PayloadTooLarge
from .origin import Origin, same_origin, strip_prefix

BODY_CHUNK = 1024 * 1024
# An optional environ entry: a server's context manager that bounds how long reading a small
# body of the given size may take (davserver.httpd provides it).
BODY_DEADLINE = "davserver.body_deadline"


# Header names as environ keys: the names are the code's own constants, so this stays small.
_ENVIRON_KEYS: dict[str, str] = {}


def environ_key(name: str) -> str:
    """The WSGI environ key of a header name (PEP 3333: CGI's HTTP_ variables)."""
    key = name.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


class FramingError(BadRequest):
    """Where the request's body ends cannot be trusted (RFC 9112 6.3): a malformed or doubled
    Content-Length, one beside Transfer-Encoding, broken chunked coding. Unrecoverable: the
    answer closes the connection, since the next request's start is unknown too."""

    def __init__(self, message: str) -> None:
        super().__init__(message, headers=[("Connection", "close")])


class ClientDisconnected(FramingError):
    """The client stopped sending before the body was complete (nobody reads the answer)."""


@dataclass(slots=True)
class Response:
    """`file_wrapper` marks a body made by the server's `wsgi.file_wrapper`, which must reach
    the server untouched for it to send the file itself (sendfile). `log_note` ends the
    request's access-log line (a batch's `items=N ran=R failed=F`)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Iterable[bytes] = ()
    file_wrapper: bool = False
    log_note: str = ""


@dataclass(slots=True)
class Request:
    """One HTTP request, as the protocol layer sees it.

    `path` is the provider path of the Request-URI; `origin` the public scheme, host and
    encoded path prefix clients see (`prefix` for short), from which every href is built and
    against which Destination and tagged If lists are read.
    """

    environ: dict[str, Any]
    method: str
    path: str
    origin: Origin
    user: str | None = None
    body_consumed: bool = False
    # Whether the Request-URI's path ends in "/" (the provider path never does).
    slash: bool = True

    def header(self, name: str) -> str | None:
        """A request header by its HTTP name (`"If-Match"`), or None."""
        key = _ENVIRON_KEYS.get(name)
        if key is None:
            key = _ENVIRON_KEYS[name] = environ_key(name)
        value = self.environ.get(key)
        return value if value is None else str(value)

    @property
    def content_length(self) -> int | None:
        raw = self.environ.get("CONTENT_LENGTH")
        if raw in (None, ""):
            return None
        # Digits only: int() would also take " 5", "+5" or "5_0"; a server that folds two
        # Content-Length headers into "3, 5" lands here too.
        if not str(raw).isdigit() or not str(raw).isascii():
            raise FramingError(f"Content-Length {raw!r} is not a number")
        return int(raw)

    @property
    def chunked(self) -> bool:
        return "chunked" in (self.header("Transfer-Encoding") or "").lower()

    def check_framing(self) -> None:
        """Refuse a body whose length two headers state (RFC 9112 6.3: a Content-Length
        beside Transfer-Encoding may be a smuggling attempt) or whose Content-Length is not
        a number."""
        if self.chunked and self.environ.get("CONTENT_LENGTH") not in (None, ""):
            raise FramingError("Content-Length beside Transfer-Encoding")
        codings = (self.header("Transfer-Encoding") or "").lower().split(",")
        if [coding.strip() for coding in codings if coding.strip()] not in ([], ["chunked"]):
            # The engine undoes chunked alone: a gzip coding beneath it would be stored as the
            # file's content. RFC 9112 6.1: 501 for a transfer coding not understood.
            raise DavError("only the chunked transfer coding is understood", status=501)
        _ = self.content_length

    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def read_body(self, limit: int) -> bytes:
        """The whole body, for methods whose body is a small XML document (at most `limit`)."""
        length = self.content_length
        if length is not None and length > limit:
            raise PayloadTooLarge(f"the request body is limited to {limit} bytes")
        # The server may bound how long a small body may take (davserver.httpd); a WSGI server
        # without that hook has its own timeouts.
        deadline = self.environ.get(BODY_DEADLINE)
        chunks = []
        size = 0
        with deadline(limit if length is None else length) if deadline else nullcontext():
            for chunk in self.body_chunks(65536):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the request body is limited to {limit} bytes")
                chunks.append(chunk)
        return b"".join(chunks)

    def body_chunks(self, size: int = BODY_CHUNK) -> Iterator[bytes]:
        """The body as it arrives; raises ClientDisconnected if it ends early."""
        self.body_consumed = True
        stream = self.environ["wsgi.input"]
        length = self.content_length
        if self.chunked:
            while True:
                try:
                    chunk = stream.read(size)
                except OSError as exc:
                    raise ClientDisconnected(f"the upload broke off: {exc}") from None
                except ValueError as exc:  # cheroot: a bad chunk size or a missing CRLF
                    raise FramingError(f"malformed chunked body: {exc}") from None
                if not chunk:
                    # Read the end of the chunked body (trailers, final CRLF) as well: left in
                    # the buffer, cheroot takes it for the start of another request and a
                    # worker thread waits on the idle connection.
                    trailer = getattr(stream, "read_trailer_lines", None)
                    if trailer is not None:
                        for _line in trailer():
                            pass
                    return
                yield chunk
        remaining = length or 0
        while remaining > 0:
            try:
                chunk = stream.read(min(size, remaining))
            except OSError as exc:
                raise ClientDisconnected(f"the upload broke off: {exc}") from None
            if not chunk:
                raise ClientDisconnected(
                    f"the upload ended {remaining} bytes before its Content-Length"
                )
            remaining -= len(chunk)
            yield chunk

    def href(self, path: str, is_collection: bool) -> str:
        return paths.href(self.prefix, path, is_collection)

    def content_location(self, is_collection: bool) -> list[tuple[str, str]]:
        """Content-Location for an answer about the Request-URI's resource: RFC 4918 5.2 wants
        it when a collection was named without its trailing slash."""
        if not is_collection or self.slash:
            return []
        return [("Content-Location", self.href(self.path, True))]

    def destination(self) -> str:
        """The provider path named by the Destination header (RFC 4918 10.3).

        An absolute URI must name this server (scheme and host as the request came in, default
        ports normalised) and lie under the prefix; anything else is refused with 502
        (RFC 4918 9.8.5), so a COPY or MOVE can never write somewhere the client did not mean.
        """
        value = self.header("Destination")
        if not value:
            raise BadRequest("COPY and MOVE need a Destination header")
        try:
            urlsplit(value.strip())
        except ValueError:
            # RFC 4918 10.3: an unusable Destination is the client's error, not another server.
            raise BadRequest(f"Destination {value!r} is not a URI") from None
        path = self.own_path(value.strip())
        if path is None:
            raise BadGateway(f"Destination {value!r} is not on this server, under {self.prefix}/")
        return path

    def own_path(self, uri: str) -> str | None:
        """The provider path of a URI or absolute path that names one of our resources, or
        None when it belongs to another origin or lies outside the prefix. Raises for paths
        that could not be ours in any case (`..`, bad encoding: 403/400)."""
        try:
            parts = urlsplit(uri)
        except ValueError:  # e.g. "http://[::1/x": no URL of ours
            return None
        if parts.scheme or parts.netloc:
            if not same_origin(parts.scheme, parts.netloc, self.origin):
                return None
        elif not parts.path.startswith("/"):
            raise BadRequest(f"{uri!r} is neither an absolute URI nor an absolute path")
        raw = strip_prefix(parts.path or "/", self.prefix)
        return None if raw is None else paths.url_to_path(raw)

    def is_request_uri(self, uri: str) -> bool:
        """Whether `uri` (an absolute URI or path, as a client writes it) names the resource of
        this request: the same provider path, read through the public origin and prefix as a
        Destination is, and the same query. A proxy may have rewritten the request line (a
        stripped prefix, another encoding); the URI the client wrote is read as it wrote it."""
        try:
            if self.own_path(uri) != self.path:
                return False
        except DavError:
            return False
        parts = urlsplit(uri)  # it parsed in own_path
        return parts.query == str(self.environ.get("QUERY_STRING", "")) and not parts.fragment

    @property
    def prefix(self) -> str:
        return self.origin.prefix
