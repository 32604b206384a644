"""Hardening found by a second adversarial review: odd digits and huge numbers in headers,
JSON and XML that cost too much or cannot be encoded, broken URLs, Digest edge cases, options
that only work together, conditionals on collections, hrefs of locked collections, and CLI
errors that must name the option instead of showing a traceback."""

from __future__ import annotations

import base64
import json
import os
import pty
import selectors
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
from conftest import LiveServer
from helpers import lockinfo, request_bytes, split_raw
from lxml import etree

from davserver import config as config_module
from davserver import xmlin
from davserver.config import ConfigError
from davserver.passwords import Users, set_password, verify

JSON = {"Content-Type": "application/json"}


def _batch(server: LiveServer, operations: list[dict[str, Any]]) -> requests.Response:
    body = json.dumps({"operations": operations})
    return server.request("POST", "/", data=body.encode(), headers=JSON)


def _raw_status(server: LiveServer, data: bytes) -> tuple[int, dict[str, str], bytes]:
    status, headers, rest = split_raw(server.raw(data))
    return int(status.split()[1]), headers, rest


# -- header values that crash int() ---------------------------------------------------------
# WSGI hands header values over as ISO-8859-1, where '¹²³' (0xB9, 0xB2, 0xB3) are digits to
# str.isdigit() but not to int(); and int() refuses more than 4300 digits. Either way a
# "number" that passes the isdigit() test becomes an unhandled ValueError: a 500.


def test_range_with_a_superscript_digit_is_ignored_not_a_500(server: LiveServer) -> None:
    """RFC 9110 14.2: an invalid Range is ignored (200 with the whole file)."""
    (server.root / "f.txt").write_bytes(b"hello world")
    for value in ("bytes=\xb2-", "bytes=0-\xb3", "bytes=-\xb9"):
        status, _, rest = _raw_status(server, request_bytes("GET", b"/f.txt", {"Range": value}))
        assert status == 200, (value, status, rest)
        assert rest == b"hello world"


def test_range_with_a_very_long_number_is_not_a_500(server: LiveServer) -> None:
    """`bytes=0-999...9` (5000 digits) is a valid last-pos past the end: RFC 9110 allows 206
    of the whole file (14.1.2) or ignoring the Range (14.2, 200). davserver's choice: a
    number too long for it makes the Range one it ignores. Never a 500."""
    (server.root / "f.txt").write_bytes(b"hello world")
    status, _, rest = _raw_status(
        server, request_bytes("GET", b"/f.txt", {"Range": "bytes=0-" + "9" * 5000})
    )
    assert status == 200, (status, rest)
    assert rest == b"hello world"


@pytest.mark.parametrize("timeout", ["Second-\xb9", "Second-" + "9" * 5000])
def test_lock_timeout_with_odd_digits_is_not_a_500(server: LiveServer, timeout: str) -> None:
    """RFC 4918 10.7 leaves a Timeout the server cannot read to it: davserver refuses it
    (400), as it does other garbage there, whether the digits are odd or too many. Never a
    500."""
    (server.root / "d").mkdir()
    body = (
        b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
        b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
    )
    status, _, rest = _raw_status(server, request_bytes("LOCK", b"/d", {"Timeout": timeout}, body))
    assert status == 400, (status, rest)
    assert rest.startswith(b"Timeout "), rest[:100]


def test_put_content_range_with_a_superscript_digit_is_400(server: LiveServer) -> None:
    """A Content-Range that does not parse is a 400 (RFC 9110 14.5), not a 500."""
    status, _, rest = _raw_status(
        server, request_bytes("PUT", b"/g.txt", {"Content-Range": "bytes 0-\xb2/5"}, b"x")
    )
    assert status == 400, (status, rest)
    assert not (server.root / "g.txt").exists()


# -- XML bodies ---------------------------------------------------------------------------------


