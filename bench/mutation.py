"""Mutation testing with mutmut 3 over the modules where a bug loses data or lets someone in.

    .venv/bin/python bench/mutation.py                  # every target below (see docs/mutation.md)
    .venv/bin/python bench/mutation.py paths ifheader   # some of them
    .venv/bin/python bench/mutation.py --write          # and rewrite the table in docs/mutation.md

Each target is one module mutated against only the fast test files that cover it: mutmut first
runs the whole test selection once to learn which test reaches which function, so a selection
with live-server tests would cost minutes before the first mutant. A target runs in its own
scratch copy of the project (build/mutation/<target>/, git-ignored, made afresh each time)
whose pyproject.toml is ours with `only_mutate` and the test selection of that target added:
mutmut reads its settings from the working folder only.

A survivor is either killed by a test or listed in EQUIVALENT with the reason no test can tell
it from the original. mutmut numbers the mutants of a function in order, so the names stay
valid while that function is unchanged; after an edit, rerun and examine the new survivors.
The exit status is 1 when a survivor is neither killed nor explained.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "build" / "mutation"
DOC = ROOT / "docs" / "mutation.md"
TABLE_START = "<!-- mutation table: bench/mutation.py --write -->"
TABLE_END = "<!-- end of mutation table -->"


@dataclass(frozen=True)
class Target:
    """`module` mutated (only the mutants matching `mutants`, if given) against `tests`."""

    module: str
    tests: tuple[str, ...]
    mutants: tuple[str, ...] = ()


_AUTH = "davserver.auth."
TARGETS: dict[str, Target] = {
    "paths": Target("davserver/paths.py", ("tests/test_paths.py",)),
    "ifheader": Target("davserver/ifheader.py", ("tests/test_ifheader.py",)),
    "headers": Target("davserver/headers.py", ("tests/test_headers.py",)),
    # The access rules only: the Basic and Digest checks are exercised through a live server.
    "auth-rules": Target(
        "davserver/auth.py",
        ("tests/test_auth_rules.py",),
        tuple(
            _AUTH + name
            for name in (
                "xǁRuleǁ*",
                "xǁPolicyǁ*",
                "x_needs__mutmut_*",
                "x_require__mutmut_*",
                "x_default_policy__mutmut_*",
            )
        ),
    ),
    "owners": Target("davserver/owners.py", ("tests/test_claims.py",)),
    "store-base": Target(
        "davserver/store/base.py", ("tests/test_claims.py", "tests/test_store_contract.py")
    ),
    "locking": Target("davserver/locking.py", ("tests/test_locks.py",)),
}

# Survivors no test can kill, with the reason. Keys are mutmut's mutant names.
EQUIVALENT: dict[str, str] = {
    "davserver.paths.x_url_to_path__mutmut_11": 'codec names ignore case: "LATIN-1" is latin-1',
    "davserver.paths.x_url_to_path__mutmut_13": 'codec names ignore case: "UTF-8" is utf-8',
    "davserver.paths.x_name__mutmut_4": (
        "a provider path starts with '/', so rsplit('/') with or without a limit ends with "
        "the same last segment"
    ),
    "davserver.paths.x_name__mutmut_7": "the same: rsplit('/', 2) ends with the same segment",
    "davserver.paths.x_name__mutmut_8": (
        "rsplit('/', 1) of a path starting with '/' has exactly two items, so [1] is [-1]"
    ),
}

KILLED = ("killed", "timeout", "caught by type check", "segfault")


@dataclass
class Score:
    """The outcome of one target."""

    name: str
    target: Target
    statuses: dict[str, str]
    seconds: float

    @property
    def killed(self) -> int:
        return sum(status in KILLED for status in self.statuses.values())

    @property
    def equivalent(self) -> list[str]:
        return [m for m, s in self.statuses.items() if s not in KILLED and m in EQUIVALENT]

    @property
    def unexplained(self) -> list[str]:
        return [m for m, s in self.statuses.items() if s not in KILLED and m not in EQUIVALENT]

    @property
    def score(self) -> float:
        scored = len(self.statuses) - len(self.equivalent)
        return 100.0 * self.killed / scored if scored else 100.0

    def command(self) -> str:
        return f".venv/bin/python bench/mutation.py {self.name}"


def prepare(name: str, target: Target) -> Path:
    """A fresh scratch copy of the project whose mutmut settings select `target`."""
    work = SCRATCH / name
    shutil.rmtree(work, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis")
    for folder in ("davserver", "tests"):
        shutil.copytree(ROOT / folder, work / folder, ignore=ignore)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    selection = ", ".join(f'"{test}"' for test in target.tests)
    settings = (
        f'only_mutate = ["{target.module}"]\npytest_add_cli_args_test_selection = [{selection}]\n'
    )
    text = text.replace("[tool.mutmut]\n", "[tool.mutmut]\n" + settings, 1)
    tomllib.loads(text)  # a broken edit must fail here, not as a puzzling mutmut error
    (work / "pyproject.toml").write_text(text, encoding="utf-8")
    return work


def mutmut(work: Path, *args: str, log: Path | None = None) -> str:
    command = [str(Path(sys.executable).parent / "mutmut"), *args]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if log is None:
        done = subprocess.run(
            command, cwd=work, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout
    with log.open("w") as out:
        subprocess.run(command, cwd=work, env=env, stdout=out, stderr=out, check=True)
    return ""


def run_target(name: str, target: Target, children: int) -> Score:
    work = prepare(name, target)
    started = time.monotonic()
    mutmut(work, "run", "--max-children", str(children), *target.mutants, log=work / "run.log")
    seconds = time.monotonic() - started
    statuses: dict[str, str] = {}
    for line in mutmut(work, "results", "--all", "true").splitlines():
        mutant, _, status = line.strip().rpartition(": ")
        if not target.mutants or any(fnmatch.fnmatch(mutant, p) for p in target.mutants):
            statuses[mutant] = status
    return Score(name, target, statuses, seconds)


def table(scores: list[Score]) -> str:
    lines = [
        "| target | module | tests | mutants | killed | survived | equivalent | score | time |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        tests = ", ".join(f"`{t}`" for t in s.target.tests)
        lines.append(
            f"| `{s.name}` | `{s.target.module}` | {tests} | {len(s.statuses)} | {s.killed} "
            f"| {len(s.unexplained)} | {len(s.equivalent)} | {s.score:.1f}% "
            f"| {s.seconds / 60:.1f} min |"
        )
    return "\n".join(lines)


def write_doc(scores: list[Score]) -> None:
    """Replace the rows of the targets just run in the generated table of docs/mutation.md."""
    text = DOC.read_text(encoding="utf-8")
    head, _, rest = text.partition(TABLE_START)
    old, _, tail = rest.partition(TABLE_END)
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*$", old, re.M)}
    fresh = table(scores).splitlines()
    rows.update({s.name: row for s, row in zip(scores, fresh[2:], strict=True)})
    ordered = [rows[name] for name in TARGETS if name in rows]
    body = "\n".join([*fresh[:2], *ordered])
    DOC.write_text(f"{head}{TABLE_START}\n{body}\n{TABLE_END}{tail}", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"some of: {', '.join(TARGETS)}")
    parser.add_argument("--write", action="store_true", help="update docs/mutation.md")
    parser.add_argument("--children", type=int, default=2, help="mutants tested at once")
    options = parser.parse_args()
    unknown = set(options.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    scores = []
    for name in options.targets or TARGETS:
        print(f"{name}: mutating {TARGETS[name].module} ...", flush=True)
        score = run_target(name, TARGETS[name], options.children)
        scores.append(score)
        for mutant in score.unexplained:
            print(f"  survived: {mutant} ({score.statuses[mutant]})")
            print(f"    see: cd {SCRATCH / name} && {sys.executable} -m mutmut show {mutant}")
    print(table(scores))
    if options.write:
        write_doc(scores)
    return 1 if any(score.unexplained for score in scores) else 0


if __name__ == "__main__":
    sys.exit(main())
