"""Issue 14 (an independent review), findings 4, 6 and 11, against a live server: property
names XML cannot carry, the size of a lock's owner, and the size of a property value set
through a batch. Every XML answer is parsed with lxml.
(Finding 5, the cost of namespace declarations, is tested on the parser in test_xml.py.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from conftest import LiveServer
from helpers import COLOR, lockinfo, prop_xml, propfind_body
from lxml import etree

from davserver.methods.lock import MAX_OWNER
from davserver.xmlnames import XML_NS, XMLNS_NS

D = "{DAV:}"
XML_TYPE = {"Content-Type": 'application/xml; charset="utf-8"'}

# Names a JSON batch once stored: not XML names (a², ªb), or in a namespace no element may be.
UNWRITABLE = ["{urn:x}a\xb2", "{urn:x}\xaab", "{" + XML_NS + "}a", "{" + XMLNS_NS + "}a", "{a b}c"]
# XML names that Python's \w does not take: MIDDLE DOT, a combining acute accent.
UNUSUAL = ["{urn:x}a\xb7b", "{urn:x}ae\u0301"]


def batch(server: LiveServer, *operations: dict[str, Any]) -> requests.Response:
    body = json.dumps({"operations": list(operations)}).encode()
    return server.request("POST", "/", data=body, headers={"Content-Type": "application/json"})


def xml(response: requests.Response) -> etree._Element:
    """A 207's body, which must be well-formed XML."""
    assert response.status_code == 207, response.text
    return etree.fromstring(response.content)


def found(document: etree._Element, href_end: str) -> dict[str, str]:
    """The properties one response of a PROPFIND reports with 200: name -> text."""
    (response,) = [
        r
        for r in document.iter(D + "response")
        if (r.findtext(D + "href") or "").endswith(href_end)
    ]
    props: dict[str, str] = {}
    for propstat in response.iter(D + "propstat"):
        if (propstat.findtext(D + "status") or "").split()[1] == "200":
            for element in propstat.iterfind(D + "prop/*"):
                props[element.tag] = element.text or ""
    return props


def propfind(server: LiveServer, path: str, depth: str, body: bytes = b"") -> etree._Element:
    return xml(server.request("PROPFIND", path, headers={"Depth": depth, **XML_TYPE}, data=body))


# -- finding 4: property names ------------------------------------------------------------------


@pytest.mark.parametrize("name", UNWRITABLE)
def test_batch_refuses_to_set_a_name_xml_cannot_carry(server: LiveServer, name: str) -> None:
    (server.root / "f").write_bytes(b"x")
    r = batch(server, {"op": "proppatch", "path": "f", "set": {name: "v"}})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid-operation"
    assert r.json()["index"] == 0
    assert server.services.props.get("/f") == {}


def test_batch_sets_xml_names_that_are_not_python_words(server: LiveServer) -> None:
    (server.root / "f").write_bytes(b"x")
    r = batch(server, {"op": "proppatch", "path": "f", "set": dict.fromkeys(UNUSUAL, "v")})
    assert r.status_code == 207, r.text
    assert [x["status"] for x in r.json()["results"]] == [200]
    listed = found(propfind(server, "/", "1"), "/f")
    assert {name: listed.get(name) for name in UNUSUAL} == dict.fromkeys(UNUSUAL, "v")


