"""What a collection shows: the plain HTML page for WebDAV clients, the JSON listing the
browser's file manager reads (`?list`), and the one walk both share with the zip download."""

from __future__ import annotations

import html
import itertools
import json
import time
from collections.abc import Callable, Iterator

from . import paths
from .errors import BadRequest, Forbidden
from .model import Resource
from .request import Request, Response
from .services import Services
from .tree import count, walk

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{padding:0 1em}}td.n{{text-align:right}}</style>
</head><body><h1>{title}</h1><table>
<tr><th>Name</th><th>Size</th><th>Modified</th></tr>
{rows}</table></body></html>
"""
# The JSON listing leaves in pieces of about this size: cheroot flushes every piece it is given.
_CHUNK = 64 * 1024


def hidden(services: Services, path: str) -> bool:
    """Whether a member is left out of listings (not out of reach): Finder's `._*` and
    `.DS_Store` files when `hide_apple_metadata` is on."""
    if not services.config.hide_apple_metadata:
        return False
    name = paths.name(path)
    return name.startswith("._") or name == ".DS_Store"


def visible(services: Services, user: str | None, root: Resource, depth: str) -> Iterator[Resource]:
    """`root` and what is under it to `depth`, parents first, as a PROPFIND would show them:
    what the user may not read is left out and not entered, and so are hidden members."""
    policy = services.policy
    # One look at the rules usually shows the whole tree is readable: then no member is asked.
    everything = policy.allows_tree(user, root.path, "read")

    def shown(resource: Resource) -> bool:
        return (everything or policy.allows(user, resource.path, "read")) and not hidden(
            services, resource.path
        )

    for resource in walk(services.provider, root, depth, descend=shown):
        if shown(resource):
            yield resource


def count_visible(services: Services, user: str | None, root: Resource, limit: int) -> int:
    """How many resources `visible` would give to Depth infinity, stopping past `limit`.

    What the user may not read is not counted: it would make a bound refuse what the user
    may see, and tell by the refusal how much a forbidden folder holds. When the rules leave
    the whole tree readable, the provider counts it alone (a fast count)."""
    if services.policy.allows_tree(user, root.path, "read"):
        return count(services.provider, root, limit)
    return sum(1 for _ in itertools.islice(visible(services, user, root, "infinity"), limit + 1))


def at_most(members: Iterator[Resource], limit: int) -> Iterator[Resource]:
    """`members`, but the body breaks off past `limit`: the tree was counted before the first
    byte, yet it may grow while it is sent, and a walk must stay bounded all the same. The
    answer is cut rather than ended early, so the client sees it incomplete."""
    for index, member in enumerate(members):
        if index >= limit:
            raise Forbidden(f"more than {limit} resources: the tree grew while it was sent")
        yield member


def _members(
    services: Services, req: Request, collection: Resource, depth: str
) -> Iterator[Resource]:
    return (r for r in visible(services, req.user, collection, depth) if r.path != collection.path)


def collection_page(services: Services, req: Request, collection: Resource, head: bool) -> Response:
    """Members sorted by name, collections first; every name escaped."""
    members = sorted(
        _members(services, req, collection, "1"),
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


def collection_json(
    services: Services,
    req: Request,
    collection: Resource,
    depth: str,
    head: bool,
    type_of: Callable[[Resource], str],
) -> Response:
    """`?list` (the members) or `?list=infinity` (everything below): what the page needs of
    each, as JSON, which a browser reads many times faster than a PROPFIND's XML.

    `{"members": [{"path": "a/b.txt", "folder": false, "size": 3, "modified": 1700000000,
    "type": "text/plain"}, ...]}`, `path` relative to the collection, in no particular order.
    Depth infinity is bounded like PROPFIND's (`max_propfind_resources`), before the first byte.
    """
    if depth not in ("", "1", "infinity"):
        raise BadRequest(f"list= takes 1 or infinity, not {depth!r}")
    depth = depth or "1"
    members = _members(services, req, collection, depth)
    if depth == "infinity":
        limit = services.config.max_propfind_resources
        if count_visible(services, req.user, collection, limit) > limit:
            raise Forbidden(f"more than {limit} resources below this folder; list fewer at once")
        members = at_most(members, limit)
    headers = [
        ("Content-Type", "application/json"),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-store"),
    ]
    if head:
        return Response(200, headers)
    return Response(200, headers, _json(members, collection, type_of))


# A string as JSON (the encoder's fast path for str): names from disk go out escaped.
_string = json.JSONEncoder().encode


def _json(
    members: Iterator[Resource], collection: Resource, type_of: Callable[[Resource], str]
) -> Iterator[bytes]:
    # Written by hand: json.dumps per member took 40 ms of 10,000 members, this takes 6 ms.
    cut = len(paths.child(collection.path, ""))  # the members' paths start with this much
    parts = ['{"members":[']
    size = 0
    separator = ""
    for member in members:
        modified = int(member.mtime)
        if member.is_collection:
            tail = f'"folder":true,"size":0,"modified":{modified},"type":""}}'
        else:
            kind = _string(type_of(member))
            tail = f'"folder":false,"size":{member.size},"modified":{modified},"type":{kind}}}'
        text = f'{separator}{{"path":{_string(member.path[cut:])},{tail}'
        separator = ","
        parts.append(text)
        size += len(text)
        if size >= _CHUNK:
            yield "".join(parts).encode()
            parts.clear()
            size = 0
    parts.append("]}")
    yield "".join(parts).encode()
