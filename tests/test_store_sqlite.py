"""What only the SQLite store has to get right: its own failure modes."""

from __future__ import annotations

from pathlib import Path

import pytest

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
