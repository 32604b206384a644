"""Tests for davserver.xmlin (request bodies in) and davserver.xmlout (documents out).

Everything the server writes is parsed back with lxml; everything it reads is checked both for
the values it yields and for what it refuses (DTDs, entities, deep nesting, empty bodies).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from davserver import xmlout
from davserver.errors import BadRequest
from davserver.model import MemberStatus, PropResponse, PropStat
from davserver.xmlin import (
    MAX_NESTING,
    XML_LANG,
    LockInfo,
    PropChange,
    Propfind,
    parse_lockinfo,
    parse_propertyupdate,
    parse_propfind,
)

D = "{DAV:}"
XML_NS = "http://www.w3.org/XML/1998/namespace"


def parse(text: str | bytes) -> etree._Element:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))


def in_dav_doc(fragment: str) -> etree._Element:
    """Parse a fragment as the child of an element that binds `D:` to DAV:, as in a
    multistatus; return the fragment's element."""
    root = parse('<D:prop xmlns:D="DAV:">' + fragment + "</D:prop>")
    assert len(root) == 1
    return root[0]


def update(*instructions: str, root_attrs: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<D:propertyupdate xmlns:D="DAV:"{root_attrs}>'
        + "".join(instructions)
        + "</D:propertyupdate>"
    ).encode()


def set_(props: str, prop_attrs: str = "", set_attrs: str = "") -> str:
    return f"<D:set{set_attrs}><D:prop{prop_attrs}>{props}</D:prop></D:set>"


def remove(props: str) -> str:
    return f"<D:remove><D:prop>{props}</D:prop></D:remove>"


# -- parse_propfind --------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"   \r\n\t "])
def test_propfind_empty_body_is_allprop(body: bytes) -> None:
    assert parse_propfind(body) == Propfind("allprop", ())


def test_propfind_allprop() -> None:
    body = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    assert parse_propfind(body) == Propfind("allprop", ())


def test_propfind_allprop_with_include() -> None:
    body = (
        b'<D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:allprop/>'
        b"<D:include><D:quota-used-bytes/><Z:custom/></D:include></D:propfind>"
    )
    assert parse_propfind(body) == Propfind("allprop", (D + "quota-used-bytes", "{urn:z}custom"))


def test_propfind_include_before_allprop() -> None:
    body = (
        b'<propfind xmlns="DAV:"><include><quota-available-bytes/></include><allprop/></propfind>'
    )
    assert parse_propfind(body) == Propfind("allprop", (D + "quota-available-bytes",))


def test_propfind_propname() -> None:
    body = b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
    assert parse_propfind(body) == Propfind("propname", ())


def test_propfind_prop_names_in_order_with_namespaces() -> None:
    body = (
        b'<A:propfind xmlns:A="DAV:"><A:prop xmlns:B="urn:b">'
        b'<A:getetag/><B:x/><y xmlns=""/><z xmlns="urn:default"/><A:displayname/>'
        b"</A:prop></A:propfind>"
    )
    assert parse_propfind(body) == Propfind(
        "prop", (D + "getetag", "{urn:b}x", "{}y", "{urn:default}z", D + "displayname")
    )


def test_propfind_empty_prop_asks_for_nothing() -> None:
    body = b'<D:propfind xmlns:D="DAV:"><D:prop/></D:propfind>'
    assert parse_propfind(body) == Propfind("prop", ())


