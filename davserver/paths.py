"""URL paths <-> provider paths, both ways, as pure functions.

A *provider path* is the server's own name for a resource: `/` for the shared root, otherwise
`/seg/seg` with no trailing slash, each segment a decoded Unicode string that is never empty,
`.` or `..` and contains no `/`, `\\` or NUL. Every path that reaches a provider has been through
`url_to_path`, so providers can join segments without re-checking them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Container, Iterator
from urllib.parse import quote, unquote_to_bytes

from .errors import BadRequest, Forbidden

ROOT = "/"

# Characters left unescaped in hrefs: RFC 3986 unreserved plus the sub-delims that no client
# mistakes for something else. `&`, `'` and `+` are escaped because XML, shell-quoted clients and
# form decoders (which read `+` as a space) would otherwise misread them.
_HREF_SAFE = "/-._~!$()*,=:@"


def url_to_path(raw: str) -> str:
    """Decode a percent-encoded URL path into a provider path.

    `..` and `.` segments, encoded slashes, backslashes and NUL bytes are refused with 403
    rather than normalised away, so that no spelling of a path can reach outside the shared
    root; invalid percent-encoding or UTF-8 is a 400. Empty segments (`a//b`) are collapsed.
    """
    # Clients ask for the same paths again and again; a refused one raises and is not kept.
    if len(raw) <= _REMEMBERED_LENGTH:
        return _remembered(raw)
    return _decode(raw)


def _decode(raw: str) -> str:
    segments: list[str] = []
    for raw_segment in raw.split("/"):
        if not raw_segment:
            continue
        try:
            # HTTP text reaches us as Latin-1 (WSGI): its code points are the bytes sent, so a
            # raw (unescaped) UTF-8 name is read as UTF-8, like a percent-encoded one.
            segment = unquote_to_bytes(raw_segment.encode("latin-1")).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            raise BadRequest(f"the path segment {raw_segment!r} is not valid UTF-8") from None
        if "%" in raw_segment and not _valid_escapes(raw_segment):
            raise BadRequest(f"invalid percent-encoding in {raw_segment!r}")
        check_segment(segment)
        segments.append(segment)
    return join(segments)


# Paths up to this long are remembered, the last _REMEMBERED of them (at most ~1 MiB).
_REMEMBERED_LENGTH = 1024
_REMEMBERED = 1024
_remembered = functools.lru_cache(maxsize=_REMEMBERED)(_decode)


def check_segment(segment: str) -> None:
    """Refuse a decoded segment that could name something other than one child (403)."""
    if segment in ("", ".", ".."):
        raise Forbidden(f"the path segment {segment!r} is not allowed")
    if "/" in segment or "\\" in segment or "\0" in segment:
        raise Forbidden("path segments may not contain '/', '\\' or NUL")


def _valid_escapes(raw: str) -> bool:
    i = raw.find("%")
    while i != -1:
        hexdigits = raw[i + 1 : i + 3]
        if len(hexdigits) != 2 or any(c not in "0123456789abcdefABCDEF" for c in hexdigits):
            return False
        i = raw.find("%", i + 3)
    return True


def join(segments: list[str] | tuple[str, ...]) -> str:
    return "/" + "/".join(segments)


def split(path: str) -> list[str]:
    """The segments of a provider path (`[]` for the root)."""
    return [s for s in path.split("/") if s]


def child(path: str, name: str) -> str:
    return ("" if path == ROOT else path) + "/" + name


def parent(path: str) -> str:
    """The parent collection of `path`; the root is its own parent."""
    head = path.rsplit("/", 1)[0]
    return head or ROOT


def name(path: str) -> str:
    """The last segment (`""` for the root)."""
    return path.rsplit("/", 1)[-1]


def is_ancestor(ancestor: str, path: str) -> bool:
    """True when `path` lies strictly inside the collection `ancestor`."""
    if ancestor == ROOT:
        return path != ROOT
    return path.startswith(ancestor + "/")


def is_same_or_ancestor(ancestor: str, path: str) -> bool:
    return ancestor == path or is_ancestor(ancestor, path)


def ancestors(path: str) -> Iterator[str]:
    """Every collection above `path`, nearest first, ending with the root."""
    while path != ROOT:
        path = parent(path)
        yield path


def inside_any(path: str, folders: Container[str]) -> bool:
    """Whether a collection above `path` is one of `folders`: one look per level, where asking
    `is_ancestor` of each folder costs as many calls as there are folders (a batch holds
    thousands)."""
    return any(folder in folders for folder in ancestors(path))


def within_any(path: str, folders: Container[str]) -> bool:
    """Whether `path` is one of `folders` or inside one of them."""
    return path in folders or inside_any(path, folders)


def rebase(path: str, old_root: str, new_root: str) -> str:
    """`path` (inside or equal to `old_root`) moved under `new_root`."""
    if path == old_root:
        return new_root
    tail = path[len(old_root) :] if old_root != ROOT else path
    return (new_root if new_root != ROOT else "") + tail


_PLAIN = re.compile(r"[A-Za-z0-9/\-._~!$()*,=:@]*")


def quote_path(path: str) -> str:
    """The percent-encoded form of a provider path, without any prefix."""
    if _PLAIN.fullmatch(path):
        return path  # the common case, and quote() is slow for it
    return quote(path, safe=_HREF_SAFE)


def href(prefix: str, path: str, is_collection: bool) -> str:
    """The URL path a client sees for a resource; collections end with `/`.

    `prefix` is the already-encoded public path prefix without a trailing slash (`""` at the
    root of a host).
    """
    encoded = quote_path(path)
    if is_collection and path != ROOT:
        encoded += "/"
    return prefix + encoded
