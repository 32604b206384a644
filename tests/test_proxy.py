"""davserver behind a real nginx (issue 10): at the root and under /dav/ in both prefix modes,
over HTTP and HTTPS (nginx terminates TLS with a certificate made here; the backend is plain HTTP).

Each layout checks that hrefs, lockroot and error bodies carry the public prefix; that COPY and
MOVE with public Destinations land in the right place on disk while a Destination on another
host, port or scheme, or outside the prefix, is refused with 502 and changes nothing; that tagged
If lists naming the public URL work; that no response carries the backend's own address; that the
access log names the client from X-Forwarded-For / Forwarded; and that the litmus harness passes
through the proxy.

nginx missing is a failure, not a skip: CI installs the Debian package `nginx` (tests/run).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import (
    digest_authorization,
    digest_challenge,
    free_port,
    litmus_results,
    lockinfo,
    parse_listing,
    propfind_body,
    run_litmus,
    self_signed_certificate,
)
from lxml import etree
from requests.auth import HTTPDigestAuth

from davserver.passwords import set_password
from davserver.provider.fs import TRASH_NAME

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin:/usr/bin:/bin")
DAV = "{DAV:}"
# The client address the access log must name (from X-Forwarded-For / Forwarded), unlike the
# proxy's own 127.0.0.1. The test client connects from 127.0.0.1 like everything here (no
# other loopback address need exist) and nginx takes this one, from CLIENT_HEADER, as the
# client's (its realip module): as if the client had come from a documentation network.
CLIENT = "198.51.100.7"
CLIENT_HEADER = "X-Test-Client"
ACCESS_LOGGER = "davserver.access"
USER_PASSWORD = "b0b-secret"


# -- layouts ---------------------------------------------------------------------------------

XFF_HEADERS = """
        proxy_set_header Host $host:$server_port;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
"""

SPLIT_XFF_HEADERS = """
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header X-Forwarded-Port $server_port;
        proxy_set_header X-Forwarded-Prefix /dav;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
"""

RFC7239_HEADERS = """
        proxy_set_header Forwarded "for=$remote_addr;proto=$scheme;host=\\"$host:$server_port\\"";
"""

# With public_url nginx sends its default Host (the backend's own address): the server must not
# use it for anything it emits.
PUBLIC_URL_HEADERS = """
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
"""


@dataclass(frozen=True)
class Layout:
    id: str
    tls: bool
    prefix: str  # the public path prefix, "" or "/dav"
    location: str  # nginx `location` block; {backend} is the backend port, {headers} the headers
    headers: str
    config: Callable[[str], dict[str, Any]]  # public base URL -> make_server overrides
    http_extra: str = ""  # nginx `http`-level lines (a `map`)
    # litmus warnings nginx causes (not davserver), by test name
    litmus_warnings: tuple[str, ...] = ()

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


ROOT_LOCATION = """
    location / {{
        proxy_pass http://127.0.0.1:{backend};{headers}
    }}
"""
# The usual strip configuration: nginx replaces /dav/ by /. It passes on its *normalised* URI:
# decoded, dot segments resolved, re-encoded, and cut at a `#`.
STRIP_LOCATION = """
    location /dav/ {{
        proxy_pass http://127.0.0.1:{backend}/;{headers}
    }}
"""
# Strip without normalisation: the rest of the raw request target, passed on as is (a
# proxy_pass with variables sends its URI unchanged).
RAW_STRIP_MAP = """
    map $request_uri $dav_rest {
        ~^/dav(?<rest>/.*)$ $rest;
    }
"""
RAW_STRIP_LOCATION = """
    location /dav/ {{
        proxy_pass http://127.0.0.1:{backend}$dav_rest;{headers}
    }}
"""
KEEP_LOCATION = """
    location /dav/ {{
        proxy_pass http://127.0.0.1:{backend};{headers}
    }}
