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
    "owners": Target("davserver/owners.py", ("tests/test_claims.py", "tests/test_owners.py")),
    "store-base": Target(
        "davserver/store/base.py", ("tests/test_claims.py", "tests/test_store_contract.py")
    ),
    "store-sqlite": Target(
        "davserver/store/sqlite.py", ("tests/test_store_contract.py", "tests/test_store_sqlite.py")
    ),
    # Guard needs a request and services: test_locks.py drives it through a live server, and
    # the one test of a lock's owner (RFC 4918 6.4) needs logged-in users.
    "locking": Target(
        "davserver/locking.py",
        ("tests/test_locks.py", "tests/test_auth.py::test_locks_belong_to_their_user"),
    ),
}

# Survivors no test can kill, with the reason. Keys are mutmut's mutant names.
EQUIVALENT: dict[str, str] = {
    "davserver.paths.x_url_to_path__mutmut_11": 'codec names ignore case: "LATIN-1" is latin-1',
    "davserver.paths.x_url_to_path__mutmut_13": 'codec names ignore case: "UTF-8" is utf-8',
    "davserver.paths.x_name__mutmut_4": (
        "a provider path starts with '/', so rsplit('/') with or without a limit ends with "
        "the same last segment"
    ),
    "davserver.paths.x_name__mutmut_7": (
        "rsplit('/', 2) of a provider path ends with the same last segment as rsplit('/', 1)"
    ),
    "davserver.paths.x_name__mutmut_8": (
        "rsplit('/', 1) of a path starting with '/' has exactly two items, so [1] is [-1]"
    ),
    **{
        f"davserver.store.base.xǁ{stub}__mutmut_{n}": (
            "a default argument of a Protocol method: the stub never runs, each store "
            "implementation has its own signature"
        )
        for stub, n in (
            ("PropertyStoreǁdelete", 1),
            ("PropertyStoreǁdescribed", 1),
            ("PropertyStoreǁdescribed", 2),
            ("LockStoreǁdelete", 1),
        )
    },
    "davserver.headers.x_parse_etag_list__mutmut_6": (
        "`pos <= len(value)`: at the end the pattern (which needs a quote) finds nothing and "
        "the same list is returned"
    ),
    "davserver.headers.x_evaluate_preconditions__mutmut_9": (
        "weak=None for weak=False: the flag is only read for its truth"
    ),
    "davserver.headers.x_parse_range__mutmut_4": (
        "rpartition('=') differs only with two '=', and then either way the header is "
        "unparsable (a unit that is not 'bytes', or an item with '=' in a number) and ignored"
    ),
    "davserver.headers.x_parse_range__mutmut_12": "empty_suffix=None: only read for its truth",
    "davserver.headers.x_parse_range__mutmut_22": (
        "rpartition('-') differs only with two '-' in an item, and then either way one part "
        "is no number and the header is ignored"
    ),
    "davserver.headers.x_parse_range__mutmut_45": (
        "break for continue after a suffix range of an empty entity: with size 0 no later "
        "item can add a range, and a malformed one returns None either way"
    ),
    "davserver.headers.x_parse_range__mutmut_66": (
        "size + 1 for size - 1 as an open range's end: min(last, size - 1) cuts it back"
    ),
    **{
        f"davserver.headers.x_parse_content_range__mutmut_{n}": (
            f"rpartition({sep!r}) differs only with two {sep!r}, and then either way a part is "
            "no number (or the unit is not 'bytes'): 400 either way"
        )
        for n, sep in ((3, " "), (7, "/"), (11, "-"))
    },
    "davserver.headers.x_parse_prefer__mutmut_4": (
        "an absent Prefer read as 'XXXX' adds the token 'xxxx', which means nothing"
    ),
    "davserver.headers.x_parse_prefer__mutmut_25": (
        "an absent Brief read as 'XXXX' is not 't' either"
    ),
    "davserver.owners.x__boot_id__mutmut_9": (
        "strip('XXpid:[]XX') strips X as well, and the link text 'pid:[N]' has none"
    ),
    "davserver.owners.x_new_owner__mutmut_3": (
        "a 13-character nonce for a 12-character one: any length unique per store will do"
    ),
    **{
        f"davserver.owners.x_retire__mutmut_{n}": (
            "retire only gets names from new_owner, which hold four '/': the last segment "
            "is the same however rsplit is limited or indexed"
        )
        for n in (5, 8, 9)
    },
    **{
        f"davserver.store.sqlite.{name}": (
            "the same SQL in other letter case: SQLite's keywords, pragma names and values, "
            "table and column names ignore case"
        )
        for name in (
            "x__where_any__mutmut_17",
            *(f"xǁDatabaseǁconnection__mutmut_{n}" for n in (25, 26, 29, 30)),
            *(f"xǁSqlitePropertyStoreǁget__mutmut_{n}" for n in (16, 17)),
            *(f"xǁSqlitePropertyStoreǁmembers_with_properties__mutmut_{n}" for n in (7, 8)),
            *(f"xǁSqlitePropertyStoreǁpatch__mutmut_{n}" for n in (7, 8, 14, 15, 17)),
            *(f"xǁSqlitePropertyStoreǁ_transfer__mutmut_{n}" for n in (9, 18, 45, 46)),
            *(f"xǁSqlitePropertyStoreǁdelete__mutmut_{n}" for n in (11, 13)),
            *(f"xǁSqlitePropertyStoreǁdescribed__mutmut_{n}" for n in (11, 19, 20)),
            *(f"xǁSqliteLockStoreǁ_around__mutmut_{n}" for n in (12, 21)),
            *(f"xǁSqliteLockStoreǁacquire__mutmut_{n}" for n in (6, 7)),
            *(f"xǁSqliteLockStoreǁrefresh__mutmut_{n}" for n in (6, 7)),
            *(f"xǁSqliteLockStoreǁrelease__mutmut_{n}" for n in (6, 7)),
            *(f"xǁSqliteLockStoreǁdelete__mutmut_{n}" for n in (11, 13)),
        )
    },
    "davserver.store.sqlite.xǁDatabaseǁ__init____mutmut_13": (
        "the first generation number 1 for 0: a connection only compares it with the "
        "generation it was made in"
    ),
    "davserver.store.sqlite.xǁDatabaseǁclose__mutmut_2": (
        "generations counting down (-1, -2, ...) are as distinct as counting up"
    ),
    "davserver.store.sqlite.xǁDatabaseǁclose__mutmut_3": (
        "generations by steps of 2 are as distinct as by steps of 1"
    ),
    "davserver.store.sqlite.xǁDatabaseǁconnection__mutmut_18": (
        "sqlite3's implicit transactions (isolation_level left at its default) never start: "
        "every write runs inside Database.write()'s explicit BEGIN IMMEDIATE ... COMMIT, and "
        "reads need no transaction"
    ),
    "davserver.store.sqlite.xǁDatabaseǁdelete_where__mutmut_2": (
        "groups of 50 keys instead of 500 for a plain IN (...): more statements, the same rows "
        "deleted"
    ),
    "davserver.store.sqlite.xǁDatabaseǁdelete_where__mutmut_18": (
        "a group starting at every key instead of every step-th: overlapping groups, the same "
        "rows deleted"
    ),
    "davserver.store.sqlite.xǁSqlitePropertyStoreǁget__mutmut_9": (
        "exactly 500 names wanted are then fetched all and filtered here instead of by IN "
        "(...): the same properties"
    ),
    "davserver.store.sqlite.xǁSqlitePropertyStoreǁmove__mutmut_4": (
        "keep_source=None for False: only read for its truth"
    ),
    **{
        f"davserver.locking.{name}": (
            "the message of an error with a precondition element: the answer is the <D:error> "
            "document, and only a 500's message is logged"
        )
        for name in (
            "xǁGuardǁ_blocked__mutmut_1",
            "xǁGuardǁ_blocked__mutmut_4",
            *(f"x_existing_lock__mutmut_{n}" for n in (33, 36, 39, 40)),
        )
    },
    **{
        f"davserver.locking.{name}": (
            "a header name in other letter case: Request.header upper-cases it for the WSGI key"
        )
        for name in (
            "xǁGuardǁ__init____mutmut_7",
            "xǁGuardǁ__init____mutmut_8",
            "x_existing_lock__mutmut_5",
            "x_existing_lock__mutmut_6",
        )
    },
    "davserver.locking.xǁGuardǁ_state__mutmut_7": (
        "exists=None for False: ifheader only reads it for its truth"
    ),
    "davserver.locking.xǁGuardǁ_state__mutmut_26": (
        "a resource that is not there said to exist: with no entity tag every entity-tag "
        "condition evaluates the same (ifheader._condition_holds), and its lock tokens are kept"
    ),
    "davserver.locking.xǁGuardǁ_state__mutmut_12": (
        "a tag that names no resource of ours said to exist: with no entity tag and no lock "
        "token every condition on it evaluates the same (ifheader._condition_holds)"
    ),
    **{
        f"davserver.locking.{name}": (
            "a check of the parent's locks where no membership was asked: every such caller "
            "(COPY and MOVE) has already called require_membership on the same path, and for "
            "the root its parent is itself"
        )
        for name in (
            "xǁGuardǁtree_check__mutmut_1",
            "xǁTreeCheckǁ__init____mutmut_10",
            "xǁTreeCheckǁ__init____mutmut_12",
        )
    },
    "davserver.auth.x_needs__mutmut_77": (
        'the Depth is only compared with "0", which has no case: upper() decides alike'
    ),
    "davserver.auth.x_needs__mutmut_79": (
        'the default Depth is only compared with "0": any other word means infinity'
    ),
    "davserver.auth.x_needs__mutmut_80": (
        'a default Depth spelled "INFINITY" is not "0" either: it still means infinity'
    ),
}

