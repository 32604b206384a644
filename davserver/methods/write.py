"""PUT, MKCOL and DELETE (RFC 9110 9.3.4, RFC 4918 9.3, 9.6, 9.7)."""

from __future__ import annotations

from .. import headers as h
from .. import paths
from ..errors import (
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    UnsupportedMediaType,
)
from ..locking import Guard
from ..model import MemberStatus, Resource
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
    if req.header("Content-Range") is not None:
        # RFC 9110 14.5: a server that does not apply partial PUTs must refuse them.
        raise BadRequest("Content-Range on PUT is not supported")
    stored = services.provider.write(req.path, req.body_chunks())
    return Response(204 if existing else 201, entity_headers(stored))


def make_collection(services: Services, guard: Guard, path: str) -> None:
    """MKCOL's effect, shared with the batch endpoint: 405 when something exists there,
    409 without a parent collection, 423 when the parent's membership is locked."""
    if stat_or_none(services, path) is not None:
        raise MethodNotAllowed(
            "something already exists there", headers=[("Allow", EXISTING_METHODS)]
        )
    guard.require_membership(path)
    services.provider.make_collection(path)


def mkcol(services: Services, req: Request, guard: Guard) -> Response:
    if req.has_body():
        # RFC 4918 9.3: we define no MKCOL body, so any body is an unsupported type.
        raise UnsupportedMediaType("MKCOL with a request body is not supported")
    make_collection(services, guard, req.path)
    return Response(201)


def delete_resource(services: Services, guard: Guard, path: str) -> list[MemberStatus]:
    """DELETE's effect, shared with the batch endpoint: the failed members (RFC 4918 9.6.1)."""
    if path == paths.ROOT:
        raise Forbidden("the shared root cannot be deleted")
    resource = services.provider.stat(path)
    guard.require_membership(path)
    return delete_tree(services, resource, guard.tree_check(path))


def delete(services: Services, req: Request, guard: Guard) -> Response:
    resource = services.provider.stat(req.path)
    if resource.is_collection:
        # RFC 4918 9.6.1: a collection is always deleted as if Depth were infinity.
        h.parse_depth(req.header("Depth"), h.INFINITY, (h.INFINITY,))
    check_preconditions(req, resource)
    failures = delete_resource(services, guard, req.path)
    return tree_response(req, (req.path,), failures, 204)
