"""The shared vocabulary: resources, property names and per-resource results.

Property names are Clark notation strings, `{namespace}local` (`{DAV:}getetag`); the empty
namespace is `{}local`. They are hashable, readable in logs and JSON, and need no parsing on
the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

DAV_NS = "DAV:"


def clark(namespace: str, local: str) -> str:
    return "{" + namespace + "}" + local


def split_clark(name: str) -> tuple[str, str]:
    """`"{ns}local"` -> `("ns", "local")`; a name without braces has the empty namespace."""
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
        return ns, local
    return "", name


class Resource(NamedTuple):
    """What a provider knows about one resource, from one stat-like call.

    `etag` is an opaque strong validator (without quotes) that changes whenever the content
    changes; `content_type` is None when the provider stores none (the server then guesses
    from the name). `is_link` marks a resource that refers to another one (a symbolic link):
    it can be read through, but tree operations treat it as a leaf, so a walk never loops
    and a DELETE removes the link, never what it points to.

    A NamedTuple rather than a frozen dataclass: a listing makes one per member, and a tuple
    is several times cheaper to build.
    """

    path: str
    is_collection: bool
    size: int
    mtime: float
    ctime: float
    etag: str
    content_type: str | None = None
    is_link: bool = False


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """The outcome of one member of a multi-resource operation (DELETE, COPY, MOVE, batch)."""

    path: str
    status: int
    is_collection: bool = False
    condition: str | None = None
    message: str = ""
    condition_paths: tuple[str, ...] = ()


@dataclass(slots=True)
class PropStat:
    """Properties sharing one status inside a `<D:response>`.

    Each entry of `props` is the property name and the complete serialized property element
    (`<D:getetag>"x"</D:getetag>`), or None where only the name is reported (404s, propname).
    """

    status: int
    props: list[tuple[str, str | None]] = field(default_factory=list)
    condition: str | None = None
    message: str = ""


@dataclass(slots=True)
class PropResponse:
    """One `<D:response>` of a PROPFIND or PROPPATCH multistatus.

    Either `propstats` (the usual case) or, for a resource that could not be read at all,
    a single `status`.
    """

    path: str
    is_collection: bool
    propstats: list[PropStat] = field(default_factory=list)
    status: int | None = None
    message: str = ""
