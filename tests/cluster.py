"""Several davserver instances as one server: three processes over one root (a folder or a
bucket) and one PostgreSQL database, each with a state folder of its own, and nginx spreading
requests over them round robin, as a load balancer would."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpers import free_port
from procs import ServerProcess
from test_proxy import nginx

# Round robin (nginx's default) over the three instances: every request may land on another.
UPSTREAM = """
    upstream davservers {{
        server 127.0.0.1:{0};
        server 127.0.0.1:{1};
        server 127.0.0.1:{2};
        keepalive 16;
    }}
"""
LOCATION = """
    location / {
        proxy_pass http://davservers;
        proxy_set_header Connection "";
        proxy_set_header Host $host:$server_port;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
"""
LITMUS_GROUPS = ("basic", "copymove", "props", "locks", "http")


@contextlib.contextmanager
def several(
    tmp_path: Path, url: str, *extra: str, root: str | None = None
) -> Iterator[list[ServerProcess]]:
    """Three instances over one root (`root`, or a new folder under `tmp_path`) and one
    database; on leaving, they are stopped and must have logged no error."""
    if root is None:
        (tmp_path / "root").mkdir()
    shared = tmp_path / "root" if root is None else root
    # Warnings (each 503 logs one) could fill the stderr pipe; errors are checked.
    args = ("--database", url, "--log-level", "error", *extra)

    def start(index: int) -> ServerProcess:
        return ServerProcess(shared, tmp_path / f"s{index}", *args, workers=1)  # type: ignore[arg-type]

    with ThreadPoolExecutor(3) as pool:
        started = list(pool.map(start, range(3)))
    logged = []
    try:
        yield started
    finally:
        for instance in started:
            assert instance.proc is not None
            instance.proc.terminate()
            stopped = instance.proc.wait(30)
            instance.stop()
            logged.append(instance.errors() + ("" if stopped == 0 else f"exit {stopped}"))
    assert logged == ["", "", ""]


@contextlib.contextmanager
def round_robin(workdir: Path, instances: list[ServerProcess]) -> Iterator[str]:
    """nginx in front of the three `instances`; yields its base URL."""
    port = free_port()
    upstream = UPSTREAM.format(*(instance.port for instance in instances))
    with nginx(workdir, port, LOCATION, None, upstream):
        yield f"http://127.0.0.1:{port}"


def assert_litmus_passed(report: str) -> None:
    """Every litmus group ran with nothing failed, warned about or skipped."""
    for group in LITMUS_GROUPS:
        line = next((ln for ln in report.splitlines() if ln.startswith(f"{group} (given)")), "")
        assert f"summary for `{group}'" in line and " 0 failed" in line, report
    problems = [
        ln.strip()
        for ln in report.splitlines()
        if ln.strip().startswith(("FAIL:", "WARNING:", "SKIPPED:"))
    ]
    assert problems == [], report
