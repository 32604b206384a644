"""PROPFIND against a live server (RFC 4918 9.1, 15; RFC 4331; RFC 8144 Prefer).

Every 207 body is parsed with lxml and checked element by element.
"""

from __future__ import annotations

import dataclasses
import email.utils
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import helpers
import pytest
from conftest import LiveServer
from helpers import propfind_body, shared_server, with_provider
from lxml import etree

from davserver.errors import NotFound
from davserver.model import Resource

D = "{DAV:}"
XML_NS = "http://www.w3.org/XML/1998/namespace"

ALLPROP_FILE = {
    D + "resourcetype",
    D + "displayname",
    D + "getcontentlength",
    D + "getcontenttype",
    D + "getlastmodified",
    D + "creationdate",
    D + "getetag",
    D + "supportedlock",
    D + "lockdiscovery",
}
ALLPROP_COLLECTION = {
    D + "resourcetype",
    D + "displayname",
    D + "getlastmodified",
    D + "creationdate",
    D + "supportedlock",
    D + "lockdiscovery",
}
QUOTA = {D + "quota-available-bytes", D + "quota-used-bytes"}

# -- helpers ---------------------------------------------------------------------------------


def parse_xml(data: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    return etree.fromstring(data, parser)


def status_code(text: str | None) -> int:
    assert text is not None
    match = re.fullmatch(r"HTTP/1\.[01] (\d{3}) .*", text.strip())
    assert match, text
    return int(match.group(1))


@dataclasses.dataclass
class Entry:
    """One `<D:response>`: its href and, per status, the property elements by Clark name."""

    href: str
    status: int | None
    props: dict[int, dict[str, etree._Element]]
    element: etree._Element

    def found(self) -> dict[str, etree._Element]:
        return self.props.get(200, {})

    def prop(self, name: str) -> etree._Element:
        assert name in self.found(), f"{name} not found in {self.href}: {self.props}"
        return self.found()[name]

    def names(self, status: int = 200) -> set[str]:
        return set(self.props.get(status, {}))


def multistatus(resp: Any, prefix: str = "") -> list[Entry]:
    """The entries of a 207 answer, in document order, hrefs without `prefix`."""
    assert resp.status_code == 207, (resp.status_code, resp.text[:500])
    assert resp.headers["Content-Type"].startswith(("application/xml", "text/xml"))
    root = parse_xml(resp.content)
    assert root.tag == D + "multistatus"
    entries = []
    for response in root:
        if response.tag != D + "response":
            assert response.tag == D + "responsedescription"
            continue
        hrefs = response.findall(D + "href")
        assert len(hrefs) == 1
        status_el = response.find(D + "status")
        props: dict[int, dict[str, etree._Element]] = {}
        for propstat in response.findall(D + "propstat"):
            code = status_code(propstat.findtext(D + "status"))
            assert code not in props, "one propstat per status"
            prop = propstat.find(D + "prop")
            assert prop is not None
            props[code] = {child.tag: child for child in prop}
        if status_el is None:
            assert props, "a response has a status or propstats"
        href = hrefs[0].text or ""
        assert href.startswith(prefix + "/"), (href, prefix)
        entries.append(
            Entry(
                href[len(prefix) :],
                status_code(status_el.text) if status_el is not None else None,
                props,
                response,
            )
        )
    return entries


def by_href(entries: list[Entry]) -> dict[str, Entry]:
    result = {e.href: e for e in entries}
    assert len(result) == len(entries), "each resource is reported once"
    return result


ALLPROP = (
    b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
)
PROPNAME = (
    b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
)


def propfind(
    server: Any,
    path: str,
    body: bytes | None = None,
    depth: str | None = "1",
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    sent = dict(headers or {})
    if depth is not None:
        sent["Depth"] = depth
    if body is not None:
        sent.setdefault("Content-Type", 'application/xml; charset="utf-8"')
    return server.request("PROPFIND", path, headers=sent, data=body, **kwargs)


def proppatch(server: Any, path: str, inner: str, root_attrs: str = "") -> Any:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<D:propertyupdate xmlns:D="DAV:"{root_attrs}>{inner}</D:propertyupdate>'
    ).encode()
    resp = server.request("PROPPATCH", path, data=body, headers={"Content-Type": "application/xml"})
    (entry,) = multistatus(resp)
    assert set(entry.props) == {200}, resp.text
    return resp


def one(server: Any, path: str, body: bytes | None = None, **kwargs: Any) -> Entry:
    (entry,) = entries_of(server, path, body, depth="0", **kwargs)
    return entry


def entries_of(server: Any, path: str, body: bytes | None = None, **kwargs: Any) -> list[Entry]:
    return multistatus(propfind(server, path, body, **kwargs), getattr(server, "prefix", ""))


# -- one server for the module, a fresh folder per test ----------------------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from shared_server(tmp_path_factory, "propfind")


_boxes = iter(range(1_000_000))


class Box:
    """A folder of the shared server that one test has to itself; paths and hrefs are
    relative to it, so `/` is the folder."""

    def __init__(self, server: LiveServer) -> None:
        name = f"box{next(_boxes)}"
        self.server = server
        self.prefix = "/" + name
        self.root = server.root / name
        self.root.mkdir()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        assert path.startswith("/")
        return self.server.request(method, self.prefix + path, **kwargs)


@pytest.fixture
def box(shared: LiveServer) -> Box:
    return Box(shared)


def make_tree(root: Path) -> None:
    """/d/{f1.txt, sub/{f2.bin}}, plus /top.txt."""
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "f1.txt").write_bytes(b"hello")
    (root / "d" / "sub" / "f2.bin").write_bytes(b"\x00" * 42)
    (root / "top.txt").write_bytes(b"top")


