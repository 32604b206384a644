"""PROPPATCH against a live server (RFC 4918 9.2), and dead properties through COPY, MOVE,
DELETE and PUT (RFC 4918 9.8.2, 9.9.1).

Every 207 body is parsed with lxml (the helpers of test_propfind) and checked element by element.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LiveServer
from helpers import propfind_body, shared_server
from test_propfind import Box, Entry, multistatus, propfind

D = "{DAV:}"
Z = "urn:z"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from shared_server(tmp_path_factory, "proppatch")


@pytest.fixture
def box(shared: LiveServer) -> Box:
    """A folder of its own on the shared server; `/` is that folder."""
    return Box(shared)


def patch(box: Box, path: str, *instructions: str, root_attrs: str = "") -> Any:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<D:propertyupdate xmlns:D="DAV:" xmlns:Z="{Z}"{root_attrs}>'
        + "".join(instructions)
        + "</D:propertyupdate>"
    ).encode()
    return box.request(
        "PROPPATCH", path, data=body, headers={"Content-Type": 'application/xml; charset="utf-8"'}
    )


def set_(*props: str) -> str:
    return "<D:set><D:prop>" + "".join(props) + "</D:prop></D:set>"


def remove(*props: str) -> str:
    return "<D:remove><D:prop>" + "".join(props) + "</D:prop></D:remove>"


def z(local: str, text: str | None = None) -> str:
    return f"<Z:{local}/>" if text is None else f"<Z:{local}>{text}</Z:{local}>"


def result(box: Box, resp: Any) -> Entry:
    (entry,) = multistatus(resp, box.prefix)
    return entry


def ok(box: Box, path: str, *instructions: str) -> Entry:
    entry = result(box, patch(box, path, *instructions))
    assert set(entry.props) == {200}, entry.props
    return entry


def values(box: Box, path: str, *locals_: str) -> dict[str, str | None]:
    """The dead properties `{urn:z}local` of `path`: text, or None when not found (404)."""
    (entry,) = multistatus(
        propfind(box, path, propfind_body(*[f"{{{Z}}}{n}" for n in locals_]), depth="0"),
        box.prefix,
    )
    out: dict[str, str | None] = {}
    for name in locals_:
        clark = f"{{{Z}}}{name}"
        if clark in entry.names():
            out[name] = entry.prop(clark).text or ""
        else:
            assert clark in entry.names(404)
            out[name] = None
    return out


def dead_names(box: Box, path: str) -> set[str]:
    (entry,) = multistatus(propfind(box, path, None, depth="0"), box.prefix)
    return {n for n in entry.names() if not n.startswith(D)}


def put(box: Box, path: str, data: bytes = b"x") -> None:
    """Create the file `path` (each test's box starts empty)."""
    assert box.request("PUT", path, data=data).status_code == 201


def mkcol(box: Box, path: str) -> None:
    assert box.request("MKCOL", path).status_code == 201


def destination(box: Box, path: str) -> dict[str, str]:
    return {"Destination": box.server.url(box.prefix + path)}


# -- instructions in document order -------------------------------------------------------------


def test_set_and_read_back(box: Box) -> None:
    put(box, "/f")
    resp = patch(box, "/f", set_(z("a", "1"), z("b", "2")))
    assert resp.status_code == 207
    entry = result(box, resp)
    assert entry.href == "/f"
    assert set(entry.props) == {200}
    assert entry.names() == {f"{{{Z}}}a", f"{{{Z}}}b"}
    for element in entry.found().values():
        assert len(element) == 0 and not element.text  # names only in the answer
    assert values(box, "/f", "a", "b") == {"a": "1", "b": "2"}


def test_set_replaces(box: Box) -> None:
    put(box, "/f")
    ok(box, "/f", set_(z("a", "1")))
    ok(box, "/f", set_(z("a", "2")))
    assert values(box, "/f", "a") == {"a": "2"}


def test_remove_set_set_gives_the_last_value(box: Box) -> None:
    put(box, "/f")
    ok(box, "/f", set_(z("a", "old")))
    entry = ok(box, "/f", remove(z("a")), set_(z("a", "first")), set_(z("a", "second")))
    assert entry.names() == {f"{{{Z}}}a"}
    assert values(box, "/f", "a") == {"a": "second"}


def test_set_then_remove_gives_absent(box: Box) -> None:
    put(box, "/f")
    ok(box, "/f", set_(z("a", "1")), remove(z("a")))
    assert values(box, "/f", "a") == {"a": None}
    ok(box, "/f", set_(z("b", "1")))
    ok(box, "/f", remove(z("b")), set_(z("b", "2")), remove(z("b")))
    assert values(box, "/f", "b") == {"b": None}


def test_set_twice_in_one_prop(box: Box) -> None:
    put(box, "/f")
    ok(box, "/f", set_(z("a", "1"), z("a", "2")))
    assert values(box, "/f", "a") == {"a": "2"}


def test_remove_of_a_nonexistent_property_succeeds(box: Box) -> None:
    put(box, "/f")
    entry = ok(box, "/f", remove(z("never")))
    assert entry.names() == {f"{{{Z}}}never"}
    assert values(box, "/f", "never") == {"never": None}


def test_remove_leaves_the_others(box: Box) -> None:
    put(box, "/f")
    ok(box, "/f", set_(z("a", "1"), z("b", "2"), z("c", "3")))
    ok(box, "/f", remove(z("b")))
    assert values(box, "/f", "a", "b", "c") == {"a": "1", "b": None, "c": "3"}


def test_on_a_collection(box: Box) -> None:
    mkcol(box, "/c")
    entry = ok(box, "/c", set_(z("a", "coll")))
    assert entry.href == "/c/"
    assert values(box, "/c/", "a") == {"a": "coll"}


def test_many_namespaces_with_the_same_local_name(box: Box) -> None:
    put(box, "/f")
    namespaces = [f"urn:ns:{i}" for i in range(10)]
    props = "".join(f'<N{i}:p xmlns:N{i}="{ns}">v{i}</N{i}:p>' for i, ns in enumerate(namespaces))
    entry = ok(box, "/f", set_(props, '<p xmlns="">bare</p>'))
    assert entry.names() == {f"{{{ns}}}p" for ns in namespaces} | {"p"}
    names = [f"{{{ns}}}p" for ns in namespaces]
    (found,) = multistatus(
        propfind(box, "/f", propfind_body(*names, "{}p", "{urn:ns:10}p"), depth="0"), box.prefix
    )
    for i, name in enumerate(names):
        assert found.prop(name).text == f"v{i}"
    assert found.prop("p").text == "bare"
    assert found.names(404) == {"{urn:ns:10}p"}
    ok(box, "/f", remove('<N:p xmlns:N="urn:ns:3"/>'))
    (after,) = multistatus(propfind(box, "/f", propfind_body(*names), depth="0"), box.prefix)
    assert after.names(404) == {"{urn:ns:3}p"}
    assert len(after.names()) == 9


# -- all or nothing -----------------------------------------------------------------------------


def test_protected_live_property_fails_everything(box: Box) -> None:
    put(box, "/f")
    ok(box, "/f", set_(z("keep", "old")))
    resp = patch(
        box,
        "/f",
        set_(z("a", "new a"), '<D:getetag>"forged"</D:getetag>', z("keep", "new keep")),
    )
    assert resp.status_code == 207
    entry = result(box, resp)
    assert set(entry.props) == {403, 424}
    assert entry.names(403) == {D + "getetag"}
    assert entry.names(424) == {f"{{{Z}}}a", f"{{{Z}}}keep"}
    forbidden = next(
        ps
        for ps in entry.element.findall(D + "propstat")
        if ps.find(f"{D}prop/{D}getetag") is not None
    )
    error = forbidden.find(D + "error")
    assert error is not None
    assert [c.tag for c in error] == [D + "cannot-modify-protected-property"]
    # nothing changed
    assert values(box, "/f", "a", "keep") == {"a": None, "keep": "old"}
    etag = box.request("HEAD", "/f").headers["ETag"]
    assert etag != '"forged"'


def test_removing_a_protected_property_fails_everything(box: Box) -> None:
    put(box, "/f")
    ok(box, "/f", set_(z("keep", "old")))
    entry = result(box, patch(box, "/f", remove(z("keep")), remove("<D:getcontentlength/>")))
    assert entry.names(403) == {D + "getcontentlength"}
    assert entry.names(424) == {f"{{{Z}}}keep"}
    assert values(box, "/f", "keep") == {"keep": "old"}


@pytest.mark.parametrize(
    "live",
    [
        "getetag",
        "getcontentlength",
        "getlastmodified",
        "creationdate",
        "resourcetype",
        "lockdiscovery",
        "supportedlock",
        "quota-used-bytes",
        "quota-available-bytes",
    ],
)
def test_live_properties_are_protected(box: Box, live: str) -> None:
    put(box, "/f")
    before = box.request("HEAD", "/f").headers["ETag"]
    entry = result(box, patch(box, "/f", set_(f"<D:{live}>x</D:{live}>")))
    assert set(entry.props) == {403}
    assert entry.names(403) == {D + live}
    assert box.request("HEAD", "/f").headers["ETag"] == before


# -- refusals -----------------------------------------------------------------------------------


def test_missing_resource(box: Box) -> None:
    assert patch(box, "/nothing", set_(z("a", "1"))).status_code == 404
    assert patch(box, "/no/such/dir/", set_(z("a", "1"))).status_code == 404
    put(box, "/f")
    assert patch(box, "/f/child", set_(z("a", "1"))).status_code == 404


BAD = {
    "empty": b"",
    "not-well-formed": b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><a></D:prop>',
    "wrong-root": b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
    "no-instruction": b'<D:propertyupdate xmlns:D="DAV:"/>',
    "set-without-prop": b'<D:propertyupdate xmlns:D="DAV:"><D:set/></D:propertyupdate>',
    "entity": (
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><Z:a xmlns:Z="urn:z">&e;</Z:a>'
        b"</D:prop></D:set></D:propertyupdate>"
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_body(box: Box, name: str) -> None:
    put(box, "/f")
    resp = box.request(
        "PROPPATCH", "/f", data=BAD[name], headers={"Content-Type": "application/xml"}
    )
    assert resp.status_code == 400
    assert "root:" not in resp.text
    assert dead_names(box, "/f") == set()


# -- dead properties follow the resource ----------------------------------------------------------


def test_copy_file(box: Box) -> None:
    put(box, "/src")
    ok(box, "/src", set_(z("a", "1"), z("b", "2")))
    assert box.request("COPY", "/src", headers=destination(box, "/dst")).status_code == 201
    assert values(box, "/dst", "a", "b") == {"a": "1", "b": "2"}
    assert values(box, "/src", "a", "b") == {"a": "1", "b": "2"}
    # two independent copies
    ok(box, "/dst", set_(z("a", "changed")))
    assert values(box, "/src", "a") == {"a": "1"}


def test_copy_overwrite_replaces_the_destination_properties(box: Box) -> None:
    put(box, "/src")
    put(box, "/dst")
    ok(box, "/src", set_(z("a", "from src")))
    ok(box, "/dst", set_(z("a", "old"), z("only", "dst")))
    resp = box.request("COPY", "/src", headers={**destination(box, "/dst"), "Overwrite": "T"})
    assert resp.status_code == 204
    assert values(box, "/dst", "a", "only") == {"a": "from src", "only": None}


def test_move_file(box: Box) -> None:
    put(box, "/src")
    ok(box, "/src", set_(z("a", "1")))
    assert box.request("MOVE", "/src", headers=destination(box, "/dst")).status_code == 201
    assert values(box, "/dst", "a") == {"a": "1"}
    assert propfind(box, "/src", None, depth="0").status_code == 404
    put(box, "/src")
    assert dead_names(box, "/src") == set()


def test_move_overwrite_replaces_the_destination_properties(box: Box) -> None:
    put(box, "/src")
    put(box, "/dst")
    ok(box, "/src", set_(z("a", "from src")))
    ok(box, "/dst", set_(z("only", "dst")))
    assert box.request("MOVE", "/src", headers=destination(box, "/dst")).status_code == 204
    assert values(box, "/dst", "a", "only") == {"a": "from src", "only": None}


def test_delete_file(box: Box) -> None:
    put(box, "/f")
    ok(box, "/f", set_(z("a", "1")))
    assert box.request("DELETE", "/f").status_code == 204
    put(box, "/f")
    assert dead_names(box, "/f") == set()
    assert values(box, "/f", "a") == {"a": None}


def test_put_replacing_a_file_keeps_its_properties(box: Box) -> None:
    put(box, "/f", b"first")
    ok(box, "/f", set_(z("a", "1")))
    assert box.request("PUT", "/f", data=b"second, longer").status_code == 204
    assert values(box, "/f", "a") == {"a": "1"}
    assert box.request("GET", "/f").content == b"second, longer"


def make_collection_tree(box: Box, root: str) -> None:
    """root/{f, sub/{g}}, each with a dead property naming its own path."""
    mkcol(box, root)
    put(box, root + "/f")
    mkcol(box, root + "/sub")
    put(box, root + "/sub/g")
    for path in (root, root + "/f", root + "/sub", root + "/sub/g"):
        ok(box, path, set_(z("origin", path)))


TREE = ("", "/f", "/sub", "/sub/g")


def origins(box: Box, root: str) -> dict[str, str | None]:
    return {rel: values(box, root + rel, "origin")["origin"] for rel in TREE}


def test_copy_collection(box: Box) -> None:
    make_collection_tree(box, "/c")
    assert box.request("COPY", "/c/", headers=destination(box, "/d/")).status_code == 201
    assert origins(box, "/d") == {rel: "/c" + rel for rel in TREE}
    assert origins(box, "/c") == {rel: "/c" + rel for rel in TREE}


def test_copy_collection_depth_0(box: Box) -> None:
    make_collection_tree(box, "/c")
    resp = box.request("COPY", "/c/", headers={**destination(box, "/d/"), "Depth": "0"})
    assert resp.status_code == 201
    assert values(box, "/d", "origin") == {"origin": "/c"}
    assert propfind(box, "/d/f", None, depth="0").status_code == 404


def test_copy_collection_over_one_with_properties(box: Box) -> None:
    make_collection_tree(box, "/c")
    make_collection_tree(box, "/d")
    put(box, "/d/extra")
    ok(box, "/d/extra", set_(z("origin", "/d/extra")))
    resp = box.request("COPY", "/c/", headers={**destination(box, "/d/"), "Overwrite": "T"})
    assert resp.status_code == 204
    assert origins(box, "/d") == {rel: "/c" + rel for rel in TREE}
    assert propfind(box, "/d/extra", None, depth="0").status_code == 404
    put(box, "/d/extra")
    assert dead_names(box, "/d/extra") == set()


def test_move_collection(box: Box) -> None:
    make_collection_tree(box, "/c")
    assert box.request("MOVE", "/c/", headers=destination(box, "/m/")).status_code == 201
    assert origins(box, "/m") == {rel: "/c" + rel for rel in TREE}
    assert propfind(box, "/c/", None, depth="0").status_code == 404
    # a new tree at the old place starts bare
    mkcol(box, "/c")
    put(box, "/c/f")
    mkcol(box, "/c/sub")
    put(box, "/c/sub/g")
    assert origins(box, "/c") == dict.fromkeys(TREE)


def test_move_collection_next_to_a_prefix_sibling(box: Box) -> None:
    make_collection_tree(box, "/a")
    make_collection_tree(box, "/ab")
    assert box.request("MOVE", "/a/", headers=destination(box, "/x/")).status_code == 201
    assert origins(box, "/ab") == {rel: "/ab" + rel for rel in TREE}
    assert origins(box, "/x") == {rel: "/a" + rel for rel in TREE}


def test_delete_collection(box: Box) -> None:
    make_collection_tree(box, "/c")
    make_collection_tree(box, "/cc")
    assert box.request("DELETE", "/c/").status_code == 204
    mkcol(box, "/c")
    put(box, "/c/f")
    mkcol(box, "/c/sub")
    put(box, "/c/sub/g")
    assert origins(box, "/c") == dict.fromkeys(TREE)
    assert origins(box, "/cc") == {rel: "/cc" + rel for rel in TREE}
