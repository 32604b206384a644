"""Message framing (RFC 9112 6.3) against a `davserver serve` process, on every engine, in one
process and with worker processes: a body whose length cannot be trusted is an unrecoverable
error (400, the connection closed, nothing stored), and an upload the client cuts off keeps the
old file (issue 16).

Requests are raw bytes on a socket: no client library sends them this way.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import temp_files, wait_for
from procs import ServerProcess
from test_hostile import Answer, read_answer

from davserver.config import ENGINES

OLD = b"old content"


@pytest.fixture(
    scope="module",
    params=[(engine, workers) for engine in ENGINES for workers in (1, 2)],
    ids=lambda p: f"{p[0]}-{'one-process' if p[1] == 1 else 'two-workers'}",
)
def served(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ServerProcess]:
    engine, workers = request.param
    base = tmp_path_factory.mktemp("framing")
    (base / "root").mkdir()
    proc = ServerProcess(base / "root", base / "state", "--engine", engine, workers=workers)
    yield proc
    proc.stop()
    assert proc.errors() == ""


@pytest.fixture
def old_file(served: ServerProcess, request: pytest.FixtureRequest) -> Path:
    """A file holding OLD, named after the test, that a refused upload must leave alone."""
    path = served.root / request.node.name.replace("[", "_").replace("]", "")
    path.write_bytes(OLD)
    return path


def raw(served: ServerProcess, head: str, body: bytes = b"") -> Answer:
    with socket.create_connection(("127.0.0.1", served.port), timeout=20) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + body)
        return read_answer(sock)


def refused(answer: Answer) -> None:
    """One 400 answer, then the connection closed; nothing after it read as a request."""
    assert answer.status == 400, answer
    assert answer.closed
    assert b"HTTP/1." not in answer.body, answer.body


def test_two_different_content_lengths(served: ServerProcess, old_file: Path) -> None:
    head = f"PUT /{old_file.name} HTTP/1.1\nHost: x\nContent-Length: 3\nContent-Length: 5\n\n"
    refused(raw(served, head, b"hello"))
    assert old_file.read_bytes() == OLD


@pytest.mark.parametrize("length", ["3, 5", "+5", "0x5", "-1"])
def test_content_length_that_is_no_number(
    served: ServerProcess, old_file: Path, length: str
) -> None:
    head = f"PUT /{old_file.name} HTTP/1.1\nHost: x\nContent-Length: {length}\n\n"
    refused(raw(served, head, b"hello"))
    assert old_file.read_bytes() == OLD


def test_content_length_beside_transfer_encoding(served: ServerProcess, old_file: Path) -> None:
    head = (
        f"PUT /{old_file.name} HTTP/1.1\nHost: x\nContent-Length: 5\nTransfer-Encoding: chunked\n\n"
    )
    refused(raw(served, head, b"5\r\nhello\r\n0\r\n\r\n"))
    assert old_file.read_bytes() == OLD


@pytest.mark.parametrize(
    "body",
    [b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n", b"-5\r\nhello\r\n0\r\n\r\n"],
    ids=["bad-size", "no-crlf", "negative-size"],
)
def test_malformed_chunked_body(served: ServerProcess, old_file: Path, body: bytes) -> None:
    head = f"PUT /{old_file.name} HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n"
    refused(raw(served, head, body))
    assert old_file.read_bytes() == OLD


def test_chunked_upload_cut_off_keeps_the_old_file(served: ServerProcess, old_file: Path) -> None:
    head = f"PUT /{old_file.name} HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n"
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=20)
    sock.sendall(head.replace("\n", "\r\n").encode() + b"5\r\nhello\r\n4000\r\nhalf")
    # The upload is being staged: the server has begun writing the new content.
    assert wait_for(lambda: bool(temp_files(served.root)), 10)
    # A reset, not an orderly end: the kernel drops what was sent and tells the server so.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    assert wait_for(lambda: not temp_files(served.root), 10)
    assert old_file.read_bytes() == OLD


def test_request_target_with_a_fragment_is_not_acted_on(served: ServerProcess) -> None:
    (served.root / "frag").mkdir()
    refused(raw(served, "DELETE /frag/#ment HTTP/1.1\nHost: x\nConnection: close\n\n"))
    assert (served.root / "frag").is_dir()
