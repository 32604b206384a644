"""What a crash leaves on an S3 root: the server SIGKILLed between the steps of an overwriting
COPY or MOVE (those of davserver.transfers and those of the S3 provider's set-aside, which
copies the replaced resource under a reserved name before deleting it), then restarted.

As in tests/test_crash.py, every file holds a unique text and its dead property COLOR the same
text; after the restart the tree is as before the request or as the request would have left
it, properties and locks agree with the objects, and nothing of the server's own is left in
the bucket.
"""

from __future__ import annotations

import random

import pytest
import s3server
from helpers import lockinfo
from procs import ServerProcess
from test_crash import _crash, _proppatch, _rows
from test_s3 import objects, uploads

from davserver import failpoints
from davserver.provider.fs import TEMP_PREFIX


class Bucket:
    """A fresh S3 root and a state folder, and servers started on them."""

    def __init__(self, store: s3server.S3Store, state: object) -> None:
        self.store = store
        self.root = store.new_root()
        self.state = state
        self.args = ("--s3-endpoint", store.endpoint)

    def server(self, env: dict[str, str] | None = None) -> ServerProcess:
        return ServerProcess(self.root, self.state, *self.args, env=env)  # type: ignore[arg-type]

    def crash(self, point: str, method: str, path: str, **kw: object) -> None:
        _crash(self.root, self.state, point, method, path, args=self.args, **kw)  # type: ignore[arg-type]

    def files(self) -> dict[str, str]:
        """The files of the tree (no markers, nothing reserved) by path, with their text."""
        return {
            "/" + key: body.decode()
            for key, body in objects(self.store, self.root).items()
            if not key.endswith("/") and not key.startswith(TEMP_PREFIX)
        }

    def check_agreement(self) -> None:
        """Objects, properties and locks agree; nothing of the server's own is left."""
        found = objects(self.store, self.root)
        leftovers = [key for key in found if key.startswith(TEMP_PREFIX)]
        assert leftovers == [], leftovers
        assert uploads(self.store, self.root) == []
        props, locks = _rows(self.state)  # type: ignore[arg-type]
        files = self.files()

        def exists(path: str) -> bool:
            key = path.lstrip("/")
            return key in found or any(k.startswith(key + "/") for k in found)

        for path, label in props.items():
            assert exists(path), f"property of {path}, which does not exist"
            if path in files:
                assert files[path] == label, f"{path} holds another file's property"
        for path, text in files.items():
            assert props.get(path) == text, f"{path} lost its property"
        for lock_root in locks:
            assert exists(lock_root), f"lock on {lock_root}, which is gone"


@pytest.fixture
def bucket(s3_store: s3server.S3Store, tmp_path: object) -> Bucket:
    return Bucket(s3_store, tmp_path / "state")  # type: ignore[operator]


def labelled_tree(server: ServerProcess, folder: str, count: int) -> dict[str, str]:
    """/folder/ with a sub-folder and `count` files, each holding and labelled with a unique
    text; the folders labelled too. Returns {path: label} of the files."""
    assert server.request("MKCOL", f"/{folder}/").status_code == 201
    assert server.request("MKCOL", f"/{folder}/sub/").status_code == 201
    labels = {
        f"/{folder}/{'sub/' if i % 2 else ''}f{i:03}.txt": f"{folder}-{i}-{random.random()}"
        for i in range(count)
    }
    for path, label in labels.items():
        assert server.request("PUT", path, data=label.encode()).status_code == 201
        assert _proppatch(server.base, path, label) == 207
    for collection in (f"/{folder}/", f"/{folder}/sub/"):
        assert _proppatch(server.base, collection, f"folder-{collection}") == 207
    return labels


# Each step of an overwriting transfer where the server may die: davserver.transfers' own,
# and the S3 provider's (copying aside object by object, the copy marked whole, the originals
# deleted one by one, the copy dropped one by one at the end).
ASIDE = ["s3.aside-copied@3", "s3.aside-kept", "s3.aside-deleted@3"]
TRANSFERS = [
    *[
        ("MOVE", p)
        for p in [
            "transfer.rows-aside",
            *ASIDE,
            "transfer.set-aside",
            "copy.member@3",
            "transfer.done",
            "delete.member@3",
            "s3.discarded@3",
        ]
    ],
    *[("COPY", p) for p in [*ASIDE, "transfer.transferred", "s3.discarded@3"]],
]


@pytest.mark.parametrize(("method", "point"), TRANSFERS)
def test_overwriting_transfer_killed_at_each_step(bucket: Bucket, method: str, point: str) -> None:
    setup = bucket.server()
    try:
        a = labelled_tree(setup, "a", 6)
        b = labelled_tree(setup, "b", 4)
        # A lock on a member of the source: it does not travel (RFC 4918 7.6), nor may it
        # outlive its resource.
        answer = setup.request("LOCK", "/a/f000.txt", data=lockinfo())
        token = answer.headers["Lock-Token"]
    finally:
        setup.stop()
    headers = {"Destination": "/b/", "Overwrite": "T", "If": f"</a/f000.txt> ({token})"}
    bucket.crash(point, method, "/a/", headers=headers)
    after = bucket.server()
    try:
        bucket.check_agreement()
        before = {**a, **b}
        moved = {p.replace("/a/", "/b/", 1): label for p, label in a.items()}
        done = moved if method == "MOVE" else {**a, **moved}
        assert bucket.files() in (before, done)
        # And the server works on the recovered paths.
        assert after.request("PUT", "/b/new.txt", data=b"n").status_code == 201
    finally:
        after.stop()


def test_a_restore_killed_midway_is_finished_by_the_next_start(bucket: Bucket) -> None:
    """The first crash leaves a transfer to undo; the start that undoes it dies while putting
    the replaced folder back; the next start puts it back whole."""
    setup = bucket.server()
    try:
        a = labelled_tree(setup, "a", 4)
        b = labelled_tree(setup, "b", 6)
    finally:
        setup.stop()
    bucket.crash("copy.member@4", "MOVE", "/a/", headers={"Destination": "/b/"})
    with pytest.raises(RuntimeError, match="davserver exited"):
        bucket.server(env={failpoints.VARIABLE: "s3.restored@3"})
    after = bucket.server()
    try:
        bucket.check_agreement()
        assert bucket.files() == {**a, **b}
        assert after.request("GET", "/b/sub/f001.txt").text == b["/b/sub/f001.txt"]
    finally:
        after.stop()
