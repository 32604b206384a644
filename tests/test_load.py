"""Load and faults against a live server (issue 6), bounded in time, all on 127.0.0.1.

Concurrent writers to one path, clients that vanish mid-upload or mid-download, and a mixed load
of 16 clients (DAVSERVER_LOAD_SECONDS, default 15) after which every byte on disk must be what
its writer last wrote.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading
import time
from typing import Any

import requests
from helpers import lockinfo, temp_files, wait_for
from lxml import etree

DAV = "{DAV:}"
LOAD_SECONDS = float(os.environ.get("DAVSERVER_LOAD_SECONDS", "15"))


def healthy(server: Any, path: str, content: bytes) -> None:
    """The server answers at once and `path` holds `content`, over HTTP and on disk."""
    response = requests.get(server.url(path), timeout=10)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(content).digest()
    assert requests.request("PROPFIND", server.url("/"), timeout=10).status_code == 207


# -- concurrent writers ---------------------------------------------------------------------


def test_concurrent_puts_to_one_path_leave_exactly_one_body(server: Any):
    size = 256 * 1024
    bodies = [os.urandom(size) for _ in range(20)]
    barrier = threading.Barrier(len(bodies))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def upload(body: bytes) -> None:
        try:
            barrier.wait(timeout=30)
            response = requests.put(server.url("/same.bin"), data=body, timeout=60)
            statuses.append(response.status_code)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(statuses) == len(bodies)
    # Racing requests: each answers for what it found (201 if no file was there yet, 204 if
    # one was), and which found what depends on timing; at least the first created it.
    assert set(statuses) <= {201, 204}, statuses
    assert 201 in statuses
    on_disk = (server.root / "same.bin").read_bytes()
    assert len(on_disk) == size
    assert on_disk in bodies
    assert temp_files(server.root) == []
    assert sorted(p.name for p in server.root.iterdir()) == ["same.bin"]
    healthy(server, "/same.bin", on_disk)


# -- clients that vanish ----------------------------------------------------------------------


def test_client_gone_mid_upload_keeps_the_old_file(server: Any):
    old = os.urandom(100_000)
    (server.root / "f.bin").write_bytes(old)
    for target in ("/f.bin", "/new.bin"):
        head = f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048576\r\n\r\n"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head.encode() + os.urandom(512 * 1024))
        # Closed with half the body sent.
    assert wait_for(lambda: temp_files(server.root) == [], 15), temp_files(server.root)
    assert (server.root / "f.bin").read_bytes() == old
    assert not (server.root / "new.bin").exists()
    healthy(server, "/f.bin", old)
    assert requests.put(server.url("/f.bin"), data=b"replaced", timeout=10).status_code == 204
    assert (server.root / "f.bin").read_bytes() == b"replaced"


def test_client_gone_mid_download_leaves_the_server_healthy(server: Any):
    big = os.urandom(20 * 1024 * 1024)
    (server.root / "big.bin").write_bytes(big)
    for _ in range(10):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received = sock.recv(65536)
            assert received.startswith(b"HTTP/1.1 200")
            # Close with most of the file unread (the kernel resets the connection).
    # Several full downloads at once still work, and the file is untouched.
    results: list[bytes] = []
    errors: list[BaseException] = []

    def download() -> None:
        try:
            response = requests.get(server.url("/big.bin"), timeout=60)
            assert response.status_code == 200
            results.append(hashlib.sha256(response.content).digest())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=download) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert results == [hashlib.sha256(big).digest()] * 4
    assert (server.root / "big.bin").read_bytes() == big
    healthy(server, "/big.bin", big)


# -- mixed load -------------------------------------------------------------------------------


class Client(threading.Thread):
    """One client: PROPFIND, GET, PUT, DELETE, LOCK and UNLOCK on its own files."""

    def __init__(self, server: Any, index: int, deadline: float) -> None:
        super().__init__(name=f"load-{index}")
        self.server = server
        self.index = index
        self.deadline = deadline
        self.folder = f"/t{index}/"
        self.expected: dict[str, bytes] = {}  # path -> the last body written
        self.problems: list[str] = []
        self.rounds = 0
        self.rng = random.Random(index)
        self.session = requests.Session()

    def call(self, method: str, path: str, expected: tuple[int, ...], **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 30)
        try:
            response = self.session.request(method, self.server.url(path), **kwargs)
        except requests.RequestException as exc:
            self.problems.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            return None
        if response.status_code >= 500 or response.status_code not in expected:
            self.problems.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
            return None
        return response

    def body(self) -> bytes:
        size = self.rng.choice((0, 1, 100, 4096, 65536, 200_000))
        return f"t{self.index}-{self.rounds}-".encode() + self.rng.randbytes(size)

    def run(self) -> None:
        try:
            self.call("MKCOL", self.folder, (201,))
            while time.monotonic() < self.deadline and len(self.problems) < 5:
                self.step()
                self.rounds += 1
        finally:
            self.session.close()

    def step(self) -> None:
        name = f"{self.folder}f{self.rng.randrange(6)}.bin"
        body = self.body()
        # Each client's folder is its own: it knows what is there, so each answer is exact.
        if self.call("PUT", name, (204 if name in self.expected else 201,), data=body) is not None:
            self.expected[name] = body
        listing = self.call("PROPFIND", self.folder, (207,), headers={"Depth": "1"})
        if listing is not None:
            hrefs = {h.text for h in etree.fromstring(listing.content).iter(DAV + "href")}
            missing = set(self.expected) - hrefs
            if missing:
                self.problems.append(f"PROPFIND {self.folder}: {sorted(missing)} not listed")
        # Everyone's folders at once, while others change theirs: no 5xx, well-formed XML.
        everyone = self.call("PROPFIND", "/", (207,), headers={"Depth": "infinity"})
        if everyone is not None:
            etree.fromstring(everyone.content)
        if self.expected:
            path = self.rng.choice(sorted(self.expected))
            got = self.call("GET", path, (200,))
            if got is not None and got.content != self.expected[path]:
                self.problems.append(f"GET {path}: {len(got.content)} bytes, not the last PUT")
        self.lock_cycle(name)
        if self.expected and self.rng.random() < 0.3:
            path = self.rng.choice(sorted(self.expected))
            if self.call("DELETE", path, (204,)) is not None:
                del self.expected[path]
        if self.rng.random() < 0.2:
            # Another client's file, there or not as that client is working: either answer.
            other = f"/t{(self.index + 1) % 16}/f{self.rng.randrange(6)}.bin"
            self.call("GET", other, (200, 404))

    def lock_cycle(self, path: str) -> None:
        existed = path in self.expected
        locked = self.call(
            "LOCK",
            path,
            (200 if existed else 201,),
            data=lockinfo("load"),
            headers={"Timeout": "Second-60"},
        )
        if locked is None:
            return
        if not existed:
            self.expected[path] = b""  # LOCK on an unmapped URL made an empty file
        token = locked.headers.get("Lock-Token", "")
        body = self.body()
        put = self.call("PUT", path, (204,), data=body, headers={"If": f"({token})"})
        if put is not None:
            self.expected[path] = body
        self.call("UNLOCK", path, (204,), headers={"Lock-Token": token})


def test_mixed_load_keeps_every_byte(server: Any):
    deadline = time.monotonic() + LOAD_SECONDS
    clients = [Client(server, i, deadline) for i in range(16)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=LOAD_SECONDS + 120)
    assert not any(client.is_alive() for client in clients), "a client hung"
    problems = [p for client in clients for p in client.problems]
    assert problems == [], problems[:20]
    assert all(client.rounds >= 3 for client in clients), [c.rounds for c in clients]
    assert temp_files(server.root) == []
    for client in clients:
        folder = server.root / client.folder.strip("/")
        on_disk = {f"{client.folder}{p.name}": p.read_bytes() for p in folder.iterdir()}
        assert sorted(on_disk) == sorted(client.expected), client.folder
        for path, content in on_disk.items():
            assert content == client.expected[path], path
    assert requests.get(server.url("/"), timeout=10).status_code == 200