"""


def _trusted(_base: str) -> dict[str, Any]:
    return {"trusted_proxies": ("127.0.0.1",)}


LAYOUTS = [
    Layout("root-http", False, "", ROOT_LOCATION, XFF_HEADERS, _trusted),
    Layout("root-https", True, "", ROOT_LOCATION, RFC7239_HEADERS, _trusted),
    # strip: the prefix comes from X-Forwarded-Prefix over HTTP, from the config over HTTPS.
    # litmus's delete_fragment sends `DELETE /dav/litmus/frag/#ment`: nginx cuts the URI at the
    # `#` and passes `DELETE /litmus/frag/`, so the collection is deleted and litmus warns.
    # davserver never sees the fragment (it answers 400 when it does: every other layout).
    Layout(
        "strip-http",
        False,
        "/dav",
        STRIP_LOCATION,
        SPLIT_XFF_HEADERS,
        _trusted,
        litmus_warnings=("delete_fragment",),
    ),
    Layout(
        "strip-https-raw",
        True,
        "/dav",
        RAW_STRIP_LOCATION,
        RFC7239_HEADERS,
        lambda base: {"trusted_proxies": ("127.0.0.1",), "prefix": "/dav"},
        http_extra=RAW_STRIP_MAP,
    ),
    Layout(
        "keep-http",
        False,
        "/dav",
        KEEP_LOCATION,
        XFF_HEADERS,
        lambda base: {"trusted_proxies": ("127.0.0.1",), "prefix": "/dav/", "prefix_mode": "keep"},
    ),
    # keep over HTTPS with public_url (its path supplies the prefix).
    Layout(
        "keep-https-public-url",
        True,
        "/dav",
        KEEP_LOCATION,
        PUBLIC_URL_HEADERS,
        lambda base: {
            "public_url": base + "/dav/",
            "prefix_mode": "keep",
            "trusted_proxies": ("127.0.0.1",),
        },
    ),
]


# -- nginx -----------------------------------------------------------------------------------

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{
    worker_connections 256;
}}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    set_real_ip_from 127.0.0.1;
    real_ip_header {client_header};
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_http_version 1.1;
    proxy_read_timeout 300s;
    proxy_send_timeout 300s;
{http_extra}
    server {{
        listen 127.0.0.1:{port}{ssl};
        {tls}
        {locations}
    }}
}}
"""


def require_nginx() -> str:
    if NGINX is None:
        pytest.fail(
            "nginx is not installed: these tests run davserver behind a real nginx. "
            "Install it with `apt-get install -y nginx` (tests/run does this in CI).",
            pytrace=False,
        )
    return NGINX


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key)."""
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@contextmanager
def nginx(
    workdir: Path, port: int, location: str, tls: tuple[Path, Path] | None, http_extra: str = ""
) -> Iterator[None]:
    """nginx in the foreground on 127.0.0.1:port with a private configuration in workdir."""
    binary = require_nginx()
    workdir.mkdir()
    tls_lines = ""
    if tls is not None:
        tls_lines = f"ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]};"
    conf = workdir / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            d=workdir,
            port=port,
            ssl=" ssl" if tls else "",
            tls=tls_lines,
            locations=location,
            http_extra=http_extra,
            client_header=CLIENT_HEADER,
        )
    )
    with open(workdir / "stderr.log", "wb") as stderr:
        proc = subprocess.Popen(
            [binary, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")],
            stdout=stderr,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.fail(f"nginx exited with {proc.returncode}:\n{_nginx_logs(workdir)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"nginx did not listen on {port}:\n{_nginx_logs(workdir)}")
                time.sleep(0.02)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _nginx_logs(workdir: Path) -> str:
    parts = []
    for name in ("stderr.log", "error.log"):
        path = workdir / name
        if path.exists():
            parts.append(f"--- {name}\n{path.read_text(errors='replace')[-4000:]}")
    return "\n".join(parts)


# -- the client ------------------------------------------------------------------------------


@dataclass
class Proxied:
    """A davserver behind nginx, and a client that records every answer it scans for leaks."""

    layout: Layout
    port: int  # nginx
    backend: Any  # tests.conftest.LiveServer
    cert: Path | None
    session: requests.Session = field(default_factory=requests.Session)
    scanned: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session.headers[CLIENT_HEADER] = CLIENT

    @property
    def base(self) -> str:
        """scheme://host:port, as clients see it."""
        return f"{self.layout.scheme}://127.0.0.1:{self.port}"

    @property
    def prefix(self) -> str:
        return self.layout.prefix

    def url(self, path: str) -> str:
        """The public absolute URL of a path below the share (`/a.txt`)."""
        return self.base + self.prefix + path

    @property
    def root(self) -> Path:
        return Path(self.backend.root)

    def request(self, method: str, path: str, scan: bool = True, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 30)
        # Per request: REQUESTS_CA_BUNDLE in the environment would override a session's verify.
        kwargs.setdefault("verify", str(self.cert) if self.cert else True)
        response = self.session.request(method, self.url(path), **kwargs)
        if scan:
            head = f"HTTP {response.status_code} {response.reason}\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in response.headers.items()
            )
            self.scanned.append((f"{method} {path}", head.encode("latin-1") + response.content))
        return response


