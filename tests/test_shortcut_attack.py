"""The plain GET's shortcut attacked as a hostile or unlucky client would: one app behind two
engines, one offering the shortcut and one not, answers every request alike (byte for byte
but the Date, with the same access lines); and a request the shortcut declines is not looked
up twice."""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from davserver import llhttpd
from davserver.app import DavApp
from davserver.config import load
from davserver.server import build_services, close_services


class Twin:
    """One app served twice: `short` takes the shortcut, `general` never does."""

    def __init__(self, root: Path, app: DavApp, short: int, general: int) -> None:
        self.root, self.app, self.short, self.general = root, app, short, general


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Twin]:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.txt").write_bytes(b"outside")
    (root / "a.txt").write_bytes(b"plain content\n")
    (root / "page.html").write_bytes(b"<p>x</p>")
    (root / "big.bin").write_bytes(bytes(range(256)) * 1024)  # past SMALL_FILE: sendfile
    (root / "\u00e9.txt").write_bytes(b"e acute")
    (root / "folder").mkdir()
    (root / "folder" / "in.txt").write_bytes(b"inside")
    (root / ".davserver-tmp-x").write_bytes(b"own")
    os.symlink("a.txt", root / "link")
    os.symlink(tmp_path / "outside.txt", root / "out")
    os.mkfifo(root / "fifo")
    config = load(None, {"root": str(root), "state_dir": str(tmp_path / "state")})
    services = build_services(config)
    app = DavApp(services)
    servers = []
    for shortcut in (app.shortcut, None):
        server = llhttpd.LlhttpServer(
            ("127.0.0.1", 0),
            app,
            threads=2,
            max_threads=4,
            request_timeout=10,
            header_timeout=10,
            shortcut=shortcut,
        )
        server.prepare()
        servers.append(server)
    try:
        yield Twin(root, app, servers[0].bind_addr[1], servers[1].bind_addr[1])
    finally:
        for server in servers:
            server.stop()
        close_services(services)


def _exchange(port: int, request: bytes) -> bytes:
    """Everything the server answers to `request`, sent whole on a new connection, Date out."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return re.sub(rb"\r\nDate: [^\r]*", b"", b"".join(chunks))


def _get(target: str, extra: str = "", version: str = "1.1") -> str:
    return f"GET {target} HTTP/{version}\r\nHost: 127.0.0.1\r\n{extra}\r\n"


# Spellings of paths inside, outside and beside the share; headers a browser sends, empty
# ones the general path reads, framing a GET should not have; connection handling.
HOSTILE = [
    _get("/a.txt"),
    _get("/a.txt/"),
    _get("//a.txt"),
    _get("/folder//in.txt"),
    _get("/folder/../a.txt"),
    _get("/folder/%2e%2E/a.txt"),
    _get("/folder%2Fin.txt"),
    _get("/folder\\in.txt"),
    _get("/folder%5Cin.txt"),
    _get("/a.txt%00"),
    _get("/%C0%AE%C0%AE/a.txt"),
    _get("/%C3%A9.txt"),
    _get("/\u00c3\u00a9.txt"),  # raw UTF-8 bytes, as WSGI's Latin-1 shows them
    _get("/\u00e9.txt"),  # a raw Latin-1 byte: not UTF-8
    _get("/.davserver-tmp-x"),
    _get("/.DAVSERVER-TMP-x"),
    _get("/link"),
    _get("/out"),
    _get("/fifo"),
    _get("/missing"),
    _get("/folder"),
    _get("/a.txt%3F"),
    _get("/" + "x" * 5000),
    _get("/a.txt", "Range:\r\n"),
    _get("/a.txt", "If:\r\n"),
    _get("/a.txt", "If-Match:\r\n"),
    _get("/a.txt", "Authorization:\r\n"),
    _get("/a.txt", "rAnGe: bytes=0-1\r\n"),
    _get("/a.txt", "If_None_Match: *\r\n"),  # dropped by the engine, as nginx drops it
    _get("/a.txt", "Origin: http://elsewhere.example\r\nCookie: a=b\r\nAccept: text/html\r\n"),
    _get("/a.txt", "Expect: 100-continue\r\n"),
    _get("/a.txt", "Upgrade: h2c\r\nConnection: Upgrade\r\n"),
    _get("/a.txt", "Content-Length: 5\r\n\r\nhello"),
    _get("/a.txt", "Transfer-Encoding: chunked\r\n\r\n0\r\n"),
    _get("/a.txt", "", "1.0"),
    _get("/a.txt", "Connection: keep-alive\r\n", "1.0") + _get("/page.html", "", "1.0"),
    _get("/big.bin") + _get("/a.txt", "Range: bytes=0-1\r\n") + _get("/page.html") + "BAD\r\n\r\n",
    "get /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
]


@pytest.mark.parametrize("request_text", HOSTILE)
def test_with_and_without_the_shortcut_every_answer_is_the_same(
    twin: Twin, request_text: str, caplog: pytest.LogCaptureFixture
) -> None:
    request = request_text.encode("latin-1")
    answers, lines = [], []
    for port in (twin.short, twin.general):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="davserver.access"):
            answers.append(_exchange(port, request))
        logged = [r.getMessage() for r in caplog.records if r.name == "davserver.access"]
        lines.append([re.sub(r" \d+\.\d{3}s$", "", line) for line in logged])
    assert answers[0] == answers[1]
    assert lines[0] == lines[1]


@pytest.mark.parametrize("target", ["/", "/folder/"])
def test_a_collection_asked_for_by_its_url_is_opened_once(
    twin: Twin, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = twin.app.services.provider
    opened: list[str] = []
    open_read = provider.open_read

    def counting(path: str) -> Any:
        opened.append(path)
        return open_read(path)

    monkeypatch.setattr(provider, "open_read", counting)
    answer = _exchange(twin.short, _get(target, "Connection: close\r\n").encode("ascii"))
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert len(opened) == 1
