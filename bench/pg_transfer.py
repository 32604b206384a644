"""Time the PostgreSQL property store's MOVE of a tree of properties: a folder of 1,000 files
with 100 dead properties each (100,000 rows), moved there and back, `--rounds` times.

    .venv/bin/python bench/pg_transfer.py [--files 1000] [--properties 100] [--rounds 3]

Starts a throwaway PostgreSQL (tests/pg.py). Compare two checkouts by running this script of
each (PYTHONPATH=<checkout>), alternating.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from pg import PostgresServer  # noqa: E402

from davserver.store import postgresql  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--properties", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = PostgresServer()
    try:
        db = postgresql.PostgresDatabase(server.schema_url())
        props = postgresql.PostgresPropertyStore(db)
        value = "<z:p>" + "v" * 40 + "</z:p>"
        rows = [
            (f"/a/f{i}", "/a", f"{{urn:z}}p{j}", value)
            for i in range(args.files)
            for j in range(args.properties)
        ]
        with db.write() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO props (path, parent, name, value) VALUES (%s, %s, %s, %s)", rows
            )
        times = []
        for _ in range(args.rounds):
            for src, dst in (("/a", "/b"), ("/b", "/a")):
                began = time.monotonic()
                props.move(src, dst)
                times.append(time.monotonic() - began)
        print(
            f"MOVE of {len(rows):,} property rows: median {statistics.median(times):.2f} s "
            f"({min(times):.2f}-{max(times):.2f}, {len(times)} moves)"
        )
        db.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
