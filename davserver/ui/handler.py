"""The page for a collection and its assets.

Assets live at `?ui=NAME` on any collection: a query is never part of a file's path, so no
user's file can take their place. Their URLs in the page carry a hash of their content
(`&v=...`), so they can be cached for a year and still change with the server.
"""

from __future__ import annotations

import functools
import hashlib
import html
from importlib import resources

from .. import headers as h
from .. import paths
from ..errors import NotFound
from ..model import Resource
from ..request import Request, Response
from ..services import Services

# The page runs only its own script and style; it may talk to its own origin and nothing else,
# and no other site may frame it (clickjacking).
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
ASSETS = ("app.js", "app.css")


@functools.cache
def _asset(name: str) -> tuple[bytes, str]:
    """An asset's bytes and their hash (the ETag and the cache-busting version)."""
    data = resources.files(__package__).joinpath("static", name).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:16]


def wants_page(req: Request) -> bool:
    """Whether the client asked for HTML (a browser): WebDAV clients do not, and keep getting
    the plain listing."""
    for item in (req.header("Accept") or "").split(","):
        media, *params = (part.strip().lower() for part in item.split(";"))
        if media == "text/html" and not any(p.replace(" ", "") in ("q=0", "q=0.0") for p in params):
            return True
    return False


def asset(req: Request, name: str, head: bool) -> Response:
    """One of the page's files, cacheable for a year (its URL changes with its content)."""
    if name not in ASSETS:
        raise NotFound(f"the page has no asset {name!r}")
    data, digest = _asset(name)
    etag = f'"{digest}"'
    headers = [
        ("ETag", etag),
        ("Cache-Control", "public, max-age=31536000, immutable"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    cached = req.header("If-None-Match")
    if cached is not None and h.etag_in(cached, etag, weak=True, exists=True):
        return Response(304, headers)
    headers += [
        ("Content-Type", _TYPES[name[name.rfind(".") :]]),
        ("Content-Length", str(len(data))),
    ]
    return Response(200, headers, () if head else [data])


# The folder's JSON listing is preloaded: it comes while the script loads, and the script's
# fetch of the same URL (same mode and credentials as `crossorigin="anonymous"`) takes it.
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="?ui=app.css&amp;v={css}">
<link rel="preload" href="?list" as="fetch" crossorigin="anonymous">
<script type="module" src="?ui=app.js&amp;v={js}"></script>
</head>
<body data-root="{root}" data-writable="{writable}">
<noscript>This page needs JavaScript; WebDAV clients can open this address too.</noscript>
</body></html>
"""


def page(services: Services, req: Request, collection: Resource, head: bool) -> Response:
    """The file manager for `collection`; the script builds everything from the listing."""
    writable = not services.config.readonly and services.policy.allows(
        req.user, collection.path, "write"
    )
    body = _PAGE.format(
        title=html.escape(paths.name(collection.path) or req.href(paths.ROOT, True)),
        css=_asset("app.css")[1],
        js=_asset("app.js")[1],
        root=html.escape(req.href(paths.ROOT, True)),
        writable="true" if writable else "false",
    ).encode("utf-8")
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Content-Security-Policy", PAGE_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("Cache-Control", "no-cache"),
        # The same URL answers a WebDAV client with the plain listing.
        ("Vary", "Accept"),
    ]
    return Response(200, headers, () if head else [body])
