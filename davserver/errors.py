"""One exception type for every failure that has an HTTP answer.

Errors are raised as `DavError` where they are found (provider, parser, lock check) and turned
into a response in exactly one place (`app.py`) or, inside a multi-resource operation, into one
member's entry of a 207 Multi-Status.
"""

from __future__ import annotations

import functools
from http import HTTPStatus


class DavError(Exception):
    """A failure with an HTTP status, an optional RFC 4918 precondition and a reason.

    `condition` is the local name of a DAV: precondition or postcondition element
    (RFC 4918 section 16), rendered as `<D:error><D:{condition}/></D:error>`. `hrefs` are
    provider paths that the condition element names (for example the locked resource of
    `lock-token-submitted`). `headers` are added to the error response (Allow on a 405,
    Content-Range on a 416).
    """

    status: int = 500

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        condition: str | None = None,
        hrefs: tuple[str, ...] = (),
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        self.message = message or HTTPStatus(self.status).phrase
        self.condition = condition
        self.hrefs = hrefs
        self.headers = headers or []
        super().__init__(self.message)


class BadRequest(DavError):
    status = 400


class Unauthorized(DavError):
    """401. Its challenges depend on the connection (Basic is offered over HTTPS only), so
    the app adds them where the response is made; `stale` marks an expired Digest nonce."""

    status = 401

    def __init__(self, message: str, *, stale: bool = False) -> None:
        super().__init__(message)
        self.stale = stale


class Forbidden(DavError):
    status = 403


class NotFound(DavError):
    status = 404


class MethodNotAllowed(DavError):
    status = 405


class Conflict(DavError):
    """409: typically a missing parent collection."""

    status = 409


class PreconditionFailed(DavError):
    status = 412


class PayloadTooLarge(DavError):
    status = 413


class UnsupportedMediaType(DavError):
    status = 415


class RangeNotSatisfiable(DavError):
    status = 416


class Locked(DavError):
    status = 423


class BadGateway(DavError):
    """502: a Destination on another server (RFC 4918 9.8.5)."""

    status = 502


class InsufficientStorage(DavError):
    status = 507


@functools.cache
def status_line(status: int) -> str:
    """`"404 Not Found"` for 404; the WSGI status string and the `<D:status>` text."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"{status} {phrase}"
