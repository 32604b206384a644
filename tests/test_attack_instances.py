"""An adversarial review of several davserver instances sharing one PostgreSQL database
(issue 18): clients racing through different instances, instances killed in the middle of a
change, the database going away under them, hostile sizes and names.

Every test talks HTTP to real instances (separate processes, tests/procs.py) over a real
PostgreSQL (tests/pg.py), except where a liveness rule is checked on two `PostgresDatabase`
objects with a short grace. Each test is named for what a user sees; those that proved a
defect say so in their comment.
"""

from __future__ import annotations

import signal
from pathlib import Path

from pg import PostgresServer
from test_postgresql import dav, instances, several

__all__ = ["instances"]  # a fixture, used by name


def test_an_instance_stopped_while_the_database_is_frozen_still_stops(
    tmp_path: Path, postgres_url: str, postgres: PostgresServer
) -> None:
    # Defect: the owner's farewell (removing its row, releasing its advisory lock) waited for
    # an answer forever, so SIGTERM never ended an instance whose database had stalled.
    with several(tmp_path, postgres_url) as (first, second, _):
        assert dav(first, "PUT", "/f.txt", data=b"x").status_code == 201
        postgres.freeze(True)
        try:
            assert first.proc is not None
            first.proc.send_signal(signal.SIGTERM)
            assert first.proc.wait(30) == 0
        finally:
            postgres.freeze(False)
        assert dav(second, "GET", "/f.txt").content == b"x"
