"""Locking over HTTP (RFC 4918 6, 7, 9.10, 9.11, 10.4): LOCK, UNLOCK and their enforcement."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import requests
from helpers import snapshot
from lxml import etree

from davserver.server import DavServer

if TYPE_CHECKING:
    from conftest import LiveServer

D = "{DAV:}"

OWNER = (
    "<D:owner><D:href>http://example.org/~alice/contact</D:href>"
    '<x:contact xmlns:x="urn:example:contact" x:kind="mail">alice@example.org</x:contact>'
    "</D:owner>"
)

LOCKDISCOVERY_PROPFIND = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/><D:supportedlock/></D:prop>'
    b"</D:propfind>"
)


# -- helpers ------------------------------------------------------------------------------------


def lockinfo(scope: str = "exclusive", owner: str | None = OWNER) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:{scope}/></D:lockscope>'
        f"<D:locktype><D:write/></D:locktype>{owner or ''}</D:lockinfo>"
    ).encode()


def do_lock(
    server: LiveServer,
    path: str,
    scope: str = "exclusive",
    depth: str | None = None,
    timeout: str | None = None,
    owner: str | None = OWNER,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    sent = {"Content-Type": 'application/xml; charset="utf-8"', **(headers or {})}
    if depth is not None:
        sent["Depth"] = depth
    if timeout is not None:
        sent["Timeout"] = timeout
    return server.request("LOCK", path, headers=sent, data=lockinfo(scope, owner))


def locked(server: LiveServer, path: str, created: bool = False, **kwargs: Any) -> str:
    """Lock `path` (which must succeed: 200, or 201 when the lock `created` an empty file at
    an unmapped URL, RFC 4918 9.10.4) and return the bare token."""
    response = do_lock(server, path, **kwargs)
    assert response.status_code == (201 if created else 200), response.text
    return header_token(response)


def header_token(response: requests.Response) -> str:
    value = response.headers["Lock-Token"]
    assert re.fullmatch(r"<urn:uuid:[0-9a-fA-F-]{36}>", value), value
    uuid.UUID(value[len("<urn:uuid:") : -1])
    return value[1:-1]


def xml(response: requests.Response) -> etree._Element:
    return etree.fromstring(response.content)


def href_path(href: str) -> str:
    """The path of an href, whether the server wrote a path or an absolute URL."""
    return urlsplit(href.strip()).path


def activelocks(root: etree._Element) -> list[etree._Element]:
    return root.findall(f".//{D}lockdiscovery/{D}activelock")


def lock_fields(active: etree._Element) -> dict[str, Any]:
    scope = active.find(f"{D}lockscope")
    assert scope is not None and len(scope) == 1
    locktype = active.find(f"{D}locktype")
    assert locktype is not None and locktype.find(f"{D}write") is not None
    token = active.findtext(f"{D}locktoken/{D}href")
    root = active.findtext(f"{D}lockroot/{D}href")
    assert token is not None and root is not None
    return {
        "scope": etree.QName(scope[0]).localname,
        "depth": (active.findtext(f"{D}depth") or "").strip().lower(),
        "timeout": (active.findtext(f"{D}timeout") or "").strip(),
        "token": token.strip(),
        "root": href_path(root),
        "owner": active.find(f"{D}owner"),
    }


def same_xml(a: etree._Element, b: etree._Element) -> bool:
    """Namespace-aware equality of two elements: names, attributes, text and children."""
    if a.tag != b.tag or dict(a.attrib) != dict(b.attrib):
        return False
    if (a.text or "") != (b.text or "") or (a.tail or "") != (b.tail or ""):
        return False
    return len(a) == len(b) and all(same_xml(x, y) for x, y in zip(a, b, strict=True))


def same_owner(received: etree._Element | None, sent: str = OWNER) -> bool:
    assert received is not None, "the activelock has no <D:owner>"
    expected = etree.fromstring(f'<D:wrap xmlns:D="DAV:">{sent}</D:wrap>')[0]
    received = etree.fromstring(etree.tostring(received))  # drop the tail
    return same_xml(received, expected)


def discovery(server: LiveServer, path: str) -> list[dict[str, Any]]:
    """The lockdiscovery of one resource, from PROPFIND Depth 0."""
    response = server.request("PROPFIND", path, headers={"Depth": "0"}, data=LOCKDISCOVERY_PROPFIND)
    assert response.status_code == 207, response.text
    root = xml(response)
    (prop,) = [
        ps.find(f"{D}prop")
        for ps in root.iter(f"{D}propstat")
        if ps.find(f"{D}prop/{D}lockdiscovery") is not None
    ]
    assert prop is not None
    assert "200" in (prop.getparent().findtext(f"{D}status") or "")
    return [lock_fields(a) for a in prop.findall(f"{D}lockdiscovery/{D}activelock")]


def error_hrefs(response: requests.Response, condition: str) -> list[str]:
    """The hrefs inside `<D:error><D:{condition}>`; fails when the element is missing."""
    root = xml(response)
    assert root.tag == f"{D}error", response.text
    element = root.find(f"{D}{condition}")
    assert element is not None, response.text
    return [href_path(h.text or "") for h in element.findall(f"{D}href")]


def assert_blocked(response: requests.Response, locked_href: str) -> None:
    assert response.status_code == 423, (response.status_code, response.text)
    assert error_hrefs(response, "lock-token-submitted") == [locked_href]


def statuses(response: requests.Response) -> dict[str, int]:
    """href path -> status code of each `<D:response>` of a multistatus."""
    assert response.status_code == 207, response.text
    root = xml(response)
    assert root.tag == f"{D}multistatus"
    result = {}
    for item in root.findall(f"{D}response"):
        status = item.findtext(f"{D}status") or ""
        result[href_path(item.findtext(f"{D}href") or "")] = int(status.split()[1])
    return result


def put(server: LiveServer, path: str, data: bytes, **headers: str) -> requests.Response:
    return server.request("PUT", path, data=data, headers=headers)


def if_tagged(server: LiveServer, path: str, token: str) -> str:
    """An If header naming the lock by the absolute URL of its root."""
    return f"<{server.url(path)}> (<{token}>)"


def proppatch_body(value: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:example:props">'
        f"<D:set><D:prop><Z:color>{value}</Z:color></D:prop></D:set></D:propertyupdate>"
    ).encode()


def color(server: LiveServer, path: str) -> int:
    """The status PROPFIND gives for the dead property Z:color (200 when set, 404 when not)."""
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" '
        b'xmlns:Z="urn:example:props"><D:prop><Z:color/></D:prop></D:propfind>'
    )
    response = server.request("PROPFIND", path, headers={"Depth": "0"}, data=body)
    assert response.status_code == 207
    root = xml(response)
    for propstat in root.iter(f"{D}propstat"):
        if propstat.find(f"{D}prop/{{urn:example:props}}color") is not None:
            return int((propstat.findtext(f"{D}status") or "").split()[1])
    raise AssertionError(response.text)


@pytest.fixture
def tree(server: LiveServer) -> LiveServer:
    """/coll/ holding a.txt and sub/b.txt; /file.txt and /other.txt at the root."""
    (server.root / "coll" / "sub").mkdir(parents=True)
    (server.root / "coll" / "a.txt").write_bytes(b"a")
    (server.root / "coll" / "sub" / "b.txt").write_bytes(b"b")
    (server.root / "file.txt").write_bytes(b"original")
    (server.root / "other.txt").write_bytes(b"other")
    return server


Clocked = tuple["LiveServer", list[float]]


@pytest.fixture
def clocked(tree: LiveServer) -> Clocked:
    """The tree server restarted with a clock the test moves by hand."""
    fake_now = [time.time()]
    services = dataclasses.replace(tree.services, clock=lambda: fake_now[0])
    tree.stop()
    tree.start(services=services)
    return tree, fake_now


# -- LOCK: the answer ---------------------------------------------------------------------------


@pytest.mark.rfc4918("R-150", "R-154", "R-155", "R-156", "R-162", "R-166", "R-208", "R-153")
@pytest.mark.parametrize(
    ("path", "depth", "root_href", "expected_depth"),
    [
        ("/file.txt", "0", "/file.txt", "0"),
        ("/file.txt", "infinity", "/file.txt", "infinity"),
        ("/coll", "0", "/coll/", "0"),
        ("/coll/", "infinity", "/coll/", "infinity"),
        ("/coll/", None, "/coll/", "infinity"),
    ],
)
def test_lock_answer(
    tree: LiveServer, path: str, depth: str | None, root_href: str, expected_depth: str
) -> None:
    for scope in ("exclusive", "shared"):
        response = do_lock(tree, path, scope=scope, depth=depth, timeout="Second-600")
        assert response.status_code == 200, response.text
        token = header_token(response)
        assert response.headers["Content-Type"].startswith(("application/xml", "text/xml"))
        root = xml(response)
        assert root.tag == f"{D}prop"
        (active,) = activelocks(root)
        fields = lock_fields(active)
        assert fields["token"] == token
        assert fields["scope"] == scope
        assert fields["depth"] == expected_depth
        assert fields["timeout"] == "Second-600"
        assert fields["root"] == root_href
        assert same_owner(fields["owner"])
        unlock = tree.request("UNLOCK", path, headers={"Lock-Token": f"<{token}>"})
        assert unlock.status_code == 204


def test_lock_without_owner_has_no_owner_element(tree: LiveServer) -> None:
    response = do_lock(tree, "/file.txt", owner=None)
    assert response.status_code == 200
    (active,) = activelocks(xml(response))
    assert active.find(f"{D}owner") is None
    assert lock_fields(active)["token"] == header_token(response)


@pytest.mark.rfc4918("R-153", "R-209", "R-210")
def test_owner_with_default_namespace_and_text_is_kept(tree: LiveServer) -> None:
    owner = (
        '<owner xmlns="DAV:">Alice <href>mailto:alice@example.org</href>'
        '<note xmlns="urn:example:n" lang="en">desk 4 &amp; up</note></owner>'
    )
    response = do_lock(tree, "/file.txt", owner=owner)
    assert response.status_code == 200
    (active,) = activelocks(xml(response))
    assert same_owner(active.find(f"{D}owner"), owner)


@pytest.mark.rfc4918("R-048", "R-194")
def test_timeout_is_capped_at_lock_max_timeout(make_server: Callable[..., Any]) -> None:
    server = make_server(lock_max_timeout=100)
    for name, timeout in [("a", "Infinite"), ("b", "Second-4100000000"), ("c", "Second-60")]:
        (server.root / name).write_bytes(b"x")
        response = do_lock(server, "/" + name, timeout=timeout)
        assert response.status_code == 200
        (active,) = activelocks(xml(response))
        expected = "Second-60" if timeout == "Second-60" else "Second-100"
        assert lock_fields(active)["timeout"] == expected, timeout


def test_no_timeout_header_gives_lock_default_timeout(make_server: Callable[..., Any]) -> None:
    server = make_server(lock_default_timeout=250)
    (server.root / "f.txt").write_bytes(b"x")
    response = do_lock(server, "/f.txt")
    assert response.status_code == 200
    (active,) = activelocks(xml(response))
    assert lock_fields(active)["timeout"] == "Second-250"


@pytest.mark.rfc4918("R-161")
def test_lock_depth_one_is_refused(tree: LiveServer) -> None:
    response = do_lock(tree, "/coll/", depth="1")
    assert response.status_code == 400
    assert discovery(tree, "/coll/") == []


@pytest.mark.rfc4918("R-033", "R-039", "R-167", "R-169")
def test_lock_unmapped_url_creates_empty_locked_file(tree: LiveServer) -> None:
    response = do_lock(tree, "/coll/new.txt", timeout="Second-600")
    assert response.status_code == 201, response.text
    token = header_token(response)
    (active,) = activelocks(xml(response))
    fields = lock_fields(active)
    assert fields["token"] == token
    assert fields["root"] == "/coll/new.txt"
    created = tree.root / "coll" / "new.txt"
    assert created.is_file() and created.read_bytes() == b""
    got = tree.request("GET", "/coll/new.txt")
    assert got.status_code == 200 and got.content == b""
    # The new resource is locked: a PUT needs the token.
    assert_blocked(put(tree, "/coll/new.txt", b"x"), "/coll/new.txt")
    assert put(tree, "/coll/new.txt", b"x", If=f"(<{token}>)").status_code == 204
    assert created.read_bytes() == b"x"


@pytest.mark.rfc4918("R-171")
def test_lock_unmapped_url_without_parent_is_409(tree: LiveServer) -> None:
    response = do_lock(tree, "/missing/new.txt")
    assert response.status_code == 409
    assert "Lock-Token" not in response.headers
    assert not (tree.root / "missing").exists()


# -- refresh ------------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-026", "R-047", "R-157", "R-158", "R-160")
def test_refresh_keeps_token_and_restarts_timeout(clocked: Clocked) -> None:
    server, now = clocked
    token = locked(server, "/file.txt", timeout="Second-100")
    now[0] += 60
    response = server.request(
        "LOCK", "/file.txt", headers={"If": f"(<{token}>)", "Timeout": "Second-100"}
    )
    assert response.status_code == 200, response.text
    assert response.headers.get("Lock-Token", f"<{token}>") == f"<{token}>"
    (active,) = activelocks(xml(response))
    fields = lock_fields(active)
    assert fields["token"] == token
    assert fields["timeout"] == "Second-100"
    assert same_owner(fields["owner"])
    # Past the first timeout, the refreshed lock still holds...
    now[0] += 60
    assert_blocked(put(server, "/file.txt", b"new"), "/file.txt")
    (lock,) = discovery(server, "/file.txt")
    assert lock["token"] == token and lock["timeout"] == "Second-40"
    # ...until the refreshed timeout passes.
    now[0] += 41
    assert put(server, "/file.txt", b"new").status_code == 204
    assert discovery(server, "/file.txt") == []


@pytest.mark.rfc4918("R-157")
def test_refresh_through_a_member_of_a_depth_infinity_lock(clocked: Clocked) -> None:
    server, now = clocked
    token = locked(server, "/coll/", timeout="Second-100")
    now[0] += 90
    response = server.request(
        "LOCK", "/coll/sub/b.txt", headers={"If": f"(<{token}>)", "Timeout": "Second-100"}
    )
    assert response.status_code == 200, response.text
    (active,) = activelocks(xml(response))
    fields = lock_fields(active)
    assert fields["token"] == token
    assert fields["root"] == "/coll/"
    assert fields["timeout"] == "Second-100"
    now[0] += 50  # 140s after the LOCK, 50s after the refresh
    (lock,) = discovery(server, "/coll/")
    assert lock["token"] == token and lock["timeout"] == "Second-50"


def test_refresh_with_unknown_token_is_412(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt")
    unknown = f"urn:uuid:{uuid.uuid4()}"
    response = tree.request("LOCK", "/file.txt", headers={"If": f"(<{unknown}>)"})
    assert response.status_code == 412
    (lock,) = discovery(tree, "/file.txt")
    assert lock["token"] == token


def test_refresh_with_token_of_another_resource_is_412(tree: LiveServer) -> None:
    locked(tree, "/file.txt")
    token = locked(tree, "/other.txt")
    response = tree.request("LOCK", "/file.txt", headers={"If": f"(<{token}>)"})
    assert response.status_code == 412


def test_refresh_without_if_header_is_400(tree: LiveServer) -> None:
    locked(tree, "/file.txt")
    assert tree.request("LOCK", "/file.txt").status_code == 400


# -- conflicts ----------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-015", "R-170", "R-195")
def test_second_exclusive_lock_is_423_naming_the_lock_root(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt")
    response = do_lock(tree, "/file.txt")
    assert response.status_code == 423
    assert "Lock-Token" not in response.headers
    assert error_hrefs(response, "no-conflicting-lock") == ["/file.txt"]
    assert [lock["token"] for lock in discovery(tree, "/file.txt")] == [token]


def test_exclusive_lock_on_member_of_locked_collection_names_the_collection(
    tree: LiveServer,
) -> None:
    locked(tree, "/coll/")
    response = do_lock(tree, "/coll/sub/b.txt", depth="0")
    assert response.status_code == 423
    assert error_hrefs(response, "no-conflicting-lock") == ["/coll/"]


@pytest.mark.rfc4918("R-015", "R-170")
@pytest.mark.parametrize(("first", "second"), [("shared", "exclusive"), ("exclusive", "shared")])
def test_shared_and_exclusive_conflict(tree: LiveServer, first: str, second: str) -> None:
    locked(tree, "/file.txt", scope=first)
    response = do_lock(tree, "/file.txt", scope=second)
    assert response.status_code == 423
    assert error_hrefs(response, "no-conflicting-lock") == ["/file.txt"]


@pytest.mark.rfc4918("R-019", "R-170", "R-163")
def test_two_shared_locks_coexist(tree: LiveServer) -> None:
    first = locked(tree, "/file.txt", scope="shared")
    second = locked(tree, "/coll/", scope="shared")
    third = locked(tree, "/coll/a.txt", scope="shared", owner=None)
    assert len({first, second, third}) == 3
    assert {lock["token"] for lock in discovery(tree, "/coll/a.txt")} == {second, third}
    assert all(lock["scope"] == "shared" for lock in discovery(tree, "/coll/a.txt"))
    fourth = locked(tree, "/file.txt", scope="shared")
    assert fourth != first
    assert {lock["token"] for lock in discovery(tree, "/file.txt")} == {first, fourth}


@pytest.mark.rfc4918("R-041", "R-164", "R-165")
def test_depth_infinity_lock_over_a_locked_member_is_207(tree: LiveServer) -> None:
    member = locked(tree, "/coll/sub/b.txt")
    response = do_lock(tree, "/coll/")
    assert "Lock-Token" not in response.headers
    assert statuses(response) == {"/coll/sub/b.txt": 423, "/coll/": 424}
    assert discovery(tree, "/coll/") == []
    assert [lock["token"] for lock in discovery(tree, "/coll/sub/b.txt")] == [member]
    # A depth-0 lock on the collection does not meet the member's lock.
    assert do_lock(tree, "/coll/", depth="0").status_code == 200


# -- UNLOCK -------------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-173", "R-175")
def test_unlock_removes_the_lock(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt")
    response = tree.request("UNLOCK", "/file.txt", headers={"Lock-Token": f"<{token}>"})
    assert response.status_code == 204
    assert discovery(tree, "/file.txt") == []
    assert put(tree, "/file.txt", b"new").status_code == 204
    again = tree.request("UNLOCK", "/file.txt", headers={"Lock-Token": f"<{token}>"})
    assert again.status_code == 409


@pytest.mark.rfc4918("R-172", "R-173")
def test_unlock_through_a_member_removes_the_collection_lock(tree: LiveServer) -> None:
    token = locked(tree, "/coll/")
    response = tree.request("UNLOCK", "/coll/sub/b.txt", headers={"Lock-Token": f"<{token}>"})
    assert response.status_code == 204
    assert discovery(tree, "/coll/") == []


@pytest.mark.rfc4918("R-172", "R-189", "R-249")
def test_unlock_with_token_of_another_resource_is_409(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt")
    response = tree.request("UNLOCK", "/other.txt", headers={"Lock-Token": f"<{token}>"})
    assert response.status_code == 409
    assert error_hrefs(response, "lock-token-matches-request-uri") == []
    assert [lock["token"] for lock in discovery(tree, "/file.txt")] == [token]


def test_unlock_with_unknown_token_is_409(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt")
    unknown = f"<urn:uuid:{uuid.uuid4()}>"
    response = tree.request("UNLOCK", "/file.txt", headers={"Lock-Token": unknown})
    assert response.status_code == 409
    error_hrefs(response, "lock-token-matches-request-uri")
    assert [lock["token"] for lock in discovery(tree, "/file.txt")] == [token]


def test_unlock_token_with_one_angle_bracket_names_no_lock(tree: LiveServer) -> None:
    # Only a whole <...> is stripped: "<token]" is not the token.
    token = locked(tree, "/file.txt")
    response = tree.request("UNLOCK", "/file.txt", headers={"Lock-Token": f"<{token}]"})
    assert response.status_code == 409
    assert [lock["token"] for lock in discovery(tree, "/file.txt")] == [token]


def test_unlock_token_without_angle_brackets_is_accepted(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt")
    response = tree.request("UNLOCK", "/file.txt", headers={"Lock-Token": token})
    assert response.status_code == 204
    assert discovery(tree, "/file.txt") == []


def test_unlock_without_lock_token_is_400(tree: LiveServer) -> None:
    locked(tree, "/file.txt")
    response = tree.request("UNLOCK", "/file.txt")
    assert response.status_code == 400
    assert response.text == "UNLOCK needs a Lock-Token header\n"


@pytest.mark.parametrize(
    "conditional",
    [
        {"If-Match": '"nope"'},
        {"If-None-Match": "*"},
        {"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"},
    ],
)
def test_unlock_with_a_failed_conditional_is_412_and_keeps_the_lock(
    tree: LiveServer, conditional: dict[str, str]
) -> None:
    # RFC 9110 13.2: a precondition that does not hold stops any method that changes state.
    token = locked(tree, "/file.txt")
    headers = {"Lock-Token": f"<{token}>", **conditional}
    assert tree.request("UNLOCK", "/file.txt", headers=headers).status_code == 412
    assert [lock["token"] for lock in discovery(tree, "/file.txt")] == [token]
    etag = tree.request("HEAD", "/file.txt").headers["ETag"]
    headers = {"Lock-Token": f"<{token}>", "If-Match": etag}
    assert tree.request("UNLOCK", "/file.txt", headers=headers).status_code == 204
    assert discovery(tree, "/file.txt") == []


# -- discovery ----------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-030", "R-032", "R-024", "R-031")
def test_propfind_lockdiscovery_and_supportedlock(tree: LiveServer) -> None:
    assert discovery(tree, "/coll/") == []
    token = locked(tree, "/coll/", depth="infinity", scope="shared")
    for path in ("/coll/", "/coll/sub/b.txt"):
        (lock,) = discovery(tree, path)
        assert lock["token"] == token
        assert lock["scope"] == "shared"
        assert lock["depth"] == "infinity"
        assert lock["root"] == "/coll/"
        assert re.fullmatch(r"Second-\d+", lock["timeout"])
        assert same_owner(lock["owner"])
    assert discovery(tree, "/file.txt") == []

    response = tree.request(
        "PROPFIND", "/file.txt", headers={"Depth": "0"}, data=LOCKDISCOVERY_PROPFIND
    )
    entries = xml(response).findall(f".//{D}supportedlock/{D}lockentry")
    kinds = set()
    for entry in entries:
        scope = entry.find(f"{D}lockscope")
        locktype = entry.find(f"{D}locktype")
        assert scope is not None and locktype is not None
        kinds.add((etree.QName(scope[0]).localname, etree.QName(locktype[0]).localname))
    assert kinds == {("exclusive", "write"), ("shared", "write")}


def test_propfind_depth_one_shows_member_locks(tree: LiveServer) -> None:
    token = locked(tree, "/coll/a.txt", depth="0")
    response = tree.request(
        "PROPFIND", "/coll/", headers={"Depth": "1"}, data=LOCKDISCOVERY_PROPFIND
    )
    assert response.status_code == 207
    found = {}
    for item in xml(response).findall(f"{D}response"):
        href = href_path(item.findtext(f"{D}href") or "")
        found[href] = [lock_fields(a)["token"] for a in activelocks(item)]
    assert found["/coll/a.txt"] == [token]
    assert found["/coll/"] == []
    assert found["/coll/sub/"] == []


@pytest.mark.rfc4918("R-261", "R-263")
def test_options_announces_class_2(server: LiveServer) -> None:
    response = server.request("OPTIONS", "/")
    assert response.status_code == 200
    classes = {c.strip() for c in response.headers["DAV"].split(",")}
    assert {"1", "2"} <= classes
    allow = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"LOCK", "UNLOCK"} <= allow


# -- enforcement --------------------------------------------------------------------------------


def conditions(server: LiveServer, lock_root: str, token: str) -> list[str]:
    """The token submitted untagged, and tagged with the absolute URL of the lock root."""
    return [f"(<{token}>)", if_tagged(server, lock_root, token)]


@pytest.mark.rfc4918("R-043", "R-250", "R-195")
def test_put_on_locked_file(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt", depth="0")
    assert_blocked(put(tree, "/file.txt", b"new"), "/file.txt")
    assert (tree.root / "file.txt").read_bytes() == b"original"
    for n, condition in enumerate(conditions(tree, "/file.txt", token)):
        assert put(tree, "/file.txt", b"new%d" % n, If=condition).status_code == 204, condition
        assert (tree.root / "file.txt").read_bytes() == b"new%d" % n


@pytest.mark.rfc4918("R-043", "R-181")
def test_put_inside_locked_collection(tree: LiveServer) -> None:
    token = locked(tree, "/coll/")
    assert_blocked(put(tree, "/coll/sub/b.txt", b"new"), "/coll/")
    assert (tree.root / "coll" / "sub" / "b.txt").read_bytes() == b"b"
    for n, condition in enumerate(conditions(tree, "/coll/", token)):
        response = put(tree, "/coll/sub/b.txt", b"new%d" % n, If=condition)
        assert response.status_code == 204, condition
        assert (tree.root / "coll" / "sub" / "b.txt").read_bytes() == b"new%d" % n


@pytest.mark.rfc4918("R-043")
def test_delete_locked_file(tree: LiveServer) -> None:
    for n in range(2):
        path = f"/doomed{n}.txt"
        (tree.root / path[1:]).write_bytes(b"keep")
        token = locked(tree, path)
        assert_blocked(tree.request("DELETE", path), path)
        assert (tree.root / path[1:]).read_bytes() == b"keep"
        condition = conditions(tree, path, token)[n]
        assert tree.request("DELETE", path, headers={"If": condition}).status_code == 204
        assert not (tree.root / path[1:]).exists()


def test_delete_member_of_locked_collection(tree: LiveServer) -> None:
    token = locked(tree, "/coll/")
    assert_blocked(tree.request("DELETE", "/coll/a.txt"), "/coll/")
    assert (tree.root / "coll" / "a.txt").exists()
    # RFC 4918 7.5.2: the token of the collection lock, tagged with the collection.
    condition = if_tagged(tree, "/coll/", token)
    assert tree.request("DELETE", "/coll/a.txt", headers={"If": condition}).status_code == 204
    assert not (tree.root / "coll" / "a.txt").exists()


def test_mkcol_inside_locked_collection(tree: LiveServer) -> None:
    token = locked(tree, "/coll/")
    assert_blocked(tree.request("MKCOL", "/coll/sub/new"), "/coll/")
    assert not (tree.root / "coll" / "sub" / "new").exists()
    for n, condition in enumerate(conditions(tree, "/coll/", token)):
        response = tree.request("MKCOL", f"/coll/sub/new{n}", headers={"If": condition})
        assert response.status_code == 201, condition
        assert (tree.root / "coll" / "sub" / f"new{n}").is_dir()


def test_proppatch_on_locked_file(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt")
    response = tree.request("PROPPATCH", "/file.txt", data=proppatch_body("red"))
    assert_blocked(response, "/file.txt")
    assert color(tree, "/file.txt") == 404
    for value, condition in zip(("red", "blue"), conditions(tree, "/file.txt", token), strict=True):
        response = tree.request(
            "PROPPATCH", "/file.txt", data=proppatch_body(value), headers={"If": condition}
        )
        assert response.status_code == 207, condition
        propstats = xml(response).findall(f"{D}response/{D}propstat")
        assert [(ps.findtext(f"{D}status") or "").split()[1] for ps in propstats] == ["200"]
        assert color(tree, "/file.txt") == 200
    assert tree.services.props.get("/file.txt")["{urn:example:props}color"].count("blue") == 1


@pytest.mark.rfc4918("R-149")
def test_move_of_locked_source(tree: LiveServer) -> None:
    for n, path in enumerate(("/file.txt", "/other.txt")):
        token = locked(tree, path)
        before = (tree.root / path[1:]).read_bytes()
        dest = {"Destination": tree.url(f"/moved{n}.txt")}
        assert_blocked(tree.request("MOVE", path, headers=dest), path)
        assert (tree.root / path[1:]).read_bytes() == before
        assert not (tree.root / f"moved{n}.txt").exists()
        condition = conditions(tree, path, token)[n]
        response = tree.request("MOVE", path, headers={**dest, "If": condition})
        assert response.status_code == 201, condition
        assert not (tree.root / path[1:]).exists()
        assert (tree.root / f"moved{n}.txt").read_bytes() == before


@pytest.mark.rfc4918("R-139")
@pytest.mark.rfc4918("R-181")
def test_move_of_collection_with_locked_member(tree: LiveServer) -> None:
    token = locked(tree, "/coll/sub/b.txt")
    dest = {"Destination": tree.url("/moved/")}
    assert_blocked(tree.request("MOVE", "/coll/", headers=dest), "/coll/sub/b.txt")
    assert (tree.root / "coll" / "sub" / "b.txt").read_bytes() == b"b"
    assert not (tree.root / "moved").exists()
    condition = if_tagged(tree, "/coll/sub/b.txt", token)
    response = tree.request("MOVE", "/coll/", headers={**dest, "If": condition})
    assert response.status_code == 201, response.text
    assert (tree.root / "moved" / "sub" / "b.txt").read_bytes() == b"b"
    assert not (tree.root / "coll").exists()


def test_copy_onto_locked_destination(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt")
    dest = {"Destination": tree.url("/file.txt")}
    assert_blocked(tree.request("COPY", "/other.txt", headers=dest), "/file.txt")
    assert (tree.root / "file.txt").read_bytes() == b"original"
    # An untagged list applies to the Request-URI (the source), where the token is no lock.
    untagged = tree.request("COPY", "/other.txt", headers={**dest, "If": f"(<{token}>)"})
    assert untagged.status_code == 412
    assert (tree.root / "file.txt").read_bytes() == b"original"
    condition = if_tagged(tree, "/file.txt", token)
    response = tree.request("COPY", "/other.txt", headers={**dest, "If": condition})
    assert response.status_code == 204, response.text
    assert (tree.root / "file.txt").read_bytes() == b"other"


@pytest.mark.rfc4918("R-130")
def test_copy_into_locked_collection(tree: LiveServer) -> None:
    token = locked(tree, "/coll/")
    dest = {"Destination": tree.url("/coll/copy.txt")}
    assert_blocked(tree.request("COPY", "/other.txt", headers=dest), "/coll/")
    assert not (tree.root / "coll" / "copy.txt").exists()
    condition = if_tagged(tree, "/coll/", token)
    response = tree.request("COPY", "/other.txt", headers={**dest, "If": condition})
    assert response.status_code == 201
    assert (tree.root / "coll" / "copy.txt").read_bytes() == b"other"


@pytest.mark.parametrize("method", ["COPY", "MOVE"])
@pytest.mark.parametrize("source", ["/other.txt", "/src/"])
def test_overwriting_a_collection_with_a_locked_member_is_423_and_changes_nothing(
    tree: LiveServer, method: str, source: str
) -> None:
    # RFC 4918 9.8.4 / 9.9.3: an overwrite deletes the destination first, as DELETE would;
    # a locked member refuses it, and a refusal must come before anything is deleted (never
    # a 207 that took the unlocked members away).
    (tree.root / "src").mkdir()
    (tree.root / "src" / "s.txt").write_bytes(b"s")
    token = locked(tree, "/coll/sub/b.txt")
    before = snapshot(tree.root)
    dest = {"Destination": tree.url("/coll/"), "Overwrite": "T"}
    assert_blocked(tree.request(method, source, headers=dest), "/coll/sub/b.txt")
    assert snapshot(tree.root) == before
    assert [lock["token"] for lock in discovery(tree, "/coll/sub/b.txt")] == [token]
    condition = if_tagged(tree, "/coll/sub/b.txt", token)
    response = tree.request(method, source, headers={**dest, "If": condition})
    assert response.status_code == 204, response.text
    assert (tree.root / "coll").is_dir() is source.endswith("/")
    assert discovery(tree, "/coll/") == []


def test_move_out_of_a_depth_zero_locked_collection_needs_its_token(tree: LiveServer) -> None:
    # RFC 4918 7.5.2: moving a member away removes it from the locked collection.
    token = locked(tree, "/coll/", depth="0")
    dest = {"Destination": tree.url("/moved.txt")}
    assert_blocked(tree.request("MOVE", "/coll/a.txt", headers=dest), "/coll/")
    assert (tree.root / "coll" / "a.txt").read_bytes() == b"a"
    assert not (tree.root / "moved.txt").exists()
    condition = if_tagged(tree, "/coll/", token)
    response = tree.request("MOVE", "/coll/a.txt", headers={**dest, "If": condition})
    assert response.status_code == 201, response.text
    assert (tree.root / "moved.txt").read_bytes() == b"a"


def test_lock_of_new_member_needs_the_collection_token(tree: LiveServer) -> None:
    """LOCK of an unmapped member adds it to the collection, which is locked (depth 0)."""
    token = locked(tree, "/coll/", depth="0")
    assert_blocked(do_lock(tree, "/coll/new.txt"), "/coll/")
    assert not (tree.root / "coll" / "new.txt").exists()
    # The depth-0 lock does not cover the member, so the list must name the collection: by
    # its absolute URL or by its path.
    for n, condition in enumerate([if_tagged(tree, "/coll/", token), f"</coll/> (<{token}>)"]):
        response = do_lock(tree, f"/coll/new{n}.txt", headers={"If": condition})
        assert response.status_code == 201, (condition, response.text)
        assert header_token(response) != token
        assert (tree.root / "coll" / f"new{n}.txt").is_file()


@pytest.mark.rfc4918("R-016")
def test_lock_of_new_member_of_depth_infinity_shared_lock(tree: LiveServer) -> None:
    token = locked(tree, "/coll/", scope="shared")
    assert_blocked(do_lock(tree, "/coll/new.txt", scope="shared"), "/coll/")
    assert not (tree.root / "coll" / "new.txt").exists()
    response = do_lock(tree, "/coll/new.txt", scope="shared", headers={"If": f"(<{token}>)"})
    assert response.status_code == 201, response.text
    tokens = {lock["token"] for lock in discovery(tree, "/coll/new.txt")}
    assert tokens == {token, header_token(response)}


@pytest.mark.rfc4918("R-016", "R-042")
def test_depth_infinity_lock_protects_member_created_later(tree: LiveServer) -> None:
    token = locked(tree, "/coll/")
    assert put(tree, "/coll/late.txt", b"1", If=f"(<{token}>)").status_code == 201
    assert_blocked(put(tree, "/coll/late.txt", b"2"), "/coll/")
    assert_blocked(tree.request("DELETE", "/coll/late.txt"), "/coll/")
    assert (tree.root / "coll" / "late.txt").read_bytes() == b"1"
    (lock,) = discovery(tree, "/coll/late.txt")
    assert lock["token"] == token and lock["root"] == "/coll/"
    assert put(tree, "/coll/late.txt", b"2", If=f"(<{token}>)").status_code == 204
    assert (tree.root / "coll" / "late.txt").read_bytes() == b"2"


def test_depth_zero_lock_protects_membership_not_member_content(tree: LiveServer) -> None:
    token = locked(tree, "/coll/", depth="0")
    # New members change the collection: they need the token.
    assert_blocked(put(tree, "/coll/new.txt", b"n"), "/coll/")
    assert not (tree.root / "coll" / "new.txt").exists()
    assert_blocked(tree.request("DELETE", "/coll/a.txt"), "/coll/")
    assert (tree.root / "coll" / "a.txt").exists()
    condition = if_tagged(tree, "/coll/", token)
    assert put(tree, "/coll/new.txt", b"n", If=condition).status_code == 201
    assert (tree.root / "coll" / "new.txt").read_bytes() == b"n"
    # Existing members' content is not under the lock.
    assert put(tree, "/coll/a.txt", b"changed").status_code == 204
    assert (tree.root / "coll" / "a.txt").read_bytes() == b"changed"
    assert put(tree, "/coll/sub/b.txt", b"changed").status_code == 204
    assert put(tree, "/coll/sub/c.txt", b"c").status_code == 201
    assert discovery(tree, "/coll/a.txt") == []


@pytest.mark.rfc4918("R-044")
def test_copy_of_locked_source_needs_no_token_and_copy_is_unlocked(tree: LiveServer) -> None:
    locked(tree, "/coll/")
    response = tree.request("COPY", "/coll/", headers={"Destination": tree.url("/copy/")})
    assert response.status_code == 201
    assert (tree.root / "copy" / "sub" / "b.txt").read_bytes() == b"b"
    assert discovery(tree, "/copy/") == []
    assert discovery(tree, "/copy/sub/b.txt") == []
    assert put(tree, "/copy/sub/b.txt", b"free").status_code == 204
    assert len(discovery(tree, "/coll/")) == 1


@pytest.mark.rfc4918("R-045", "R-017")
def test_move_does_not_move_the_lock(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt")
    response = tree.request(
        "MOVE",
        "/file.txt",
        headers={"Destination": tree.url("/coll/moved.txt"), "If": f"(<{token}>)"},
    )
    assert response.status_code == 201, response.text
    assert discovery(tree, "/coll/moved.txt") == []
    assert put(tree, "/coll/moved.txt", b"free").status_code == 204
    # The source lock is gone with the source.
    assert put(tree, "/file.txt", b"again").status_code == 201
    assert discovery(tree, "/file.txt") == []
    unlock = tree.request("UNLOCK", "/file.txt", headers={"Lock-Token": f"<{token}>"})
    assert unlock.status_code == 409


@pytest.mark.rfc4918("R-097", "R-018")
def test_delete_removes_locks(tree: LiveServer) -> None:
    file_token = locked(tree, "/file.txt")
    coll_token = locked(tree, "/coll/")
    assert (
        tree.request("DELETE", "/file.txt", headers={"If": f"(<{file_token}>)"}).status_code == 204
    )
    assert tree.request("DELETE", "/coll/", headers={"If": f"(<{coll_token}>)"}).status_code == 204
    assert put(tree, "/file.txt", b"fresh").status_code == 201
    assert discovery(tree, "/file.txt") == []
    assert tree.request("MKCOL", "/coll/").status_code == 201
    assert put(tree, "/coll/a.txt", b"fresh").status_code == 201
    assert discovery(tree, "/coll/") == []


@pytest.mark.rfc4918("R-101", "R-250")
def test_bulk_delete_keeps_locked_member_and_its_ancestors(tree: LiveServer) -> None:
    (tree.root / "coll" / "sub" / "deep").mkdir()
    (tree.root / "coll" / "sub" / "deep" / "c.txt").write_bytes(b"c")
    (tree.root / "coll" / "other").mkdir()
    (tree.root / "coll" / "other" / "d.txt").write_bytes(b"d")
    locked(tree, "/coll/sub/b.txt")
    response = tree.request("DELETE", "/coll/")
    assert statuses(response) == {"/coll/sub/b.txt": 423}
    (item,) = xml(response).findall(f"{D}response")
    hrefs = item.findall(f"{D}error/{D}lock-token-submitted/{D}href")
    assert [href_path(h.text or "") for h in hrefs] == ["/coll/sub/b.txt"]
    assert (tree.root / "coll" / "sub" / "b.txt").read_bytes() == b"b"
    remaining = sorted(str(p.relative_to(tree.root)) for p in (tree.root / "coll").rglob("*"))
    assert remaining == ["coll/sub", "coll/sub/b.txt"]
    assert (tree.root / "file.txt").exists()


# -- the If header ------------------------------------------------------------------------------


@pytest.mark.rfc4918("R-185")
def test_if_no_lock(tree: LiveServer) -> None:
    response = put(tree, "/file.txt", b"new", If="(<DAV:no-lock>)")
    assert response.status_code == 412
    assert response.text == "the If header does not match the current state\n"
    assert (tree.root / "file.txt").read_bytes() == b"original"
    assert put(tree, "/file.txt", b"new", If="(Not <DAV:no-lock>)").status_code == 204
    assert (tree.root / "file.txt").read_bytes() == b"new"


def test_a_collection_has_no_entity_tag_to_match(tree: LiveServer) -> None:
    # davserver serves no ETag for a collection, so an If header cannot match one, not even
    # with the validator the provider keeps for the folder.
    inner = tree.services.provider.stat("/coll").etag
    response = tree.request("DELETE", "/coll/", headers={"If": f'(["{inner}"])'})
    assert response.status_code == 412
    assert (tree.root / "coll").is_dir()


@pytest.mark.rfc4918("R-185", "R-187")
def test_if_etag_list(tree: LiveServer) -> None:
    etag = tree.request("HEAD", "/file.txt").headers["ETag"]
    assert put(tree, "/file.txt", b"x", If='(["not-the-etag"])').status_code == 412
    assert (tree.root / "file.txt").read_bytes() == b"original"
    assert put(tree, "/file.txt", b"x", If=f"([{etag}])").status_code == 204
    assert (tree.root / "file.txt").read_bytes() == b"x"
    # The old etag no longer matches.
    assert put(tree, "/file.txt", b"y", If=f"([{etag}])").status_code == 412


def test_if_etag_and_token_together(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt")
    etag = tree.request("HEAD", "/file.txt").headers["ETag"]
    response = put(tree, "/file.txt", b"x", If=f'(<{token}> ["wrong"])')
    assert response.status_code == 412
    assert put(tree, "/file.txt", b"x", If=f"(<{token}> [{etag}])").status_code == 204
    assert (tree.root / "file.txt").read_bytes() == b"x"


def test_true_if_header_with_wrong_token_is_still_locked(tree: LiveServer) -> None:
    locked(tree, "/file.txt")
    wrong = f"urn:uuid:{uuid.uuid4()}"
    response = put(tree, "/file.txt", b"new", If=f"(<{wrong}>) (Not <DAV:no-lock>)")
    assert_blocked(response, "/file.txt")
    assert (tree.root / "file.txt").read_bytes() == b"original"


def test_token_in_a_false_list_is_still_submitted(tree: LiveServer) -> None:
    """RFC 4918 10.4.1: a token is submitted whatever list it appears in (10.4.8)."""
    token = locked(tree, "/file.txt")
    response = put(tree, "/file.txt", b"new", If=f'(<{token}> ["wrong"]) (Not <DAV:no-lock>)')
    assert response.status_code == 204
    assert (tree.root / "file.txt").read_bytes() == b"new"


@pytest.mark.rfc4918("R-188")
def test_token_of_another_lock_does_not_unlock(tree: LiveServer) -> None:
    locked(tree, "/file.txt")
    other = locked(tree, "/other.txt")
    condition = f"<{tree.url('/other.txt')}> (<{other}>)"
    assert_blocked(put(tree, "/file.txt", b"new", If=condition), "/file.txt")
    assert (tree.root / "file.txt").read_bytes() == b"original"


def test_malformed_if_header_is_400(tree: LiveServer) -> None:
    for value in ["(<urn:uuid:x>", "<urn:uuid:x>", "([unquoted])", "()", "garbage", "(<a> (<b>)"]:
        assert put(tree, "/file.txt", b"new", If=value).status_code == 400, value
    assert (tree.root / "file.txt").read_bytes() == b"original"
    # The body says where the header went wrong.
    response = put(tree, "/file.txt", b"new", If="()")
    assert response.text == (
        "invalid If header: expected 'Not', '<' or '[' at offset 1, found ')'"
        " (a list needs at least one condition)\n"
    )


@pytest.mark.rfc4918("R-186")
def test_tag_for_another_host_is_false(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt")
    condition = f"<http://elsewhere.example/file.txt> (<{token}>)"
    assert put(tree, "/file.txt", b"new", If=condition).status_code == 412
    assert (tree.root / "file.txt").read_bytes() == b"original"


# -- expiry and persistence ---------------------------------------------------------------------


@pytest.mark.rfc4918("R-028", "R-029")
def test_lock_expires(clocked: Clocked) -> None:
    server, now = clocked
    token = locked(server, "/coll/", timeout="Second-100")
    now[0] += 99
    assert_blocked(put(server, "/coll/a.txt", b"new"), "/coll/")
    (lock,) = discovery(server, "/coll/a.txt")
    assert lock["token"] == token and lock["timeout"] == "Second-1"
    now[0] += 2
    assert put(server, "/coll/a.txt", b"new").status_code == 204
    assert discovery(server, "/coll/") == []
    assert discovery(server, "/coll/a.txt") == []
    # The expired token neither refreshes nor unlocks, and a new exclusive lock is granted.
    refresh = server.request("LOCK", "/coll/", headers={"If": f"(<{token}>)"})
    assert refresh.status_code == 412
    unlock = server.request("UNLOCK", "/coll/", headers={"Lock-Token": f"<{token}>"})
    assert unlock.status_code == 409
    assert locked(server, "/coll/") != token


def test_locks_survive_restart(tree: LiveServer) -> None:
    token = locked(tree, "/file.txt")
    tree.restart()
    assert_blocked(put(tree, "/file.txt", b"new"), "/file.txt")
    assert (tree.root / "file.txt").read_bytes() == b"original"
    (lock,) = discovery(tree, "/file.txt")
    assert lock["token"] == token
    assert same_owner(lock["owner"])
    assert put(tree, "/file.txt", b"new", If=f"(<{token}>)").status_code == 204
    assert (tree.root / "file.txt").read_bytes() == b"new"


def test_two_servers_on_one_state_dir_share_locks(tree: LiveServer) -> None:
    second = DavServer(dataclasses.replace(tree.config, port=0))
    second.start()
    second.serve_in_thread()
    base = second.url.rstrip("/")
    try:
        with requests.Session() as other:
            token = locked(tree, "/file.txt")
            response = other.put(base + "/file.txt", data=b"x", timeout=30)
            assert_blocked(response, "/file.txt")
            assert (tree.root / "file.txt").read_bytes() == b"original"
            conflict = other.request(
                "LOCK",
                base + "/file.txt",
                data=lockinfo("shared"),
                headers={"Content-Type": "application/xml"},
                timeout=30,
            )
            assert conflict.status_code == 423
            # A lock taken on the second server blocks the first.
            response = other.request("LOCK", base + "/coll/", data=lockinfo(), timeout=30)
            assert response.status_code == 200
            coll_token = header_token(response)
            assert_blocked(put(tree, "/coll/a.txt", b"x"), "/coll/")
            # Each server honours the other's token.
            ok = other.put(
                base + "/file.txt", data=b"x", headers={"If": f"(<{token}>)"}, timeout=30
            )
            assert ok.status_code == 204
            assert put(tree, "/coll/a.txt", b"x", If=f"(<{coll_token}>)").status_code == 204
            unlocked = tree.request("UNLOCK", "/coll/", headers={"Lock-Token": f"<{coll_token}>"})
            assert unlocked.status_code == 204
            assert other.put(base + "/coll/a.txt", data=b"y", timeout=30).status_code == 204
    finally:
        second.stop()
