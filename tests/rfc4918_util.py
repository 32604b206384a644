"""Small helpers for the tests/test_rfc4918_*.py files: one PROPFIND answer as a dict, locks,
XML bodies. The tests there each check the RFC 4918 requirements named in their marker."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from helpers import lockinfo, propfind_body
from lxml import etree

D = "{DAV:}"
XML_TYPE = {"Content-Type": 'application/xml; charset="utf-8"'}


def xml(content: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(content, parser)


def code(status: str | None) -> int:
    assert status is not None
    return int(status.split()[1])


def propstats(content: bytes) -> dict[str, dict[str, tuple[int, etree._Element]]]:
    """A PROPFIND 207 as {href path: {property tag: (status, element)}}."""
    doc = xml(content)
    assert doc.tag == D + "multistatus"
    found: dict[str, dict[str, tuple[int, etree._Element]]] = {}
    for response in doc.findall(D + "response"):
        href = unquote(urlsplit(response.findtext(D + "href") or "").path)
        assert href not in found, href
        props: dict[str, tuple[int, etree._Element]] = {}
        for propstat in response.findall(D + "propstat"):
            status = code(propstat.findtext(D + "status"))
            for prop in propstat.findall(D + "prop/*"):
                props[prop.tag] = (status, prop)
        found[href] = props
    return found


def propfind(
    server: Any, path: str, *names: str, depth: str = "0", body: bytes | None = None
) -> dict[str, dict[str, tuple[int, etree._Element]]]:
    """PROPFIND `names` (all properties when none) at `path`; the 207 as propstats() gives it."""
    data = body if body is not None else (propfind_body(*names) if names else b"")
    r = server.request("PROPFIND", path, headers={"Depth": depth, **XML_TYPE}, data=data)
    assert r.status_code == 207, (r.status_code, r.text)
    return propstats(r.content)


def prop(server: Any, path: str, name: str) -> tuple[int, etree._Element]:
    """The status and element of one property of `path`."""
    return propfind(server, path, name)[unquote(path)][name]


def lock(
    server: Any,
    path: str,
    depth: str = "infinity",
    scope: str = "exclusive",
    owner: str | None = "test",
    headers: dict[str, str] | None = None,
) -> str:
    """Take a write lock on the existing `path` (which must be granted: 200) and return its
    token, without brackets."""
    r = server.request(
        "LOCK",
        path,
        headers={"Depth": depth, **XML_TYPE, **(headers or {})},
        data=lockinfo(owner, scope),
    )
    assert r.status_code == 200, (r.status_code, r.text)
    token = r.headers["Lock-Token"]
    assert re.fullmatch(r"<[^<>]+>", token), token
    return token[1:-1]


def locktokens(element: etree._Element) -> list[str]:
    """The lock tokens inside `element` (a lockdiscovery, or a whole LOCK answer)."""
    return [
        href.text or ""
        for href in element.iter(D + "href")
        if href.getparent().tag == D + "locktoken"
    ]


def tagged(token: str) -> dict[str, str]:
    """An If header submitting `token` for the Request-URI."""
    return {"If": f"(<{token}>)"}


def error_conditions(content: bytes) -> list[str]:
    """The tags of the children of a top-level DAV:error body."""
    doc = xml(content)
    assert doc.tag == D + "error", content
    return [child.tag for child in doc]
