"""RFC 4918 requirements on PROPFIND, MKCOL, DELETE, PUT, OPTIONS, conditional headers and the
XML of requests and answers (sections 5, 8, 9.1, 9.3, 9.6, 9.7, 10, 12, 13, 17, 18), one test per
requirement or small group, each naming the ids it checks (tests/data/rfc4918-requirements.tsv).
"""

from __future__ import annotations

import email.utils
import os
from typing import Any
from urllib.parse import urlsplit

import pytest
from helpers import COLOR, lockinfo, propfind_body, proppatch_body
from rfc4918_util import (
    XML_TYPE,
    D,
    code,
    error_conditions,
    lock,
    prop,
    propfind,
    propstats,
    xml,
)


@pytest.fixture
def tree(server: Any) -> Any:
    """/c/ with a file a.txt and a sub-collection d/ holding b.txt, plus /top.txt."""
    (server.root / "c" / "d").mkdir(parents=True)
    (server.root / "c" / "a.txt").write_bytes(b"aaa")
    (server.root / "c" / "d" / "b.txt").write_bytes(b"bb")
    (server.root / "top.txt").write_bytes(b"top")
    return server


# -- 5: the URL namespace -----------------------------------------------------------------------


@pytest.mark.rfc4918("R-006", "R-009")
def test_every_member_url_is_a_member_of_its_parent_collection(tree: Any) -> None:
    found = propfind(tree, "/", D + "resourcetype", depth="infinity")
    for href in found:
        if href == "/":
            continue
        parent = href.rstrip("/").rsplit("/", 1)[0] + "/"
        assert parent in found, href
        assert found[parent][D + "resourcetype"][1].find(D + "collection") is not None


@pytest.mark.rfc4918("R-007")
def test_one_mapping_per_segment(tree: Any) -> None:
    assert tree.request("PUT", "/c/x", data=b"1").status_code == 201
    assert tree.request("PUT", "/c/x", data=b"2").status_code == 204
    assert tree.request("MKCOL", "/c/x").status_code == 405
    names = [h for h in propfind(tree, "/c/", depth="1") if h.rstrip("/").endswith("/x")]
    assert names == ["/c/x"]


@pytest.mark.rfc4918("R-014")
def test_propfind_names_each_member_as_it_was_created(tree: Any) -> None:
    assert tree.request("PUT", "/c/MiXed.txt", data=b"1").status_code == 201
    found = propfind(tree, "/c/", depth="1")
    assert [h for h in found if h.lower().endswith("mixed.txt")] == ["/c/MiXed.txt"]


@pytest.mark.rfc4918("R-011")
def test_collection_without_trailing_slash_is_the_collection(tree: Any) -> None:
    r = tree.request("PROPFIND", "/c", headers={"Depth": "0"})
    assert r.status_code == 207
    assert list(propstats(r.content)) == ["/c/"]


@pytest.mark.rfc4918("R-012")
@pytest.mark.parametrize("method", ["PROPFIND", "GET", "HEAD"])
def test_collection_without_trailing_slash_names_content_location(tree: Any, method: str) -> None:
    r = tree.request(method, "/c/d", headers={"Depth": "0"})
    assert r.status_code == (207 if method == "PROPFIND" else 200)
    assert urlsplit(r.headers["Content-Location"]).path == "/c/d/"
    for path in ("/c/d/", "/top.txt"):
        assert "Content-Location" not in tree.request(method, path, headers={"Depth": "0"}).headers


@pytest.mark.rfc4918("R-013", "R-058")
def test_collection_urls_in_answers_end_with_slash(tree: Any) -> None:
    found = propfind(tree, "/", D + "resourcetype", depth="infinity")
    for href, props in found.items():
        is_collection = props[D + "resourcetype"][1].find(D + "collection") is not None
        assert href.endswith("/") == is_collection, href


# -- 8: general request and response handling ---------------------------------------------------


