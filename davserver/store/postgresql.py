"""Properties, locks and claims in PostgreSQL: one state shared by davserver instances on
several machines (psycopg 3 with a connection pool).

One `PostgresDatabase` per instance holds the pool, creates or migrates the schema at start
(under a transaction-level advisory lock, so instances starting together do not race) and
keeps one dedicated connection for the instance's lifetime. That connection holds a
session-level advisory lock named after the instance's owner: an owner is alive exactly while
its lock is held, so a claim whose owner's lock can be taken belongs to an instance that died
(its connection dropped and the lock went with it). The same connection reads the database's
clock once a second: `clock()` is this machine's time corrected to the database's, so every
instance decides lock expiry by one clock (within a round trip), whatever its own clock says.

Atomic check-then-write: granting a lock and taking a claim each run in one transaction that
first takes a transaction-level advisory lock (one key for locks, one for claims), so two
instances never both pass the conflict check. That is the same one-writer-at-a-time order
SQLite's BEGIN IMMEDIATE gives, for these two short transactions only; property writes run
concurrently, each PROPPATCH one transaction (all or nothing).

Every failure to reach the database (refused, dropped, timed out) becomes one `DavError`, 503
with Retry-After, in `PostgresDatabase.connection`; connect and statement timeouts keep a
request from hanging on a database that went silent, and the pool reconnects by itself. An
entry too long for an index (about 2,700 bytes of path and name) is a final 414 or 507.

A change whose request met such a failure under its claim may have changed the tree but not
the store, and could not undo itself either: its claim is abandoned (given an owner that is
dead from the start), not dropped, and recovered like a crashed instance's. Each instance also
looks for dead owners' claims every few seconds, since nothing else may ever meet them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg_pool import ConnectionPool

from .. import owners, paths
from ..errors import DavError, InsufficientStorage
from .base import (
    Claim,
    Lock,
    LockConflict,
    claims_of,
    find_conflict,
    meeting,
    wanted_paths,
)

log = logging.getLogger(__name__)

# Each version's statements, applied in order to a database at an older version; a later
# release appends a migration, never edits one. "C" collation: paths compare byte by byte, so
# that everything under "/a" sorts between "/a/" and "/a0" ('0' follows '/'), as in SQLite.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE props (
        path   text COLLATE "C" NOT NULL,
        parent text COLLATE "C" NOT NULL,
        name   text COLLATE "C" NOT NULL,
        value  text NOT NULL,
        PRIMARY KEY (path, name)
    );
    CREATE INDEX props_parent ON props (parent);
    CREATE TABLE locks (
        token     text PRIMARY KEY,
        root      text COLLATE "C" NOT NULL,
        depth     text NOT NULL,
        scope     text NOT NULL,
        owner     text,
        principal text,
        timeout   bigint NOT NULL,
        expires   double precision NOT NULL
    );
    CREATE INDEX locks_root ON locks (root);
    CREATE TABLE claims (
        id     text PRIMARY KEY,
        owner  text NOT NULL,
        intent text NOT NULL
    );
    CREATE TABLE claim_paths (
        id        text NOT NULL REFERENCES claims (id) ON DELETE CASCADE,
        path      text COLLATE "C" NOT NULL,
        exclusive boolean NOT NULL
    );
    CREATE INDEX claim_paths_path ON claim_paths (path);
    CREATE INDEX claim_paths_id ON claim_paths (id);
    """,
    # When each running instance last showed it was alive, by the database's clock.
    """
    CREATE TABLE instances (
        owner text PRIMARY KEY,
        seen  double precision NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def advisory_key(name: str) -> int:
    """A 64-bit advisory lock key for `name` (a signed bigint, as PostgreSQL takes it)."""
    digest = hashlib.blake2b(b"davserver:" + name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_SCHEMA_KEY = advisory_key("schema")
_LOCKS_KEY = advisory_key("locks")
_CLAIMS_KEY = advisory_key("claims")

# Seconds: how long a request may wait to connect, for a pooled connection, or for one
# statement, before it gets 503; and how often the owner's connection checks it still holds
# its lock and reads the database's clock.
CONNECT_TIMEOUT = 3
WAIT_TIMEOUT = 3.0
STATEMENT_TIMEOUT = 10
HEARTBEAT = 1.0
LONGEST_HOLD = STATEMENT_TIMEOUT + 1
# How long a stopping instance waits for the database to hear that it leaves: a courtesy (its
# claims become orphans at once), which a database that went silent must not turn into a hang.
FAREWELL = 2.0
# An instance's advisory lock lapses when its connection breaks, also while it runs (the
# database restarted): it is presumed gone only once it has also not been seen for this long,
# time enough to connect again and take its lock back.
OWNER_GRACE = 10.0
# A heartbeat later than this after the previous one means the database was away (or
# stalled) for this instance, and so perhaps for every other: the grace starts again.
STEADY_GAP = 3 * HEARTBEAT
# A request's connection is cut after this long when the heartbeat has not reached the
# database for as long: a silent database costs a request seconds (503), while a long
# statement on a database that answers the heartbeat runs on, up to LONGEST_HOLD.
SILENT_CUT = 3 * HEARTBEAT
FORGET_INSTANCES = 86400.0
# How often each instance looks for claims of dead owners that nobody met: an instance that
# crashed may never start again to recover them at its start.
ORPHAN_SWEEP = 5.0
# The owner of a claim whose change met a database failure: dead from the start, so that the
# next change meeting the claim, in any instance, finishes or undoes it (recovery).
ABANDONED = "abandoned/"
RETRY_AFTER = "5"


class StoreUnavailable(DavError):
    """503: the database cannot be reached now; the client may try again shortly."""

    status = 503


def masked(url: str) -> str:
    """`url` for a log line: the password replaced, whether in the URL or a parameter."""
    try:
        params = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(a database URL that cannot be parsed)"
    if "password" in params:
        params["password"] = "***"  # noqa: S105 - the mask, not a password
    return conninfo.make_conninfo("", **params)


def connection_params(url: str) -> dict[str, Any]:
    """Keyword parameters added to `url` when it (or the PG* environment) leaves them out:
    timeouts so that a database that went silent costs a request seconds, not minutes."""
    given = conninfo.conninfo_to_dict(url)
    extra: dict[str, Any] = {"application_name": "davserver"}
    if "connect_timeout" not in given and "PGCONNECT_TIMEOUT" not in os.environ:
        extra["connect_timeout"] = CONNECT_TIMEOUT
    # A server that went silent (a cut network) never answers, so statement_timeout cannot
    # help: keepalives notice within 5 + 2 x 2 s, and unacknowledged data gives up in 9 s.
    silent = (
        ("keepalives_idle", 5),
        ("keepalives_interval", 2),
        ("keepalives_count", 2),
        ("tcp_user_timeout", 9000),
    )
    for name, value in silent:
        if name not in given:
            extra[name] = value
    options = str(given.get("options", os.environ.get("PGOPTIONS", "")))
    extra["options"] = f"{options} -c statement_timeout={STATEMENT_TIMEOUT * 1000}".strip()
    return extra


class PostgresDatabase:
    """One instance's handle on the shared database: the pool, the owner, the clock."""

    def __init__(
        self, url: str, *, max_connections: int = 16, owner_grace: float = OWNER_GRACE
    ) -> None:
        """`max_connections` per instance: a request holds one only for a statement or a short
        transaction, and PostgreSQL allows 100 connections by default, which three instances
        of 32 each and their owner connections would already exceed."""
        self.url = url
        self.max_connections = max_connections
        self.owner_grace = owner_grace
        self._params = connection_params(url)
        self._guard = threading.Lock()
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._keeper: _Keeper | None = None
        self._checking = False
        # Per thread (a request runs on one): how many times it met the database unavailable
        # or refusing an entry.
        self._failures = threading.local()
        # Run after each heartbeat that reached the database (bookkeeping left undone while
        # it was away).
        self.heartbeat_tasks: list[Callable[[], None]] = []
        # Run every ORPHAN_SWEEP seconds, on a thread of their own (they may take a while).
        self.sweeps: list[Callable[[], object]] = []
        self._open()

    def _open(self) -> None:
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self.url,
            kwargs={**self._params, "autocommit": True},
            min_size=1,
            max_size=self.max_connections,
            timeout=WAIT_TIMEOUT,
            open=False,
            name="davserver",
        )
        try:
            pool.open(wait=True, timeout=CONNECT_TIMEOUT)
            with pool.connection() as conn:
                migrate(conn)
            keeper = _Keeper(self.url, self._params)
        except BaseException:
            pool.close()
            raise
        keeper.tasks, keeper.sweeps = self.heartbeat_tasks, self.sweeps
        self._pool, self._keeper = pool, keeper
        log.info("properties, locks and claims in %s", masked(self.url))

    @property
    def owner(self) -> str:
        """The name under which this instance's claims are held."""
        return self._live()[1].owner

    def _live(self) -> tuple[ConnectionPool[psycopg.Connection[Any]], _Keeper]:
        with self._guard:
            if self._pool is None or self._keeper is None:
                with self.translated():
                    self._open()
            assert self._pool is not None and self._keeper is not None
            return self._pool, self._keeper

    @contextlib.contextmanager
    def translated(self) -> Iterator[None]:
        """Turn a failure to reach the database into StoreUnavailable (503): the one place
        that does."""
        try:
            yield
        except psycopg.errors.ProgramLimitExceeded as exc:
            # An index entry over PostgreSQL's limit (about 2,700 bytes): no retry helps.
            self._failures.refused = self._count("refused") + 1
            raise InsufficientStorage(
                "a path or property name too long for the database to keep"
            ) from exc
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()
            log.warning("database unavailable: %s", reason[0] if reason else type(exc).__name__)
            self._failures.unavailable = self.outages() + 1
            self._check_soon()
            raise StoreUnavailable(
                "the database is unavailable; try again shortly",
                headers=[("Retry-After", RETRY_AFTER)],
            ) from exc

    def failures(self) -> int:
        """How many times the calling thread met the database failing: unavailable, or
        refusing an entry too long (only changes matter: compare two readings)."""
        return self.outages() + self._count("refused")

    def outages(self) -> int:
        """How many times the calling thread met the database unavailable: failures that
        another attempt may not meet."""
        return self._count("unavailable")

    def _count(self, kind: str) -> int:
        return int(getattr(self._failures, kind, 0))

    def _check_soon(self) -> None:
        """Drop the pool's broken connections (the server restarted) in the background, so
        that they are not handed one by one to the next requests; one check at a time, and
        never on a request's own time (a silent server could hold it for seconds)."""
        pool = self._pool
        with self._guard:
            if pool is None or self._checking:
                return
            self._checking = True

        def run() -> None:
            try:
                with contextlib.suppress(psycopg.Error):
                    pool.check()
            finally:
                self._checking = False

        threading.Thread(target=run, name="pg-check", daemon=True).start()

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in autocommit mode (wrap writes in `conn.transaction()`)."""
        pool, keeper = self._live()
        with (
            self.translated(),
            pool.connection() as conn,
            _WATCHDOG.watching(conn, silent=keeper.silent),
        ):
            yield conn

    @contextlib.contextmanager
    def write(self, key: int | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A transaction; with `key`, it first takes that advisory lock, which orders it after
        every other transaction holding it (the lock goes at commit or rollback)."""
        with self.connection() as conn, conn.transaction():
            if key is not None:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            yield conn

    def clock(self) -> float:
        """Now, in seconds since the epoch, by the database's clock."""
        return time.time() + self._live()[1].offset

    def is_alive(self, owner: str) -> bool:
        """Whether the instance named `owner` may still be running: it holds its advisory
        lock, or was seen less than `owner_grace` seconds ago (it may be reconnecting), or
        this instance has not itself reached the database steadily for that long (after an
        outage every instance's lock is gone and its last sign of life old: each needs the
        grace, counted from the database's return, to take its lock back)."""
        if owner == self.owner:
            return True
        if owner.startswith(ABANDONED):
            return False
        if not self._live()[1].steady_for(self.owner_grace):
            return True
        key = advisory_key("owner:" + owner)
        with self.connection() as conn:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s), coalesce((SELECT seen FROM instances "
                "WHERE owner = %s) > extract(epoch FROM clock_timestamp()) - %s, false)",
                (key, owner, self.owner_grace),
            ).fetchone()
            if row is None or not row[0]:
                return True
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            return bool(row[1])

    def close(self) -> None:
        """Close the pool and the owner's connection (this instance's claims become orphans);
        used again, the database opens anew under a new owner."""
        with self._guard:
            pool, keeper, self._pool, self._keeper = self._pool, self._keeper, None, None
        if keeper is not None:
            keeper.close()
        if pool is not None:
            pool.close()


class _Watchdog:
    """Cuts the connection of whoever has held it for LONGEST_HOLD seconds (or the limit
    given to `watching`).

    statement_timeout ends a slow statement on a server that still runs; a server that froze
    (stopped, a stalled disk) answers nothing, not even the cancel, and the kernel still
    acknowledges keepalives for it. Shutting the socket down wakes the waiting request with an
    error (503) and the pool drops the connection. One thread per process, for every database.
    """

    def __init__(self) -> None:
        # Each watched connection: the moment it is cut, and after SILENT_CUT seconds, the
        # moment its database counts as silent.
        self._held: dict[
            int, tuple[psycopg.Connection[Any], float, float, Callable[[], bool] | None]
        ] = {}
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watching(
        self,
        conn: psycopg.Connection[Any],
        limit: float = LONGEST_HOLD,
        silent: Callable[[], bool] | None = None,
    ) -> Iterator[None]:
        """Cut `conn` once held for `limit` seconds, or for SILENT_CUT seconds while `silent()`
        says its database stopped answering (the owner's heartbeat): a request then waits
        seconds, not the longest a statement may legitimately take."""
        key = id(conn)
        now = time.monotonic()
        with self._guard:
            self._held[key] = (conn, now + limit, now + SILENT_CUT, silent)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pg-watchdog", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._guard:
                self._held.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(HEARTBEAT / 2)
            now = time.monotonic()
            with self._guard:
                late = [
                    key
                    for key, (_, deadline, soon, silent) in self._held.items()
                    if deadline < now or (silent is not None and soon < now and silent())
                ]
                cut = [self._held.pop(key)[0] for key in late]
            for conn in cut:
                log.warning("the database did not answer in time; connection cut")
                _shut_down(conn)


def _shut_down(conn: psycopg.Connection[Any]) -> None:
    """Shut the connection's socket down under whoever waits on it (their read ends at once)."""
    with contextlib.suppress(OSError, psycopg.Error):
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


_WATCHDOG = _Watchdog()


class SchemaTooNew(Exception):
    """The database was created by a newer davserver, whose schema this one cannot use."""


def migrate(conn: psycopg.Connection[Any]) -> None:
    """Bring the schema to SCHEMA_VERSION; one instance at a time (the others wait)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_KEY,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database's schema is version {current}; this davserver knows "
                f"{SCHEMA_VERSION} at most (a newer release created it)"
            )
        for version in range(current, SCHEMA_VERSION):
            conn.execute(MIGRATIONS[version])
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version + 1,))


class _Keeper:
    """The owner's own connection: holds its advisory lock for the instance's lifetime,
    takes it again after the database comes back, and measures the clock offset."""

    def __init__(self, url: str, params: dict[str, Any]) -> None:
        self.url = url
        self.params = params
        self.owner = owners.new_owner()
        self.key = advisory_key("owner:" + self.owner)
        self.offset = 0.0
        self.tasks: list[Callable[[], None]] = []
        self.sweeps: list[Callable[[], object]] = []
        self._stop = threading.Event()
        self._conn: psycopg.Connection[Any] | None = self._connect()
        # When the heartbeat last reached the database, and since when without a break. An
        # instance that starts presumes the database was there before it (so that its start
        # recovers what crashed instances left).
        self._last_beat = time.monotonic()
        self._steady_since = -math.inf
        self._thread = threading.Thread(target=self._run, name="pg-owner", daemon=True)
        self._thread.start()
        self._sweeper = threading.Thread(target=self._sweep, name="pg-sweep", daemon=True)
        self._sweeper.start()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, **self.params, autocommit=True)
        try:
            with _WATCHDOG.watching(conn):
                conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
                self._measure(conn)
                # Instances that crashed long ago: their claims are recovered by then.
                conn.execute(
                    "DELETE FROM instances WHERE seen < extract(epoch FROM clock_timestamp()) - %s",
                    (FORGET_INSTANCES,),
                )
        except BaseException:
            conn.close()
            raise
        return conn

    def _measure(self, conn: psycopg.Connection[Any]) -> None:
        """Record that this instance is alive, and how far the database's clock is ahead."""
        before = time.time()
        row = conn.execute(
            "INSERT INTO instances (owner, seen) "
            "VALUES (%s, extract(epoch FROM clock_timestamp())) "
            "ON CONFLICT (owner) DO UPDATE SET seen = excluded.seen RETURNING seen",
            (self.owner,),
        ).fetchone()
        after = time.time()
        if row is not None:
            self.offset = float(row[0]) - (before + after) / 2

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            try:
                if self._conn is None:
                    self._conn = self._connect()
                    log.info("database reachable again")
                else:
                    with _WATCHDOG.watching(self._conn):
                        self._measure(self._conn)
            except psycopg.Error:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                continue
            now = time.monotonic()
            if now - self._last_beat > STEADY_GAP:
                self._steady_since = now
            self._last_beat = now
            for task in self.tasks:
                try:
                    task()
                except Exception:
                    log.exception("database bookkeeping failed; trying again in a moment")

    def _sweep(self) -> None:
        while not self._stop.wait(ORPHAN_SWEEP):
            for sweep in self.sweeps:
                try:
                    sweep()
                except StoreUnavailable:
                    pass  # the database is away: the next sweep tries again
                except Exception:
                    log.exception("looking for interrupted changes failed; trying again later")

    def silent(self) -> bool:
        """Whether the heartbeat has not reached the database for SILENT_CUT seconds: it
        stopped answering (frozen, a cut network), or it is away."""
        return time.monotonic() - self._last_beat > SILENT_CUT

    def steady_for(self, seconds: float) -> bool:
        """Whether the heartbeat has reached the database without a break for `seconds`."""
        now = time.monotonic()
        return now - self._last_beat <= STEADY_GAP and now - self._steady_since >= seconds

    def close(self) -> None:
        """Stop the heartbeat and say goodbye, in bounded time whatever the database does."""
        self._stop.set()
        self._thread.join(HEARTBEAT)
        conn = self._conn
        if self._thread.is_alive() and conn is not None:
            # Its heartbeat waits on a database that went silent: cut it short.
            _shut_down(conn)
        self._thread.join(CONNECT_TIMEOUT + HEARTBEAT)
        # A recovery under way finishes (each of its steps is bounded); not waited for long.
        self._sweeper.join(HEARTBEAT)
        conn = self._conn
        if conn is not None:
            # Stopped, not crashed: its claims are orphans at once, no grace to wait out. The
            # lock is released here rather than by closing: a session's backend ends a moment
            # after its client leaves, and the lock is held until it has.
            with contextlib.suppress(psycopg.Error), _WATCHDOG.watching(conn, FAREWELL):
                conn.execute("DELETE FROM instances WHERE owner = %s", (self.owner,))
                conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            conn.close()
        owners.retire(self.owner)


def _bounds(root: str) -> tuple[str, str]:
    """Every path strictly under `root` sorts strictly between these two (in "C" order)."""
    return ("/", "0") if root == paths.ROOT else (root + "/", root + "0")


def _subtree(column: str, root: str, recursive: bool = True) -> tuple[str, list[str]]:
    """SQL selecting `root` (and, when recursive, everything under it): an index range."""
    if not recursive:
        return f"{column} = %s", [root]
    low, high = _bounds(root)
    return f"({column} = %s OR ({column} > %s AND {column} < %s))", [root, low, high]


def _delete_at(
    db: PostgresDatabase, table: str, column: str, paths_: Iterable[str], recursive: bool
) -> None:
    """Delete the rows at any of `paths_` (and, when recursive, under them) in one
    transaction: one statement for the paths themselves and one range join for what lies
    under them, whatever their number."""
    keys = list(paths_)
    if not keys:
        return
    with db.write() as conn:
        conn.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", (keys,))  # noqa: S608
        if not recursive:
            return
        bounds = [_bounds(k) for k in keys]
        conn.execute(
            f"DELETE FROM {table} t USING unnest(%s::text[], %s::text[]) AS k(low, high) "  # noqa: S608
            f"WHERE t.{column} > k.low AND t.{column} < k.high",
            ([b[0] for b in bounds], [b[1] for b in bounds]),
        )


class PostgresPropertyStore:
    """`PropertyStore` on a `PostgresDatabase`."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def close(self) -> None:
        self.db.close()

    def get(self, path: str, names: Collection[str] | None = None) -> dict[str, str]:
        with self.db.connection() as conn:
            if names is None:
                rows = conn.execute("SELECT name, value FROM props WHERE path = %s", (path,))
            else:
                wanted = list(names)
                if not wanted:
                    return {}
                rows = conn.execute(
                    "SELECT name, value FROM props WHERE path = %s AND name = ANY(%s)",
                    (path, wanted),
                )
            return dict(rows.fetchall())

    def get_many(
        self, paths_: Sequence[str], names: Collection[str] | None = None
    ) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        with self.db.connection() as conn:
            if names is None:
                rows = conn.execute(
                    "SELECT path, name, value FROM props WHERE path = ANY(%s)", (list(paths_),)
                )
            else:
                rows = conn.execute(
                    "SELECT path, name, value FROM props WHERE path = ANY(%s) AND name = ANY(%s)",
                    (list(paths_), list(names)),
                )
            for path, name, value in rows:
                found.setdefault(path, {})[name] = value
        return found

    def members_with_properties(self, parent: str) -> set[str]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT path FROM props WHERE parent = %s AND path <> %s",
                (parent, parent),
            )
            return {path for (path,) in rows}

    def patch(self, path: str, changes: Sequence[tuple[str, str | None]]) -> None:
        parent = paths.parent(path)
        with self.db.write() as conn:
            for name, value in changes:
                if value is None:
                    conn.execute("DELETE FROM props WHERE path = %s AND name = %s", (path, name))
                else:
                    conn.execute(
                        "INSERT INTO props (path, parent, name, value) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (path, name) DO UPDATE SET value = excluded.value",
                        (path, parent, name, value),
                    )

    def copy(self, src: str, dst: str, *, recursive: bool) -> None:
        self._transfer(src, dst, recursive=recursive, keep_source=True)

    def move(self, src: str, dst: str) -> None:
        self._transfer(src, dst, recursive=True, keep_source=False)

    def _transfer(self, src: str, dst: str, *, recursive: bool, keep_source: bool) -> None:
        where_dst, args_dst = _subtree("path", dst, recursive)
        where_src, args_src = _subtree("path", src, recursive)
        # The new paths are computed by the database (paths.rebase, in SQL): one statement
        # whatever the size of the tree, no row through this process, and so no transaction
        # long enough for the watchdog to cut on a large tree.
        prefix = "" if dst == paths.ROOT else dst
        cut = 1 if src == paths.ROOT else len(src) + 1
        rebased = "CASE WHEN {0} = %s THEN %s ELSE %s || substr({0}, %s) END"
        with self.db.write() as conn:
            conn.execute(f"DELETE FROM props WHERE {where_dst}", args_dst)  # noqa: S608
            conn.execute(
                "INSERT INTO props (path, parent, name, value) "  # noqa: S608
                f"SELECT {rebased.format('path')}, "
                f"CASE WHEN path = %s THEN %s ELSE {rebased.format('parent')} END, name, value "
                f"FROM props WHERE {where_src} "
                "ON CONFLICT (path, name) DO UPDATE SET value = excluded.value",
                [
                    *(src, dst, prefix, cut),
                    *(src, paths.parent(dst)),
                    *(src, dst, prefix, cut),
                    *args_src,
                ],
            )
            if not keep_source:
                conn.execute(
                    f"DELETE FROM props WHERE {where_src}",  # noqa: S608
                    args_src,
                )

    def delete(self, paths_: Iterable[str], *, recursive: bool = False) -> None:
        _delete_at(self.db, "props", "path", paths_, recursive)

    def described(self, root: str, after: str = "", limit: int = 1000) -> list[str]:
        where, args = _subtree("path", root)
        with self.db.connection() as conn:
            rows = conn.execute(
                f"SELECT DISTINCT path FROM props WHERE {where} AND path > %s "  # noqa: S608
                "ORDER BY path LIMIT %s",
                [*args, after, limit],
            )
            return [path for (path,) in rows]


_LOCK_COLUMNS = "token, root, depth, scope, owner, principal, timeout, expires"


def _lock(row: tuple[Any, ...]) -> Lock:
    token, root, depth, scope, owner, principal, timeout, expires = row
    return Lock(token, root, depth, scope, owner, principal, int(timeout), float(expires))


class PostgresLockStore:
    """`LockStore` on a `PostgresDatabase`."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def close(self) -> None:
        self.db.close()

    @staticmethod
    def _around(conn: psycopg.Connection[Any], path: str, now: float) -> list[Lock]:
        where, args = _subtree("root", path)
        rows = conn.execute(
            f"SELECT {_LOCK_COLUMNS} FROM locks "  # noqa: S608
            f"WHERE (root = ANY(%s) OR {where}) AND expires > %s",
            [list(paths.ancestors(path)), *args, now],
        )
        return [_lock(row) for row in rows]

    def acquire(self, lock: Lock, now: float) -> None:
        with self.db.write(_LOCKS_KEY) as conn:
            conn.execute("DELETE FROM locks WHERE expires <= %s", (now,))
            conflict = find_conflict(lock, self._around(conn, lock.root, now))
            if conflict is not None:
                raise LockConflict(conflict)
            conn.execute(
                f"INSERT INTO locks ({_LOCK_COLUMNS}) "  # noqa: S608
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                dataclasses.astuple(lock),  # the fields in _LOCK_COLUMNS' order
            )

    def refresh(self, token: str, timeout: int, now: float) -> Lock | None:
        with self.db.connection() as conn:
            row = conn.execute(
                f"UPDATE locks SET timeout = %s, expires = %s "  # noqa: S608
                f"WHERE token = %s AND expires > %s RETURNING {_LOCK_COLUMNS}",
                (timeout, now + timeout, token, now),
            ).fetchone()
        return _lock(row) if row else None

    def release(self, token: str) -> bool:
        with self.db.connection() as conn:
            return conn.execute("DELETE FROM locks WHERE token = %s", (token,)).rowcount > 0

    def get(self, token: str, now: float) -> Lock | None:
        with self.db.connection() as conn:
            row = conn.execute(
                f"SELECT {_LOCK_COLUMNS} FROM locks WHERE token = %s AND expires > %s",  # noqa: S608
                (token, now),
            ).fetchone()
        return _lock(row) if row else None

    def covering(self, path: str, now: float) -> list[Lock]:
        return [lock for lock in self.around(path, now) if lock.covers(path)]

    def around(self, path: str, now: float) -> list[Lock]:
        with self.db.connection() as conn:
            return self._around(conn, path, now)

    def delete(self, paths_: Iterable[str], *, recursive: bool = False) -> None:
        _delete_at(self.db, "locks", "root", paths_, recursive)


class PostgresClaimStore:
    """`ClaimStore` on a `PostgresDatabase`: owners are instances, alive while they hold
    their advisory lock (see the module's docstring)."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db
        # Each claim held here, and its thread's count of database failures when taken: a
        # change that met the database failing may have changed the tree but not the
        # store (a MOVE renamed, its properties not yet moved), and its own undo needed the
        # database too. Its claim is then abandoned, not dropped: recovery brings the paths to
        # a state before or after the change, from the intent it recorded.
        self._taken: dict[str, tuple[int, int]] = {}
        # Claims to abandon once the database answers again.
        self._unreleased: set[str] = set()
        self._unreleased_guard = threading.Lock()
        db.heartbeat_tasks.append(self._abandon_pending)

    @property
    def owner(self) -> str:
        return self.db.owner

    def try_take(
        self,
        exclusive: Sequence[str],
        shared: Sequence[str],
        intent: dict[str, object],
    ) -> tuple[str | None, list[Claim]]:
        self._abandon_pending()
        wanted = wanted_paths(exclusive, shared)
        roots = [p for p, _ in wanted]
        above = sorted({a for p in roots for a in (p, *paths.ancestors(p))})
        bounds = [_bounds(p) for p in roots]
        owner = self.owner
        with self._too_long_is_414(), self.db.write(_CLAIMS_KEY) as conn:
            rows = conn.execute(
                "SELECT id, path, exclusive FROM claim_paths c WHERE c.path = ANY(%s) "
                "OR EXISTS (SELECT 1 FROM unnest(%s::text[], %s::text[]) AS k(low, high) "
                "WHERE c.path > k.low AND c.path < k.high)",
                (above, [b[0] for b in bounds], [b[1] for b in bounds]),
            )
            blocking = meeting(rows, wanted)
            if blocking:
                return None, _load(conn, blocking)
            claim_id = uuid.uuid4().hex
            conn.execute(
                "INSERT INTO claims (id, owner, intent) VALUES (%s, %s, %s)",
                (claim_id, owner, json.dumps(intent)),
            )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO claim_paths (id, path, exclusive) VALUES (%s, %s, %s)",
                    [(claim_id, path, mine) for path, mine in wanted],
                )
        with self._unreleased_guard:
            self._taken[claim_id] = self._failures_now()
        return claim_id, []

    @staticmethod
    @contextlib.contextmanager
    def _too_long_is_414() -> Iterator[None]:
        """A claim stores only paths: one too long for the database is a URI this server
        will not take (RFC 9110 15.5.15), refused before anything changes."""
        try:
            yield
        except InsufficientStorage as exc:
            raise DavError("the path is too long for the database to keep", status=414) from exc

    def update(self, claim_id: str, intent: dict[str, object]) -> None:
        with self.db.connection() as conn:
            conn.execute(
                "UPDATE claims SET intent = %s WHERE id = %s", (json.dumps(intent), claim_id)
            )

    def release(self, claim_id: str) -> None:
        with self._unreleased_guard:
            taken = self._taken.pop(claim_id, None)
        try:
            if taken is not None and taken[0] != self.db.failures():
                self._abandon([claim_id])
                return
            with self.db.connection() as conn:
                conn.execute("DELETE FROM claims WHERE id = %s", (claim_id,))
        except StoreUnavailable:
            # A finished request must not answer 503 for this bookkeeping step.
            with self._unreleased_guard:
                self._unreleased.add(claim_id)

    def _failures_now(self) -> tuple[int, int]:
        return self.db.failures(), self.db.outages()

    def _abandon(self, ids: Collection[str]) -> None:
        with self.db.connection() as conn:
            conn.execute(
                "UPDATE claims SET owner = %s WHERE id = ANY(%s)",
                (ABANDONED + self.owner, list(ids)),
            )

    def _abandon_pending(self) -> None:
        with self._unreleased_guard:
            pending, self._unreleased = self._unreleased, set()
        if not pending:
            return
        try:
            self._abandon(pending)
        except StoreUnavailable:
            with self._unreleased_guard:
                self._unreleased |= pending

    def recover_in_background(self, recover: Callable[[], object]) -> None:
        """Have `recover` (the server's `ordering.recover_orphans`) run every ORPHAN_SWEEP
        seconds: a change of a crashed instance that no request meets would otherwise stay
        half done (a LOCK's lock on a resource never made refuses every PUT there, 423, until
        it expires), since that instance may never start again to recover it."""
        self.db.sweeps.append(recover)

    def adopt(self, claim: Claim) -> bool:
        if self.db.is_alive(claim.owner):
            return False
        with self.db.connection() as conn:
            cursor = conn.execute(
                "UPDATE claims SET owner = %s WHERE id = %s AND owner = %s",
                (self.owner, claim.id, claim.owner),
            )
            if cursor.rowcount != 1:
                return False
        with self._unreleased_guard:
            self._taken[claim.id] = self._failures_now()
        return True

    def retry_later(self, claim_id: str) -> bool:
        """After the recovery of an adopted claim failed: when the database was unavailable
        under it (not the recovery itself failing, nor an entry refused, which another
        attempt would meet again), abandon the claim again, for the next change that meets
        it or the next sweep to retry, and say so (True). Otherwise the claim stays with
        this instance, its paths closed to changes until it restarts."""
        with self._unreleased_guard:
            taken = self._taken.get(claim_id)
        if taken is None or taken[1] == self.db.outages():
            return False
        self.release(claim_id)  # abandons it: the database failed since it was adopted
        return True

    def orphans(self) -> list[Claim]:
        with self.db.connection() as conn:
            rows = conn.execute("SELECT id, owner FROM claims").fetchall()
        alive = {owner: self.db.is_alive(owner) for owner in {owner for _, owner in rows}}
        dead = {claim_id for claim_id, owner in rows if not alive[owner]}
        if not dead:
            return []
        with self.db.connection() as conn:
            return _load(conn, dead)

    def is_alive(self, owner: str) -> bool:
        return self.db.is_alive(owner)

    def close(self) -> None:
        self.db.close()


def _load(conn: psycopg.Connection[Any], ids: Iterable[str]) -> list[Claim]:
    return claims_of(
        conn.execute(
            "SELECT c.id, c.owner, c.intent, p.path, p.exclusive FROM claims c "
            "JOIN claim_paths p ON p.id = c.id WHERE c.id = ANY(%s) ORDER BY c.id, p.path",
            (sorted(ids),),
        )
    )
