"""Wiring: configuration -> provider, stores and app -> cheroot. Nothing protocol-specific."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

from .app import DavApp
from .auth import Authenticator, Rule, default_policy, load_secret
from .config import Config, ConfigError
from .httpd import DeferredTLSAdapter, ElasticServer
from .llhttpd import MAX_HEAD, LlhttpServer
from .ordering import recover_orphans
from .origin import Site
from .passwords import Users
from .provider.base import Provider
from .provider.fs import FilesystemProvider
from .provider.s3 import S3Provider, is_s3_root
from .services import Services
from .store.base import ClaimStore, LockStore, PropertyStore
from .store.sqlite import Database, SqliteLockStore, SqlitePropertyStore
from .store.sqlite_claims import SqliteClaimStore
from .store.sqlite_nonces import SqliteNonceCounts

log = logging.getLogger("davserver")

STORE_FILE = "davserver.sqlite3"
CLAIMS_FILE = "claims.sqlite3"
NONCES_FILE = "nonces.sqlite3"
# Idle kept-alive connections (and new ones awaiting their first byte) per process.
KEEP_ALIVE_CONNECTIONS = 1024


@contextlib.contextmanager
def _naming(option: str, value: str) -> Iterator[None]:
    """Turn a failure to use a configured file or folder into a ConfigError naming it."""
    try:
        yield
    except (OSError, UnicodeDecodeError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{option} {value!r}: {reason}") from exc


def _provider(config: Config) -> Provider:
    """The storage `[storage] root` names: a bucket (s3://) or a folder."""
    if is_s3_root(config.root):
        try:
            return S3Provider(config.root, config.s3_endpoint, config.s3_region)
        except ImportError as exc:  # boto3 is the optional extra "s3"
            raise ConfigError("[storage] root: s3:// needs pip install 'davserver[s3]'") from exc
        except ValueError as exc:
            raise ConfigError(f"[storage] root {config.root!r}: {exc}") from exc
    if os.path.exists(config.root) and not os.path.isdir(config.root):
        raise NotADirectoryError(20, "not a folder")
    return FilesystemProvider(config.root)


def build_services(config: Config) -> Services:
    """The provider, stores, users and access rules a configuration describes; raises
    ConfigError naming the option when a configured file or folder cannot be used."""
    with _naming("[storage] root", config.root):
        provider = _provider(config)
    state = config.resolved_state_dir()
    stores = _shared_stores(config.database) if config.database else _local_stores(state)
    authenticator = None
    if config.htpasswd:
        with _naming("[auth] htpasswd / digest_file", config.htpasswd):
            users = Users(config.htpasswd, config.digest_file)
        with _naming("[storage] state_dir", state):
            secret = load_secret(state)
            counts = SqliteNonceCounts(os.path.join(state, NONCES_FILE), config.nonce_lifetime)
        authenticator = Authenticator(
            users,
            config.realm,
            basic=config.basic,
            digest=bool(config.digest_file),
            secret=secret,
            nonce_lifetime=config.nonce_lifetime,
            counts=counts,
        )
    rules = [Rule(path, user, level) for path, user, level in config.access]  # type: ignore[arg-type]
    policy = default_policy(authenticator is not None, config.anonymous, rules)
    site = site_of(config)
    return Services(
        config,
        provider,
        *stores,
        policy=policy,
        authenticator=authenticator,
        site=site,
    )


def _local_stores(state: str) -> tuple[PropertyStore, LockStore, ClaimStore, Callable[[], float]]:
    """Properties, locks and claims in SQLite files in the state folder (one machine)."""
    with _naming("[storage] state_dir", state):
        db = Database(os.path.join(state, STORE_FILE))
        claims = SqliteClaimStore(os.path.join(state, CLAIMS_FILE))
    return SqlitePropertyStore(db), SqliteLockStore(db), claims, time.time


def _shared_stores(url: str) -> tuple[PropertyStore, LockStore, ClaimStore, Callable[[], float]]:
    """Properties, locks and claims in PostgreSQL, shared by every instance, with the
    database's clock deciding lock expiry for all of them."""
    try:
        import psycopg

        from .store import postgresql
    except ImportError as exc:
        raise ConfigError(
            "[storage] database: needs the PostgreSQL driver: pip install 'davserver[postgresql]'"
        ) from exc
    try:
        db = postgresql.PostgresDatabase(url)
    except (psycopg.Error, postgresql.SchemaTooNew) as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise ConfigError(f"[storage] database {postgresql.masked(url)}: {reason}") from exc
    return (
        postgresql.PostgresPropertyStore(db),
        postgresql.PostgresLockStore(db),
        postgresql.PostgresClaimStore(db),
        db.clock,
    )


def _cheroot(config: Config, app: DavApp, reuse_port: bool) -> ElasticServer:
    """cheroot, adjusted (davserver.httpd): Python parsing, a thread per request."""
    httpd = ElasticServer(
        (config.host, config.port),
        app,
        numthreads=config.threads,
        max=max(config.max_threads, config.threads),
        timeout=config.request_timeout,
        header_timeout=config.header_timeout,
        server_name="davserver",
        request_queue_size=128,
        # Worker processes (davserver.prefork) each listen on the port.
        reuse_port=reuse_port,
    )
    # Headers are small; refuse a flood of them early. Bodies are bounded per method.
    httpd.max_request_header_size = MAX_HEAD
    # cheroot keeps at most 10 idle connections by default and closes the rest after
    # their answer; clients then reconnect for every request. Idle ones hold no thread,
    # and new connections wait among them for their first byte (httpd.process_conn).
    httpd.keep_alive_conn_limit = KEEP_ALIVE_CONNECTIONS
    if config.tls():
        httpd.ssl_adapter = DeferredTLSAdapter(config.cert, config.key)
    return httpd


def _httptools(config: Config, app: DavApp, listener: socket.socket | None) -> LlhttpServer:
    """davserver.llhttpd: llhttp's parsing, connections waiting in epoll; on `listener`, a
    socket shared with other worker processes, or on one of its own."""
    tls = None
    if config.tls():
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(config.cert, config.key)
    return LlhttpServer(
        (config.host, config.port),
        app,
        threads=config.threads,
        max_threads=config.max_threads,
        request_timeout=config.request_timeout,
        header_timeout=config.header_timeout,
        tls=tls,
        listener=listener,
        shortcut=app.shortcut,
    )


class DavServer:
    """The app served by the configured engine; `start()` binds, `serve()` blocks, `stop()`
    ends it.

    As one of several worker processes (davserver.prefork), the httptools engine accepts on
    `listener`, the listening socket they share, and cheroot binds its own (`reuse_port`)."""

    def __init__(
        self,
        config: Config,
        services: Services | None = None,
        *,
        reuse_port: bool = False,
        listener: socket.socket | None = None,
    ) -> None:
        self.config = config
        self.services = services or build_services(config)
        self.app = DavApp(self.services)
        self.httpd: ElasticServer | LlhttpServer
        if config.engine == "cheroot":
            self.httpd = _cheroot(config, self.app, reuse_port)
        else:
            self.httpd = _httptools(config, self.app, listener)

    def start(self) -> None:
        """Finish or undo the changes a crash interrupted, bind the listening socket (after
        which `port` is the real port), and sweep away uploads a crash left behind, in the
        background (a large share takes a while)."""
        recovered = recover_orphans(self.services)
        if recovered:
            log.info("finished or undid %d changes interrupted by a crash", recovered)
        recover_later = getattr(self.services.claims, "recover_in_background", None)
        if recover_later is not None:
            # Claims shared by instances: one that crashed may never start again.
            recover_later(lambda: recover_orphans(self.services))
        self.httpd.prepare()
        # What a crash left: temporary files on a disk, unfinished uploads in a bucket.
        sweep = getattr(self.services.provider, "sweep_temp_files", None)
        if sweep is not None:
            threading.Thread(target=sweep, name="sweep", daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.httpd.bind_addr[1])

    @property
    def public_url(self) -> str:
        return urls(self.config, self.port, self.services.site)[1]

    @property
    def url(self) -> str:
        return urls(self.config, self.port, self.services.site)[0]

    def serve(self) -> None:
        self.httpd.serve()

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve, name="davserver", daemon=True)
        thread.start()
        return thread

    def serve_until(self, stopping: StopSignals) -> None:
        """Serve in a thread until a stop signal comes (`stopping`) or serving ends.

        The caller's thread only waits: a signal handler that raised instead could land
        inside a lock (cheroot's, logging's) and leave it held, and `stop()` would then wait
        for it forever."""
        serving = self.serve_in_thread()
        while not stopping.wait(1.0) and serving.is_alive():
            pass

    def stop(self) -> None:
        """Stop serving, then close the provider and the stores (their files and threads)."""
        self.httpd.stop()
        close_services(self.services)


