"""Which names XML can carry: the one check for property names, whichever way they arrive.

A property name becomes an element name in every answer that reports it (PROPFIND,
PROPPATCH), so only a name that XML can write may be stored. The XML request bodies can only
spell XML names, but a JSON batch can spell any string; both paths ask `property_name_problem`
before storing anything.
"""

from __future__ import annotations

import re

from .model import split_clark

XML_NS = "http://www.w3.org/XML/1998/namespace"
XMLNS_NS = "http://www.w3.org/2000/xmlns/"

# XML 1.0 fifth edition, productions [4] NameStartChar and [4a] NameChar, without ':' (an
# NCName, Namespaces in XML 1.0 production [4]).
_NAME_START = (
    "A-Z_a-z\xc0-\xd6\xd8-\xf6\xf8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NAME_CHAR = _NAME_START + "\\-.0-9\xb7\u0300-\u036f\u203f\u2040"
_NCNAME = re.compile(f"[{_NAME_START}][{_NAME_CHAR}]*")
# A namespace name is a URI reference (Namespaces in XML 1.0, 2.2), RFC 3986 4.1. Parsers hold
# documents to it (libxml2 refuses `xmlns:a="a b"`), so one stored name outside it would break
# every listing that reports it for such clients. IP literals are only roughly checked.
_PCT = "%[0-9A-Fa-f]{2}"
_PLAIN = "A-Za-z0-9._~!$&'()*+,;=\\-"  # unreserved and sub-delims
_PCHAR = f"(?:[{_PLAIN}:@]|{_PCT})"
_AUTHORITY = (
    f"(?:(?:[{_PLAIN}:]|{_PCT})*@)?"
    f"(?:\\[[0-9A-Fa-f:.vV{_PLAIN}]+\\]|(?:[{_PLAIN}]|{_PCT})*)(?::[0-9]*)?"
)
_TAIL = f"(?:\\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
_URI_REFERENCE = re.compile(
    f"(?:[A-Za-z][A-Za-z0-9+.-]*:(?://{_AUTHORITY}(?:/{_PCHAR}*)*|/?(?:{_PCHAR}+(?:/{_PCHAR}*)*)?)"
    f"|//{_AUTHORITY}(?:/{_PCHAR}*)*"
    f"|/(?:{_PCHAR}+(?:/{_PCHAR}*)*)?"
    f"|(?:[{_PLAIN}@]|{_PCT})+(?:/{_PCHAR}*)*"
    f"|){_TAIL}"
)


def is_ncname(text: str) -> bool:
    """Whether `text` is an XML local name (an NCName: an XML 1.0 Name without ':')."""
    return _NCNAME.fullmatch(text) is not None


def namespace_problem(namespace: str) -> str | None:
    """Why `namespace` cannot name an element's namespace, or None when it can: it must be
    a URI reference (or empty: no namespace), and not one of the reserved `xml` and `xmlns`
    namespaces (Namespaces in XML 1.0, 3: no prefix but `xml` may be bound to the first,
    none at all to the second)."""
    if namespace in (XML_NS, XMLNS_NS):
        return f"the namespace {namespace} is reserved for XML itself"
    if _URI_REFERENCE.fullmatch(namespace) is None:
        return f"the namespace {namespace!r} is not a URI reference (RFC 3986 4.1)"
    return None


def property_name_problem(name: str) -> str | None:
    """Why `name` (Clark notation, `{namespace}local`) cannot name a stored property, or None
    when it can. A microsecond or two for a usual name; not cached, since names can be long
    and a cache would keep any a client sent."""
    if not name.startswith("{") or "}" not in name:
        return f"{name!r} is not a property name in Clark notation ({{namespace}}name)"
    namespace, local = split_clark(name)
    if not is_ncname(local):
        return f"{local!r} is not an XML name (XML 1.0 2.3; no ':')"
    return namespace_problem(namespace)
