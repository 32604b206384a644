"""RFC 4918 requirements on properties: dead-property infosets (4.3, 17), PROPPATCH (9.2), the
property elements (14) and the live properties (15), each test naming the ids it checks."""

from __future__ import annotations

import email.utils
import re
from typing import Any

import pytest
from helpers import COLOR, proppatch_body
from lxml import etree
from rfc4918_util import XML_TYPE, D, code, prop, propfind, xml

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
LIVE = [
    "creationdate",
    "displayname",
    "getcontentlength",
    "getcontenttype",
    "getetag",
    "getlastmodified",
    "lockdiscovery",
    "resourcetype",
    "supportedlock",
]


def update(*instructions: str) -> bytes:
    """A propertyupdate body of `set`/`remove` instructions, each given as its inner XML."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:">'
        + "".join(instructions)
        + "</D:propertyupdate>"
    ).encode()


def set_(inner: str) -> str:
    return f"<D:set><D:prop>{inner}</D:prop></D:set>"


def remove(inner: str) -> str:
    return f"<D:remove><D:prop>{inner}</D:prop></D:remove>"


def proppatch(server: Any, path: str, body: bytes) -> dict[str, int]:
    """PROPPATCH; the 207's {property tag: status}."""
    r = server.request("PROPPATCH", path, headers=XML_TYPE, data=body)
    assert r.status_code == 207, (r.status_code, r.text)
    result = {}
    for propstat in xml(r.content).iter(D + "propstat"):
        for element in propstat.findall(D + "prop/*"):
            result[element.tag] = code(propstat.findtext(D + "status"))
    return result


@pytest.fixture
def box(server: Any) -> Any:
    (server.root / "f.txt").write_bytes(b"content")
    (server.root / "c").mkdir()
    return server


# -- 4.3 and 17: dead properties keep their XML -------------------------------------------------

RICH = (
    '<z:rich xmlns:z="urn:t" xmlns:y="urn:y" xml:lang="en-GB">lead '
    '<y:child y:attr="1">inner <z:leaf>deep</z:leaf></y:child> mixed <y:other/>tail'
    "</z:rich>"
)


@pytest.mark.rfc4918("R-002", "R-255", "R-003")
def test_dead_property_keeps_its_infoset_and_prefixes(box: Any) -> None:
    assert proppatch(box, "/f.txt", update(set_(RICH))) == {"{urn:t}rich": 200}
    status, element = prop(box, "/f.txt", "{urn:t}rich")
    assert status == 200
    sent = etree.fromstring(RICH)
    # Exclusive canonical XML: the same infoset, whatever the enclosing document declares.
    same = etree.tostring(element, method="c14n", exclusive=True)
    assert same == etree.tostring(sent, method="c14n", exclusive=True)
    assert element.prefix == "z"
    assert element.find("{urn:y}child").prefix == "y"


@pytest.mark.rfc4918("R-005")
def test_xml_space_changes_no_whitespace(box: Any) -> None:
    value = '<x:w xmlns:x="urn:t" xml:space="default">  two  spaces\n </x:w>'
    assert proppatch(box, "/f.txt", update(set_(value))) == {"{urn:t}w": 200}
    assert prop(box, "/f.txt", "{urn:t}w")[1].text == "  two  spaces\n "


@pytest.mark.rfc4918("R-216", "R-081")
def test_set_value_and_xml_lang_persist_across_restart(box: Any) -> None:
    value = '<x:color xmlns:x="urn:t" xml:lang="de">rot</x:color>'
    assert proppatch(box, "/f.txt", update(set_(value))) == {COLOR: 200}
    box.restart()
    status, element = prop(box, "/f.txt", COLOR)
    assert (status, element.text, element.get(XML_LANG)) == (200, "rot", "de")


# -- 9.2 PROPPATCH ------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-080", "R-086")
def test_proppatch_set_and_remove_answer_207(box: Any) -> None:
    body = update(set_('<x:a xmlns:x="urn:t">1</x:a>'), remove('<x:b xmlns:x="urn:t"/>'))
    assert proppatch(box, "/f.txt", body) == {"{urn:t}a": 200, "{urn:t}b": 200}
    assert proppatch(box, "/f.txt", update(remove('<x:a xmlns:x="urn:t"/>'))) == {"{urn:t}a": 200}
    assert prop(box, "/f.txt", "{urn:t}a")[0] == 404


