"""Request bodies: the only place that parses XML.

Every body is untrusted: it goes through defusedxml (no DTDs, no entity declarations, no
external references) with a nesting limit, and comes out as small typed values. Property values
and lock owners are kept as XML text that keeps the client's own prefixes, namespace
declarations, `xml:lang`, mixed content and Unicode, so they can be written back verbatim.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Literal

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from .errors import BadRequest
from .model import DAV_NS, clark

XML_NS = "http://www.w3.org/XML/1998/namespace"
XML_LANG = clark(XML_NS, "lang")
MAX_NESTING = 64

_D = "{" + DAV_NS + "}"


@dataclass(frozen=True, slots=True)
class Propfind:
    """A PROPFIND body: `allprop` (with `include` names), `propname`, or `prop` (names)."""

    kind: Literal["allprop", "propname", "prop"]
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PropChange:
    """One instruction of a PROPPATCH, in document order; `value` is None for a remove and
    otherwise the whole property element as XML text."""

    name: str
    value: str | None


@dataclass(frozen=True, slots=True)
class LockInfo:
    """A LOCK body: the scope asked for and the `<D:owner>` element as XML text, if any."""

    scope: Literal["exclusive", "shared"]
    owner: str | None


@dataclass(slots=True)
class _Scope:
    """One element's namespace scope: its own declarations and a link to its parent's.

    Linked rather than copied: a body declaring thousands of prefixes on its root would
    otherwise cost a copy of all of them per element (quadratic memory)."""

    parent: _Scope | None
    declared: list[tuple[str, str]]  # (prefix, URI) declared on this element ("" = default)
    lang: str | None
    _by_uri: dict[str, str] = field(default_factory=dict)  # URI -> innermost own prefix

    def __post_init__(self) -> None:
        for prefix, uri in self.declared:
            self._by_uri[uri] = prefix

    def resolve(self, prefix: str) -> str | None:
        """The URI `prefix` means here, or None when undeclared."""
        scope: _Scope | None = self
        while scope is not None:
            for declared_prefix, uri in reversed(scope.declared):
                if declared_prefix == prefix:
                    return uri
            scope = scope.parent
        return None

    def prefix_for(self, uri: str, *, attribute: bool) -> str:
        """The prefix the innermost declaration of `uri` gives, as in the source document
        (never one an inner declaration has since rebound, nor "" for an attribute)."""
        scope: _Scope | None = self
        while scope is not None:
            candidate = scope._by_uri.get(uri)
            usable = candidate is not None and not (attribute and candidate == "")
            if usable and self.resolve(candidate or "") == uri:
                return candidate or ""
            if candidate is not None or attribute:
                for prefix, value in reversed(scope.declared):
                    if value == uri and prefix and self.resolve(prefix) == uri:
                        return prefix
            scope = scope.parent
        return ""


class Document:
    """A parsed body: the root element, and per element its namespace scope and xml:lang."""

    def __init__(self, root: ET.Element, scopes: dict[ET.Element, _Scope]) -> None:
        self.root = root
        self._scopes = scopes

    def serialize(self, element: ET.Element) -> str:
        """`element` as standalone XML text, with the prefixes the client used.

        Namespace declarations inherited from ancestors are repeated on `element` (those it
        uses), and an inherited `xml:lang` is made explicit, so the text means the same on its
        own (RFC 4918 4.3 and 4.4).
        """
        scope = self._scopes[element]
        out: list[str] = []
        used: set[tuple[str, str]] = set()
        self._collect_used(element, used)
        own = set(scope.declared)
        extra = sorted(
            (p, u) for p, u in used if (p, u) not in own and (p or u) and scope.resolve(p) == u
        )
        lang = scope.lang if XML_LANG not in element.attrib else None
        self._write(element, out, extra, lang)
        return "".join(out)

    def _collect_used(self, element: ET.Element, used: set[tuple[str, str]]) -> None:
        scope = self._scopes[element]
        uri, _ = _split(element.tag)
        used.add((scope.prefix_for(uri, attribute=False), uri))
        for key in element.attrib:
            auri, _ = _split(key)
            if auri and auri != XML_NS:
                used.add((scope.prefix_for(auri, attribute=True), auri))
        for sub in element:
            self._collect_used(sub, used)

    def _write(
        self,
        element: ET.Element,
        out: list[str],
        extra: list[tuple[str, str]],
        lang: str | None,
    ) -> None:
        scope = self._scopes[element]
        uri, local = _split(element.tag)
        prefix = scope.prefix_for(uri, attribute=False)
        qname = f"{prefix}:{local}" if prefix else local
        out.append("<" + qname)
        for p, u in [*extra, *scope.declared]:
            out.append(f' xmlns:{p}="{escape_attr(u)}"' if p else f' xmlns="{escape_attr(u)}"')
        if uri == "" and (scope.resolve("") or "") != "" and ("", "") not in scope.declared:
            out.append(' xmlns=""')
        if lang is not None:
            out.append(f' xml:lang="{escape_attr(lang)}"')
        for key, value in element.attrib.items():
            auri, alocal = _split(key)
            if auri == XML_NS:
                aname = "xml:" + alocal
            elif auri:
                aname = scope.prefix_for(auri, attribute=True) + ":" + alocal
            else:
                aname = alocal
            out.append(f' {aname}="{escape_attr(value)}"')
        if element.text is None and len(element) == 0:
            out.append("/>")
            return
        out.append(">")
        if element.text:
            out.append(escape_text(element.text))
        for sub in element:
            self._write(sub, out, [], None)
            if sub.tail:
                out.append(escape_text(sub.tail))
        out.append(f"</{qname}>")


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        return uri, local
    return "", tag


def escape_text(text: str) -> str:
    # CR as a reference: written raw it would come back as LF (XML 1.0 2.11).
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def escape_attr(text: str) -> str:
    return (
        escape_text(text)
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )


def parse_document(body: bytes) -> Document:
    """Parse an untrusted body; any refusal is a 400 that says why."""
    if not body.strip():
        raise BadRequest("the request body is empty where XML was expected")
    scopes: dict[ET.Element, _Scope] = {}
    stack: list[_Scope] = [_Scope(None, [("xml", XML_NS)], None)]
    pending: list[tuple[str, str]] = []
    root: ET.Element | None = None
    try:
        for event, item in DET.iterparse(
            io.BytesIO(body),
            events=("start-ns", "start", "end"),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        ):
            if event == "start-ns":
                pending.append(item)
            elif event == "start":
                parent = stack[-1]
                lang = item.attrib.get(XML_LANG, parent.lang)
                scope = _Scope(parent, pending, lang)
                pending = []
                scopes[item] = scope
                stack.append(scope)
                if len(stack) > MAX_NESTING + 1:
                    raise BadRequest(f"XML nested deeper than {MAX_NESTING} elements")
                if root is None:
                    root = item
            elif event == "end":
                stack.pop()
    except DefusedXmlException as exc:
        raise BadRequest(
            f"XML refused: {type(exc).__name__} (DTDs and entities are not allowed)"
        ) from None
    except ET.ParseError as exc:
        raise BadRequest(f"malformed XML: {exc}") from None
    assert root is not None  # iterparse raises on a document without an element
    return Document(root, scopes)


def _fragment(fragment: str) -> ET.Element:
    # Live property fragments use the D: prefix of the document they are written into.
    wrapped = f'<w xmlns:D="{DAV_NS}">{fragment}</w>'
    try:
        root: ET.Element = DET.fromstring(wrapped, forbid_dtd=True)
        return root[0]
    except (ET.ParseError, DefusedXmlException, IndexError) as exc:
        raise BadRequest(f"not an XML element: {exc}") from None


def text_of(fragment: str) -> str:
    """All the text inside a serialized property element."""
    return "".join(_fragment(fragment).itertext())


def value_of(fragment: str) -> str:
    """A property's value as a string: its text, or its inner XML when it holds elements."""
    element = _fragment(fragment)
    if len(element) == 0:
        return element.text or ""
    return fragment[fragment.index(">") + 1 : fragment.rindex("</")]