def test_many_namespace_declarations_do_not_cost_quadratic_memory() -> None:
    """xmlin.parse_document copies the whole in-scope namespace map into a new dict for every
    element. A root that declares N prefixes and holds N elements therefore costs N^2 dict
    entries: 3000 + 3000 (a 76 KB body) peak at about 300 MiB, and a body within the 1 MiB
    max_xml_body (about 22,000 + 22,000) needs some 15 GiB: one PROPFIND or PROPPATCH takes
    the server's memory. The same declarations spread over the elements cost 3 MiB."""
    n = 3000
    declarations = " ".join(f'xmlns:a{i}="urn:{i}"' for i in range(n))
    body = (
        f'<D:propfind xmlns:D="DAV:" {declarations}><D:prop>'
        + "<D:getetag/>" * n
        + "</D:prop></D:propfind>"
    ).encode()
    tracemalloc.start()
    try:
        parsed = xmlin.parse_propfind(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(parsed.names) == n
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB to parse a {len(body)} byte body"


# -- the JSON batch ------------------------------------------------------------------------------


def test_deeply_nested_json_batch_is_400(server: LiveServer) -> None:
    """json.loads raises RecursionError (not ValueError) for deep nesting: a 100 KB body
    gives a 500 with a traceback in the log instead of the batch's 400 invalid-json."""
    body = b'{"operations": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = server.request("POST", "/", data=body, headers=JSON)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid-json"


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "mkcol", "path": "\ud800"},
        {"op": "mkcol", "path": "a\udcffb"},
        {"op": "copy", "path": "f", "destination": "\ud800"},
        {"op": "proppatch", "path": "f", "set": {"{urn:x}a": "\ud800"}},
        {"op": "proppatch", "path": "f", "set": {"{urn:\ud800}a": "v"}},
    ],
)
def test_batch_with_a_lone_surrogate_is_refused_cleanly(
    server: LiveServer, operation: dict[str, Any]
) -> None:
    r"""JSON may spell lone surrogates (`"\ud800"`) that no UTF-8 text can hold: encoding the
    item's href, file name, property or output would raise UnicodeEncodeError in the middle
    of the streamed 207. The whole body is refused first (400 invalid-json) and nothing
    runs."""
    (server.root / "f").write_bytes(b"x")
    try:
        r = _batch(server, [operation, {"op": "mkcol", "path": "after"}])
    except requests.exceptions.ChunkedEncodingError as exc:
        pytest.fail(f"the batch answer broke off: {exc}")
    assert r.status_code == 400, r.status_code
    assert r.json()["error"] == "invalid-json"
    assert sorted(os.listdir(server.root)) == ["f"]


# -- conditional GET and HEAD on a collection -------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_if_match_is_evaluated_on_a_collection_listing(server: LiveServer, method: str) -> None:
    """RFC 9110 13.1.1 / 13.2.2: If-Match with tags that do not match (a collection has no
    ETag here) must be 412; the HTML listing ignores every precondition and answers 200."""
    (server.root / "d").mkdir()
    r = server.request(method, "/d/", headers={"If-Match": '"no-such-tag"'})
    assert r.status_code == 412


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_if_none_match_star_on_a_collection_listing_is_304(server: LiveServer, method: str) -> None:
    """RFC 9110 13.1.2: `If-None-Match: *` is false when a current representation exists,
    and for GET/HEAD the answer is then 304; the listing answers 200."""
    (server.root / "d").mkdir()
    r = server.request(method, "/d/", headers={"If-None-Match": "*"})
    assert r.status_code == 304


# -- URLs that urlsplit() refuses -------------------------------------------------------------


def test_destination_with_a_broken_ipv6_host_is_not_a_500(server: LiveServer) -> None:
    """urlsplit raises ValueError('Invalid IPv6 URL'), which nothing catches: 500. A
    Destination that is not a URI at all is a 400 (RFC 4918 10.3: an unacceptable
    Destination), with the reason; one that is a URI of another server is a 502 (9.8.5)."""
    (server.root / "f.txt").write_bytes(b"x")
    status, _, rest = _raw_status(
        server, request_bytes("COPY", b"/f.txt", {"Destination": "http://[::1/x"})
    )
    assert status == 400, (status, rest)
    assert b"is not a URI" in rest


def test_if_header_tag_with_a_broken_ipv6_host_is_not_a_500(server: LiveServer) -> None:
    """A resource tag that cannot be one of ours makes its list false (412, RFC 4918 10.4);
    the tag's urlsplit ValueError must not give a 500."""
    (server.root / "f.txt").write_bytes(b"x")
    status, _, rest = _raw_status(
        server,
        request_bytes("PUT", b"/f.txt", {"If": '<http://[::1/x> (["a"])'}, b"y"),
    )
    assert status == 412, (status, rest)
    assert (server.root / "f.txt").read_bytes() == b"x"


