"""Helpers shared by several test files: trees on disk, request bodies, 207 parsing, raw HTTP,
servers with a wrapped provider, users, certificates and the litmus harness.

Fixtures stay in conftest.py; what a module-scoped fixture needs is here as a generator that the
test file's own fixture yields from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from conftest import LiveServer
from lxml import etree

from davserver import paths
from davserver.config import ENGINES
from davserver.errors import Forbidden, InsufficientStorage
from davserver.passwords import set_password
from davserver.provider.fs import TEMP_PREFIX, TRASH_NAME

LITMUS_HARNESS = Path(__file__).resolve().parents[1] / "litmus" / "run.py"
COLOR = "{urn:t}color"  # the dead property most tests set

# -- trees on disk ------------------------------------------------------------------------------


def share_beside_outside(tmp_path: Path, secret: bytes) -> tuple[Path, Path]:
    """An empty share root and, beside it, an outside folder holding `secret` in a file of
    that name: what a request that escapes the share would reach."""
    root = tmp_path / "share"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_bytes(secret)
    return root, outside


def make_tree(root: Path, files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> None:
    """Create the folders `dirs` and the files {relative path: content} under `root`."""
    for rel in dirs:
        (root / rel).mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def snapshot(root: Path, under: str = "") -> dict[str, bytes | None]:
    """Every path below root/under, relative to it: file bytes, or None for a directory.

    The server's own hidden files (uploads in progress, the trash of deleted files waiting
    to be unlinked) are not content of the share and are left out."""
    base = root / under if under else root
    result: dict[str, bytes | None] = {}
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base).as_posix()
        if not any(part.startswith(TEMP_PREFIX) for part in rel.split("/")):
            result[rel] = None if path.is_dir() else path.read_bytes()
    return result


def shared_names(directory: Path) -> list[str]:
    """The sorted names in `directory` that belong to the share: all but the trash folder,
    where deleted files wait to be unlinked (davserver/provider/trash.py)."""
    return sorted(p.name for p in directory.iterdir() if p.name != TRASH_NAME)


def temp_files(root: Path) -> list[Path]:
    """The provider's temporary upload files anywhere under `root` (not the trash)."""
    return [
        p
        for p in root.rglob("*")
        if p.name.startswith(TEMP_PREFIX) and TRASH_NAME not in p.relative_to(root).parts
    ]


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll `condition` until it holds (True) or `seconds` pass (False); a bound, not a
    measurement."""
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


# -- request bodies -----------------------------------------------------------------------------


def prop_xml(name: str, value: str | None = None) -> str:
    """The element of the property `name` ("{ns}local"), empty or with the text `value`
    (escaped); DAV: properties use the prefix D, which the enclosing body declares."""
    ns, _, local = name[1:].partition("}")
    if ns == "DAV:":
        tag, declaration = f"D:{local}", ""
    elif not ns:
        tag, declaration = local, ' xmlns=""'
    else:
        tag, declaration = f"x:{local}", f' xmlns:x="{ns}"'
    if value is None:
        return f"<{tag}{declaration}/>"
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"<{tag}{declaration}>{escaped}</{tag}>"


def propfind_body(*names: str) -> bytes:
    """A PROPFIND body asking for the properties `names` ("{ns}local")."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
        + "".join(prop_xml(n) for n in names)
        + "</D:prop></D:propfind>"
    ).encode()


def proppatch_body(name: str = COLOR, value: str = "red") -> bytes:
    """A PROPPATCH body that sets the one property `name` ("{ns}local") to `value`."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
        + prop_xml(name, value)
        + "</D:prop></D:set></D:propertyupdate>"
    ).encode()


def lockinfo(owner: str | None = "test", scope: str = "exclusive") -> bytes:
    """A LOCK body for a write lock of `scope`; `owner` (text or XML) becomes the content of
    <D:owner>, which None leaves out."""
    owner_xml = "" if owner is None else f"<D:owner>{owner}</D:owner>"
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:{scope}/></D:lockscope>'
        f"<D:locktype><D:write/></D:locktype>{owner_xml}</D:lockinfo>"
    ).encode()


def post_batch(
    server: Any,
    operations: list[dict[str, Any]],
    at: str = "/",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Any:
    """POST the JSON batch {"operations": operations, **extra} to the collection `at`."""
    body = json.dumps({"operations": operations, **extra}).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    return server.request("POST", at, headers=sent, data=body)


# -- answers ------------------------------------------------------------------------------------


def multistatus(content: bytes) -> dict[str, int]:
    """A 207 body as {decoded href path: status code}; each response has one href and status."""
    doc = etree.fromstring(content)
    assert doc.tag == "{DAV:}multistatus"
    result = {}
    for response in doc.findall("{DAV:}response"):
        hrefs = response.findall("{DAV:}href")
        assert len(hrefs) == 1, etree.tostring(response)
        status = response.findtext("{DAV:}status")
        assert status is not None, etree.tostring(response)
        href = unquote(urlsplit(hrefs[0].text or "").path)
        assert href not in result, href
        result[href] = int(status.split()[1])
    return result


def color_of(server: Any, path: str) -> str | None:
    """The dead property COLOR of `path` as PROPFIND reports it (None: not set, a 404)."""
    r = server.request("PROPFIND", path, headers={"Depth": "0"}, data=propfind_body(COLOR))
    assert r.status_code == 207, r.status_code
    doc = etree.fromstring(r.content)
    [element] = doc.iterfind("{DAV:}response/{DAV:}propstat/{DAV:}prop/" + COLOR)
    status = element.getparent().getparent().findtext("{DAV:}status")
    code = int(status.split()[1])
    if code == 404:
        return None
    assert code == 200, status
    return element.text


@dataclasses.dataclass
class Listing:
    """An HTML collection page as a browser reads it: its title, every element it holds
    (an unescaped name would add one) and its links, in order, as (text, href)."""

    title: str
    tags: list[str]
    links: list[tuple[str, str]]

    @property
    def names(self) -> list[str]:
        """The members' names as shown (collections end in "/"), without the parent link."""
        return [text for text, _ in self.links if text != "../"]


