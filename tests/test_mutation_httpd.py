"""Unit tests for the deadlines of davserver/httpd.py: how long a client may take over its
handshake, its headers and a small body, and what happens to it after. Written for the mutants
of the `deadlines` target (docs/mutation.md): the live tests see a deadline only through the
clock, with margins of seconds; here the present is passed in (`_cut_off_overdue(now)`), so
each deadline is checked to the second without waiting for it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from davserver.httpd import ElasticServer

HEADER_TIMEOUT = 2.0
PER_SECOND = 32768  # bytes of a small body allowed per extra second


class Conn:
    """What the deadlines need of a cheroot connection: a socket, and to be hashable."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock


@pytest.fixture
def srv() -> ElasticServer:
    # Never started: the deadlines are plain bookkeeping until the supervisor applies them.
    return ElasticServer(("127.0.0.1", 0), lambda _e, _s: [], header_timeout=HEADER_TIMEOUT)


@pytest.fixture
def pair() -> Iterator[tuple[Conn, socket.socket]]:
    ours, client = socket.socketpair()
    with ours, client:
        client.settimeout(5)
        yield Conn(ours), client


def test_headers_get_header_timeout_from_the_first_watch(srv, pair) -> None:
    conn, _ = pair
    before = time.monotonic()
    srv.watch(conn)
    after = time.monotonic()
    # A deadline already running (a TLS handshake's) runs on through the headers: a second
    # watch, even with an allowance, does not move it.
    srv.watch(conn, 1000.0)
    assert srv._cut_off_overdue(before + HEADER_TIMEOUT - 0.5) == []
    assert not srv.cut_off(conn)
    assert srv._cut_off_overdue(after + HEADER_TIMEOUT) == [conn]
    assert srv.cut_off(conn)


def test_a_small_body_gets_header_timeout_and_a_second_per_32_kib(srv, pair) -> None:
    conn, _ = pair
    size = PER_SECOND * 100_000  # 100,000 s more: a wrong divisor is seconds off
    before = time.monotonic()
    with srv.body_deadline(conn, size):
        after = time.monotonic()
        assert srv._cut_off_overdue(before + HEADER_TIMEOUT + 100_000 - 0.5) == []
        assert srv._cut_off_overdue(after + HEADER_TIMEOUT + 100_000) == [conn]
        assert srv.cut_off(conn)
    # Once the body is read, the connection is no one's business: not watched, not cut.
    assert not srv.cut_off(conn)


def test_a_body_read_in_time_is_no_longer_watched(srv, pair) -> None:
    conn, _ = pair
    with srv.body_deadline(conn, PER_SECOND):
        pass
    assert srv._cut_off_overdue(time.monotonic() + 1e9) == []


def test_unwatch_forgets_the_deadline_and_the_cut(srv, pair) -> None:
    conn, _ = pair
    srv.unwatch(conn)  # never watched: nothing to forget, no error
    srv.watch(conn)
    srv.unwatch(conn)
    assert srv._cut_off_overdue(time.monotonic() + 1e9) == []
    # And a new watch after an unwatch starts a new deadline.
    srv.watch(conn)
    assert srv._cut_off_overdue(time.monotonic() + HEADER_TIMEOUT + 1) == [conn]
    srv.unwatch(conn)
    assert not srv.cut_off(conn)


def test_an_overdue_connection_is_shut_once_and_the_others_kept(srv, pair) -> None:
    conn, client = pair
    ours2, client2 = socket.socketpair()
    with ours2, client2:
        late = Conn(ours2)
        srv.watch(conn)
        now = time.monotonic()
        srv.watch(late, 10.0)
        assert srv._cut_off_overdue(now + HEADER_TIMEOUT + 5) == [conn]
        # The client of the connection cut off sees its end; the other's stays open.
        assert client.recv(1) == b""
        client2.settimeout(0.2)
        with pytest.raises(TimeoutError):
            client2.recv(1)
        assert srv._cut_off_overdue(now + HEADER_TIMEOUT + 5) == []
        assert srv.cut_off(conn) and not srv.cut_off(late)
        assert srv._cut_off_overdue(now + HEADER_TIMEOUT + 11) == [late]


def test_a_connection_already_closed_is_cut_off_without_an_error(srv, pair) -> None:
    # The supervisor thread cuts off every overdue connection in one pass: one whose socket
    # is gone (shutdown raises) must not stop it, nor the others.
    conn, _ = pair
    ours2, client2 = socket.socketpair()
    with client2:
        gone = Conn(ours2)
        ours2.close()
        srv.watch(gone)
        srv.watch(conn)
        overdue = srv._cut_off_overdue(time.monotonic() + HEADER_TIMEOUT + 1)
    assert sorted(map(id, overdue)) == sorted(map(id, [gone, conn]))
    assert srv.cut_off(gone) and srv.cut_off(conn)