@pytest.mark.rfc4918("R-050", "R-071")
def test_xml_answers_are_application_xml(tree: Any) -> None:
    r = tree.request("PROPFIND", "/c/", headers={"Depth": "1", **XML_TYPE})
    assert r.status_code == 207
    assert r.headers["Content-Type"].split(";")[0] == "application/xml"
    locked = tree.request("LOCK", "/top.txt", headers=XML_TYPE, data=lockinfo())
    assert locked.headers["Content-Type"].split(";")[0] == "application/xml"


@pytest.mark.rfc4918("R-051")
@pytest.mark.parametrize("content_type", ["text/xml", "application/xml"])
def test_text_xml_and_application_xml_bodies_are_accepted(tree: Any, content_type: str) -> None:
    r = tree.request(
        "PROPFIND",
        "/top.txt",
        headers={"Depth": "0", "Content-Type": content_type},
        data=propfind_body(D + "getcontentlength"),
    )
    assert r.status_code == 207
    assert propstats(r.content)["/top.txt"][D + "getcontentlength"][1].text == "3"


@pytest.mark.rfc4918("R-052")
def test_namespace_prefixes_defaults_cdata_and_character_references(tree: Any) -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?>'
        b'<propertyupdate xmlns="DAV:"><set><prop>'
        b'<q:color xmlns:q="urn:t"><![CDATA[r<e>d]]>&#x263A;</q:color>'
        b"</prop></set></propertyupdate>"
    )
    assert tree.request("PROPPATCH", "/top.txt", data=body).status_code == 207
    odd = (
        b'<?xml version="1.0" encoding="utf-8"?>'
        b'<z:propfind xmlns:z="DAV:"><z:prop><color xmlns="urn:t"/></z:prop></z:propfind>'
    )
    found = propfind(tree, "/top.txt", body=odd)["/top.txt"]
    assert found[COLOR][0] == 200
    assert found[COLOR][1].text == "r<e>d\u263a"


@pytest.mark.rfc4918("R-053", "R-206", "R-201", "R-076")
def test_multistatus_is_well_formed_and_every_response_has_an_href(tree: Any) -> None:
    r = tree.request("PROPFIND", "/", headers={"Depth": "infinity"})
    doc = xml(r.content)  # lxml raises on anything not well-formed or namespace-correct
    responses = doc.findall(D + "response")
    assert len(responses) == 6
    for response in responses:
        hrefs = response.findall(D + "href")
        assert len(hrefs) == 1
        assert (hrefs[0].text or "").startswith("/")


@pytest.mark.rfc4918("R-054")
@pytest.mark.parametrize("method", ["PROPFIND", "PROPPATCH", "LOCK"])
def test_malformed_xml_body_is_400_and_changes_nothing(tree: Any, method: str) -> None:
    r = tree.request(method, "/new.txt", headers=XML_TYPE, data=b"<D:propfind xmlns:D='DAV:'>")
    assert r.status_code == 400
    assert tree.request("GET", "/new.txt").status_code == 404


@pytest.mark.rfc4918("R-056", "R-057", "R-215")
def test_hrefs_share_one_form_without_dot_segments(tree: Any) -> None:
    r = tree.request("PROPFIND", "/c/./d/../", headers={"Depth": "infinity"})
    assert r.status_code == 207
    hrefs = [h.text or "" for h in xml(r.content).iter(D + "href")]
    assert sorted(hrefs) == ["/c/", "/c/a.txt", "/c/d/", "/c/d/b.txt"]
    assert all("/./" not in h and "/../" not in h for h in hrefs)


@pytest.mark.rfc4918("R-059", "R-060")
@pytest.mark.parametrize("method", ["MKCOL", "UNLOCK", "DELETE", "COPY", "MOVE"])
def test_an_unexpected_body_is_415(tree: Any, method: str) -> None:
    r = tree.request(
        method,
        "/c/d/",
        headers={
            "Content-Type": "application/x-whatever",
            "Lock-Token": "<urn:uuid:x>",
            "Destination": "/elsewhere/",
        },
        data=b"something",
    )
    assert r.status_code == 415
    assert (tree.root / "c" / "d" / "b.txt").exists()
    assert not (tree.root / "elsewhere").exists()


