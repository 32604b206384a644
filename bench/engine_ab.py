"""Compare two checkouts of davserver over HTTP: requests/s and the server's CPU per request
of a small GET, on the default start (a worker process per CPU), with the access log off and
on, Apache mod_dav_fs beside.

    .venv/bin/python bench/engine_ab.py OLD NEW [--rounds 5] [--seconds 4] [--workers N]

bench/compare.py measures the app alone, in-process; this measures what a client sees, engine
and kernel included. Each checkout's server runs `python -m davserver` with PYTHONPATH set to
that checkout. Per round, every server in turn is started on its own copy of the data and
loaded with `wrk -t2 -c16` on a 4 KiB file after a one-second warm-up; the CPU time of all its
processes per request is read from /proc. The table gives medians (and ranges) and the ratios
new/old and new/Apache. On a shared machine requests/s moves with other sessions' load more
than CPU per request does; compare within a run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import servers
from bench.engines import make_root, median_range, wrk

CONNECTIONS = 16


def checkout_server(
    label: str, checkout: str, access_log: bool, workers: int | None
) -> type[servers.Server]:
    """A DavserverWorkers class running `checkout`'s davserver."""
    name = f"{label}{'-logged' if access_log else ''}"
    attributes = {"name": name, "checkout": checkout, "access_log": access_log, "workers": workers}
    return type(name, (servers.DavserverWorkers,), attributes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0, help="per wrk run")
    parser.add_argument(
        "--workers",
        type=int,
        help="davserver's worker processes (default: the default start's, one per CPU); "
        "1 leaves a CPU to wrk and moves less from run to run",
    )
    args = parser.parse_args()
    kinds = [
        checkout_server(label, str(Path(tree).resolve()), logged, args.workers)
        for logged in (False, True)
        for label, tree in (("old", args.old), ("new", args.new))
    ]
    if servers.apache_available():
        kinds.append(servers.Apache)
    rps: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="davengine-ab-") as work:
        os.chmod(work, 0o755)  # Apache's workers may run as another user
        for kind in kinds:
            owner = servers.apache_owner() if kind is servers.Apache else None
            make_root(Path(work) / f"root-{kind.name}", owner)
        print(f"command: {' '.join(sys.argv)}; {os.cpu_count()} CPUs", flush=True)
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}, load average {os.getloadavg()[0]:.1f}", flush=True)
            for kind in kinds:
                server = kind(str(Path(work) / f"root-{kind.name}"), work)
                try:
                    server.start()
                    time.sleep(1)  # every worker up
                    url = f"{server.base}/small"
                    wrk(url, CONNECTIONS, 1)
                    used = server.memory.cpu_seconds()
                    figure = wrk(url, CONNECTIONS, args.seconds)
                    per_request = (server.memory.cpu_seconds() - used) / figure["requests"] * 1e6
                finally:
                    server.stop()
                rps[kind.name].append(figure["rps"])
                cpu[kind.name].append(per_request)
                print(
                    f"{kind.name} {figure['rps']:.0f} req/s, {per_request:.1f} us CPU/request",
                    flush=True,
                )
    print(f"\n| server | GET c={CONNECTIONS}, req/s | server CPU per GET, us |")
    print("|---|--:|--:|")
    for kind in kinds:
        name = kind.name
        print(f"| {name} | {median_range(rps[name], 0)} | {median_range(cpu[name], 1)} |")

    def ratio(figures: dict[str, list[float]], new: str, old: str) -> str:
        if not figures.get(new) or not figures.get(old):
            return "-"
        return f"{statistics.median(figures[new]) / statistics.median(figures[old]):.2f}x"

    for suffix in ("", "-logged"):
        print(
            f"new{suffix} / old{suffix}: requests/s {ratio(rps, 'new' + suffix, 'old' + suffix)}, "
            f"CPU per request {ratio(cpu, 'new' + suffix, 'old' + suffix)}; "
            f"requests/s vs Apache: new{suffix} {ratio(rps, 'new' + suffix, 'apache')}, "
            f"old{suffix} {ratio(rps, 'old' + suffix, 'apache')}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
