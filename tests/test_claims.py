"""Claims and their owners: the rule for when two claims meet, the SQLite claim store (with
several handles, as several processes hold it), and when an owner counts as gone."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from helpers import wait_for
from hypothesis import given
from hypothesis import strategies as st

from davserver import owners, paths
from davserver.store.base import ClaimStore, claims_meet
from davserver.store.postgresql import PostgresClaimStore, PostgresDatabase, advisory_key
from davserver.store.sqlite_claims import SqliteClaimStore

segments = st.sampled_from(["a", "b", "ab", "a.b"])
provider_paths = st.lists(segments, max_size=4).map(lambda s: "/" + "/".join(s))


@given(provider_paths, st.booleans(), provider_paths, st.booleans())
def test_claims_meet_when_one_path_holds_the_other_and_one_changes_it(
    a: str, a_excl: bool, b: str, b_excl: bool
) -> None:
    a_parts, b_parts = paths.split(a), paths.split(b)
    nested = a_parts == b_parts[: len(a_parts)] or b_parts == a_parts[: len(b_parts)]
    assert claims_meet(a, a_excl, b, b_excl) == (nested and (a_excl or b_excl))
    assert claims_meet(a, a_excl, b, b_excl) == claims_meet(b, b_excl, a, a_excl)


Opener = Callable[[], ClaimStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a new handle on one claim store, as another process (or instance) would."""
    if request.param == "sqlite":
        filename = str(tmp_path / "claims.sqlite3")
        return lambda: SqliteClaimStore(filename)
    url = request.getfixturevalue("postgres_url")

    def open_() -> ClaimStore:
        store = PostgresClaimStore(PostgresDatabase(url))
        request.addfinalizer(store.close)
        return store

    return open_


def test_a_claim_waits_for_a_meeting_one_only(opener: Opener) -> None:
    one, two = opener(), opener()
    held, blocking = one.try_take(["/a/b"], [], {"op": "x"})
    assert held is not None and blocking == []
    for exclusive, shared in [(["/a"], []), (["/a/b/c"], []), ([], ["/a/b/c"]), (["/"], [])]:
        taken, blocking = two.try_take(exclusive, shared, {})
        assert taken is None
        assert [c.id for c in blocking] == [held]
        assert blocking[0].exclusive == ("/a/b",) and blocking[0].intent == {"op": "x"}
    for exclusive, shared in [(["/a/c"], []), (["/ab"], []), (["/b"], ["/a/c"])]:
        taken, _ = two.try_take(exclusive, shared, {})
        assert taken is not None
        two.release(taken)
    one.release(held)
    taken, _ = two.try_take(["/a"], [], {})
    assert taken is not None


def test_a_claim_is_seen_with_its_changed_and_its_read_paths(opener: Opener) -> None:
    """A COPY's claim changes its destination and reads its source: another process that
    meets it sees which is which (recovery and the wait both go by them)."""
    one, two = opener(), opener()
    held, _ = one.try_take(["/dst", "/dst2"], ["/src", "/src2"], {"op": "copy"})
    assert held is not None
    taken, [claim] = two.try_take(["/src/x"], [], {})
    assert taken is None
    assert (claim.id, sorted(claim.exclusive), sorted(claim.shared)) == (
        held,
        ["/dst", "/dst2"],
        ["/src", "/src2"],
    )


def test_shared_claims_do_not_meet(opener: Opener) -> None:
    one, two = opener(), opener()
    assert one.try_take([], ["/src"], {})[0] is not None
    assert two.try_take([], ["/src/x"], {})[0] is not None
    assert two.try_take(["/src/y"], [], {})[0] is None


def test_all_paths_or_none(opener: Opener) -> None:
    one, two = opener(), opener()
    assert one.try_take(["/b"], [], {})[0] is not None
    taken, _ = two.try_take(["/a", "/b"], [], {})
    assert taken is None
    # "/a" was not taken on the way: a third claim on it succeeds.
    assert two.try_take(["/a"], [], {})[0] is not None


def test_update_is_seen_by_others(opener: Opener) -> None:
    one, two = opener(), opener()
    held, _ = one.try_take(["/a"], [], {"phase": "started"})
    assert held is not None
    one.update(held, {"phase": "done"})
    _, [claim] = two.try_take(["/a"], [], {})
    assert claim.intent == {"phase": "done"}


