"""PUT, MKCOL and DELETE (RFC 9110 9.3.4, RFC 4918 9.3, 9.6, 9.7)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from .. import failpoints, paths, syncmeta
from .. import headers as h
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
from ..ordering import claimed
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


Precondition = Callable[[Resource | None], None]


def conditions(req: Request, guard: Guard) -> Precondition:
    """The request's conditions, checked (again) under its claim on the resource as it is
    then: the conditional headers (If-Match...) and the If header, whose ETags and locks may
    have changed while the request waited for its claim or its body arrived."""

    def check(current: Resource | None) -> None:
        check_preconditions(req, current)
        guard.check_if_header()

    return check


def check_preconditions(req: Request, resource: Resource | None) -> None:
    """If-Match, If-None-Match and the date conditionals for a method that changes state."""
    etag = None
    if resource is not None and not resource.is_collection:
        etag = h.quote_etag(resource.etag)
    validators = h.Validators(etag, resource.mtime if resource else None)
    if h.evaluate_preconditions(req.method, req.environ, validators) is not None:
        raise PreconditionFailed("a conditional header does not match the current state")


def put(services: Services, req: Request, guard: Guard) -> Response:
    """Store the body atomically: 201 for a new file, 204 for a replaced one.

    The conditions are checked twice: before the body is read, so that a doomed upload is
    refused at once, and again at the commit, under a claim on the path, because the body
    may take minutes and a LOCK, a PUT or a MOVE may have come in meanwhile.
    """
    existing = stat_or_none(services, req.path)
    _check_put(req, guard, existing)
    mtime_header = req.header("X-OC-Mtime")
    mtime = syncmeta.parse_mtime(mtime_header) if mtime_header is not None else None
    content_range = req.header("Content-Range")
    if content_range is not None:
        stored, created = _put_range(services, req, guard, content_range, mtime)
    else:
        stored, created = _put_whole(services, req, guard, mtime)
    headers = entity_headers(stored)
    if mtime is not None:
        headers.append(("X-OC-Mtime", "accepted"))
    return Response(201 if created else 204, headers)


def _check_put(req: Request, guard: Guard, current: Resource | None) -> None:
    """Whether a PUT may change the path as it is now: 405 a collection, 412 a failed
    condition, 423 a lock (on the file, or on the parent's membership for a new one)."""
    if current is not None and current.is_collection:
        raise MethodNotAllowed(
            "PUT cannot replace a collection", headers=[("Allow", EXISTING_METHODS)]
        )
    conditions(req, guard)(current)
    # A lock on the path holds even where no file is yet (a lock whose empty file was
    # deleted by other means): it must stop the first PUT, not only the next.
    guard.require(req.path)
    if current is None:
        guard.require_membership(req.path)


@contextlib.contextmanager
def _committing(services: Services, req: Request, guard: Guard) -> Iterator[Resource | None]:
    """The claim a PUT commits under, with the checks repeated on what is there now; yields
    the resource being replaced (None for a new one)."""
    with claimed(services, [req.path], intent={"op": "put", "path": req.path}):
        current = stat_or_none(services, req.path)
        _check_put(req, guard, current)
        yield current


def _put_whole(
    services: Services, req: Request, guard: Guard, mtime: float | None
) -> tuple[Resource, bool]:
    """The body replaces the file atomically, checked against OC-Checksum when one is sent;
    `If-None-Match: *` holds at the commit too. Returns what was stored and whether it is new.
    """
    check = syncmeta.ChecksumCheck.from_header(req.header("OC-Checksum"))
    chunks = req.body_chunks()
    staged = services.provider.stage(req.path, check.stream(chunks) if check else chunks)
    failpoints.hit("put.staged")
    try:
        with _committing(services, req, guard) as current:
            if current is None:
                forget_stale(services, req.path)
            else:
                # New content makes a stored checksum a lie; dropped first, so a crash
                # before the new one is stored leaves none rather than a wrong one.
                _drop_checksum(services, req.path)
            # Anything that appears without a claim (another program writing the folder)
            # still cannot be overwritten by a create-only PUT.
            create_only = current is None and _create_only(req)
            try:
                stored = staged.commit(create=create_only, mtime=mtime)
            except MethodNotAllowed:
                if create_only:
                    raise PreconditionFailed("something was created there meanwhile") from None
                raise
            failpoints.hit("put.committed")
            if check is not None:
                services.props.patch(req.path, [(syncmeta.CHECKSUMS, check.property_xml())])
    finally:
        staged.discard()
    return stored, current is None


def _create_only(req: Request) -> bool:
    return (req.header("If-None-Match") or "").strip() == "*"


def _drop_checksum(services: Services, path: str) -> None:
    if services.props.get(path, [syncmeta.CHECKSUMS]):
        services.props.patch(path, [(syncmeta.CHECKSUMS, None)])


def _put_range(
    services: Services, req: Request, guard: Guard, value: str, mtime: float | None
) -> tuple[Resource, bool]:
    """A resumable upload's next piece (Content-Range), written into the file (RFC 9110 14.5).

    The piece is read in full first, outside the claim, so a client that stalls holds up
    nobody; then it goes into the file under the claim (`RangeWriter.write_range`).
    """
    writer = services.provider
    if not isinstance(writer, RangeWriter):
        raise DavError("this storage cannot write part of a file", status=501)
    first, last, total = h.parse_content_range(value)
    expected = last - first + 1
    if req.content_length is not None and req.content_length != expected:
        raise BadRequest(f"Content-Range announces {expected} bytes, the body has another size")
    _continues(stat_or_none(services, req.path), first)  # refused before the body is read
    piece = writer.stage(req.path, _exactly(req.body_chunks(), expected))
    try:
        with _committing(services, req, guard) as current:
            _continues(current, first)
            if current is None:
                forget_stale(services, req.path)  # a deleted file's properties are not this one's
            else:
                _drop_checksum(services, req.path)
            try:
                stored = writer.write_range(req.path, first, piece, create=current is None)
            except MethodNotAllowed:
                raise PreconditionFailed("something was created there meanwhile") from None
            failpoints.hit("put-range.written")
            if total is not None and stored.size > total:
                stored = writer.truncate(req.path, total)
            if mtime is not None:
                writer.set_mtime(req.path, mtime)
                stored = writer.stat(req.path)
    finally:
        piece.discard()
    return stored, current is None


def _continues(current: Resource | None, first: int) -> None:
    """416 unless the piece starts within the file or right at its end."""
    size = current.size if current is not None else 0
    if first > size:
        raise RangeNotSatisfiable(
            f"the upload may continue at byte {size}, not {first}",
            headers=[("Content-Range", f"bytes */{size}")],
        )


def _exactly(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """The body, which must be exactly the `size` bytes its Content-Range announces."""
    sent = 0
    for chunk in chunks:
        sent += len(chunk)
        if sent > size:
            raise BadRequest("the body is longer than its Content-Range")
        yield chunk
    if sent < size:
        raise BadRequest("the body is shorter than its Content-Range")


def make_collection(
    services: Services, guard: Guard, path: str, precondition: Precondition | None = None
) -> None:
    """MKCOL's effect, shared with the batch endpoint: 405 when something exists there,
    409 without a parent collection, 423 when the parent's membership is locked."""
    with claimed(services, [path], intent={"op": "mkcol", "path": path}):
        current = stat_or_none(services, path)
        if precondition is not None:
            precondition(current)
        if current is not None:
            raise MethodNotAllowed(
                "something already exists there", headers=[("Allow", EXISTING_METHODS)]
            )
        guard.require_membership(path)
        guard.require(path)
        forget_stale(services, path)  # nothing is there: whatever the store holds is stale
        failpoints.hit("mkcol.forgotten")
        services.provider.make_collection(path)


def mkcol(services: Services, req: Request, guard: Guard) -> Response:
    if req.has_body():
        # RFC 4918 9.3: we define no MKCOL body, so any body is an unsupported type.
        raise UnsupportedMediaType("MKCOL with a request body is not supported")
    make_collection(services, guard, req.path, conditions(req, guard))
    return Response(201)


def delete_resource(
    services: Services, guard: Guard, path: str, precondition: Precondition | None = None
) -> list[MemberStatus]:
    """DELETE's effect, shared with the batch endpoint: the failed members (RFC 4918 9.6.1).

    Runs under a claim on the tree, whose intent lets recovery forget the properties and locks
    of members a crash left deleted.
    """
    if path == paths.ROOT:
        raise Forbidden("the shared root cannot be deleted")
    with claimed(services, [path], intent={"op": "delete", "path": path}):
        resource = services.provider.stat(path)
        if precondition is not None:
            precondition(resource)
        check = guard.tree_check(path, membership=True)
        # A single resource, removed straight after the check, may skip the look for locks to
        # forget; a collection's walk may meet locks granted before the claim was taken.
        forget_locks = resource.is_collection or check.locks_within
        return delete_tree(services, resource, check, forget_locks=forget_locks)


def delete(services: Services, req: Request, guard: Guard) -> Response:
    resource = services.provider.stat(req.path)
    if resource.is_collection:
        # RFC 4918 9.6.1: a collection is always deleted as if Depth were infinity.
        h.parse_depth(req.header("Depth"), h.INFINITY, (h.INFINITY,))
    failures = delete_resource(services, guard, req.path, conditions(req, guard))
    return tree_response(services, req, (req.path,), failures, 204)
