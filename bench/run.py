"""Benchmark davserver beside wsgidav 4.4 and Apache httpd mod_dav_fs on the same data.

Run from the project folder, with the project's virtualenv:

    .venv/bin/python bench/run.py                  # default sizes, 5 rounds (~4 min on 2 cores)
    .venv/bin/python bench/run.py --quick          # smoke run: small data, 2 rounds (~30 s)
    .venv/bin/python bench/run.py --large          # also Depth: infinity over ~100,000 entries
    .venv/bin/python bench/run.py --big-size 1G    # large GET/PUT with a 1 GiB file
    .venv/bin/python bench/run.py --write-results  # also rewrite the table in bench/RESULTS.md

It builds the data in a temporary folder, starts each server as a child process on 127.0.0.1
(davserver and wsgidav through bench/launch.py, Apache with a private config when
/usr/sbin/apache2 exists), and for every figure runs one untimed warm-up per server, then
`--rounds` rounds alternating between the servers (A B C A B C ...). It prints a markdown table
(median, min-max spread, ratio to davserver, peak server memory) and writes every sample to
bench/results-<date>.json. All servers are stopped, and the temporary folder removed, on exit.
See bench/README.md for what each figure measures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import client, data, report, servers
from bench.client import BenchError, Timed
from bench.report import Figure
from bench.servers import Server
from davserver.provider.fs import TRASH_NAME

BENCH_DIR = Path(__file__).resolve().parent
# What a failing server or client run raises; it becomes a warning, and the run goes on.
MEASURE_ERRORS = (BenchError, OSError, http.client.HTTPException, subprocess.SubprocessError)
PROP_NS = "urn:x-davserver-bench:"
SERVERS = ("davserver", "davserver-workers", "davserver-gunicorn", "wsgidav", "apache")

ALLPROP = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
)
PROP2 = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/></D:prop>'
    b"</D:propfind>"
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Settings:
    rounds: int
    sizes: data.Sizes
    load_seconds: float
    wrk: str | None
    servers: list[str]
    only: list[str] = field(default_factory=list)


@dataclass
class Scenario:
    """Something measured once per server per round, giving samples for one or more figures.

    `measure(server, round)` returns {figure id: {metric: value}}; server memory is added by
    the runner. `setup(server)` runs once per server before the warm-up.
    """

    figures: list[Figure]
    measure: Callable[[Server, int], dict[str, dict[str, float]]]
    setup: Callable[[Server], None] | None = None
    warmup: bool = True
    # Flush the page cache's dirty data before each measurement, so that one server's
    # writeback does not land in the next one's time.
    sync: bool = False
    # The servers that can do it (empty: all), e.g. the batch endpoint is davserver's own.
    servers: tuple[str, ...] = ()

    def runs_on(self, server: Server) -> bool:
        return not self.servers or server.name in self.servers


# -- measurements ---------------------------------------------------------------------------------


def _propfind(
    server: Server,
    path: str,
    body: bytes,
    depth: str,
    expected: int,
    marker: bytes | None = None,
    expected_hits: int = 0,
) -> dict[str, float]:
    conn = client.connect(server.port)
    try:
        result = client.timed_request(
            conn,
            "PROPFIND",
            path,
            body=body,
            headers={"Depth": depth, "Content-Type": 'application/xml; charset="utf-8"'},
            count_responses=True,
            marker=marker,
        )
    finally:
        conn.close()
    client.expect(result, [207], f"{server.name} PROPFIND {path}")
    if result.responses != expected:
        raise BenchError(
            f"{server.name} PROPFIND {path}: {result.responses} responses, expected {expected}"
        )
    if marker is not None and result.marker_hits != expected_hits:
        raise BenchError(
            f"{server.name} PROPFIND {path}: {result.marker_hits} dead property values, "
            f"expected {expected_hits}"
        )
    return {"time": result.total, "ttfb": result.ttfb, "bytes": result.size}


def propfind_scenario(
    fid: str,
    title: str,
    path: str,
    body: bytes,
    depth: str,
    expected: int,
    marker: bytes | None = None,
    expected_hits: int = 0,
    setup: Callable[[Server], None] | None = None,
) -> Scenario:
    notes = ("ttfb",) if depth == "infinity" else ()
    fig = Figure(fid, title, "time", "s", "lower", notes)

    def measure(server: Server, _round: int) -> dict[str, dict[str, float]]:
        return {fid: _propfind(server, path, body, depth, expected, marker, expected_hits)}

    return Scenario([fig], measure, setup)


def proppatch_body(index: int, count: int) -> bytes:
    props = "".join(
        f"<B:p{i:03d}>value v{i:03d} of {data.file_name(index)}</B:p{i:03d}>" for i in range(count)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<D:propertyupdate xmlns:D="DAV:" xmlns:B="{PROP_NS}"><D:set><D:prop>{props}'
        "</D:prop></D:set></D:propertyupdate>"
    ).encode()


def set_dead_properties(sizes: data.Sizes) -> Callable[[Server], None]:
    """PROPPATCH every file of /props/ with `props_per_file` properties (4 connections)."""

    def setup(server: Server) -> None:
        started = time.perf_counter()
        conns: dict[int, Any] = {}

        def job(index: int) -> Callable[[], None]:
            def run() -> None:
                key = threading.get_ident()
                conn = conns.get(key)
                if conn is None:
                    conn = conns[key] = client.connect(server.port, timeout=60)
                result = client.timed_request(
                    conn,
                    "PROPPATCH",
                    f"/props/{data.file_name(index)}",
                    body=proppatch_body(index, sizes.props_per_file),
                    headers={"Content-Type": 'application/xml; charset="utf-8"'},
                    marker=b"HTTP/1.1 200",
                )
                client.expect(result, [207], f"{server.name} PROPPATCH")
                if result.marker_hits != 1:
                    raise BenchError(f"{server.name} PROPPATCH did not answer 200 for all")

            return run

        try:
            client.parallel([job(i) for i in range(sizes.props_files)], workers=4)
        finally:
            for conn in conns.values():
                conn.close()
        log(
            f"  {server.name}: {sizes.props_files} PROPPATCH x {sizes.props_per_file} "
            f"properties in {time.perf_counter() - started:.1f} s"
        )

    return setup


def load_scenario(settings: Settings, connections: int) -> Scenario:
    fid = f"get-small-c{connections}"
    fig = Figure(
        fid,
        f"GET 4 KiB file, {connections} connections",
        "rate",
        "req/s",
        "higher",
        ("p99", "errors"),
    )

    def measure(server: Server, _round: int) -> dict[str, dict[str, float]]:
        if settings.wrk:
            load = client.run_wrk(
                settings.wrk, f"{server.base}/small.bin", connections, settings.load_seconds
            )
        else:
            load = client.run_threaded_load(
                server.port, "/small.bin", connections, settings.load_seconds
            )
        return {
            fid: {
                "rate": load.requests_per_s,
                "p50": load.p50,
                "p99": load.p99,
                "errors": float(load.errors),
                "requests": float(load.requests),
            }
        }

    return Scenario([fig], measure, warmup=False)


def big_get_scenario(size: int) -> Scenario:
    label = _size_label(size)
    fig = Figure("get-big", f"GET {label} file", "rate", "MB/s", "higher")

    def measure(server: Server, _round: int) -> dict[str, dict[str, float]]:
        conn = client.connect(server.port)
        try:
            result = client.timed_request(conn, "GET", "/big.bin")
        finally:
            conn.close()
        client.expect(result, [200], f"{server.name} GET /big.bin")
        if result.size != size:
            raise BenchError(f"{server.name} GET /big.bin: {result.size} bytes, expected {size}")
        return {"get-big": {"rate": size / result.total / 1e6, "time": result.total}}

    return Scenario([fig], measure)


def big_put_scenario(size: int, source: str) -> Scenario:
    label = _size_label(size)
    fig = Figure("put-big", f"PUT {label} file (new file)", "rate", "MB/s", "higher")

    def measure(server: Server, round_: int) -> dict[str, dict[str, float]]:
        path = f"/upload-{round_}.bin"
        conn = client.connect(server.port)
        try:
            with open(source, "rb") as body:
                result = client.timed_request(
                    conn,
                    "PUT",
                    path,
                    body=body,
                    headers={
                        "Content-Length": str(size),
                        "Content-Type": "application/octet-stream",
                    },
                )
        finally:
            conn.close()
        client.expect(result, [200, 201, 204], f"{server.name} PUT {path}")
        _delete(server, path)
        return {"put-big": {"rate": size / result.total / 1e6, "time": result.total}}

    return Scenario([fig], measure, sync=True)


def _delete(server: Server, path: str) -> Timed:
    conn = client.connect(server.port)
    try:
        result = client.timed_request(conn, "DELETE", path)
    finally:
        conn.close()
    return client.expect(result, [200, 204], f"{server.name} DELETE {path}")


def tree_scenario(sizes: data.Sizes) -> Scenario:
    folders, per_folder = sizes.put_tree
    files = folders * per_folder
    put_fig = Figure(
        "put-tree",
        f"MKCOL {folders} + PUT {files:,} files of 4 KiB (one connection)",
        "time",
        "s",
        "lower",
        ("files_per_s",),
    )
    copy_fig = Figure(
        "copy-tree",
        f"COPY Depth infinity of that tree ({files + folders + 1:,} resources)",
        "time",
        "s",
        "lower",
    )
    delete_fig = Figure(
        "delete-tree",
        f"DELETE of that tree ({files + folders + 1:,} resources)",
        "time",
        "s",
        "lower",
    )
    payload = os.urandom(data.SMALL_SIZE)

    def measure(server: Server, round_: int) -> dict[str, dict[str, float]]:
        top = f"/puttree-{round_}"
        copy = f"/puttree-{round_}-copy"
        conn = client.connect(server.port, timeout=60)
        try:
            started = time.perf_counter()
            client.expect(client.timed_request(conn, "MKCOL", top + "/"), [201], "MKCOL")
            for d in range(folders):
                folder = f"{top}/d{d:02d}/"
                client.expect(client.timed_request(conn, "MKCOL", folder), [201], "MKCOL")
                for f in range(per_folder):
                    result = client.timed_request(
                        conn,
                        "PUT",
                        f"{folder}{data.file_name(f)}",
                        body=payload,
                        headers={"Content-Type": "application/octet-stream"},
                    )
                    client.expect(result, [201], f"{server.name} PUT")
            put_time = time.perf_counter() - started
            result = client.timed_request(
                conn,
                "COPY",
                top + "/",
                headers={
                    "Destination": f"{server.base}{copy}/",
                    "Depth": "infinity",
                    "Overwrite": "F",
                },
            )
            client.expect(result, [201], f"{server.name} COPY")
            copy_time = result.total
            result = client.timed_request(conn, "DELETE", top + "/")
            client.expect(result, [204], f"{server.name} DELETE")
            delete_time = result.total
        finally:
            conn.close()
        _delete(server, copy + "/")
        return {
            "put-tree": {"time": put_time, "files_per_s": files / put_time},
            "copy-tree": {"time": copy_time},
            "delete-tree": {"time": delete_time},
        }

    return Scenario([put_fig, copy_fig, delete_fig], measure, warmup=False, sync=True)


DAVSERVERS = ("davserver", "davserver-workers", "davserver-gunicorn")


def _small_files(folder: str, count: int) -> list[str]:
    """`count` files of 4 KiB written straight to disk (untimed setup); their names."""
    os.makedirs(folder)
    payload = os.urandom(data.SMALL_SIZE)
    names = [f"f{i:04d}" for i in range(count)]
    for name in names:
        with open(os.path.join(folder, name), "wb") as out:
            out.write(payload)
    return names


def _trash_emptied(server: Server, limit: float = 60.0) -> float:
    """Wait until davserver has unlinked the files its DELETEs put in the trash (it does that
    once deletions pause; see davserver/provider/trash.py); the seconds it took."""
    trash = os.path.join(server.root, TRASH_NAME)
    started = time.perf_counter()
    while os.path.isdir(trash) and os.listdir(trash):
        if time.perf_counter() - started > limit:
            raise BenchError(f"{server.name}: the trash still holds files after {limit:.0f} s")
        time.sleep(0.002)
    return time.perf_counter() - started


def batch_delete_scenario(sizes: data.Sizes) -> Scenario:
    """Issue 8's figure: deleting N small files with one JSON batch POST, against N DELETE
    requests one after another on one keep-alive connection (davserver only: the others have
    no batch endpoint)."""
    count = sizes.batch_files
    batch_fig = Figure(
        "batch-delete",
        f"DELETE {count:,} files of 4 KiB in one JSON batch (POST)",
        "time",
        "s",
        "lower",
        ("speedup", "purged"),
    )
    seq_fig = Figure(
        "delete-seq",
        f"DELETE {count:,} files of 4 KiB, one request each (one connection)",
        "time",
        "s",
        "lower",
        ("files_per_s",),
    )

    def batch(server: Server, folder: str, names: list[str]) -> float:
        operations = [{"op": "delete", "path": f"{folder}/{name}"} for name in names]
        body = json.dumps({"operations": operations}).encode()
        conn = client.connect(server.port, timeout=120)
        try:
            result = client.timed_request(
                conn,
                "POST",
                "/",
                body=body,
                headers={"Content-Type": "application/json"},
                keep_body=True,
            )
        finally:
            conn.close()
        client.expect(result, [207], f"{server.name} batch POST")
        answer = json.loads(result.body)
        succeeded = answer.get("summary", {}).get("succeeded")
        if succeeded != count or len(answer.get("results", ())) != count:
            raise BenchError(
                f"{server.name} batch POST: summary {answer.get('summary')}, expected "
                f"{count} succeeded"
            )
        return result.total

    def one_by_one(server: Server, folder: str, names: list[str]) -> float:
        conn = client.connect(server.port, timeout=60)
        try:
            started = time.perf_counter()
            for name in names:
                result = client.timed_request(conn, "DELETE", f"/{folder}/{name}")
                client.expect(result, [204], f"{server.name} DELETE")
            return time.perf_counter() - started
        finally:
            conn.close()

    def measure(server: Server, round_: int) -> dict[str, dict[str, float]]:
        folders = [f"batch-{round_}", f"seq-{round_}"]
        for folder in folders:
            shutil.rmtree(os.path.join(server.root, folder), ignore_errors=True)
        names = [_small_files(os.path.join(server.root, f), count) for f in folders]
        os.sync()
        # Alternate which goes first, so that neither always gets the warmer caches.
        order = [0, 1] if round_ % 2 == 0 else [1, 0]
        times = [0.0, 0.0]
        purged = 0.0
        for which in order:
            # Neither starts while the other's deleted files are still being unlinked or
            # their unlinking written to disk.
            _trash_emptied(server)
            os.sync()
            work = batch if which == 0 else one_by_one
            times[which] = work(server, folders[which], names[which])
            if which == 0:
                purged = _trash_emptied(server)
        for folder in folders:
            left = os.listdir(os.path.join(server.root, folder))
            if left:
                raise BenchError(f"{server.name}: {len(left)} files left in /{folder}/")
            _delete(server, f"/{folder}/")
        batch_time, seq_time = times
        return {
            "batch-delete": {
                "time": batch_time,
                "speedup": seq_time / batch_time,
                "purged": purged,
            },
            "delete-seq": {"time": seq_time, "files_per_s": count / seq_time},
        }

    return Scenario([batch_fig, seq_fig], measure, sync=True, servers=DAVSERVERS)


def _size_label(size: int) -> str:
    if size % (1024**3) == 0:
        return f"{size // 1024**3} GiB"
    return f"{size / 1024**2:g} MiB"


def scenarios(settings: Settings, master: str) -> list[Scenario]:
    sizes = settings.sizes
    s, b, p = sizes.folder_small, sizes.folder_big, sizes.props_files
    per = sizes.props_per_file
    hit = f"v{per - 1:03d} ".encode()
    tree = data.tree_entries(sizes.tree)
    chosen = [
        propfind_scenario(
            "pf1-allprop-small",
            f"PROPFIND Depth 1 allprop, {s:,} files",
            "/f-small/",
            ALLPROP,
            "1",
            s + 1,
        ),
        propfind_scenario(
            "pf1-allprop-big",
            f"PROPFIND Depth 1 allprop, {b:,} files",
            "/f-big/",
            ALLPROP,
            "1",
            b + 1,
        ),
        propfind_scenario(
            "pf1-prop2-small",
            f"PROPFIND Depth 1, 2 props, {s:,} files",
            "/f-small/",
            PROP2,
            "1",
            s + 1,
        ),
        propfind_scenario(
            "pf1-prop2-big",
            f"PROPFIND Depth 1, 2 props, {b:,} files",
            "/f-big/",
            PROP2,
            "1",
            b + 1,
        ),
        propfind_scenario(
            "pf1-allprop-dead",
            f"PROPFIND Depth 1 allprop, {p:,} files x {per} dead props",
            "/props/",
            ALLPROP,
            "1",
            p + 1,
            hit,
            p,
            setup=set_dead_properties(sizes),
        ),
        propfind_scenario(
            "pf1-prop2-dead",
            f"PROPFIND Depth 1, 2 props, {p:,} files x {per} dead props",
            "/props/",
            PROP2,
            "1",
            p + 1,
        ),
        propfind_scenario(
            "pfinf-tree",
            f"PROPFIND Depth infinity allprop, {tree:,} entries",
            "/tree/",
            ALLPROP,
            "infinity",
            tree,
        ),
    ]
    if sizes.large_tree is not None:
        large = data.tree_entries(sizes.large_tree)
        chosen.append(
            propfind_scenario(
                "pfinf-large",
                f"PROPFIND Depth infinity allprop, {large:,} entries",
                "/tree-large/",
                ALLPROP,
                "infinity",
                large,
            )
        )
    chosen += [
        load_scenario(settings, 2),
        load_scenario(settings, 16),
        big_get_scenario(sizes.big_file),
        big_put_scenario(sizes.big_file, os.path.join(master, "big.bin")),
        tree_scenario(sizes),
        batch_delete_scenario(sizes),
    ]
    if settings.only:
        chosen = [
            sc for sc in chosen if any(any(o in f.id for o in settings.only) for f in sc.figures)
        ]
    return chosen


# -- the run --------------------------------------------------------------------------------------


def _with_memory(
    server: Server, work: Callable[[], dict[str, dict[str, float]]]
) -> dict[str, dict[str, float]]:
    memory = server.memory
    before = memory.rss()
    memory.reset_peak()
    result = work()
    peak = memory.peak()
    for sample in result.values():
        sample["rss_peak"] = float(peak)
        sample["rss_growth"] = float(max(peak - before, 0))
    return result


def _bound(
    scenario: Scenario, server: Server, round_: int
) -> Callable[[], dict[str, dict[str, float]]]:
    return lambda: scenario.measure(server, round_)


def run_scenarios(
    chosen: list[Scenario], running: list[Server], rounds: int, warnings: list[str]
) -> list[Figure]:
    figures: list[Figure] = []
    for scenario in chosen:
        figures.extend(scenario.figures)
        names = ", ".join(f.id for f in scenario.figures)
        log(f"{names}")
        broken = {s.name for s in running if not scenario.runs_on(s)}
        for server in running:
            if server.name in broken:
                continue
            try:
                if scenario.setup is not None:
                    scenario.setup(server)
                if scenario.warmup:
                    scenario.measure(server, -1)
            except MEASURE_ERRORS as exc:
                warnings.append(f"{names}: {server.name}: {exc}")
                log(f"  {server.name} failed: {exc}")
                broken.add(server.name)
        for round_ in range(rounds):
            for server in running:
                if server.name in broken:
                    continue
                if scenario.sync:
                    os.sync()
                try:
                    result = _with_memory(server, _bound(scenario, server, round_))
                except MEASURE_ERRORS as exc:
                    warnings.append(f"{names}: {server.name}: round {round_}: {exc}")
                    log(f"  {server.name} failed: {exc}")
                    broken.add(server.name)
                    continue
                for fig in scenario.figures:
                    fig.add(server.name, result[fig.id])
        for fig in scenario.figures:
            line = "  ".join(
                f"{s.name} {report.fmt(fig.median(s.name), fig.unit)}"
                for s in running
                if scenario.runs_on(s)
            )
            log(f"  {fig.id}: {line}")
    return figures


@contextlib.contextmanager
def started_servers(settings: Settings, workdir: str, master: str) -> Iterator[list[Server]]:
    """Per-server roots, and the servers on them; all stopped on the way out."""
    classes: dict[str, type[Server]] = {
        "davserver": servers.Davserver,
        "davserver-workers": servers.DavserverWorkers,
        "davserver-gunicorn": servers.DavserverGunicorn,
        "wsgidav": servers.Wsgidav,
        "apache": servers.Apache,
    }
    running: list[Server] = []
    try:
        for name in settings.servers:
            root = os.path.join(workdir, f"root-{name}")
            started = time.perf_counter()
            owner = servers.apache_owner() if name == "apache" else None
            data.link_copy(master, root, owner)
            server = classes[name](root, workdir)
            running.append(server)
            server.start()
            log(
                f"{name} on port {server.port} (root linked in "
                f"{time.perf_counter() - started:.1f} s)"
            )
        yield running
    finally:
        for server in running:
            server.stop()


def parse_size(text: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark davserver beside wsgidav and Apache mod_dav_fs.",
    )
    parser.add_argument("--quick", action="store_true", help="small data, 2 rounds: a smoke run")
    parser.add_argument("--large", action="store_true", help="add a ~100,000-entry tree")
    parser.add_argument(
        "--big-size", default=None, help="size of the large GET/PUT file (default 256M; 1G...)"
    )
    parser.add_argument("--rounds", type=int, help="measured rounds per figure (default 5)")
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated subset of {','.join(SERVERS)} (default: all available); "
        "davserver is the app in one process on the default engine (httptools; the baseline "
        "of the ratios), davserver-workers the default start (a worker process per CPU), "
        "davserver-gunicorn the same app under gunicorn (gthread, 2 workers x 8 threads)",
    )
    parser.add_argument(
        "--only", default="", help="comma-separated substrings of figure ids to run (e.g. pf1)"
    )
    parser.add_argument(
        "--load-seconds", type=float, help="duration of each wrk run (default 2, quick 1)"
    )
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load client")
    parser.add_argument("--tmpdir", help="where to build the data (default: the system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", help="results file (default bench/results-<date>.json)")
    parser.add_argument(
        "--write-results", action="store_true", help="rewrite the table in bench/RESULTS.md"
    )
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    sizes = data.Sizes.quick() if args.quick else data.Sizes()
    if args.large:
        sizes = data.Sizes(**{**sizes.as_dict(), "large_tree": (100, 10, 99)})  # type: ignore[arg-type]
    if args.big_size:
        sizes = data.Sizes(**{**sizes.as_dict(), "big_file": parse_size(args.big_size)})  # type: ignore[arg-type]
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(wanted) - set(SERVERS)
    if unknown:
        raise SystemExit(f"bench/run.py: unknown servers {sorted(unknown)}")
    if "davserver-gunicorn" in wanted and not servers.gunicorn_available():
        log("gunicorn not installed: running without davserver-gunicorn")
        wanted.remove("davserver-gunicorn")
    if "apache" in wanted and not servers.apache_available():
        log("Apache httpd with mod_dav_fs not found: running without it")
        wanted.remove("apache")
    wrk = None if args.no_wrk else servers.wrk_path()
    if wrk is None:
        log("wrk not used: the GET load figures come from Python threads (a lower bound)")
    return Settings(
        rounds=args.rounds or (2 if args.quick else 5),
        sizes=sizes,
        load_seconds=args.load_seconds or (1.0 if args.quick else 2.0),
        wrk=wrk,
        servers=wanted,
        only=[o.strip() for o in args.only.split(",") if o.strip()],
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    command = "python bench/run.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    command = command.strip()
    now = datetime.datetime.now()
    warnings: list[str] = []
    # Taken before the servers start: the revision is the code they run, even if the working
    # tree moves on during the run.
    info = report.machine()
    began = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="davbench-", dir=args.tmpdir)
    os.chmod(workdir, 0o755)  # Apache's children (www-data) must reach their root
    try:
        master = os.path.join(workdir, "master")
        log(f"building data in {workdir}")
        data.build_master(master, settings.sizes)
        log(f"data ready in {time.perf_counter() - began:.1f} s")
        with started_servers(settings, workdir, master) as running:
            figures = run_scenarios(scenarios(settings, master), running, settings.rounds, warnings)
            versions = {s.name: s.version() for s in running}
        names = [s for s in settings.servers if any(s in f.samples for f in figures)]
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - began
    table = report.markdown(figures, names)
    load_tool = "wrk" if settings.wrk else "python threads"
    settings_text = (
        f"{settings.rounds} rounds after one warm-up, servers interleaved; "
        f"GET load {settings.load_seconds:g} s per run with {load_tool}; "
        f"run took {elapsed:.0f} s"
    )
    result = {
        "date": now.isoformat(timespec="seconds"),
        "command": command,
        "machine": info,
        "servers": versions,
        "settings": {
            "rounds": settings.rounds,
            "sizes": settings.sizes.as_dict(),
            "load_seconds": settings.load_seconds,
            "load_tool": load_tool,
        },
        "elapsed_s": elapsed,
        "figures": [report.summary(f) for f in figures],
        "warnings": warnings,
    }
    json_path = args.json or str(BENCH_DIR / f"results-{now:%Y%m%d-%H%M%S}.json")
    with open(json_path, "w") as handle:
        json.dump(result, handle, indent=1)
    print(table)
    print()
    print(report.machine_markdown(info))
    print(f"- Servers: {'; '.join(versions.values())}")
    print(f"- Settings: {settings_text}")
    for warning in warnings:
        print(f"- WARNING: {warning}")
    log(f"results in {json_path}")
    if args.write_results:
        body = table
        if warnings:
            body += "\n\n" + "\n".join(f"- WARNING: {w}" for w in warnings)
        section = report.results_section(
            body,
            info,
            command,
            now.strftime("%Y-%m-%d %H:%M"),
            settings_text + "; " + "; ".join(versions.values()),
        )
        report.update_results_file(str(BENCH_DIR / "RESULTS.md"), section)
        log("bench/RESULTS.md updated")
    return 1 if warnings else 0


if __name__ == "__main__":
    sys.exit(main())
