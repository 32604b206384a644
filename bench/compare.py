"""Compare two checkouts of davserver on the app alone: what a change costs per request.

    .venv/bin/python bench/compare.py OLD_CHECKOUT NEW_CHECKOUT [--rounds 5]

Each round runs, in a fresh child process per checkout (PYTHONPATH set to that checkout, so
its `davserver` is imported), the WSGI app in-process (no HTTP server, no network: the app's
own cost, which is what a change to the app moves): 300 small PUTs of new files, 300 PUTs
replacing a file, 300 DELETEs, 20 PROPFINDs Depth 1 allprop of a folder of 10,000 files, and a
JSON batch deleting 1,000 files. The checkouts alternate round by round (A B A B...) so that a
noisy machine slows both alike; the table gives each figure's median per operation and the
ratio new/old. Used for issue 21's bound (PROPFIND of 10,000 files and small PUT within 10 %).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import io, json, os, sys, tempfile, time
from davserver.app import create_app
from davserver.config import load
from davserver.server import build_services

work = tempfile.mkdtemp()
root, state = os.path.join(work, "root"), os.path.join(work, "state")
os.makedirs(os.path.join(root, "big"))
for i in range(10_000):
    with open(os.path.join(root, "big", f"f{i:05}.txt"), "wb") as f:
        f.write(b"x" * 100)
config = load(None, {"root": root, "state_dir": state, "access_log": False})
app = create_app(build_services(config))

def call(method, path, body=b"", headers=None):
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "REQUEST_URI": path, "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
    }
    for k, v in (headers or {}).items():
        environ["HTTP_" + k.upper().replace("-", "_")] = v
        if k.lower() == "content-type":
            environ["CONTENT_TYPE"] = v
    status = []
    out = app(environ, lambda s, h, e=None: status.append(s))
    for _ in out:
        pass
    close = getattr(out, "close", None)
    if close:
        close()
    return int(status[0].split()[0])

def timed(n, fn):
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n

allprop = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
results = {}
results["put-new"] = timed(300, lambda i: call("PUT", f"/n{i}.txt", b"y" * 4096))
results["put-replace"] = timed(300, lambda i: call("PUT", "/same.txt", b"z" * 4096))
results["delete"] = timed(300, lambda i: call("DELETE", f"/n{i}.txt"))
results["propfind-10k"] = timed(20, lambda i: call("PROPFIND", "/big/", allprop, {"Depth": "1"}))
os.makedirs(os.path.join(root, "b"))
for i in range(1000):
    with open(os.path.join(root, "b", f"{i}.txt"), "wb") as f:
        f.write(b"b")
ops = [{"op": "delete", "path": f"b/{i}.txt"} for i in range(1000)]
body = json.dumps({"operations": ops}).encode()
json_type = {"Content-Type": "application/json"}
results["batch-1000"] = timed(1, lambda i: call("POST", "/", body, json_type))
print(json.dumps(results))
"""


def run(checkout: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    # `-c` puts the working folder first on sys.path, before PYTHONPATH: run in the checkout,
    # or both children would import whichever davserver this command was started beside.
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    samples: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    for _ in range(args.rounds):
        for name, checkout in (("old", args.old), ("new", args.new)):
            for figure, seconds in run(checkout).items():
                samples[name].setdefault(figure, []).append(seconds)
    print("| figure | old (median) | new (median) | new/old |")
    print("|---|---|---|---|")
    for figure in samples["old"]:
        old = statistics.median(samples["old"][figure])
        new = statistics.median(samples["new"][figure])
        print(f"| {figure} | {old * 1e3:.3f} ms | {new * 1e3:.3f} ms | {new / old:.2f} |")


if __name__ == "__main__":
    main()
