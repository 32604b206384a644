"""CI keeps the conformance table honest: every testable RFC 4918 MUST has a test carrying its id.

The marker map comes from a --collect-only subprocess, so this works in the whole suite and alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rfc4918_plugin import REQUIREMENTS, read_tsv
from rfc4918_table import (
    TESTABLE,
    collect_marker_map,
    functions,
    nodes_by_requirement,
    render,
    status,
)


def test_every_testable_must_has_a_test() -> None:
    covered = nodes_by_requirement(collect_marker_map())
    missing = [
        row["id"]
        for row in read_tsv(REQUIREMENTS)
        if row["level"] == "MUST" and row["testable"] in TESTABLE and row["id"] not in covered
    ]
    assert missing == []


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest with the plugin on the test files in `folder`, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "rfc4918_plugin", "-p", "no:cacheprovider", *args],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_unknown_requirement_id_is_a_collection_error(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(
        'import pytest\n\n\n@pytest.mark.rfc4918("R-999")\ndef test_x():\n    pass\n'
    )
    done = run_pytest(tmp_path, "--collect-only", "test_x.py")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "test_x.py::test_x: unknown RFC 4918 requirement id(s) R-999" in done.stderr


def test_outcomes_are_recorded_and_merged_with_the_previous_run(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n\n"
        '@pytest.mark.rfc4918("R-002")\ndef test_pass():\n    pass\n\n\n'
        '@pytest.mark.rfc4918("R-003", "R-005")\ndef test_fail():\n    assert False\n\n\n'
        '@pytest.mark.rfc4918("R-005")\n@pytest.mark.xfail(strict=True)\n'
        "def test_known():\n    assert False\n\n\n"
        "def test_unmarked():\n    pass\n"
    )
    record = tmp_path / "record.json"
    assert run_pytest(tmp_path, f"--rfc4918-record={record}", "test_x.py").returncode == 1
    first = json.loads(record.read_text())
    assert first == {
        "test_x.py::test_pass": {"ids": ["R-002"], "outcome": "passed"},
        "test_x.py::test_fail": {"ids": ["R-003", "R-005"], "outcome": "failed"},
        "test_x.py::test_known": {"ids": ["R-005"], "outcome": "xfailed"},
    }
    # A run of one test keeps the others' outcomes.
    again = run_pytest(tmp_path, f"--rfc4918-record={record}", "test_x.py::test_pass")
    assert again.returncode == 0
    assert json.loads(record.read_text()) == first


def test_parameters_are_listed_once_as_their_function() -> None:
    nodes = ["t.py::test_a[1]", "t.py::test_a[2]", "t.py::test_b"]
    assert functions(nodes) == ["t.py::test_a", "t.py::test_b"]


def test_status_is_the_worst_outcome() -> None:
    outcomes = {"a": "passed", "b": "failed", "c": "xfailed"}
    assert status([], outcomes) == "no test"
    assert status(["a"], outcomes) == "passed"
    assert status(["a", "b"], outcomes) == "failed"
    assert status(["a", "c"], outcomes) == "known violation (xfail)"
    assert status(["a", "z"], outcomes) == "not run"


def test_table_row_names_runnable_tests_and_notes() -> None:
    requirement = {
        "id": "R-002",
        "level": "MUST",
        "section": "4.3",
        "testable": "yes",
        "requirement": "a | b",
    }
    text = render(
        [requirement],
        {"tests/test_x.py::test_y": ["R-002"]},
        {"tests/test_x.py::test_y": "passed"},
        {"R-002": "why"},
    )
    assert (
        "| R-002 | MUST | 4.3 | yes | a \\| b | `tests/test_x.py::test_y` | passed | why |" in text
    )
    assert "with a test: 1; passing: 1." in text
    untested = [{**requirement, "id": "R-003", "level": "SHOULD"}, {**requirement, "id": "R-004"}]
    untested[1]["testable"] = "no"
    rows = render(untested, {}, {}, {"R-003": "deliberate"}).splitlines()
    assert "| see note | deliberate |" in next(row for row in rows if row.startswith("| R-003"))
    assert "| not testable from outside |" in next(row for row in rows if row.startswith("| R-004"))
