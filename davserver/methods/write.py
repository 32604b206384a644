"""PUT, MKCOL and DELETE (RFC 9110 9.3.4, RFC 4918 9.3, 9.6, 9.7)."""

from __future__ import annotations

from collections.abc import Iterator

from .. import headers as h
from .. import paths, syncmeta
from ..errors import (
    BadRequest,
    DavError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    RangeNotSatisfiable,
    UnsupportedMediaType,
)
from ..locking import Guard
from ..model import MemberStatus, Resource
from ..provider.base import RangeWriter
from ..request import Request, Response
from ..services import Services
from ..tree import delete_tree
from .read import EXISTING_METHODS, entity_headers
from .results import tree_response


def stat_or_none(services: Services, path: str) -> Resource | None:
    try:
        return services.provider.stat(path)
    except NotFound:
        return None


def forget_stale(services: Services, path: str) -> None:
    """A resource was just created: properties left at its path by one removed behind the
    server's back (outside WebDAV) must not attach to it."""
    services.props.delete([path], recursive=True)


def check_preconditions(req: Request, resource: Resource | None) -> None:
    """If-Match, If-None-Match and the date conditionals for a method that changes state."""
    etag = None
    if resource is not None and not resource.is_collection:
        etag = h.quote_etag(resource.etag)
    validators = h.Validators(etag, resource.mtime if resource else None)
    if h.evaluate_preconditions(req.method, req.environ, validators) is not None:
        raise PreconditionFailed("a conditional header does not match the current state")


def put(services: Services, req: Request, guard: Guard) -> Response:
    """Store the body atomically: 201 for a new file, 204 for a replaced one."""
    existing = stat_or_none(services, req.path)
    if existing is not None and existing.is_collection:
        raise MethodNotAllowed(
            "PUT cannot replace a collection", headers=[("Allow", EXISTING_METHODS)]
        )
    check_preconditions(req, existing)
    if existing is not None:
        guard.require(req.path)
    else:
        guard.require_membership(req.path)
    mtime_header = req.header("X-OC-Mtime")
    mtime = syncmeta.parse_mtime(mtime_header) if mtime_header is not None else None
    content_range = req.header("Content-Range")
    if content_range is not None:
        stored = _put_range(services, req, existing, content_range)
    else:
        stored = _put_whole(services, req, existing is not None)
    headers = []
    if mtime is not None:
        services.provider.set_mtime(req.path, mtime)
        stored = services.provider.stat(req.path)
        headers.append(("X-OC-Mtime", "accepted"))
    return Response(204 if existing else 201, entity_headers(stored) + headers)


def _put_whole(services: Services, req: Request, replaced: bool) -> Resource:
    """The body replaces the file atomically, checked against OC-Checksum when one is sent.
    With `If-None-Match: *` it is stored only if nothing appeared at the path meanwhile."""
    check = syncmeta.ChecksumCheck.from_header(req.header("OC-Checksum"))
    chunks = req.body_chunks()
    create_only = not replaced and (req.header("If-None-Match") or "").strip() == "*"
    try:
        stored = services.provider.write(
            req.path, check.stream(chunks) if check else chunks, create=create_only
        )
    except MethodNotAllowed:
        if create_only:
            raise PreconditionFailed("something was created there meanwhile") from None
        raise
    if not replaced:
        forget_stale(services, req.path)
    if check is not None:
        services.props.patch(req.path, [(syncmeta.CHECKSUMS, check.property_xml())])
    elif replaced:
        _drop_checksum(services, req.path)
    return stored


def _drop_checksum(services: Services, path: str) -> None:
    # New content makes a stored checksum a lie.
    if services.props.get(path, [syncmeta.CHECKSUMS]):
        services.props.patch(path, [(syncmeta.CHECKSUMS, None)])


def _put_range(services: Services, req: Request, existing: Resource | None, value: str) -> Resource:
    """A resumable upload's next piece (Content-Range), written in place (RFC 9110 14.5)."""
    writer = services.provider
    if not isinstance(writer, RangeWriter):
        raise DavError("this storage cannot write part of a file", status=501)
    first, last, total = h.parse_content_range(value)
    size = existing.size if existing is not None else 0
    if first > size:
        raise RangeNotSatisfiable(
            f"the upload may continue at byte {size}, not {first}",
            headers=[("Content-Range", f"bytes */{size}")],
        )
    expected = last - first + 1
    if req.content_length is not None and req.content_length != expected:
        raise BadRequest(f"Content-Range announces {expected} bytes, the body has another size")
    stored = writer.write_range(req.path, first, _at_most(req.body_chunks(), expected))
    if total is not None and stored.size > total:
        stored = writer.truncate(req.path, total)
    _drop_checksum(services, req.path)
    return stored


def _at_most(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    sent = 0
    for chunk in chunks:
        sent += len(chunk)
        if sent > limit:
            raise BadRequest("the body is longer than its Content-Range")
        yield chunk


def make_collection(services: Services, guard: Guard, path: str) -> None:
    """MKCOL's effect, shared with the batch endpoint: 405 when something exists there,
    409 without a parent collection, 423 when the parent's membership is locked."""
    if stat_or_none(services, path) is not None:
        raise MethodNotAllowed(
            "something already exists there", headers=[("Allow", EXISTING_METHODS)]
        )
    guard.require_membership(path)
    services.provider.make_collection(path)
    forget_stale(services, path)


def mkcol(services: Services, req: Request, guard: Guard) -> Response:
    if req.has_body():
        # RFC 4918 9.3: we define no MKCOL body, so any body is an unsupported type.
        raise UnsupportedMediaType("MKCOL with a request body is not supported")
    check_preconditions(req, stat_or_none(services, req.path))
    make_collection(services, guard, req.path)
    return Response(201)


def delete_resource(services: Services, guard: Guard, path: str) -> list[MemberStatus]:
    """DELETE's effect, shared with the batch endpoint: the failed members (RFC 4918 9.6.1)."""
    if path == paths.ROOT:
        raise Forbidden("the shared root cannot be deleted")
    resource = services.provider.stat(path)
    check = guard.tree_check(path, membership=True)
    # A lock granted while a folder is walked must go with its member, so only a single
    # resource, removed straight after the check, may skip the look for locks to forget.
    forget_locks = resource.is_collection or check.locks_within
    return delete_tree(services, resource, check, forget_locks=forget_locks)


def delete(services: Services, req: Request, guard: Guard) -> Response:
    resource = services.provider.stat(req.path)
    if resource.is_collection:
        # RFC 4918 9.6.1: a collection is always deleted as if Depth were infinity.
        h.parse_depth(req.header("Depth"), h.INFINITY, (h.INFINITY,))
    check_preconditions(req, resource)
    failures = delete_resource(services, guard, req.path)
    return tree_response(services, req, (req.path,), failures, 204)
