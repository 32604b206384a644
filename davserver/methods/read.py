"""OPTIONS, GET and HEAD (RFC 9110 9.3, RFC 4918 9.4 and 10.1)."""

from __future__ import annotations

import functools
import mimetypes
import uuid
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qs

from .. import headers as h
from .. import listing, paths
from ..errors import MethodNotAllowed, NotFound, RangeNotSatisfiable
from ..model import Resource
from ..provider.base import ReadStream
from ..request import Request, Response
from ..services import Services
from ..ui import handler as ui
from . import archive

READ_CHUNK = 1024 * 1024

DAV_METHODS = (
    "OPTIONS, GET, HEAD, POST, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK"
)
# What a collection or an existing resource allows: everything but creating it again.
EXISTING_METHODS = "OPTIONS, GET, HEAD, DELETE, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK"


def options(services: Services, req: Request) -> Response:
    """Compliance classes and methods; answered for any path, mapped or not."""
    return Response(
        200,
        [
            ("DAV", "1, 2"),
            ("MS-Author-Via", "DAV"),
            ("Allow", DAV_METHODS),
            ("Accept-Ranges", "bytes"),
            ("Content-Length", "0"),
        ],
    )


def content_type(resource: Resource) -> str:
    """The stored type, or a guess from the name's extension (RFC 9110 8.3)."""
    if resource.content_type:
        return resource.content_type
    name = paths.name(resource.path)
    dot = name.rfind(".")
    return _type_of_extension(name[dot:] if dot > 0 else "")


@functools.lru_cache(maxsize=1024)  # bounded: extensions come from any name on disk
def _type_of_extension(extension: str) -> str:
    guessed, encoding = mimetypes.guess_type("x" + extension, strict=False)
    if guessed is None or encoding is not None:
        # A .gz file is served as what it is, not as its uncompressed type.
        return "application/octet-stream"
    if guessed.startswith("text/"):
        return guessed + "; charset=utf-8"
    return guessed


# Types a browser would run as a document with script: served in a sandbox (no script, a
# unique origin), so an uploaded page cannot act in the server's origin with the user's
# credentials (issue 17, Security).
_ACTIVE_TYPES = (
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/xml",
    "application/xml",
)


def safety_headers(ctype: str) -> list[tuple[str, str]]:
    """What every user file is served with: no type sniffing, and a sandbox for types that a
    browser could run (HTML, SVG, XML: any `+xml` type can carry XHTML script)."""
    media = ctype.split(";")[0].strip().lower()
    headers = [("X-Content-Type-Options", "nosniff")]
    if media in _ACTIVE_TYPES or media.endswith("+xml"):
        headers.append(("Content-Security-Policy", "sandbox"))
    return headers


def entity_headers(resource: Resource) -> list[tuple[str, str]]:
    return [
        ("ETag", h.quote_etag(resource.etag)),
        ("Last-Modified", h.http_date(resource.mtime)),
    ]


def _served_headers(resource: Resource, ctype: str) -> list[tuple[str, str]]:
    """What every answer with a file's content (whole or in part) carries."""
    return [*entity_headers(resource), ("Accept-Ranges", "bytes"), *safety_headers(ctype)]


def whole_file_headers(resource: Resource, ctype: str | None = None) -> list[tuple[str, str]]:
    """The headers of a 200 answer with the whole of `resource` (of type `ctype`)."""
    if ctype is None:
        ctype = content_type(resource)
    return [
        *_served_headers(resource, ctype),
        ("Content-Type", ctype),
        ("Content-Length", str(resource.size)),
    ]


def get(services: Services, req: Request) -> Response:
    return _get(services, req, head=False)


def head(services: Services, req: Request) -> Response:
    return _get(services, req, head=True)


def _get(services: Services, req: Request, head: bool) -> Response:
    if head:
        resource = services.provider.stat(req.path)
        if resource.is_collection:
            return _collection(services, req, resource, head)
        return _file_response(req, resource, None)
    try:
        # Opened first, then described: a PUT may replace the file at any moment, and the
        # headers must match the bytes sent.
        resource, stream = services.provider.open_read(req.path)
    except MethodNotAllowed:
        return _collection(services, req, services.provider.stat(req.path), head)
    try:
        response = _file_response(req, resource, stream)
    except BaseException:
        stream.close()
        raise
    if not response.body:
        stream.close()
    return response


