"""The small request and response values method handlers work with.

`Request` wraps the WSGI environ with what handlers need (the provider path, headers, bodies);
`Response` is a status, headers and an iterable body. Handlers return a Response or raise
`DavError`; the app turns either into WSGI.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import paths
from .errors import BadGateway, BadRequest, DavError, PayloadTooLarge

BODY_CHUNK = 1024 * 1024


class ClientDisconnected(DavError):
    """The client stopped sending before the body was complete (nobody reads the answer)."""

    status = 400


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Iterable[bytes] = ()


@dataclass(slots=True)
class Request:
    """One HTTP request, as the protocol layer sees it.

    `path` is the provider path of the Request-URI; `prefix` the encoded path prefix under which
    the share is mounted (`""` at the root), used to build every href and to read Destination.
    """

    environ: dict[str, Any]
    method: str
    path: str
    prefix: str
    user: str | None = None
    body_consumed: bool = False

    def header(self, name: str) -> str | None:
        """A request header by its HTTP name (`"If-Match"`), or None."""
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        value = self.environ.get(key)
        return value if value is None else str(value)

    @property
    def content_length(self) -> int | None:
        raw = self.environ.get("CONTENT_LENGTH")
        if raw in (None, ""):
            return None
        try:
            length = int(raw)
        except ValueError:
            raise BadRequest(f"Content-Length {raw!r} is not a number") from None
        if length < 0:
            raise BadRequest("negative Content-Length")
        return length

    @property
    def chunked(self) -> bool:
        return "chunked" in (self.header("Transfer-Encoding") or "").lower()

    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def read_body(self, limit: int) -> bytes:
        """The whole body, for methods whose body is a small XML document (at most `limit`)."""
        length = self.content_length
        if length is not None and length > limit:
            raise PayloadTooLarge(f"the request body is limited to {limit} bytes")
        chunks = []
        size = 0
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
                except (OSError, ValueError) as exc:
                    raise ClientDisconnected(f"the upload broke off: {exc}") from None
                if not chunk:
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

    def destination(self) -> str:
        """The provider path named by the Destination header (RFC 4918 10.3).

        An absolute URI must name this server (scheme and host as the request came in, default
        ports normalised) and lie under the prefix; anything else is refused with 502
        (RFC 4918 9.8.5), so a COPY or MOVE can never write somewhere the client did not mean.
        """
        value = self.header("Destination")
        if not value:
            raise BadRequest("COPY and MOVE need a Destination header")
        parts = urlsplit(value.strip())
        if parts.scheme or parts.netloc:
            if parts.scheme.lower() != self.scheme or _origin(parts.netloc, parts.scheme) != (
                _origin(self.host, self.scheme)
            ):
                raise BadGateway(f"Destination {value!r} is on another server")
        elif not parts.path.startswith("/"):
            raise BadRequest(f"Destination {value!r} is neither an absolute URI nor a path")
        raw = parts.path
        if self.prefix:
            if raw != self.prefix and not raw.startswith(self.prefix + "/"):
                raise BadGateway(f"Destination {value!r} is outside {self.prefix}/")
            raw = raw[len(self.prefix) :]
        return paths.url_to_path(raw)

    @property
    def scheme(self) -> str:
        return str(self.environ.get("wsgi.url_scheme", "http")).lower()

    @property
    def host(self) -> str:
        host = self.environ.get("HTTP_HOST")
        if host:
            return str(host)
        name = str(self.environ.get("SERVER_NAME", "localhost"))
        return f"{name}:{self.environ.get('SERVER_PORT', '80')}"


_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _origin(netloc: str, scheme: str) -> tuple[str, str]:
    """`(host, port)` with the scheme's default port filled in and the host lower-cased."""
    netloc = netloc.rpartition("@")[2].lower()
    if netloc.startswith("["):
        host, _, rest = netloc.partition("]")
        host += "]"
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = netloc.partition(":")
    return host, port or _DEFAULT_PORTS.get(scheme.lower(), "")