@pytest.mark.rfc4918("R-062")
def test_etag_and_last_modified_stay_when_the_body_stays(tree: Any) -> None:
    before = tree.request("HEAD", "/top.txt")
    assert tree.request("PROPPATCH", "/top.txt", data=proppatch_body()).status_code == 207
    assert tree.request("LOCK", "/top.txt", headers=XML_TYPE, data=lockinfo()).status_code == 200
    after = tree.request("HEAD", "/top.txt")
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.headers["Last-Modified"] == before.headers["Last-Modified"]


@pytest.mark.rfc4918("R-063", "R-064")
def test_last_modified_grows_and_etags_are_never_reused(tree: Any) -> None:
    seen = set()
    stamps = []
    for round_ in range(3):
        body = f"version {round_}".encode()
        expected = 204 if round_ else 201
        assert tree.request("PUT", "/v.txt", data=body).status_code == expected
        # Back-date the file so each version's second differs without sleeping.
        os.utime(tree.root / "v.txt", (1_000_000 + round_ * 10, 1_000_000 + round_ * 10))
        head = tree.request("HEAD", "/v.txt")
        assert head.headers["ETag"] not in seen
        seen.add(head.headers["ETag"])
        stamps.append(email.utils.parsedate_to_datetime(head.headers["Last-Modified"]))
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 3
    # The same body written again is still a new representation: a new ETag.
    assert tree.request("PUT", "/v.txt", data=b"version 0").status_code == 204
    assert tree.request("HEAD", "/v.txt").headers["ETag"] not in seen


# -- 9.1 PROPFIND -------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-065", "R-207")
@pytest.mark.parametrize("kind", ["prop", "allprop", "propname", "include"])
def test_propfind_body_kinds(tree: Any, kind: str) -> None:
    bodies = {
        "prop": propfind_body(D + "getcontentlength"),
        "allprop": b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
        "propname": b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>',
        "include": b'<D:propfind xmlns:D="DAV:"><D:allprop/>'
        b'<D:include><x:color xmlns:x="urn:t"/></D:include></D:propfind>',
    }
    assert tree.request("PROPPATCH", "/top.txt", data=proppatch_body()).status_code == 207
    found = propfind(tree, "/top.txt", body=bodies[kind])["/top.txt"]
    if kind == "prop":
        assert set(found) == {D + "getcontentlength"}
        return
    assert found[D + "getcontentlength"][0] == 200
    assert found[COLOR][0] == 200
    if kind == "propname":
        assert all(len(element) == 0 and not element.text for _, element in found.values())
    else:
        assert found[COLOR][1].text == "red"


@pytest.mark.rfc4918("R-066", "R-074", "R-068")
@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        ("0", ["/c/"]),
        ("1", ["/c/", "/c/a.txt", "/c/d/"]),
        ("infinity", ["/c/", "/c/a.txt", "/c/d/", "/c/d/b.txt"]),
        (None, ["/c/", "/c/a.txt", "/c/d/", "/c/d/b.txt"]),
    ],
)
def test_propfind_depths(tree: Any, depth: str | None, expected: list[str]) -> None:
    headers = {} if depth is None else {"Depth": depth}
    r = tree.request("PROPFIND", "/c/", headers=headers)
    assert r.status_code == 207
    assert sorted(propstats(r.content)) == expected


@pytest.mark.rfc4918("R-067", "R-079")
def test_refused_infinite_depth_is_403_propfind_finite_depth(make_server: Any) -> None:
    live = make_server(max_propfind_resources=2)
    for name in ("a", "b", "c"):
        (live.root / name).write_bytes(b"x")
    r = live.request("PROPFIND", "/", headers={"Depth": "infinity"})
    assert r.status_code == 403
    assert error_conditions(r.content) == [D + "propfind-finite-depth"]


@pytest.mark.rfc4918("R-070")
def test_empty_propfind_body_is_allprop(tree: Any) -> None:
    empty = propfind(tree, "/top.txt", body=b"")["/top.txt"]
    allprop = propfind(
        tree, "/top.txt", body=b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    )["/top.txt"]
    assert set(empty) == set(allprop)
    assert D + "getetag" in empty


