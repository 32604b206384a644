"""Run the litmus WebDAV conformance suite against a fresh davserver.

Starts davserver on a free loopback port over a temporary root and state folder, runs every
litmus group (basic, copymove, props, locks, http) once anonymously and once with a user and
password (Basic and Digest offered; litmus's neon picks Digest), prints the per-group summary,
and exits non-zero on any FAIL, any WARNING or any SKIPPED test. A missing litmus is an error,
not a skip.

    python litmus/run.py                      # both passes
    python litmus/run.py --modes anonymous    # one pass
    python litmus/run.py --groups props       # some groups only
    python litmus/run.py --url http://host/ --user u --password p   # another server
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

GROUPS = ("basic", "copymove", "props", "locks", "http")
MODES = ("anonymous", "auth")
USER, PASSWORD = "litmus", "Lit mus:pass"
LITMUS = "/usr/bin/litmus"
TESTROOT = "/usr/libexec/litmus"


@dataclass
class GroupResult:
    name: str
    summary: str = ""
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return bool(self.summary) and not (self.failures or self.warnings or self.skipped)


_LINE = re.compile(r"^\s*\d+\.\s+(\S+?)\.*\s+(pass|FAIL|SKIPPED|WARNING)(.*)$")


def parse_output(name: str, text: str) -> GroupResult:
    """Read one group's output: litmus prints each test twice around a carriage return."""
    result = GroupResult(name)
    for raw in text.splitlines():
        for line in raw.split("\r"):
            if "WARNING:" in line:
                result.warnings.append(line.strip())
            match = _LINE.match(line)
            if match:
                test, verdict, rest = match.groups()
                if verdict == "FAIL":
                    result.failures.append(f"{test}: {rest.strip()}")
                elif verdict == "SKIPPED":
                    result.skipped.append(test)
            if line.startswith("<- summary"):
                result.summary = line.strip()
    return result


def run_group(group: str, url: str, credentials: Sequence[str], workdir: str) -> GroupResult:
    env = dict(os.environ, TESTS=group, TEST_QUIET="")
    completed = subprocess.run(
        [LITMUS, url, *credentials],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=600,
        check=False,
    )
    return parse_output(group, completed.stdout + completed.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", nargs="*", default=list(GROUPS), choices=GROUPS)
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=MODES)
    parser.add_argument(
        "--workers", type=int, help="davserver's worker processes (default: its own default)"
    )
    parser.add_argument("--engine", help="davserver's HTTP engine (default: its own default)")
    parser.add_argument("--url", help="test an already running server instead")
    parser.add_argument("--user", help="user name for a server that requires one")
    parser.add_argument("--password", help="password for --user")
    args = parser.parse_args(argv)
    if shutil.which(LITMUS) is None:
        print("litmus is not installed: apt-get install -y litmus", file=sys.stderr)
        return 2
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ok = True
    runs = [(g, m) for m in ([] if args.url else args.modes) for g in args.groups]
    if args.url:
        runs = [(g, "given") for g in args.groups]
    with tempfile.TemporaryDirectory(prefix="litmus-") as tmp:
        for group, mode in runs:
            # A fresh server per group: a stale lock from one group must not hide the next.
            server = None
            if args.url:
                url = args.url
                credentials = [args.user, args.password] if args.user else []
            else:
                server = _start(tmp, group, mode, args.workers, args.engine)
                url = server.url
                credentials = [USER, PASSWORD] if mode == "auth" else []
            try:
                result = run_group(group, url, credentials, tmp)
            finally:
                if server is not None:
                    server.stop()
            label = f"{group} ({mode})"
            print(f"{label:22} {result.summary or 'no summary: litmus did not finish'}")
            for label, items in (
                ("FAIL", result.failures),
                ("WARNING", result.warnings),
                ("SKIPPED", result.skipped),
            ):
                for item in items:
                    print(f"    {label}: {item}")
            ok = ok and result.clean
        if not ok:
            log = os.path.join(tmp, "debug.log")
            if os.path.exists(log):
                shutil.copy(log, "litmus-debug.log")
                print("full traces: litmus-debug.log")
    print("litmus: all groups passed with no warnings" if ok else "litmus: FAILED")
    return 0 if ok else 1


def _start(tmp: str, group: str, mode: str, workers: int | None, engine: str | None):  # type: ignore[no-untyped-def]
    from davserver.config import load
    from davserver.passwords import set_password
    from davserver.prefork import Workers
    from davserver.server import DavServer

    base = tempfile.mkdtemp(prefix=f"{group}-{mode}-", dir=tmp)
    overrides = {
        "root": os.path.join(base, "root"),
        "state_dir": os.path.join(base, "state"),
        "port": 0,
        "access_log": False,
        "workers": workers,
        "engine": engine,
    }
    if mode == "auth":
        users, digest = os.path.join(base, "users"), os.path.join(base, "users.digest")
        set_password(users, USER, PASSWORD, digest, "davserver")
        overrides.update(htpasswd=users, digest_file=digest)
    config = load(None, overrides)
    if config.worker_count() > 1:
        # Forked from this process; nothing here needs the parent's watching loop.
        workers = Workers(config, config.worker_count())
        workers.start()
        return workers
    server = DavServer(config)
    server.start()
    server.serve_in_thread()
    return server


if __name__ == "__main__":
    sys.exit(main())