def test_concurrent_takes_of_meeting_claims_have_one_winner(opener: Opener) -> None:
    stores = [opener() for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    won: list[str] = []

    def take(store: ClaimStore, path: str) -> None:
        barrier.wait()
        taken, _ = store.try_take([path], [], {})
        if taken is not None:
            won.append(path)

    threads = [
        threading.Thread(target=take, args=(s, "/x" if i % 2 else "/x/y"))
        for i, s in enumerate(stores)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1


def test_a_closed_stores_claims_are_orphans_adopted_once(opener: Opener) -> None:
    crashed, one, two = (opener() for _ in range(3))
    held, _ = crashed.try_take(["/a"], [], {"op": "delete", "path": "/a"})
    assert held is not None
    assert one.orphans() == []
    _, [claim] = one.try_take(["/a"], [], {})
    assert one.adopt(claim) is False  # its owner is alive
    crashed.close()
    [orphan] = one.orphans()
    assert orphan.id == held
    assert one.adopt(orphan) is True
    assert two.adopt(orphan) is False  # adopted already: exactly one process recovers it
    assert one.orphans() == []  # now one's own, alive
    one.release(held)
    assert two.try_take(["/a"], [], {})[0] is not None


def test_a_store_used_again_after_close_takes_claims_under_a_new_owner(opener: Opener) -> None:
    store = opener()
    first = store.owner
    store.close()
    held, _ = store.try_take(["/a"], [], {})
    assert held is not None
    assert store.owner != first
    assert owners.is_alive(store.owner)
    assert opener().orphans() == []


def test_owners_of_this_process_live_until_retired() -> None:
    owner = owners.new_owner()
    assert owners.is_alive(owner)
    owners.retire(owner)
    assert not owners.is_alive(owner)
    assert owners.tag_alive(owners.file_tag(owners.new_owner()))


def test_an_owner_whose_process_ended_is_gone() -> None:
    code = "from davserver import owners; print(owners.new_owner())"
    dead = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert dead.split("/")[2] != str(os.getpid())
    assert not owners.is_alive(dead)


def test_an_owner_whose_process_ended_but_is_not_reaped_yet_is_gone() -> None:
    """A killed server's worker processes are zombies until init reaps them."""
    code = "from davserver import owners; print(owners.new_owner(), flush=True); input()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None
    owner = proc.stdout.readline().strip()
    assert owners.is_alive(owner)
    proc.stdin.close()  # it ends; not waited for, it stays a zombie
    assert wait_for(lambda: Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1][0] == "Z")
    try:
        assert not owners.is_alive(owner)
    finally:
        proc.wait()


def test_an_owner_from_a_reused_pid_or_another_boot_is_gone() -> None:
    host, boot, pid, start, nonce = owners.new_owner().split("/")
    assert not owners.is_alive("/".join([host, boot, pid, str(int(start) + 1), nonce]))
    space = boot.partition(".")[2]
    assert not owners.is_alive("/".join([host, f"another-boot.{space}", pid, start, nonce]))


def test_an_owner_in_another_pid_namespace_of_this_boot_is_never_presumed_gone() -> None:
    """Two containers sharing a folder and a host name: pids of the other are not ours."""
    host, boot, _pid, start, nonce = owners.new_owner().split("/")
    other = boot.partition(".")[0] + ".4026531999"
    assert owners.is_alive("/".join([host, other, "999999", start, nonce]))


def test_an_owner_on_another_host_or_of_another_form_is_never_presumed_gone() -> None:
    _host, boot, _pid, _start, nonce = owners.new_owner().split("/")
    assert owners.is_alive("/".join(["elsewhere", boot, "1", "1", nonce]))
    assert owners.is_alive("not an owner name")


def test_an_instance_whose_connection_broke_is_not_presumed_gone(postgres_url: str) -> None:
    # The database restarted, or a network blip: the instance's advisory lock went with its
    # connection while the instance still runs its changes. Nobody may recover them meanwhile,
    # and the instance takes its lock back.
    running = PostgresClaimStore(PostgresDatabase(postgres_url))
    other = PostgresClaimStore(PostgresDatabase(postgres_url))
    try:
        held, _ = running.try_take(["/a"], [], {"op": "delete", "path": "/a"})
        assert held is not None
        key = advisory_key("owner:" + running.owner)
        high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
        look = (
            "FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 "
            "AND classid::int8 = %s AND objid::int8 = %s AND granted"
        )

        def lock_held() -> bool:
            with psycopg.connect(postgres_url) as conn:
                return conn.execute(f"SELECT count(*) {look}", (high, low)).fetchone() == (1,)

        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"SELECT pg_terminate_backend(pid) {look}", (high, low))
        assert wait_for(lambda: not lock_held(), 5)
        _, [claim] = other.try_take(["/a"], [], {})
        assert other.is_alive(claim.owner)
        assert other.adopt(claim) is False
        assert other.orphans() == []
        assert wait_for(lock_held, 10)
        running.release(held)
        assert other.try_take(["/a"], [], {})[0] is not None
    finally:
        running.close()
        other.close()
