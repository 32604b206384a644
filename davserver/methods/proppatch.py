"""PROPPATCH (RFC 4918 9.2): every change applies, or none does."""

from __future__ import annotations

from collections.abc import Sequence

from .. import failpoints, syncmeta, xmlin, xmlout
from ..errors import BadRequest
from ..locking import Guard
from ..model import PropResponse, PropStat
from ..ordering import Held, claimed
from ..props import is_protected
from ..request import Request, Response
from ..services import Services
from .results import MULTISTATUS_TYPE
from .write import Precondition, check_preconditions, conditions, stat_or_none

PROTECTED = "cannot-modify-protected-property"


def apply_changes(
    services: Services,
    guard: Guard,
    path: str,
    changes: Sequence[xmlin.PropChange],
    precondition: Precondition | None = None,
) -> PropResponse:
    """Apply `changes` to the resource at `path` atomically and report each property.

    When any change is refused, nothing is stored: the refused ones carry their own status and
    every other one 424 Failed Dependency (RFC 4918 9.2). A value larger than an XML request
    body may be (`max_xml_body`) is refused with 413 whichever way it came (a JSON batch
    allows a larger body), so the one limit holds for every stored property. `precondition`
    is checked on the resource under the claim, before anything changes.
    """
    with claimed(services, [path], intent={"op": "proppatch", "path": path}) as held:
        if precondition is not None:
            precondition(stat_or_none(services, path))
        return _apply(services, guard, held, path, changes)


def _apply(
    services: Services,
    guard: Guard,
    held: Held,
    path: str,
    changes: Sequence[xmlin.PropChange],
) -> PropResponse:
    resource = services.provider.stat(path)
    guard.require(path)
    limit = services.config.max_xml_body
    refused: dict[str, int] = {}
    mtimes: list[float] = []
    for change in changes:
        if is_protected(change.name):
            refused[change.name] = 403
        elif change.value is not None and len(change.value.encode("utf-8")) > limit:
            refused[change.name] = 413
        elif change.value is not None:
            try:
                mtime = syncmeta.property_mtime(change.name, change.value)
            except BadRequest:
                refused[change.name] = 409  # RFC 4918 9.2: a value the server cannot accept
                continue
            if mtime is not None:
                mtimes.append(mtime)
    if not refused:
        kept = [(c.name, c.value) for c in changes if not syncmeta.stored_only_as_effect(c.name)]
        if mtimes:
            # Two stores change (the file's time, the properties): recorded first, so that a
            # crash between the two is finished by recovery, not left half done.
            held.note(changes=kept, mtime=mtimes[-1])
        # The time first: if that fails nothing has changed; if storing the properties then
        # fails, the old time is put back, so the PROPPATCH stays all or nothing.
        for mtime in mtimes:
            services.provider.set_mtime(path, mtime)
        failpoints.hit("proppatch.mtime-set")
        try:
            services.props.patch(path, kept)
        except BaseException:
            if mtimes:
                services.provider.set_mtime(path, resource.mtime)
            raise
    statuses: dict[int, PropStat] = {}
    seen: set[str] = set()
    for change in changes:
        if change.name in seen:
            continue
        seen.add(change.name)
        status = refused.get(change.name, 424 if refused else 200)
        if status not in statuses:
            condition = PROTECTED if status == 403 else None
            message = f"a property value is limited to {limit} bytes" if status == 413 else ""
            statuses[status] = PropStat(status, condition=condition, message=message)
        statuses[status].props.append((change.name, None))
    return PropResponse(resource.path, resource.is_collection, list(statuses.values()))


def proppatch(services: Services, req: Request, guard: Guard) -> Response:
    check_preconditions(req, stat_or_none(services, req.path))
    changes = xmlin.parse_propertyupdate(req.read_body(services.config.max_xml_body))
    response = apply_changes(services, guard, req.path, changes, conditions(req, guard))
    body = xmlout.multistatus([xmlout.prop_response(req.prefix, response)])
    return Response(207, [MULTISTATUS_TYPE], body)