@contextmanager
def behind_nginx(
    layout: Layout,
    make_server: Callable[..., Any],
    workdir: Path,
    certificate: tuple[Path, Path],
    **overrides: Any,
) -> Iterator[Proxied]:
    """A davserver configured for `layout` (and `overrides`) behind nginx, and its client."""
    port = free_port()
    base = f"{layout.scheme}://127.0.0.1:{port}"
    backend = make_server(**layout.config(base), **overrides)
    location = layout.location.format(backend=backend.port, headers=layout.headers)
    tls = certificate if layout.tls else None
    with nginx(workdir / "nginx", port, location, tls, layout.http_extra):
        client = Proxied(layout, port, backend, certificate[0] if layout.tls else None)
        try:
            yield client
        finally:
            client.session.close()


@pytest.fixture
def proxied(
    request: pytest.FixtureRequest,
    make_server: Callable[..., Any],
    tmp_path: Path,
    certificate: tuple[Path, Path],
) -> Iterator[Proxied]:
    with behind_nginx(request.param, make_server, tmp_path, certificate) as client:
        yield client


@pytest.fixture
def proxied_with_users(
    request: pytest.FixtureRequest,
    make_server: Callable[..., Any],
    tmp_path: Path,
    certificate: tuple[Path, Path],
) -> Iterator[Proxied]:
    """`proxied`, with the user bob (password USER_PASSWORD) for Basic and Digest."""
    htpasswd, digest = tmp_path / "users.htpasswd", tmp_path / "users.digest"
    set_password(str(htpasswd), "bob", USER_PASSWORD, str(digest), "davserver")
    users = {"htpasswd": str(htpasswd), "digest_file": str(digest), "realm": "davserver"}
    with behind_nginx(request.param, make_server, tmp_path, certificate, **users) as client:
        yield client


def _ids(layouts: list[Layout]) -> list[str]:
    return [layout.id for layout in layouts]


# -- helpers ---------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """Every directory and file under root, files with a content digest."""
    state: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        dirnames[:] = [d for d in dirnames if d != TRASH_NAME]  # deleted files, unlinked later
        for name in dirnames:
            state[(rel / name).as_posix() + "/"] = "dir"
        for name in filenames:
            data = (Path(dirpath) / name).read_bytes()
            state[(rel / name).as_posix()] = hashlib.sha256(data).hexdigest()
    return state


def hrefs(body: bytes) -> list[str]:
    tree = etree.fromstring(body)
    return [h.text or "" for h in tree.iter(f"{DAV}href")]


def lock(p: Proxied, path: str, depth: str = "0") -> tuple[str, bytes]:
    r = p.request(
        "LOCK",
        path,
        data=lockinfo("proxy test"),
        headers={"Depth": depth, "Timeout": "Second-600", "Content-Type": "application/xml"},
    )
    assert r.status_code == 200, r.text  # an existing resource
    token = r.headers["Lock-Token"].strip("<>")
    return token, r.content


def lockroots(body: bytes) -> list[str]:
    tree = etree.fromstring(body)
    return [h.text or "" for root in tree.iter(f"{DAV}lockroot") for h in root.iter(f"{DAV}href")]


# -- the scenario ----------------------------------------------------------------------------


