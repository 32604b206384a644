"""The servers under test, each started as a child process on 127.0.0.1, and their memory.

Memory comes from /proc: `VmRSS` now and `VmHWM` (peak resident set) per process, summed over
the server's process tree (Apache runs a parent and several children). Before each measured
operation the peak is reset (`echo 5 > /proc/PID/clear_refs`), so "peak" is the peak during
that operation and "growth" is that peak minus the resident size just before it.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

APACHE = "/usr/sbin/apache2"
APACHE_MODULES = "/usr/lib/apache2/modules"
LAUNCH = str(Path(__file__).resolve().parent / "launch.py")
PROJECT = str(Path(__file__).resolve().parent.parent)
START_TIMEOUT = 30.0


class ServerError(Exception):
    """A server that would not start."""


def _children_of() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields follow the last ")".
        fields = stat[stat.rindex(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class ProcessTree:
    """Memory and CPU figures of a process and all its descendants."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def pids(self) -> list[int]:
        children = _children_of()
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def rss(self) -> int:
        """Resident bytes now."""
        return 1024 * sum(_status_kib(p, "VmRSS") for p in self.pids())

    def peak(self) -> int:
        """Peak resident bytes since the last `reset_peak` (or since the start)."""
        return 1024 * sum(_status_kib(p, "VmHWM") for p in self.pids())

    def cpu_seconds(self) -> float:
        """User and system CPU time used so far by the processes alive now."""
        ticks = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def reset_peak(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as handle:
                handle.write("5")


class Server:
    """A server process serving `root` on 127.0.0.1; `start()`, `stop()`, `memory`."""

    name = "server"

    def __init__(self, root: str, workdir: str) -> None:
        self.root = root
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = os.path.join(workdir, f"{self.name}.log")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def memory(self) -> ProcessTree:
        assert self.proc is not None
        return ProcessTree(self.proc.pid)

    def start(self) -> None:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def _spawn(self, argv: list[str], checkout: str | None = None) -> None:
        """Start `argv`; with `checkout`, importing that checkout's davserver (`python -m` puts
        the working folder first on the path, before PYTHONPATH: both are set)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        env = None if checkout is None else {**os.environ, "PYTHONPATH": checkout}
        try:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=checkout,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, killed as one in stop()
            )
        finally:
            log.close()

    def _read_port(self) -> int:
        """The `PORT n` line the launcher prints once it listens."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        if not line.startswith(b"PORT "):
            raise ServerError(f"{self.name} did not start; see {self.log_path}")
        return int(line.split()[1])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        # Whatever is left of the group (Apache's children, a stuck worker) goes now.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


class Davserver(Server):
    name = "davserver"

    def start(self) -> None:
        state = os.path.join(self.workdir, "davserver-state")
        self._spawn([sys.executable, LAUNCH, "davserver", self.root, state])
        self.port = self._read_port()

    def version(self) -> str:
        return engine_version(None)


class DavserverWorkers(Server):
    """davserver's default start (`davserver serve ROOT`): a worker process per CPU on one
    port (davserver.prefork), on the default engine, or on `engine` when set."""

    name = "davserver-workers"
    engine: str | None = None
    # Off like the peers' (no CustomLog in Apache's configuration, `access_log off` in nginx's).
    access_log = False
    # Another checkout's davserver to run (imported through PYTHONPATH), or None: this one's.
    checkout: str | None = None
    # Worker processes, or None for the default (one per CPU).
    workers: int | None = None

    def start(self) -> None:
        state = os.path.join(self.workdir, f"{self.name}-state")
        self.port = free_port()
        engine = () if self.engine is None else ("--engine", self.engine)
        self._spawn(
            [
                *(sys.executable, "-m", "davserver", "serve", self.root),
                *("--port", str(self.port), "--state-dir", state),
                "--access-log" if self.access_log else "--no-access-log",
                *("--log-level", "warning", *engine),
                *(() if self.workers is None else ("--workers", str(self.workers))),
            ],
            self.checkout,
        )
        # The command prints its URL once every worker listens; answering is enough here.
        _wait_until_answering(self, self.name)

    def version(self) -> str:
        return f"{engine_version(self.engine)} ({len(os.sched_getaffinity(0))} worker processes)"


def engine_version(engine: str | None) -> str:
    """davserver and the engine it runs on (`None`: the default engine)."""
    from importlib.metadata import version

    from davserver.config import Config

    engine = engine or Config().engine
    under = f"cheroot {version('cheroot')}"
    if engine == "httptools":
        under = f"httptools {version('httptools')} (llhttp)"
    return f"davserver {version('davserver')} on {under}"


class DavserverCheroot(DavserverWorkers):
    """The default start on the cheroot engine (`davserver serve ROOT --engine cheroot`)."""

    name = "davserver-cheroot"
    engine = "cheroot"


class Rclone(Server):
    """`rclone serve webdav ROOT` (Go's golang.org/x/net/webdav), anonymous."""

    name = "rclone"

    def start(self) -> None:
        self.port = free_port()
        self._spawn(["rclone", "serve", "webdav", self.root, "--addr", f"127.0.0.1:{self.port}"])
        _wait_until_answering(self, "rclone")

    def version(self) -> str:
        out = subprocess.run(
            ["rclone", "version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        return (out.splitlines() or ["rclone"])[0] + " serve webdav"


def rclone_available() -> bool:
    return shutil.which("rclone") is not None


NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
NGINX_DAV_EXT = "/usr/lib/nginx/modules/ngx_http_dav_ext_module.so"

NGINX_CONF = """\
# Written by bench/servers.py: a private nginx serving one folder with WebDAV.
{load_module}
daemon off;
master_process on;
worker_processes auto;
user root;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    # As Apache's MaxKeepAliveRequests 0: wrk's connections are never closed by the server.
    keepalive_requests 100000000;
    client_body_temp_path {workdir}/nginx-body;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            dav_methods PUT DELETE MKCOL COPY MOVE;
            {dav_ext}
            create_full_put_path on;
        }}
    }}
}}
"""


class NginxDav(Server):
    """nginx with its dav module and, when installed, dav-ext (PROPFIND, OPTIONS; Debian:
    libnginx-mod-http-dav-ext); a worker process per CPU."""

    name = "nginx"

    def start(self) -> None:
        assert NGINX is not None
        self.port = free_port()
        ext = os.path.exists(NGINX_DAV_EXT)
        conf = NGINX_CONF.format(
            load_module=f"load_module {NGINX_DAV_EXT};" if ext else "",
            dav_ext="dav_ext_methods PROPFIND OPTIONS;" if ext else "",
            workdir=self.workdir,
            port=self.port,
            root=self.root,
        )
        path = os.path.join(self.workdir, "nginx.conf")
        with open(path, "w") as handle:
            handle.write(conf)
        self._spawn([NGINX, "-p", self.workdir, "-c", path, "-e", self.log_path])
        _wait_until_accepting(self, f"nginx did not start; see {self.log_path}")

    @property
    def propfind(self) -> bool:
        return os.path.exists(NGINX_DAV_EXT)

    def version(self) -> str:
        assert NGINX is not None
        out = subprocess.run(
            [NGINX, "-v"], capture_output=True, text=True, timeout=10, check=False
        ).stderr
        ext = " + dav-ext" if self.propfind else " (no dav-ext: no PROPFIND)"
        return out.strip().split(":", 1)[-1].strip() + " dav" + ext


def nginx_available() -> bool:
    return NGINX is not None


class DavserverGunicorn(Server):
    """The same davserver app under gunicorn: 2 worker processes of 8 threads (gthread)."""

    name = "davserver-gunicorn"
    workers = 2
    threads = 8

    def start(self) -> None:
        state = os.path.join(self.workdir, "davserver-gunicorn-state")
        os.makedirs(state, exist_ok=True)
        self.port = free_port()
        self._spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--worker-class",
                "gthread",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--pythonpath",
                PROJECT,
                "--log-level",
                "warning",
                "--timeout",
                "300",
                f"bench.gunicorn_app:create({self.root!r}, {state!r})",
            ]
        )
        _wait_until_answering(self, "davserver-gunicorn")
        # ...and until every worker has forked, so that none is booting during a measurement.
        deadline = time.monotonic() + START_TIMEOUT
        while len(self.memory.pids()) < 1 + self.workers and time.monotonic() < deadline:
            time.sleep(0.05)

    def version(self) -> str:
        from importlib.metadata import version

        return (
            f"davserver {version('davserver')} on gunicorn {version('gunicorn')} "
            f"(gthread, {self.workers} workers x {self.threads} threads)"
        )


def gunicorn_available() -> bool:
    return importlib.util.find_spec("gunicorn") is not None


def _wait_until_accepting(server: Server, failure: str) -> None:
    """Poll until the server's port accepts a connection; ServerError(`failure`) if it exits
    or does not within START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert server.proc is not None
        if server.proc.poll() is not None:
            break
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", server.port), timeout=1),
        ):
            return
        time.sleep(0.05)
    raise ServerError(failure)


def _wait_until_answering(server: Server, what: str) -> None:
    """Poll until an OPTIONS on the server gets an answer (every worker may not be up yet,
    but one is, and the others are started by then or soon after)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert server.proc is not None
        if server.proc.poll() is not None:
            break
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            conn.request("OPTIONS", "/")
            if conn.getresponse().status < 500:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise ServerError(f"{what} did not start; see {server.log_path}")


class Wsgidav(Server):
    name = "wsgidav"

    def start(self) -> None:
        self._spawn([sys.executable, LAUNCH, "wsgidav", self.root])
        self.port = self._read_port()

    def version(self) -> str:
        from importlib.metadata import version

        return f"wsgidav {version('wsgidav')} on cheroot {version('cheroot')}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def apache_user() -> tuple[str, int, int] | None:
    """The user Apache's children run as when started by root (it refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("www-data")
    except KeyError:
        entry = pwd.getpwnam("nobody")
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def apache_available() -> bool:
    return os.access(APACHE, os.X_OK) and os.path.exists(
        os.path.join(APACHE_MODULES, "mod_dav_fs.so")
    )


APACHE_CONF = """\
# Written by bench/run.py: a private Apache with mod_dav_fs on one folder.
ServerRoot "{workdir}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{workdir}/apache.pid"
DefaultRuntimeDir "{workdir}/apache-run"
ErrorLog "{workdir}/apache.log"
LogLevel warn
{user}
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule mime_module {modules}/mod_mime.so
LoadModule dav_module {modules}/mod_dav.so
LoadModule dav_fs_module {modules}/mod_dav_fs.so
TypesConfig /etc/mime.types
# No access log (no CustomLog), like the Python servers. Keep-alive without a request cap,
# sendfile on (the usual production setting; Apache's default is off), no body size limit.
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5
Timeout 60
EnableSendfile On
LimitRequestBody 0
DavLockDB "{workdir}/apache-locks/DavLock"
DocumentRoot "{root}"
<Directory />
    Require all denied
    AllowOverride None
</Directory>
<Directory "{root}">
    Dav On
    DavDepthInfinity On
    Require all granted
    AllowOverride None
    Options None
</Directory>
"""


class Apache(Server):
    """httpd with mod_dav_fs (event MPM, its default process and thread counts)."""

    name = "apache"

    def start(self) -> None:
        self.port = free_port()
        user = apache_user()
        for sub in ("apache-run", "apache-locks"):
            path = os.path.join(self.workdir, sub)
            os.makedirs(path, exist_ok=True)
            if user is not None:
                os.chown(path, user[1], user[2])
        conf = APACHE_CONF.format(
            workdir=self.workdir,
            port=self.port,
            root=self.root,
            modules=APACHE_MODULES,
            user=f"User {user[0]}\nGroup #{user[2]}" if user else "",
        )
        conf_path = os.path.join(self.workdir, "apache.conf")
        with open(conf_path, "w") as handle:
            handle.write(conf)
        self._spawn([APACHE, "-f", conf_path, "-D", "FOREGROUND"])
        _wait_until_accepting(
            self, f"apache did not start; see {self.workdir}/apache.log and {self.log_path}"
        )

    def version(self) -> str:
        try:
            out = subprocess.run(
                [APACHE, "-v"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return "apache (unknown version)"
        first = out.splitlines()[0] if out else "apache"
        return first.split(":", 1)[-1].strip() + " mod_dav_fs, event MPM"


def apache_owner() -> tuple[int, int] | None:
    user = apache_user()
    return None if user is None else (user[1], user[2])


def wrk_path() -> str | None:
    return shutil.which("wrk")