def test_stored_names_xml_cannot_carry_stay_out_of_listings_and_can_be_removed(
    server: LiveServer,
) -> None:
    """Properties a batch stored before names were checked (written as that batch wrote
    them) are left out of every listing, which stays well-formed for every kind of PROPFIND;
    a batch remove takes their names and deletes them."""
    (server.root / "d").mkdir()
    (server.root / "d" / "f").write_bytes(b"x")
    stored = [(COLOR, prop_xml(COLOR, "red"))]
    for name in UNWRITABLE:
        namespace, _, local = name[1:].partition("}")
        stored.append((name, f'<R:{local} xmlns:R="{namespace}">v</R:{local}>'))
    server.services.props.patch("/d/f", stored)

    assert found(propfind(server, "/d/", "1"), "/d/f")[COLOR] == "red"
    assert found(propfind(server, "/d/f", "0"), "/d/f")[COLOR] == "red"
    names = propfind(server, "/d/f", "0", b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>')
    assert COLOR in found(names, "/d/f")
    assert not set(UNWRITABLE) & set(found(names, "/d/f"))
    asked = propfind(server, "/d/f", "0", propfind_body(COLOR))
    assert found(asked, "/d/f") == {COLOR: "red"}
    r = batch(server, {"op": "propfind", "path": "d/f"})
    (item,) = r.json()["results"]
    assert item["status"] == 200
    assert item["props"][COLOR] == "red"
    assert not set(UNWRITABLE) & set(item["props"])

    r = batch(server, {"op": "proppatch", "path": "d/f", "remove": UNWRITABLE})
    assert [x["status"] for x in r.json()["results"]] == [200]
    assert set(server.services.props.get("/d/f")) == {COLOR}


def test_xml_proppatch_refuses_to_set_a_property_in_the_xml_namespace(server: LiveServer) -> None:
    (server.root / "f").write_bytes(b"x")
    body = (
        b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><xml:a>v</xml:a>'
        b"</D:prop></D:set></D:propertyupdate>"
    )
    r = server.request("PROPPATCH", "/f", data=body, headers=XML_TYPE)
    assert r.status_code == 400, r.text
    assert server.services.props.get("/f") == {}


def test_a_name_in_the_xml_namespace_is_answered_in_well_formed_xml(server: LiveServer) -> None:
    """Such a name can still be asked for and removed; the answer names it with the `xml`
    prefix, the only one it may have."""
    (server.root / "f").write_bytes(b"x")
    asked = propfind(
        server, "/f", "0", b'<D:propfind xmlns:D="DAV:"><D:prop><xml:a/></D:prop></D:propfind>'
    )
    (missing,) = asked.iter("{" + XML_NS + "}a")
    assert missing.getparent().getparent().findtext(D + "status") == "HTTP/1.1 404 Not Found"
    body = (
        b'<D:propertyupdate xmlns:D="DAV:"><D:remove><D:prop><xml:a/>'
        b"</D:prop></D:remove></D:propertyupdate>"
    )
    removed = xml(server.request("PROPPATCH", "/f", data=body, headers=XML_TYPE))
    (name,) = removed.iter("{" + XML_NS + "}a")
    assert name.getparent().getparent().findtext(D + "status") == "HTTP/1.1 200 OK"


# -- finding 6: the lock owner ------------------------------------------------------------------


def test_a_lock_owner_over_the_limit_is_413_and_locks_nothing(server: LiveServer) -> None:
    (server.root / "d").mkdir()
    text = "o" * MAX_OWNER  # with its tags, just over the limit
    r = server.request("LOCK", "/d", data=lockinfo(text, "shared"), headers=XML_TYPE)
    assert r.status_code == 413, r.text
    assert str(MAX_OWNER) in r.text
    assert server.services.locks.covering("/d", server.services.clock()) == []


def test_a_lock_owner_within_the_limit_is_kept(server: LiveServer) -> None:
    (server.root / "d").mkdir()
    text = "o" * (MAX_OWNER - 100)
    r = server.request("LOCK", "/d", data=lockinfo(text, "shared"), headers=XML_TYPE)
    assert r.status_code == 200, r.text
    (owner,) = etree.fromstring(r.content).iter(D + "owner")
    assert owner.text == text


# -- finding 11: property values through a batch ------------------------------------------------


def test_a_batch_value_larger_than_an_xml_body_may_be_is_refused(make_server: Any) -> None:
    """A PROPPATCH body is limited to max_xml_body, so no value stored through XML is larger;
    a batch body may be 16 times larger and stored a 15 MB value."""
    server = make_server(max_xml_body=4096)
    (server.root / "f").write_bytes(b"x")
    r = batch(
        server,
        {"op": "proppatch", "path": "f", "set": {COLOR: "x" * 4096, "{urn:x}other": "kept?"}},
        {"op": "proppatch", "path": "f", "set": {COLOR: "y" * 3000}},
    )
    assert r.status_code == 207, r.text
    first, second = r.json()["results"]
    assert (first["status"], first["error"]) == (413, "too-large")
    assert first["propstat"] == {COLOR: 413, "{urn:x}other": 424}
    assert second["status"] == 200
    assert set(server.services.props.get("/f")) == {COLOR}
    assert found(propfind(server, "/f", "0"), "/f")[COLOR] == "y" * 3000
