"""The WSGI application: request in, handler, response out, one log line.

This is the one place where a `DavError` becomes an HTTP answer and where an unexpected
exception becomes a 500 whose traceback goes to the log, never to the client.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit

from . import auth, logs, paths, xmlout
from .errors import (
    BadRequest,
    DavError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
    UnsupportedMediaType,
    status_line,
)
from .locking import Guard
from .methods import batch, copymove, lock, propfind, proppatch, read, write
from .methods.results import collection_test
from .origin import foreign, resolve, strip_prefix
from .provider.base import ReadStream
from .request import Request, Response
from .services import Services

log = logging.getLogger("davserver")

Handler = Callable[[Services, Request, Guard], Response]
StartResponse = Callable[..., Any]

HANDLERS: dict[str, Handler] = {
    "OPTIONS": lambda s, r, g: read.options(s, r),
    "GET": lambda s, r, g: read.get(s, r),
    "HEAD": lambda s, r, g: read.head(s, r),
    "PUT": write.put,
    "MKCOL": write.mkcol,
    "DELETE": write.delete,
    "COPY": copymove.copy,
    "MOVE": copymove.move,
    "PROPFIND": propfind.propfind,
    "PROPPATCH": proppatch.proppatch,
    "LOCK": lock.lock,
    "UNLOCK": lock.unlock,
    "POST": batch.post,
}

# Methods that change nothing; everything else is refused on a read-only share.
SAFE_METHODS = frozenset({"OPTIONS", "GET", "HEAD", "PROPFIND"})
# Methods for which RFC 4918 defines no request body: a body there would be ignored, which
# 8.4 forbids (415); 9.3 says it again for MKCOL.
BODILESS_METHODS = frozenset({"MKCOL", "DELETE", "COPY", "MOVE", "UNLOCK"})


# Request headers (as environ keys) that only the general path reads, for a GET of a file:
# preconditions (RFC 9110 13.1), ranges (14.2), RFC 4918's If (10.4), credentials, and a
# body's framing (a GET's body is left unread there, and the connection closed).
_NOT_PLAIN = frozenset(
    {
        "HTTP_IF",
        "HTTP_IF_MATCH",
        "HTTP_IF_NONE_MATCH",
        "HTTP_IF_MODIFIED_SINCE",
        "HTTP_IF_UNMODIFIED_SINCE",
        "HTTP_IF_RANGE",
        "HTTP_RANGE",
        "HTTP_AUTHORIZATION",
        "CONTENT_LENGTH",
        "HTTP_TRANSFER_ENCODING",
    }
)


class DavApp:
    """A WSGI callable serving one `Services` bundle; `shortcut` answers plain GETs for an
    engine that offers it a request's parsed head (davserver.llhttpd)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        site = services.site
        # Behind a trusted proxy the client (for the log) comes from forwarded headers, and
        # in keep mode the target carries the prefix: both are the general path's to read.
        # On S3 a miss (a 404, a folder) would cost its round trips twice.
        self._shortcuts = (
            not site.trusted
            and not (site.mode == "keep" and site.prefix)
            and services.provider.local_lookups
        )

    def shortcut(
        self, method: str, target: str, fields: Mapping[str, str], peer: str
    ) -> tuple[str, list[tuple[str, str]], ReadStream] | None:
        """The answer to a plain GET (a whole file, asked for by origin-form target without
        a query or a trailing slash, with none of `_NOT_PLAIN`'s headers, by an anonymous
        client allowed to read it) as status, headers and the open file; None for any other
        request, which the WSGI call then answers.

        The general path builds an environ, a Request, a Guard and a Response for each
        request, and for a small GET that cost as much CPU as the read itself (bench/
        RESULTS.md, "Plain reads"). The headers come from the same function as there
        (`read.whole_file_headers`); any error is left to the general path to answer."""
        if (
            method != "GET"
            or not self._shortcuts
            or not target.startswith("/")
            # A collection's own URL (RFC 4918 5.2): its listing is the general path's, and
            # the shortcut would open the folder only to give up (on S3, two more HEADs).
            or target.endswith("/")
            or "?" in target
            or "#" in target
            or not _NOT_PLAIN.isdisjoint(fields)
        ):
            return None
        started = time.perf_counter()
        services = self.services
        try:
            path = paths.url_to_path(target)
            needs = auth.needs(method, path, _no_destination)
            auth.require(services.policy, services.authenticator, None, needs)
            resource, stream = services.provider.open_read(path)
        except Exception:
            return None  # answered by the general path, as it always was (errors included)
        try:
            headers = _header_safe(read.whole_file_headers(resource))
        except Exception:
            stream.close()
            return None
        if logs.access_wanted():
            logs.access(_access_line(peer, None, method, target, 200, resource.size, started, ""))
        return "200 OK", headers, stream

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        req: Request | None = None
        try:
            req = self._request(environ)
            response = self._dispatch(req)
        except DavError as exc:
            response = self._error(req, exc)
        except Exception:
            log.exception(
                "unhandled error in %s %s",
                environ.get("REQUEST_METHOD"),
                environ.get("REQUEST_URI", environ.get("PATH_INFO")),
            )
            message = b"Internal server error; the details are in the server log.\n"
            response = Response(
                500,
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(message))),
                ],
                [message],
            )
        headers = _header_safe(response.headers)
        if _needs_zero_length(response, headers):
            # Without it an empty answer would be sent chunked or read until EOF.
            headers.append(("Content-Length", "0"))
        closing = ("Connection", "close") in headers
        if not closing and (req is None or not req.body_consumed) and _declares_body(environ):
            # The body was refused unread: close rather than let the server read (and throw
            # away) what may be gigabytes, or mistake a chunked body for the next request.
            headers.append(("Connection", "close"))
        body: Iterable[bytes] = response.body
        if environ.get("REQUEST_METHOD") == "HEAD":
            body = ()
        start_response(status_line(response.status), headers)
        if not logs.access_wanted():
            return body
        logged = _Logged(body, environ, req, response, started)
        if response.file_wrapper and body is response.body:
            # Handed to the server as is, so it can send the file itself; the access line is
            # written now, with the length the headers promise.
            logged.sent = int(dict(headers).get("Content-Length", "0"))
            logged.log()
            return body
        return logged

    def _request(self, environ: dict[str, Any]) -> Request:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        site = self.services.site
        origin = resolve(site, environ)
        script_name = environ.get("SCRIPT_NAME")
        script = _quoted_script(str(script_name)) if script_name else ""
        raw = environ.get("REQUEST_URI")
        if raw is None:
            # Servers other than cheroot may not pass the raw target; re-encode PATH_INFO,
            # which already lies below SCRIPT_NAME.
            info = str(environ.get("PATH_INFO", "/")).encode("latin-1").decode("utf-8", "replace")
            raw_path: str | None = quote(info)
        else:
            if "#" in raw:
                raise BadRequest("a request target may not contain a fragment ('#')")
            raw_path = urlsplit(raw).path if not raw.startswith("/") else raw.split("?", 1)[0]
            raw_path = strip_prefix(raw_path, script)
        if raw_path is not None and site.mode == "keep":
            raw_path = strip_prefix(raw_path, origin.prefix)
        if raw_path is None:
            raise NotFound("outside the path this server answers for")
        if script:
            origin = replace(origin, prefix=origin.prefix + script)
        path = paths.url_to_path(raw_path)
        req = Request(environ, method, path, origin, slash=raw_path.endswith("/"))
        req.check_framing()
        return req

    def _dispatch(self, req: Request) -> Response:
        handler = HANDLERS.get(req.method)
        if handler is None:
            raise MethodNotAllowed(
                f"{req.method} is not supported", headers=[("Allow", read.DAV_METHODS)]
            )
        # A JSON batch may be made of reads only: batch.post refuses one with any change.
        readonly = self.services.config.readonly
        if readonly and req.method not in SAFE_METHODS and not batch.is_batch(req):
            raise Forbidden("this share is read-only")
        if req.method not in SAFE_METHODS and foreign(req.header("Origin"), req.origin):
            # A page on another site may make the browser send a request with the user's
            # credentials (cross-site request forgery): nothing changes for it.
            raise Forbidden("a request from another site's page may not change anything here")
        if req.method != "OPTIONS":
            # OPTIONS is answered to anyone: Explorer and Office give up on a 401 there.
            self._authorize(req)
        if req.method in BODILESS_METHODS and req.has_body():
            raise UnsupportedMediaType(f"{req.method} with a request body is not supported")
        guard = Guard(self.services, req)
        guard.check_if_header()
        return handler(self.services, req, guard)

    def _authorize(self, req: Request) -> None:
        services = self.services
        authenticator = services.authenticator
        if authenticator is not None:
            header = req.header("Authorization")
            secure = req.origin.scheme == "https"
            req.user = authenticator.identify(req.method, req.is_request_uri, header, secure)
        # A LOCK without a body is a refresh (RFC 4918 9.10.2). (lock.py also takes a body of
        # blanks for one; such a request is checked as a new lock here: stricter, never looser.)
        refresh = req.method == "LOCK" and not req.has_body()
        needs = auth.needs(req.method, req.path, req.destination, req.header("Depth"), refresh)
        auth.require(services.policy, authenticator, req.user, needs)

    def _error(self, req: Request | None, exc: DavError) -> Response:
        if exc.status == 500:
            log.error("%s", exc.message)
        authenticator = self.services.authenticator
        offers: list[tuple[str, str]] = []
        if isinstance(exc, Unauthorized) and authenticator is not None:
            secure = req is not None and req.origin.scheme == "https"
            offers = authenticator.challenges(exc.stale, secure)
            if not offers:
                # Basic only, over plain HTTP: a 401 must offer a scheme (RFC 9110 11.6.1),
                # and none is usable on this connection.
                exc = Forbidden(
                    "log in over HTTPS: Basic authentication is offered over HTTPS only "
                    "(RFC 4918 section 20.1)"
                )
        headers = list(exc.headers) + offers
        if exc.condition is not None:
            hrefs = [self._href(req, p) for p in exc.hrefs]
            body = xmlout.error_body(exc.condition, hrefs)
            headers.append(("Content-Type", 'application/xml; charset="utf-8"'))
        else:
            body = (exc.message + "\n").encode("utf-8")
            headers.append(("Content-Type", "text/plain; charset=utf-8"))
        if exc.status == 304:
            body = b""
        headers.append(("Content-Length", str(len(body))))
        return Response(exc.status, headers, [body] if body else [])

    def _href(self, req: Request | None, path: str) -> str:
        prefix = req.prefix if req is not None else ""
        return paths.href(prefix, path, collection_test(self.services)(path))


