"""The engine comparison in bench/RESULTS.md ("Engines", issue 16): davserver's default start on
each engine beside rclone serve webdav, nginx (dav + dav-ext), Apache mod_dav_fs and wsgidav,
in interleaved rounds, and the issue's targets side by side.

    .venv/bin/python bench/engines.py [--rounds 3] [--seconds 4] [--big-size 1G]
        [--servers davserver,davserver-cheroot,...] [--propfinds 3]

Per round, each server in turn is started on its own copy of the data and measured: a 4 KiB
GET with wrk at 2 and 16 connections (with the server's CPU time per request, over all its
processes, which moves less than requests/s on a shared machine), and a Depth 1 PROPFIND of a
folder of 10,000 files (`--propfinds` times, with the server's CPU time per PROPFIND).
`davserver-logged` is the default start with its access log on; the other servers log no
access lines. On davserver's engines, also: 256 connections (wrk --latency: requests/s, p99,
errors), and the time a new client waits for a GET while 1,000 other connections are open,
half silent and half having sent part of a head.
Once per engine after the rounds: the peak resident memory, over the worker processes, during
a PUT and a GET of `--big-size`.

Prints each figure as it is measured, then medians (and ranges) per server and the targets:
small GET >= 2x rclone's requests/s at 2 and 16 connections and >= 0.8x Apache's at 16,
PROPFIND no slower than on cheroot, memory flat, 0 errors at 256 connections, a new client
served within a second beside 1,000 others. The machine's load average is printed per round:
on a shared machine, compare within a round. Needs wrk; servers that are not installed are
left out (Debian: rclone, nginx, libnginx-mod-http-dav-ext, apache2).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import servers
from bench.run import parse_size

SMALL = 4096
FILES = 10_000
IDLE_CONNECTIONS = 1000
DAVSERVERS = ("davserver", "davserver-cheroot")
Samples = dict[str, dict[str, list[float]]]


class Davserver(servers.DavserverWorkers):
    """The default start, as a user gets it: `davserver serve ROOT`."""

    name = "davserver"


class DavserverLogged(Davserver):
    """The default start with its access log on (a line per request to standard error, here a
    file), as `davserver serve ROOT` runs unless told `--no-access-log`."""

    name = "davserver-logged"
    access_log = True


CLASSES: dict[str, type[servers.Server]] = {
    "davserver": Davserver,
    "davserver-logged": DavserverLogged,
    "davserver-cheroot": servers.DavserverCheroot,
    "rclone": servers.Rclone,
    "nginx": servers.NginxDav,
    "apache": servers.Apache,
    "wsgidav": servers.Wsgidav,
}


def available() -> list[str]:
    found = {
        "rclone": servers.rclone_available(),
        "nginx": servers.nginx_available(),
        "apache": servers.apache_available(),
    }
    return [name for name in CLASSES if found.get(name, True)]


def make_root(path: Path, owner: tuple[int, int] | None) -> None:
    (path / "big").mkdir(parents=True)
    (path / "small").write_bytes(os.urandom(SMALL))
    for i in range(FILES):
        (path / "big" / f"f{i:05d}").write_bytes(b"x" * 100)
    if owner is not None:
        for entry in [path, *path.rglob("*")]:
            os.chown(entry, *owner)


def wrk(url: str, connections: int, seconds: float, latency: bool = False) -> dict[str, float]:
    """requests/s, and with `latency` the p99 in ms; errors: socket errors and non-2xx."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", url]
    if latency:
        args.insert(1, "--latency")
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    found: dict[str, float] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])}  # type: ignore[index]
    found["requests"] = float(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    found["errors"] = errors + (int(non2xx[1]) if non2xx else 0)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    if latency and p99:
        found["p99_ms"] = float(p99[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99[2]]
    return found


def propfind_seconds(port: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        started = time.perf_counter()
        conn.request("PROPFIND", "/big/", headers={"Depth": "1"})
        response = conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    # Closing tags only: an opening one may carry attributes (Apache's do).
    if response.status != 207 or body.count(b"response>") < FILES + 1:
        raise RuntimeError(f"PROPFIND answered {response.status}, {len(body)} bytes")
    return elapsed


@contextlib.contextmanager
def open_files(count: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def beside_idle_connections(port: int, limit: float = 10.0) -> float:
    """Seconds a new client waits for a 4 KiB GET while 1,000 connections are open, half
    silent, half in the middle of a head (`limit` when it got no answer by then)."""
    sockets = []
    try:
        for i in range(IDLE_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(sock)
            if i % 2:
                sock.sendall(b"GET /small HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=limit)
        started = time.perf_counter()
        try:
            conn.request("GET", "/small")
            conn.getresponse().read()
        except OSError:
            return limit
        finally:
            conn.close()
        return time.perf_counter() - started
    finally:
        for sock in sockets:
            sock.close()


def big_transfer_memory(server: servers.Server, size: int) -> dict[str, float]:
    """Peak RSS growth (MiB, summed over the server's processes) during a PUT, then a GET, of
    `size` bytes."""
    tree = server.memory
    found = {}
    block = os.urandom(1024 * 1024)
    for method in ("PUT", "GET"):
        time.sleep(0.5)  # let the RSS settle after the previous step
        before = tree.rss()
        tree.reset_peak()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
        try:
            if method == "PUT":
                body = (block for _ in range(size // len(block)))
                conn.request("PUT", "/big.bin", body=body, headers={"Content-Length": str(size)})
                status = conn.getresponse()
                status.read()
            else:
                conn.request("GET", "/big.bin")
                status = conn.getresponse()
                got = 0
                while chunk := status.read(1024 * 1024):
                    got += len(chunk)
                if got != size:
                    raise RuntimeError(f"GET gave {got} of {size} bytes")
        finally:
            conn.close()
        if status.status not in (200, 201, 204):
            raise RuntimeError(f"{method} answered {status.status}")
        found[method] = (tree.peak() - before) / 2**20
    return found


def measure(server: servers.Server, seconds: float, propfinds: int, samples: Samples) -> None:
    name = server.name
    url = f"{server.base}/small"
    for connections in (2, 16):
        used = server.memory.cpu_seconds()
        figure = wrk(url, connections, seconds)
        cpu_us = (server.memory.cpu_seconds() - used) / figure["requests"] * 1e6
        samples[name][f"get-c{connections}"].append(figure["rps"])
        samples[name][f"cpu-c{connections}"].append(cpu_us)
        log(f"{name} get-c{connections} {figure['rps']:.0f} req/s, {cpu_us:.1f} us CPU/request")
    if getattr(server, "propfind", True):
        used = server.memory.cpu_seconds()
        times = [propfind_seconds(server.port) for _ in range(propfinds)]
        # Clock ticks are 10 ms: one figure per round, the mean of its PROPFINDs.
        cpu = (server.memory.cpu_seconds() - used) / propfinds
        samples[name]["propfind-10k"] += times
        samples[name]["propfind-cpu"].append(cpu)
        log(f"{name} propfind-10k " + " ".join(f"{t:.3f}" for t in times) + f", {cpu:.3f} s CPU")
    if name in DAVSERVERS:
        figure = wrk(url, 256, seconds, latency=True)
        samples[name]["c256-rps"].append(figure["rps"])
        samples[name]["c256-p99-ms"].append(figure.get("p99_ms", float("nan")))
        samples[name]["c256-errors"].append(figure["errors"])
        log(f"{name} c256 {figure}")
        waited = beside_idle_connections(server.port)
        samples[name]["idle-1000-s"].append(waited)
        log(f"{name} new client beside 1,000 connections: {waited:.3f} s")


def log(line: str) -> None:
    print(line, flush=True)


def median_range(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    fmt = f"{{:,.{digits}f}}"
    if len(values) == 1:
        return fmt.format(values[0])
    low, middle, high = (fmt.format(f(values)) for f in (min, statistics.median, max))
    return f"{middle} ({low}-{high})"


def report(samples: Samples, memory: dict[str, dict[str, float]], versions: dict[str, str]) -> None:
    print(
        "\n| server | GET c=2, req/s | GET c=16, req/s | server CPU per GET at c=16, us "
        "| PROPFIND 10,000 files, s | server CPU per PROPFIND, s |"
    )
    print("|---|--:|--:|--:|--:|--:|")
    for name, figures in samples.items():
        print(
            f"| {name} ({versions[name]}) | {median_range(figures['get-c2'], 0)} | "
            f"{median_range(figures['get-c16'], 0)} | {median_range(figures['cpu-c16'], 1)} | "
            f"{median_range(figures['propfind-10k'], 3)} | "
            f"{median_range(figures['propfind-cpu'], 3)} |"
        )
    print(
        "\n| davserver engine | c=256 req/s | c=256 p99 ms | c=256 errors | new client "
        "beside 1,000 connections, s | peak RSS growth PUT / GET, MiB |"
    )
    print("|---|--:|--:|--:|--:|--:|")
    for name in DAVSERVERS:
        figures = samples.get(name)
        if not figures:
            continue
        mem = memory.get(name, {})
        print(
            f"| {name} | {median_range(figures['c256-rps'], 0)} | "
            f"{median_range(figures['c256-p99-ms'], 1)} | {max(figures['c256-errors']):.0f} | "
            f"{median_range(figures['idle-1000-s'], 3)} | "
            f"{mem.get('PUT', float('nan')):.0f} / {mem.get('GET', float('nan')):.0f} |"
        )
    ours = samples.get("davserver", {})

    def ratio(figure: str, peer: str) -> str:
        theirs = samples.get(peer, {}).get(figure)
        if not ours.get(figure) or not theirs:
            return "-"
        return f"{statistics.median(ours[figure]) / statistics.median(theirs):.2f}x"

    print("\nTargets (the default start, medians):")
    print(f"- GET c=2 vs rclone: {ratio('get-c2', 'rclone')} (target >= 2x)")
    print(f"- GET c=16 vs rclone: {ratio('get-c16', 'rclone')} (target >= 2x)")
    print(f"- GET c=16 vs Apache: {ratio('get-c16', 'apache')} (target >= 0.8x)")
    print(
        f"- PROPFIND 10,000 files vs cheroot: {ratio('propfind-10k', 'davserver-cheroot')} "
        f"of cheroot's time, {ratio('propfind-cpu', 'davserver-cheroot')} of its CPU "
        "(target <= 1x)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="per wrk run")
    parser.add_argument("--big-size", default="1G", help="the PUT and GET measured for memory")
    parser.add_argument("--servers", default=",".join(available()))
    parser.add_argument("--propfinds", type=int, default=3, help="PROPFINDs per server and round")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2
    names = args.servers.split(",")
    samples: Samples = {name: defaultdict(list) for name in names}
    memory: dict[str, dict[str, float]] = {}
    versions: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="davengines-") as work,
        open_files(4 * IDLE_CONNECTIONS),
    ):
        os.chmod(work, 0o755)  # Apache's and nginx's workers may run as another user
        for name in names:
            owner = servers.apache_owner() if name == "apache" else None
            make_root(Path(work) / f"root-{name}", owner)
        log(f"command: {' '.join(sys.argv)}; {os.cpu_count()} CPUs")
        for round_ in range(1, args.rounds + 1):
            log(f"round {round_}, load average {os.getloadavg()[0]:.1f}")
            for name in names:
                server = CLASSES[name](str(Path(work) / f"root-{name}"), work)
                try:
                    server.start()
                    versions[name] = server.version()
                    time.sleep(1)  # every worker up
                    measure(server, args.seconds, args.propfinds, samples)
                finally:
                    server.stop()
            log(f"round {round_} done, load average {os.getloadavg()[0]:.1f}")
        for name in DAVSERVERS:
            if name not in names:
                continue
            server = CLASSES[name](str(Path(work) / f"root-{name}"), work)
            try:
                server.start()
                time.sleep(1)
                memory[name] = big_transfer_memory(server, parse_size(args.big_size))
                log(f"{name} peak RSS growth, MiB: {memory[name]}")
            finally:
                server.stop()
    report(samples, memory, versions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