@pytest.mark.parametrize(
    "body",
    [
        b'<D:propfind xmlns:D="DAV:"/>',
        b'<D:propfind xmlns:D="DAV:"><D:include><D:getetag/></D:include></D:propfind>',
        b'<D:propfind xmlns:D="DAV:"><D:allprop/><D:propname/></D:propfind>',
        b'<D:propfind xmlns:D="DAV:"><D:prop/><D:prop/></D:propfind>',
        # the right local names in the wrong namespace
        b'<D:propfind xmlns:D="DAV:"><allprop xmlns="urn:not-dav"/></D:propfind>',
    ],
    ids=["no-child", "include-only", "two-kinds", "two-props", "foreign-allprop"],
)
def test_propfind_without_exactly_one_kind_is_refused(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_propfind(body)


@pytest.mark.parametrize(
    "body",
    [
        b'<D:propertyupdate xmlns:D="DAV:"/>',
        b"<propfind><allprop/></propfind>",  # no namespace: not DAV:propfind
        b'<propfind xmlns="urn:x"><allprop/></propfind>',
        b'<D:lockinfo xmlns:D="DAV:"/>',
    ],
)
def test_propfind_wrong_root_is_refused(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_propfind(body)


@pytest.mark.rfc4918("R-054")
@pytest.mark.parametrize(
    "body",
    [
        b"<D:propfind xmlns:D='DAV:'><D:allprop></D:propfind>",
        b"not xml at all",
        b"<D:propfind xmlns:D='DAV:'><D:allprop/></D:propfind><second/>",
        b"<X:propfind><X:allprop/></X:propfind>",  # unbound prefix
        b"\xff\xfe<\x00",
    ],
)
def test_propfind_malformed_is_refused(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_propfind(body)


# -- parse_propertyupdate ----------------------------------------------------------------------


@pytest.mark.rfc4918("R-083")
def test_propertyupdate_keeps_document_order() -> None:
    body = update(
        remove('<Z:a xmlns:Z="urn:z"/>'),
        set_('<Z:a xmlns:Z="urn:z">1</Z:a><Z:b xmlns:Z="urn:z">x</Z:b>'),
        remove('<Z:b xmlns:Z="urn:z"/>'),
        set_('<Z:a xmlns:Z="urn:z">2</Z:a>'),
    )
    changes = parse_propertyupdate(body)
    assert [(c.name, c.value is None) for c in changes] == [
        ("{urn:z}a", True),
        ("{urn:z}a", False),
        ("{urn:z}b", False),
        ("{urn:z}b", True),
        ("{urn:z}a", False),
    ]
    assert parse(changes[1].value or "").text == "1"
    assert parse(changes[4].value or "").text == "2"


def test_propertyupdate_remove_has_no_value() -> None:
    body = update(remove('<Z:a xmlns:Z="urn:z">ignored</Z:a>'))
    assert parse_propertyupdate(body) == [PropChange("{urn:z}a", None)]


@pytest.mark.rfc4918("R-003")
def test_propertyupdate_keeps_prefixes_and_repeats_inherited_declarations() -> None:
    body = update(
        set_('<Z:author Q:role="lead"><Z:name>Jane</Z:name><Q:x/></Z:author>'),
        root_attrs=' xmlns:Z="http://ns.example.com/z/" xmlns:Q="urn:q" xmlns:U="urn:unused"',
    )
    (change,) = parse_propertyupdate(body)
    assert change.name == "{http://ns.example.com/z/}author"
    value = change.value or ""
    # The client's own prefixes, each declared on the value itself.
    assert value.startswith("<Z:author")
    assert 'xmlns:Z="http://ns.example.com/z/"' in value
    assert 'xmlns:Q="urn:q"' in value
    assert "urn:unused" not in value  # only declarations the value uses are copied
    el = parse(value)
    assert el.tag == "{http://ns.example.com/z/}author"
    assert el.prefix == "Z"
    assert el.get("{urn:q}role") == "lead"
    assert [c.tag for c in el] == ["{http://ns.example.com/z/}name", "{urn:q}x"]
    assert el[0].text == "Jane"
    assert el[1].prefix == "Q"


def test_propertyupdate_prefix_d_bound_to_another_namespace() -> None:
    body = update(set_('<D:mine xmlns:D="urn:not-dav"><D:inner/></D:mine>'))
    (change,) = parse_propertyupdate(body)
    assert change.name == "{urn:not-dav}mine"
    el = in_dav_doc(change.value or "")
    assert el.tag == "{urn:not-dav}mine"
    assert el[0].tag == "{urn:not-dav}inner"


def test_propertyupdate_default_namespace_value() -> None:
    body = update(set_('<p xmlns="urn:def"><q>t</q></p>'))
    (change,) = parse_propertyupdate(body)
    assert change.name == "{urn:def}p"
    el = in_dav_doc(change.value or "")
    assert el.tag == "{urn:def}p"
    assert el[0].tag == "{urn:def}q"


def test_propertyupdate_no_namespace_property() -> None:
    body = update(set_('<plain xmlns="">v<child/></plain>'), root_attrs=' xmlns="urn:outer"')
    (change,) = parse_propertyupdate(body)
    assert change.name == "{}plain"
    # Inside a document with a default namespace the value must still be in no namespace.
    wrapper = parse('<w xmlns="urn:other">' + (change.value or "") + "</w>")
    assert wrapper[0].tag == "plain"
    assert wrapper[0][0].tag == "child"
    assert wrapper[0].text == "v"


def test_propertyupdate_no_namespace_without_any_default() -> None:
    body = update(set_("<plain>v</plain>"))
    (change,) = parse_propertyupdate(body)
    assert change.name == "{}plain"
    assert parse(change.value or "").tag == "plain"


@pytest.mark.parametrize(
    ("prop_attrs", "set_attrs", "root_attrs", "own", "expected"),
    [
        ("", "", "", ' xml:lang="de"', "de"),
        (' xml:lang="fr"', "", "", "", "fr"),
        ("", ' xml:lang="en-GB"', "", "", "en-GB"),
        ("", "", ' xml:lang="it"', "", "it"),
        (' xml:lang="fr"', "", "", ' xml:lang="de"', "de"),  # its own wins
    ],
    ids=["own", "from-prop", "from-set", "from-root", "own-wins"],
)
def test_propertyupdate_xml_lang(
    prop_attrs: str, set_attrs: str, root_attrs: str, own: str, expected: str
) -> None:
    body = update(
        set_(f'<Z:t xmlns:Z="urn:z"{own}>Hallo</Z:t>', prop_attrs, set_attrs),
        root_attrs=root_attrs,
    )
    (change,) = parse_propertyupdate(body)
    el = parse(change.value or "")
    assert el.get(f"{{{XML_NS}}}lang") == expected
    assert el.text == "Hallo"


def test_propertyupdate_without_lang_adds_none() -> None:
    (change,) = parse_propertyupdate(update(set_('<Z:t xmlns:Z="urn:z">x</Z:t>')))
    assert parse(change.value or "").get(XML_LANG) is None


def test_propertyupdate_mixed_content_and_escapes() -> None:
    body = update(
        set_('<Z:m xmlns:Z="urn:z" a="q&quot;&lt;&amp;">one &amp; <Z:b>two &lt;3</Z:b> three</Z:m>')
    )
    (change,) = parse_propertyupdate(body)
    el = parse(change.value or "")
    assert el.text == "one & "
    assert el.get("a") == 'q"<&'
    assert el[0].text == "two <3"
    assert el[0].tail == " three"


def test_propertyupdate_empty_value() -> None:
    (change,) = parse_propertyupdate(update(set_('<Z:e xmlns:Z="urn:z"/>')))
    el = parse(change.value or "")
    assert el.tag == "{urn:z}e"
    assert len(el) == 0
    assert not el.text


@pytest.mark.parametrize("spelling", ["&#65536;", "&#x10000;", "\U00010000"])
def test_propertyupdate_astral_characters(spelling: str) -> None:
    (change,) = parse_propertyupdate(update(set_(f'<Z:u xmlns:Z="urn:z">a{spelling}b</Z:u>')))
    assert parse(change.value or "").text == "a\U00010000b"


def test_propertyupdate_attribute_whitespace_survives() -> None:
    (change,) = parse_propertyupdate(update(set_('<Z:w xmlns:Z="urn:z" a="x&#10;y&#9;z&#13;"/>')))
    assert parse(change.value or "").get("a") == "x\ny\tz\r"


def test_propertyupdate_carriage_return_in_text_survives() -> None:
    # RFC 4918 4.3: whitespace in dead property values MUST be preserved; an XML parser turns
    # a raw CR into LF, so it has to be written back as a character reference.
    (change,) = parse_propertyupdate(update(set_('<Z:w xmlns:Z="urn:z">a&#13;b&#13;&#10;c</Z:w>')))
    assert parse(change.value or "").text == "a\rb\r\nc"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"  \n",
        b'<D:propertyupdate xmlns:D="DAV:"/>',
        b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop/></D:set></D:propertyupdate>',
        b'<D:propertyupdate xmlns:D="DAV:"><D:set/></D:propertyupdate>',
        b'<D:propertyupdate xmlns:D="DAV:"><D:remove/></D:propertyupdate>',
        b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
        b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><a></D:prop></D:set>',
    ],
    ids=[
        "empty",
        "blank",
        "no-instruction",
        "empty-prop",
        "set-without-prop",
        "remove-without-prop",
        "wrong-root",
        "malformed",
    ],
)
def test_propertyupdate_refusals(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_propertyupdate(body)


# -- parse_lockinfo ----------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["exclusive", "shared"])
def test_lockinfo_scope(scope: str) -> None:
    body = (
        f'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:{scope}/></D:lockscope>'
        "<D:locktype><D:write/></D:locktype></D:lockinfo>"
    ).encode()
    assert parse_lockinfo(body) == LockInfo(scope, None)  # type: ignore[arg-type]


def test_lockinfo_owner_is_kept_as_xml() -> None:
    body = (
        b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:" xmlns:O="urn:owner">'
        b"<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
        b"<D:owner><D:href>http://example.org/~ejw/contact.html</D:href>"
        b"<O:note>J &amp; J</O:note></D:owner></D:lockinfo>"
    )
    info = parse_lockinfo(body)
    assert info.scope == "exclusive"
    owner = in_dav_doc(info.owner or "")
    assert owner.tag == D + "owner"
    assert owner[0].tag == D + "href"
    assert owner[0].text == "http://example.org/~ejw/contact.html"
    assert owner[1].tag == "{urn:owner}note"
    assert owner[1].text == "J & J"


def test_lockinfo_text_owner() -> None:
    body = (
        b'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope>'
        b"<D:locktype><D:write/></D:locktype><D:owner>litmus test suite</D:owner></D:lockinfo>"
    )
    info = parse_lockinfo(body)
    assert info.scope == "shared"
    assert in_dav_doc(info.owner or "").text == "litmus test suite"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'<D:lockinfo xmlns:D="DAV:"><D:locktype><D:write/></D:locktype></D:lockinfo>',
        b'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope></D:lockinfo>',
        b'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
        b'<D:locktype><D:read xmlns:D="urn:x"/></D:locktype></D:lockinfo>',
        b'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:partial/></D:lockscope>'
        b"<D:locktype><D:write/></D:locktype></D:lockinfo>",
        b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
    ],
    ids=["empty", "no-scope", "no-type", "not-write", "bad-scope", "wrong-root"],
)
def test_lockinfo_refusals(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_lockinfo(body)


def test_propertyupdate_keeps_the_prefix_the_client_wrote_when_two_name_one_namespace() -> None:
    # The value's <b:y/> is in urn:1, as is the a: its parent declares; a QName in text or an
    # attribute (xsi:type="b:t") only keeps its meaning if b: is written back as b:.
    body = update(set_('<a:x xmlns:a="urn:1"><b:y t="b:t"/></a:x>'), root_attrs=' xmlns:b="urn:1"')
    (change,) = parse_propertyupdate(body)
    el = parse(change.value or "")
    assert el.prefix == "a"
    assert el[0].tag == "{urn:1}y"
    assert el[0].prefix == "b"
    assert el[0].nsmap["b"] == "urn:1"


VALID_BODIES = {
    parse_propfind: '<D:propfind xmlns:D="DAV:"{}><D:allprop/></D:propfind>',
    parse_propertyupdate: update(set_("<D:x/>"), root_attrs="{}").decode(),
    parse_lockinfo: (
        '<D:lockinfo xmlns:D="DAV:"{}><D:lockscope><D:shared/></D:lockscope>'
        "<D:locktype><D:write/></D:locktype></D:lockinfo>"
    ),
}


@pytest.mark.parametrize("namespace", ["a b", "urn:{x}", "urn:x}y", "urn:\xe4", "1:x", "%zz"])
@pytest.mark.parametrize("parser", list(VALID_BODIES), ids=lambda p: p.__name__)
def test_namespace_that_is_no_uri_reference_is_refused(
    namespace: str, parser: Callable[[bytes], object]
) -> None:
    """Namespaces in XML 1.0 2.2: a namespace name is a URI reference. libxml2 holds documents
    to it, so one such declaration echoed back in a property, an owner or a 404 would make
    the answer unreadable to its clients; a brace would also make Clark names ambiguous."""
    template = VALID_BODIES[parser]
    parser(template.format("").encode())  # the same body without it is fine
    with pytest.raises(BadRequest):
        parser(template.format(f' xmlns:x="{namespace}"').encode())


# -- cost of namespace declarations --------------------------------------------------------------


def declaring(n: int, root: str) -> bytes:
    """A `root` body whose root element declares n prefixes, each used by one element of the
    property values (propertyupdate) or of the owner (lockinfo)."""
    declarations = " ".join(f'xmlns:p{i}="urn:{i}"' for i in range(n))
    used = "".join(f"<p{i}:x/>" for i in range(n))
    if root == "propertyupdate":
        inner = f"<D:set><D:prop>{used}</D:prop></D:set>"
    else:
        inner = (
            "<D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype>"
            f"<D:owner>{used}</D:owner>"
        )
    return f'<D:{root} xmlns:D="DAV:" {declarations}>{inner}</D:{root}>'.encode()


def cpu_seconds(parser: Callable[[bytes], object], body: bytes) -> float:
    """The least CPU time of three parses (the least is the one others disturbed least)."""
    times = []
    for _ in range(3):
        started = time.process_time()
        parser(body)
        times.append(time.process_time() - started)
    return min(times)


@pytest.mark.parametrize(
    ("root", "parser"),
    [("propertyupdate", parse_propertyupdate), ("lockinfo", parse_lockinfo)],
)
def test_parsing_cost_grows_linearly_with_namespace_declarations(
    root: str, parser: Callable[[bytes], object]
) -> None:
    """Writing a value back looked each element's prefix up by scanning every declaration in
    scope: N declarations and N elements cost N^2 (16,000 of each, 540 KB: 8 s of CPU; four
    at once stalled the server). Not a timing bound but a ratio of CPU times for N and 4N:
    linear work gives about 4, quadratic about 16; 9 leaves room for a busy machine."""
    n = 2000
    small, large = (
        cpu_seconds(parser, declaring(n, root)),
        cpu_seconds(parser, declaring(4 * n, root)),
    )
    assert large / small < 9, f"{small:.3f}s for {n} declarations, {large:.3f}s for {4 * n}"


# -- refusals common to every body -------------------------------------------------------------

PROPFIND_ALLPROP = '<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'

HOSTILE = {
    "doctype": "<!DOCTYPE D:propfind [<!ELEMENT x ANY>]>" + PROPFIND_ALLPROP,
    "doctype-only": "<!DOCTYPE propfind>" + PROPFIND_ALLPROP,
    "internal-entity": (
        '<!DOCTYPE p [<!ENTITY e "DAV:">]>'
        '<D:propfind xmlns:D="DAV:"><D:prop><D:x>&e;</D:x></D:prop></D:propfind>'
    ),
    "billion-laughs": (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        '<D:propfind xmlns:D="DAV:"><D:prop><D:x>&lol3;</D:x></D:prop></D:propfind>'
    ),
    "external-entity": (
        '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<D:propfind xmlns:D="DAV:"><D:prop><D:x>&xxe;</D:x></D:prop></D:propfind>'
    ),
    "external-dtd": (
        '<?xml version="1.0"?><!DOCTYPE p SYSTEM "file:///etc/passwd">' + PROPFIND_ALLPROP
    ),
    "parameter-entity": (
        '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY % pe SYSTEM "file:///etc/passwd"> %pe;]>'
        + PROPFIND_ALLPROP
    ),
    "undeclared-entity": (
        '<D:propfind xmlns:D="DAV:"><D:prop><D:x>&nope;</D:x></D:prop></D:propfind>'
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("parser", [parse_propfind, parse_propertyupdate, parse_lockinfo])
def test_hostile_bodies_are_refused(name: str, parser: object) -> None:
    with pytest.raises(BadRequest) as info:
        parser(HOSTILE[name].encode())  # type: ignore[operator]
    assert "root:" not in str(info.value)


def nested(depth: int) -> bytes:
    """A propertyupdate whose deepest element sits `depth` levels from the root element
    (the root counting as level 1)."""
    inner_levels = depth - 4  # propertyupdate, set, prop, and the property itself
    inner = "<Z:n>" * inner_levels + "x" + "</Z:n>" * inner_levels
    return update(set_(f'<Z:p xmlns:Z="urn:z">{inner}</Z:p>'))


def test_nesting_up_to_the_limit_is_accepted() -> None:
    (change,) = parse_propertyupdate(nested(MAX_NESTING))
    el = parse(change.value or "")
    depth = 1
    while len(el):
        el = el[0]
        depth += 1
    assert depth == MAX_NESTING - 3
    assert el.text == "x"


@pytest.mark.parametrize("extra", [1, 1000])
def test_nesting_beyond_the_limit_is_refused(extra: int) -> None:
    with pytest.raises(BadRequest):
        parse_propertyupdate(nested(MAX_NESTING + extra))


def test_deep_nesting_in_propfind_is_refused() -> None:
    body = (
        '<D:propfind xmlns:D="DAV:"><D:prop>'
        + "<D:x>" * (MAX_NESTING + 5)
        + "</D:x>" * (MAX_NESTING + 5)
        + "</D:prop></D:propfind>"
    )
    with pytest.raises(BadRequest):
        parse_propfind(body.encode())


def test_utf16_body_with_declaration_is_read() -> None:
    body = (
        '<?xml version="1.0" encoding="utf-16"?>'
        '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
        '<Z:t xmlns:Z="urn:z">\u00e9\u20ac</Z:t></D:prop></D:set></D:propertyupdate>'
    ).encode("utf-16")
    (change,) = parse_propertyupdate(body)
    assert parse(change.value or "").text == "\u00e9\u20ac"


# -- xmlout.escape and element -----------------------------------------------------------------


def test_escape_markup_characters() -> None:
    assert xmlout.escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert xmlout.escape("&amp;") == "&amp;amp;"
    assert xmlout.escape("plain") == "plain"
    assert xmlout.escape("") == ""


def test_escape_replaces_characters_xml_cannot_hold() -> None:
    bad = "".join(chr(c) for c in [*range(9), 0x0B, 0x0C, *range(0x0E, 0x20)]) + "\ufffe\uffff"
    escaped = xmlout.escape("a" + bad + "b")
    assert escaped == "a" + "\ufffd" * len(bad) + "b"
    assert parse("<x>" + escaped + "</x>").text == escaped


def test_escape_keeps_allowed_whitespace_and_astral() -> None:
    text = "tab\there\nnew \U0001f600 \U00010000 \u00e9"
    assert parse("<x>" + xmlout.escape(text) + "</x>").text == text


def test_escape_attr_keeps_tabs_and_newlines() -> None:
    # A raw tab or newline in an attribute value is read back as a space (XML 1.0 3.3.3).
    assert parse('<x a="' + xmlout.escape_attr("a\tb\nc\rd") + '"/>').get("a") == "a\tb\nc\rd"


def test_escape_attr_quotes() -> None:
    el = parse('<x a="' + xmlout.escape_attr('say "hi" & <go>') + '"/>')
    assert el.get("a") == 'say "hi" & <go>'


def test_element_dav_namespace() -> None:
    assert xmlout.element(D + "getetag") == "<D:getetag/>"
    el = in_dav_doc(xmlout.element(D + "getetag", "&quot;x&quot;"))
    assert el.tag == D + "getetag"
    assert el.text == '"x"'


def test_element_other_namespace() -> None:
    el = in_dav_doc(xmlout.element("{http://ns.example.com/a&b}prop", "v &amp; w"))
    assert el.tag == "{http://ns.example.com/a&b}prop"
    assert el.text == "v & w"
    empty = in_dav_doc(xmlout.element("{urn:x}e"))
    assert empty.tag == "{urn:x}e"
    assert len(empty) == 0
    assert not empty.text


@pytest.mark.parametrize("name", ["{}plain", "plain"])
def test_element_no_namespace(name: str) -> None:
    el = in_dav_doc(xmlout.element(name, "t"))
    assert el.tag == "plain"
    assert el.text == "t"


def test_elements_of_several_namespaces_side_by_side() -> None:
    fragment = "".join(
        xmlout.element(n, "v") for n in ["{urn:a}p", "{urn:b}p", D + "p", "{}p", "{urn:a}q"]
    )
    root = parse('<D:prop xmlns:D="DAV:">' + fragment + "</D:prop>")
    assert [c.tag for c in root] == ["{urn:a}p", "{urn:b}p", D + "p", "p", "{urn:a}q"]


# -- multistatus and responses -----------------------------------------------------------------


def join(chunks: object) -> bytes:
    parts = list(chunks)  # type: ignore[call-overload]
    assert all(isinstance(c, bytes) for c in parts)
    return b"".join(parts)


def test_multistatus_of_nothing_parses() -> None:
    root = parse(join(xmlout.multistatus([])))
    assert root.tag == D + "multistatus"
    assert len(root) == 0


def test_multistatus_description_is_escaped() -> None:
    root = parse(join(xmlout.multistatus([], description="a < b & c")))
    assert root[0].tag == D + "responsedescription"
    assert root[0].text == "a < b & c"


def test_multistatus_chunks_join_into_one_document() -> None:
    responses = [
        xmlout.prop_response(
            "",
            PropResponse(
                f"/dir/file {i} & <x>",
                False,
                [PropStat(200, [(D + "displayname", f"<D:displayname>{i}</D:displayname>")])],
            ),
        )
        for i in range(3000)
    ]
    chunks = list(xmlout.multistatus(iter(responses)))
    assert len(chunks) > 2  # really streamed in pieces
    assert all(len(c) < 2 * xmlout.CHUNK for c in chunks)
    root = parse(b"".join(chunks))
    assert len(root) == 3000
    assert root[0][0].text == "/dir/file%200%20%26%20%3Cx%3E"
    assert root[2999].find(f"{D}propstat/{D}prop/{D}displayname").text == "2999"


def test_multistatus_chunk_boundary_inside_multibyte_text() -> None:
    # Chunks are cut between string fragments, never inside a UTF-8 sequence.
    responses = [
        xmlout.prop_response(
            "", PropResponse("/" + "\u20ac" * 1000 + str(i), False, [PropStat(200, [])])
        )
        for i in range(200)
    ]
    chunks = list(xmlout.multistatus(responses))
    for chunk in chunks:
        chunk.decode("utf-8")
    assert len(parse(b"".join(chunks))) == 200


def test_member_response_parses_back() -> None:
    member = MemberStatus(
        "/locked dir/a&b",
        423,
        is_collection=True,
        condition="lock-token-submitted",
        message="locked by <someone>",
        condition_paths=("/locked dir",),
    )
    collections = {"/locked dir"}
    doc = parse(
        join(
            xmlout.multistatus([xmlout.member_response("/mount", member, collections.__contains__)])
        )
    )
    (response,) = doc
    assert response.findtext(D + "href") == "/mount/locked%20dir/a%26b/"
    assert response.findtext(D + "status") == "HTTP/1.1 423 Locked"
    error = response.find(D + "error")
    assert error is not None
    (condition,) = error
    assert condition.tag == D + "lock-token-submitted"
    # The named lock root is a collection: its href ends with a slash (RFC 4918 5.2).
    assert [h.text for h in condition] == ["/mount/locked%20dir/"]
    assert response.findtext(D + "responsedescription") == "locked by <someone>"


def test_member_response_plain_failure() -> None:
    member = MemberStatus("/f.txt", 403)
    (response,) = parse(
        join(xmlout.multistatus([xmlout.member_response("", member, lambda path: False)]))
    )
    assert response.findtext(D + "href") == "/f.txt"
    assert response.findtext(D + "status") == "HTTP/1.1 403 Forbidden"
    assert response.find(D + "error") is None
    assert response.find(D + "responsedescription") is None


def test_prop_response_parses_back() -> None:
    response = PropResponse(
        "/a b/c",
        True,
        [
            PropStat(
                200,
                [
                    (D + "getetag", '<D:getetag>"e&amp;1"</D:getetag>'),
                    ("{urn:z}dead", '<Z:dead xmlns:Z="urn:z">v</Z:dead>'),
                ],
            ),
            PropStat(404, [("{urn:z}missing", None), ("{}bare", None)]),
            PropStat(
                403,
                [(D + "getcontentlength", None)],
                condition="cannot-modify-protected-property",
                message="protected",
            ),
        ],
    )
    doc = parse(join(xmlout.multistatus([xmlout.prop_response("/p", response)])))
    (resp,) = doc
    assert resp.findtext(D + "href") == "/p/a%20b/c/"
    assert resp.find(D + "status") is None
    propstats = resp.findall(D + "propstat")
    assert [ps.findtext(D + "status") for ps in propstats] == [
        "HTTP/1.1 200 OK",
        "HTTP/1.1 404 Not Found",
        "HTTP/1.1 403 Forbidden",
    ]
    ok = propstats[0].find(D + "prop")
    assert [c.tag for c in ok] == [D + "getetag", "{urn:z}dead"]
    assert ok[0].text == '"e&1"'
    assert ok[1].text == "v"
    missing = propstats[1].find(D + "prop")
    assert [c.tag for c in missing] == ["{urn:z}missing", "bare"]
    assert all(len(c) == 0 and not c.text for c in missing)
    error = propstats[2].find(D + "error")
    assert error is not None
    assert [c.tag for c in error] == [D + "cannot-modify-protected-property"]
    assert propstats[2].findtext(D + "responsedescription") == "protected"


def test_prop_response_with_status_only() -> None:
    response = PropResponse("/gone", False, status=404, message="vanished & gone")
    (resp,) = parse(join(xmlout.multistatus([xmlout.prop_response("", response)])))
    assert resp.findtext(D + "href") == "/gone"
    assert resp.findtext(D + "status") == "HTTP/1.1 404 Not Found"
    assert resp.findtext(D + "responsedescription") == "vanished & gone"
    assert resp.find(D + "propstat") is None


def test_prop_response_root_href() -> None:
    response = PropResponse("/", True, [PropStat(200, [])])
    (resp,) = parse(join(xmlout.multistatus([xmlout.prop_response("", response)])))
    assert resp.findtext(D + "href") == "/"


def test_error_body() -> None:
    root = parse(xmlout.error_body("propfind-finite-depth"))
    assert root.tag == D + "error"
    assert [c.tag for c in root] == [D + "propfind-finite-depth"]
    root = parse(xmlout.error_body("lock-token-submitted", ["/a%20b", "/c&d"]))
    (condition,) = root
    assert condition.tag == D + "lock-token-submitted"
    assert [h.tag for h in condition] == [D + "href", D + "href"]
    assert [h.text for h in condition] == ["/a%20b", "/c&d"]


def test_prop_document() -> None:
    root = parse(xmlout.prop_document(["<D:lockdiscovery/>", xmlout.element("{urn:x}y", "z")]))
    assert root.tag == D + "prop"
    assert [c.tag for c in root] == [D + "lockdiscovery", "{urn:x}y"]


# -- properties (hypothesis) -------------------------------------------------------------------

INVALID_XML_CHARS = {*range(9), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF}


def expected_after_escape(text: str) -> str:
    return "".join("\ufffd" if ord(c) in INVALID_XML_CHARS else c for c in text)


any_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),  # everything encodable, control characters included
        st.sampled_from("&<>\"'\r\n\t\x00\x1f\ufffe\uffff\U00010000\U0010fffd]]>"),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_escape_in_element_always_parses_and_round_trips(text: str) -> None:
    for wrapped in (
        "<x>" + xmlout.escape(text) + "</x>",
        xmlout.element("{urn:t}x", xmlout.escape(text)),
    ):
        el = parse(wrapped)
        assert (el.text or "") == expected_after_escape(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(any_text, max_size=5))
def test_displayname_responses_always_parse(names: list[str]) -> None:
    responses = [
        xmlout.prop_response(
            "",
            PropResponse(
                "/n",
                False,
                [
                    PropStat(
                        200,
                        [(D + "displayname", xmlout.element(D + "displayname", xmlout.escape(n)))],
                    )
                ],
            ),
        )
        for n in names
    ]
    root = parse(join(xmlout.multistatus(responses, description=names[0] if names else "")))
    found = [r.find(f"{D}propstat/{D}prop/{D}displayname") for r in root.findall(D + "response")]
    assert [(el.text or "") for el in found] == [expected_after_escape(n) for n in names]


xml_text = st.text(
    alphabet=st.one_of(
        st.characters(
            codec="utf-8",
            exclude_categories=("Cs",),
        ).filter(lambda c: ord(c) not in INVALID_XML_CHARS),
        st.sampled_from("&<>\"'\r\n\t]]>\U00010000"),
    ),
    max_size=40,
)
ncname = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,12}", fullmatch=True).filter(
    lambda s: not s.lower().startswith("xml")
)
namespace = st.one_of(
    st.sampled_from(["urn:z", "http://ns.example.com/props/", "DAV:", "urn:x:a%20b", ""]),
    st.from_regex(r"urn:[a-z]{1,8}:[A-Za-z0-9._~-]{0,12}", fullmatch=True),
)
prefix = st.one_of(st.none(), st.sampled_from(["D", "Z", "ns0", "a"]))