@pytest.mark.parametrize("proxied", LAYOUTS, ids=_ids(LAYOUTS), indirect=True)
def test_behind_nginx(proxied: Proxied, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    p = proxied
    P = p.prefix
    disk = p.root

    # PUT and MKCOL through the proxy land at the share's root on disk.
    assert p.request("PUT", "/a.txt", data=b"alpha").status_code == 201
    assert (disk / "a.txt").read_bytes() == b"alpha"
    assert p.request("MKCOL", "/sub/").status_code == 201
    assert (disk / "sub").is_dir()

    # PROPFIND: every href is path-absolute under the public prefix.
    r = p.request("PROPFIND", "/", headers={"Depth": "1"})
    assert r.status_code == 207, r.text
    assert sorted(hrefs(r.content)) == sorted([f"{P}/", f"{P}/a.txt", f"{P}/sub/"])
    r = p.request("PROPFIND", "/sub/", headers={"Depth": "0"})
    assert hrefs(r.content) == [f"{P}/sub/"]

    # The HTML listing links with the prefix too.
    r = p.request("GET", "/")
    assert r.status_code == 200
    assert parse_listing(r.text).links == [("sub/", f"{P}/sub/"), ("a.txt", f"{P}/a.txt")]

    # COPY and MOVE with public Destinations: absolute URI and path-absolute.
    r = p.request("COPY", "/a.txt", headers={"Destination": p.url("/copy.txt")})
    assert r.status_code == 201, r.text
    assert (disk / "copy.txt").read_bytes() == b"alpha"
    r = p.request("COPY", "/a.txt", headers={"Destination": p.url("/sub/d%C3%A5%20x.txt")})
    assert r.status_code == 201, r.text
    assert (disk / "sub" / "då x.txt").read_bytes() == b"alpha"
    r = p.request("MOVE", "/copy.txt", headers={"Destination": f"{P}/sub/moved.txt"})
    assert r.status_code == 201, r.text
    assert (disk / "sub" / "moved.txt").read_bytes() == b"alpha"
    assert not (disk / "copy.txt").exists()
    r = p.request(
        "MOVE", "/sub/d%C3%A5%20x.txt", headers={"Destination": p.url("/d%C3%A5%20y.txt")}
    )
    assert r.status_code == 201, r.text
    assert (disk / "då y.txt").read_bytes() == b"alpha"
    assert not (disk / "sub" / "då x.txt").exists()
    # A collection, with Overwrite onto an existing one: the destination is replaced.
    r = p.request("COPY", "/sub/", headers={"Destination": p.url("/sub2/")})
    assert r.status_code == 201, r.text
    assert (disk / "sub2" / "moved.txt").read_bytes() == b"alpha"

    # Destinations that are not this share: 502, nothing changes.
    other_scheme = "http" if p.layout.tls else "https"
    foreign = [
        f"{p.layout.scheme}://localhost:{p.port}{P}/x.txt",  # another host
        f"{p.layout.scheme}://127.0.0.2:{p.port}{P}/x.txt",  # another host
        f"{p.layout.scheme}://127.0.0.1:{free_port()}{P}/x.txt",  # another port
        f"{other_scheme}://127.0.0.1:{p.port}{P}/x.txt",  # another scheme
    ]
    if P:
        foreign += [
            f"{p.base}/x.txt",  # outside the prefix
            f"{p.base}/davx/x.txt",
            "/x.txt",
            "/other/x.txt",
        ]
    before = snapshot(disk)
    for destination in foreign:
        for method in ("COPY", "MOVE"):
            r = p.request(method, "/a.txt", headers={"Destination": destination})
            assert r.status_code == 502, (method, destination, r.status_code, r.text)
            assert snapshot(disk) == before, (method, destination)
    # The backend's own address is not the public origin either (not scanned: the refusal
    # may quote the Destination it was sent).
    backend_url = f"http://127.0.0.1:{p.backend.port}/x.txt"
    for method in ("COPY", "MOVE"):
        r = p.request(method, "/a.txt", headers={"Destination": backend_url}, scan=False)
        assert r.status_code == 502, (method, r.status_code, r.text)
        assert snapshot(disk) == before

    # LOCK: lockroot in the answer and in lockdiscovery is the public path.
    token, body = lock(p, "/a.txt")
    assert lockroots(body) == [f"{P}/a.txt"]
    r = p.request(
        "PROPFIND",
        "/a.txt",
        headers={"Depth": "0"},
        data=propfind_body("{DAV:}lockdiscovery"),
    )
    assert r.status_code == 207
    assert lockroots(r.content) == [f"{P}/a.txt"]
    assert hrefs(r.content)[0] == f"{P}/a.txt"

    # Without the token: 423, and the error body names the lock root by its public path.
    r = p.request("PUT", "/a.txt", data=b"nope")
    assert r.status_code == 423
    assert f"<D:href>{P}/a.txt</D:href>" in r.text
    # A tagged list naming the backend's address is not about this resource: 412.
    r = p.request(
        "PUT",
        "/a.txt",
        data=b"nope",
        headers={"If": f"<http://127.0.0.1:{p.backend.port}/a.txt> (<{token}>)"},
        scan=False,
    )
    assert r.status_code == 412, r.text
    assert (disk / "a.txt").read_bytes() == b"alpha"
    # Tagged with the public URL: accepted.
    r = p.request("PUT", "/a.txt", data=b"beta", headers={"If": f"<{p.url('/a.txt')}> (<{token}>)"})
    assert r.status_code == 204, r.text
    assert (disk / "a.txt").read_bytes() == b"beta"
    # A MOVE of the locked file, tagged with the public URL, to a public Destination.
    r = p.request(
        "MOVE",
        "/a.txt",
        headers={"Destination": p.url("/b.txt"), "If": f"<{p.url('/a.txt')}> (<{token}>)"},
    )
    assert r.status_code == 201, r.text
    assert (disk / "b.txt").read_bytes() == b"beta"
    assert not (disk / "a.txt").exists()

    # A depth-infinity lock on a collection; a new member, tagged with the collection's URL.
    ctoken, body = lock(p, "/sub/", depth="infinity")
    assert lockroots(body) == [f"{P}/sub/"]
    r = p.request("PUT", "/sub/new.txt", data=b"new")
    assert r.status_code == 423
    r = p.request(
        "PUT", "/sub/new.txt", data=b"new", headers={"If": f"<{p.url('/sub/')}> (<{ctoken}>)"}
    )
    assert r.status_code == 201, r.text
    assert (disk / "sub" / "new.txt").read_bytes() == b"new"
    # Tagged with the path-absolute public form (no scheme and host).
    r = p.request("PUT", "/sub/new.txt", data=b"new2", headers={"If": f"<{P}/sub/> (<{ctoken}>)"})
    assert r.status_code == 204, r.text
    r = p.request("UNLOCK", "/sub/", headers={"Lock-Token": f"<{ctoken}>"})
    assert r.status_code == 204

    # A large upload streams through (client_max_body_size 0, no request buffering).
    big = os.urandom(3 * 1024 * 1024)
    r = p.request(
        "PUT", "/big.bin", data=iter([big[i : i + 65536] for i in range(0, len(big), 65536)])
    )
    assert r.status_code == 201, r.text
    assert (disk / "big.bin").read_bytes() == big

    # DELETE under the prefix.
    assert p.request("DELETE", "/sub2/").status_code == 204
    assert not (disk / "sub2").exists()

    # Nothing a client received names the backend's own address.
    leak = f"127.0.0.1:{p.backend.port}".encode()
    leaks = [what for what, data in p.scanned if leak in data]
    assert not leaks, f"responses carrying {leak!r}: {leaks}"
    assert len(p.scanned) >= 25

    # The access log names the client (CLIENT) from the proxy's forwarded headers.
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) >= len(p.scanned), lines
    wrong = [line for line in lines if not line.startswith(CLIENT + " ")]
    assert not wrong, wrong


