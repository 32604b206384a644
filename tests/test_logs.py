"""The log's line writer (davserver.logs): the same lines as logging's own formatter, one
write per line, and the access line's path with and without `configure`."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from davserver import app, logs


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


def test_a_line_to_a_reader_gone_or_a_closed_descriptor_is_dropped() -> None:
    """EPIPE and EBADF lose the line and nothing else: before, access() raised into the app,
    and a GET of a file was answered with a closed connection."""
    read, write = os.pipe()
    os.close(read)
    try:
        logs.LineWriter(write).line(0.0, "INFO", "lost")
    finally:
        os.close(write)
    with open(os.devnull, "rb") as read_only:
        logs.LineWriter(read_only.fileno()).line(0.0, "INFO", "lost")


def _serve_with_stderr(
    tmp_path: Path, workers: int = 1, **popen: Any
) -> tuple[subprocess.Popen[bytes], int]:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "a.txt").write_bytes(b"hello")
    command = [sys.executable, "-m", "davserver", "serve", str(tmp_path / "root"), "--port", "0"]
    command += ["--state-dir", str(tmp_path / "state"), "--workers", str(workers)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, **popen)
    assert proc.stdout is not None
    for raw in proc.stdout:
        found = re.search(rb"https?://[^/]*:(\d+)", raw)
        if found:
            return proc, int(found.group(1))
    proc.kill()
    raise AssertionError("the server printed no URL")


def _two_gets_on_one_connection(port: int) -> list[tuple[int, bytes]]:
    with requests.Session() as session:
        answers = [session.get(f"http://127.0.0.1:{port}/a.txt", timeout=10) for _ in range(2)]
    return [(answer.status_code, answer.content) for answer in answers]


@pytest.mark.parametrize("broken", ["reader-gone", "closed-at-start"])
def test_requests_are_answered_when_standard_error_cannot_be_written(
    tmp_path: Path, broken: str
) -> None:
    popen: dict[str, Any] = {"stderr": subprocess.PIPE}
    if broken == "closed-at-start":
        popen = {"preexec_fn": lambda: os.close(2)}
    proc, port = _serve_with_stderr(tmp_path, **popen)
    try:
        if proc.stderr is not None:
            proc.stderr.close()  # EPIPE from now on
        assert _two_gets_on_one_connection(port) == [(200, b"hello"), (200, b"hello")]
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        assert proc.stdout is not None
        proc.stdout.close()


def test_no_line_is_written_to_what_takes_descriptor_2_when_it_was_closed(tmp_path: Path) -> None:
    """Python starts with sys.stderr None when descriptor 2 is closed; the next file opened
    gets 2, and a log line written there would land in it (a user's file, a client's socket)."""
    script = (
        "import logging, os\n"
        "from davserver import logs\n"
        "logs.configure('info', True)\n"
        f"fd = os.open({str(tmp_path / 'file')!r}, os.O_WRONLY | os.O_CREAT)\n"
        "assert fd == 2, fd\n"
        "logs.access('access line')\n"
        "logging.getLogger('davserver').error('error line')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, preexec_fn=lambda: os.close(2))
    assert (tmp_path / "file").read_bytes() == b""


def test_access_lines_of_64_kib_targets_from_two_workers_stay_whole(tmp_path: Path) -> None:
    """A line longer than PIPE_BUF is written to a pipe in pieces: with two worker processes
    and a reader that falls behind, their lines were spliced together. Targets and client
    addresses are cut so that a line stays whole."""
    proc, port = _serve_with_stderr(tmp_path, workers=2, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    stderr = proc.stderr.fileno()
    read: list[bytes] = []

    def slow_reader() -> None:
        while piece := os.read(stderr, 700):
            read.append(piece)
            time.sleep(0.0005)

    def client(letter: str) -> None:
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(f"GET /{letter * 60_000} HTTP/1.1\r\nHost: h\r\n".encode())
                sock.sendall(b"Connection: close\r\n\r\n")
                while sock.recv(65536):
                    pass

    reader = threading.Thread(target=slow_reader)
    reader.start()
    try:
        clients = [threading.Thread(target=client, args=(letter,)) for letter in "abcd"]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        reader.join(30)
        proc.stderr.close()
        assert proc.stdout is not None
        proc.stdout.close()
    lines = [line for line in b"".join(read).decode().splitlines() if "INFO 127.0.0.1" in line]
    assert len(lines) == 80
    whole = re.compile(r'.* INFO 127\.0\.0\.1 - "GET /(a+|b+|c+|d+)\.\.\." 414 \d+ \d+\.\d{3}s')
    assert [line for line in lines if not whole.fullmatch(line)] == []
    assert {len(line.split('"')[1]) for line in lines} == {len("GET ") + 2000 + len("...")}


@pytest.mark.parametrize(
    ("sent", "logged"),
    [
        ("/a%20b/c.txt?x=1", "/a%20b/c.txt?x=1"),
        ('/a" 200 5 0.001s', "/a\\x22 200 5 0.001s"),
        ("/a\\b", "/a\\x5Cb"),
        ("/\x1b[2K\x1b]0;t\x07\x00\x7f", "/\\x1B[2K\\x1B]0;t\\x07\\x00\\x7F"),
        ("/a\r\nb", "/a\\x0D\\x0Ab"),
        ("/caf\xc3\xa9", "/caf\\xC3\\xA9"),
        ("/\u2028", "/\\x5Cu2028"),
        ("/" + "a" * 1999, "/" + "a" * 1999),
        ("/" + "a" * 2000, "/" + "a" * 1999 + "..."),
        ("/" + '"' * 600, "/" + "\\x22" * 499 + "\\x2..."),
    ],
)
def test_what_a_client_sent_is_escaped_and_cut_in_the_access_line(sent: str, logged: str) -> None:
    """A `"` ended the quoted request early (a field of the client's making after it); ESC,
    DEL and NUL reached the log raw on cheroot. Escaped as nginx escapes them."""
    assert app._logged(sent, app._LOGGED_TARGET) == logged