def _expect_root(doc: Document, local: str) -> ET.Element:
    if doc.root.tag != _D + local:
        raise BadRequest(f"expected a <DAV:{local}> document, got {doc.root.tag}")
    return doc.root


def parse_propfind(body: bytes) -> Propfind:
    """RFC 4918 14.20; an empty body means allprop (9.1)."""
    if not body.strip():
        return Propfind("allprop")
    doc = parse_document(body)
    root = _expect_root(doc, "propfind")
    kinds = [c for c in root if c.tag in (_D + "allprop", _D + "propname", _D + "prop")]
    if len(kinds) != 1:
        raise BadRequest("<DAV:propfind> needs exactly one of allprop, propname or prop")
    kind = kinds[0]
    if kind.tag == _D + "prop":
        return Propfind("prop", tuple(_names(kind)))
    if kind.tag == _D + "propname":
        return Propfind("propname")
    include = root.find(_D + "include")
    return Propfind("allprop", tuple(_names(include)) if include is not None else ())


def _names(element: ET.Element) -> list[str]:
    return [c.tag if c.tag.startswith("{") else "{}" + c.tag for c in element]


def parse_propertyupdate(body: bytes) -> list[PropChange]:
    """RFC 4918 14.19: set and remove instructions in document order."""
    doc = parse_document(body)
    root = _expect_root(doc, "propertyupdate")
    changes: list[PropChange] = []
    for instruction in root:
        if instruction.tag not in (_D + "set", _D + "remove"):
            continue
        prop = instruction.find(_D + "prop")
        if prop is None:
            raise BadRequest(f"<{instruction.tag}> without <DAV:prop>")
        for element in prop:
            name = element.tag if element.tag.startswith("{") else "{}" + element.tag
            if instruction.tag == _D + "set":
                changes.append(PropChange(name, doc.serialize(element)))
            else:
                changes.append(PropChange(name, None))
    if not changes:
        raise BadRequest("<DAV:propertyupdate> holds no property to set or remove")
    return changes


def parse_lockinfo(body: bytes) -> LockInfo:
    """RFC 4918 14.11: a write lock's scope and owner."""
    doc = parse_document(body)
    root = _expect_root(doc, "lockinfo")
    scope_el = root.find(_D + "lockscope")
    type_el = root.find(_D + "locktype")
    if scope_el is None or type_el is None:
        raise BadRequest("<DAV:lockinfo> needs <DAV:lockscope> and <DAV:locktype>")
    if type_el.find(_D + "write") is None:
        raise BadRequest("only write locks exist (RFC 4918 7)")
    scope: Literal["exclusive", "shared"]
    if scope_el.find(_D + "exclusive") is not None:
        scope = "exclusive"
    elif scope_el.find(_D + "shared") is not None:
        scope = "shared"
    else:
        raise BadRequest("<DAV:lockscope> must hold <DAV:exclusive> or <DAV:shared>")
    owner_el = root.find(_D + "owner")
    return LockInfo(scope, doc.serialize(owner_el) if owner_el is not None else None)