@settings(max_examples=200, deadline=None)
@given(namespace, ncname, xml_text, prefix, st.booleans())
def test_dead_property_value_reparses_to_the_same_element(
    ns: str, local: str, text: str, pfx: str | None, declare_on_root: bool
) -> None:
    if ns == "":
        pfx = None  # a prefix cannot be bound to no namespace
    dav_prefix = "W" if pfx == "D" else "D"  # the client may use D: for its own namespace
    nsmap: dict[str | None, str] = {dav_prefix: "DAV:"}
    if ns and declare_on_root and pfx is not None:
        nsmap[pfx] = ns  # declared on the root, inherited by the property
    root = etree.Element("{DAV:}propertyupdate", nsmap=nsmap)
    prop_el = etree.SubElement(etree.SubElement(root, "{DAV:}set"), "{DAV:}prop")
    tag = f"{{{ns}}}{local}" if ns else local
    el = etree.SubElement(prop_el, tag, nsmap={pfx: ns} if ns else None)
    el.text = text
    body = etree.tostring(root, xml_declaration=True, encoding="utf-8")

    (change,) = parse_propertyupdate(body)
    assert change.name == f"{{{ns}}}{local}"
    assert change.value is not None
    back = in_dav_doc(change.value)
    assert back.tag == tag
    assert (back.text or "") == text
    assert len(back) == 0