# -- the three kinds of request ----------------------------------------------------------------


@pytest.mark.rfc4918("R-070")
def test_empty_body_is_allprop(box: Box) -> None:
    make_tree(box.root)
    empty = by_href(entries_of(box, "/d/", None))
    explicit = by_href(entries_of(box, "/d/", ALLPROP))
    assert set(empty) == set(explicit) == {"/d/", "/d/f1.txt", "/d/sub/"}
    for href, entry in empty.items():
        assert set(entry.props) == {200}
        assert entry.names() == explicit[href].names()
    assert empty["/d/f1.txt"].names() == ALLPROP_FILE
    assert empty["/d/"].names() == ALLPROP_COLLECTION
    assert empty["/d/sub/"].names() == ALLPROP_COLLECTION


def test_allprop_leaves_out_quota(box: Box) -> None:
    entry = one(box, "/", ALLPROP)
    assert not entry.names() & QUOTA
    assert set(entry.props) == {200}


@pytest.mark.rfc4918("R-065", "R-207")
def test_allprop_with_include(box: Box) -> None:
    make_tree(box.root)
    body = (
        b'<D:propfind xmlns:D="DAV:"><D:allprop/>'
        b"<D:include><D:quota-used-bytes/></D:include></D:propfind>"
    )
    entries = by_href(entries_of(box, "/d/", body))
    collection = entries["/d/"]
    assert collection.names() == ALLPROP_COLLECTION | {D + "quota-used-bytes"}
    used = int(collection.prop(D + "quota-used-bytes").text or "")
    assert used >= 0
    # a file has no quota: the included name is reported missing, the rest as usual
    file_entry = entries["/d/f1.txt"]
    assert file_entry.names() == ALLPROP_FILE
    assert file_entry.names(404) == {D + "quota-used-bytes"}


@pytest.mark.rfc4918("R-065")
def test_propname(box: Box) -> None:
    make_tree(box.root)
    proppatch(
        box,
        "/d/f1.txt",
        '<D:set><D:prop><Z:dead xmlns:Z="urn:z">value</Z:dead></D:prop></D:set>',
    )
    entries = by_href(entries_of(box, "/d/", PROPNAME))
    for entry in entries.values():
        assert set(entry.props) == {200}
        for element in entry.found().values():
            assert len(element) == 0, etree.tostring(element)
            assert not (element.text or "").strip()
    assert entries["/d/f1.txt"].names() >= ALLPROP_FILE | {"{urn:z}dead"}
    assert entries["/d/"].names() >= ALLPROP_COLLECTION
    assert "{urn:z}dead" not in entries["/d/"].names()
    assert D + "getcontentlength" not in entries["/d/sub/"].names()


@pytest.mark.rfc4918("R-072", "R-073")
def test_prop_known_and_unknown(box: Box) -> None:
    make_tree(box.root)
    body = propfind_body(
        D + "getcontentlength",
        D + "displayname",
        "{urn:nobody}nothing",
        D + "no-such-dav-prop",
        "{}bare",
    )
    entry = one(box, "/d/f1.txt", body)
    assert set(entry.props) == {200, 404}
    assert entry.names() == {D + "getcontentlength", D + "displayname"}
    assert entry.names(404) == {"{urn:nobody}nothing", D + "no-such-dav-prop", "bare"}
    for element in entry.props[404].values():
        assert len(element) == 0
        assert not element.text
    assert entry.prop(D + "getcontentlength").text == "5"
    assert entry.prop(D + "displayname").text == "f1.txt"


def test_prop_nothing_known(box: Box) -> None:
    (box.root / "f").write_bytes(b"")
    entry = one(box, "/f", propfind_body("{urn:a}x"))
    assert set(entry.props) == {404}
    assert entry.names(404) == {"{urn:a}x"}


# -- Depth ------------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-066", "R-068", "R-074")
@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        ("0", {"/d/"}),
        ("1", {"/d/", "/d/f1.txt", "/d/sub/"}),
        ("infinity", {"/d/", "/d/f1.txt", "/d/sub/", "/d/sub/f2.bin"}),
        ("Infinity", {"/d/", "/d/f1.txt", "/d/sub/", "/d/sub/f2.bin"}),
        (None, {"/d/", "/d/f1.txt", "/d/sub/", "/d/sub/f2.bin"}),
    ],
)
def test_depth(box: Box, depth: str | None, expected: set[str]) -> None:
    make_tree(box.root)
    entries = entries_of(box, "/d", None, depth=depth)
    assert set(by_href(entries)) == expected
    assert entries[0].href == "/d/"  # the request's own resource comes first


def test_depth_on_root(server: Any) -> None:
    make_tree(server.root)
    assert set(by_href(entries_of(server, "/", None, depth="1"))) == {
        "/",
        "/d/",
        "/top.txt",
    }
    assert len(entries_of(server, "/", None, depth=None)) == 6


