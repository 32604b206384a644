"""Profile davserver on one benchmark case, to find where the time goes.

    .venv/bin/python bench/profiling.py propfind        # PROPFIND Depth 1 allprop, 10,000 files
    .venv/bin/python bench/profiling.py get             # GET of a 4 KiB file, wrk -c2
    .venv/bin/python bench/profiling.py batch           # JSON batch POST deleting 1,000 files
    .venv/bin/python bench/profiling.py propfind --tool pyinstrument [--flat]

`--tool py-spy` (default) samples the real server subprocess (cheroot included) while the load
runs, and prints the functions with the most samples: "self" (the function was on top of the
stack) and "total" (anywhere on the stack), as a share of all non-idle samples. `--tool
pyinstrument` calls the WSGI app (`create_app(build_services(config))`) in-process in a loop
(no HTTP, no cheroot) and prints pyinstrument's call tree, or with `--flat` the functions by
their own (self) time. For `batch`, the 1,000 files are written before each call with the
profiler paused. pyinstrument comes with the dev extra; py-spy does not (`.venv/bin/pip
install py-spy`). py-spy attaches with ptrace: run as root or allow it
(`kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import client, data, servers

BATCH_FILES = 1_000

ALLPROP = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
)


def _build(workdir: str, files: int) -> str:
    root = os.path.join(workdir, "root")
    data._write_folder(os.path.join(root, "f-big"), files)
    with open(os.path.join(root, "small.bin"), "wb") as out:
        out.write(os.urandom(data.SMALL_SIZE))
    return root


def _batch_files(root: str, round_: int) -> bytes:
    """Write BATCH_FILES small files under `root`/batch-N/; the JSON batch deleting them."""
    folder = f"batch-{round_}"
    os.makedirs(os.path.join(root, folder))
    payload = os.urandom(data.SMALL_SIZE)
    operations = []
    for i in range(BATCH_FILES):
        with open(os.path.join(root, folder, f"f{i:04d}"), "wb") as out:
            out.write(payload)
        operations.append({"op": "delete", "path": f"{folder}/f{i:04d}"})
    os.sync()  # as bench/run.py does: the files are on disk, not only in the page cache
    return json.dumps({"operations": operations}).encode()


def _check_batch(body: bytes) -> None:
    summary = json.loads(body).get("summary", {})
    if summary.get("succeeded") != BATCH_FILES:
        raise client.BenchError(f"batch: {summary}")


def _drive(case: str, server: servers.Server, seconds: float, files: int) -> int:
    """Load the server for `seconds`; returns how many requests were made."""
    if case == "batch":
        deadline = time.monotonic() + seconds
        count = 0
        while time.monotonic() < deadline:
            body = _batch_files(server.root, int(time.monotonic() * 1000))
            conn = client.connect(server.port)
            result = client.timed_request(
                conn,
                "POST",
                "/",
                body,
                {"Content-Type": "application/json"},
                keep_body=True,
            )
            conn.close()
            _check_batch(result.body)
            count += 1
        return count
    if case == "get":
        wrk = servers.wrk_path()
        if wrk:
            load = client.run_wrk(wrk, f"{server.base}/small.bin", 2, seconds)
        else:
            load = client.run_threaded_load(server.port, "/small.bin", 2, seconds)
        return load.requests
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        conn = client.connect(server.port)
        result = client.timed_request(
            conn, "PROPFIND", "/f-big/", ALLPROP, {"Depth": "1"}, count_responses=True
        )
        conn.close()
        if result.responses != files + 1:
            raise client.BenchError(f"{result.responses} responses")
        count += 1
    return count


# Leaf frames of threads that wait rather than work (py-spy does not see all of them as idle:
# cheroot's workers wait on a queue with a timeout, the connection manager in select()).
IDLE_LEAVES = (
    "Condition.wait (threading.py",
    "Event.wait (threading.py",
    "EpollSelector.select (selectors.py",
    "Queue.get (queue.py",
)


def hot_spots(raw: str, top: int) -> str:
    """Self and total sample shares per function from py-spy's raw (collapsed) output, waiting
    threads left out."""
    own: collections.Counter[str] = collections.Counter()
    anywhere: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[-1].startswith(IDLE_LEAVES):
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            anywhere[frame] += count
    if not total:
        return "no samples (is py-spy allowed to attach?)"
    out = [f"{total} samples of working threads", "", "self %  function (file:line)"]
    out += [f"{100 * n / total:6.1f}  {f}" for f, n in own.most_common(top)]
    out += ["", "total %  function (file:line)"]
    out += [f"{100 * n / total:6.1f}  {f}" for f, n in anywhere.most_common(top * 3)]
    return "\n".join(out)


def profile_py_spy(
    case: str, seconds: float, files: int, top: int, lines: bool, spy_flags: list[str]
) -> None:
    spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    workdir = tempfile.mkdtemp(prefix="davprof-")
    server = servers.Davserver(_build(workdir, files), workdir)
    try:
        server.start()
        _drive(case, server, 1.0, files)  # warm up
        assert server.proc is not None
        raw_path = os.path.join(workdir, "profile.txt")
        spy_proc = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(server.proc.pid),
                "--rate",
                "250",
                "--format",
                "raw",
                *([] if lines else ["--function"]),
                *spy_flags,
                "--duration",
                str(round(seconds)),
                "--output",
                raw_path,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(0.5)
            requests = _drive(case, server, seconds - 0.5, files)
            _, err = spy_proc.communicate(timeout=seconds + 60)
        finally:
            if spy_proc.poll() is None:
                spy_proc.kill()
                spy_proc.wait()
        if not os.path.exists(raw_path):
            raise SystemExit(f"py-spy wrote nothing: {err.decode(errors='replace')}")
        print(f"{case}: {requests} requests in {seconds - 0.5:.1f} s under py-spy")
        print(hot_spots(Path(raw_path).read_text(), top))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _environ(method: str, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "REQUEST_URI": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for key, value in headers.items():
        name = key.upper().replace("-", "_")
        # WSGI (PEP 3333) gives these two without the HTTP_ prefix.
        env[name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name] = value
    return env


def profile_pyinstrument(case: str, seconds: float, files: int, flat: bool) -> None:
    from pyinstrument import Profiler

    from davserver.app import create_app
    from davserver.config import load
    from davserver.server import build_services

    workdir = tempfile.mkdtemp(prefix="davprof-")
    try:
        root = _build(workdir, files)
        config = load(None, {"root": root, "state_dir": os.path.join(workdir, "state")})
        app = create_app(build_services(config))
        rounds = iter(range(1_000_000))

        def prepare() -> dict[str, Any]:
            """The environ of the next call (for `batch`, its files written first)."""
            if case == "get":
                return _environ("GET", "/small.bin", b"", {})
            if case == "batch":
                body = _batch_files(root, next(rounds))
                return _environ("POST", "/", body, {"Content-Type": "application/json"})
            return _environ("PROPFIND", "/f-big/", ALLPROP, {"Depth": "1"})

        def call(env: dict[str, Any]) -> Iterator[bytes]:
            body = app(env, lambda status, headers, exc_info=None: None)
            try:
                yield from body
            finally:
                getattr(body, "close", lambda: None)()

        def run(env: dict[str, Any]) -> None:
            answer = b"".join(call(env))
            if case == "batch":
                _check_batch(answer)

        run(prepare())  # warm up
        profiler = Profiler(interval=0.0005)
        count = 0
        spent = 0.0
        while spent < seconds:
            env = prepare()  # untimed, unprofiled
            started = time.perf_counter()
            profiler.start()
            run(env)
            profiler.stop()
            spent += time.perf_counter() - started
            count += 1
        print(
            f"{case}: {count} in-process calls in {spent:.1f} s under pyinstrument "
            f"({1000 * spent / count:.1f} ms per call, profiler overhead included)"
        )
        print(profiler.output_text(unicode=True, color=False, show_all=False, flat=flat))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/profiling.py", description=__doc__.split("\n")[0])
    parser.add_argument("case", choices=("propfind", "get", "batch"))
    parser.add_argument("--tool", choices=("py-spy", "pyinstrument"), default="py-spy")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--files", type=int, default=10_000, help="files in the folder")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--flat", action="store_true", help="pyinstrument: functions by self time, not a tree"
    )
    parser.add_argument(
        "--lines", action="store_true", help="py-spy: per line, not per function (first line)"
    )
    parser.add_argument(
        "--spy-flags",
        default="--idle --nonblocking",
        help="extra py-spy record flags (default: --idle --nonblocking; waiting threads are "
        "then left out here by their leaf frame)",
    )
    args = parser.parse_args(argv)
    if args.tool == "py-spy":
        profile_py_spy(
            args.case, args.seconds, args.files, args.top, args.lines, args.spy_flags.split()
        )
    else:
        profile_pyinstrument(args.case, args.seconds, args.files, args.flat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