@pytest.mark.rfc4918("R-072", "R-073", "R-213", "R-214")
def test_missing_property_is_404_in_its_own_propstat(tree: Any) -> None:
    r = tree.request(
        "PROPFIND",
        "/top.txt",
        headers={"Depth": "0"},
        data=propfind_body(D + "getcontentlength", "{urn:t}missing"),
    )
    [response] = xml(r.content).findall(D + "response")
    by_status = {}
    for propstat in response.findall(D + "propstat"):
        assert len(propstat.findall(D + "prop")) == 1
        assert len(propstat.findall(D + "status")) == 1
        by_status[code(propstat.findtext(D + "status"))] = [
            p.tag for p in propstat.findall(D + "prop/*")
        ]
    assert by_status == {200: [D + "getcontentlength"], 404: ["{urn:t}missing"]}


@pytest.mark.rfc4918("R-182")
@pytest.mark.parametrize("depth", ["0", "1", "infinity"])
def test_depth_is_ignored_on_a_non_collection(tree: Any, depth: str) -> None:
    r = tree.request("PROPFIND", "/top.txt", headers={"Depth": depth})
    assert list(propstats(r.content)) == ["/top.txt"]


@pytest.mark.rfc4918("R-211", "R-212")
def test_prop_elements_name_properties_and_hold_no_text(tree: Any) -> None:
    r = tree.request("PROPFIND", "/", headers={"Depth": "infinity"})
    for element in xml(r.content).iter(D + "prop"):
        assert not (element.text or "").strip()
        assert all(not (child.tail or "").strip() for child in element)
        assert len(element) >= 1


# -- 9.3 MKCOL ----------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-089")
@pytest.mark.parametrize("path", ["/c/", "/top.txt"])
def test_mkcol_on_a_mapped_url_is_405(tree: Any, path: str) -> None:
    assert tree.request("MKCOL", path).status_code == 405


@pytest.mark.rfc4918("R-090", "R-093", "R-196")
def test_mkcol_creates_an_empty_member_of_its_parent(tree: Any) -> None:
    r = tree.request("MKCOL", "/c/new")
    assert r.status_code == 201
    assert "/c/new/" in propfind(tree, "/c/", depth="1")
    assert list(propfind(tree, "/c/new/", depth="1")) == ["/c/new/"]


@pytest.mark.rfc4918("R-091", "R-092", "R-096")
def test_mkcol_without_parent_is_409_and_creates_nothing(tree: Any) -> None:
    assert tree.request("MKCOL", "/c/x/y/z").status_code == 409
    assert not (tree.root / "c" / "x").exists()
    assert tree.request("MKCOL", "/top.txt/z").status_code == 409


@pytest.mark.rfc4918("R-094")
def test_mkcol_with_a_body_is_415(tree: Any) -> None:
    r = tree.request("MKCOL", "/c/new", headers={"Content-Type": "text/plain"}, data=b"hello")
    assert r.status_code == 415
    assert not (tree.root / "c" / "new").exists()


@pytest.mark.rfc4918("R-087", "R-095", "R-112", "R-133", "R-151", "R-176")
def test_changing_methods_are_not_cacheable(tree: Any) -> None:
    answers = [
        tree.request("PROPPATCH", "/top.txt", data=proppatch_body()),
        tree.request("MKCOL", "/m"),
        tree.request("COPY", "/top.txt", headers={"Destination": "/copy.txt"}),
        tree.request("MOVE", "/copy.txt", headers={"Destination": "/moved.txt"}),
        tree.request("LOCK", "/moved.txt", headers=XML_TYPE, data=lockinfo()),
    ]
    token = answers[-1].headers["Lock-Token"]
    answers.append(tree.request("UNLOCK", "/moved.txt", headers={"Lock-Token": token}))
    statuses = [answer.status_code for answer in answers]
    assert statuses == [207, 201, 201, 201, 200, 204]
    for answer in answers:
        # Unsafe methods are never cacheable (RFC 7231 4.2.3); nothing here claims otherwise.
        assert "Expires" not in answer.headers
        assert "public" not in answer.headers.get("Cache-Control", "")
        assert "max-age" not in answer.headers.get("Cache-Control", "")


