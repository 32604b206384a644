"""LOCK and UNLOCK (RFC 4918 9.10, 9.11): write locks kept in the lock store."""

from __future__ import annotations

import uuid

from .. import failpoints, paths, xmlin, xmlout
from .. import headers as h
from ..errors import (
    BadRequest,
    Conflict,
    DavError,
    Forbidden,
    Locked,
    MethodNotAllowed,
    PayloadTooLarge,
    PreconditionFailed,
)
from ..locking import Guard, existing_lock
from ..model import MemberStatus, Resource
from ..ordering import claimed
from ..props import activelock
from ..request import Request, Response
from ..services import Services
from ..store.base import Lock, LockConflict
from .results import MULTISTATUS_TYPE, collection_test
from .write import check_preconditions, conditions, forget_stale, stat_or_none

XML_TYPE = ("Content-Type", 'application/xml; charset="utf-8"')
# The largest <D:owner> kept, in bytes of its XML. Clients put a name, a mail address or a URL
# there (RFC 4918 14.17); every lockdiscovery repeats it for every member a lock covers, so a
# huge one would multiply into every listing of the folder.
MAX_OWNER = 4096


def granted_timeout(services: Services, requested: str | None) -> int:
    """The seconds granted: the default when none is asked, capped at the configured maximum
    (also for Infinite, so that a crashed client cannot hold a lock forever)."""
    config = services.config
    if requested is None:
        return min(config.lock_default_timeout, config.lock_max_timeout)
    seconds = h.parse_timeout(requested)
    if seconds is None:
        return config.lock_max_timeout
    return max(1, min(seconds, config.lock_max_timeout))


def _answer(
    req: Request, locks: list[Lock], now: float, status: int, is_collection: bool, new: bool
) -> Response:
    """The `<D:prop><D:lockdiscovery>` body; a new lock's token also in `Lock-Token`.

    `is_collection` describes the Request-URI; a lock rooted above it is on a collection.
    """
    discovery = "".join(
        activelock(req.prefix, lock, now, is_collection or lock.root != req.path) for lock in locks
    )
    body = xmlout.prop_document([f"<D:lockdiscovery>{discovery}</D:lockdiscovery>"])
    headers = [XML_TYPE, ("Content-Length", str(len(body)))]
    if new:
        headers.append(("Lock-Token", f"<{locks[0].token}>"))
    return Response(status, headers, [body])


def refresh(
    services: Services, req: Request, guard: Guard, timeout: int, resource: Resource | None
) -> Response:
    """A LOCK without a body: restart the timeout of the locks the If header names (and this
    user may use)."""
    if not guard.tokens:
        raise BadRequest("a LOCK without a body refreshes a lock and needs an If header")
    now = guard.now
    refreshed = []
    for lock in services.locks.covering(req.path, now):
        if guard.may_use(lock):
            renewed = services.locks.refresh(lock.token, timeout, now)
            if renewed is not None:
                refreshed.append(renewed)
    if not refreshed:
        raise PreconditionFailed(
            "no lock named in the If header covers this resource",
            condition="lock-token-matches-request-uri",
        )
    is_collection = resource is not None and resource.is_collection
    return _answer(req, refreshed, now, 200, is_collection, new=False)


def lock(services: Services, req: Request, guard: Guard) -> Response:
    timeout = granted_timeout(services, req.header("Timeout"))
    body = req.read_body(services.config.max_xml_body)
    if not body.strip():
        resource = stat_or_none(services, req.path)
        # If-Match: * is how a client says "lock only what exists" (RFC 4918 D.1).
        check_preconditions(req, resource)
        return refresh(services, req, guard, timeout, resource)
    info = xmlin.parse_lockinfo(body)
    if info.owner is not None and len(info.owner.encode("utf-8")) > MAX_OWNER:
        # 413: the body is well-formed (no 400) but holds more than the server will keep.
        raise PayloadTooLarge(f"<D:owner> is limited to {MAX_OWNER} bytes of XML")
    depth = h.parse_depth(req.header("Depth"), h.INFINITY, ("0", h.INFINITY))
    # Under a claim: a LOCK waits for a DELETE, MOVE or PUT in progress on the path (or above
    # or below it) and then locks what that left, never a resource about to vanish.
    with claimed(services, [req.path], intent={"op": "lock", "path": req.path}):
        return _grant(services, req, guard, timeout, info, depth)


def _grant(
    services: Services,
    req: Request,
    guard: Guard,
    timeout: int,
    info: xmlin.LockInfo,
    depth: str,
) -> Response:
    resource = stat_or_none(services, req.path)
    conditions(req, guard)(resource)
    if resource is None:
        parent = stat_or_none(services, paths.parent(req.path))
        if parent is None or not parent.is_collection:
            raise Conflict("the parent collection does not exist")
        guard.require_membership(req.path)
    now = guard.now
    new = Lock(
        token=f"urn:uuid:{uuid.uuid4()}",
        root=req.path,
        depth="0" if depth == "0" else "infinity",
        scope=info.scope,
        owner=info.owner,
        principal=req.user,
        timeout=timeout,
        expires=now + timeout,
    )
    try:
        services.locks.acquire(new, now)
    except LockConflict as conflict:
        return _conflict(services, req, conflict.lock)
    failpoints.hit("lock.acquired")
    created = False
    if resource is None:
        # RFC 4918 7.3: locking an unmapped URL creates an empty resource, answered 201; if a
        # file appeared meanwhile (written by another program), it is locked as it is, never
        # truncated.
        try:
            forget_stale(services, req.path)
            services.provider.write(req.path, [], create=True)
            created = True
        except MethodNotAllowed:
            resource = stat_or_none(services, req.path)
        except DavError:
            services.locks.release(new.token)
            raise
    is_collection = resource is not None and resource.is_collection
    return _answer(req, [new], now, 201 if created else 200, is_collection, new=True)


def _conflict(services: Services, req: Request, held: Lock) -> Response:
    if paths.is_ancestor(req.path, held.root):
        # RFC 4918 9.10.9: a member locked by someone else fails a depth-infinity lock; the
        # answer names that member (423) and the Request-URI (424).
        is_collection = collection_test(services)
        members = [
            MemberStatus(
                held.root,
                423,
                is_collection=is_collection(held.root),
                condition="no-conflicting-lock",
                message="a member is locked",
                condition_paths=(held.root,),
            ),
            MemberStatus(req.path, 424, is_collection=True, message="a member is locked"),
        ]
        body = xmlout.multistatus(
            xmlout.member_response(req.prefix, m, is_collection) for m in members
        )
        return Response(207, [MULTISTATUS_TYPE], body)
    raise Locked(
        f"{held.root} is already locked",
        condition="no-conflicting-lock",
        hrefs=(held.root,),
    )


def unlock(services: Services, req: Request, guard: Guard) -> Response:
    lock = existing_lock(services, req, req.path)
    if lock.principal is not None and lock.principal != req.user:
        raise Forbidden("only the user who made a lock may remove it")
    # Conditional headers stop UNLOCK like any method that changes state (RFC 9110 13.2.2).
    check_preconditions(req, stat_or_none(services, req.path))
    services.locks.release(lock.token)
    return Response(204)