@pytest.mark.rfc4918("R-182")
@pytest.mark.parametrize("depth", ["0", "1", "infinity"])
def test_depth_on_a_file(box: Box, depth: str) -> None:
    make_tree(box.root)
    entries = entries_of(box, "/d/f1.txt", None, depth=depth)
    assert [e.href for e in entries] == ["/d/f1.txt"]


@pytest.mark.parametrize("depth", ["2", "one", "-1", ""])
def test_bad_depth(box: Box, depth: str) -> None:
    assert propfind(box, "/", None, depth=depth).status_code == 400


# -- every live property ----------------------------------------------------------------------

RFC1123 = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT"
)
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def check_dates(entry: Entry, local: Path) -> None:
    info = os.stat(local)
    modified = entry.prop(D + "getlastmodified").text or ""
    assert RFC1123.fullmatch(modified), modified
    parsed = email.utils.parsedate_to_datetime(modified)
    assert parsed.tzinfo is not None
    assert int(parsed.timestamp()) == int(info.st_mtime)

    created = entry.prop(D + "creationdate").text or ""
    assert RFC3339.fullmatch(created), created
    when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    assert when.tzinfo is not None
    # freshly made here: created no later than modified, and not long before
    assert info.st_mtime - 5 <= when.timestamp() <= info.st_mtime + 1


def check_supportedlock(entry: Entry) -> None:
    supported = entry.prop(D + "supportedlock")
    scopes = set()
    for lockentry in supported:
        assert lockentry.tag == D + "lockentry"
        scope = lockentry.find(D + "lockscope")
        locktype = lockentry.find(D + "locktype")
        assert scope is not None and locktype is not None
        assert [c.tag for c in locktype] == [D + "write"]
        (kind,) = scope
        scopes.add(kind.tag)
    assert scopes == {D + "exclusive", D + "shared"}
    assert len(supported) == 2


@pytest.mark.rfc4918("R-001")
def test_live_properties_of_a_file(box: Box) -> None:
    make_tree(box.root)
    names = sorted(ALLPROP_FILE | QUOTA)
    entry = one(box, "/d/f1.txt", propfind_body(*names))
    assert entry.href == "/d/f1.txt"
    assert entry.names() == ALLPROP_FILE
    assert entry.names(404) == QUOTA  # quota belongs to collections

    resourcetype = entry.prop(D + "resourcetype")
    assert len(resourcetype) == 0
    assert entry.prop(D + "displayname").text == "f1.txt"
    assert entry.prop(D + "getcontentlength").text == "5"
    get = box.request("GET", "/d/f1.txt")
    assert get.status_code == 200
    assert entry.prop(D + "getcontenttype").text == get.headers["Content-Type"]
    assert (entry.prop(D + "getcontenttype").text or "").startswith("text/plain")
    assert entry.prop(D + "getetag").text == get.headers["ETag"]
    assert (entry.prop(D + "getetag").text or "").startswith('"')
    check_dates(entry, box.root / "d" / "f1.txt")
    assert entry.prop(D + "getlastmodified").text == get.headers["Last-Modified"]
    check_supportedlock(entry)
    lockdiscovery = entry.prop(D + "lockdiscovery")
    assert len(lockdiscovery) == 0
    assert not (lockdiscovery.text or "").strip()


def test_live_properties_of_a_collection(box: Box) -> None:
    make_tree(box.root)
    names = sorted(ALLPROP_FILE | QUOTA)
    entry = one(box, "/d/sub", propfind_body(*names))
    assert entry.href == "/d/sub/"
    assert entry.names() >= ALLPROP_COLLECTION | QUOTA
    resourcetype = entry.prop(D + "resourcetype")
    assert [c.tag for c in resourcetype] == [D + "collection"]
    assert entry.prop(D + "displayname").text == "sub"
    check_dates(entry, box.root / "d" / "sub")
    check_supportedlock(entry)
    assert len(entry.prop(D + "lockdiscovery")) == 0
    used = int(entry.prop(D + "quota-used-bytes").text or "")
    available = int(entry.prop(D + "quota-available-bytes").text or "")
    assert used >= 0
    assert available >= 0


def test_etag_follows_content(box: Box) -> None:
    box.request("PUT", "/e.txt", data=b"one")
    first = one(box, "/e.txt", propfind_body(D + "getetag")).prop(D + "getetag").text
    box.request("PUT", "/e.txt", data=b"two")
    second = one(box, "/e.txt", propfind_body(D + "getetag")).prop(D + "getetag").text
    assert first != second
    assert second == box.request("HEAD", "/e.txt").headers["ETag"]


def test_displayname_escaped(box: Box) -> None:
    name = "<b> & 'q' \"dq\".txt"
    (box.root / name).write_bytes(b"x")
    entries = entries_of(box, "/", None)
    names = {e.prop(D + "displayname").text for e in entries}
    assert name in names


# -- hrefs ------------------------------------------------------------------------------------

HREF_CHARS = re.compile(r"(?:[A-Za-z0-9\-._~!$()*,=:@/]|%[0-9A-F]{2})*")
ODD_NAME = "a b#c%d&e+f €.txt"