def test_raw_utf8_destination_does_not_make_a_mojibake_name(server: LiveServer) -> None:
    """The Destination header reaches the app as ISO-8859-1 text; url_to_path re-encodes
    those characters as UTF-8, so raw UTF-8 bytes `caf\\xc3\\xa9` would become the name
    'cafÃ©'. davserver reads them as the UTF-8 they are (it could also refuse the non-ASCII
    URI); never a third name."""
    (server.root / "f.txt").write_bytes(b"x")
    data = (
        "MOVE /f.txt HTTP/1.1\r\nHost: x\r\nDestination: /café\r\nConnection: close\r\n\r\n"
    ).encode()
    status, _, _ = _raw_status(server, data)
    assert status == 201
    assert os.listdir(server.root) == ["café"]


# -- hrefs of collections in 207 answers ---------------------------------------------------


def _hrefs(content: bytes) -> list[str]:
    return [e.text or "" for e in etree.fromstring(content).iter("{DAV:}href")]


def test_delete_207_names_a_locked_collection_with_its_slash(server: LiveServer) -> None:
    """RFC 4918 5.2: "Wherever a server produces a URL referring to a collection, the server
    SHOULD include the trailing slash." The <D:lock-token-submitted> href of a 207 member
    says `/c/sub` for the lock rooted at the collection `/c/sub/` (its lockroot, and the
    member's own href, say `/c/sub/`): xmlout.member_response passes is_collection=False
    for every condition path."""
    (server.root / "c" / "sub").mkdir(parents=True)
    lock = server.request("LOCK", "/c/sub/", data=lockinfo(), headers={"Depth": "0"})
    assert lock.status_code == 200
    r = server.request("DELETE", "/c/")
    assert r.status_code == 207
    assert "/c/sub" not in _hrefs(r.content), r.text
    assert "/c/sub/" in _hrefs(r.content)


def test_lock_conflict_207_names_a_locked_collection_with_its_slash(server: LiveServer) -> None:
    """The same for a depth-infinity LOCK refused because a member collection is locked
    (RFC 4918 9.10.9): methods/lock.py _conflict makes the 423 member with
    is_collection=False, so both its href and its condition href lack the slash."""
    (server.root / "c" / "sub").mkdir(parents=True)
    lock = server.request("LOCK", "/c/sub/", data=lockinfo(), headers={"Depth": "0"})
    assert lock.status_code == 200
    r = server.request("LOCK", "/c/", data=lockinfo(), headers={"Depth": "infinity"})
    assert r.status_code == 207
    assert "/c/sub" not in _hrefs(r.content), r.text
    assert "/c/sub/" in _hrefs(r.content)


# -- Digest --------------------------------------------------------------------------------


