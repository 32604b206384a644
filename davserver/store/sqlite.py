"""The embedded store: dead properties and locks in one SQLite database (stdlib sqlite3).

WAL mode lets readers run beside one writer, and write transactions start with BEGIN IMMEDIATE
so that several server processes on one machine can share the file: a lock is granted only
after the conflict check and the insert ran as one transaction. Each thread has its own
connection (sqlite3 connections are not shared between threads).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence

from .. import paths
from ..errors import InsufficientStorage
from .base import Lock, LockConflict, find_conflict

SCHEMA = """
CREATE TABLE IF NOT EXISTS props (
    path   TEXT NOT NULL,
    parent TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (path, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS props_parent ON props (parent);
CREATE TABLE IF NOT EXISTS locks (
    token     TEXT PRIMARY KEY,
    root      TEXT NOT NULL,
    depth     TEXT NOT NULL,
    scope     TEXT NOT NULL,
    owner     TEXT,
    principal TEXT,
    timeout   INTEGER NOT NULL,
    expires   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS locks_root ON locks (root);
"""


def subtree_clause(column: str, path: str, recursive: bool) -> tuple[str, list[str]]:
    """A WHERE clause selecting `path` (and everything under it when recursive)."""
    if not recursive:
        return f"{column} = ?", [path]
    if path == paths.ROOT:
        return "1 = 1", []
    # Every string that starts with "path/" sorts between "path/" and "path0" ('0' follows '/').
    return f"({column} = ? OR ({column} > ? AND {column} < ?))", [path, path + "/", path + "0"]


_KEYS_PER_STATEMENT = 500  # `IN (...)`: within SQLite's 32,766 variables
_TREES_PER_STATEMENT = 50  # an OR of subtree ranges: within its expression depth of 1,000


def _where_any(column: str, keys: list[str], recursive: bool) -> tuple[str, list[str]]:
    """A WHERE clause selecting any of `keys` (and everything under them when recursive)."""
    if not recursive:
        return f"{column} IN ({','.join('?' * len(keys))})", list(keys)
    clauses = [subtree_clause(column, key, True) for key in keys]
    return " OR ".join(c for c, _ in clauses), [a for _, args in clauses for a in args]


class Database:
    """One SQLite file, a connection per thread, created with its schema on first use.

    `close()` closes every thread's connection: a thread-local alone would keep each open until
    its thread ends, and the opening thread's for as long as the object lives, so a process
    that starts and stops servers would run out of file descriptors (three per connection in
    WAL mode). Afterwards the object still works: a thread that asks again gets a new one.
    """

    def __init__(self, filename: str, schema: str = SCHEMA) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        self.filename = filename
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._generation = 0  # bumped by close(): connections from before are closed
        self.connection().executescript(schema)

    def connection(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.generation == self._generation:
            return conn
        # Not tied to its thread, so that close() may close it from another; only its own
        # thread ever uses it.
        conn = sqlite3.connect(
            self.filename, isolation_level=None, timeout=30, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across application crashes in WAL mode; only a power loss can
        # lose the last transactions, never corrupt the file.
        conn.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._close_ended_threads()
            self._connections[threading.current_thread()] = conn
            local.generation = self._generation
        local.conn = conn
        return conn

    def _close_ended_threads(self) -> None:
        """Close the connections of threads that have ended (a pool that shrinks and grows
        would otherwise collect them); called under the lock."""
        for thread in [t for t in self._connections if not t.is_alive()]:
            self._connections.pop(thread).close()

    def close(self) -> None:
        """Close every thread's connection (the threads using the database have stopped)."""
        with self._lock:
            self._generation += 1
            connections = list(self._connections.values())
            self._connections.clear()
        for conn in connections:
            conn.close()

    def delete_where(self, table: str, column: str, keys: list[str], recursive: bool) -> None:
        """Delete the rows of `table` whose `column` is one of `keys` (or under one).

        Looks first, without a write transaction: most deleted resources have no properties
        and no locks, and a write transaction costs a commit even when it changes nothing.
        Keys go in groups: SQLite bounds both the variables of a statement and the depth of
        its expression tree (an OR of a few hundred terms already fails).
        """
        step = _KEYS_PER_STATEMENT if not recursive else _TREES_PER_STATEMENT
        groups = [
            _where_any(column, keys[i : i + step], recursive) for i in range(0, len(keys), step)
        ]
        conn = self.connection()
        found = [
            (where, args)
            for where, args in groups
            if conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {where})",  # noqa: S608
                args,
            ).fetchone()[0]
        ]
        if not found:
            return
        with self.write() as conn:
            for where, args in found:
                conn.execute(f"DELETE FROM {table} WHERE {where}", args)  # noqa: S608

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken before any read so that check-then-write is atomic."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
                # SQLITE_FULL: the disk holding the state folder has no room (RFC 4918 507).
                raise InsufficientStorage("no space left for properties and locks") from exc
            raise


class SqlitePropertyStore:
    """`PropertyStore` on a `Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def close(self) -> None:
        self.db.close()

    def get(self, path: str, names: Collection[str] | None = None) -> dict[str, str]:
        conn = self.db.connection()
        wanted = None if names is None else list(names)
        if wanted is None or len(wanted) > _KEYS_PER_STATEMENT:
            # All of them, filtered here when a client asks for very many names.
            rows = conn.execute("SELECT name, value FROM props WHERE path = ?", (path,))
            found = dict(rows.fetchall())
            return found if wanted is None else {n: found[n] for n in wanted if n in found}
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = conn.execute(
            f"SELECT name, value FROM props WHERE path = ? AND name IN ({marks})",  # noqa: S608
            [path, *wanted],
        )
        return dict(rows.fetchall())

    def get_many(
        self, paths: Sequence[str], names: Collection[str] | None = None
    ) -> dict[str, dict[str, str]]:
        conn = self.db.connection()
        wanted = None if names is None else set(names)
        found: dict[str, dict[str, str]] = {}
        for start in range(0, len(paths), _KEYS_PER_STATEMENT):
            page = paths[start : start + _KEYS_PER_STATEMENT]
            marks = ",".join("?" * len(page))
            rows = conn.execute(
                f"SELECT path, name, value FROM props WHERE path IN ({marks})",  # noqa: S608
                page,
            )
            # Names are filtered here: a client may ask for more than a statement can hold.
            for path, name, value in rows:
                if wanted is None or name in wanted:
                    found.setdefault(path, {})[name] = value
        return found

    def members_with_properties(self, parent: str) -> set[str]:
        rows = self.db.connection().execute(
            "SELECT DISTINCT path FROM props WHERE parent = ? AND path != ?", (parent, parent)
        )
        return {path for (path,) in rows}

    def patch(self, path: str, changes: Sequence[tuple[str, str | None]]) -> None:
        with self.db.write() as conn:
            for name, value in changes:
                if value is None:
                    conn.execute("DELETE FROM props WHERE path = ? AND name = ?", (path, name))
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO props (path, parent, name, value) "
                        "VALUES (?, ?, ?, ?)",
                        (path, paths.parent(path), name, value),
                    )

    def copy(self, src: str, dst: str, *, recursive: bool) -> None:
        self._transfer(src, dst, recursive=recursive, keep_source=True)

    def move(self, src: str, dst: str) -> None:
        self._transfer(src, dst, recursive=True, keep_source=False)

    def _transfer(self, src: str, dst: str, *, recursive: bool, keep_source: bool) -> None:
        """Replace dst's properties (tree) with src's, in one transaction."""
        where_dst, args_dst = subtree_clause("path", dst, recursive)
        where_src, args_src = subtree_clause("path", src, recursive)
        look = self.db.connection().execute(
            f"SELECT EXISTS (SELECT 1 FROM props WHERE ({where_src}) OR ({where_dst}))",  # noqa: S608
            [*args_src, *args_dst],
        )
        if not look.fetchone()[0]:
            return  # the usual member of a COPY: nothing to carry, no commit to pay for
        with self.db.write() as conn:
            conn.execute(f"DELETE FROM props WHERE {where_dst}", args_dst)  # noqa: S608
            rows = conn.execute(
                f"SELECT path, name, value FROM props WHERE {where_src}",  # noqa: S608
                args_src,
            ).fetchall()
            if not keep_source:
                conn.execute(f"DELETE FROM props WHERE {where_src}", args_src)  # noqa: S608
            conn.executemany(
                "INSERT OR REPLACE INTO props (path, parent, name, value) VALUES (?, ?, ?, ?)",
                _rebased(rows, src, dst),
            )

    def delete(self, paths_: Iterable[str], *, recursive: bool = False) -> None:
        self.db.delete_where("props", "path", list(paths_), recursive)

    def described(self, root: str, after: str = "", limit: int = 1000) -> list[str]:
        where, args = subtree_clause("path", root, True)
        rows = self.db.connection().execute(
            f"SELECT DISTINCT path FROM props WHERE ({where}) AND path > ? "  # noqa: S608
            "ORDER BY path LIMIT ?",
            [*args, after, limit],
        )
        return [path for (path,) in rows]


def _rebased(
    rows: Iterable[tuple[str, str, str]], src: str, dst: str
) -> Iterator[tuple[str, str, str, str]]:
    for path, name, value in rows:
        new = paths.rebase(path, src, dst)
        yield new, paths.parent(new), name, value


_LOCK_COLUMNS = "token, root, depth, scope, owner, principal, timeout, expires"


def _lock(row: tuple[str, str, str, str, str | None, str | None, int, float]) -> Lock:
    token, root, depth, scope, owner, principal, timeout, expires = row
    return Lock(token, root, depth, scope, owner, principal, timeout, expires)  # type: ignore[arg-type]


class SqliteLockStore:
    """`LockStore` on a `Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def close(self) -> None:
        self.db.close()

    def _around(self, conn: sqlite3.Connection, path: str, now: float) -> list[Lock]:
        """Locks rooted at `path`, at any ancestor of it, or anywhere under it: one query."""
        ancestors = list(paths.ancestors(path))
        where, args = subtree_clause("root", path, True)
        marks = ",".join("?" * len(ancestors)) or "NULL"
        rows = conn.execute(
            f"SELECT {_LOCK_COLUMNS} FROM locks "  # noqa: S608
            f"WHERE (root IN ({marks}) OR {where}) AND expires > ?",
            [*ancestors, *args, now],
        )
        return [_lock(row) for row in rows]

    def acquire(self, lock: Lock, now: float) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM locks WHERE expires <= ?", (now,))
            conflict = find_conflict(lock, self._around(conn, lock.root, now))
            if conflict is not None:
                raise LockConflict(conflict)
            conn.execute(
                f"INSERT INTO locks ({_LOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                dataclasses.astuple(lock),  # the fields in _LOCK_COLUMNS' order
            )

    def refresh(self, token: str, timeout: int, now: float) -> Lock | None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE locks SET timeout = ?, expires = ? WHERE token = ? AND expires > ?",
                (timeout, now + timeout, token, now),
            )
            row = conn.execute(
                f"SELECT {_LOCK_COLUMNS} FROM locks WHERE token = ? AND expires > ?",  # noqa: S608
                (token, now),
            ).fetchone()
        return _lock(row) if row else None

    def release(self, token: str) -> bool:
        with self.db.write() as conn:
            return conn.execute("DELETE FROM locks WHERE token = ?", (token,)).rowcount > 0

    def get(self, token: str, now: float) -> Lock | None:
        row = (
            self.db.connection()
            .execute(
                f"SELECT {_LOCK_COLUMNS} FROM locks WHERE token = ? AND expires > ?",  # noqa: S608
                (token, now),
            )
            .fetchone()
        )
        return _lock(row) if row else None

    def covering(self, path: str, now: float) -> list[Lock]:
        return [lock for lock in self.around(path, now) if lock.covers(path)]

    def around(self, path: str, now: float) -> list[Lock]:
        return self._around(self.db.connection(), path, now)

    def delete(self, paths_: Iterable[str], *, recursive: bool = False) -> None:
        self.db.delete_where("locks", "root", list(paths_), recursive)