def test_hrefs_are_percent_encoded_and_parse_back(box: Box) -> None:
    (box.root / ODD_NAME).write_bytes(b"odd")
    (box.root / "dir with space").mkdir()
    (box.root / "dir with space" / ODD_NAME).write_bytes(b"inner")
    (box.root / "ünï").mkdir()
    entries = entries_of(box, "/", None, depth="infinity")
    hrefs = [e.href for e in entries]
    for href in hrefs:
        assert HREF_CHARS.fullmatch(href), href
        assert href.startswith("/")
    decoded = {unquote(h, errors="strict") for h in hrefs}
    assert decoded == {
        "/",
        "/" + ODD_NAME,
        "/dir with space/",
        "/dir with space/" + ODD_NAME,
        "/ünï/",
    }
    for entry in entries:
        is_collection = len(entry.prop(D + "resourcetype")) == 1
        assert entry.href.endswith("/") == is_collection
        if entry.href != "/":
            last = unquote(entry.href.rstrip("/").rsplit("/", 1)[-1])
            assert entry.prop(D + "displayname").text == last
    # each href names its resource when sent back
    for href in hrefs:
        entry = one(box, href)
        assert entry.href == href
    odd = next(h for h in hrefs if h.startswith("/dir") and not h.endswith("/"))
    assert box.request("GET", odd).content == b"inner"


@pytest.mark.rfc4918("R-013", "R-058")
def test_collection_href_ends_with_slash_with_or_without_it_in_the_request(box: Box) -> None:
    (box.root / "c").mkdir()
    assert one(box, "/c").href == "/c/"
    assert one(box, "/c/").href == "/c/"
    (box.root / "f").write_bytes(b"")
    assert one(box, "/f").href == "/f"


# -- Prefer and Brief ---------------------------------------------------------------------------


def test_without_preferences_404s_are_reported(box: Box) -> None:
    (box.root / "f").write_bytes(b"x")
    resp = propfind(box, "/f", propfind_body(D + "getetag", "{urn:x}missing"), depth="0")
    (entry,) = multistatus(resp, box.prefix)
    assert set(entry.props) == {200, 404}
    assert "Preference-Applied" not in resp.headers


def test_prefer_return_minimal(box: Box) -> None:
    make_tree(box.root)
    resp = propfind(
        box,
        "/d/",
        propfind_body(D + "getetag", D + "displayname", "{urn:x}missing"),
        headers={"Prefer": "return=minimal"},
    )
    entries = by_href(multistatus(resp, box.prefix))
    assert set(entries) == {"/d/", "/d/f1.txt", "/d/sub/"}
    for entry in entries.values():
        assert set(entry.props) == {200}
    assert entries["/d/f1.txt"].names() == {D + "getetag", D + "displayname"}
    assert entries["/d/"].names() == {D + "displayname"}
    applied = [p.strip() for p in resp.headers["Preference-Applied"].split(",")]
    assert "return=minimal" in applied


def test_brief_t_is_minimal(box: Box) -> None:
    (box.root / "f").write_bytes(b"x")
    resp = propfind(
        box, "/f", propfind_body(D + "getetag", "{urn:x}missing"), headers={"Brief": "t"}
    )
    (entry,) = multistatus(resp, box.prefix)
    assert set(entry.props) == {200}
    assert entry.names() == {D + "getetag"}


def test_minimal_with_nothing_found_is_still_valid(box: Box) -> None:
    # RFC 4918 14.24: a response holds a status or at least one propstat, even when
    # return=minimal leaves out every 404.
    (box.root / "f").write_bytes(b"x")
    resp = propfind(box, "/", propfind_body("{urn:x}missing"), headers={"Prefer": "return=minimal"})
    for entry in multistatus(resp, box.prefix):
        assert entry.status is not None or entry.props
        assert not entry.names(404)


def test_prefer_depth_noroot(box: Box) -> None:
    make_tree(box.root)
    resp = propfind(box, "/d/", None, depth="1", headers={"Prefer": "depth-noroot"})
    assert set(by_href(multistatus(resp, box.prefix))) == {"/d/f1.txt", "/d/sub/"}
    assert "depth-noroot" in resp.headers["Preference-Applied"]
    resp = propfind(
        box, "/d/", None, depth="infinity", headers={"Prefer": "depth-noroot, return=minimal"}
    )
    assert set(by_href(multistatus(resp, box.prefix))) == {"/d/f1.txt", "/d/sub/", "/d/sub/f2.bin"}


# -- limits and refusals ------------------------------------------------------------------------


@pytest.mark.rfc4918("R-067", "R-079")
def test_infinity_limit(make_server: Any) -> None:
    box = make_server(max_propfind_resources=5)
    for i in range(10):
        (box.root / f"f{i}").write_bytes(b"")
    (box.root / "small").mkdir()
    for i in range(4):
        (box.root / "small" / f"g{i}").write_bytes(b"")

    for depth in ("infinity", None):
        resp = propfind(box, "/", None, depth=depth)
        assert resp.status_code == 403
        error = parse_xml(resp.content)
        assert error.tag == D + "error"
        assert [c.tag for c in error] == [D + "propfind-finite-depth"]

    assert len(entries_of(box, "/", None, depth="1")) == 12
    # at the limit exactly: 1 collection + 4 files
    assert len(entries_of(box, "/small", None, depth="infinity")) == 5
    (box.root / "small" / "g4").write_bytes(b"")
    assert propfind(box, "/small", None, depth="infinity").status_code == 403
    # a file at Depth: infinity is one resource
    assert len(entries_of(box, "/f1", None, depth="infinity")) == 1


