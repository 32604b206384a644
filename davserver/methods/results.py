"""Turning the per-member results of a tree operation into one HTTP answer."""

from __future__ import annotations

from ..errors import DavError
from ..model import MemberStatus
from ..request import Request, Response
from ..xmlout import member_response, multistatus

MULTISTATUS_TYPE = ("Content-Type", 'application/xml; charset="utf-8"')


def member_error(member: MemberStatus) -> DavError:
    return DavError(
        member.message,
        status=member.status,
        condition=member.condition,
        hrefs=member.condition_paths,
    )


def tree_response(
    req: Request, targets: tuple[str, ...], failures: list[MemberStatus], ok_status: int
) -> Response:
    """`ok_status` when nothing failed; the failure itself when only a resource the request
    named (`targets`: the Request-URI, a Destination) failed; otherwise 207 Multi-Status naming
    each failed member (RFC 4918 9.6.1, 9.8.8, 9.9.4)."""
    if not failures:
        return Response(ok_status)
    if len(failures) == 1 and failures[0].path in targets:
        raise member_error(failures[0])
    body = multistatus(member_response(req.prefix, m) for m in failures)
    return Response(207, [MULTISTATUS_TYPE], body)
