"""Turning the per-member results of a tree operation into one HTTP answer."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import DavError
from ..model import MemberStatus
from ..request import Request, Response
from ..services import Services
from ..xmlout import member_response, multistatus

MULTISTATUS_TYPE = ("Content-Type", 'application/xml; charset="utf-8"')


def collection_test(services: Services) -> Callable[[str], bool]:
    """Whether a path names a collection now (False for anything that does not exist): how
    hrefs that name other resources, such as a lock root, get their trailing slash."""

    def is_collection(path: str) -> bool:
        try:
            return services.provider.stat(path).is_collection
        except DavError:
            return False

    return is_collection


def member_error(member: MemberStatus) -> DavError:
    return DavError(
        member.message,
        status=member.status,
        condition=member.condition,
        hrefs=member.condition_paths,
    )


def tree_response(
    services: Services,
    req: Request,
    targets: tuple[str, ...],
    failures: list[MemberStatus],
    ok_status: int,
) -> Response:
    """`ok_status` when nothing failed; the failure itself when only a resource the request
    named (`targets`: the Request-URI, a Destination) failed; otherwise 207 Multi-Status naming
    each failed member (RFC 4918 9.6.1, 9.8.8, 9.9.4)."""
    if not failures:
        return Response(ok_status)
    if len(failures) == 1 and failures[0].path in targets:
        raise member_error(failures[0])
    is_collection = collection_test(services)
    body = multistatus(member_response(req.prefix, m, is_collection) for m in failures)
    return Response(207, [MULTISTATUS_TYPE], body)