PASSWD_MARKERS = ("root:", "/bin/", "nologin", "daemon")

BAD_BODIES = {
    "not-well-formed": b'<D:propfind xmlns:D="DAV:"><D:allprop></D:propfind>',
    "garbage": b"this is not XML",
    "wrong-root": b'<D:propertyupdate xmlns:D="DAV:"><D:allprop/></D:propertyupdate>',
    "no-namespace-root": b"<propfind><allprop/></propfind>",
    "no-child": b'<D:propfind xmlns:D="DAV:"></D:propfind>',
    "two-children": b'<D:propfind xmlns:D="DAV:"><D:allprop/><D:propname/></D:propfind>',
    "doctype-entity": (
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY e "x">]>'
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:a>&e;</D:a></D:prop></D:propfind>'
    ),
    "billion-laughs": (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
        b'<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:lol>&lol4;</D:lol></D:prop></D:propfind>'
    ),
    "external-entity": (
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:x>&xxe;</D:x></D:prop></D:propfind>'
    ),
    "external-entity-in-name": (
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<D:propfind xmlns:D="DAV:"><D:prop>&xxe;</D:prop></D:propfind>'
    ),
    "external-dtd": (
        b'<?xml version="1.0"?><!DOCTYPE p SYSTEM "file:///etc/passwd">'
        b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    ),
}


@pytest.mark.rfc4918("R-054")
@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_bodies(box: Box, name: str) -> None:
    (box.root / "f").write_bytes(b"")
    resp = propfind(box, "/", BAD_BODIES[name], depth="1")
    assert resp.status_code == 400
    for marker in PASSWD_MARKERS:
        assert marker not in resp.text
    # the box is still fine afterwards
    assert len(entries_of(box, "/", None, depth="1")) == 2


def test_body_over_the_limit(make_server: Any) -> None:
    box = make_server(max_xml_body=1000)
    small = propfind_body(*[f"{{urn:x}}p{i}" for i in range(10)])
    assert len(small) < 1000
    assert entries_of(box, "/", small, depth="0")
    big = propfind_body(*[f"{{urn:x}}p{i}" for i in range(100)])
    assert len(big) > 1000
    assert propfind(box, "/", big, depth="0").status_code == 413

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 100):
            yield big[i : i + 100]

    # without a Content-Length (chunked), the limit still holds
    assert propfind(box, "/", chunks(), depth="0").status_code == 413  # type: ignore[arg-type]
    assert entries_of(box, "/", small, depth="0")


def test_missing_resource(box: Box) -> None:
    assert propfind(box, "/nothing", None).status_code == 404
    assert propfind(box, "/nothing/deeper/", ALLPROP).status_code == 404
    (box.root / "file").write_bytes(b"")
    assert propfind(box, "/file/child", None).status_code == 404


# -- resources that vanish during the walk -----------------------------------------------------


class FlakyProvider:
    """Wraps the real provider: listings gain a ghost member that does not exist, quota fails
    for one collection, and one collection's listing breaks off after its first member."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def children(self, path: str) -> Iterator[Resource]:
        members = sorted(self.inner.children(path), key=lambda r: r.path)
        for index, member in enumerate(members):
            yield member
            if path == "/broken" and index == 0:
                raise NotFound("/broken vanished while being listed")
            if index == 0 and path != "/broken":
                now = time.time()
                yield Resource(path.rstrip("/") + "/ghost.txt", False, 3, now, now, "ghost")

    def quota(self, path: str) -> tuple[int, int] | None:
        if path == "/noquota":
            raise NotFound("/noquota vanished")
        result: tuple[int, int] | None = self.inner.quota(path)
        return result


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of its own whose provider is wrapped in FlakyProvider."""
    base = tmp_path_factory.mktemp("flaky")
    root = base / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"a")
    (root / "b.txt").write_bytes(b"b")
    (root / "noquota").mkdir()
    (root / "broken").mkdir()
    for name in ("x1", "x2", "x3"):
        (root / "broken" / name).write_bytes(b"")
    (root / "z").mkdir()
    (root / "z" / "last.txt").write_bytes(b"")
    live = LiveServer(root, base / "state", {})
    with_provider(live, FlakyProvider)
    yield live
    live.stop()


def test_ghost_member_keeps_the_document_well_formed(flaky: Any) -> None:
    entries = by_href(entries_of(flaky, "/", None, depth="infinity"))
    for real in [
        "/",
        "/a.txt",
        "/b.txt",
        "/noquota/",
        "/broken/",
        "/broken/x1",
        "/z/",
        "/z/last.txt",
    ]:
        assert real in entries
        assert entries[real].status is None
        assert D + "resourcetype" in entries[real].names()
    # the ghost itself may be reported either way; multistatus() checked it is a valid entry


def test_listing_that_breaks_off_keeps_the_others(flaky: Any) -> None:
    entries = by_href(entries_of(flaky, "/", None, depth="infinity"))
    assert "/broken/x1" in entries
    assert "/broken/x2" not in entries  # the listing ended there
    assert "/z/last.txt" in entries  # but the walk went on with the rest


