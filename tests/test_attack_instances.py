"""An adversarial review of several davserver instances sharing one PostgreSQL database
(issue 18): clients racing through different instances, instances killed in the middle of a
change, the database going away under them, hostile sizes and names.

Every test talks HTTP to real instances (separate processes, tests/procs.py) over a real
PostgreSQL (tests/pg.py), except where a liveness rule is checked on two `PostgresDatabase`
objects with a short grace. Each test is named for what a user sees; those that proved a
defect say so in their comment.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import requests
from helpers import COLOR, color_of, proppatch_body, wait_for
from pg import PostgresServer
from procs import ServerProcess
from test_postgresql import dav, instances, several

from davserver.store import postgresql

__all__ = ["instances"]  # a fixture, used by name


def test_an_instance_stopped_while_the_database_is_frozen_still_stops(
    tmp_path: Path, postgres_url: str, postgres: PostgresServer
) -> None:
    # Defect: the owner's farewell (removing its row, releasing its advisory lock) waited for
    # an answer forever, so SIGTERM never ended an instance whose database had stalled.
    with several(tmp_path, postgres_url) as (first, second, _):
        assert dav(first, "PUT", "/f.txt", data=b"x").status_code == 201
        postgres.freeze(True)
        try:
            assert first.proc is not None
            first.proc.send_signal(signal.SIGTERM)
            assert first.proc.wait(30) == 0
        finally:
            postgres.freeze(False)
        assert dav(second, "GET", "/f.txt").content == b"x"


def _backend_waiting_on(url: str, statement: str) -> int | None:
    """The pid of the database session whose statement starting with `statement` waits for a
    table lock, if one does."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
            (statement + "%",),
        ).fetchone()
    return None if row is None else int(row[0])


def test_a_move_whose_database_connection_drops_midway_is_finished_by_the_next_meeting_change(
    instances: list[ServerProcess], postgres_url: str
) -> None:
    # Defect: the folder was renamed, then its properties' move failed (503) and the claim was
    # simply dropped: the moved files had lost their properties, and a new resource at the old
    # path showed them.
    first, second, _ = instances
    assert dav(first, "MKCOL", "/src/").status_code == 201
    assert dav(first, "PUT", "/src/f.txt", data=b"f").status_code == 201
    for path in ("/src/", "/src/f.txt"):
        answer = dav(first, "PROPPATCH", path, data=proppatch_body(COLOR, "label" + path))
        assert answer.status_code == 207
    moved: list[requests.Response] = []
    with psycopg.connect(postgres_url, autocommit=True) as blocker:
        # Writes of properties wait (reads do not): the MOVE stops after its rename, when its
        # properties are to follow.
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE props IN EXCLUSIVE MODE")
        mover = threading.Thread(
            target=lambda: moved.append(
                dav(first, "MOVE", "/src/", headers={"Destination": first.url("/dst/")})
            )
        )
        mover.start()
        assert wait_for(lambda: _backend_waiting_on(postgres_url, "DELETE FROM props"), 30)
        assert (first.root / "dst" / "f.txt").exists()
        pid = _backend_waiting_on(postgres_url, "DELETE FROM props")
        blocker.execute("SELECT pg_terminate_backend(%s)", (pid,))
        blocker.execute("ROLLBACK")
        mover.join(30)
    assert moved[0].status_code == 503
    assert moved[0].headers["Retry-After"] == "5"
    # The next change meeting the interrupted MOVE (here through another instance) finishes it.
    assert dav(second, "MKCOL", "/src/").status_code == 201
    assert color_of(second, "/src/") is None
    assert color_of(second, "/dst/") == "label/src/"
    assert color_of(second, "/dst/f.txt") == "label/src/f.txt"


def _answer_of(ask: Callable[[], bool]) -> bool:
    """`ask()`'s answer once the database answers again (its pool reconnects in the
    background)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return ask()
        except postgresql.StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_database_outage_longer_than_the_grace_makes_no_live_instance_look_dead(
    postgres: PostgresServer, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Defect: after an outage longer than the grace every instance had not been seen for
    # longer than the grace, and had lost its advisory lock; until it took the lock back, any
    # other instance meeting one of its claims presumed it dead and "recovered" a change it
    # was still making.
    grace = 2.0
    watcher = postgresql.PostgresDatabase(postgres_url, owner_grace=grace)
    other = postgresql.PostgresDatabase(postgres_url, owner_grace=grace)
    try:
        assert watcher.is_alive(other.owner)

        def slow() -> None:
            raise psycopg.OperationalError("still reconnecting")

        # The other instance is slower to come back (a loaded machine, a longer route).
        monkeypatch.setattr(other._live()[1], "_connect", slow)
        postgres.stop()
        try:
            # An outage: the time is what makes it one, nothing here measures it.
            time.sleep(max(grace, postgresql.STEADY_GAP) + 1)
        finally:
            postgres.start()
        assert _answer_of(lambda: watcher.is_alive(other.owner))
        # Once the database has been back for the grace, an instance that did not return is.
        assert wait_for(lambda: not _answer_of(lambda: watcher.is_alive(other.owner)), 30)
    finally:
        monkeypatch.undo()
        other.close()
        watcher.close()
