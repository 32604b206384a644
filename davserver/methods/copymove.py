"""COPY and MOVE (RFC 4918 9.8, 9.9)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import headers as h
from .. import paths, syncmeta, transfers
from ..errors import Conflict, Forbidden, NotFound, PreconditionFailed
from ..locking import Guard
from ..model import MemberStatus
from ..ordering import claimed
from ..provider.base import LinkResolver
from ..request import Request, Response
from ..services import Services
from ..tree import allow_all
from .results import tree_response
from .write import Precondition, conditions, stat_or_none


@dataclass(frozen=True, slots=True)
class Transfer:
    """A COPY or MOVE as plain values: what the WebDAV method and a batch item both run."""

    source: str
    destination: str
    move: bool
    depth: str = h.INFINITY
    overwrite: bool = True
    mtime: float | None = None  # X-OC-Mtime: the date the destination gets


def transfer(
    services: Services, guard: Guard, op: Transfer, precondition: Precondition | None = None
) -> tuple[int, list[MemberStatus]]:
    """Run a COPY or MOVE; the success status (201 new, 204 replaced) and the failed members.

    Whole-request failures are raised: 404 no source, 403 same resource or a tree into itself,
    409 no parent at the destination, 412 an existing destination with Overwrite F (or a
    failed `precondition` on the source), 423 locks. Everything from the first look to the
    last change runs under one claim on both paths (`davserver.ordering`), so two transfers
    that meet run one after the other, and a replaced destination is kept until the transfer
    succeeded (`davserver.transfers`).
    """
    dst = op.destination
    exclusive = [dst, op.source] if op.move else [dst]
    shared = [] if op.move else [op.source]
    with claimed(services, exclusive, shared) as held:
        provider = services.provider
        source = stat_or_none(services, op.source)
        if precondition is not None:
            precondition(source)
        if source is None:
            raise NotFound(f"{op.source} does not exist")
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
            # RFC 4918 9.8.4 / 9.9.3: an overwrite replaces the destination, as a DELETE
            # would, so every lock in it must be held by this request.
            guard.require_tree(dst)
        else:
            guard.require(dst)  # a lock on the unmapped destination URL
        steps = transfers.plan(services, op.source, dst, op.move, op.depth, existing is not None)
        source_check = guard.tree_check(op.source) if op.move else allow_all
        failures = transfers.run(services, held, steps, source, existing, source_check)
        if op.mtime is not None and not failures:
            provider.set_mtime(dst, op.mtime)
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
    mtime_header = req.header("X-OC-Mtime")
    op = Transfer(
        source=req.path,
        destination=req.destination(),
        move=move,
        depth=depth,
        overwrite=h.parse_overwrite(req.header("Overwrite")),
        mtime=syncmeta.parse_mtime(mtime_header) if mtime_header is not None else None,
    )
    status, failures = transfer(services, guard, op, conditions(req, guard))
    response = tree_response(services, req, (op.source, op.destination), failures, status)
    if op.mtime is not None and not failures:
        response.headers.append(("X-OC-Mtime", "accepted"))
    return response


def copy(services: Services, req: Request, guard: Guard) -> Response:
    return _run(services, req, guard, move=False)


def move(services: Services, req: Request, guard: Guard) -> Response:
    return _run(services, req, guard, move=True)