def test_failing_quota_is_reported_for_that_resource_only(flaky: Any) -> None:
    body = propfind_body(D + "quota-used-bytes", D + "displayname")
    entries = by_href(entries_of(flaky, "/", body, depth="1"))
    failed = entries["/noquota/"]
    assert failed.status == 404 or failed.names(404) == {D + "quota-used-bytes"}
    for other in ("/", "/broken/", "/z/"):
        assert int(entries[other].prop(D + "quota-used-bytes").text or "") >= 0
        assert entries[other].prop(D + "displayname") is not None
    assert entries["/a.txt"].prop(D + "displayname").text == "a.txt"
    assert entries["/b.txt"].prop(D + "displayname").text == "b.txt"


# -- streaming ----------------------------------------------------------------------------------


def test_large_listing_is_streamed(box: Box) -> None:
    folder = box.root / "many"
    folder.mkdir()
    for i in range(3000):
        (folder / f"file-{i:04d}.txt").write_bytes(b"")
    resp = propfind(box, "/many/", None, depth="1", stream=True)
    try:
        assert resp.status_code == 207
        assert "Content-Length" not in resp.headers
        assert resp.headers.get("Transfer-Encoding", "").lower() == "chunked"
        pieces = list(resp.raw.stream(65536, decode_content=True))
    finally:
        resp.close()
    assert len(pieces) > 1
    root = parse_xml(b"".join(pieces))
    hrefs = [r.findtext(D + "href") for r in root.findall(D + "response")]
    assert len(hrefs) == 3001
    assert len(set(hrefs)) == 3001
    assert hrefs[0] == box.prefix + "/many/"
    assert set(hrefs[1:]) == {f"{box.prefix}/many/file-{i:04d}.txt" for i in range(3000)}


class HeldWalk:
    """Delegates, counting children() calls; the `hold_at`-th waits until the test lets it go
    on (or `bound` seconds pass, which it records)."""

    def __init__(self, inner: Any, hold_at: int, bound: float) -> None:
        self.inner, self.hold_at, self.bound = inner, hold_at, bound
        self.calls = 0
        self.go_on = threading.Event()
        self.gave_up = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def children(self, path: str) -> Iterator[Resource]:
        self.calls += 1
        if self.calls == self.hold_at and not self.go_on.wait(self.bound):
            self.gave_up = True
        yield from self.inner.children(path)


