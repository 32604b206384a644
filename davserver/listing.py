"""The HTML page for GET on a collection: a plain, escaped listing."""

from __future__ import annotations

import html
import time

from . import paths
from .model import Resource
from .request import Request, Response
from .services import Services

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{padding:0 1em}}td.n{{text-align:right}}</style>
</head><body><h1>{title}</h1><table>
<tr><th>Name</th><th>Size</th><th>Modified</th></tr>
{rows}</table></body></html>
"""


def hidden(services: Services, path: str) -> bool:
    """Whether a member is left out of listings (not out of reach): Finder's `._*` and
    `.DS_Store` files when `hide_apple_metadata` is on."""
    if not services.config.hide_apple_metadata:
        return False
    name = paths.name(path)
    return name.startswith("._") or name == ".DS_Store"


def collection_page(services: Services, req: Request, collection: Resource, head: bool) -> Response:
    """Members sorted by name, collections first; every name escaped."""
    readable = (
        r
        for r in services.provider.children(collection.path)
        if services.policy.allows(req.user, r.path, "read") and not hidden(services, r.path)
    )
    members = sorted(
        readable,
        key=lambda r: (not r.is_collection, paths.name(r.path).lower()),
    )
    rows = []
    if collection.path != paths.ROOT:
        parent = req.href(paths.parent(collection.path), True)
        rows.append(f'<tr><td><a href="{html.escape(parent)}">../</a></td><td></td><td></td></tr>')
    for member in members:
        name = paths.name(member.path) + ("/" if member.is_collection else "")
        size = "" if member.is_collection else str(member.size)
        modified = time.strftime("%Y-%m-%d %H:%M", time.gmtime(member.mtime))
        rows.append(
            f'<tr><td><a href="{html.escape(req.href(member.path, member.is_collection))}">'
            f'{html.escape(name)}</a></td><td class="n">{size}</td><td>{modified}</td></tr>'
        )
    title = html.escape("Index of " + req.href(collection.path, True))
    body = _PAGE.format(title=title, rows="\n".join(rows)).encode("utf-8")
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(body))),
        # A browser gets the file manager at the same URL (davserver/ui).
        ("Vary", "Accept"),
    ]
    return Response(200, headers, () if head else [body])
