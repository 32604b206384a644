"""One contract for every PropertyStore and LockStore implementation.

Each backend is a parameter of the `backend` fixture: it opens stores over one shared storage,
and can open a second, independent handle on the same storage (another server process). A new
implementation (PostgreSQL, ...) is one more entry in BACKENDS; every test below then runs
against it too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from davserver.store.base import Lock, LockConflict, LockStore, PropertyStore
from davserver.store.postgresql import PostgresDatabase, PostgresLockStore, PostgresPropertyStore
from davserver.store.sqlite import Database, SqliteLockStore, SqlitePropertyStore


@dataclass
class Stores:
    props: PropertyStore
    locks: LockStore


@dataclass
class Backend:
    """`open()` gives a new, independent handle (a new "process") on the same storage."""

    name: str
    open: Callable[[], Stores]


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    filename = str(tmp_path / "state" / "store.sqlite3")

    def open_() -> Stores:
        db = Database(filename)
        request.addfinalizer(db.close)
        return Stores(SqlitePropertyStore(db), SqliteLockStore(db))

    return Backend("sqlite", open_)


def _postgresql(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    url = request.getfixturevalue("postgres_url")

    def open_() -> Stores:
        db = PostgresDatabase(url)
        request.addfinalizer(db.close)
        return Stores(PostgresPropertyStore(db), PostgresLockStore(db))

    return Backend("postgresql", open_)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Backend]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def stores(backend: Backend) -> Stores:
    return backend.open()


@pytest.fixture
def props(stores: Stores) -> PropertyStore:
    return stores.props


@pytest.fixture
def locks(stores: Stores) -> LockStore:
    return stores.locks


def value(name: str, text: str) -> str:
    ns, _, local = name[1:].partition("}")
    return f'<Z:{local} xmlns:Z="{ns}">{text}</Z:{local}>'


A = "{urn:z}a"
B = "{urn:z}b"
C = "{urn:other}a"


def put(props: PropertyStore, path: str, **values: str) -> None:
    names = {"a": A, "b": B, "c": C}
    props.patch(path, [(names[k], value(names[k], v)) for k, v in values.items()])


def snapshot(props: PropertyStore, paths: Sequence[str]) -> dict[str, dict[str, str]]:
    return {p: props.get(p) for p in paths}


# -- PropertyStore: get and patch -------------------------------------------------------------


def test_get_unknown_resource_is_empty(props: PropertyStore) -> None:
    assert props.get("/nothing") == {}
    assert props.get("/nothing", [A]) == {}
    assert props.get("/", None) == {}


def test_patch_then_get(props: PropertyStore) -> None:
    props.patch("/f", [(A, value(A, "1")), (B, value(B, "2")), (C, value(C, "3"))])
    assert props.get("/f") == {A: value(A, "1"), B: value(B, "2"), C: value(C, "3")}


def test_get_names(props: PropertyStore) -> None:
    put(props, "/f", a="1", b="2", c="3")
    assert props.get("/f", [A]) == {A: value(A, "1")}
    assert props.get("/f", [A, C, "{urn:z}unknown"]) == {A: value(A, "1"), C: value(C, "3")}
    assert props.get("/f", []) == {}
    assert props.get("/f", ("{urn:z}unknown",)) == {}
    assert props.get("/f", {B}) == {B: value(B, "2")}


def test_get_many_is_get_for_each(props: PropertyStore) -> None:
    put(props, "/d/f", a="1", b="2")
    put(props, "/d/g", c="3")
    put(props, "/d/g/h", a="4")
    asked = ["/d/f", "/d/g", "/d/none", "/d"]
    assert props.get_many(asked) == {"/d/f": props.get("/d/f"), "/d/g": props.get("/d/g")}
    assert props.get_many(asked, [A, C]) == {"/d/f": {A: value(A, "1")}, "/d/g": {C: value(C, "3")}}
    assert props.get_many(asked, [B]) == {"/d/f": {B: value(B, "2")}}
    assert props.get_many(asked, []) == {}
    assert props.get_many([]) == {}
    # More paths than one statement holds (SQLite's pages of 500).
    many = [f"/many/{i}" for i in range(1200)]
    for path in many[::400]:
        put(props, path, a=path)
    assert props.get_many(many, [A]) == {p: {A: value(A, p)} for p in many[::400]}


def test_same_local_name_in_different_namespaces_are_different(props: PropertyStore) -> None:
    put(props, "/f", a="z", c="other")
    props.patch("/f", [("{}a", "<a>none</a>")])
    assert props.get("/f") == {A: value(A, "z"), C: value(C, "other"), "{}a": "<a>none</a>"}


def test_patch_in_order(props: PropertyStore) -> None:
    put(props, "/f", a="old")
    props.patch("/f", [(A, None), (A, value(A, "1")), (A, value(A, "2"))])
    assert props.get("/f") == {A: value(A, "2")}
    props.patch("/f", [(B, value(B, "x")), (B, None)])
    assert props.get("/f") == {A: value(A, "2")}


def test_remove_of_absent_property_is_fine(props: PropertyStore) -> None:
    props.patch("/f", [(A, None)])
    assert props.get("/f") == {}
    put(props, "/f", b="kept")
    props.patch("/f", [(A, None)])
    assert props.get("/f") == {B: value(B, "kept")}


def test_values_are_kept_verbatim(props: PropertyStore) -> None:
    raw = (
        '<Z:v xmlns:Z="urn:z" xml:lang="de">\U00010000 &amp; \u20ac <Z:b a="1">x</Z:b> \'"'
        "\n\t</Z:v>"
    )
    props.patch("/f", [(A, raw), ("{}empty", "<empty/>")])
    assert props.get("/f") == {A: raw, "{}empty": "<empty/>"}


def test_large_value(props: PropertyStore) -> None:
    big = value(A, "x" * 200_000)
    props.patch("/f", [(A, big)])
    assert props.get("/f", [A]) == {A: big}


def test_patch_failing_midway_changes_nothing(props: PropertyStore) -> None:
    put(props, "/f", a="1", b="2")
    before = props.get("/f")
    bad: Any = object()  # not a string: the store cannot keep it
    with pytest.raises(Exception):  # noqa: B017 - any error, as long as nothing changed
        props.patch("/f", [(A, None), (C, value(C, "new")), (bad, "<x/>"), (B, None)])
    assert props.get("/f") == before
    assert props.get("/f", [C]) == {}


class _Exploding(Sequence[tuple[str, str | None]]):
    """A list of changes whose third item cannot be read."""

    def __init__(self, items: list[tuple[str, str | None]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items) + 1

    def __getitem__(self, index: Any) -> Any:
        if index == 2:
            raise RuntimeError("the client went away")
        if isinstance(index, int) and index >= len(self):
            raise IndexError(index)
        return self.items[index if index < 2 else index - 1]

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        for i in range(len(self)):
            yield self[i]


def test_patch_interrupted_midway_changes_nothing(props: PropertyStore) -> None:
    put(props, "/f", a="1")
    changes = _Exploding([(A, None), (B, value(B, "new")), (C, value(C, "late"))])
    with pytest.raises(RuntimeError):
        props.patch("/f", changes)
    assert props.get("/f") == {A: value(A, "1")}
    # the store still works afterwards
    put(props, "/f", b="2")
    assert props.get("/f") == {A: value(A, "1"), B: value(B, "2")}


# -- PropertyStore: members, paths with shared prefixes, the root -----------------------------

COLLIDING = ["/a", "/a/b", "/a/b/c", "/a/x", "/ab", "/a.b", "/a-", "/a b", "/a0", "/a/b0", "/b"]


@pytest.fixture
def tree(props: PropertyStore) -> PropertyStore:
    for path in ["/", *COLLIDING]:
        props.patch(path, [(A, value(A, path))])
    return props


def test_each_path_keeps_its_own(tree: PropertyStore) -> None:
    for path in ["/", *COLLIDING]:
        assert tree.get(path) == {A: value(A, path)}


def test_members_with_properties(tree: PropertyStore) -> None:
    assert tree.members_with_properties("/a") == {"/a/b", "/a/x", "/a/b0"}
    assert tree.members_with_properties("/a/b") == {"/a/b/c"}
    assert tree.members_with_properties("/") == {
        "/a",
        "/ab",
        "/a.b",
        "/a-",
        "/a b",
        "/a0",
        "/b",
    }
    assert tree.members_with_properties("/ab") == set()
    assert tree.members_with_properties("/nothing") == set()


def test_members_without_properties_are_left_out(props: PropertyStore) -> None:
    put(props, "/d/one", a="1")
    put(props, "/d/two", a="2")
    props.patch("/d/two", [(A, None)])
    assert props.members_with_properties("/d") == {"/d/one"}


def test_root_properties(props: PropertyStore) -> None:
    put(props, "/", a="root")
    assert props.get("/") == {A: value(A, "root")}
    assert props.members_with_properties("/") == set()
    props.delete(["/"])
    assert props.get("/") == {}


# -- PropertyStore: copy ----------------------------------------------------------------------


def test_copy_recursive(tree: PropertyStore) -> None:
    put(tree, "/c", b="old dst")
    put(tree, "/c/stale", b="old member")
    tree.copy("/a", "/c", recursive=True)
    assert tree.get("/c") == {A: value(A, "/a")}
    assert tree.get("/c/b") == {A: value(A, "/a/b")}
    assert tree.get("/c/b/c") == {A: value(A, "/a/b/c")}
    assert tree.get("/c/x") == {A: value(A, "/a/x")}
    assert tree.get("/c/b0") == {A: value(A, "/a/b0")}
    assert tree.get("/c/stale") == {}  # the destination tree was replaced
    assert tree.members_with_properties("/c") == {"/c/b", "/c/x", "/c/b0"}
    # neighbours with a common prefix were not copied, and the source is intact
    for path in ["/cb", "/c.b", "/c-", "/c b", "/c0"]:
        assert tree.get(path) == {}
    for path in ["/", *COLLIDING]:
        assert tree.get(path) == {A: value(A, path)}


def test_copy_not_recursive(tree: PropertyStore) -> None:
    put(tree, "/c", b="old dst")
    put(tree, "/c/kept", b="member of dst")
    tree.copy("/a", "/c", recursive=False)
    assert tree.get("/c") == {A: value(A, "/a")}
    assert tree.get("/c/b") == {}
    assert tree.get("/c/kept") == {B: value(B, "member of dst")}
    assert tree.get("/a/b") == {A: value(A, "/a/b")}


def test_copy_of_resource_without_properties_clears_destination(props: PropertyStore) -> None:
    put(props, "/dst", a="old")
    props.copy("/src", "/dst", recursive=False)
    assert props.get("/dst") == {}


def test_copy_into_a_deeper_path(tree: PropertyStore) -> None:
    tree.copy("/a/b", "/b/deep/er", recursive=True)
    assert tree.get("/b/deep/er") == {A: value(A, "/a/b")}
    assert tree.get("/b/deep/er/c") == {A: value(A, "/a/b/c")}
    assert tree.members_with_properties("/b/deep") == {"/b/deep/er"}
    assert tree.members_with_properties("/b/deep/er") == {"/b/deep/er/c"}


def test_copy_is_independent_afterwards(props: PropertyStore) -> None:
    put(props, "/s", a="1")
    props.copy("/s", "/d", recursive=False)
    put(props, "/s", a="changed")
    assert props.get("/d") == {A: value(A, "1")}


# -- PropertyStore: move ----------------------------------------------------------------------


def test_move(tree: PropertyStore) -> None:
    put(tree, "/m/stale", b="old")
    tree.move("/a", "/m")
    assert tree.get("/m") == {A: value(A, "/a")}
    assert tree.get("/m/b/c") == {A: value(A, "/a/b/c")}
    assert tree.get("/m/stale") == {}
    assert tree.members_with_properties("/m") == {"/m/b", "/m/x", "/m/b0"}
    for path in ["/a", "/a/b", "/a/b/c", "/a/x", "/a/b0"]:
        assert tree.get(path) == {}
    assert tree.members_with_properties("/a") == set()
    for path in ["/ab", "/a.b", "/a-", "/a b", "/a0", "/b", "/"]:
        assert tree.get(path) == {A: value(A, path)}


def test_move_under_a_sibling_with_a_shared_prefix(tree: PropertyStore) -> None:
    tree.move("/a/b", "/ab/b")
    assert tree.get("/ab/b/c") == {A: value(A, "/a/b/c")}
    assert tree.get("/ab") == {A: value(A, "/ab")}
    assert tree.get("/a/b0") == {A: value(A, "/a/b0")}
    assert tree.members_with_properties("/a") == {"/a/x", "/a/b0"}
    assert tree.members_with_properties("/ab") == {"/ab/b"}


def test_move_of_a_tree_with_names_beyond_ascii(props: PropertyStore) -> None:
    # Characters, not bytes: the new paths are cut after the source's length in characters.
    for path in ("/été", "/été/ü𝄞", "/été/ü𝄞/日本"):
        put(props, path, a=path)
    props.move("/été", "/𝄞x/é")
    assert props.get("/𝄞x/é/ü𝄞/日本") == {A: value(A, "/été/ü𝄞/日本")}
    assert props.members_with_properties("/𝄞x") == {"/𝄞x/é"}
    assert props.members_with_properties("/𝄞x/é") == {"/𝄞x/é/ü𝄞"}
    assert props.members_with_properties("/𝄞x/é/ü𝄞") == {"/𝄞x/é/ü𝄞/日本"}
    assert props.get("/été/ü𝄞") == {}


def test_move_replaces_destination(props: PropertyStore) -> None:
    put(props, "/s", a="src")
    put(props, "/d", b="dst")
    props.move("/s", "/d")
    assert props.get("/d") == {A: value(A, "src")}
    assert props.get("/s") == {}


# -- PropertyStore: delete --------------------------------------------------------------------


def test_delete_not_recursive(tree: PropertyStore) -> None:
    tree.delete(["/a", "/b"])
    assert tree.get("/a") == {}
    assert tree.get("/b") == {}
    assert tree.get("/a/b") == {A: value(A, "/a/b")}
    assert tree.get("/ab") == {A: value(A, "/ab")}


def test_delete_recursive(tree: PropertyStore) -> None:
    tree.delete(["/a"], recursive=True)
    for path in ["/a", "/a/b", "/a/b/c", "/a/x", "/a/b0"]:
        assert tree.get(path) == {}
    for path in ["/", "/ab", "/a.b", "/a-", "/a b", "/a0", "/b"]:
        assert tree.get(path) == {A: value(A, path)}


def test_delete_recursive_from_root(tree: PropertyStore) -> None:
    tree.delete(["/"], recursive=True)
    for path in ["/", *COLLIDING]:
        assert tree.get(path) == {}


def test_delete_many_and_missing(tree: PropertyStore) -> None:
    tree.delete(["/a/x", "/missing", "/a b"])
    assert tree.get("/a/x") == {}
    assert tree.get("/a b") == {}
    assert tree.get("/a") == {A: value(A, "/a")}
    tree.delete([])
    assert tree.get("/a") == {A: value(A, "/a")}


# -- LockStore --------------------------------------------------------------------------------

NOW = 1_000_000.0

_counter = iter(range(1_000_000))


def lock(
    root: str,
    scope: str = "exclusive",
    depth: str = "infinity",
    timeout: int = 600,
    now: float = NOW,
    token: str | None = None,
    owner: str | None = None,
    principal: str | None = None,
) -> Lock:
    return Lock(
        token or f"urn:uuid:test-{next(_counter)}",
        root,
        depth,  # type: ignore[arg-type]
        scope,  # type: ignore[arg-type]
        owner,
        principal,
        timeout,
        now + timeout,
    )


def tokens(found: Sequence[Lock]) -> set[str]:
    return {lk.token for lk in found}


def test_acquire_and_get(locks: LockStore) -> None:
    new = lock("/f", owner='<D:owner xmlns:D="DAV:">me &amp; you</D:owner>', principal="alice")
    locks.acquire(new, NOW)
    assert locks.get(new.token, NOW) == new
    assert locks.get("urn:uuid:nope", NOW) is None


@pytest.mark.parametrize(
    ("first", "second", "conflict"),
    [
        # same resource
        (("/r", "exclusive", "0"), ("/r", "exclusive", "0"), True),
        (("/r", "exclusive", "0"), ("/r", "shared", "0"), True),
        (("/r", "shared", "0"), ("/r", "exclusive", "0"), True),
        (("/r", "shared", "0"), ("/r", "shared", "0"), False),
        (("/r", "shared", "infinity"), ("/r", "shared", "0"), False),
        # depth infinity on an ancestor covers descendants
        (("/c", "exclusive", "infinity"), ("/c/d/e", "exclusive", "0"), True),
        (("/c", "exclusive", "infinity"), ("/c/d/e", "shared", "infinity"), True),
        (("/c", "shared", "infinity"), ("/c/d/e", "shared", "0"), False),
        (("/", "exclusive", "infinity"), ("/anything", "exclusive", "0"), True),
        # a lock below a collection blocks a depth-infinity lock on it
        (("/c/d/e", "exclusive", "0"), ("/c", "exclusive", "infinity"), True),
        (("/c/d/e", "shared", "0"), ("/c", "exclusive", "infinity"), True),
        (("/c/d", "shared", "0"), ("/c", "shared", "infinity"), False),
        (("/c/d", "exclusive", "0"), ("/", "exclusive", "infinity"), True),
        # depth 0 on a collection does not reach its members, either way round
        (("/c", "exclusive", "0"), ("/c/d", "exclusive", "0"), False),
        (("/c", "exclusive", "0"), ("/c/d", "exclusive", "infinity"), False),
        (("/c/d", "exclusive", "infinity"), ("/c", "exclusive", "0"), False),
        # paths with a common prefix are not ancestors of each other
        (("/a", "exclusive", "infinity"), ("/ab", "exclusive", "infinity"), False),
        (("/ab", "exclusive", "infinity"), ("/a", "exclusive", "infinity"), False),
        (("/a b", "exclusive", "infinity"), ("/a", "exclusive", "infinity"), False),
        (("/a0", "exclusive", "0"), ("/a", "exclusive", "infinity"), False),
        (("/a", "exclusive", "infinity"), ("/a/b", "exclusive", "0"), True),
        # siblings
        (("/c/d", "exclusive", "infinity"), ("/c/e", "exclusive", "infinity"), False),
    ],
)
def test_conflict_rules(
    locks: LockStore,
    first: tuple[str, str, str],
    second: tuple[str, str, str],
    conflict: bool,
) -> None:
    held = lock(first[0], first[1], first[2])
    locks.acquire(held, NOW)
    wanted = lock(second[0], second[1], second[2])
    if conflict:
        with pytest.raises(LockConflict) as info:
            locks.acquire(wanted, NOW)
        assert info.value.lock == held
        # What a log shows: which lock, and where.
        assert str(info.value) == f"conflicts with lock {held.token} on {held.root}"
        assert locks.get(wanted.token, NOW) is None
    else:
        locks.acquire(wanted, NOW)
        assert locks.get(wanted.token, NOW) == wanted
    assert locks.get(held.token, NOW) == held


def test_many_shared_locks_then_exclusive(locks: LockStore) -> None:
    shared = [lock("/s", "shared") for _ in range(5)]
    for lk in shared:
        locks.acquire(lk, NOW)
    with pytest.raises(LockConflict) as info:
        locks.acquire(lock("/s/inner", "exclusive", "0"), NOW)
    assert info.value.lock in shared
    assert tokens(locks.covering("/s", NOW)) == tokens(shared)


def test_refresh(locks: LockStore) -> None:
    held = lock("/f", timeout=100)
    locks.acquire(held, NOW)
    later = NOW + 50
    refreshed = locks.refresh(held.token, 300, later)
    assert refreshed is not None
    assert refreshed.token == held.token
    assert refreshed.timeout == 300
    assert refreshed.expires == later + 300
    assert refreshed.root == held.root
    assert refreshed.scope == held.scope
    assert locks.get(held.token, NOW + 200) == refreshed  # would have expired at NOW + 100
    assert locks.get(held.token, later + 300) is None


def test_refresh_unknown_or_expired(locks: LockStore) -> None:
    assert locks.refresh("urn:uuid:nope", 100, NOW) is None
    held = lock("/f", timeout=10)
    locks.acquire(held, NOW)
    assert locks.refresh(held.token, 100, NOW + 10) is None
    assert locks.get(held.token, NOW + 10) is None


def test_release(locks: LockStore) -> None:
    held = lock("/f")
    locks.acquire(held, NOW)
    assert locks.release(held.token) is True
    assert locks.get(held.token, NOW) is None
    assert locks.release(held.token) is False
    assert locks.release("urn:uuid:never") is False
    locks.acquire(lock("/f"), NOW)  # free again


def test_release_only_that_lock(locks: LockStore) -> None:
    one, two = lock("/f", "shared"), lock("/f", "shared")
    locks.acquire(one, NOW)
    locks.acquire(two, NOW)
    locks.release(one.token)
    assert tokens(locks.covering("/f", NOW)) == {two.token}


def test_covering(locks: LockStore) -> None:
    deep = lock("/c", "shared", "infinity")
    shallow = lock("/c/d", "shared", "0")
    on_file = lock("/c/d/f", "shared", "0")
    collection_only = lock("/c/d/e", "shared", "0")
    neighbour = lock("/c/dd", "shared", "infinity")
    for lk in (deep, shallow, on_file, collection_only, neighbour):
        locks.acquire(lk, NOW)
    assert tokens(locks.covering("/c/d/f", NOW)) == {deep.token, on_file.token}
    assert tokens(locks.covering("/c/d", NOW)) == {deep.token, shallow.token}
    assert tokens(locks.covering("/c/d/e/g", NOW)) == {deep.token}
    assert tokens(locks.covering("/c/dd/x", NOW)) == {deep.token, neighbour.token}
    assert tokens(locks.covering("/c", NOW)) == {deep.token}
    assert locks.covering("/", NOW) == []
    assert locks.covering("/other", NOW) == []


def test_covering_from_root(locks: LockStore) -> None:
    everything = lock("/", "exclusive", "infinity")
    locks.acquire(everything, NOW)
    assert tokens(locks.covering("/", NOW)) == {everything.token}
    assert tokens(locks.covering("/x/y/z", NOW)) == {everything.token}


def test_around(locks: LockStore) -> None:
    # Locks at the path, at any ancestor whatever its depth, and anywhere below; never a
    # sibling whose name merely starts the same.
    top = lock("/", "shared", "0")
    on_c = lock("/c", "shared", "0")
    child = lock("/c/d", "shared", "0")
    grandchild = lock("/c/d/e", "shared", "infinity")
    prefix_sibling = lock("/cd", "shared", "0")
    dotted = lock("/c.d", "shared", "0")
    for lk in (top, on_c, child, grandchild, prefix_sibling, dotted):
        locks.acquire(lk, NOW)
    assert tokens(locks.around("/c", NOW)) == {top.token, on_c.token, child.token, grandchild.token}
    assert tokens(locks.around("/c/d", NOW)) == {
        top.token,
        on_c.token,
        child.token,
        grandchild.token,
    }
    assert tokens(locks.around("/c/d/e", NOW)) == {
        top.token,
        on_c.token,
        child.token,
        grandchild.token,
    }
    assert tokens(locks.around("/cd", NOW)) == {top.token, prefix_sibling.token}
    assert tokens(locks.around("/x", NOW)) == {top.token}
    assert tokens(locks.around("/", NOW)) == {
        top.token,
        on_c.token,
        child.token,
        grandchild.token,
        prefix_sibling.token,
        dotted.token,
    }


def test_delete_locks(locks: LockStore) -> None:
    on_c = lock("/c", "shared", "infinity")
    child = lock("/c/d", "shared", "0")
    prefix_sibling = lock("/cd", "shared", "0")
    other = lock("/x", "exclusive", "0")
    for lk in (on_c, child, prefix_sibling, other):
        locks.acquire(lk, NOW)
    locks.delete(["/c"])
    assert locks.get(on_c.token, NOW) is None
    assert locks.get(child.token, NOW) == child
    locks.acquire(on_c, NOW)
    locks.delete(["/c", "/x"], recursive=True)
    for gone in (on_c, child, other):
        assert locks.get(gone.token, NOW) is None
    assert locks.get(prefix_sibling.token, NOW) == prefix_sibling
    locks.delete(["/"], recursive=True)
    assert locks.get(prefix_sibling.token, NOW) is None


def test_expired_locks_are_never_returned(locks: LockStore) -> None:
    held = lock("/c/d", "exclusive", "infinity", timeout=60)
    locks.acquire(held, NOW)
    assert locks.get(held.token, held.expires - 0.001) == held
    for at in (held.expires, held.expires + 1, held.expires + 1e6):
        assert locks.get(held.token, at) is None
        assert locks.covering("/c/d", at) == []
        assert locks.covering("/c/d/e", at) == []
        assert locks.around("/c", at) == []
        assert locks.refresh(held.token, 60, at) is None


def test_expired_locks_do_not_conflict(locks: LockStore) -> None:
    held = lock("/c", "exclusive", "infinity", timeout=60)
    locks.acquire(held, NOW)
    later = NOW + 60
    with pytest.raises(LockConflict):
        locks.acquire(lock("/c/f", "exclusive", "0", now=later - 1), later - 1)
    successor = lock("/c/f", "exclusive", "0", now=later)
    locks.acquire(successor, later)
    assert locks.get(successor.token, later) == successor
    assert tokens(locks.covering("/c/f", later)) == {successor.token}


def test_lock_fields_survive(locks: LockStore) -> None:
    held = replace(
        lock("/Ünïcode dir/\U00010000", "shared", "0", timeout=12345),
        owner='<D:owner xmlns:D="DAV:"><D:href>mailto:a@b</D:href></D:owner>',
        principal="bob",
        expires=NOW + 12345.5,
    )
    locks.acquire(held, NOW)
    assert locks.get(held.token, NOW) == held
    assert locks.covering("/Ünïcode dir/\U00010000", NOW) == [held]


# -- several handles, several threads ---------------------------------------------------------


def test_two_handles_see_each_others_writes(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    put(first.props, "/shared", a="from first")
    assert second.props.get("/shared") == {A: value(A, "from first")}
    second.props.patch("/shared", [(A, None), (B, value(B, "from second"))])
    assert first.props.get("/shared") == {B: value(B, "from second")}
    assert first.props.members_with_properties("/") == {"/shared"}

    held = lock("/shared", "exclusive", "infinity")
    first.locks.acquire(held, NOW)
    assert second.locks.get(held.token, NOW) == held
    with pytest.raises(LockConflict):
        second.locks.acquire(lock("/shared/x", "exclusive", "0"), NOW)
    assert second.locks.release(held.token) is True
    assert first.locks.get(held.token, NOW) is None


def test_data_outlives_the_handle(backend: Backend) -> None:
    first = backend.open()
    put(first.props, "/kept", a="1")
    held = lock("/kept")
    first.locks.acquire(held, NOW)
    del first
    later = backend.open()
    assert later.props.get("/kept") == {A: value(A, "1")}
    assert later.locks.get(held.token, NOW) == held


@pytest.mark.parametrize("handles", ["one", "each-thread-its-own"])
def test_concurrent_conflicting_acquire_has_one_winner(backend: Backend, handles: str) -> None:
    shared = backend.open()
    threads = 8
    barrier = threading.Barrier(threads)
    won: list[str] = []
    lost: list[str] = []
    errors: list[BaseException] = []
    guard = threading.Lock()

    def attempt(index: int) -> None:
        store = shared if handles == "one" else backend.open()
        # alternately on the collection (depth infinity) and on a member: all conflict
        root = "/race" if index % 2 == 0 else "/race/member"
        candidate = lock(root, "exclusive", "infinity" if index % 2 == 0 else "0")
        barrier.wait()
        try:
            store.locks.acquire(candidate, NOW)
        except LockConflict:
            with guard:
                lost.append(candidate.token)
        except BaseException as exc:
            with guard:
                errors.append(exc)
        else:
            with guard:
                won.append(candidate.token)

    workers = [threading.Thread(target=attempt, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors
    assert len(won) == 1
    assert len(lost) == threads - 1
    held = shared.locks.covering("/race/member", NOW)
    assert tokens(held) == set(won)


def test_concurrent_shared_acquire_all_win(backend: Backend) -> None:
    store = backend.open()
    threads = 8
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def attempt() -> None:
        barrier.wait()
        try:
            store.locks.acquire(lock("/together", "shared", "infinity"), NOW)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors
    assert len(store.locks.covering("/together", NOW)) == threads


def test_concurrent_patches_are_not_lost(backend: Backend) -> None:
    store = backend.open()
    threads = 8
    barrier = threading.Barrier(threads)

    def write(index: int) -> None:
        handle = store if index % 2 else backend.open()
        barrier.wait()
        for n in range(20):
            name = f"{{urn:t{index}}}p{n}"
            handle.props.patch("/busy", [(name, value(name, str(n)))])

    workers = [threading.Thread(target=write, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert len(store.props.get("/busy")) == threads * 20


@pytest.mark.parametrize("recursive", [False, True])
def test_delete_of_many_paths_at_once(props: PropertyStore, locks: LockStore, recursive: bool):
    # A bulk DELETE forgets hundreds of resources in one call; no store limit may refuse it.
    many = [f"/bulk/f{i:04d}" for i in range(1200)]
    for path in many:
        props.patch(path + "/inner" if recursive else path, [("{urn:x}p", "<p/>")])
    for path in many[:600]:
        locks.acquire(lock(path + "/inner" if recursive else path, "shared", "0"), NOW)
    props.patch("/bulk/kept", [("{urn:x}p", "<p/>")])
    props.delete(many, recursive=recursive)
    locks.delete(many, recursive=recursive)
    assert props.members_with_properties("/bulk") == {"/bulk/kept"}
    assert locks.around("/bulk", NOW) == []


def test_get_with_very_many_names(props: PropertyStore) -> None:
    # A PROPFIND may name tens of thousands of properties; the store answers for all of them.
    props.patch("/a", [("{urn:x}p7", "<p7/>"), ("{urn:x}other", "<o/>")])
    names = [f"{{urn:x}}p{i}" for i in range(40_000)]
    assert props.get("/a", names) == {"{urn:x}p7": "<p7/>"}


def test_described_pages_through_a_subtree_in_order(props: PropertyStore) -> None:
    for path in ["/a", "/a/x", "/a/y/z", "/ab", "/b"]:
        props.patch(path, [(A, value(A, path))])
    assert props.described("/a") == ["/a", "/a/x", "/a/y/z"]
    assert props.described("/a", limit=2) == ["/a", "/a/x"]
    assert props.described("/a", after="/a/x") == ["/a/y/z"]
    assert props.described("/a", after="/a/y/z") == []
    assert props.described("/") == ["/a", "/a/x", "/a/y/z", "/ab", "/b"]
    assert props.described("/nothing") == []