def test_depth_infinity_sends_its_first_bytes_before_the_walk_ends(make_server: Any) -> None:
    # RFC 4918 9.1 lets a multistatus be as large as the tree; davserver streams it (design:
    # "the first bytes leave before the walk ends"), so memory stays flat. The walk is held
    # halfway, after some 400 responses (several 64 KiB chunks): the answer must already be
    # arriving, while the other half of the tree is not yet listed.
    server = make_server()
    folders = 200
    files = {f"d{i:03}/f{j}.txt": b"" for i in range(folders) for j in range(3)}
    helpers.make_tree(server.root, files)
    walk = with_provider(server, lambda inner: HeldWalk(inner, hold_at=folders // 2, bound=10))
    response = server.request("PROPFIND", "/", headers={"Depth": "infinity"}, stream=True)
    try:
        assert response.status_code == 207
        pieces = response.iter_content(65536)
        first = next(pieces)
        calls_at_first_bytes, gave_up = walk.calls, walk.gave_up
        walk.go_on.set()
        rest = b"".join(pieces)
    finally:
        response.close()
    assert not gave_up, "no byte of the answer came while the walk was held"
    assert calls_at_first_bytes <= folders // 2  # of 1 + folders listings in all
    hrefs = [r.findtext(D + "href") for r in parse_xml(first + rest).findall(D + "response")]
    assert len(hrefs) == 1 + folders * 4


# -- dead properties round trip -----------------------------------------------------------------


def dead(box: Box, path: str, name: str) -> etree._Element:
    return one(box, path, propfind_body(name)).prop(name)


@pytest.fixture
def f(box: Box) -> Box:
    (box.root / "f.txt").write_bytes(b"content")
    return box


@pytest.mark.rfc4918("R-002", "R-003")
def test_dead_property_namespaces_prefixes_attributes(f: Any) -> None:
    proppatch(
        f,
        "/f.txt",
        "<D:set><D:prop>"
        '<Z:author xmlns:Z="http://ns.example.com/z/" xmlns:Q="urn:q" Q:role="lead" plain="1">'
        '<Z:name>Jane</Z:name><Q:mail Q:kind="work">j@example.com</Q:mail>'
        '<R:deep xmlns:R="urn:r"><R:deeper R:x="y"/></R:deep>'
        "</Z:author>"
        "</D:prop></D:set>",
    )
    el = dead(f, "/f.txt", "{http://ns.example.com/z/}author")
    assert el.prefix == "Z"
    assert el.get("{urn:q}role") == "lead"
    assert el.get("plain") == "1"
    assert [c.tag for c in el] == [
        "{http://ns.example.com/z/}name",
        "{urn:q}mail",
        "{urn:r}deep",
    ]
    assert el[0].text == "Jane"
    assert el[1].prefix == "Q"
    assert el[1].get("{urn:q}kind") == "work"
    assert el[1].text == "j@example.com"
    assert el[2][0].tag == "{urn:r}deeper"
    assert el[2][0].get("{urn:r}x") == "y"


def test_dead_property_with_namespace_declared_on_the_root(f: Any) -> None:
    proppatch(
        f,
        "/f.txt",
        '<D:set><D:prop><Z:p><Z:child Y:a="b"/></Z:p></D:prop></D:set>',
        root_attrs=' xmlns:Z="urn:z" xmlns:Y="urn:y"',
    )
    el = dead(f, "/f.txt", "{urn:z}p")
    assert el[0].tag == "{urn:z}child"
    assert el[0].get("{urn:y}a") == "b"


def test_dead_property_using_the_d_prefix_for_another_namespace(f: Any) -> None:
    proppatch(
        f,
        "/f.txt",
        '<D:set><D:prop><D:mine xmlns:D="urn:not-dav"><D:x/></D:mine></D:prop></D:set>',
    )
    el = dead(f, "/f.txt", "{urn:not-dav}mine")
    assert el[0].tag == "{urn:not-dav}x"


@pytest.mark.rfc4918("R-216")
@pytest.mark.parametrize(
    ("prop_attrs", "set_attrs", "own", "expected"),
    [
        ("", "", ' xml:lang="de"', "de"),
        (' xml:lang="fr"', "", "", "fr"),
        ("", ' xml:lang="en-US"', "", "en-US"),
    ],
    ids=["on-property", "from-prop", "from-set"],
)
def test_dead_property_xml_lang(
    f: Any, prop_attrs: str, set_attrs: str, own: str, expected: str
) -> None:
    proppatch(
        f,
        "/f.txt",
        f'<D:set{set_attrs}><D:prop{prop_attrs}><Z:l xmlns:Z="urn:z"{own}>Hallo</Z:l>'
        "</D:prop></D:set>",
    )
    el = dead(f, "/f.txt", "{urn:z}l")
    assert el.get(f"{{{XML_NS}}}lang") == expected
    assert el.text == "Hallo"


@pytest.mark.rfc4918("R-002")
def test_dead_property_mixed_content(f: Any) -> None:
    proppatch(
        f,
        "/f.txt",
        '<D:set><D:prop><Z:m xmlns:Z="urn:z">one &amp; <Z:b>two</Z:b> three <Z:i/>'
        " four</Z:m></D:prop></D:set>",
    )
    el = dead(f, "/f.txt", "{urn:z}m")
    assert el.text == "one & "
    assert [c.tag for c in el] == ["{urn:z}b", "{urn:z}i"]
    assert el[0].text == "two"
    assert el[0].tail == " three "
    assert el[1].tail == " four"


def test_dead_property_empty_value(f: Any) -> None:
    proppatch(f, "/f.txt", '<D:set><D:prop><Z:e xmlns:Z="urn:z"/></D:prop></D:set>')
    entry = one(f, "/f.txt", propfind_body("{urn:z}e"))
    assert set(entry.props) == {200}
    el = entry.prop("{urn:z}e")
    assert len(el) == 0
    assert not el.text


@pytest.mark.parametrize("spelling", ["&#65536;", "&#x1F600;", "\U00010000", "\U0001f600"])
def test_dead_property_high_unicode(f: Any, spelling: str) -> None:
    expected = {"&#65536;": "\U00010000", "&#x1F600;": "\U0001f600"}.get(spelling, spelling)
    proppatch(
        f,
        "/f.txt",
        f'<D:set><D:prop><Z:u xmlns:Z="urn:z">é{spelling}€</Z:u></D:prop></D:set>',
    )
    assert dead(f, "/f.txt", "{urn:z}u").text == f"é{expected}€"


def test_dead_property_whitespace_kept(f: Any) -> None:
    proppatch(
        f,
        "/f.txt",
        '<D:set><D:prop><Z:w xmlns:Z="urn:z">  two  spaces\n\tand a tab  </Z:w></D:prop></D:set>',
    )
    assert dead(f, "/f.txt", "{urn:z}w").text == "  two  spaces\n\tand a tab  "


def test_dead_property_carriage_return_kept(f: Any) -> None:
    # RFC 4918 4.3: whitespace MUST be preserved; a raw CR would be read back as LF.
    proppatch(
        f,
        "/f.txt",
        '<D:set><D:prop><Z:cr xmlns:Z="urn:z">a&#13;b&#13;&#10;c</Z:cr></D:prop></D:set>',
    )
    assert dead(f, "/f.txt", "{urn:z}cr").text == "a\rb\r\nc"


def test_dead_property_in_no_namespace(f: Any) -> None:
    proppatch(
        f,
        "/f.txt",
        '<D:set><D:prop><bare xmlns="">text<inner/></bare></D:prop></D:set>',
    )
    entry = one(f, "/f.txt", propfind_body("{}bare"))
    el = entry.prop("bare")
    assert el.text == "text"
    assert [c.tag for c in el] == ["inner"]
    # a name in no namespace is not the same as one in some namespace
    assert "{urn:z}bare" in one(f, "/f.txt", propfind_body("{urn:z}bare")).names(404)


def test_allprop_lists_dead_properties(f: Any) -> None:
    proppatch(
        f,
        "/f.txt",
        '<D:set><D:prop><Z:a xmlns:Z="urn:z">1</Z:a><bare xmlns="">2</bare></D:prop></D:set>',
    )
    for body in (None, ALLPROP):
        entry = one(f, "/f.txt", body)
        assert entry.names() == ALLPROP_FILE | {"{urn:z}a", "bare"}
        assert entry.prop("{urn:z}a").text == "1"
        assert entry.prop("bare").text == "2"
    listing = by_href(entries_of(f, "/", None, depth="1"))
    assert listing["/f.txt"].prop("{urn:z}a").text == "1"
    assert "{urn:z}a" not in listing["/"].names()


def test_dead_properties_on_a_collection_and_its_members(box: Box) -> None:
    (box.root / "c").mkdir()
    for i in range(3):
        (box.root / "c" / f"m{i}").write_bytes(b"")
    proppatch(box, "/c/", '<D:set><D:prop><Z:c xmlns:Z="urn:z">coll</Z:c></D:prop></D:set>')
    proppatch(box, "/c/m1", '<D:set><D:prop><Z:c xmlns:Z="urn:z">m1</Z:c></D:prop></D:set>')
    entries = by_href(entries_of(box, "/c/", propfind_body("{urn:z}c"), depth="1"))
    assert entries["/c/"].prop("{urn:z}c").text == "coll"
    assert entries["/c/m1"].prop("{urn:z}c").text == "m1"
    assert entries["/c/m0"].names(404) == {"{urn:z}c"}
    assert entries["/c/m2"].names(404) == {"{urn:z}c"}


def test_dead_properties_on_the_root(server: Any) -> None:
    proppatch(server, "/", '<D:set><D:prop><Z:r xmlns:Z="urn:z">root</Z:r></D:prop></D:set>')
    assert dead(server, "/", "{urn:z}r").text == "root"


@pytest.mark.rfc4918("R-216")
def test_dead_properties_survive_a_restart(server: Any) -> None:
    (server.root / "f.txt").write_bytes(b"content")
    proppatch(
        server,
        "/f.txt",
        '<D:set><D:prop xml:lang="fr"><Z:keep xmlns:Z="urn:z">kept &#65536;<Z:i/></Z:keep>'
        "</D:prop></D:set>",
    )
    server.restart()
    el = dead(server, "/f.txt", "{urn:z}keep")
    assert el.text == "kept \U00010000"
    assert el.get(f"{{{XML_NS}}}lang") == "fr"
    assert [c.tag for c in el] == ["{urn:z}i"]


def test_plain_allprop_writes_exactly_what_the_general_path_writes(services):
    # The fast path for resources without dead properties must not drift from collect().
    from davserver import xmlin, xmlout
    from davserver.methods.propfind import DeadProperties, collect, plain_allprop
    from davserver.methods.read import content_type
    from davserver.model import Resource
    from davserver.props import LiveContext
    from davserver.store.base import Lock

    held = Lock(
        "urn:uuid:x", "/dir", "infinity", "exclusive", "<D:owner>o</D:owner>", None, 60, 100.0
    )
    for locks in ((), (held,)):
        live = LiveContext("/pre fix", locks, 40.0, content_type, lambda path: (1, 2))
        dead = DeadProperties(services.props, "/")
        for resource in (
            Resource("/dir/a & b.txt", False, 12, 1e9, 1e9 - 5, "e1"),
            Resource("/dir", True, 0, 1e9, 1e9, "e2"),
            Resource("/dir/sub", True, 0, 1.5e9, 1.5e9, "e3"),
        ):
            general = collect(xmlin.Propfind("allprop"), resource, live, dead, minimal=False)
            assert plain_allprop("/pre%20fix", resource, live) == xmlout.prop_response(
                "/pre%20fix", general
            )


class CountingProps:
    """Delegates to the property store, counting the queries of each kind."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(*args, **kwargs)

        return counted


@pytest.mark.parametrize(
    ("body", "valued"),
    [
        (b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>', True),
        (helpers.propfind_body("{urn:z}tag", "{DAV:}getetag"), True),
        (b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>', False),
    ],
    ids=["allprop", "prop", "propname"],
)
def test_a_listing_reads_dead_properties_a_page_at_a_time(
    server: LiveServer, body: bytes, valued: bool
) -> None:
    """A store across the network costs a round trip per query: a listing of 250 members with
    properties asks for them in pages of 100, not member by member."""
    (server.root / "d").mkdir()
    for i in range(250):
        (server.root / "d" / f"f{i:03}").write_bytes(b"x")
        server.services.props.patch(
            f"/d/f{i:03}", [("{urn:z}tag", f'<Z:tag xmlns:Z="urn:z">{i}</Z:tag>')]
        )
    counting = CountingProps(server.services.props)
    services = dataclasses.replace(server.services, props=counting)
    server.stop()
    server.start(services=services)
    r = server.request("PROPFIND", "/d/", headers={"Depth": "1"}, data=body)
    assert r.status_code == 207
    found = etree.fromstring(r.content).findall(".//{DAV:}propstat")
    tags = [
        tag
        for propstat in found
        if propstat.findtext("{DAV:}status") == "HTTP/1.1 200 OK"
        for tag in propstat.findall("{DAV:}prop/{urn:z}tag")
    ]
    values = sorted(int(t.text) for t in tags) if valued else [t.text for t in tags]
    assert values == (list(range(250)) if valued else [None] * 250)
    # 251 resources (the folder itself too): three pages; the folder has no properties.
    assert counting.calls.get("get_many") == 3
    assert counting.calls.get("get", 0) == 0