def _collection(services: Services, req: Request, resource: Resource, head: bool) -> Response:
    """The listing page, after the conditionals (a collection has no entity tag, but it
    exists: If-None-Match: * and If-Match apply, RFC 9110 13.1)."""
    validators = h.Validators(None, resource.mtime)
    stop = h.evaluate_preconditions(req.method, req.environ, validators)
    if stop is not None:
        return Response(stop, [("Last-Modified", h.http_date(resource.mtime))])
    # A query names something other than the collection's listing; a file's name can never
    # be one, since a path has no query.
    query = parse_qs(str(req.environ.get("QUERY_STRING", "")), keep_blank_values=True)
    if "zip" in query:
        return archive.zip_response(services, req, resource, query.get("name", []), head)
    if "list" in query:
        return listing.collection_json(
            services, req, resource, query["list"][0], head, content_type
        )
    if "ui" in query:
        return ui.asset(req, query["ui"][0], head)
    if ui.wants_page(req):
        return ui.page(services, req, resource, head)
    page = listing.collection_page(services, req, resource, head)
    page.headers.extend(req.content_location(True))
    return page


def _file_response(req: Request, resource: Resource, stream: ReadStream | None) -> Response:
    """The answer for a file; its body reads `stream` (None for HEAD)."""
    validators = h.Validators(h.quote_etag(resource.etag), resource.mtime)
    stop = h.evaluate_preconditions(req.method, req.environ, validators)
    if stop is not None:
        return Response(stop, [*entity_headers(resource), ("Accept-Ranges", "bytes")])
    ctype = content_type(resource)
    base = _served_headers(resource, ctype)
    ranges = None
    wanted = req.header("Range")
    if wanted is not None and h.if_range_allows(
        req.header("If-Range"), validators.etag or "", resource.mtime
    ):
        try:
            ranges = h.parse_range(wanted, resource.size)
        except RangeNotSatisfiable as exc:
            # 416 carries the size, so a client can retry with a range that fits.
            exc.headers.append(("Content-Range", f"bytes */{resource.size}"))
            raise
    if ranges is None:
        headers = whole_file_headers(resource, ctype)
        wrapper = req.environ.get("wsgi.file_wrapper")
        if stream is not None and wrapper is not None:
            # The server sends the whole file itself (gunicorn: sendfile); cheroot has none.
            return Response(200, headers, wrapper(stream, READ_CHUNK), file_wrapper=True)
        return Response(200, headers, _body(stream, [(0, resource.size - 1)], []))
    if len(ranges) == 1:
        first, last = ranges[0]
        headers = [
            *base,
            ("Content-Type", ctype),
            ("Content-Range", f"bytes {first}-{last}/{resource.size}"),
            ("Content-Length", str(last - first + 1)),
        ]
        return Response(206, headers, _body(stream, ranges, []))
    boundary = uuid.uuid4().hex
    heads = [
        (
            f"\r\n--{boundary}\r\nContent-Type: {ctype}\r\n"
            f"Content-Range: bytes {first}-{last}/{resource.size}\r\n\r\n"
        ).encode("ascii")
        for first, last in ranges
    ]
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    length = sum(len(x) for x in heads) + sum(b - a + 1 for a, b in ranges) + len(tail)
    headers = [
        *base,
        ("Content-Type", f"multipart/byteranges; boundary={boundary}"),
        ("Content-Length", str(length)),
    ]
    return Response(206, headers, _body(stream, ranges, [*heads, tail]))


def _body(
    stream: ReadStream | None, ranges: list[tuple[int, int]], separators: list[bytes]
) -> Iterable[bytes]:
    """The ranges of `stream`, each after its separator (multipart parts), then the last
    separator; nothing for HEAD."""
    if stream is None:
        return ()

    def chunks() -> Iterator[bytes]:
        with stream:
            for index, (first, last) in enumerate(ranges):
                if separators:
                    yield separators[index]
                yield from _read_span(stream, first, last)
            if separators:
                yield separators[-1]

    return chunks()


def _read_span(stream: ReadStream, first: int, last: int) -> Iterator[bytes]:
    stream.seek(first)
    remaining = last - first + 1
    while remaining > 0:
        chunk = stream.read(min(READ_CHUNK, remaining))
        if not chunk:
            # The file shrank while being sent: the Content-Length cannot be honoured, so the
            # connection must break rather than pass off a short body as complete.
            raise NotFound("the file changed while it was being read")
        remaining -= len(chunk)
        yield chunk
