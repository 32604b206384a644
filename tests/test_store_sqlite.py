"""What only the SQLite store has to get right: its own failure modes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from helpers import wait_for

from davserver.errors import InsufficientStorage
from davserver.store.sqlite import Database, SqlitePropertyStore


def test_a_full_disk_is_insufficient_storage_and_changes_nothing(tmp_path: Path) -> None:
    # SQLITE_FULL must reach the client as 507 (RFC 4918 11.5), not as a 500, and the
    # transaction must be rolled back.
    db = Database(str(tmp_path / "full.sqlite3"))
    store = SqlitePropertyStore(db)
    store.patch("/a", [("{urn:x}p", "<p/>")])
    connection = db.connection()
    connection.execute("PRAGMA max_page_count = 1")  # no room for one more page
    with pytest.raises(InsufficientStorage):
        store.patch("/a", [("{urn:x}q", "<q>" + "x" * 100_000 + "</q>")])
    assert not connection.in_transaction
    assert store.get("/a") == {"{urn:x}p": "<p/>"}


def closed(connection: sqlite3.Connection) -> bool:
    try:
        connection.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def test_close_closes_every_threads_connection_and_the_store_works_on(tmp_path: Path) -> None:
    # A stopped server must give back the descriptors of every worker's connection, and a
    # server started again on the same stores opens new ones.
    db = Database(str(tmp_path / "s.sqlite3"))
    store = SqlitePropertyStore(db)
    store.patch("/a", [("{urn:x}p", "<p/>")])
    opened: list[sqlite3.Connection] = []
    release = threading.Event()

    def worker() -> None:
        opened.append(db.connection())
        release.wait(10)

    workers = [threading.Thread(target=worker) for _ in range(3)]
    for thread in workers:
        thread.start()
    assert wait_for(lambda: len(opened) == 3)
    mine = db.connection()
    db.close()
    assert all(closed(c) for c in [mine, *opened])
    release.set()
    for thread in workers:
        thread.join(10)
    assert store.get("/a") == {"{urn:x}p": "<p/>"}  # a new connection for this thread
    assert db.connection() is not mine


def test_the_connection_of_an_ended_thread_is_closed_when_another_connects(
    tmp_path: Path,
) -> None:
    db = Database(str(tmp_path / "s.sqlite3"))
    opened: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: opened.append(db.connection()))
    thread.start()
    thread.join(10)
    assert not closed(opened[0])  # still open: its thread is gone, nobody closed it yet
    threading.Thread(target=db.connection).start()
    assert wait_for(lambda: closed(opened[0]))


def test_the_store_works_on_after_every_close(tmp_path: Path) -> None:
    # A server stopped and started again more than once in one process (as tests do).
    db = Database(str(tmp_path / "s.sqlite3"))
    store = SqlitePropertyStore(db)
    for round_ in range(3):
        store.patch(f"/{round_}", [("{urn:x}p", "<p/>")])
        db.close()
    assert store.described("/") == ["/0", "/1", "/2"]


def test_a_writer_waits_up_to_30_seconds_for_another(tmp_path: Path) -> None:
    # Another process's write transaction (a big COPY's properties) may take a while; giving
    # up after sqlite3's default 5 s would fail requests that only had to queue.
    db = Database(str(tmp_path / "s.sqlite3"))
    assert db.connection().execute("PRAGMA busy_timeout").fetchone() == (30000,)


def test_described_pages_by_1000_by_default(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "s.sqlite3"))
    store = SqlitePropertyStore(db)
    with db.write() as conn:
        conn.executemany(
            "INSERT INTO props (path, parent, name, value) VALUES (?, '/', '{urn:x}p', '<p/>')",
            [(f"/{i:04d}",) for i in range(1001)],
        )
    page = store.described("/")
    assert len(page) == 1000
    assert store.described("/", after=page[-1]) == ["/1000"]
