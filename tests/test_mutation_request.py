"""Unit tests for how a Request reads its body (davserver/request.py): Content-Length and
chunked framing, the size limit of a small body and the deadline it is read under. Written for
the mutants of the `request-body` target (docs/mutation.md) that the live-server tests could not
tell apart; each asserts what the client would see (the status and text of the refusal, the
bytes the handler gets).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest

from davserver.errors import PayloadTooLarge
from davserver.origin import Origin
from davserver.request import (
    BODY_CHUNK,
    BODY_DEADLINE,
    ClientDisconnected,
    FramingError,
    Request,
)


class Stream:
    """A wsgi.input that hands out `data` and records the size of every read."""

    def __init__(self, data: bytes, fail: Exception | None = None) -> None:
        self.data = io.BytesIO(data)
        self.fail = fail
        self.reads: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        chunk = self.data.read(size)
        if not chunk and self.fail is not None:
            raise self.fail
        return chunk


class ChunkedStream(Stream):
    """cheroot's chunked reader: read() returns b"" at the last chunk; the trailer lines are
    read separately."""

    def __init__(self, data: bytes, fail: Exception | None = None) -> None:
        super().__init__(data, fail)
        self.trailer_read = False

    def read_trailer_lines(self) -> Iterator[bytes]:
        self.trailer_read = True
        yield b"X-Trailer: 1\r\n"


def request(stream: Any, length: str | None = None, chunked: bool = False) -> Request:
    environ: dict[str, Any] = {"wsgi.input": stream}
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "Chunked"  # the coding's name ignores case
    return Request(environ, "PROPFIND", "/", Origin("http", "localhost", "", "127.0.0.1"))


# -- framing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "length"), [(None, None), ("", None), ("0", 0), ("17", 17)])
def test_content_length(raw: str | None, length: int | None) -> None:
    assert request(Stream(b""), raw).content_length == length


@pytest.mark.parametrize("raw", [" 5", "+5", "5_0", "3, 5", "-1", "0x10", "\u0665", "\u00b2"])
def test_a_content_length_that_is_no_ascii_number_is_a_framing_error(raw: str) -> None:
    with pytest.raises(FramingError) as refused:
        _ = request(Stream(b""), raw).content_length
    assert refused.value.status == 400
    assert refused.value.message == f"Content-Length {raw!r} is not a number"
    assert refused.value.headers == [("Connection", "close")]


def test_chunked_is_read_from_transfer_encoding() -> None:
    assert request(Stream(b""), chunked=True).chunked
    assert not request(Stream(b"")).chunked


@pytest.mark.parametrize(
    ("length", "chunked", "has_body"),
    [
        (None, False, False),
        ("0", False, False),
        ("3", False, True),
        (None, True, True),
    ],
)
def test_has_body(length: str | None, chunked: bool, has_body: bool) -> None:
    assert request(Stream(b"abc"), length, chunked).has_body() is has_body


def test_check_framing_refuses_a_content_length_beside_chunked() -> None:
    with pytest.raises(FramingError) as refused:
        request(ChunkedStream(b""), "5", chunked=True).check_framing()
    assert refused.value.message == "Content-Length beside Transfer-Encoding"
    # An empty Content-Length is none at all.
    request(ChunkedStream(b""), "", chunked=True).check_framing()
    request(Stream(b"12345"), "5").check_framing()
    with pytest.raises(FramingError):
        request(Stream(b""), "five").check_framing()


# -- reading ------------------------------------------------------------------------------------


def test_body_chunks_reads_exactly_the_content_length() -> None:
    stream = Stream(b"0123456789 and the next request")
    req = request(stream, "10")
    assert not req.body_consumed
    assert list(req.body_chunks(4)) == [b"0123", b"4567", b"89"]
    assert req.body_consumed
    assert stream.reads == [4, 4, 2]


def test_body_chunks_reads_a_megabyte_at_a_time_by_default() -> None:
    stream = Stream(b"x" * (BODY_CHUNK + 1))
    assert BODY_CHUNK == 1024 * 1024
    assert list(request(stream, str(BODY_CHUNK + 1)).body_chunks()) == [
        b"x" * BODY_CHUNK,
        b"x",
    ]


def test_body_chunks_without_a_body_reads_nothing() -> None:
    stream = Stream(b"next request")
    assert list(request(stream).body_chunks()) == []
    assert stream.reads == []


def test_a_body_that_ends_before_its_content_length_is_a_disconnect() -> None:
    with pytest.raises(ClientDisconnected) as broke:
        list(request(Stream(b"0123"), "10").body_chunks(3))
    assert broke.value.message == "the upload ended 6 bytes before its Content-Length"
    assert broke.value.headers == [("Connection", "close")]


@pytest.mark.parametrize("chunked", [False, True])
def test_an_upload_that_breaks_off_is_a_disconnect(chunked: bool) -> None:
    stream = (ChunkedStream if chunked else Stream)(b"01", fail=OSError("reset by peer"))
    with pytest.raises(ClientDisconnected) as broke:
        list(request(stream, None if chunked else "10", chunked).body_chunks())
    assert broke.value.message == "the upload broke off: reset by peer"


def test_a_malformed_chunked_body_is_a_framing_error() -> None:
    stream = ChunkedStream(b"01", fail=ValueError("Bad chunked transfer size"))
    with pytest.raises(FramingError) as refused:
        list(request(stream, chunked=True).body_chunks())
    assert refused.value.message == "malformed chunked body: Bad chunked transfer size"


def test_a_chunked_body_is_read_to_its_end_trailers_included() -> None:
    stream = ChunkedStream(b"0123456789")
    assert list(request(stream, chunked=True).body_chunks(4)) == [b"0123", b"4567", b"89"]
    assert stream.reads == [4, 4, 4, 4]
    assert stream.trailer_read
    # A WSGI server whose input has no trailers to read (not cheroot) is read all the same.
    assert list(request(Stream(b"0123"), chunked=True).body_chunks(3)) == [b"012", b"3"]


# -- a small body: limit and deadline -------------------------------------------------------------


class Deadlines:
    """A BODY_DEADLINE hook that records the size each deadline was given, and whether the
    body was read inside it."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.sizes: list[int] = []
        self.reads_inside: list[int] = []

    @contextlib.contextmanager
    def __call__(self, size: int) -> Iterator[None]:
        self.sizes.append(size)
        before = len(self.stream.reads)
        yield
        self.reads_inside.append(len(self.stream.reads) - before)


