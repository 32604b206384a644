"""Wiring: configuration -> provider, stores and app -> cheroot. Nothing protocol-specific."""

from __future__ import annotations

import logging
import os
import threading

from cheroot import wsgi

from .app import DavApp
from .config import Config
from .provider.fs import FilesystemProvider
from .services import Services
from .store.sqlite import Database, SqliteLockStore, SqlitePropertyStore

log = logging.getLogger("davserver")

STORE_FILE = "davserver.sqlite3"


def build_services(config: Config) -> Services:
    """The provider and stores a configuration describes."""
    provider = FilesystemProvider(config.root)
    db = Database(os.path.join(config.resolved_state_dir(), STORE_FILE))
    return Services(config, provider, SqlitePropertyStore(db), SqliteLockStore(db))


class DavServer:
    """The app served by cheroot; `start()` binds, `serve()` blocks, `stop()` ends it."""

    def __init__(self, config: Config, services: Services | None = None) -> None:
        self.config = config
        self.services = services or build_services(config)
        self.app = DavApp(self.services)
        self.httpd = wsgi.Server(
            (config.host, config.port),
            self.app,
            numthreads=config.threads,
            timeout=config.request_timeout,
            server_name="davserver",
            request_queue_size=128,
        )
        # Headers are small; refuse a flood of them early. Bodies are bounded per method.
        self.httpd.max_request_header_size = 64 * 1024

    def start(self) -> None:
        """Bind the listening socket (after which `port` is the real port)."""
        self.httpd.prepare()

    @property
    def port(self) -> int:
        return int(self.httpd.bind_addr[1])

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        if host in ("0.0.0.0", "::"):  # noqa: S104 - only naming it
            shown = "127.0.0.1"
        return f"http://{shown}:{self.port}/"

    def serve(self) -> None:
        self.httpd.serve()

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve, name="davserver", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.httpd.stop()