@pytest.mark.parametrize("proxied_with_users", LAYOUTS, ids=_ids(LAYOUTS), indirect=True)
def test_digest_behind_nginx(proxied_with_users: Proxied) -> None:
    """Digest signs the URI the client asked for, prefix included (RFC 7616 3.4): in strip mode
    the backend receives another one, and must check the signature against the public URL."""
    p = proxied_with_users
    P = p.prefix
    (p.root / "file.txt").write_bytes(b"protected")
    auth = HTTPDigestAuth("bob", USER_PASSWORD)
    assert p.request("GET", "/file.txt", auth=auth).content == b"protected"
    assert p.request("MKCOL", "/sub/", auth=auth).status_code == 201
    assert p.request("PUT", "/sub/new.txt", data=b"new", auth=auth).status_code == 201
    assert (p.root / "sub" / "new.txt").read_bytes() == b"new"
    r = p.request("PROPFIND", "/sub/", headers={"Depth": "1"}, auth=auth)
    assert sorted(hrefs(r.content)) == [f"{P}/sub/", f"{P}/sub/new.txt"]
    # By hand: a signature over the public URI is accepted; one over any other URI is not,
    # not even over the path the proxy passes on after stripping the prefix.
    challenge = digest_challenge(p.request("GET", "/file.txt"), "SHA-256")
    others = [f"{P}/other.txt", f"{P}/file.txt?x=1"] + (["/file.txt"] if P else [])
    for nc, (uri, status) in enumerate(
        [(f"{P}/file.txt", 200)] + [(other, 401) for other in others], start=1
    ):
        header = digest_authorization("GET", uri, "bob", USER_PASSWORD, challenge, "SHA-256", nc)
        r = p.request("GET", "/file.txt", headers={"Authorization": header})
        assert r.status_code == status, uri
        assert (b"protected" in r.content) == (status == 200), uri


