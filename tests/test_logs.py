"""The log's line writer (davserver.logs): the same lines as logging's own formatter, one
write per line, and the access line's path with and without `configure`."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from davserver import logs


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    os.close(read)
    os.close(write)


def _written(fd: int) -> str:
    return os.read(fd, 65536).decode("utf-8")


@given(
    created=st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False),
    message=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80),
    level=st.sampled_from([logging.INFO, logging.WARNING, logging.ERROR]),
)
def test_a_line_is_what_loggings_formatter_writes(created: float, message: str, level: int) -> None:
    record = logging.LogRecord("davserver", level, __file__, 1, "%s", (message,), None)
    record.created = created
    record.msecs = (created - int(created)) * 1000
    expected = logging.Formatter(logs.FORMAT).format(record) + "\n"
    read, write = os.pipe()
    try:
        logs.LineWriter(write).emit(record)
        assert _written(read) == expected
    finally:
        os.close(read)
        os.close(write)


def test_a_record_with_a_traceback_keeps_it(pipe: tuple[int, int]) -> None:
    read, write = pipe
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("davserver").makeRecord(
            "davserver", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info()
        )
    logs.LineWriter(write).emit(record)
    text = _written(read)
    assert text.splitlines()[0].endswith(" ERROR failed")
    assert "Traceback (most recent call last)" in text
    assert text.rstrip().endswith("ValueError: boom")


def test_access_lines_go_to_the_logger_until_configured(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, pipe: tuple[int, int]
) -> None:
    read, write = pipe
    monkeypatch.setattr(logs, "_access_writer", None)
    monkeypatch.setattr(logs.access_logger, "level", logging.WARNING)
    assert not logs.access_wanted()
    with caplog.at_level(logging.INFO, logger="davserver.access"):
        assert logs.access_wanted()
        logs.access('127.0.0.1 - "GET /a" 200 1 0.000s')
    assert [r.getMessage() for r in caplog.records] == ['127.0.0.1 - "GET /a" 200 1 0.000s']

    caplog.clear()
    monkeypatch.setattr(logs, "_access_writer", logs.LineWriter(write))
    assert logs.access_wanted()
    logs.access('127.0.0.1 - "GET /b" 200 1 0.000s')
    assert caplog.records == []
    assert _written(read).endswith(' INFO 127.0.0.1 - "GET /b" 200 1 0.000s\n')
