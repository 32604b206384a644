"""davserver on an S3 root beside davserver on a local disk and rclone serve webdav on the
same bucket (issue 23): PROPFIND Depth 1 of 1,000 and of 10,000 objects, a small GET, and a
256 MiB PUT and GET, with each server's peak resident memory during the large transfers.

One SeaweedFS store (started here, as the tests start it) holds the bucket; the local disk
holds the same files in a temporary folder. Each server is one process on 127.0.0.1, one
client at a time. Run: .venv/bin/python bench/s3.py [--rounds N] [--big-mib N]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import s3server

SMALL = os.urandom(4096)
LISTED = {"pf1k": 1_000, "pf10k": 10_000}
RESPONSE = re.compile(rb"<(?:\w+:)?response[ >]")


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    def request(self, method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            if answer.status >= 300:
                raise RuntimeError(f"{self.name}: {method} {path} -> {answer.status}")
            return data
        finally:
            conn.close()

    def peak_rss_mib(self, reset: bool = False) -> float:
        if reset:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(name: str, command: list[str], port: int, env: dict[str, str]) -> Iterator[Server]:
    # rclone's AWS SDK refuses a custom CA bundle with rclone's own HTTP transport; the
    # store here is plain HTTP on loopback, so none is needed.
    inherited = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    process = subprocess.Popen(
        command, env={**inherited, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.1)
        yield Server(name, process, port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def davserver(
    name: str, root: str, state: Path, *extra: str
) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    command = [sys.executable, "-m", "davserver", "serve", root, "--port", str(port)]
    command += ["--state-dir", str(state), "--no-access-log", "--workers", "1", *extra]
    return serving(name, command, port, {})


def rclone(store: s3server.S3Store, root: str) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    env = {
        "RCLONE_CONFIG": os.devnull,
        "RCLONE_CONFIG_BENCH_TYPE": "s3",
        "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
        "RCLONE_CONFIG_BENCH_ENDPOINT": store.endpoint,
        "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": s3server.ACCESS_KEY,
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": s3server.SECRET_KEY,
        "RCLONE_CONFIG_BENCH_REGION": s3server.REGION,
        "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true",
    }
    bucket_path = root.removeprefix("s3://")
    command = ["rclone", "serve", "webdav", f"bench:{bucket_path}", "--addr", f"127.0.0.1:{port}"]
    return serving("rclone serve webdav", command, port, env)


def fill_bucket(store: s3server.S3Store, root: str) -> None:
    bucket, _, prefix = root.removeprefix("s3://").partition("/")
    client = store.client()
    keys = [f"{prefix}/{folder}/f{i:05}.txt" for folder, n in LISTED.items() for i in range(n)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))
    client.put_object(Bucket=bucket, Key=f"{prefix}/small.bin", Body=SMALL)


def fill_folder(folder: Path) -> None:
    for name, count in LISTED.items():
        (folder / name).mkdir(parents=True)
        for i in range(count):
            (folder / name / f"f{i:05}.txt").write_bytes(b"x")
    (folder / "small.bin").write_bytes(SMALL)


def timed(action: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def big_body(mib: int) -> Iterator[bytes]:
    block = os.urandom(1 << 20)
    for _ in range(mib):
        yield block


def put_big(server: Server, path: str, mib: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    conn.putrequest("PUT", path)
    conn.putheader("Content-Length", str(mib << 20))
    conn.endheaders()
    for block in big_body(mib):
        conn.send(block)
    answer = conn.getresponse()
    answer.read()
    conn.close()
    if answer.status >= 300:
        raise RuntimeError(f"{server.name}: PUT {path} -> {answer.status}")


def get_big(server: Server, path: str, mib: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    conn.request("GET", path)
    answer = conn.getresponse()
    size = 0
    while piece := answer.read(1 << 20):
        size += len(piece)
    conn.close()
    if size != mib << 20:
        raise RuntimeError(f"{server.name}: GET {path} gave {size} bytes")


def measure(server: Server, rounds: int, mib: int) -> dict[str, str]:
    row: dict[str, str] = {}
    for folder, count in LISTED.items():

        def listing(folder: str = folder, count: int = count) -> None:
            listed = server.request("PROPFIND", f"/{folder}/", Depth="1")
            found = len(RESPONSE.findall(listed))
            if found != count + 1:
                raise RuntimeError(f"{server.name}: PROPFIND /{folder}/ listed {found - 1}")

        first, *rest = timed(listing, rounds + 1)
        row[f"PROPFIND {count:,}"] = f"{first:.2f} s / {statistics.median(rest):.2f} s"
    gets = timed(lambda: server.request("GET", "/small.bin"), 200)
    row["GET 4 KiB"] = f"{statistics.median(gets) * 1000:.1f} ms"
    name = f"/big-{os.getpid()}-{server.port}.bin"
    server.peak_rss_mib(reset=True)
    [put] = timed(lambda: put_big(server, name, mib), 1)
    put_peak = server.peak_rss_mib()
    server.peak_rss_mib(reset=True)
    [get] = timed(lambda: get_big(server, name, mib), 1)
    get_peak = server.peak_rss_mib()
    row[f"PUT {mib} MiB"] = f"{put:.1f} s ({mib / put:.0f} MiB/s), peak {put_peak:.0f} MiB"
    row[f"GET {mib} MiB"] = f"{get:.1f} s ({mib / get:.0f} MiB/s), peak {get_peak:.0f} MiB"
    server.request("DELETE", name)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="PROPFINDs after the first")
    parser.add_argument("--big-mib", type=int, default=256)
    args = parser.parse_args()
    if shutil.which("rclone") is None:
        raise SystemExit("rclone not found (apt-get install rclone)")
    rows: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="davbench-s3-") as folder:
        work = Path(folder)
        (work / "store").mkdir()
        with s3server.running(work / "store") as store:
            root = store.new_root()
            fill_bucket(store, root)
            fill_folder(work / "disk")
            endpoint = ("--s3-endpoint", store.endpoint)
            servers = [
                davserver("davserver, S3 root", root, work / "state-s3", *endpoint),
                davserver("davserver, local disk", str(work / "disk"), work / "state-disk"),
                rclone(store, root),
            ]
            for starting in servers:
                with starting as server:
                    print(f"{server.name} ...", file=sys.stderr, flush=True)
                    rows[server.name] = measure(server, args.rounds, args.big_mib)
    columns = list(next(iter(rows.values())))
    print("| Server | " + " | ".join(columns) + " |")
    print("|---|" + "--:|" * len(columns))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(row[c] for c in columns) + " |")


if __name__ == "__main__":
    main()