@pytest.mark.rfc4918("R-082")
@pytest.mark.parametrize(
    "body",
    [
        b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
        b"<propertyupdate><set><prop><a>1</a></prop></set></propertyupdate>",
    ],
)
def test_proppatch_body_must_be_a_dav_propertyupdate(box: Any, body: bytes) -> None:
    r = box.request("PROPPATCH", "/f.txt", headers=XML_TYPE, data=body)
    assert r.status_code == 400


@pytest.mark.rfc4918("R-083")
def test_instructions_run_in_document_order(box: Any) -> None:
    body = update(
        set_('<x:color xmlns:x="urn:t">1</x:color>'),
        remove('<x:color xmlns:x="urn:t"/>'),
        set_('<x:color xmlns:x="urn:t">2</x:color>'),
    )
    assert proppatch(box, "/f.txt", body) == {COLOR: 200}
    assert prop(box, "/f.txt", COLOR)[1].text == "2"
    then_removed = update(
        set_('<x:color xmlns:x="urn:t">3</x:color>'), remove('<x:color xmlns:x="urn:t"/>')
    )
    assert proppatch(box, "/f.txt", then_removed) == {COLOR: 200}
    assert prop(box, "/f.txt", COLOR)[0] == 404


@pytest.mark.rfc4918("R-084", "R-085", "R-088", "R-243")
def test_a_failing_instruction_undoes_all(box: Any) -> None:
    assert proppatch(box, "/f.txt", proppatch_body(COLOR, "before")) == {COLOR: 200}
    body = update(
        set_('<x:color xmlns:x="urn:t">after</x:color><x:new xmlns:x="urn:t">n</x:new>'),
        set_("<D:getetag>forged</D:getetag>"),
    )
    r = box.request("PROPPATCH", "/f.txt", headers=XML_TYPE, data=body)
    assert r.status_code == 207
    [response] = xml(r.content).findall(D + "response")
    statuses = {}
    for propstat in response.findall(D + "propstat"):
        status = code(propstat.findtext(D + "status"))
        for element in propstat.findall(D + "prop/*"):
            statuses[element.tag] = status
        if status == 403:
            conditions = [c.tag for c in propstat.findall(D + "error/*")]
            assert conditions == [D + "cannot-modify-protected-property"]
    assert statuses == {COLOR: 424, "{urn:t}new": 424, D + "getetag": 403}
    assert prop(box, "/f.txt", COLOR)[1].text == "before"
    assert prop(box, "/f.txt", "{urn:t}new")[0] == 404


@pytest.mark.rfc4918("R-231", "R-233", "R-237", "R-239", "R-242")
@pytest.mark.parametrize(
    "name", ["getetag", "getlastmodified", "lockdiscovery", "resourcetype", "supportedlock"]
)
def test_protected_live_properties(box: Any, name: str) -> None:
    before = prop(box, "/f.txt", D + name)
    assert proppatch(box, "/f.txt", update(set_(f"<D:{name}>x</D:{name}>"))) == {D + name: 403}
    assert proppatch(box, "/f.txt", update(remove(f"<D:{name}/>"))) == {D + name: 403}
    after = prop(box, "/f.txt", D + name)
    assert etree.tostring(after[1]) == etree.tostring(before[1])


# -- 14 and 15: the live properties ------------------------------------------------------------


def check_live_value(name: str, element: etree._Element, is_collection: bool) -> None:
    """The value syntax of one RFC 4918 section 15 property."""
    text = element.text or ""
    if name == "creationdate":
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    elif name == "getlastmodified":
        assert email.utils.parsedate_to_datetime(text).tzinfo is not None
        assert text.endswith(" GMT")
    elif name == "getcontentlength":
        assert text.isdigit()
    elif name == "getetag":
        assert re.fullmatch(r'(W/)?"[^"]*"', text)
    elif name == "getcontenttype":
        assert re.fullmatch(r"[\w.+-]+/[\w.+-]+(;.*)?", text)
    elif name == "resourcetype":
        assert [child.tag for child in element] == ([D + "collection"] if is_collection else [])
        assert not text.strip()
    elif name == "supportedlock":
        for entry in element:
            assert entry.tag == D + "lockentry"
            assert entry.find(D + "lockscope") is not None
            assert entry.find(D + "locktype") is not None
    elif name == "lockdiscovery":
        assert all(child.tag == D + "activelock" for child in element)


@pytest.mark.rfc4918("R-001", "R-203", "R-240", "R-241", "R-220", "R-221", "R-030", "R-032")
@pytest.mark.parametrize("path", ["/f.txt", "/c/"])
def test_live_properties_follow_their_definitions(box: Any, path: str) -> None:
    found = propfind(box, path, *(D + name for name in LIVE))[path]
    is_collection = path.endswith("/")
    for name in LIVE:
        status, element = found[D + name]
        if is_collection and name in ("getcontentlength", "getcontenttype", "getetag"):
            continue  # optional on collections
        assert status == 200, name
        check_live_value(name, element, is_collection)


