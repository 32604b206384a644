"""Live properties: how each is computed from a resource, and which ones are protected.

A live property is computed from the one `Resource` a provider returned (no further stat),
plus, for lockdiscovery, a snapshot of the locks taken once per request. Every live property is
protected: a PROPPATCH that sets or removes one fails with 403
`<D:cannot-modify-protected-property/>` (RFC 4918 9.2, 15).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import paths
from .headers import http_date, quote_etag, rfc3339_date
from .model import Resource
from .store.base import Lock
from .xmlout import escape

D = "{DAV:}"
RESOURCETYPE = D + "resourcetype"
LOCKDISCOVERY = D + "lockdiscovery"
SUPPORTEDLOCK = D + "supportedlock"
QUOTA_AVAILABLE = D + "quota-available-bytes"
QUOTA_USED = D + "quota-used-bytes"

_SUPPORTEDLOCK = (
    "<D:supportedlock>"
    "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    "</D:lockentry>"
    "<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype>"
    "</D:lockentry></D:supportedlock>"
)


@dataclass(frozen=True, slots=True)
class LiveContext:
    """What computing live properties may need beyond the resource itself."""

    prefix: str
    locks: Iterable[Lock]
    now: float
    content_type: Callable[[Resource], str]
    quota: Callable[[str], tuple[int, int] | None]

    def __post_init__(self) -> None:
        # Both quota properties of a resource from one reading of the filesystem: read twice,
        # a write in between makes used + available differ from the disk's size.
        object.__setattr__(self, "quota", functools.lru_cache(maxsize=1)(self.quota))


Compute = Callable[[LiveContext, Resource], str | None]


def _resourcetype(_: LiveContext, r: Resource) -> str:
    if r.is_collection:
        return "<D:resourcetype><D:collection/></D:resourcetype>"
    return "<D:resourcetype/>"


def _displayname(_: LiveContext, r: Resource) -> str:
    return f"<D:displayname>{escape(paths.name(r.path))}</D:displayname>"


def _contentlength(_: LiveContext, r: Resource) -> str | None:
    return None if r.is_collection else f"<D:getcontentlength>{r.size}</D:getcontentlength>"


def _contenttype(ctx: LiveContext, r: Resource) -> str | None:
    if r.is_collection:
        return None
    return f"<D:getcontenttype>{escape(ctx.content_type(r))}</D:getcontenttype>"


def _lastmodified(_: LiveContext, r: Resource) -> str:
    return f"<D:getlastmodified>{http_date(r.mtime)}</D:getlastmodified>"


def _creationdate(_: LiveContext, r: Resource) -> str:
    return f"<D:creationdate>{rfc3339_date(r.ctime)}</D:creationdate>"


def _etag(_: LiveContext, r: Resource) -> str | None:
    return None if r.is_collection else f"<D:getetag>{escape(quote_etag(r.etag))}</D:getetag>"


def _supportedlock(_: LiveContext, r: Resource) -> str:
    return _SUPPORTEDLOCK


def _lockdiscovery(ctx: LiveContext, r: Resource) -> str:
    active = [lock for lock in ctx.locks if lock.covers(r.path)]
    if not active:
        return "<D:lockdiscovery/>"
    # A lock covering r from above is rooted at an ancestor, which is a collection.
    inner = "".join(
        activelock(ctx.prefix, lock, ctx.now, r.is_collection or lock.root != r.path)
        for lock in active
    )
    return f"<D:lockdiscovery>{inner}</D:lockdiscovery>"


def _quota(index: int, name: str) -> Compute:
    def compute(ctx: LiveContext, r: Resource) -> str | None:
        if not r.is_collection:
            return None
        figures = ctx.quota(r.path)
        return None if figures is None else f"<D:{name}>{figures[index]}</D:{name}>"

    return compute


def activelock(prefix: str, lock: Lock, now: float, root_is_collection: bool) -> str:
    """One `<D:activelock>` (RFC 4918 14.1), as in lockdiscovery and the LOCK answer."""
    owner = lock.owner or ""
    remaining = max(int(lock.expires - now), 0)
    root = paths.href(prefix, lock.root, root_is_collection)
    return (
        f"<D:activelock><D:locktype><D:write/></D:locktype>"
        f"<D:lockscope><D:{lock.scope}/></D:lockscope>"
        f"<D:depth>{'infinity' if lock.depth == 'infinity' else '0'}</D:depth>"
        f"{owner}<D:timeout>Second-{remaining}</D:timeout>"
        f"<D:locktoken><D:href>{escape(lock.token)}</D:href></D:locktoken>"
        f"<D:lockroot><D:href>{escape(root)}</D:href></D:lockroot></D:activelock>"
    )


# name -> (how to compute it, whether allprop reports it). Quota is only reported on request
# (RFC 4331 3: computing it may be expensive).
LIVE: dict[str, tuple[Compute, bool]] = {
    RESOURCETYPE: (_resourcetype, True),
    D + "displayname": (_displayname, True),
    D + "getcontentlength": (_contentlength, True),
    D + "getcontenttype": (_contenttype, True),
    D + "getlastmodified": (_lastmodified, True),
    D + "creationdate": (_creationdate, True),
    D + "getetag": (_etag, True),
    SUPPORTEDLOCK: (_supportedlock, True),
    LOCKDISCOVERY: (_lockdiscovery, True),
    QUOTA_AVAILABLE: (_quota(1, "quota-available-bytes"), False),
    QUOTA_USED: (_quota(0, "quota-used-bytes"), False),
}

ALLPROP = tuple(name for name, (_, in_allprop) in LIVE.items() if in_allprop)
# The same, with each property's function, for the loop that runs once per listed resource.
ALLPROP_COMPUTE = tuple((name, LIVE[name][0]) for name in ALLPROP)


def is_protected(name: str) -> bool:
    """Whether PROPPATCH may not set or remove `name`."""
    return name in LIVE or name == D + "getcontentlanguage"