@functools.lru_cache(maxsize=16)  # the few mount points a WSGI server gives
def _quoted_script(script_name: str) -> str:
    return quote(script_name.encode("latin-1").decode("utf-8")).rstrip("/")


def _declares_body(environ: dict[str, Any]) -> bool:
    length = str(environ.get("CONTENT_LENGTH") or "0")
    chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
    return chunked or length not in ("", "0")


def _needs_zero_length(response: Response, headers: list[tuple[str, str]]) -> bool:
    if not isinstance(response.body, tuple | list) or response.body:
        return False
    if response.status in (204, 304):
        return False
    return not any(k.lower() == "content-length" for k, _ in headers)


def _header_safe(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A copy of `headers` in which nothing from a request or a file name can split a header
    (response splitting)."""
    values = "".join([value for _, value in headers])
    if "\r" not in values and "\n" not in values:
        return list(headers)
    return [(name, _one_line(value)) for name, value in headers]


def _one_line(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


class _Logged:
    """The response body, counted as it is sent; logs one access line when closed."""

    def __init__(
        self,
        body: Iterable[bytes],
        environ: dict[str, Any],
        req: Request | None,
        response: Response,
        started: float,
    ) -> None:
        self.body = body
        self.environ = environ
        self.req = req
        self.status = response.status
        self.note = f" {response.log_note}" if response.log_note else ""
        self.started = started
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()
        self.log()

    def log(self) -> None:
        env = self.environ
        user = self.req.user if self.req is not None else None
        client = self.req.origin.client if self.req is not None else env.get("REMOTE_ADDR")
        target = str(env.get("REQUEST_URI") or env.get("PATH_INFO", ""))
        method = str(env.get("REQUEST_METHOD", "-"))
        logs.access(
            _access_line(
                str(client or ""),
                user,
                method,
                target,
                self.status,
                self.sent,
                self.started,
                self.note,
            )
        )


def _access_line(
    client: str,
    user: str | None,
    method: str,
    target: str,
    status: int,
    sent: int,
    started: float,
    note: str,
) -> str:
    """One request's access line; `note` ends it (a space first)."""
    elapsed = time.perf_counter() - started
    return (
        f"{_logged(client or '-', _LOGGED_CLIENT)} {user or '-'} "
        f'"{method} {_logged(target, _LOGGED_TARGET)}" {status} {sent} {elapsed:.3f}s{note}'
    )


def _no_destination() -> str:
    raise AssertionError("a GET has no Destination")


# The most characters of a request target and of a client's address in an access line, so
# that a line stays within PIPE_BUF (4096 bytes), the most the kernel writes to a pipe in one
# piece: a longer one was spliced with other worker processes' lines when the log's reader
# fell behind, and what a client sent began a line of its own.
_LOGGED_TARGET = 2000
_LOGGED_CLIENT = 200
# What a client sent is logged as nginx logs it: `"` and `\` (which would end or blur the
# quoted request), control characters (ESC sequences can make a terminal rewrite what it
# shows; cheroot lets ESC, DEL and NUL through) and non-ASCII as \xHH.
_LOG_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f-\U0010ffff]')


def _logged(text: str, longest: int) -> str:
    """`text` from a client as an access line shows it: escaped, cut to `longest`."""
    cut = len(text) > longest
    text = text[:longest]
    if _LOG_UNSAFE.search(text) is not None:
        # Latin-1 in the environ (WSGI): each character is a byte as it was sent.
        raw = text.encode("latin-1", "backslashreplace")
        text = "".join(
            [chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02X}" for b in raw]
        )
        cut = cut or len(text) > longest
        text = text[:longest]
    return text + "..." if cut else text


def create_app(services: Services) -> DavApp:
    return DavApp(services)
