"""The litmus conformance suite, every group, against a fresh davserver (issue 5).

litmus missing is a failure, not a skip: CI installs it (tests/run), and a developer machine
without it must notice.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import run_litmus


def test_litmus_installed() -> None:
    assert shutil.which("litmus"), "litmus is not installed: apt-get install -y litmus"


@pytest.mark.parametrize(
    "workers", [(), ("--workers", "1")], ids=["default-workers", "one-process"]
)
def test_litmus_all_groups_pass_without_warnings(tmp_path: Path, workers: tuple[str, ...]) -> None:
    """On the default start (a worker process per CPU) and in one process."""
    returncode, report = run_litmus(tmp_path, *workers, timeout=900)
    assert returncode == 0, report
    for group in ("basic", "copymove", "props", "locks", "http"):
        for mode in ("anonymous", "auth"):
            line = next(ln for ln in report.splitlines() if ln.startswith(f"{group} ({mode})"))
            assert f"summary for `{group}'" in line and "0 failed" in line, report
    assert "0 failed" in report and "WARNING" not in report and "SKIPPED" not in report
