"""Digest nonce counts in SQLite: replay protection (RFC 7616 3.4) shared by every process on
a state folder. Worker processes (davserver.prefork) serve one client in turns, so a request
replayed to another worker must be refused there too.

A file of its own, beside the claims: one short upsert per Digest request, which should not
queue behind a large property transaction.
"""

from __future__ import annotations

import time

from .sqlite import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS nonce_counts (
    nonce TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    seen  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS nonce_counts_seen ON nonce_counts (seen);
"""

# Rows of expired nonces are dropped once in this many uses.
_PRUNE_EVERY = 1000


class SqliteNonceCounts:
    """`auth.NonceCounts` on its own SQLite file; rows outlive their nonce by `lifetime`."""

    def __init__(self, filename: str, lifetime: float) -> None:
        self.db = Database(filename, SCHEMA)
        self.lifetime = lifetime
        self._uses = 0

    def advance(self, nonce: str, count: int) -> bool:
        now = time.time()
        conn = self.db.connection()
        # One statement, so atomic across processes: the row moves only to a higher count.
        cursor = conn.execute(
            "INSERT INTO nonce_counts (nonce, count, seen) VALUES (?, ?, ?) "
            "ON CONFLICT (nonce) DO UPDATE SET count = excluded.count, seen = excluded.seen "
            "WHERE excluded.count > nonce_counts.count",
            (nonce, count, now),
        )
        self._uses += 1
        if self._uses % _PRUNE_EVERY == 0:
            # A nonce is refused once older than its lifetime, whatever its count: a row
            # last used longer ago than that guards nothing.
            conn.execute("DELETE FROM nonce_counts WHERE seen < ?", (now - self.lifetime,))
        return cursor.rowcount == 1

    def close(self) -> None:
        self.db.close()