class _ListingParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.listing = Listing("", [], [])
        self._in: str | None = None
        self._text: list[str] = []
        self._href = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.listing.tags.append(tag)
        if tag in ("title", "a"):
            self._in, self._text = tag, []
            self._href = dict(attrs).get("href") or ""

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in == "title":
            self.listing.title = "".join(self._text)
        elif tag == self._in == "a":
            self.listing.links.append(("".join(self._text), self._href))
        if tag == self._in:
            self._in = None


def parse_listing(page: str) -> Listing:
    """The HTML listing `page` (GET on a collection), parsed."""
    parser = _ListingParser()
    parser.feed(page)
    parser.close()
    return parser.listing


# -- raw HTTP -----------------------------------------------------------------------------------

# One header line as RFC 9110 5.1 allows it: a token, a colon, no CR or LF anywhere.
HEADER_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*")


def request_bytes(
    method: str,
    target: bytes,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    host: str = "x",
) -> bytes:
    """A raw HTTP/1.1 request that closes the connection, exactly as given (no client library
    normalises the target); Content-Length is sent with a body and for methods that take one."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: " + host.encode()]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}".encode("latin-1"))
    if body or method in ("PUT", "PROPFIND", "PROPPATCH", "LOCK", "MKCOL"):
        lines.append(f"Content-Length: {len(body)}".encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def check_head(head: bytes) -> None:
    """Every header line of a response head is one well-formed `Name: value` line, and none is
    an injected X-Injected header (no response splitting)."""
    names = []
    for line in head.split(b"\r\n")[1:]:
        assert HEADER_LINE.fullmatch(line), f"malformed header line {line!r}"
        names.append(line.partition(b":")[0].decode("latin-1").lower())
    assert "x-injected" not in names, head


def split_raw(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    """A raw HTTP/1.1 answer as (status line, headers lower-cased, everything after)."""
    head, sep, rest = answer.partition(b"\r\n\r\n")
    assert sep, answer
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, rest


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- HTTP Digest (RFC 7616), spoken by hand ---------------------------------------------------


def parse_params(text: str) -> dict[str, str]:
    """The auth-params of a challenge (`realm="x", qop="auth"`), names lower-cased."""
    params = {}
    for key, quoted, token in re.findall(r'([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))', text):
        params[key.lower()] = quoted if quoted or not token else token
    return params


def challenges(response: Any) -> list[tuple[str, dict[str, str]]]:
    """Each WWW-Authenticate header on its own: (scheme, parameters)."""
    found = []
    for value in response.raw.headers.getlist("WWW-Authenticate"):
        scheme, _, rest = value.strip().partition(" ")
        found.append((scheme.lower(), parse_params(rest)))
    return found


def digest_challenge(response: Any, algorithm: str) -> dict[str, str]:
    """The parameters of the 401 answer's Digest challenge for `algorithm`."""
    assert response.status_code == 401
    for scheme, params in challenges(response):
        if scheme == "digest" and params.get("algorithm", "MD5").upper() == algorithm:
            return params
    raise AssertionError(f"no Digest {algorithm} challenge in {response.headers}")


def digest_authorization(
    method: str,
    uri: str,
    user: str,
    password: str,
    challenge: dict[str, str],
    algorithm: str,
    nc: int = 1,
) -> str:
    """An RFC 7616 Authorization header (qop=auth) for `method` on `uri`."""

    def h(text: str) -> str:
        data = text.encode("utf-8")
        if algorithm == "MD5":
            return hashlib.md5(data).hexdigest()
        return hashlib.sha256(data).hexdigest()

    realm, nonce = challenge["realm"], challenge["nonce"]
    cnonce = secrets.token_hex(8)
    count = f"{nc:08x}"
    ha1 = h(f"{user}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    response = h(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}")
    fields = [
        f'username="{user}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f"algorithm={algorithm}",
        "qop=auth",
        f"nc={count}",
        f'cnonce="{cnonce}"',
        f'response="{response}"',
    ]
    if "opaque" in challenge:
        fields.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(fields)


