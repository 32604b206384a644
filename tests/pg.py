"""A real PostgreSQL server for the tests: initdb and pg_ctl in a temporary folder, listening on
a Unix socket only (no port to collide with), as an unprivileged user when the tests run as
root (PostgreSQL refuses to run as root). Each test gets a schema of its own, named in the URL's
search_path, so tests never see each other's rows and need no database of their own."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from urllib.parse import quote

import psycopg

USER = "davtest"
DATABASE = "davtest"


def _bin(name: str) -> str:
    """A PostgreSQL program: on PATH, or where Debian keeps every version's programs."""
    found = shutil.which(name)
    if found:
        return found
    versions = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    if not versions:
        raise RuntimeError(f"{name} not found: apt-get install postgresql")
    return max(versions, key=lambda p: float(p.split("/")[4]))


class PostgresServer:
    """One cluster for a test session; `schema_url()` hands out an empty schema each time."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="davpg-")
        self.data = os.path.join(self.folder, "data")
        self._as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._schemas = itertools.count()
        self._run(
            _bin("initdb"),
            "-D",
            self.data,
            "-U",
            USER,
            "--auth=trust",
            "--locale=C.UTF-8",
            "--encoding=UTF8",
            "--no-sync",
        )
        self.start()
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-k {self.folder} -c listen_addresses='' -c fsync=off -c max_connections=300"
        log = self.data + ".log"
        self._run(_bin("pg_ctl"), "-D", self.data, "-w", "-l", log, "-o", options, "start")

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", self.data, "-w", "-m", "fast", "stop")

    def freeze(self, frozen: bool) -> None:
        """Stop (SIGSTOP) or resume every process of the cluster: a server that answers
        nothing, as a stalled disk or a paused virtual machine makes it."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in [postmaster, *map(int, children)]:
            os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def admin_url(self) -> str:
        return f"postgresql:///postgres?host={quote(self.folder)}&user={USER}"

    def url(self) -> str:
        return f"postgresql:///{DATABASE}?host={quote(self.folder)}&user={USER}"

    def schema_url(self) -> str:
        """The URL of a new, empty schema in the test database."""
        name = f"t{next(self._schemas)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return self.url() + "&options=" + quote(f"-csearch_path={name}")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
