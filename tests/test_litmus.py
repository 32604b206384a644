"""The litmus conformance suite, every group, against a fresh davserver (issue 5).

litmus missing is a failure, not a skip: CI installs it (tests/run), and a developer machine
without it must notice.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import litmus_results, run_litmus


def test_litmus_installed() -> None:
    assert shutil.which("litmus"), "litmus is not installed: apt-get install -y litmus"


@pytest.mark.rfc4918("R-258", "R-259")
@pytest.mark.parametrize(
    "start",
    [(), ("--workers", "1"), ("--engine", "cheroot"), ("--engine", "cheroot", "--workers", "1")],
    ids=["default-workers", "one-process", "cheroot-workers", "cheroot-one-process"],
)
def test_litmus_all_groups_pass_without_warnings(tmp_path: Path, start: tuple[str, ...]) -> None:
    """On the default start (the httptools engine, a worker process per CPU) and in one
    process, on both engines."""
    returncode, report = run_litmus(tmp_path, *start, timeout=900)
    assert returncode == 0, report
    results = litmus_results(report)
    groups = ("basic", "copymove", "props", "locks", "http")
    assert sorted(results) == sorted(
        f"{g} ({mode})" for g in groups for mode in ("anonymous", "auth")
    )
    for label, (group, run, passed, failed) in results.items():
        assert label.startswith(group + " "), report
        assert run > 0 and passed == run and failed == 0, (label, report)
    assert "litmus: all groups passed with no warnings" in report
    assert "WARNING" not in report and "SKIPPED" not in report