class StopSignals:
    """SIGTERM, and SIGINT unless it is ignored (as for `cmd &`, whose Ctrl-C is meant for the
    shell's foreground job), noted for `wait()`. Made once per process, in its main thread.

    The interpreter's own C handler notes them, writing each one's number to a pipe
    (signal.set_wakeup_fd), in whichever thread the kernel picked; the Python handler does
    nothing. A handler that set a threading.Event took the Event's lock, which is not
    reentrant: Ctrl-C reaches a worker and its parent at once, the parent's SIGTERM follows,
    and its handler, run in the main thread while the SIGINT handler held that lock (or while
    `Event.wait()` did), waited for it forever."""

    def __init__(self) -> None:
        # Never closed: the interpreter writes to `noted` for as long as the process runs, and
        # a number closed and reused would send signal numbers into another file.
        self._pending, noted = os.pipe()
        os.set_blocking(noted, False)
        self._signals = {int(signal.SIGTERM)}
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._signals.add(int(signal.SIGINT))
        signal.set_wakeup_fd(noted, warn_on_full_buffer=False)
        for signum in self._signals:
            signal.signal(signum, _noted)
        self._poll = select.poll()
        self._poll.register(self._pending, select.POLLIN)
        self._stopping = False

    def wait(self, timeout: float) -> bool:
        """Whether a stop signal has come, waiting for one up to `timeout` seconds."""
        if not self._stopping and self._poll.poll(timeout * 1000):
            # Other signals with a Python handler are written there too.
            self._stopping = any(n in self._signals for n in os.read(self._pending, 256))
        return self._stopping


def _noted(_signum: int, _frame: FrameType | None) -> None:
    """The stop signals' Python handler: StopSignals's pipe has the signal already. (Without
    one, SIGTERM would end the process at once, and no number would be written.)"""


def site_of(config: Config) -> Site:
    """The public origin and prefix the [proxy] options describe."""
    return Site.create(config.public_url, config.prefix, config.prefix_mode, config.trusted_proxies)


def urls(config: Config, port: int, site: Site) -> tuple[str, str]:
    """The address served on `port`, and the URL clients use: the configured public one, or
    that address (with the prefix, when requests carry it)."""
    host = config.host
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):  # noqa: S104 - only naming it
        shown = "127.0.0.1"
    scheme = "https" if config.tls() else "http"
    url = f"{scheme}://{shown}:{port}/"
    if site.public_host:
        return url, f"{site.public_scheme}://{site.public_host}{site.prefix}/"
    if site.mode == "keep":
        return url, url.rstrip("/") + site.prefix + "/"
    return url, url


def close_services(services: Services) -> None:
    """Release what `build_services` opened."""
    parts = (services.provider, services.props, services.locks, services.claims)
    for part in (*parts, services.authenticator):
        close = getattr(part, "close", None)
        if close is not None:
            close()
