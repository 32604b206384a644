"""The `rfc4918(*ids)` marker: ties a test to the RFC 4918 requirements it checks.

The ids are those of tests/data/rfc4918-requirements.tsv; an unknown id stops the run at
collection. Every run records each marked test's node id, ids and outcome in
`.rfc4918-last-run.json` at the project root (git-ignored), keeping the previous results of the
tests not run this time, so that `python tests/rfc4918_table.py` can say which requirements pass.
`--rfc4918-map=FILE` writes the marker map of the collected tests to FILE (used with
--collect-only by the table generator and by tests/test_rfc4918_coverage.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[1]
REQUIREMENTS = PROJECT / "tests" / "data" / "rfc4918-requirements.tsv"
LAST_RUN = PROJECT / ".rfc4918-last-run.json"

_MAP = pytest.StashKey[dict[str, list[str]]]()
_OUTCOMES = pytest.StashKey[dict[str, str]]()


def read_tsv(path: Path) -> list[dict[str, str]]:
    """The rows of a tab-separated file with a header line, as dicts."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def requirement_ids() -> set[str]:
    return {row["id"] for row in read_tsv(REQUIREMENTS)}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rfc4918-map",
        metavar="FILE",
        help="write {node id: [RFC 4918 requirement ids]} of the collected tests to FILE",
    )
    parser.addoption(
        "--rfc4918-record",
        metavar="FILE",
        default=str(LAST_RUN),
        help="where the outcomes of the marked tests are merged (default: %(default)s)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "rfc4918(*ids): the RFC 4918 requirements (R-001...) this test checks"
    )
    config.stash[_MAP] = {}
    config.stash[_OUTCOMES] = {}
    config.pluginmanager.register(_Recorder(config.stash[_OUTCOMES]), "rfc4918-recorder")


def pytest_collection_finish(session: pytest.Session) -> None:
    # After deselection (-k, -m): the map holds exactly the tests this session runs.
    config = session.config
    known = requirement_ids()
    marks: dict[str, list[str]] = {}
    for item in session.items:
        ids = [i for mark in item.iter_markers("rfc4918") for i in mark.args]
        if not ids:
            continue
        unknown = sorted(set(ids) - known)
        if unknown:
            raise pytest.UsageError(
                f"{item.nodeid}: unknown RFC 4918 requirement id(s) {', '.join(unknown)}"
                f" (see {REQUIREMENTS.relative_to(PROJECT)})"
            )
        marks[item.nodeid] = sorted(set(ids))
    config.stash[_MAP] = marks
    target = config.getoption("--rfc4918-map")
    if target:
        Path(target).write_text(json.dumps(marks, indent=1, sort_keys=True), encoding="utf-8")


def _outcome(report: pytest.TestReport) -> str | None:
    """The test's outcome word once a phase decides it, else None."""
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if xfail:
            return "xfailed" if report.skipped else "xpassed"
        return report.outcome
    if report.failed:
        return "error"
    if report.skipped and report.when == "setup":
        return "xfailed" if xfail else "skipped"
    return None


class _Recorder:
    """Collects each test's outcome from its phase reports (a plugin object, as the report
    hook has no access to the config)."""

    def __init__(self, outcomes: dict[str, str]) -> None:
        self.outcomes = outcomes

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = _outcome(report)
        # A teardown error after a passed call still makes the test fail.
        if outcome is not None and self.outcomes.get(report.nodeid) in (None, "passed"):
            self.outcomes[report.nodeid] = outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    marks = config.stash[_MAP]
    ran = {node: outcome for node, outcome in config.stash[_OUTCOMES].items() if node in marks}
    if not ran:
        return
    record = Path(config.getoption("--rfc4918-record"))
    previous: dict[str, Any] = {}
    if record.exists():
        try:
            previous = json.loads(record.read_text(encoding="utf-8"))
        except ValueError:
            previous = {}  # a damaged record only loses old outcomes
    for node, outcome in ran.items():
        previous[node] = {"ids": marks[node], "outcome": outcome}
    record.write_text(json.dumps(previous, indent=1, sort_keys=True), encoding="utf-8")
