"""Properties and locks on SQLite and on PostgreSQL, with one davserver instance and with three.

    .venv/bin/python bench/several.py            # ~1-2 minutes on 2 cores
    .venv/bin/python bench/several.py --quick    # smoke run

Starts a throwaway PostgreSQL cluster (tests/pg.py: initdb and pg_ctl in a temporary folder,
a Unix socket only) and, for each store and instance count, that many `davserver serve`
processes over one folder: on SQLite they share one state folder (processes on one machine), on
PostgreSQL one database. Two figures, each with CLIENTS client threads spread round robin over
the instances, new connection per request:

- `propfind-dead`: PROPFIND Depth 1 allprop of a folder of FILES files with PROPS dead
  properties each (set up beforehand, one PROPPATCH per file): requests per second and the
  median time of one;
- `lock-unlock`: LOCK then UNLOCK of a file of the client's own: cycles per second.

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from pg import PostgresServer  # noqa: E402
from procs import ServerProcess  # noqa: E402

ALLPROP = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
LOCKINFO = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
    b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
)


def proppatch(count: int) -> bytes:
    props = "".join(
        f"<z:p{i}>value number {i} of this file, about 40 b</z:p{i}>" for i in range(count)
    )
    return (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:z="urn:bench">'
        f"<D:set><D:prop>{props}</D:prop></D:set></D:propertyupdate>"
    ).encode()


def throughput(
    instances: list[ServerProcess], clients: int, seconds: float, one: Callable[[str, int], None]
) -> tuple[float, float]:
    """Run `one(base_url, client)` in `clients` threads for `seconds`: per second, median s."""
    stop = time.monotonic() + seconds
    times: list[float] = []
    guard = threading.Lock()

    def client(index: int) -> None:
        n = 0
        while time.monotonic() < stop:
            base = instances[(index + n) % len(instances)].base
            started = time.perf_counter()
            one(base, index)
            with guard:
                times.append(time.perf_counter() - started)
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    begun = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(times) / (time.monotonic() - begun), statistics.median(times)


def measure(
    store: str, count: int, pg: PostgresServer, args: argparse.Namespace, work: Path
) -> dict[str, tuple[float, float]]:
    folder = work / f"{store}-{count}"
    root = folder / "root"
    (root / "pf").mkdir(parents=True)
    (root / "locks").mkdir()
    for i in range(args.files):
        (root / "pf" / f"f{i:05d}.txt").write_bytes(b"x")
    for i in range(args.clients):
        (root / "locks" / f"c{i}.txt").write_bytes(b"x")
    extra = ("--database", pg.schema_url()) if store == "postgresql" else ()
    shared_state = folder / "state"
    instances = [
        ServerProcess(
            root,
            shared_state if store == "sqlite" else folder / f"state{i}",
            "--log-level",
            "error",
            *extra,
        )
        for i in range(count)
    ]
    try:
        body = proppatch(args.props)
        with ThreadPoolExecutor(4) as pool:
            statuses = list(
                pool.map(
                    lambda i: (
                        requests.request(
                            "PROPPATCH",
                            f"{instances[i % count].base}/pf/f{i:05d}.txt",
                            data=body,
                            timeout=60,
                        ).status_code
                    ),
                    range(args.files),
                )
            )
        assert set(statuses) == {207}, statuses

        def propfind(base: str, _client: int) -> None:
            answer = requests.request(
                "PROPFIND", base + "/pf/", headers={"Depth": "1"}, data=ALLPROP, timeout=60
            )
            assert answer.status_code == 207
            assert answer.content.count(b"value number 0 of") == args.files

        def lock_unlock(base: str, client: int) -> None:
            path = f"{base}/locks/c{client}.txt"
            answer = requests.request("LOCK", path, data=LOCKINFO, timeout=60)
            assert answer.status_code == 200, answer.text
            token = answer.headers["Lock-Token"]
            answer = requests.request("UNLOCK", path, headers={"Lock-Token": token}, timeout=60)
            assert answer.status_code == 204

        propfind(instances[0].base, 0)  # warm-up
        return {
            "propfind-dead": throughput(instances, args.clients, args.seconds, propfind),
            "lock-unlock": throughput(instances, args.clients, args.seconds, lock_unlock),
        }
    finally:
        for instance in instances:
            instance.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", type=int, default=6)
    args = parser.parse_args()
    args.files, args.props, args.seconds = (100, 20, 1.0) if args.quick else (1000, 100, 5.0)
    pg = PostgresServer()
    try:
        with tempfile.TemporaryDirectory(prefix="davbench-several-") as work:
            rows = []
            for store in ("sqlite", "postgresql"):
                for count in (1, 3):
                    found = measure(store, count, pg, args, Path(work))
                    pf_rate, pf_median = found["propfind-dead"]
                    lock_rate, _ = found["lock-unlock"]
                    rows.append(
                        f"| {store} | {count} | {pf_rate:.1f} | {pf_median * 1000:.0f} ms "
                        f"| {lock_rate:.0f} |"
                    )
                    print(rows[-1], flush=True)
    finally:
        pg.close()
    print(
        f"\n{args.files} files x {args.props} dead properties, {args.clients} clients, "
        f"{args.seconds:.0f} s per figure\n"
    )
    print("| store | instances | PROPFIND/s | median PROPFIND | LOCK+UNLOCK cycles/s |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
