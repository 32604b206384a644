"""RFC 4918 requirements on COPY and MOVE (9.8, 9.9, 10.3, 10.6, 12) that tests/test_copymove.py
and tests/test_locks.py do not already check, each test naming the ids it checks."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import lockinfo, make_tree, snapshot, with_provider
from rfc4918_util import XML_TYPE, D, code, lock, prop, xml
from test_copymove import RefusingCopy


@pytest.fixture
def tree(server: Any) -> Any:
    make_tree(
        server.root,
        {"c/a.txt": b"a", "c/m.txt": b"m", "c/s/b.txt": b"b", "f.txt": b"f", "t/m.txt": b"old"},
    )
    return server


def headers_with_member_token(server: Any, member: str, token: str, **extra: str) -> dict[str, str]:
    return {"If": f"<{server.url(member)}> (<{token}>)", **extra}


@pytest.mark.rfc4918("R-102", "R-181")
def test_delete_with_the_token_of_a_locked_member_deletes_everything(tree: Any) -> None:
    token = lock(tree, "/c/m.txt", depth="0")
    r = tree.request("DELETE", "/c/", headers=headers_with_member_token(tree, "/c/m.txt", token))
    assert r.status_code == 204
    assert not (tree.root / "c").exists()


@pytest.mark.rfc4918("R-118")
def test_copy_over_a_tree_with_a_locked_member_with_its_token(tree: Any) -> None:
    token = lock(tree, "/t/m.txt", depth="0")
    blocked = tree.request("COPY", "/c/", headers={"Destination": tree.url("/t/")})
    assert blocked.status_code == 423
    assert (tree.root / "t" / "m.txt").read_bytes() == b"old"
    r = tree.request(
        "COPY",
        "/c/",
        headers=headers_with_member_token(tree, "/t/m.txt", token, Destination=tree.url("/t/")),
    )
    assert r.status_code == 204
    assert snapshot(tree.root, "t") == snapshot(tree.root, "c")


@pytest.mark.rfc4918("R-139")
def test_headers_of_a_move_apply_to_every_moved_member(tree: Any) -> None:
    token = lock(tree, "/c/s/b.txt", depth="0")
    blocked = tree.request("MOVE", "/c/", headers={"Destination": tree.url("/moved/")})
    assert blocked.status_code == 423
    r = tree.request(
        "MOVE",
        "/c/",
        headers=headers_with_member_token(tree, "/c/s/b.txt", token, Destination=tree.url("/m/")),
    )
    assert r.status_code == 201
    assert (tree.root / "m" / "s" / "b.txt").read_bytes() == b"b"


@pytest.mark.rfc4918("R-121", "R-122")
def test_a_failing_file_does_not_stop_the_rest_of_a_copy(tree: Any) -> None:
    with_provider(tree, lambda inner: RefusingCopy(inner, {"m.txt"}))
    r = tree.request("COPY", "/c/", headers={"Destination": tree.url("/d/")})
    assert r.status_code == 207
    [response] = xml(r.content).findall(D + "response")
    assert (response.findtext(D + "href"), code(response.findtext(D + "status"))) == (
        "/d/m.txt",
        403,
    )
    assert (tree.root / "d" / "a.txt").read_bytes() == b"a"
    assert (tree.root / "d" / "s" / "b.txt").read_bytes() == b"b"


@pytest.mark.rfc4918("R-184")
@pytest.mark.parametrize("destination", ["http://[bad/x", "not a URI", "/a%zz"])
def test_an_unusable_destination_is_400(tree: Any, destination: str) -> None:
    r = tree.request("COPY", "/f.txt", headers={"Destination": destination})
    assert r.status_code == 400
    assert sorted(p.name for p in tree.root.iterdir()) == ["c", "f.txt", "t"]


@pytest.mark.rfc4918("R-196")
def test_creating_requests_answer_201_never_3xx(tree: Any) -> None:
    answers = {
        "PUT": tree.request("PUT", "/n1.txt", data=b"x"),
        "MKCOL": tree.request("MKCOL", "/n2"),
        "COPY": tree.request("COPY", "/f.txt", headers={"Destination": tree.url("/n3.txt")}),
        "MOVE": tree.request("MOVE", "/n3.txt", headers={"Destination": tree.url("/n4.txt")}),
        "LOCK": tree.request("LOCK", "/n5.txt", headers=XML_TYPE, data=lockinfo()),
    }
    assert {method: r.status_code for method, r in answers.items()} == dict.fromkeys(answers, 201)
    assert all(not r.history for r in answers.values())


@pytest.mark.rfc4918("R-202")
def test_multistatus_answers_hold_no_redirect_without_location(tree: Any) -> None:
    # davserver never redirects a member; every status in a 207 is then not a 3xx.
    r = tree.request("PROPFIND", "/", headers={"Depth": "infinity"})
    for status in xml(r.content).iter(D + "status"):
        assert not 300 <= code(status.text) < 400
    assert not list(xml(r.content).iter(D + "location"))


@pytest.mark.rfc4918("R-262")
def test_timeout_request_header_and_owner_are_honoured(tree: Any) -> None:
    lock(
        tree,
        "/f.txt",
        depth="0",
        owner="<D:href>mailto:me@example.org</D:href>",
        headers={"Timeout": "Second-321"},
    )
    _, discovery = prop(tree, "/f.txt", D + "lockdiscovery")
    active = discovery.find(D + "activelock")
    assert active.findtext(D + "timeout") == "Second-321"
    assert active.findtext(f"{D}owner/{D}href") == "mailto:me@example.org"
