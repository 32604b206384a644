"""Review of header_timeout (httpd.ElasticServer): what the header deadline must not cut off,
and what a slow client can still do around it.

Small timeouts throughout: header_timeout=1 and a request_timeout of a few seconds. Clients
that must be served send their headers well within the deadline, or wait where the deadline
does not apply; hostile clients are bounded loops that stop after a few seconds.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helpers
import pytest
import requests
from helpers import COLOR, color_of, proppatch_body, self_signed_certificate

HEADER_TIMEOUT = 1

# Each test on each engine: the fixtures `engine` and `make_server` (conftest's, on that engine).
engine = helpers.engine
make_server = helpers.make_server


def read_response(reader: Any) -> tuple[int, dict[str, str], bytes]:
    """One response (head and a Content-Length body) from `reader`, a file made with
    `sock.makefile("rb")`, so that bytes of a following response stay buffered for the next
    call; interim 1xx are skipped."""
    while True:
        status_line = reader.readline()
        assert status_line, "the server closed the connection without answering"
        status = int(status_line.split(b" ", 2)[1])
        headers = {}
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if status >= 200:
            break
    length = int(headers.get("content-length", "0"))
    body = reader.read(length)
    assert len(body) == length, "the server closed the connection inside a response body"
    return status, headers, body


def trickle(sock: socket.socket, data: bytes, pieces: int, pause: float) -> None:
    """Send `data` in `pieces` parts, `pause` seconds apart (a slow but steady client)."""
    size = -(-len(data) // pieces)
    for start in range(0, len(data), size):
        sock.sendall(data[start : start + size])
        time.sleep(pause)


def tls_server(make_server: Callable[..., Any], tmp_path: Path, **overrides: Any) -> Any:
    cert, key = self_signed_certificate(tmp_path)
    return make_server(cert=str(cert), key=str(key), **overrides)


def tls_context(live: Any) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=live.config.cert)


# -- what the deadline must not cut off ---------------------------------------------------------


def _headers(mode: str, body: bytes) -> bytes:
    framing = (
        "Transfer-Encoding: chunked\r\n"
        if mode == "chunked"
        else f"Content-Length: {len(body)}\r\n"
    )
    expect = "Expect: 100-continue\r\n" if mode == "expect-100" else ""
    return (
        f"PUT /upload.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n{framing}{expect}"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def _encoded(mode: str, body: bytes, pieces: int) -> bytes:
    if mode != "chunked":
        return body
    size = -(-len(body) // pieces)
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("mode", ["content-length", "chunked", "expect-100"])
def test_a_slow_body_after_headers_sent_just_in_time_is_never_cut_off(
    make_server: Callable[..., Any], mode: str
):
    # The headers take most of header_timeout, the body then twice header_timeout: the deadline
    # ended with the headers and must not reach into the upload.
    live = make_server(request_timeout=5, header_timeout=HEADER_TIMEOUT)
    body = bytes(range(256)) * 8
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        trickle(sock, _headers(mode, body), pieces=6, pause=0.1)
        if mode == "expect-100":
            interim = sock.recv(65536)
            assert interim.startswith(b"HTTP/1.1 100 "), interim
        trickle(sock, _encoded(mode, body, 20), pieces=20, pause=0.1)
        status, _, _ = read_response(sock.makefile("rb"))
    assert status == 201
    assert (live.root / "upload.bin").read_bytes() == body


def test_a_pipelined_request_behind_a_long_upload_is_served(make_server: Callable[..., Any]):
    # The second request's bytes arrive while the first upload is still running, long past
    # header_timeout after the connection began; its deadline starts only when it is read.
    live = make_server(request_timeout=5, header_timeout=HEADER_TIMEOUT)
    body = b"x" * 3000
    first = (
        f"PUT /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    )
    second = b"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(first)
        trickle(sock, body[:-1], pieces=15, pause=0.1)
        sock.sendall(body[-1:] + second)  # pipelined: sent before the first answer is read
        reader = sock.makefile("rb")
        assert read_response(reader)[0] == 201
        status, _, content = read_response(reader)
    assert status == 200
    assert content == body


def test_a_kept_alive_tls_connection_idle_past_header_timeout_still_serves(
    make_server: Callable[..., Any], tmp_path: Path
):
    # tests/test_hostile.py checks this over plain HTTP; over TLS the selector sees encrypted
    # records, and the deadline must still start only with the next request.
    live = tls_server(make_server, tmp_path, request_timeout=5, header_timeout=HEADER_TIMEOUT)
    (live.root / "f.txt").write_bytes(b"still here")
    request = b"GET /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    raw = socket.create_connection(("127.0.0.1", live.port), timeout=5)
    with tls_context(live).wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        reader = sock.makefile("rb")
        for _ in range(2):
            sock.sendall(request)
            status, headers, content = read_response(reader)
            assert (status, content) == (200, b"still here")
            assert headers.get("connection", "").lower() != "close"
            time.sleep(HEADER_TIMEOUT + 0.5)


def test_a_new_connection_silent_past_header_timeout_is_closed(make_server: Callable[..., Any]):
    # By design (README, 'Slow and hostile clients'): a new connection waits for its first
    # byte in cheroot's selector, holding no worker; one that sends nothing is closed by the
    # header deadline, not request_timeout. (A kept-alive connection waits there too, and is
    # not cut: test_hostile.py.)
    live = make_server(request_timeout=30, header_timeout=HEADER_TIMEOUT)
    # The socket's 10 s timeout is the bound: request_timeout (30 s) would raise TimeoutError.
    with (
        socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock,
        contextlib.suppress(ConnectionResetError),
    ):
        assert sock.recv(65536) == b""


def test_a_large_xml_body_on_a_slow_link_gets_a_second_per_32_kib(
    make_server: Callable[..., Any],
):
    # A small body is read whole under a deadline (header_timeout), which grows by a second
    # per 32 KiB it announces: a 320 KiB PROPPATCH has 1 + 10 s. Sent over about 3 s (three
    # times header_timeout, far within its allowance), it must be served, not cut off.
    live = make_server(request_timeout=5, header_timeout=HEADER_TIMEOUT)
    (live.root / "f.txt").write_bytes(b"f")
    value = "x" * (320 * 1024)
    body = proppatch_body(COLOR, value)
    head = (
        f"PROPPATCH /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(head)
        started = time.monotonic()
        try:
            trickle(sock, body, pieces=30, pause=0.1)
        except OSError as exc:
            pytest.fail(f"the server cut off a body well within its allowance: {exc!r}")
        assert time.monotonic() - started > 2 * HEADER_TIMEOUT  # slower than headers may be
        status, _, _ = read_response(sock.makefile("rb"))
    assert status == 207
    assert color_of(live, "/f.txt") == value


# -- what a slow client can still do ------------------------------------------------------------


def test_a_tcp_connection_that_never_starts_tls_does_not_stall_other_clients(
    make_server: Callable[..., Any], tmp_path: Path
):
    # README, 'Slow and hostile clients': a slow client holds one worker, and its headers are
    # cut off header_timeout after the connection was accepted. A client that connects to the
    # HTTPS port and sends nothing must therefore not keep anyone else from being served.
    live = tls_server(make_server, tmp_path, request_timeout=6, header_timeout=HEADER_TIMEOUT)
    (live.root / "f.txt").write_bytes(b"still here")
    with socket.create_connection(("127.0.0.1", live.port), timeout=10):
        time.sleep(0.2)  # the server has accepted it
        try:
            # A liveness bound: half of request_timeout, three times header_timeout.
            answer = requests.get(live.url("/f.txt"), timeout=3, verify=live.config.cert)
        except requests.exceptions.Timeout:
            pytest.fail("one silent connection to the HTTPS port stalled every other client")
    assert answer.content == b"still here"


def test_stop_is_not_held_up_by_an_unfinished_tls_handshake(
    make_server: Callable[..., Any], tmp_path: Path
):
    live = tls_server(make_server, tmp_path, request_timeout=10, header_timeout=HEADER_TIMEOUT)
    with socket.create_connection(("127.0.0.1", live.port), timeout=10):
        time.sleep(0.2)
        stopper = threading.Thread(target=live.stop, daemon=True)
        stopper.start()
        stopper.join(3)  # a bound: stop() waits 0.1 s per check of idle connections
        stopped = not stopper.is_alive()
    stopper.join(15)
    assert stopped, "stop() waited on a client that never finished its TLS handshake"


def test_cutting_off_a_tls_client_logs_no_warning(
    make_server: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    # Over plain HTTP a cut-off is one INFO line. Over TLS it must not be more: a hostile client
    # should not be able to fill the warning log with 'Unhandled error' lines.
    # Nor may what was read of the request run as if it were whole: the DELETE never happens.
    caplog.set_level(logging.INFO, logger="davserver")
    live = tls_server(make_server, tmp_path, request_timeout=5, header_timeout=HEADER_TIMEOUT)
    (live.root / "f.txt").write_bytes(b"still here")
    raw = socket.create_connection(("127.0.0.1", live.port), timeout=5)
    with tls_context(live).wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        sock.sendall(b"DELETE /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        sock.settimeout(0.2)
        cut_off = False
        for _ in range(30):  # at most ~6 s
            try:
                sock.sendall(b"x")
                cut_off = not sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                cut_off = True
            if cut_off:
                break
    assert cut_off
    # The worker logs after the supervisor has closed the stream; give it a moment.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not any(
        "headers not complete" in r.getMessage() for r in caplog.records
    ):
        time.sleep(0.05)
    time.sleep(0.3)
    assert any("headers not complete" in r.getMessage() for r in caplog.records)
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []
    assert (live.root / "f.txt").read_bytes() == b"still here"


def test_plain_http_on_the_https_port_gets_a_plain_400(make_server: Callable[..., Any], tmp_path):
    # The handshake now happens on the worker (httpd.DeferredTLSAdapter); cheroot's answer to
    # a client speaking plain HTTP to the TLS port must survive the move.
    live = tls_server(make_server, tmp_path)
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 400 "), data[:200]
    assert b"HTTPS" in data