# Mutants mutmut calls "suspicious" (the test process ended oddly) that the tests did catch.
CAUGHT: dict[str, str] = {
    "davserver.owners.x__pid_exists__mutmut_5": (
        "os.kill(pid, 1) for os.kill(pid, 0): test_pid_exists asks about its own process, "
        "which the mutant hangs up (SIGHUP), so the test process dies"
    ),
}

KILLED = ("killed", "timeout", "caught by type check", "segfault")


def caught(mutant: str, status: str) -> bool:
    return status in KILLED or (status == "suspicious" and mutant in CAUGHT)


@dataclass
class Score:
    """The outcome of one target."""

    name: str
    target: Target
    statuses: dict[str, str]
    seconds: float

    @property
    def killed(self) -> int:
        return sum(caught(m, s) for m, s in self.statuses.items())

    @property
    def equivalent(self) -> list[str]:
        return [m for m, s in self.statuses.items() if not caught(m, s) and m in EQUIVALENT]

    @property
    def unexplained(self) -> list[str]:
        return [m for m, s in self.statuses.items() if not caught(m, s) and m not in EQUIVALENT]

    @property
    def score(self) -> float:
        scored = len(self.statuses) - len(self.equivalent)
        return 100.0 * self.killed / scored if scored else 100.0


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


def explained() -> list[str]:
    """The equivalent and the otherwise caught survivors with their reasons, as markdown."""
    lines = ["Equivalent survivors (not counted in the score):", ""]
    lines += [f"- `{mutant}`: {reason}." for mutant, reason in sorted(EQUIVALENT.items())]
    lines += ["", 'Caught although mutmut says "suspicious" (counted as killed):', ""]
    lines += [f"- `{mutant}`: {reason}." for mutant, reason in sorted(CAUGHT.items())]
    return lines


def write_doc(scores: list[Score]) -> None:
    """Replace the rows of the targets just run in the generated table of docs/mutation.md."""
    text = DOC.read_text(encoding="utf-8")
    head, _, rest = text.partition(TABLE_START)
    old, _, tail = rest.partition(TABLE_END)
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*$", old, re.M)}
    fresh = table(scores).splitlines()
    rows.update({s.name: row for s, row in zip(scores, fresh[2:], strict=True)})
    ordered = [rows[name] for name in TARGETS if name in rows]
    body = "\n".join([*fresh[:2], *ordered, "", *explained()])
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
