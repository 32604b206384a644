"""The JSON batch endpoint against the findings of the independent review (issue 14): the
POST target's conditional headers.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import make_tree, post_batch, snapshot

OLD_DATE = "Sat, 01 Jan 2000 00:00:00 GMT"


# -- the POST target's preconditions (RFC 9110 13.2, RFC 4918 10.4) -----------------------------


@pytest.mark.parametrize(
    "conditional",
    [
        {"If-Match": '"nope"'},
        {"If-None-Match": "*"},
        {"If-Unmodified-Since": OLD_DATE},
        # The If header on the POST target: an untagged list the collection does not meet.
        {"If": '(["nope"])'},
        {"If": "(<urn:uuid:00000000-0000-0000-0000-000000000000>)"},
    ],
)
def test_a_failed_precondition_on_the_target_is_412_and_runs_nothing(
    server: Any, conditional: dict[str, str]
) -> None:
    make_tree(server.root, {"sub/a.txt": b"a", "sub/b.txt": b"b"})
    (server.root / "sub").touch()  # modified after OLD_DATE
    before = snapshot(server.root)
    operations = [{"op": "delete", "path": "a.txt"}, {"op": "mkcol", "path": "new/"}]
    response = post_batch(server, operations, at="/sub/", headers=conditional)
    assert response.status_code == 412, response.text
    assert snapshot(server.root) == before


@pytest.mark.parametrize(
    "conditional",
    [{"If-Match": "*"}, {"If-Unmodified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}],
)
def test_a_precondition_that_holds_lets_the_batch_run(
    server: Any, conditional: dict[str, str]
) -> None:
    make_tree(server.root, {"sub/a.txt": b"a"})
    response = post_batch(
        server, [{"op": "delete", "path": "a.txt"}], at="/sub/", headers=conditional
    )
    assert response.status_code == 207, response.text
    assert [r["status"] for r in response.json()["results"]] == [204]
    assert not (server.root / "sub" / "a.txt").exists()
