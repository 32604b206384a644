"""Shared fixtures: a real davserver (its default engine) on a free loopback port over a temporary
root."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import s3server
from pg import PostgresServer

from davserver.config import Config, load
from davserver.server import DavServer, build_services, close_services
from davserver.services import Services

# The rfc4918(*ids) marker and its record of outcomes; server processes (two_processes).
pytest_plugins = ["rfc4918_plugin", "procs"]


class LiveServer:
    """A running davserver and an HTTP session to talk to it."""

    def __init__(self, root: Path, state: Path, overrides: dict[str, Any]) -> None:
        self.root = root
        self.state = state
        self.overrides = overrides
        self.session = requests.Session()
        self._server: DavServer | None = None
        self.start()

    @property
    def config(self) -> Config:
        assert self._server is not None
        return self._server.config

    @property
    def services(self) -> Services:
        assert self._server is not None
        return self._server.services

    def start(self, services: Services | None = None) -> None:
        config = load(
            None,
            {
                "root": str(self.root),
                "state_dir": str(self.state),
                "port": 0,
                "threads": 8,
                # Tests reach the server over plain HTTP on loopback, where Basic needs
                # "always"; the default ("https") has tests of its own (test_auth.py).
                "basic": "always",
                **self.overrides,
            },
        )
        self._server = DavServer(config, services)
        self._server.start()
        self._server.serve_in_thread()
        self.base = self._server.url.rstrip("/")
        self.port = self._server.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.session.close()
        self.session = requests.Session()

    def restart(self) -> None:
        """A new server process-equivalent on the same root and state (the port may change)."""
        self.stop()
        self.start()

    def url(self, path: str) -> str:
        return self.base + path

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url(path), **kwargs)

    def raw(self, data: bytes, read: bool = True, timeout: float = 10) -> bytes:
        """Send raw bytes on a new connection; return everything the server answers."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(data)
            if not read:
                return b""
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """A factory for servers with configuration overrides; all are stopped afterwards."""
    started: list[LiveServer] = []

    def factory(**overrides: Any) -> LiveServer:
        index = len(started)
        root = tmp_path / f"root{index}"
        state = tmp_path / f"state{index}"
        root.mkdir()
        live = LiveServer(root, state, overrides)
        started.append(live)
        return live

    yield factory
    for live in started:
        live.stop()


@pytest.fixture
def server(make_server: Callable[..., LiveServer]) -> LiveServer:
    return make_server()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """Provider and stores without HTTP, for tests of the layers below the app."""
    config = load(None, {"root": str(tmp_path / "root"), "state_dir": str(tmp_path / "state")})
    built = build_services(config)
    yield built
    close_services(built)


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3server.S3Store]:
    """A real S3 store (SeaweedFS) for the whole run, started by the first test needing it."""
    with s3server.running(tmp_path_factory.mktemp("s3")) as store:
        yield store


@pytest.fixture
def s3_server(make_server: Callable[..., LiveServer], s3_store: s3server.S3Store) -> LiveServer:
    """A live server whose root is a new, empty prefix of the S3 store."""
    return make_server(root=s3_store.new_root(), s3_endpoint=s3_store.endpoint)


# The variables that lead a program to the user's own files.
HOME_VARIABLES = {
    "HOME": "",
    "XDG_CONFIG_HOME": ".config",
    "XDG_STATE_HOME": ".local/state",
    "XDG_DATA_HOME": ".local/share",
    "XDG_CACHE_HOME": ".cache",
}


@pytest.fixture(scope="session", autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home folder of the test run's own, for every test and every program a test starts:
    the suite neither reads nor writes the real one, and runs the same for any user."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        for name, below in HOME_VARIABLES.items():
            patch.setenv(name, str(home / below) if below else str(home))
        yield home


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (tests/pg.py), stopped at its end."""
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A database URL whose schema is new and empty."""
    return postgres.schema_url()
