"""GET of a collection with `?zip`: the folder, or some of its members, as one zip archive.

The archive is written as it is read: each file's bytes pass through to the client in pieces,
with no temporary file and no whole archive in memory. `zipfile` writes to a stream it cannot
seek in by putting each entry's sizes and CRC in a data descriptor after its data (APPNOTE
4.3.9), so nothing needs to be known before a file has been read.

Everything is read through the provider, and every member is checked against the access rules
as a PROPFIND would: a member the user may not read is left out, and a collection the user may
not read is not entered. The number of members is bounded like a Depth: infinity PROPFIND
(`max_propfind_resources`), checked before the first byte.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from typing import IO, cast
from urllib.parse import quote

from .. import auth, listing, paths
from ..errors import DavError, Forbidden
from ..model import Resource
from ..request import Request, Response
from ..services import Services

READ_CHUNK = 256 * 1024
# The earliest and latest times a zip entry can carry: an MS-DOS date counts years from 1980
# in 7 bits, and seconds in steps of two (APPNOTE 4.4.6).
_DOS_EPOCH = (1980, 1, 1, 0, 0, 0)
_DOS_END = (2107, 12, 31, 23, 59, 58)


class _Sink:
    """A write-only file for ZipFile: what it is given waits here until the response takes it.
    It has no `tell` or `seek`, so ZipFile writes data descriptors instead of seeking back."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to do: the parts are taken by the response."""

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def zip_response(
    services: Services, req: Request, collection: Resource, names: list[str], head: bool
) -> Response:
    """The zip of `collection` (all of it, or only its members `names`), as an attachment."""
    roots = _roots(services, req.user, collection, names)
    limit = services.config.max_propfind_resources
    total = 0
    for root in roots:
        total += listing.count_visible(services, req.user, root, limit)
        if total > limit:
            # Plain text, not PROPFIND's XML condition: a person reads this one.
            raise Forbidden(f"a zip may hold at most {limit} resources; download fewer at once")
    title = paths.name(collection.path) or "files"
    headers = [
        ("Content-Type", "application/zip"),
        (
            "Content-Disposition",
            f"attachment; filename=\"{_ascii_name(title)}.zip\"; filename*=UTF-8''"
            + quote(title + ".zip", safe=""),
        ),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-store"),
    ]
    if head:
        return Response(200, headers)
    members = listing.at_most(_members(services, req.user, roots), limit)
    return Response(200, headers, _archive(collection.path, members, services))


def _roots(
    services: Services, user: str | None, collection: Resource, names: list[str]
) -> list[Resource]:
    """The resources `names` name: paths relative to the collection (a search's results lie
    further down), each once, and none inside another (its entries would come twice).

    A name the user may not read is refused (403) before anything is looked up, as a GET of
    it would be: were it only left out, a 404 for a name that does not exist beside an empty
    zip for one that does would tell what a forbidden folder holds."""
    if not names:
        return [collection]
    wanted: list[str] = []
    for name in names:
        segments = name.split("/")
        for segment in segments:
            paths.check_segment(segment)  # 403 for "", "." and "..": nothing outside
        path = paths.join([*paths.split(collection.path), *segments])
        auth.require(services.policy, services.authenticator, user, [auth.Need(path, "read")])
        wanted.append(path)
    return [services.provider.stat(path) for path in _outermost(wanted)]


def _outermost(wanted: list[str]) -> list[str]:
    """`wanted` once each, in order, without those inside another. In the order of their
    segments a collection comes right before what lies inside it, so each path is compared
    with the last one kept only: a request head holds thousands of names, and comparing
    every pair took a minute of CPU for one request."""
    kept: set[str] = set()
    last: str | None = None
    for path in sorted(set(wanted), key=paths.split):
        if last is None or not paths.is_ancestor(last, path):
            kept.add(path)
            last = path
    return [path for path in dict.fromkeys(wanted) if path in kept]


def _members(services: Services, user: str | None, roots: list[Resource]) -> Iterator[Resource]:
    for root in roots:
        yield from listing.visible(services, user, root, "infinity")


def _ascii_name(name: str) -> str:
    """A fallback file name for clients that ignore `filename*` (RFC 6266 4.3)."""
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)


def _archive(base: str, members: Iterator[Resource], services: Services) -> Iterator[bytes]:
    sink = _Sink()
    # STORED: the bytes pass through as they are; most large files are compressed already.
    with zipfile.ZipFile(cast(IO[bytes], sink), "w", zipfile.ZIP_STORED) as archive:
        for resource in members:
            name = "/".join(paths.split(resource.path)[len(paths.split(base)) :])
            info = zipfile.ZipInfo(name + ("/" if resource.is_collection else ""), _when(resource))
            if resource.is_collection:
                if name:
                    info.external_attr = (0o40755 << 16) | 0x10  # a directory, MS-DOS and Unix
                    archive.writestr(info, b"")
            else:
                yield from _add_file(services, archive, info, resource.path, sink)
            if sink.parts:
                yield sink.take()
    yield sink.take()


def _add_file(
    services: Services, archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, sink: _Sink
) -> Iterator[bytes]:
    try:
        _resource, stream = services.provider.open_read(path)
    except DavError:
        return  # gone (or become a folder) since it was listed: it is left out
    with stream, archive.open(info, "w", force_zip64=True) as entry:
        while chunk := stream.read(READ_CHUNK):
            entry.write(chunk)
            yield sink.take()


def _when(resource: Resource) -> tuple[int, int, int, int, int, int]:
    """The entry's date: the file's, or the nearest one a zip can hold (a date out of
    range would break the archive mid-stream)."""
    try:
        t = time.localtime(resource.mtime)
    except (OverflowError, OSError, ValueError):  # past what the platform's time_t holds
        return _DOS_END if resource.mtime > 0 else _DOS_EPOCH
    stamp = (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
    return min(max(stamp, _DOS_EPOCH), _DOS_END)