@pytest.mark.parametrize("chunked", [False, True])
def test_read_body_takes_a_body_of_exactly_the_limit(chunked: bool) -> None:
    body = bytes(range(256)) * 600  # three pieces of up to 64 KiB
    stream = (ChunkedStream if chunked else Stream)(body)
    req = request(stream, None if chunked else str(len(body)), chunked)
    assert req.read_body(len(body)) == body


def test_read_body_refuses_a_larger_content_length_before_reading() -> None:
    stream = Stream(b"x" * 101)
    with pytest.raises(PayloadTooLarge) as refused:
        request(stream, "101").read_body(100)
    assert refused.value.message == "the request body is limited to 100 bytes"
    assert stream.reads == []


def test_read_body_refuses_a_larger_chunked_body_as_it_arrives() -> None:
    # Read in pieces of 64 KiB: the body is refused at the piece that passes the limit.
    stream = ChunkedStream(b"x" * (3 * 65536))
    with pytest.raises(PayloadTooLarge) as refused:
        request(stream, chunked=True).read_body(65536 + 1)
    assert refused.value.message == "the request body is limited to 65537 bytes"
    assert stream.reads == [65536, 65536]


@pytest.mark.parametrize(
    ("length", "chunked", "deadline"), [("5000", False, 5000), (None, True, 100_000)]
)
def test_read_body_is_read_under_a_deadline_for_its_size(
    length: str | None, chunked: bool, deadline: int
) -> None:
    """The server's deadline grows with the body (httpd.ElasticServer.body_deadline): by its
    Content-Length, or by the limit when the size is not announced."""
    stream = (ChunkedStream if chunked else Stream)(b"y" * 5000)
    req = request(stream, length, chunked)
    deadlines = Deadlines(stream)
    req.environ[BODY_DEADLINE] = deadlines
    assert req.read_body(100_000) == b"y" * 5000
    assert deadlines.sizes == [deadline]
    assert deadlines.reads_inside == [len(stream.reads)]
