"""COPY and MOVE (RFC 4918 9.8, 9.9)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import headers as h
from .. import paths, syncmeta
from ..errors import Conflict, Forbidden, PreconditionFailed
from ..locking import Guard
from ..model import MemberStatus
from ..provider.base import LinkResolver
from ..request import Request, Response
from ..services import Services
from ..tree import copy_tree, delete_tree, move_tree
from .results import tree_response
from .write import check_preconditions, stat_or_none


@dataclass(frozen=True, slots=True)
class Transfer:
    """A COPY or MOVE as plain values: what the WebDAV method and a batch item both run."""

    source: str
    destination: str
    move: bool
    depth: str = h.INFINITY
    overwrite: bool = True


def transfer(services: Services, guard: Guard, op: Transfer) -> tuple[int, list[MemberStatus]]:
    """Run a COPY or MOVE; the success status (201 new, 204 replaced) and the failed members.

    Whole-request failures are raised: 404 no source, 403 same resource or a tree into itself,
    409 no parent at the destination, 412 an existing destination with Overwrite F, 423 locks.
    """
    provider = services.provider
    source = provider.stat(op.source)
    dst = op.destination
    # Compared where links lead: through a link, two names can be one resource.
    real_src, real_dst = op.source, dst
    if isinstance(provider, LinkResolver):
        real_src, real_dst = provider.canonical(op.source), provider.canonical(dst)
    if real_dst == real_src:
        raise Forbidden("the source and the destination are the same resource")
    if source.is_collection and paths.is_ancestor(real_src, real_dst):
        raise Forbidden("a collection cannot be copied or moved into itself")
    if paths.is_ancestor(real_dst, real_src):
        raise Forbidden("the destination contains the source")
    parent = stat_or_none(services, paths.parent(dst))
    if parent is None or not parent.is_collection:
        raise Conflict("the destination's parent collection does not exist")
    existing = stat_or_none(services, dst)
    if existing is not None and not op.overwrite:
        raise PreconditionFailed(f"{dst} exists and Overwrite is F")
    if op.move:
        guard.require_membership(op.source)
        guard.require_tree(op.source)
    guard.require_membership(dst)
    if existing is not None:
        # RFC 4918 9.8.4 / 9.9.3: an overwrite first deletes the destination, as DELETE would.
        guard.require_tree(dst)
        failures = delete_tree(services, existing, guard.tree_check(dst))
        if failures:
            return 204, failures
    if op.move:
        failures = move_tree(services, source, dst, guard.tree_check(op.source))
    else:
        failures = copy_tree(services, source, dst, op.depth)
    return (204 if existing is not None else 201), failures


def _run(services: Services, req: Request, guard: Guard, move: bool) -> Response:
    source = stat_or_none(services, req.path)
    depth = h.INFINITY
    if move and source is not None and not source.is_collection:
        # RFC 4918 9.9.2 constrains Depth for collections only; a file has no members.
        h.parse_depth(req.header("Depth"), h.INFINITY, ("0", h.INFINITY))
    else:
        allowed = (h.INFINITY,) if move else ("0", h.INFINITY)
        depth = h.parse_depth(req.header("Depth"), h.INFINITY, allowed)
    op = Transfer(
        source=req.path,
        destination=req.destination(),
        move=move,
        depth=depth,
        overwrite=h.parse_overwrite(req.header("Overwrite")),
    )
    check_preconditions(req, source)
    mtime_header = req.header("X-OC-Mtime")
    mtime = syncmeta.parse_mtime(mtime_header) if mtime_header is not None else None
    status, failures = transfer(services, guard, op)
    response = tree_response(services, req, (op.source, op.destination), failures, status)
    if mtime is not None and not failures:
        services.provider.set_mtime(op.destination, mtime)
        response.headers.append(("X-OC-Mtime", "accepted"))
    return response


def copy(services: Services, req: Request, guard: Guard) -> Response:
    return _run(services, req, guard, move=False)


def move(services: Services, req: Request, guard: Guard) -> Response:
    return _run(services, req, guard, move=True)