@pytest.fixture
def digest_server(make_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    htpasswd, digest = tmp_path / "users", tmp_path / "digest"
    set_password(str(htpasswd), "alice", "secret", str(digest), "davserver")
    return make_server(htpasswd=str(htpasswd), digest_file=str(digest))


def _digest(nonce: str, response: str = "0" * 32, user: str = "alice") -> str:
    return (
        f'Digest username="{user}", realm="davserver", nonce="{nonce}", uri="/", '
        f'algorithm=MD5, qop=auth, nc=00000001, cnonce="c", response="{response}"'
    )


def test_digest_nonce_with_non_ascii_text_is_401_not_500(digest_server: LiveServer) -> None:
    """hmac.compare_digest raises TypeError for a str with non-ASCII characters: a forged
    nonce whose base64 decodes to `1:x:é` reaches it (auth.py _nonce_age) and gives a 500
    to anybody, no user name needed."""
    nonce = base64.b64encode("1:x:é".encode()).decode()
    status, _, rest = _raw_status(
        digest_server, request_bytes("GET", b"/", {"Authorization": _digest(nonce)})
    )
    assert status == 401, (status, rest)


def test_digest_response_with_non_ascii_text_is_401_not_500(digest_server: LiveServer) -> None:
    """The same TypeError from the `response` parameter (auth.py _digest), with a real nonce
    from a challenge and a known user."""
    challenge = digest_server.request("GET", "/")
    assert challenge.status_code == 401
    header = next(v for v in challenge.raw.headers.getlist("WWW-Authenticate") if "MD5" in v)
    nonce = header.split('nonce="')[1].split('"')[0]
    status, _, rest = _raw_status(
        digest_server,
        request_bytes("GET", b"/", {"Authorization": _digest(nonce, response="\xe9" * 32)}),
    )
    assert status == 401, (status, rest)


def test_digest_realm_with_a_colon_is_refused(tmp_path: Path) -> None:
    """`davserver passwd --digest F --realm 'Team: files'` would write `user:Team: files:HA1`,
    which read_digest (split(':') into exactly 3) silently drops: the user could never log in
    with Digest, yet passwd reported success. Such a realm is refused, and nothing written;
    a plain realm works."""
    htpasswd, digest = tmp_path / "users", tmp_path / "digest"
    with pytest.raises(ValueError, match="realm"):
        set_password(str(htpasswd), "bob", "pw", str(digest), "Team: files")
    assert not htpasswd.exists() and not digest.exists()
    set_password(str(htpasswd), "bob", "pw", str(digest), "Team files")
    assert Users(str(htpasswd), str(digest)).ha1("bob", "Team files", "MD5") is not None


def test_digest_file_without_htpasswd_does_not_leave_the_share_open(tmp_path: Path) -> None:
    """`--digest-file F` alone: build_services makes an Authenticator only `if
    config.htpasswd`, so the digest file would be silently ignored and, with no users,
    anonymous users would get write access everywhere. The configuration is refused."""
    digest = tmp_path / "digest"
    set_password(str(tmp_path / "unused"), "alice", "secret", str(digest), "davserver")
    with pytest.raises(ConfigError, match=r"digest_file: needs \[auth\] htpasswd"):
        config_module.load(None, {"root": str(tmp_path / "share"), "digest_file": str(digest)})


def test_no_offered_scheme_is_refused_at_startup(tmp_path: Path) -> None:
    """`basic = "never"` without a digest file offers no scheme at all: every 401 would go out
    without a WWW-Authenticate header (RFC 9110 11.6.1: it MUST carry at least one
    challenge) and nobody could ever log in. The configuration is refused."""
    htpasswd = tmp_path / "users"
    set_password(str(htpasswd), "alice", "secret")
    overrides = {"root": str(tmp_path / "share"), "htpasswd": str(htpasswd), "basic": "never"}
    with pytest.raises(ConfigError, match='basic = "never" and no digest_file'):
        config_module.load(None, overrides)


def test_htpasswd_removed_while_serving_is_not_a_500(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """Users.reload() re-reads the file whenever its stamp changes, and read_htpasswd's
    FileNotFoundError is not caught: once the file is gone (an admin removing every user,
    an editor replacing it), every request with credentials is a 500 with a traceback.
    Expected: the credentials are refused (401), or the last users read keep working."""
    htpasswd = tmp_path / "users"
    set_password(str(htpasswd), "alice", "secret")
    live = make_server(htpasswd=str(htpasswd))
    assert live.request("GET", "/", auth=("alice", "secret")).status_code == 200
    htpasswd.unlink()
    r = live.request("GET", "/", auth=("alice", "other"))
    assert r.status_code == 401, r.text


# -- passwords ----------------------------------------------------------------------------------


def test_user_name_with_a_newline_cannot_add_another_user(tmp_path: Path) -> None:
    """set_password refuses ':' but not a line break: user 'alice\\nmallory' writes a line
    'mallory:<hash>', i.e. creates the user mallory with that password."""
    htpasswd = tmp_path / "users"
    with pytest.raises(ValueError, match="user name"):
        set_password(str(htpasswd), "alice\nmallory", "pw")
    assert not htpasswd.exists()


def test_long_password_from_an_apache_bcrypt_hash_still_logs_in() -> None:
    """Apache's `htpasswd -B` (crypt_blowfish) and bcrypt < 5 use the first 72 bytes of a
    longer password. bcrypt 5 raises ValueError for more than 72 bytes, which verify() turns
    into a mismatch: such users can no longer log in (and `davserver passwd` refuses to set
    such a password with bcrypt's own 'truncate manually' message)."""
    password = "correct horse battery staple " * 3  # 87 bytes
    apache = bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()
    stored = "$2y$" + apache[4:]
    assert verify(stored, password)


# -- configuration and command line --------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg-state")
    env["HOME"] = str(tmp_path / "home")
    return subprocess.run(
        [sys.executable, "-m", "davserver", *args],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_public_url_that_urlsplit_refuses_is_a_config_error(tmp_path: Path) -> None:
    """_public_url's urlsplit raises ValueError for `http://[::1`: a traceback at startup
    instead of the message naming the file and key."""
    toml = tmp_path / "c.toml"
    toml.write_text('[proxy]\npublic_url = "http://[::1"\n')
    with pytest.raises(ConfigError, match="public_url"):
        config_module.load(str(toml))
    with pytest.raises(ConfigError, match="public_url"):
        config_module.load(None, {"public_url": "http://[::1"})


def test_cert_without_key_is_a_config_error(tmp_path: Path) -> None:
    """With `cert` set and `key` empty, Config.tls() is false and the server silently serves
    plain HTTP to someone who asked for HTTPS. It should be refused, naming the key."""
    toml = tmp_path / "c.toml"
    toml.write_text('[server]\ncert = "cert.pem"\n')
    with pytest.raises(ConfigError, match="key"):
        config_module.load(str(toml))


def test_root_that_is_a_file_is_not_reported_as_a_listen_failure(tmp_path: Path) -> None:
    """Every OSError while building the services is printed as 'cannot listen on
    HOST:PORT', e.g. for a root that is a file."""
    (tmp_path / "afile").write_text("x")
    done = _cli(tmp_path, "serve", "afile", "--port", "0", "--state-dir", "state")
    assert done.returncode != 0
    assert "listen" not in done.stderr, done.stderr
    assert "afile" in done.stderr, done.stderr


def test_missing_htpasswd_names_the_option(tmp_path: Path) -> None:
    """A missing htpasswd file is reported as 'cannot listen on 127.0.0.1:0: [Errno 2] ...'
    (cli.py catches every OSError of DavServer() as a bind failure)."""
    done = _cli(
        tmp_path, "serve", "share", "--port", "0", "--htpasswd", "users.txt", "--basic", "always"
    )
    assert done.returncode != 0
    assert "listen" not in done.stderr, done.stderr
    assert "htpasswd" in done.stderr, done.stderr


def test_htpasswd_that_is_not_utf8_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    """read_htpasswd's UnicodeDecodeError is not an OSError: a traceback at startup."""
    (tmp_path / "users.txt").write_bytes(b"\xff\xfe:x\n")
    done = _cli(
        tmp_path, "serve", "share", "--port", "0", "--htpasswd", "users.txt", "--basic", "always"
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert "users.txt" in done.stderr, done.stderr


def test_passwd_end_of_input_at_the_prompt_is_not_a_traceback(tmp_path: Path) -> None:
    """Ctrl-D at `davserver passwd`'s password prompt: getpass raises EOFError, which
    cli._passwd does not catch (a traceback, exit 1 by accident)."""
    env = dict(os.environ, HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"))
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "davserver", "passwd", "u", "bob"], env)
    output = b""
    # selectors, not select.select: the descriptor may be above 1023 in a busy process.
    watcher = selectors.DefaultSelector()
    watcher.register(fd, selectors.EVENT_READ)

    def read_until(done: Callable[[bytes], bool], seconds: float) -> None:
        nonlocal output
        deadline = time.monotonic() + seconds
        while not done(output) and time.monotonic() < deadline:
            if watcher.select(0.1):
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    return
                if not chunk:
                    return
                output += chunk

    try:
        read_until(lambda text: b"password for" in text, 30)
        assert b"password for" in output, output
        os.write(fd, b"\x04")
        read_until(lambda _text: False, 30)  # until the child closes the terminal
    finally:
        _, status = os.waitpid(pid, 0)
        watcher.close()
        os.close(fd)
    assert b"Traceback" not in output, output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) != 0
    assert not (tmp_path / "u").exists()
