"""Request bodies: the only place that parses XML.

Every body is untrusted: it goes through defusedxml (no DTDs, no entity declarations, no
external references) with a nesting limit, and comes out as small typed values. Property values
and lock owners are kept as XML text that keeps the client's own prefixes, namespace
declarations, `xml:lang`, mixed content and Unicode, so they can be written back verbatim.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from .errors import BadRequest
from .model import DAV_NS, clark, split_clark
from .xmlnames import XML_NS, namespace_problem, property_name_problem
from .xmlout import escape, escape_attr

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
    otherwise cost a copy of all of them per element (quadratic memory). Each element's own
    declarations are a dict, so resolving a prefix costs one lookup per enclosing element
    (at most MAX_NESTING), never a scan of the declarations in scope."""

    parent: _Scope | None
    declared: dict[str, str]  # prefix -> URI declared on this element ("" = default)
    lang: str | None

    def resolve(self, prefix: str) -> str | None:
        """The URI `prefix` means here, or None when undeclared."""
        scope: _Scope | None = self
        while scope is not None:
            uri = scope.declared.get(prefix)
            if uri is not None:
                return uri
            scope = scope.parent
        return None


@dataclass(slots=True)
class _Names:
    """How the client spelled one element: its scope, the prefix of its name and of each of
    its namespaced attributes (keyed by Clark name)."""

    scope: _Scope
    prefix: str
    attributes: dict[str, str]


def _qname(prefix: str, local: str) -> str:
    return f"{prefix}:{local}" if prefix else local


class Document:
    """A parsed body: the root element, and per element its namespace scope, xml:lang and
    the prefixes the client wrote."""

    def __init__(self, root: ET.Element, names: dict[ET.Element, _Names]) -> None:
        self.root = root
        self._names = names

    def serialize(self, element: ET.Element) -> str:
        """`element` as standalone XML text, with the prefixes the client used.

        Namespace declarations inherited from ancestors are repeated on `element` (those it
        uses), and an inherited `xml:lang` is made explicit, so the text means the same on its
        own (RFC 4918 4.3 and 4.4).
        """
        scope = self._names[element].scope
        out: list[str] = []
        used: set[tuple[str, str]] = set()
        self._collect_used(element, used)
        extra = sorted(
            (p, u)
            for p, u in used
            if (p or u) and p not in scope.declared and p != "xml" and scope.resolve(p) == u
        )
        lang = scope.lang if XML_LANG not in element.attrib else None
        self._write(element, out, extra, lang)
        return "".join(out)

    def _collect_used(self, element: ET.Element, used: set[tuple[str, str]]) -> None:
        names = self._names[element]
        used.add((names.prefix, split_clark(element.tag)[0]))
        for key, prefix in names.attributes.items():
            used.add((prefix, split_clark(key)[0]))
        for sub in element:
            self._collect_used(sub, used)

    def _write(
        self,
        element: ET.Element,
        out: list[str],
        extra: list[tuple[str, str]],
        lang: str | None,
    ) -> None:
        names = self._names[element]
        scope = names.scope
        uri, local = split_clark(element.tag)
        qname = _qname(names.prefix, local)
        out.append("<" + qname)
        for p, u in [*extra, *scope.declared.items()]:
            out.append(f' xmlns:{p}="{escape_attr(u)}"' if p else f' xmlns="{escape_attr(u)}"')
        if uri == "" and (scope.resolve("") or "") != "" and "" not in scope.declared:
            out.append(' xmlns=""')
        if lang is not None:
            out.append(f' xml:lang="{escape_attr(lang)}"')
        for key, value in element.attrib.items():
            aname = _qname(names.attributes.get(key, ""), split_clark(key)[1])
            out.append(f' {aname}="{escape_attr(value)}"')
        if element.text is None and len(element) == 0:
            out.append("/>")
            return
        out.append(">")
        if element.text:
            out.append(escape(element.text))
        for sub in element:
            self._write(sub, out, [], None)
            if sub.tail:
                out.append(escape(sub.tail))
        out.append(f"</{qname}>")


def _split_expat(name: str) -> tuple[str, str]:
    """A name as expat reports it with `namespace_prefixes` (`uri}local}prefix`, after
    ElementTree has put a `{` in front) -> (Clark name, prefix). Unambiguous because a
    namespace name with a brace is refused when it is declared."""
    if not name.startswith("{"):
        return name, ""
    uri, local, *prefix = name[1:].split("}")
    return clark(uri, local), prefix[0] if prefix else ""


class _Builder:
    """The parser's target: builds the element tree and records, per element, its namespace
    scope and the prefixes the client wrote (expat reports them when `namespace_prefixes` is
    on), so that a fragment is written back with the client's own prefixes without guessing
    them from the declarations in scope."""

    def __init__(self) -> None:
        self.tree = ET.TreeBuilder()
        self.names: dict[ET.Element, _Names] = {}
        self.stack: list[_Scope] = [_Scope(None, {"xml": XML_NS}, None)]
        self.pending: dict[str, str] = {}

    def start_ns(self, prefix: str, uri: str) -> None:
        # expat itself refuses the reserved namespaces bound to the wrong prefix.
        problem = namespace_problem(uri) if uri != XML_NS else None
        if problem is not None:
            raise BadRequest(f"xmlns:{prefix}: {problem}" if prefix else f"xmlns: {problem}")
        self.pending[prefix] = uri

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        if len(self.stack) > MAX_NESTING:
            raise BadRequest(f"XML nested deeper than {MAX_NESTING} elements")
        name, prefix = _split_expat(tag)
        attrib: dict[str, str] = {}
        attribute_prefixes: dict[str, str] = {}
        for key, value in attrs.items():
            aname, aprefix = _split_expat(key)
            attrib[aname] = value
            if aprefix:
                attribute_prefixes[aname] = aprefix
        parent = self.stack[-1]
        scope = _Scope(parent, self.pending, attrib.get(XML_LANG, parent.lang))
        self.pending = {}
        self.stack.append(scope)
        element = self.tree.start(name, attrib)
        self.names[element] = _Names(scope, prefix, attribute_prefixes)
        return element

    def end(self, tag: str) -> ET.Element:
        self.stack.pop()
        return self.tree.end(_split_expat(tag)[0])

    def data(self, text: str) -> None:
        self.tree.data(text)

    def close(self) -> ET.Element:
        return self.tree.close()


def parse_document(body: bytes) -> Document:
    """Parse an untrusted body; any refusal is a 400 that says why."""
    if not body.strip():
        raise BadRequest("the request body is empty where XML was expected")
    builder = _Builder()
    parser = DET.DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    # Names come as `uri}local}prefix`: the prefix the client wrote (see _Builder).
    parser.parser.namespace_prefixes = True
    try:
        parser.feed(body)
        root: ET.Element = parser.close()
    except DefusedXmlException as exc:
        # Every DTD is refused, so every external entity is: RFC 4918 16 names the condition.
        raise BadRequest(
            f"XML refused: {type(exc).__name__} (DTDs and entities are not allowed)",
            condition="no-external-entities",
        ) from None
    except ET.ParseError as exc:
        raise BadRequest(f"malformed XML: {exc}") from None
    return Document(root, builder.names)


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
                # The parser only yields XML names, but one may be in a reserved namespace.
                problem = property_name_problem(name)
                if problem is not None:
                    raise BadRequest(problem)
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