# -- 9.6 DELETE ---------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-098", "R-099", "R-100", "R-103")
def test_delete_removes_the_whole_tree(tree: Any) -> None:
    assert tree.request("DELETE", "/c/").status_code == 204  # no Depth: infinity
    for path in ("/c/", "/c/a.txt", "/c/d/", "/c/d/b.txt"):
        assert tree.request("GET", path).status_code == 404
        assert tree.request("HEAD", path).status_code == 404
        assert tree.request("PROPFIND", path, headers={"Depth": "0"}).status_code == 404
    assert list(propfind(tree, "/", depth="1")) == ["/", "/top.txt"]


@pytest.mark.rfc4918("R-101", "R-105", "R-106", "R-102")
def test_delete_with_a_locked_member_keeps_its_ancestors(tree: Any) -> None:
    lock(tree, "/c/d/b.txt", depth="0")
    r = tree.request("DELETE", "/c/")
    assert r.status_code == 207
    statuses = {
        urlsplit(resp.findtext(D + "href") or "").path: code(resp.findtext(D + "status"))
        for resp in xml(r.content).findall(D + "response")
    }
    assert statuses == {"/c/d/b.txt": 423}
    assert (tree.root / "c" / "d" / "b.txt").exists()
    assert (tree.root / "c" / "d").is_dir()
    assert not (tree.root / "c" / "a.txt").exists()


# -- 9.7 PUT ------------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-107")
def test_put_without_parent_is_409(tree: Any) -> None:
    assert tree.request("PUT", "/nowhere/x.txt", data=b"x").status_code == 409
    assert not (tree.root / "nowhere").exists()


@pytest.mark.rfc4918("R-109")
def test_put_on_a_collection_is_405(tree: Any) -> None:
    assert tree.request("PUT", "/c/", data=b"x").status_code == 405


# -- 10.1 OPTIONS and 18 compliance classes -----------------------------------------------------


@pytest.mark.rfc4918("R-177", "R-260", "R-263", "R-264", "R-179")
@pytest.mark.parametrize("path", ["/", "/c/", "/top.txt", "/missing"])
def test_options_advertises_classes_1_and_2(tree: Any, path: str) -> None:
    r = tree.request("OPTIONS", path)
    assert r.status_code == 200
    classes = [part.strip() for part in r.headers["DAV"].split(",")]
    assert "1" in classes
    assert "2" in classes
    if "3" in classes:
        assert "1" in classes
    for other in classes:
        assert other.isdigit() or (other.startswith("<") and other.endswith(">")), other


@pytest.mark.rfc4918("R-261", "R-175")
def test_class_2_methods_and_headers(tree: Any) -> None:
    allow = {m.strip() for m in tree.request("OPTIONS", "/top.txt").headers["Allow"].split(",")}
    assert {"LOCK", "UNLOCK"} <= allow
    r = tree.request(
        "LOCK", "/top.txt", headers={"Timeout": "Second-100", **XML_TYPE}, data=lockinfo()
    )
    assert r.status_code == 200
    # RFC 4918 defines no Timeout response header (18.2 keeps RFC 2518's wording): the granted
    # timeout is answered in DAV:timeout of the lock's DAV:activelock.
    assert xml(r.content).findtext(f"{D}lockdiscovery/{D}activelock/{D}timeout") == "Second-100"
    assert r.headers["Lock-Token"].startswith("<")
    found = propfind(tree, "/top.txt", D + "supportedlock", D + "lockdiscovery")["/top.txt"]
    assert found[D + "supportedlock"][0] == 200
    assert found[D + "lockdiscovery"][0] == 200
    unlock = tree.request("UNLOCK", "/top.txt", headers={"Lock-Token": r.headers["Lock-Token"]})
    assert unlock.status_code == 204


# -- 10.2 Depth, 12 status codes, 13 multistatus -----------------------------------------------