# -- direct: what nginx cannot show ----------------------------------------------------------


def test_keep_mode_answers_404_outside_the_prefix(make_server: Callable[..., Any]) -> None:
    server = make_server(prefix="/dav", prefix_mode="keep")
    (server.root / "a.txt").write_bytes(b"alpha")
    assert server.request("GET", "/dav/a.txt").content == b"alpha"
    for path in ("/a.txt", "/", "/davx/a.txt", "/other/dav/a.txt"):
        r = server.request("GET", path)
        assert r.status_code == 404, path
    r = server.request("PUT", "/b.txt", data=b"x")
    assert r.status_code == 404
    assert not (server.root / "b.txt").exists()


def test_untrusted_peer_cannot_move_the_origin(make_server: Callable[..., Any]) -> None:
    server = make_server(trusted_proxies=("10.0.0.0/8",))
    (server.root / "a.txt").write_bytes(b"alpha")
    forged = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Prefix": "/evil",
    }
    r = server.request("PROPFIND", "/", headers={"Depth": "1", **forged})
    assert sorted(hrefs(r.content)) == ["/", "/a.txt"]
    r = server.request(
        "COPY", "/a.txt", headers={"Destination": "https://evil.example/evil/b.txt", **forged}
    )
    assert r.status_code == 502
    assert not (server.root / "b.txt").exists()
    r = server.request("COPY", "/a.txt", headers={"Destination": server.url("/b.txt"), **forged})
    assert r.status_code == 201
    assert (server.root / "b.txt").read_bytes() == b"alpha"


def test_public_url_fixes_every_url_whatever_the_host_header(
    make_server: Callable[..., Any],
) -> None:
    server = make_server(public_url="https://files.example.com/my%20files/")
    (server.root / "a.txt").write_bytes(b"alpha")
    r = server.request("PROPFIND", "/", headers={"Depth": "1"})
    assert sorted(hrefs(r.content)) == ["/my%20files/", "/my%20files/a.txt"]
    r = server.request(
        "COPY",
        "/a.txt",
        headers={"Destination": "https://files.example.com:443/my%20files/c.txt"},
    )
    assert r.status_code == 201
    assert (server.root / "c.txt").read_bytes() == b"alpha"
    r = server.request("COPY", "/a.txt", headers={"Destination": server.url("/d.txt")})
    assert r.status_code == 502
    assert not (server.root / "d.txt").exists()


# -- litmus through the proxy ----------------------------------------------------------------


@pytest.mark.parametrize("proxied", LAYOUTS, ids=_ids(LAYOUTS), indirect=True)
def test_litmus_through_nginx(proxied: Proxied, tmp_path: Path) -> None:
    """Every litmus group once, through nginx, against a fresh backend.

    litmus 0.13 accepts any certificate over https (it installs a verify callback that ignores
    failures), so the self-signed certificate needs no trust store. Over https its `expect100`
    test (a raw plain-text socket) skips itself; that is the only skip allowed.
    """
    url = proxied.url("/")
    _, report = run_litmus(tmp_path, "--url", url, timeout=300)
    results = litmus_results(report)
    groups = ("basic", "copymove", "props", "locks", "http")
    assert sorted(results) == sorted(f"{group} (given)" for group in groups), report
    for label, (group, run, passed, failed) in results.items():
        assert label.startswith(group + " "), report
        assert run > 0 and passed == run and failed == 0, (label, report)
    problems = [
        ln.strip()
        for ln in report.splitlines()
        if ln.strip().startswith(("FAIL:", "WARNING:", "SKIPPED:"))
    ]
    skipped = [ln for ln in problems if ln.startswith("SKIPPED:")]
    assert skipped == (["SKIPPED: expect100"] if proxied.layout.tls else []), report
    warned = [ln for ln in problems if ln.startswith("WARNING:")]
    expected = proxied.layout.litmus_warnings
    assert len(warned) == len(expected), report
    assert all(name in line for name, line in zip(expected, warned, strict=True)), report
    assert not [ln for ln in problems if ln.startswith("FAIL:")], report
