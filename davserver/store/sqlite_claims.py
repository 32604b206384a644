"""Claims in SQLite: the order of tree changes between the processes sharing a state folder.

A separate database file from properties and locks: a claim is taken and dropped around every
change, and its short write transactions should not queue behind (or hold up) a large
property transaction. Taking a claim is one BEGIN IMMEDIATE transaction that looks for claims
in the way and inserts the new one, so two processes can never both take meeting claims.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Sequence

from .. import owners, paths
from .base import Claim, claims_of, meeting, wanted_paths
from .sqlite import Database, subtree_clause

SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    id     TEXT PRIMARY KEY,
    owner  TEXT NOT NULL,
    intent TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claim_paths (
    id        TEXT NOT NULL,
    path      TEXT NOT NULL,
    exclusive INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS claim_paths_path ON claim_paths (path);
CREATE INDEX IF NOT EXISTS claim_paths_id ON claim_paths (id);
"""


class SqliteClaimStore:
    """`ClaimStore` on its own SQLite file."""

    def __init__(self, filename: str) -> None:
        self.db = Database(filename, SCHEMA)
        self.owner = owners.new_owner()

    def try_take(
        self,
        exclusive: Sequence[str],
        shared: Sequence[str],
        intent: dict[str, object],
    ) -> tuple[str | None, list[Claim]]:
        wanted = wanted_paths(exclusive, shared)
        with self.db.write() as conn:
            rows = [row for path, _ in wanted for row in _near(conn, path)]
            blocking = meeting(rows, wanted)
            if blocking:
                return None, _load(conn, blocking)
            claim_id = uuid.uuid4().hex
            conn.execute(
                "INSERT INTO claims (id, owner, intent) VALUES (?, ?, ?)",
                (claim_id, self.owner, json.dumps(intent)),
            )
            conn.executemany(
                "INSERT INTO claim_paths (id, path, exclusive) VALUES (?, ?, ?)",
                [(claim_id, path, int(mine)) for path, mine in wanted],
            )
        return claim_id, []

    def update(self, claim_id: str, intent: dict[str, object]) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE claims SET intent = ? WHERE id = ?", (json.dumps(intent), claim_id)
            )

    def release(self, claim_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM claim_paths WHERE id = ?", (claim_id,))
            conn.execute("DELETE FROM claims WHERE id = ?", (claim_id,))

    def adopt(self, claim: Claim) -> bool:
        if owners.is_alive(claim.owner):
            return False
        with self.db.write() as conn:
            cursor = conn.execute(
                "UPDATE claims SET owner = ? WHERE id = ? AND owner = ?",
                (self.owner, claim.id, claim.owner),
            )
            return cursor.rowcount == 1

    def orphans(self) -> list[Claim]:
        conn = self.db.connection()
        rows = conn.execute("SELECT id, owner FROM claims").fetchall()
        dead = {claim_id for claim_id, owner in rows if not owners.is_alive(owner)}
        return _load(conn, dead) if dead else []

    def is_alive(self, owner: str) -> bool:
        return owners.is_alive(owner)

    def close(self) -> None:
        """Close the files; the claims this store still holds become orphans. Used again, the
        store takes claims under a new owner."""
        owners.retire(self.owner)
        self.owner = owners.new_owner()
        self.db.close()


def _near(conn: sqlite3.Connection, path: str) -> list[tuple[str, str, bool]]:
    """The held claim paths (id, path, exclusive) on `path`, above it or under it."""
    above = [path, *paths.ancestors(path)]
    where, args = subtree_clause("path", path, True)
    marks = ",".join("?" * len(above))
    rows = conn.execute(
        f"SELECT id, path, exclusive FROM claim_paths WHERE path IN ({marks}) OR {where}",  # noqa: S608
        [*above, *args],
    )
    return [(claim_id, other, bool(excl)) for claim_id, other, excl in rows]


def _load(conn: sqlite3.Connection, ids: Iterable[str]) -> list[Claim]:
    wanted = sorted(ids)
    marks = ",".join("?" * len(wanted))
    return claims_of(
        conn.execute(
            "SELECT c.id, c.owner, c.intent, p.path, p.exclusive FROM claims c "  # noqa: S608
            f"JOIN claim_paths p ON p.id = c.id WHERE c.id IN ({marks}) ORDER BY c.id, p.path",
            wanted,
        )
    )