@pytest.mark.rfc4918("R-180")
def test_conditional_headers_apply_to_the_request_uri_only(tree: Any) -> None:
    # The collection is older than the date, its member newer: the condition holds for the
    # Request-URI only, and the Depth: infinity COPY takes the member as well.
    os.utime(tree.root / "c" / "a.txt", (2_000_000_000, 2_000_000_000))
    os.utime(tree.root / "c", (1_000_000_000, 1_000_000_000))
    before = email.utils.formatdate(900_000_000, usegmt=True)
    refused = tree.request(
        "COPY", "/c/", headers={"Destination": "/copy/", "If-Unmodified-Since": before}
    )
    assert refused.status_code == 412
    since = email.utils.formatdate(1_500_000_000, usegmt=True)
    r = tree.request(
        "COPY",
        "/c/",
        headers={"Destination": "/copy/", "Depth": "infinity", "If-Unmodified-Since": since},
    )
    assert r.status_code == 201
    assert (tree.root / "copy" / "a.txt").read_bytes() == b"aaa"
    assert (tree.root / "copy" / "d" / "b.txt").read_bytes() == b"bb"


@pytest.mark.rfc4918("R-197", "R-198")
def test_412_exactly_when_a_conditional_header_fails(tree: Any) -> None:
    assert tree.request("PUT", "/top.txt", data=b"a").status_code == 204
    failing = tree.request("PUT", "/top.txt", data=b"b", headers={"If-Match": '"nope"'})
    assert failing.status_code == 412
    r = tree.request("PUT", "/top.txt", data=b"c")
    assert r.status_code == 204
    # Overwriting without any conditional header: never 412.
    for method, path, extra in (
        ("COPY", "/top.txt", {"Destination": "/c/a.txt"}),
        ("MOVE", "/c/a.txt", {"Destination": "/top.txt"}),
        ("DELETE", "/c/d/", {}),
    ):
        assert tree.request(method, path, headers=extra).status_code == 204


@pytest.mark.rfc4918("R-199")
def test_no_1xx_status_in_multistatus(tree: Any) -> None:
    r = tree.request("PROPFIND", "/", headers={"Depth": "infinity", "Expect": "100-continue"})
    for status in xml(r.content).iter(D + "status"):
        assert not (status.text or "").split()[1].startswith("1")


# -- 16 error bodies and 17 extensibility -------------------------------------------------------


@pytest.mark.rfc4918("R-205", "R-244", "R-246")
def test_precondition_failures_have_a_dav_error_body(tree: Any) -> None:
    lock(tree, "/top.txt", depth="0")
    r = tree.request("PUT", "/top.txt", data=b"x")
    assert r.status_code == 423
    doc = xml(r.content)
    assert doc.tag == D + "error"
    assert len(doc) >= 1
    assert not (doc.text or "").strip()
    assert [child.tag for child in doc] == [D + "lock-token-submitted"]


@pytest.mark.rfc4918("R-254")
def test_unknown_elements_and_attributes_are_ignored(tree: Any) -> None:
    body = (
        b'<D:propfind xmlns:D="DAV:" xmlns:z="urn:z" z:a="1"><z:extra><D:allprop/></z:extra>'
        b'<D:prop z:b="2"><D:getcontentlength/><z:hint>x</z:hint></D:prop></D:propfind>'
    )
    found = propfind(tree, "/top.txt", body=body)["/top.txt"]
    assert found[D + "getcontentlength"][0] == 200
    # z:hint is a property name inside DAV:prop, so it is asked for (and missing).
    assert found["{urn:z}hint"][0] == 404
    assert D + "getetag" not in found


