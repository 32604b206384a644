"""PROPFIND (RFC 4918 9.1): properties of many resources, streamed as they are walked.

Everything that can fail the whole request (a missing resource, a bad body, Depth, the
infinity limit) is checked before the first byte; after that, each resource's own failure
becomes its own `<D:response>` and the document stays well-formed.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Collection, Iterator, Sequence

from .. import headers as h
from .. import paths, xmlin, xmlout
from ..errors import DavError, Forbidden
from ..listing import hidden
from ..locking import Guard
from ..model import PropResponse, PropStat, Resource
from ..props import ALLPROP, ALLPROP_COMPUTE, LIVE, LiveContext
from ..request import Request, Response
from ..services import Services
from ..store.base import PropertyStore
from ..tree import count, walk
from ..xmlnames import property_name_problem
from .read import content_type
from .results import MULTISTATUS_TYPE

# Resources walked ahead of the answer, whose dead properties are read in one query: bounds
# the memory a listing holds, and its queries to one per page.
PAGE = 100


class DeadProperties:
    """Dead properties for the resources of one walk, asking the store only about members
    that have any (one query per collection), so a listing of plain files costs no lookups.

    This is where stored properties enter every answer (PROPFIND, and the batch's propfind),
    so a listing stays well-formed whatever the store holds: a property stored under a name
    XML cannot carry (a JSON batch once took any name; `xmlnames.property_name_problem` says
    which) is left out, as if absent, since its stored element is not XML either. It can
    still be removed by name with a batch proppatch, whose `remove` takes any name.
    """

    _REMEMBERED = 128

    def __init__(self, store: PropertyStore, root: str) -> None:
        self.store = store
        self.root = root
        self._members: OrderedDict[str, set[str]] = OrderedDict()
        # Name -> whether XML can carry it; the members of a folder mostly share their names.
        self._listable: dict[str, bool] = {}
        # The properties of the page of resources being answered (`prefetch`), for `names`.
        self._page: dict[str, dict[str, str]] = {}
        self._page_names: tuple[str, ...] | None = None

    def prefetch(self, paths_: Sequence[str], names: Collection[str] | None) -> None:
        """Read the properties of a page of resources in one query (a store over the network
        costs a round trip per query); `get` with the same `names` then answers from it. A
        failure leaves each resource to ask for itself, and so to fail on its own."""
        wanted = [p for p in paths_ if self.has_any(p)]
        self._page, self._page_names = {}, None
        if len(wanted) < 2:
            return
        key = None if names is None else tuple(names)
        try:
            found = self.store.get_many(wanted, key)
        except DavError:
            return
        self._page = {p: found.get(p, {}) for p in wanted}
        self._page_names = key

    def has_any(self, path: str) -> bool:
        """Whether the resource may have dead properties (the root is always asked)."""
        if path == self.root:
            return True
        parent = paths.parent(path)
        members = self._members.get(parent)
        if members is None:
            members = self.store.members_with_properties(parent)
            self._members[parent] = members
            if len(self._members) > self._REMEMBERED:
                self._members.popitem(last=False)
        return path in members

    def get(self, path: str, names: Collection[str] | None = None) -> dict[str, str]:
        if not self.has_any(path):
            return {}
        found = self._page.get(path)
        if found is None or (None if names is None else tuple(names)) != self._page_names:
            found = self.store.get(path, names)
        return {n: v for n, v in found.items() if self._is_listable(n)}

    def _is_listable(self, name: str) -> bool:
        listable = self._listable.get(name)
        if listable is None:
            listable = self._listable[name] = property_name_problem(name) is None
        return listable


def plain_allprop(prefix: str, resource: Resource, live: LiveContext) -> str:
    """The `<D:response>` of an allprop for a resource with no dead properties: the same text
    `collect` + `xmlout.prop_response` give (a test holds them equal), without building the
    result objects, which cost a quarter of a large listing."""
    href = xmlout.escape(paths.href(prefix, resource.path, resource.is_collection))
    computes = COLLECTION_ALLPROP if resource.is_collection else FILE_ALLPROP
    inner = "".join([compute(live, resource) or "" for compute in computes])
    return (
        f"<D:response><D:href>{href}</D:href><D:propstat><D:prop>{inner}</D:prop>"
        "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
    )


# The allprop properties that exist for each kind of resource, in ALLPROP order.
_PROBE_FILE = Resource("/f", False, 0, 0.0, 0.0, "e")
_PROBE_COLLECTION = Resource("/c", True, 0, 0.0, 0.0, "e")
_PROBE_CONTEXT = LiveContext("", (), 0.0, lambda r: "x", lambda p: None)
FILE_ALLPROP = tuple(c for _, c in ALLPROP_COMPUTE if c(_PROBE_CONTEXT, _PROBE_FILE) is not None)
COLLECTION_ALLPROP = tuple(
    c for _, c in ALLPROP_COMPUTE if c(_PROBE_CONTEXT, _PROBE_COLLECTION) is not None
)


def dead_names(request: xmlin.Propfind) -> list[str] | None:
    """The dead properties `collect` asks for: the named ones that are not live, or all."""
    if request.kind == "prop":
        return [n for n in request.names if n not in LIVE]
    return None


def collect(
    request: xmlin.Propfind,
    resource: Resource,
    live: LiveContext,
    dead: DeadProperties,
    minimal: bool,
) -> PropResponse:
    """One resource's properties, grouped by status (found: 200, unknown: 404)."""
    found: list[tuple[str, str | None]] = []
    missing: list[tuple[str, str | None]] = []
    if request.kind == "prop":
        dead_values = dead.get(resource.path, dead_names(request))
        for name in request.names:
            entry = LIVE.get(name)
            value = entry[0](live, resource) if entry else dead_values.get(name)
            (found if value is not None else missing).append((name, value))
    elif request.kind == "allprop":
        for name, compute in ALLPROP_COMPUTE:
            value = compute(live, resource)
            if value is not None:
                found.append((name, value))
        found.extend(dead.get(resource.path).items())
        for name in request.names:
            entry = LIVE.get(name)
            if entry is not None and name not in ALLPROP:
                value = entry[0](live, resource)
                (found if value is not None else missing).append((name, value))
    else:
        found = [(n, None) for n, (f, _) in LIVE.items() if f(live, resource) is not None]
        found.extend((n, None) for n in dead.get(resource.path))
    propstats = [PropStat(200, found)] if found else []
    if missing and not minimal:
        propstats.append(PropStat(404, missing))
    if not propstats:
        # A response needs a propstat or a status (RFC 4918 14.24); an empty 200 says "none".
        propstats.append(PropStat(200, []))
    return PropResponse(resource.path, resource.is_collection, propstats)


def propfind(services: Services, req: Request, guard: Guard) -> Response:
    depth = h.parse_depth(req.header("Depth"), h.INFINITY, ("0", "1", h.INFINITY))
    request = xmlin.parse_propfind(req.read_body(services.config.max_xml_body))
    prefs = h.parse_prefer(req.header("Prefer"), req.header("Brief"))
    provider = services.provider
    root = provider.stat(req.path)
    if depth == h.INFINITY and root.is_collection:
        limit = services.config.max_propfind_resources
        if count(provider, root, limit) > limit:
            raise Forbidden(
                f"Depth: infinity would report more than {limit} resources",
                condition="propfind-finite-depth",
            )
    now = services.clock()
    if depth == "0":
        locks = services.locks.covering(root.path, now)
    else:
        locks = services.locks.around(root.path, now)
    live = LiveContext(req.prefix, locks, now, content_type, provider.quota)
    dead = DeadProperties(services.props, root.path)
    minimal = prefs.minimal

    policy, user = services.policy, req.user
    # One look at the rules usually shows the whole tree is readable: then no member is asked.
    everything = policy.allows_tree(user, root.path, "read")

    def readable(resource: Resource) -> bool:
        return everything or policy.allows(user, resource.path, "read")

    hide = services.config.hide_apple_metadata
    plain = request.kind == "allprop" and not request.names

    def page_by_page() -> Iterator[Resource]:
        """The resources to answer, their dead properties read a page at a time."""
        resources = walk(provider, root, depth, None if everything else readable)
        if prefs.no_root and depth != "0":
            next(resources)
        names = dead_names(request)
        while page := list(itertools.islice(resources, PAGE)):
            page = [r for r in page if not (hide and r is not root and hidden(services, r.path))]
            dead.prefetch([r.path for r in page], names)
            yield from page

    def responses() -> Iterator[str]:
        for resource in page_by_page():
            try:
                if not everything and not readable(resource):
                    raise Forbidden("access to this resource is refused")
                if plain and not dead.has_any(resource.path):
                    yield plain_allprop(req.prefix, resource, live)
                    continue
                response = collect(request, resource, live, dead, minimal)
            except DavError as exc:
                response = PropResponse(
                    resource.path, resource.is_collection, status=exc.status, message=exc.message
                )
            yield xmlout.prop_response(req.prefix, response)

    headers = [MULTISTATUS_TYPE, *req.content_location(root.is_collection)]
    applied = [p for p, on in (("return=minimal", minimal), ("depth-noroot", prefs.no_root)) if on]
    if applied and req.header("Prefer") is not None:
        headers.append(("Preference-Applied", ", ".join(applied)))
    headers.append(("Vary", "Brief, Prefer"))
    return Response(207, headers, xmlout.multistatus(responses()))