# -- servers ------------------------------------------------------------------------------------


def shared_server(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[LiveServer]:
    """The body of a module-scoped fixture: one server for many tests, stopped at the end."""
    base = tmp_path_factory.mktemp(name)
    (base / "root").mkdir()
    live = LiveServer(base / "root", base / "state", {})
    yield live
    live.stop()


def with_provider(server: Any, wrap: Callable[[Any], Any]) -> Any:
    """Restart `server` with its provider wrapped by `wrap`; the wrapped provider."""
    services = server.services
    wrapped = wrap(services.provider)
    server.stop()
    server.start(services=dataclasses.replace(services, provider=wrapped))
    return wrapped


class CopyBudget:
    """Delegates, but refuses (507) copies past `budget`, so a runaway COPY ends."""

    def __init__(self, inner: Any, budget: int) -> None:
        self.inner, self.budget, self.copies = inner, budget, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def copy(self, src: str, dst: str) -> None:
        self.copies += 1
        if self.copies > self.budget:
            raise InsufficientStorage("budget spent")
        self.inner.copy(src, dst)


class Pausing:
    """Delegates; its first copy() or move() waits, at most `patience` seconds, for another
    change (a copy, move or delete) to reach the storage, so that a request sent meanwhile
    runs in the middle of it unless a claim holds it back. `met` says whether one did."""

    def __init__(self, inner: Any, patience: float = 2.0) -> None:
        self.inner = inner
        self.patience = patience
        self.pausing = threading.Event()
        self.other = threading.Event()
        self.met = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _reached(self) -> None:
        if not self.pausing.is_set():
            self.pausing.set()
            self.met = self.other.wait(self.patience)
        else:
            self.other.set()

    def copy(self, src: str, dst: str) -> None:
        self._reached()
        self.inner.copy(src, dst)

    def move(self, src: str, dst: str) -> bool:
        self._reached()
        return bool(self.inner.move(src, dst))

    def delete(self, path: str) -> None:
        self.other.set()
        self.inner.delete(path)


class Failing:
    """Delegates to the provider, but its method `name` raises `error`, as a disk would."""

    def __init__(self, inner: Any, name: str, error: Exception) -> None:
        self.inner, self.name, self.error = inner, name, error

    def __getattr__(self, name: str) -> Any:
        if name != self.name:
            return getattr(self.inner, name)

        def fail(*_args: Any) -> Any:
            raise self.error

        return fail


class Refusing:
    """A provider that delegates everything but refuses delete() of the chosen names."""

    def __init__(self, inner: Any, names: set[str]) -> None:
        self.inner = inner
        self.names = names
        self.refused: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete(self, path: str) -> None:
        if paths.name(path) in self.names:
            self.refused.append(path)
            raise Forbidden(f"{path} may not be deleted")
        self.inner.delete(path)


def write_users(path: Path, users: dict[str, str]) -> str:
    """An htpasswd file at `path` with {user: password}; its path, for `htpasswd=`."""
    for user, password in users.items():
        set_password(str(path), user, password)
    return str(path)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost in `folder`: (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def run_litmus(cwd: Path, *args: str, timeout: float) -> tuple[int, str]:
    """Run the litmus harness (litmus/run.py) with `args`: its exit code and whole output."""
    result = subprocess.run(
        [sys.executable, str(LITMUS_HARNESS), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


# One group's line of the harness report: "basic (auth)   <- summary for `basic': of 16 tests
# run: 16 passed, 0 failed. 100.0%".
LITMUS_SUMMARY = re.compile(
    r"(?P<label>\S+ \(\w+\))\s+<- summary for `(?P<group>\w+)': "
    r"of (?P<run>\d+) tests run: (?P<passed>\d+) passed, (?P<failed>\d+) failed\."
)


def litmus_results(report: str) -> dict[str, tuple[str, int, int, int]]:
    """The harness report's summary lines: {"basic (auth)": (group, run, passed, failed)}."""
    return {
        m["label"]: (m["group"], int(m["run"]), int(m["passed"]), int(m["failed"]))
        for m in LITMUS_SUMMARY.finditer(report)
    }


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine in turn, for a module that imports this with `make_server`: what both
    engines must do alike (refuse hostile input, keep deadlines) is tested on both."""
    return str(request.param)


@pytest.fixture
def make_server(make_server: Callable[..., Any], engine: str) -> Callable[..., Any]:
    """conftest's factory, on the engine of the test (imported with `engine`)."""
    return lambda **overrides: make_server(engine=engine, **overrides)