# The DAV: elements RFC 4918 14 and 15 define, and the two quota properties of RFC 4331.
DAV_ELEMENTS = {
    D + name
    for name in [
        "activelock",
        "allprop",
        "collection",
        "depth",
        "error",
        "exclusive",
        "href",
        "include",
        "location",
        "lockentry",
        "lockinfo",
        "lockroot",
        "lockscope",
        "locktoken",
        "locktype",
        "multistatus",
        "owner",
        "prop",
        "propertyupdate",
        "propfind",
        "propname",
        "propstat",
        "remove",
        "response",
        "responsedescription",
        "set",
        "shared",
        "status",
        "timeout",
        "write",
        "creationdate",
        "displayname",
        "getcontentlanguage",
        "getcontentlength",
        "getcontenttype",
        "getetag",
        "getlastmodified",
        "lockdiscovery",
        "resourcetype",
        "supportedlock",
        "lock-token-submitted",
        "no-conflicting-lock",
        "lock-token-matches-request-uri",
        "cannot-modify-protected-property",
        "propfind-finite-depth",
        "no-external-entities",
        "preserved-live-properties",
        "quota-available-bytes",
        "quota-used-bytes",
    ]
}


@pytest.mark.rfc4918("R-253")
def test_answers_use_only_defined_dav_elements(tree: Any) -> None:
    token = lock(tree, "/c/", owner="<D:href>mailto:me@example.org</D:href>")
    answers = [
        tree.request("PROPFIND", "/", headers={"Depth": "infinity"}).content,
        tree.request(
            "PROPFIND",
            "/",
            headers={"Depth": "1"},
            data=b'<propfind xmlns="DAV:"><propname/></propfind>',
        ).content,
        tree.request("LOCK", "/c/", headers={"If": f"(<{token}>)"}).content,
        tree.request("PUT", "/c/a.txt", data=b"x").content,
        tree.request("PROPPATCH", "/top.txt", data=proppatch_body(D + "getetag", "x")).content,
        tree.request("DELETE", "/c/").content,
    ]
    for content in answers:
        used = {
            e.tag for e in xml(content).iter() if isinstance(e.tag, str) and e.tag.startswith(D)
        }
        assert used <= DAV_ELEMENTS, used - DAV_ELEMENTS


@pytest.mark.rfc4918("R-256", "R-257")
def test_processing_instructions_and_doctypes_do_not_change_the_answer(tree: Any) -> None:
    body = (
        b'<?xml version="1.0"?><?app something?>'
        b'<D:propfind xmlns:D="DAV:"><?other?><D:prop><D:getcontentlength/></D:prop>'
        b"</D:propfind>"
    )
    found = propfind(tree, "/top.txt", body=body)["/top.txt"]
    assert found[D + "getcontentlength"][1].text == "3"


@pytest.mark.rfc4918("R-252", "R-273")
def test_external_entities_are_refused_with_no_external_entities(tree: Any) -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE D:propfind [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/>&e;</D:prop></D:propfind>'
    )
    r = tree.request("PROPFIND", "/top.txt", headers={"Depth": "0"}, data=body)
    assert r.status_code == 400
    assert error_conditions(r.content) == [D + "no-external-entities"]


@pytest.mark.rfc4918("R-258")
def test_http_1_1_basics_head_range_and_chunked_bodies(tree: Any) -> None:
    head = tree.request("HEAD", "/top.txt")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == "3"
    part = tree.request("GET", "/top.txt", headers={"Range": "bytes=1-"})
    assert part.status_code == 206
    assert part.content == b"op"
    chunked = tree.request("PUT", "/chunked.txt", data=iter([b"ab", b"cd"]))
    assert chunked.status_code == 201
    assert (tree.root / "chunked.txt").read_bytes() == b"abcd"


@pytest.mark.rfc4918("R-266")
def test_encodings_and_xml_lang(tree: Any) -> None:
    body = (
        '<?xml version="1.0" encoding="iso-8859-1"?><D:propertyupdate xmlns:D="DAV:">'
        '<D:set><D:prop><x:color xmlns:x="urn:t" xml:lang="fr">r\u00e9d</x:color></D:prop>'
        "</D:set></D:propertyupdate>"
    ).encode("iso-8859-1")
    assert tree.request("PROPPATCH", "/top.txt", data=body).status_code == 207
    status, element = prop(tree, "/top.txt", COLOR)
    assert status == 200
    assert element.text == "r\u00e9d"
    assert element.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
