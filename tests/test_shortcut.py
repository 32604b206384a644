"""The plain GET's shortcut (DavApp.shortcut, taken by the httptools engine): the same answer as
the general path, byte for byte but the Date; and every request it must not answer left to the
general path."""

from __future__ import annotations

import io
import logging
import re
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import split_raw, write_users
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from davserver import app as app_module
from davserver import llhttpd
from davserver.app import DavApp
from davserver.config import load
from davserver.server import build_services, close_services

CONTENT = b"plain content\n"


def _app(tmp_path: Path, **overrides: Any) -> Iterator[DavApp]:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    config = load(None, {"root": str(root), "state_dir": str(tmp_path / "state"), **overrides})
    services = build_services(config)
    try:
        yield DavApp(services)
    finally:
        close_services(services)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[DavApp]:
    yield from _app(tmp_path)


def _general(app: DavApp, target: str, fields: dict[str, str]) -> tuple[str, list[Any], bytes]:
    """The WSGI call's answer, as the engine would ask for it."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": target,
        "PATH_INFO": target,
        "QUERY_STRING": "",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        **fields,
    }
    started: list[Any] = []
    body = app(environ, lambda status, headers: started.extend([status, headers]))
    try:
        data = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return started[0], started[1], data


def _shortcut(app: DavApp, target: str, fields: dict[str, str]) -> tuple[str, list[Any], bytes]:
    found = app.shortcut("GET", target, fields, "127.0.0.1")
    assert found is not None
    status, headers, stream = found
    with stream:
        return status, headers, stream.read()


# Names as clients send them, encoded or raw, with types that get a sandbox (html, svg, xml)
# and those that do not; the content's size on both sides of the engine's SMALL_FILE.
NAMES = st.sampled_from(
    ["a.txt", "page.html", "logo.svg", "data.json", "noext", "x.tar.gz", "sp ace.md", "é€.xml"]
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=NAMES,
    size=st.sampled_from([0, 1, 4096, llhttpd.SMALL_FILE + 1]),
    encoded=st.booleans(),
)
def test_the_shortcut_answers_as_the_general_path_does(
    app: DavApp, name: str, size: int, encoded: bool
) -> None:
    (Path(app.services.config.root) / name).write_bytes(b"z" * size)
    quoted = "".join(c if c.isascii() and c != " " else _percent(c) for c in name)
    target = "/" + (quoted if encoded else name.encode("utf-8").decode("latin-1"))
    fields = {"HTTP_HOST": "127.0.0.1", "HTTP_ACCEPT": "text/html"}
    assert _shortcut(app, target, fields) == _general(app, target, fields)


def _percent(char: str) -> str:
    return "".join(f"%{b:02X}" for b in char.encode("utf-8"))


def test_the_shortcut_answers_with_the_files_own_headers(app: DavApp) -> None:
    (Path(app.services.config.root) / "a.html").write_bytes(CONTENT)
    status, headers, body = _shortcut(app, "/a.html", {})
    names = [name for name, _ in headers]
    assert (status, body) == ("200 OK", CONTENT)
    assert names == [
        "ETag",
        "Last-Modified",
        "Accept-Ranges",
        "X-Content-Type-Options",
        "Content-Security-Policy",
        "Content-Type",
        "Content-Length",
    ]
    assert dict(headers)["Content-Length"] == str(len(CONTENT))


NOT_PLAIN_HEADERS = [
    ("HTTP_IF", "(<urn:uuid:x>)"),
    ("HTTP_IF_MATCH", '"x"'),
    ("HTTP_IF_NONE_MATCH", '"x"'),
    ("HTTP_IF_MODIFIED_SINCE", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ("HTTP_IF_UNMODIFIED_SINCE", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ("HTTP_IF_RANGE", '"x"'),
    ("HTTP_RANGE", "bytes=0-1"),
    ("HTTP_AUTHORIZATION", "Basic eDp5"),
    ("CONTENT_LENGTH", "0"),
    ("HTTP_TRANSFER_ENCODING", "chunked"),
]


@pytest.mark.parametrize(("key", "value"), NOT_PLAIN_HEADERS)
def test_a_get_with_a_header_the_general_path_reads_is_not_plain(
    app: DavApp, key: str, value: str
) -> None:
    (Path(app.services.config.root) / "a.txt").write_bytes(CONTENT)
    assert app.shortcut("GET", "/a.txt", {key: value}, "127.0.0.1") is None


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("HEAD", "/a.txt"),
        ("PUT", "/a.txt"),
        ("DELETE", "/a.txt"),
        ("GET", "/"),  # a collection: its listing
        ("GET", "/a.txt/"),  # a collection's form of URL: not opened to find out
        ("GET", "/folder"),
        ("GET", "/missing.txt"),
        ("GET", "/.davserver-tmp-trash"),  # reserved: not a member of the share
        ("GET", "/folder/%2e%2e/a.txt"),
        ("GET", "/a%ZZ.txt"),
        ("GET", "/%FF.txt"),
    ],
)
def test_a_request_other_than_a_plain_get_of_a_file_is_not_plain(
    app: DavApp, method: str, target: str
) -> None:
    root = Path(app.services.config.root)
    (root / "a.txt").write_bytes(CONTENT)
    (root / "folder").mkdir()
    assert app.shortcut(method, target, {}, "127.0.0.1") is None


def test_a_file_anonymous_users_may_not_read_is_not_plain(tmp_path: Path) -> None:
    users = write_users(tmp_path / "users", {"ann": "secret"})
    for app in _app(tmp_path, htpasswd=users, basic="always"):
        (Path(app.services.config.root) / "a.txt").write_bytes(CONTENT)
        assert app.shortcut("GET", "/a.txt", {}, "127.0.0.1") is None


def test_a_file_anonymous_users_may_read_is_plain(tmp_path: Path) -> None:
    users = write_users(tmp_path / "users", {"ann": "secret"})
    for app in _app(tmp_path, htpasswd=users, basic="always", anonymous="read"):
        (Path(app.services.config.root) / "a.txt").write_bytes(CONTENT)
        assert _shortcut(app, "/a.txt", {})[2] == CONTENT


@pytest.mark.parametrize("name", ["a.txt?x=1", "a.txt#frag"])
def test_a_query_or_a_fragment_is_never_read_as_part_of_a_files_name(
    app: DavApp, name: str
) -> None:
    """The general path answers `/a.txt?x=1` with /a.txt (the query is not the path); were the
    target decoded whole, a file named `a.txt?x=1` would be served instead."""
    root = Path(app.services.config.root)
    (root / "a.txt").write_bytes(CONTENT)
    (root / name).write_bytes(b"another file")
    assert app.shortcut("GET", "/" + name, {}, "127.0.0.1") is None


@pytest.mark.parametrize(
    ("target", "where"), [("*", "*"), ("http://127.0.0.1/a.txt", "http:/127.0.0.1/a.txt")]
)
def test_a_target_not_in_origin_form_is_never_read_as_a_path(
    app: DavApp, target: str, where: str
) -> None:
    """An asterisk-form or absolute-form target (RFC 9112 3.2) is the general path's to read;
    decoded as a path it would name another file."""
    (Path(app.services.config.root) / where).parent.mkdir(parents=True, exist_ok=True)
    (Path(app.services.config.root) / where).write_bytes(b"another file")
    assert app.shortcut("GET", target, {}, "127.0.0.1") is None


def test_the_access_rules_of_the_files_own_path_decide(tmp_path: Path) -> None:
    """Anonymous users may read /pub only (a rule below the root's): its files are plain, the
    others are left to the general path (which asks for a login). The rules are asked about
    the file's own path."""
    users = write_users(tmp_path / "users", {"ann": "secret"})
    rules = (("/pub", "anonymous", "read"),)
    for app in _app(tmp_path, htpasswd=users, basic="always", access=rules):
        root = Path(app.services.config.root)
        (root / "pub").mkdir()
        (root / "pub" / "a.txt").write_bytes(CONTENT)
        (root / "b.txt").write_bytes(CONTENT)
        assert _shortcut(app, "/pub/a.txt", {})[2] == CONTENT
        assert app.shortcut("GET", "/b.txt", {}, "127.0.0.1") is None


@pytest.mark.parametrize(
    ("client", "user", "note", "line"),
    [
        ("127.0.0.1", "ann", " 3 items", '127.0.0.1 ann "GET /a.txt" 200 14 0.250s 3 items'),
        # A peer with no address (a Unix socket), an anonymous user, no note.
        ("", None, "", '- - "GET /a.txt" 200 14 0.250s'),
    ],
)
def test_the_access_line_says_who_asked_for_what_and_how_long_it_took(
    monkeypatch: pytest.MonkeyPatch, client: str, user: str | None, note: str, line: str
) -> None:
    monkeypatch.setattr(app_module.time, "perf_counter", lambda: 10.25)
    assert app_module._access_line(client, user, "GET", "/a.txt", 200, 14, 10.0, note) == line


@pytest.mark.parametrize(
    "site",
    [{"trusted_proxies": ["127.0.0.1"]}, {"prefix": "/dav", "prefix_mode": "keep"}],
)
def test_behind_a_trusted_proxy_or_a_kept_prefix_nothing_is_plain(
    tmp_path: Path, site: dict[str, Any]
) -> None:
    for app in _app(tmp_path, **site):
        (Path(app.services.config.root) / "a.txt").write_bytes(CONTENT)
        assert app.shortcut("GET", "/a.txt", {}, "127.0.0.1") is None
        assert app.shortcut("GET", "/dav/a.txt", {}, "127.0.0.1") is None


def test_a_stripped_prefix_keeps_the_shortcut(tmp_path: Path) -> None:
    for app in _app(tmp_path, prefix="/dav"):
        (Path(app.services.config.root) / "a.txt").write_bytes(CONTENT)
        assert _shortcut(app, "/a.txt", {}) == _general(app, "/a.txt", {})


def test_an_error_after_the_open_closes_the_file_and_leaves_the_answer_to_the_general_path(
    app: DavApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    (Path(app.services.config.root) / "a.txt").write_bytes(CONTENT)
    streams: list[Any] = []
    provider = app.services.provider
    opened = provider.open_read

    def open_read(path: str) -> Any:
        resource, stream = opened(path)
        streams.append(stream)
        return resource, stream

    def broken(resource: Any, ctype: str | None = None) -> Any:
        raise OverflowError("a date past 9999")

    monkeypatch.setattr(provider, "open_read", open_read)
    monkeypatch.setattr("davserver.methods.read.whole_file_headers", broken)
    assert app.shortcut("GET", "/a.txt", {}, "127.0.0.1") is None
    [stream] = streams
    with pytest.raises(ValueError, match="closed"):
        stream.read(1)


# -- through the engine ----------------------------------------------------------------------------


def _raw_get(port: int, target: str, extra: str = "") -> tuple[str, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return _ask(sock, target, extra)


def _ask(sock: socket.socket, target: str, extra: str = "") -> tuple[str, dict[str, str], bytes]:
    """One GET on the connected `sock`, and the answer split into head, headers and body."""
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"
    sock.sendall(request.encode("latin-1"))
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return split_raw(b"".join(chunks))


def test_over_http_a_plain_get_and_a_general_one_differ_in_nothing_but_the_date(
    make_server: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server()
    (server.root / "page.html").write_bytes(CONTENT)
    with caplog.at_level(logging.INFO, logger="davserver.access"):
        plain = _raw_get(server.port, "/page.html")
        # An If-None-Match that matches nothing changes no answer, and takes the general path.
        general = _raw_get(server.port, "/page.html", 'If-None-Match: "no-such-tag"\r\n')
    for _, headers, _ in (plain, general):
        headers.pop("date")
    assert plain == general
    assert plain[0].startswith("HTTP/1.1 200") and plain[2] == CONTENT
    lines = [r.getMessage() for r in caplog.records if r.name == "davserver.access"]
    line = re.compile(r'^127\.0\.0\.1 - "GET /page\.html" 200 14 \d+\.\d{3}s$')
    assert len(lines) == 2 and all(line.match(text) for text in lines), lines


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ("Range: bytes=0-3\r\n", 206),
        ('If-Match: "x"\r\n', 412),
        ("If: (<urn:uuid:not-a-lock>)\r\n", 412),
        ("If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n", 412),
        ("If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n", 304),
    ],
)
def test_over_http_a_get_with_conditions_gets_the_general_answer(
    make_server: Callable[..., Any], extra: str, status: int
) -> None:
    server = make_server()
    (server.root / "a.txt").write_bytes(CONTENT)
    head = _raw_get(server.port, "/a.txt", extra)[0]
    assert head.split(" ")[1] == str(status)


def test_over_http_a_get_refused_to_anonymous_users_asks_them_to_log_in(
    make_server: Callable[..., Any], tmp_path: Path
) -> None:
    server = make_server(htpasswd=write_users(tmp_path / "users", {"ann": "secret"}))
    (server.root / "a.txt").write_bytes(CONTENT)
    head, headers, _ = _raw_get(server.port, "/a.txt")
    assert head.split(" ")[1] == "401" and "www-authenticate" in headers


def test_pipelined_plain_and_general_gets_are_answered_in_order(
    make_server: Callable[..., Any],
) -> None:
    server = make_server()
    (server.root / "a.txt").write_bytes(b"A")
    (server.root / "b.txt").write_bytes(b"B")
    request = "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n"
    sent = "".join(
        [
            request.format("/a.txt", ""),
            request.format("/b.txt", "Range: bytes=0-0\r\n"),
            request.format("/b.txt", ""),
            request.format("/a.txt", "Connection: close\r\n"),
        ]
    )
    answer = server.raw(sent.encode("ascii"))
    statuses = re.findall(rb"HTTP/1\.1 (\d{3})", answer)
    bodies = re.findall(rb"\r\n\r\n([AB])", answer)
    assert (statuses, bodies) == ([b"200", b"206", b"200", b"200"], [b"A", b"B", b"B", b"A"])


class _Recorder:
    """A shortcut that answers `/short` with `file` and declines the rest, recording what the
    engine offered it; and an app that answers "from app"."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.asked: list[tuple[str, str, str, str]] = []

    def shortcut(self, method: str, target: str, fields: Any, peer: str) -> Any:
        self.asked.append((method, target, fields.get("HTTP_X_TEST", ""), peer))
        if target != "/short":
            return None
        return "200 OK", [("Content-Length", "17")], self.file.open("rb")

    @staticmethod
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "8")])
        return [b"from app"]

    def serving(self, listener: socket.socket | None = None) -> llhttpd.LlhttpServer:
        server = llhttpd.LlhttpServer(
            ("127.0.0.1", 0),
            self.app,
            threads=2,
            max_threads=4,
            request_timeout=10,
            header_timeout=10,
            listener=listener,
            shortcut=self.shortcut,
        )
        server.prepare()
        return server


def test_the_engine_sends_the_shortcuts_answer_and_asks_the_app_for_the_rest(
    tmp_path: Path,
) -> None:
    (tmp_path / "short").write_bytes(b"from the shortcut")
    recorder = _Recorder(tmp_path / "short")
    server = recorder.serving()
    try:
        port = server.bind_addr[1]
        assert _raw_get(port, "/short", "X-Test: 1\r\n")[2] == b"from the shortcut"
        assert _raw_get(port, "/other")[2] == b"from app"
    finally:
        server.stop()
    assert recorder.asked == [
        ("GET", "/short", "1", "127.0.0.1"),
        ("GET", "/other", "", "127.0.0.1"),
    ]


def test_a_client_on_a_unix_socket_is_offered_with_no_address(tmp_path: Path) -> None:
    """Its peer has no IP address (the general path's REMOTE_ADDR is absent too): the access
    line shows "-" for it."""
    (tmp_path / "short").write_bytes(b"from the shortcut")
    recorder = _Recorder(tmp_path / "short")
    # A short folder: a socket's path must fit in 108 bytes, which tmp_path may not.
    with tempfile.TemporaryDirectory(prefix="dav") as folder:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(f"{folder}/s")
        listener.listen()
        server = recorder.serving(listener)
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(f"{folder}/s")
                assert _ask(sock, "/short")[2] == b"from the shortcut"
        finally:
            server.stop()
            listener.close()
    assert recorder.asked == [("GET", "/short", "", "")]


def test_the_default_engine_takes_the_shortcut_and_cheroot_does_not(
    make_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[str] = []
    original = DavApp.shortcut

    def recording(self: DavApp, method: str, target: str, fields: Any, peer: str) -> Any:
        found = original(self, method, target, fields, peer)
        taken.append(f"{target} {'short' if found else 'general'}")
        return found

    monkeypatch.setattr(DavApp, "shortcut", recording)
    default, cheroot = make_server(), make_server(engine="cheroot")
    for server in (default, cheroot):
        (server.root / "a.txt").write_bytes(CONTENT)
        assert _raw_get(server.port, "/a.txt")[2] == CONTENT
        assert _raw_get(server.port, "/a.txt", "Range: bytes=0-1\r\n")[2] == CONTENT[:2]
    assert taken == ["/a.txt short", "/a.txt general"]


def test_on_s3_nothing_is_plain(s3_server: Any) -> None:
    """A miss there would cost its HEAD and LIST round trips twice (Provider.local_lookups)."""
    assert s3_server.request("PUT", "/a.txt", data=CONTENT).status_code == 201
    app = s3_server._server.app
    assert app.services.provider.stat("/a.txt").size == len(CONTENT)
    assert app.shortcut("GET", "/a.txt", {}, "127.0.0.1") is None
    assert s3_server.request("GET", "/a.txt").content == CONTENT