@pytest.mark.rfc4918("R-227", "R-228", "R-230", "R-232", "R-236", "R-217")
def test_get_headers_and_live_properties_agree(box: Any) -> None:
    get = box.request("GET", "/f.txt")
    found = propfind(box, "/f.txt", *(D + name for name in LIVE), D + "getcontentlanguage")
    props = {
        tag: element.text for tag, (status, element) in found["/f.txt"].items() if status == 200
    }
    assert props[D + "getcontentlength"] == get.headers["Content-Length"]
    assert props[D + "getcontenttype"] == get.headers["Content-Type"]
    assert props[D + "getetag"] == get.headers["ETag"]
    assert props[D + "getlastmodified"] == get.headers["Last-Modified"]
    for name in ("getcontentlength", "getcontenttype", "getetag", "getlastmodified"):
        text = props[D + name] or ""
        assert text == text.strip(" \t\r\n"), name  # no linear white space around the value
    # davserver sends no Content-Language, and then the property is not defined either.
    assert "Content-Language" not in get.headers
    assert D + "getcontentlanguage" not in props


@pytest.mark.rfc4918("R-224")
def test_displayname_does_not_depend_on_the_request_uri(box: Any) -> None:
    (box.root / "a b.txt").write_bytes(b"x")
    first = prop(box, "/a%20b.txt", D + "displayname")[1].text
    second = propfind(box, "/a%20%62.txt", D + "displayname")
    assert [element.text for (_, element) in (p[D + "displayname"] for p in second.values())] == [
        first
    ]


@pytest.mark.rfc4918("R-234", "R-235")
def test_property_changes_leave_last_modified(box: Any) -> None:
    before = prop(box, "/f.txt", D + "getlastmodified")[1].text
    assert proppatch(box, "/f.txt", proppatch_body()) == {COLOR: 200}
    assert prop(box, "/f.txt", D + "getlastmodified")[1].text == before
    assert box.request("HEAD", "/f.txt").headers["Last-Modified"] == before


@pytest.mark.rfc4918("R-219", "R-136", "R-134")
def test_move_keeps_creationdate_and_live_properties(box: Any) -> None:
    # (An ETag belongs to a URL, so the moved resource may have a new one.)
    names = (D + "creationdate", D + "getcontentlength", D + "getcontenttype")
    before = propfind(box, "/f.txt", *names)["/f.txt"]
    r = box.request("MOVE", "/f.txt", headers={"Destination": "/moved.txt"})
    assert r.status_code == 201
    after = propfind(box, "/moved.txt", *names)["/moved.txt"]
    for name in names:
        assert after[name][0] == 200
        assert after[name][1].text == before[name][1].text, name


@pytest.mark.rfc4918("R-113", "R-114", "R-115", "R-229")
def test_copy_duplicates_dead_and_keeps_live_properties_live(box: Any) -> None:
    assert proppatch(box, "/f.txt", proppatch_body()) == {COLOR: 200}
    assert box.request("COPY", "/f.txt", headers={"Destination": "/copy.txt"}).status_code == 201
    assert prop(box, "/copy.txt", COLOR)[1].text == "red"
    for name in ("getcontentlength", "getcontenttype"):
        assert prop(box, "/copy.txt", D + name)[1].text == prop(box, "/f.txt", D + name)[1].text
    # Live properties stay live: they follow the copy's own body, not the source's value.
    assert box.request("PUT", "/copy.txt", data=b"longer content").status_code == 204
    assert prop(box, "/copy.txt", D + "getcontentlength")[1].text == "14"
    assert (
        proppatch(box, "/copy.txt", update(set_("<D:getcontentlength>1</D:getcontentlength>")))[
            D + "getcontentlength"
        ]
        == 403
    )


@pytest.mark.rfc4918("R-137")
def test_dead_properties_move_with_the_resource(box: Any) -> None:
    assert proppatch(box, "/c/", proppatch_body()) == {COLOR: 200}
    assert box.request("MOVE", "/c/", headers={"Destination": "/d/"}).status_code == 201
    assert prop(box, "/d/", COLOR)[1].text == "red"
    assert box.request("MKCOL", "/c/").status_code == 201
    assert prop(box, "/c/", COLOR)[0] == 404
