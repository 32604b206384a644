"""Hostile input against a live server (issue 6): XML bombs, oversized and lying bodies, slow
connections and header injection.

Requests that a client library would refuse or repair are sent as raw bytes on a socket.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helpers
import pytest
import requests
from helpers import (
    check_head,
    parse_listing,
    request_bytes,
    self_signed_certificate,
    shared_names,
    temp_files,
    wait_for,
)
from lxml import etree

DAV = "{DAV:}"

# Each test on each engine: the fixtures `engine` and `make_server` (conftest's, on that engine).
engine = helpers.engine
make_server = helpers.make_server


# Every test here runs on each engine (the `engine` fixture): hostile input is no engine's to
# let through.


@pytest.fixture
def server(make_server: Callable[..., Any]) -> Any:
    return make_server()


def passwd_marker() -> bytes:
    """The first line of /etc/passwd: what an external entity to it would bring in."""
    with open("/etc/passwd", "rb") as handle:
        line = handle.readline().strip()
    assert line
    return line


# -- raw HTTP -----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    head: bytes
    body: bytes
    closed: bool  # the server closed the connection after answering

    def headers(self) -> list[tuple[str, str]]:
        pairs = []
        for line in self.head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            pairs.append((name.decode("latin-1").lower(), value.decode("latin-1").strip()))
        return pairs

    def header(self, name: str) -> str | None:
        for key, value in self.headers():
            if key == name.lower():
                return value
        return None


def read_answer(sock: socket.socket, until_closed: bool = True) -> Answer:
    """One response; with `until_closed`, keep reading until the server closes (a reset after
    the whole answer counts as closed: unread request bytes make the kernel send RST)."""
    data = b""
    closed = False
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(
                f"no answer within {sock.gettimeout()} s: {data[:200]!r}"
            ) from None
        if not chunk:
            closed = True
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), data[:300]
    status = int(head.split(b" ", 2)[1])
    answer = Answer(status, head, body, closed)
    length = answer.header("Content-Length")
    if length is not None:
        while len(answer.body) < int(length) and not closed:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            answer.body += chunk
    if until_closed and not closed:
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    closed = True
                    break
                answer.body += chunk
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            pass  # still open: `closed` stays False
    answer.closed = closed
    if "chunked" in (answer.header("Transfer-Encoding") or "").lower():
        answer.body = dechunk(answer.body)
    return answer


def dechunk(data: bytes) -> bytes:
    out = []
    while True:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n", "malformed chunked body"
        data = rest[size + 2 :]


def exchange(port: int, data: bytes, timeout: float = 20) -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_answer(sock)


def send(
    server: Any,
    method: str,
    target: bytes,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Answer:
    host = f"127.0.0.1:{server.port}"
    answer = exchange(server.port, request_bytes(method, target, headers, body, host))
    check_head(answer.head)
    return answer


# -- XML bombs ----------------------------------------------------------------------------------

TEMPLATES = {
    "PROPFIND": '<D:propfind xmlns:D="DAV:"><D:prop><x:p xmlns:x="urn:x">{ref}</x:p>'
    "</D:prop></D:propfind>",
    "PROPPATCH": '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
    '<x:p xmlns:x="urn:x">{ref}</x:p></D:prop></D:set></D:propertyupdate>',
    "LOCK": '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>{ref}</D:owner></D:lockinfo>",
}


def billion_laughs(_port: int) -> tuple[str, str]:
    entities = ['<!ENTITY lol0 "lol">']
    for level in range(1, 10):
        entities.append(f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">')
    return '<?xml version="1.0"?>\n<!DOCTYPE r [\n' + "\n".join(entities) + "\n]>\n", "&lol9;"


def quadratic_blowup(_port: int) -> tuple[str, str]:
    return '<!DOCTYPE r [<!ENTITY a "' + "a" * 50_000 + '">]>\n', "&a;" * 20_000


def external_file(_port: int) -> tuple[str, str]:
    return '<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n', "&xxe;"


def external_dtd(port: int) -> tuple[str, str]:
    return f'<!DOCTYPE r SYSTEM "http://127.0.0.1:{port}/x.dtd">\n', ""


def external_parameter_entity(port: int) -> tuple[str, str]:
    return f'<!DOCTYPE r [<!ENTITY % ext SYSTEM "http://127.0.0.1:{port}/p.dtd"> %ext;]>\n', ""


def external_http_entity(port: int) -> tuple[str, str]:
    return f'<!DOCTYPE r [<!ENTITY web SYSTEM "http://127.0.0.1:{port}/e.xml">]>\n', "&web;"


def deep_nesting(_port: int) -> tuple[str, str]:
    return "", "<n>" * 1000 + "</n>" * 1000


BOMBS: dict[str, Callable[[int], tuple[str, str]]] = {
    "billion-laughs": billion_laughs,
    "quadratic-blowup": quadratic_blowup,
    "external-file-entity": external_file,
    "external-dtd": external_dtd,
    "external-parameter-entity": external_parameter_entity,
    "external-http-entity": external_http_entity,
    "deep-nesting": deep_nesting,
}


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local port that an external reference points at; nobody may connect to it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def assert_nobody_connected(sock: socket.socket) -> None:
    # The server answered already, so a fetch made while parsing would be queued by now.
    with pytest.raises(BlockingIOError):
        conn, _ = sock.accept()
        conn.close()


def property_status(server: Any, path: str) -> int:
    """The status PROPFIND reports for the dead property {urn:x}p of `path`."""
    tree = etree.fromstring(propfind_prop(server, path))
    for propstat in tree.iter(DAV + "propstat"):
        if propstat.find(f"{DAV}prop/{{urn:x}}p") is not None:
            return int((propstat.findtext(DAV + "status") or "").split()[1])
    raise AssertionError("the property is not reported")


def propfind_prop(server: Any, path: str) -> bytes:
    body = b'<D:propfind xmlns:D="DAV:"><D:prop><x:p xmlns:x="urn:x"/></D:prop></D:propfind>'
    response = server.request("PROPFIND", path, headers={"Depth": "0"}, data=body)
    assert response.status_code == 207
    return response.content


@pytest.mark.parametrize("bomb", sorted(BOMBS))
@pytest.mark.parametrize("method", sorted(TEMPLATES))
def test_xml_bombs_are_refused(server: Any, listener: socket.socket, method: str, bomb: str):
    (server.root / "f.txt").write_bytes(b"plain")
    port = listener.getsockname()[1]
    prolog, ref = BOMBS[bomb](port)
    body = (prolog + TEMPLATES[method].format(ref=ref)).encode()
    assert len(body) < server.config.max_xml_body
    target = b"/" if method == "PROPFIND" else b"/f.txt"
    answer = send(server, method, target, {"Depth": "0", "Content-Type": "application/xml"}, body)
    assert answer.status == 400, answer.head
    assert passwd_marker() not in answer.body
    assert b"lollol" not in answer.body
    assert_nobody_connected(listener)
    # Nothing was stored or locked, and the server carries on.
    assert property_status(server, "/f.txt") == 404
    assert server.request("PUT", "/f.txt", data=b"after").status_code == 204
    assert (server.root / "f.txt").read_bytes() == b"after"


def test_xinclude_is_not_processed(server: Any):
    (server.root / "f.txt").write_bytes(b"plain")
    body = (
        b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:p xmlns:x="urn:x" '
        b'xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd" '
        b'parse="text"/></x:p></D:prop></D:set></D:propertyupdate>'
    )
    response = server.request("PROPPATCH", "/f.txt", data=body)
    # Stored as the XML it is: the xi:include element itself, never what it names.
    assert response.status_code == 207
    assert passwd_marker() not in response.content
    stored = propfind_prop(server, "/f.txt")
    assert passwd_marker() not in stored
    include = etree.fromstring(stored).find(
        f".//{DAV}prop/{{urn:x}}p/{{http://www.w3.org/2001/XInclude}}include"
    )
    assert include is not None and include.get("href") == "file:///etc/passwd"


# -- bounded bodies -----------------------------------------------------------------------------

TEN_GB = 10 * 1024**3


@pytest.mark.parametrize("method", ["PROPFIND", "PROPPATCH", "LOCK"])
def test_huge_declared_xml_body_is_413_unread(server: Any, method: str):
    (server.root / "f.txt").write_bytes(b"plain")
    head = (
        f"{method} /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nDepth: 0\r\n"
        f"Content-Type: application/xml\r\nContent-Length: {TEN_GB}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b"<" * 1000)
        # The answer comes without the client sending the rest, then the server hangs up.
        answer = read_answer(sock)
    assert answer.status == 413, answer.head
    assert (answer.header("Connection") or "").lower() == "close"
    assert answer.closed
    assert server.request("GET", "/f.txt").content == b"plain"


@pytest.mark.parametrize("method", ["PROPFIND", "PROPPATCH", "LOCK"])
def test_xml_body_over_the_limit_is_413(make_server: Callable[..., Any], method: str):
    live = make_server(max_xml_body=4096)
    (live.root / "f.txt").write_bytes(b"plain")
    padding = "<x:pad xmlns:x='urn:x'>" + "p" * 8000 + "</x:pad>"
    body = TEMPLATES[method].format(ref=padding).encode()
    answer = send(live, method, b"/f.txt", {"Depth": "0"}, body)
    assert answer.status == 413
    # Sent chunked, without a Content-Length to refuse it by: counted as it arrives.
    chunks = b"".join(b"%x\r\n%s\r\n" % (1000, body[i : i + 1000]) for i in range(0, 8000, 1000))
    chunks += b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - 8000, body[8000:])
    raw = (
        f"{method} /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nDepth: 0\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode() + chunks
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        sock.sendall(raw)
        answer = read_answer(sock)
    assert answer.status == 413
    assert answer.closed
    # Under the limit the same method works.
    small = TEMPLATES[method].format(ref="").encode()
    ok = live.request(method, "/f.txt", headers={"Depth": "0"}, data=small)
    assert ok.status_code == (200 if method == "LOCK" else 207)


EARLY_REFUSALS = [
    ("MKCOL", "/newdir", {}, 415),
    ("PUT", "/f.txt", {"readonly": True}, 403),
    ("PROPPATCH", "/f.txt", {"readonly": True}, 403),
    ("LOCK", "/f.txt", {"readonly": True}, 403),
]


@pytest.mark.parametrize(("method", "path", "overrides", "status"), EARLY_REFUSALS)
def test_refusal_before_a_large_body_answers_at_once_and_closes(
    make_server: Callable[..., Any],
    method: str,
    path: str,
    overrides: dict[str, Any],
    status: int,
):
    live = make_server(**overrides)
    (live.root / "f.txt").write_bytes(b"plain")
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {TEN_GB}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(head + b"m" * 1024)
        # Refused without reading the body: the server neither waits for it nor reads it.
        answer = read_answer(sock)
    assert answer.status == status
    assert (answer.header("Connection") or "").lower() == "close"
    assert answer.closed, "the server kept the connection open to read the refused body"
    assert not (live.root / "newdir").exists()
    assert (live.root / "f.txt").read_bytes() == b"plain"


def test_mkcol_with_a_body_is_415_and_the_connection_ends(server: Any):
    body = b"hello"
    raw = (
        b"MKCOL /newdir HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    pipelined = b"MKCOL /other HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(raw + pipelined)
        answer = read_answer(sock)
    assert answer.status == 415
    assert (answer.header("Connection") or "").lower() == "close"
    # "Connection: close" means it: nothing after the refused request is served.
    assert answer.closed, "the connection stayed open after Connection: close"
    assert b"HTTP/1.1" not in answer.body
    assert not (server.root / "newdir").exists()
    assert not (server.root / "other").exists()
    assert server.request("MKCOL", "/newdir").status_code == 201


def test_lying_content_length_times_out_and_keeps_the_old_file(
    make_server: Callable[..., Any],
):
    live = make_server(request_timeout=2)
    (live.root / "f.txt").write_bytes(b"old content")
    for target in (b"/f.txt", b"/new.txt"):
        head = b"PUT " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n"
        with socket.create_connection(("127.0.0.1", live.port), timeout=20) as sock:
            sock.sendall(head + b"0123456789")
            # Stall: the server gives up after its timeout (the socket timeout here is a
            # generous bound, never reached when the server works).
            data = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(65536):
                    data += chunk
        # davserver's choice: it answers 400 with the reason, then closes (a client that is
        # merely slow learns why; the half-sent body is dropped either way).
        assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n"), data
        assert data.endswith(b"timed out\n"), data
    assert (live.root / "f.txt").read_bytes() == b"old content"
    assert not (live.root / "new.txt").exists()
    assert temp_files(live.root) == []
    response = live.request("GET", "/f.txt")
    assert response.status_code == 200
    assert response.content == b"old content"
    assert live.request("PUT", "/f.txt", data=b"new content").status_code == 204
    assert (live.root / "f.txt").read_bytes() == b"new content"


def test_slow_connections_do_not_starve_the_server(server: Any):
    check_slow_connections_do_not_starve(server)


def test_silent_connections_hold_no_worker_thread(server: Any):
    """More silent connections than `max_threads`: a new client is still served, since a
    connection waits for its first byte without a thread (issue 16)."""
    (server.root / "f.txt").write_bytes(b"still here")
    silent = [
        socket.create_connection(("127.0.0.1", server.port), timeout=10)
        for _ in range(server.config.max_threads + 44)
    ]
    try:
        # A liveness bound, not a benchmark: before, this waited for header_timeout (30 s).
        assert requests.get(server.url("/f.txt"), timeout=10).content == b"still here"
    finally:
        for sock in silent:
            sock.close()


def test_many_idle_connections_are_kept_alive(server: Any):
    """Thirty clients each keep their connection between requests (cheroot alone keeps ten
    and closes the others after their answer, making every client reconnect)."""
    request = b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n"
    clients = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(30)]
    try:
        for _ in range(2):
            for sock in clients:
                sock.sendall(request)
                answer = read_answer(sock, until_closed=False)
                assert answer.status == 200
                assert answer.header("Connection") != "close"
    finally:
        for sock in clients:
            sock.close()


def check_slow_connections_do_not_starve(server: Any) -> None:
    """50 clients trickling headers and 50 trickling PUT bodies, and others still served;
    `server` has `port`, `root` and `url(path)` (a LiveServer, or tests/test_workers.py's)."""
    (server.root / "f.txt").write_bytes(b"still here")
    sockets: list[socket.socket] = []
    try:
        for i in range(50):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sockets.append(sock)
            partial = b"GET /f.t" if i % 2 else b"GET /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slo"
            sock.sendall(partial)
        for i in range(50):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sockets.append(sock)
            sock.sendall(
                f"PUT /slow{i}.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Length: 1000\r\n\r\nx".encode()
            )
        for _ in range(20):
            # A liveness bound, not a benchmark: each answer must come at all.
            response = requests.get(server.url("/f.txt"), timeout=5)
            assert response.status_code == 200
            assert response.content == b"still here"
        # The hanging uploads are not visible as files while they hang.
        assert requests.get(server.url("/slow0.txt"), timeout=5).status_code == 404
        listing = requests.request(
            "PROPFIND", server.url("/"), headers={"Depth": "1"}, timeout=5
        ).content
        hrefs = [h.text for h in etree.fromstring(listing).iter(DAV + "href")]
        assert sorted(hrefs) == ["/", "/f.txt"]
    finally:
        for sock in sockets:
            sock.close()
    # The broken-off uploads leave nothing behind (checked until the workers notice).
    wait_for(lambda: temp_files(server.root) == [], 15)
    assert temp_files(server.root) == []
    assert sorted(p.name for p in server.root.iterdir()) == ["f.txt"]
    assert requests.get(server.url("/f.txt"), timeout=5).content == b"still here"


# -- header injection ---------------------------------------------------------------------------


def test_crlf_in_destination_never_becomes_a_header(server: Any):
    (server.root / "f.txt").write_bytes(b"x")
    (server.root / "d").mkdir()
    # Each destination with the status of the first COPY there: 201 where it creates the
    # name, 204 where the one before (the same name, with a slash) already did.
    destinations = [
        ("/a%0d%0aX-Injected:%201", 201),
        ("/a%0D%0AX-Injected:%201/", 204),
        (f"http://127.0.0.1:{server.port}/b%0d%0aX-Injected:%20yes", 201),
        ("/c%0aX-Injected:%201", 201),
        ("/e%0d%0a%0d%0a<html>", 201),
    ]
    for destination, created in destinations:
        (server.root / "m.txt").write_bytes(b"m")
        # CR and LF are allowed in names: the file is copied there, then replaced by the
        # folder and again by the moved file (204). `send` checks every head.
        for method, source, status in (
            ("COPY", b"/f.txt", created),
            ("COPY", b"/d", 204),
            ("MOVE", b"/m.txt", 204),
        ):
            answer = send(server, method, source, {"Destination": destination})
            assert answer.status == status, (method, destination, answer.head)
    made = ["a\r\nX-Injected: 1", "b\r\nX-Injected: yes", "c\nX-Injected: 1", "e\r\n\r\n<html>"]
    assert shared_names(server.root) == sorted([*made, "d", "f.txt"])


def crlf_name(root: Path, name: str) -> bool:
    try:
        (root / name).write_bytes(b"crlf content")
    except OSError:
        return False
    return True


def test_crlf_file_name_is_listed_without_splitting_headers(server: Any):
    name = "bad\r\nX-Injected: 1\r\n\r\n<b>.txt"
    assert crlf_name(server.root, name), "this filesystem refuses CR/LF in names"
    encoded = b"/bad%0D%0AX-Injected%3A%201%0D%0A%0D%0A%3Cb%3E.txt"
    listing = send(server, "GET", b"/")
    assert listing.status == 200
    page = parse_listing(listing.body.decode())
    assert page.links == [(name, "/bad%0D%0AX-Injected:%201%0D%0A%0D%0A%3Cb%3E.txt")]
    assert "b" not in page.tags
    multistatus = send(server, "PROPFIND", b"/", {"Depth": "1"})
    assert multistatus.status == 207
    hrefs = [h.text for h in etree.fromstring(multistatus.body).iter(DAV + "href")]
    bad = [h for h in hrefs if h and h.startswith("/bad")]
    assert len(bad) == 1
    assert "\r" not in bad[0] and "\n" not in bad[0] and " " not in bad[0]
    answers = {"GET": 200, "HEAD": 200, "PROPFIND": 207, "COPY": 201, "PUT": 204, "LOCK": 200}
    for method, status in answers.items():
        headers = {"Depth": "0"}
        body = b""
        if method == "COPY":
            headers["Destination"] = "/copy.txt"
        if method == "LOCK":
            body = TEMPLATES["LOCK"].format(ref="me").encode()
        if method == "PUT":
            body = b"replaced"
        answer = send(server, method, encoded, headers, body)
        assert answer.status == status, (method, answer.head)
    assert (server.root / "copy.txt").read_bytes() == b"crlf content"
    assert (server.root / name).read_bytes() == b"replaced"


MARKER = "ZQXMARKERQXZ"


HOSTILE_HEADERS = {
    "Lock-Token": f"<urn:{MARKER}>",
    "Depth": MARKER,
    "Timeout": f"Second-{MARKER}",
    "Overwrite": MARKER,
    "Prefer": f"return={MARKER}",
    "Brief": MARKER,
    "Content-Type": f"text/{MARKER}",
    "Accept": MARKER,
    "Range": f"bytes={MARKER}",
    "If-Range": MARKER,
    "If-Match": f'"{MARKER}"',
    "Referer": f"http://{MARKER}/",
    "User-Agent": MARKER,
    f"X-{MARKER}": MARKER,
    "Destination": f"/{MARKER}",
}
# Without an If header (which fails every request first: 412), each method reaches the
# header that refuses it: (method, target) -> status.
HOSTILE_ANSWERS = {
    **{("OPTIONS", t): 200 for t in ("/f.txt", "/d/", f"/{MARKER}")},
    # If-Match names no current ETag (RFC 9110 13.1.1); the missing resource is 404 first.
    **{(m, t): 412 for m in ("GET", "HEAD") for t in ("/f.txt", "/d/")},
    **{(m, f"/{MARKER}"): 404 for m in ("GET", "HEAD")},
    ("PUT", "/f.txt"): 412,
    ("PUT", "/d/"): 405,
    ("PUT", f"/{MARKER}"): 412,
    **{("PROPFIND", t): 400 for t in ("/f.txt", "/d/", f"/{MARKER}")},  # Depth
    **{("PROPPATCH", t): 412 for t in ("/f.txt", "/d/", f"/{MARKER}")},
    **{("LOCK", t): 400 for t in ("/f.txt", "/d/", f"/{MARKER}")},  # Timeout
    **{("UNLOCK", t): 409 for t in ("/f.txt", "/d/", f"/{MARKER}")},  # no such lock
    **{(m, "/d/"): 400 for m in ("COPY", "MOVE", "DELETE")},  # Depth
    ("MKCOL", "/d/"): 412,
}


@pytest.mark.parametrize("with_if", [True, False], ids=["with-if", "without-if"])
def test_request_headers_are_never_echoed_into_response_headers(server: Any, with_if: bool):
    (server.root / "f.txt").write_bytes(b"x")
    (server.root / "d").mkdir()
    hostile = dict(HOSTILE_HEADERS)
    if with_if:
        hostile["If"] = f"(<urn:{MARKER}>)"
    for (method, target), status in HOSTILE_ANSWERS.items():
        answer = send(server, method, target.encode(), hostile)
        assert MARKER.encode() not in answer.head, (method, target, answer.head)
        assert answer.status == (412 if with_if else status), (method, target)
    assert sorted(p.name for p in server.root.iterdir()) == ["d", "f.txt"]


def test_obs_fold_and_bare_lf_in_request_headers_do_not_split_the_response(
    server: Any, engine: str
):
    (server.root / "f.txt").write_bytes(b"x")
    # RFC 9112 5.2: a server either unfolds an obs-fold (cheroot: it continues the header
    # before it, here X-A) or refuses the request (llhttp, in the httptools engine: 400).
    unfolded = engine == "cheroot"
    raws = [
        (
            b"GET /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\r\n X-Injected: 1\r\n"
            b"Connection: close\r\n\r\n",
            200 if unfolded else 400,
        ),
        # A folded Destination reads as the folded-in text, which is no URL of ours (502).
        (
            b"COPY /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nDestination: /g.txt\r\n"
            b" X-Injected: 1\r\nConnection: close\r\n\r\n",
            502 if unfolded else 400,
        ),
        # Both refuse a bare LF ("HTTP requires CRLF terminators").
        (
            b"GET /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\nX-Injected: 1\r\n"
            b"Connection: close\r\n\r\n",
            400,
        ),
    ]
    for raw, status in raws:
        answer = exchange(server.port, raw)
        check_head(answer.head)
        assert answer.status == status, raw
    assert not (server.root / "g.txt").exists()


def test_script_file_names_are_escaped_in_the_listing(server: Any):
    name = "<script>alert('x')<script>.txt"
    (server.root / name).write_bytes(b"s")
    (server.root / "<script>dir").mkdir()
    page = server.request("GET", "/")
    assert page.status_code == 200
    listing = parse_listing(page.text)
    assert "script" not in listing.tags
    assert listing.names == ["<script>dir/", name]
    inner = server.request("GET", "/%3Cscript%3Edir/")
    assert inner.status_code == 200
    inner_listing = parse_listing(inner.text)
    assert "script" not in inner_listing.tags
    assert inner_listing.title == "Index of /%3Cscript%3Edir/"
    assert inner_listing.links == [("../", "/")]
    # PROPFIND carries the names percent-encoded in well-formed XML.
    multistatus = server.request("PROPFIND", "/", headers={"Depth": "1"})
    assert b"<script>" not in multistatus.content
    hrefs = [h.text or "" for h in etree.fromstring(multistatus.content).iter(DAV + "href")]
    assert sorted(hrefs) == [
        "/",
        "/%3Cscript%3Ealert(%27x%27)%3Cscript%3E.txt",
        "/%3Cscript%3Edir/",
    ]


TRICKLED_HEADERS = b"GET /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
TRICKLED_BODY = (
    b"PROPFIND /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nDepth: 0\r\n"
    b"Content-Type: application/xml\r\nContent-Length: 4000\r\n\r\n<?xml version='1.0'?>"
)


def _cut_off(sock: socket.socket, start: bytes) -> bool:
    """Send `start`, then trickle a byte every 0.2 s for up to ~8 s; whether the server
    closed the connection meanwhile."""
    sock.sendall(start)
    sock.settimeout(0.2)
    for _ in range(40):
        try:
            sock.sendall(b"X")
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue  # nothing to read yet: the connection is still open
        except OSError:  # ssl.SSLError included
            return True
    return False


@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("start", [TRICKLED_HEADERS, TRICKLED_BODY], ids=["headers", "xml-body"])
def test_headers_or_a_small_body_trickled_a_byte_at_a_time_are_cut_off(
    make_server: Callable[..., Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    tls: bool,
    start: bytes,
):
    # Each byte comes well within request_timeout, so only the deadline ends this; without it
    # the connection (and a worker thread) stays for as long as the client keeps going. A
    # small body (read whole, as XML) gets header_timeout plus a second per 32 KiB.
    tls_options = {}
    if tls:
        cert, key = self_signed_certificate(tmp_path)
        tls_options = {"cert": str(cert), "key": str(key)}
    live = make_server(request_timeout=5, header_timeout=1, **tls_options)
    (live.root / "f.txt").write_bytes(b"still here")
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as raw:
        sock = raw
        if tls:
            context = ssl.create_default_context(cafile=tls_options["cert"])
            sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        assert _cut_off(sock, start), "the server kept reading a request trickled for 8 s"
    # A request sent at once is untouched, and the cut-off was no warning.
    answer = requests.request(
        "PROPFIND",
        live.url("/f.txt"),
        headers={"Depth": "0"},
        data=b"<?xml version='1.0'?><propfind xmlns='DAV:'><allprop/></propfind>",
        timeout=5,
        verify=tls_options.get("cert", True),
    )
    assert answer.status_code == 207
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_kept_alive_connection_idle_past_header_timeout_still_serves(
    make_server: Callable[..., Any],
):
    # Between requests a kept-alive connection waits in cheroot's selector, not in a worker:
    # the header deadline starts with the next request's first byte.
    live = make_server(request_timeout=5, header_timeout=1)
    (live.root / "f.txt").write_bytes(b"still here")
    request = b"GET /f.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        for _ in range(2):
            sock.sendall(request)
            answer = read_answer(sock, until_closed=False)
            assert answer.status == 200 and answer.body == b"still here"
            assert not answer.closed
            time.sleep(1.5)


def test_a_header_name_with_underscores_is_dropped(
    make_server: Callable[..., Any], caplog: pytest.LogCaptureFixture
):
    """`X_Forwarded_For` and `X-Forwarded-For` are one WSGI key; behind a trusted proxy that
    overwrites or strips only the dashed one, the client named itself (llhttpd joined the two,
    cheroot kept the last). Dropped, as nginx and Apache drop such names."""
    live = make_server(trusted_proxies=["127.0.0.1"])
    (live.root / "f.txt").write_bytes(b"x")
    with caplog.at_level(logging.INFO, logger="davserver.access"):
        answer = live.raw(
            b"GET /f.txt HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.7\r\n"
            b"X_Forwarded_For: 198.51.100.66\r\nContent_Length: 5\r\nConnection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer.endswith(b"\r\n\r\nx")
        assert wait_for(lambda: any("/f.txt" in r.getMessage() for r in caplog.records))
    [line] = [r.getMessage() for r in caplog.records if r.name == "davserver.access"]
    assert line.startswith('203.0.113.7 - "GET /f.txt" 200 1 ')


@pytest.mark.parametrize("second", [b"Host: b", b"host: a"])
def test_a_request_with_two_host_headers_is_400(server: Any, second: bytes):
    """RFC 9112 3.2: a server MUST answer 400 to a request with more than one Host line
    (llhttpd joined them into "a, b", which became the origin; cheroot kept the last)."""
    answer = server.raw(b"GET / HTTP/1.1\r\nHost: a\r\n" + second + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_a_quote_in_the_target_does_not_end_the_access_lines_request(
    server: Any, caplog: pytest.LogCaptureFixture
):
    """Both engines let `"` and `\\` through in a target; unescaped, `/a" 200 5 0.001s` made
    the line's request field end early and the fields after it the client's."""
    with caplog.at_level(logging.INFO, logger="davserver.access"):
        answer = server.raw(b'GET /a"\\b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n')
        assert answer.startswith(b"HTTP/1.1 403 ")
        assert wait_for(lambda: any(r.name == "davserver.access" for r in caplog.records))
    [line] = [r.getMessage() for r in caplog.records if r.name == "davserver.access"]
    assert line.startswith('127.0.0.1 - "GET /a\\x22\\x5Cb" 403 ')


def test_an_empty_item_in_the_transfer_codings_is_ignored(server: Any) -> None:
    """RFC 9110 5.6.1.2: a recipient ignores empty list elements; `, chunked` is chunked."""
    answer = server.raw(
        b"PUT /f.txt HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked\r\n"
        b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 201 ")
    assert (server.root / "f.txt").read_bytes() == b"hello"


@pytest.mark.parametrize(
    "codings",
    [b"Transfer-Encoding: gzip, chunked", b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked"],
    ids=["one-line", "two-lines"],
)
def test_a_transfer_coding_other_than_chunked_is_501_and_nothing_stored(
    server: Any, codings: bytes, engine: str
):
    """RFC 9112 6.1: 501 for a transfer coding the server does not understand. The httptools
    engine undid the chunked coding and stored the gzip-coded bytes beneath as the file."""
    answer = server.raw(
        b"PUT /f.txt HTTP/1.1\r\nHost: h\r\n" + codings + b"\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 501 ")
    # cheroot refuses it itself, with no body; on httptools davserver does, saying why.
    reason = b"" if engine == "cheroot" else b"only the chunked transfer coding is understood\n"
    assert answer.partition(b"\r\n\r\n")[2] == reason
    assert not (server.root / "f.txt").exists()
