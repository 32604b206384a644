"""Users, authentication, access rules and TLS (issue 6).

Password hashes are checked against fixed vectors: hashes written by Apache's `htpasswd` for the
password "secret", and the SHA-crypt test vectors of Ulrich Drepper's specification ("Unix crypt
using SHA-256 and SHA-512"). Live tests run HTTP Basic and Digest (RFC 7617, RFC 7616) against a
server whose users were made by `set_password`; Digest is spoken by a small client written here
from RFC 7616 so that replays, stale nonces and foreign URIs can be forged exactly.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import (
    challenges,
    digest_authorization,
    digest_challenge,
    lockinfo,
    parse_listing,
    proppatch_body,
    self_signed_certificate,
    snapshot,
)
from lxml import etree
from requests.auth import HTTPDigestAuth

from davserver import passwords
from davserver.config import Config, ConfigError, load
from davserver.passwords import set_password, verify

REALM = "davserver"
DAV = "{DAV:}"
PASSWORDS = {"alice": "alice-Pa55", "bob": "b0b-secret"}

# -- password hashes ------------------------------------------------------------------------

# Written by Apache's htpasswd (-B -C 5, -5, -2, -m, -s) for the password "secret".
APACHE_HASHES = {
    "bcrypt": "$2y$05$fAnI3n5bYYH8J.1K9rT3SOdRCBUaJyBCHntIsTIbI./w2qkz.OjkS",
    "sha512": "$6$QbMhtVvcEHyNzs.B$51Pqac9rTWZhhCINu7yJSnlgdrGfX67Pl4nztnSreUMqWWkRECZW."
    "JiSdY58ZCtfEqyfiBmnT7HOVns2iiqqG.",
    "sha256": "$5$cmUotl3F00r.ZdTW$UGTpuZFtsLV11SspzwapE67.nM8dOODAR2SAtZx3T5C",
    "apr1": "$apr1$vvdgvWRy$p2fMjhZ3ebBqMo6FWUxSU/",
    "sha1": "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
}

# Drepper's test vectors: (password, setting, full hash). The salt is cut to 16 characters and
# the rounds are clamped to at least 1000, which the expected hashes show.
SHA_CRYPT_VECTORS = [
    (
        "Hello world!",
        "$5$saltstring",
        "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
    ),
    (
        "Hello world!",
        "$5$rounds=10000$saltstringsaltstring",
        "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
    ),
    (
        "This is just a test",
        "$5$rounds=5000$toolongsaltstring",
        "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5",
    ),
    (
        "a very much longer text to encrypt.  This one even stretches over morethan one line.",
        "$5$rounds=1400$anotherlongsaltstring",
        "$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1",
    ),
    (
        "we have a short salt string but not a short password",
        "$5$rounds=77777$short",
        "$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/",
    ),
    (
        "a short string",
        "$5$rounds=123456$asaltof16chars..",
        "$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD",
    ),
    (
        "the minimum number is still observed",
        "$5$rounds=10$roundstoolow",
        "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
    ),
    (
        "Hello world!",
        "$6$saltstring",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEd"
        "FCoEOfaS35inz1",
    ),
    (
        "Hello world!",
        "$6$rounds=10000$saltstringsaltstring",
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8"
        "vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
    (
        "This is just a test",
        "$6$rounds=5000$toolongsaltstring",
        "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1"
        "yxdYcz/e1JSbq3y6JMxxl8audkUEm0",
    ),
    (
        "a very much longer text to encrypt.  This one even stretches over morethan one line.",
        "$6$rounds=1400$anotherlongsaltstring",
        "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66"
        "x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1",
    ),
    (
        "we have a short salt string but not a short password",
        "$6$rounds=77777$short",
        "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOx"
        "FmtlcGZelFl5CxtgfiAc0",
    ),
    (
        "a short string",
        "$6$rounds=123456$asaltof16chars..",
        "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULev"
        "oBK25fs2xXgMNrCzIMVcgEJAstJeonj1",
    ),
    (
        "the minimum number is still observed",
        "$6$rounds=10$roundstoolow",
        "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF"
        "4ZEQpyUNGc0dqbpBYYBaHHrsX.",
    ),
]


@pytest.mark.parametrize("form", sorted(APACHE_HASHES))
def test_apache_htpasswd_hashes_verify(form: str):
    stored = APACHE_HASHES[form]
    assert verify(stored, "secret")
    for wrong in ("Secret", "secret ", "secre", "", "secretsecret"):
        assert not verify(stored, wrong), (form, wrong)


@pytest.mark.parametrize(("password", "setting", "expected"), SHA_CRYPT_VECTORS)
def test_sha_crypt_specification_vectors(password: str, setting: str, expected: str):
    assert passwords.sha_crypt(password.encode(), setting) == expected
    assert verify(expected, password)
    assert not verify(expected, password + "x")
    assert not verify(expected, password[:-1])


def test_tampered_or_unknown_hashes_never_match():
    sha256 = APACHE_HASHES["sha256"]
    assert not verify(sha256[:-1] + ("A" if sha256[-1] != "A" else "B"), "secret")
    assert not verify("$1$abcdefgh$0123456789012345678901", "secret")  # MD5-crypt: not offered
    assert not verify("secret", "secret")  # plain text is never accepted
    assert not verify("", "")
    assert not verify("$2y$05$broken", "secret")


def test_set_password_writes_bcrypt_and_both_digest_lines(tmp_path: Path):
    htpasswd, digest = tmp_path / "htpasswd", tmp_path / "htdigest"
    htpasswd.write_text("carol:" + APACHE_HASHES["apr1"] + "\n")
    digest.write_text("carol:davserver:" + "0" * 32 + "\n")
    set_password(str(htpasswd), "alice", "first", str(digest), REALM)
    set_password(str(htpasswd), "alice", "second", str(digest), REALM)

    hashes = passwords.read_htpasswd(str(htpasswd))
    assert set(hashes) == {"alice", "carol"}
    assert hashes["carol"] == APACHE_HASHES["apr1"]
    assert hashes["alice"].startswith("$2y$")
    assert verify(hashes["alice"], "second")
    assert not verify(hashes["alice"], "first")
    assert htpasswd.read_text().count("alice:") == 1

    lines = digest.read_text().splitlines()
    assert "carol:davserver:" + "0" * 32 in lines
    alice = [line for line in lines if line.startswith("alice:")]
    md5 = hashlib.md5(b"alice:davserver:second").hexdigest()
    sha256 = hashlib.sha256(b"alice:davserver:second").hexdigest()
    assert sorted(alice) == sorted([f"alice:davserver:{md5}", f"alice:davserver:{sha256}"])
    assert oct(htpasswd.stat().st_mode & 0o777) == oct(0o600)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".passwd-")]


def test_set_password_refuses_bad_user_names(tmp_path: Path):
    for user in ("", "a:b"):
        with pytest.raises(ValueError):
            set_password(str(tmp_path / "h"), user, "pw")
    assert not (tmp_path / "h").exists()


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "davserver", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_passwd_command_reads_the_password_from_stdin(tmp_path: Path):
    htpasswd, digest = tmp_path / "users", tmp_path / "digest"
    done = run_cli("passwd", str(htpasswd), "dave", "--digest", str(digest), stdin="s3cret pw\n")
    assert done.returncode == 0, done.stderr
    stored = passwords.read_htpasswd(str(htpasswd))["dave"]
    assert stored.startswith("$2y$")
    assert verify(stored, "s3cret pw")
    ha1 = passwords.read_digest(str(digest))
    assert ha1[("dave", REALM, "MD5")] == hashlib.md5(b"dave:davserver:s3cret pw").hexdigest()
    assert (
        ha1[("dave", REALM, "SHA-256")] == hashlib.sha256(b"dave:davserver:s3cret pw").hexdigest()
    )

    # Changing the password keeps one line per user; another user is added beside.
    assert run_cli("passwd", str(htpasswd), "dave", stdin="new\n").returncode == 0
    assert run_cli("passwd", str(htpasswd), "erin", stdin="erin-pw\n").returncode == 0
    stored_all = passwords.read_htpasswd(str(htpasswd))
    assert set(stored_all) == {"dave", "erin"}
    assert verify(stored_all["dave"], "new")
    assert verify(stored_all["erin"], "erin-pw")


def test_passwd_command_refuses_an_empty_password(tmp_path: Path):
    done = run_cli("passwd", str(tmp_path / "users"), "dave", stdin="\n")
    assert done.returncode != 0
    assert not (tmp_path / "users").exists()


# -- live server helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def userfiles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("users")
    htpasswd, digest = folder / "users.htpasswd", folder / "users.digest"
    for user, password in PASSWORDS.items():
        set_password(str(htpasswd), user, password, str(digest), REALM)
    return htpasswd, digest


@pytest.fixture
def authed(make_server: Callable[..., Any], userfiles: tuple[Path, Path]) -> Any:
    htpasswd, digest = userfiles
    live = make_server(htpasswd=str(htpasswd), digest_file=str(digest))
    (live.root / "file.txt").write_bytes(b"protected content")
    (live.root / "sub").mkdir()
    return live


def fresh_get(live: Any, path: str, **kwargs: Any) -> requests.Response:
    """A request on a new connection without any session state."""
    kwargs.setdefault("timeout", 30)
    return requests.get(live.url(path), **kwargs)


# -- Basic and Digest -------------------------------------------------------------------------


@pytest.mark.rfc4918("R-276", "R-269")
def test_no_credentials_is_401_with_every_challenge(authed: Any):
    response = fresh_get(authed, "/file.txt")
    assert response.status_code == 401
    assert b"protected content" not in response.content
    offered = challenges(response)
    digest_algorithms = sorted(
        params.get("algorithm", "").upper() for scheme, params in offered if scheme == "digest"
    )
    assert digest_algorithms == ["MD5", "SHA-256"]
    for scheme, params in offered:
        assert params["realm"] == REALM
        if scheme == "digest":
            assert "auth" in params["qop"].split(",")
            assert params["nonce"]
            assert "stale" not in params
    assert [scheme for scheme, _ in offered].count("basic") == 1


@pytest.mark.rfc4918("R-275")
def test_basic_right_and_wrong(authed: Any):
    ok = fresh_get(authed, "/file.txt", auth=("alice", PASSWORDS["alice"]))
    assert ok.status_code == 200
    assert ok.content == b"protected content"
    for user, password in (
        ("alice", PASSWORDS["bob"]),
        ("alice", ""),
        ("nobody", "x"),
        ("", PASSWORDS["alice"]),
    ):
        refused = fresh_get(authed, "/file.txt", auth=(user, password))
        assert refused.status_code == 401, (user, password)
        assert b"protected content" not in refused.content
        assert any(scheme == "basic" for scheme, _ in challenges(refused))
    # A right password after the cache was warmed still does not let a wrong one in.
    assert fresh_get(authed, "/file.txt", auth=("alice", "alice-Pa55x")).status_code == 401


@pytest.mark.parametrize("header", ["Basic !!!notbase64", "Basic " + "YWxpY2U=", "Bearer abc"])
def test_malformed_or_unknown_credentials_are_401(authed: Any, header: str):
    response = fresh_get(authed, "/file.txt", headers={"Authorization": header})
    assert response.status_code == 401
    assert b"protected content" not in response.content


@pytest.mark.rfc4918("R-269")
def test_digest_with_requests_http_digest_auth(authed: Any):
    session = requests.Session()
    session.auth = HTTPDigestAuth("bob", PASSWORDS["bob"])
    response = session.get(authed.url("/file.txt"), timeout=30)
    assert response.status_code == 200
    assert response.content == b"protected content"
    put = session.put(authed.url("/sub/new.txt"), data=b"digest upload", timeout=30)
    assert put.status_code == 201
    assert (authed.root / "sub" / "new.txt").read_bytes() == b"digest upload"
    wrong = requests.get(authed.url("/file.txt"), auth=HTTPDigestAuth("bob", "wrong"), timeout=30)
    assert wrong.status_code == 401


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_digest_by_hand(authed: Any, algorithm: str):
    challenge = digest_challenge(fresh_get(authed, "/file.txt"), algorithm)
    for nc, method, path, status in ((1, "GET", "/file.txt", 200), (2, "PUT", "/sub/d.txt", 201)):
        header = digest_authorization(
            method, path, "alice", PASSWORDS["alice"], challenge, algorithm, nc
        )
        response = requests.request(
            method,
            authed.url(path),
            headers={"Authorization": header},
            data=b"by digest" if method == "PUT" else None,
            timeout=30,
        )
        assert response.status_code == status, (method, response.text)
    assert (authed.root / "sub" / "d.txt").read_bytes() == b"by digest"
    wrong = digest_authorization("GET", "/file.txt", "alice", "nope", challenge, algorithm, 3)
    response = fresh_get(authed, "/file.txt", headers={"Authorization": wrong})
    assert response.status_code == 401
    assert b"protected content" not in response.content


def test_digest_replay_is_refused(authed: Any):
    challenge = digest_challenge(fresh_get(authed, "/file.txt"), "SHA-256")
    header = digest_authorization("GET", "/file.txt", "bob", PASSWORDS["bob"], challenge, "SHA-256")
    first = fresh_get(authed, "/file.txt", headers={"Authorization": header})
    assert first.status_code == 200
    replay = fresh_get(authed, "/file.txt", headers={"Authorization": header})
    assert replay.status_code == 401
    assert b"protected content" not in replay.content
    # A lower count than the last one is a replay too; a higher one is fine.
    for nc, expected in ((5, 200), (3, 401), (5, 401), (6, 200)):
        header = digest_authorization(
            "GET", "/file.txt", "bob", PASSWORDS["bob"], challenge, "SHA-256", nc
        )
        response = fresh_get(authed, "/file.txt", headers={"Authorization": header})
        assert response.status_code == expected, nc


def test_digest_for_another_uri_is_refused(authed: Any):
    (authed.root / "other.txt").write_bytes(b"other")
    challenge = digest_challenge(fresh_get(authed, "/file.txt"), "MD5")
    header = digest_authorization("GET", "/other.txt", "bob", PASSWORDS["bob"], challenge, "MD5")
    response = fresh_get(authed, "/file.txt", headers={"Authorization": header})
    assert response.status_code == 401
    assert b"protected content" not in response.content
    # The same header for the method it was not made for is refused as well.
    header = digest_authorization("GET", "/file.txt", "bob", PASSWORDS["bob"], challenge, "MD5", 2)
    put = requests.put(
        authed.url("/file.txt"), headers={"Authorization": header}, data=b"x", timeout=30
    )
    assert put.status_code == 401
    assert (authed.root / "file.txt").read_bytes() == b"protected content"


def test_digest_with_a_forged_nonce_is_refused(authed: Any):
    challenge = dict(digest_challenge(fresh_get(authed, "/file.txt"), "SHA-256"))
    challenge["nonce"] = "MTIzNDU2Nzg5MDphYmNkZWY6MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA="
    header = digest_authorization("GET", "/file.txt", "bob", PASSWORDS["bob"], challenge, "SHA-256")
    assert fresh_get(authed, "/file.txt", headers={"Authorization": header}).status_code == 401


def test_stale_nonce_is_401_with_stale_true(make_server: Callable[..., Any], userfiles: Any):
    htpasswd, digest = userfiles
    live = make_server(htpasswd=str(htpasswd), digest_file=str(digest), nonce_lifetime=1)
    (live.root / "file.txt").write_bytes(b"protected content")
    challenge = digest_challenge(fresh_get(live, "/file.txt"), "SHA-256")
    time.sleep(2.2)
    header = digest_authorization("GET", "/file.txt", "bob", PASSWORDS["bob"], challenge, "SHA-256")
    response = fresh_get(live, "/file.txt", headers={"Authorization": header})
    assert response.status_code == 401
    assert b"protected content" not in response.content
    digests = [params for scheme, params in challenges(response) if scheme == "digest"]
    assert digests
    assert all(params.get("stale", "").lower() == "true" for params in digests)
    # The fresh nonce of that answer works.
    fresh = digest_challenge(response, "SHA-256")
    header = digest_authorization("GET", "/file.txt", "bob", PASSWORDS["bob"], fresh, "SHA-256")
    assert fresh_get(live, "/file.txt", headers={"Authorization": header}).status_code == 200


def test_options_needs_no_credentials(authed: Any):
    for path in ("/", "/sub/", "/file.txt", "/missing"):
        response = requests.options(authed.url(path), timeout=30)
        assert response.status_code == 200, path
        assert "2" in response.headers["DAV"]


def test_users_are_reloaded_when_the_file_changes(make_server: Callable[..., Any], tmp_path: Path):
    htpasswd = tmp_path / "own.htpasswd"
    set_password(str(htpasswd), "frank", "one")
    live = make_server(htpasswd=str(htpasswd))
    assert fresh_get(live, "/", auth=("frank", "one")).status_code == 200
    set_password(str(htpasswd), "frank", "two")
    later = time.time_ns() + 10**9  # a distinct mtime even on coarse-timestamp filesystems
    os.utime(htpasswd, ns=(later, later))
    # The old password stops working at once (no remembered success outlives the change).
    assert fresh_get(live, "/", auth=("frank", "one")).status_code == 401
    assert fresh_get(live, "/", auth=("frank", "two")).status_code == 200
    assert fresh_get(live, "/", auth=("frank", "one")).status_code == 401


# -- anonymous access -------------------------------------------------------------------------


def test_anonymous_is_off_once_users_exist(authed: Any):
    for method, path in (("GET", "/file.txt"), ("GET", "/"), ("PROPFIND", "/"), ("HEAD", "/")):
        response = requests.request(method, authed.url(path), timeout=30)
        assert response.status_code == 401, (method, path)
    put = requests.put(authed.url("/anon.txt"), data=b"x", timeout=30)
    assert put.status_code == 401
    assert not (authed.root / "anon.txt").exists()
    mkcol = requests.request("MKCOL", authed.url("/anondir"), timeout=30)
    assert mkcol.status_code == 401
    assert not (authed.root / "anondir").exists()


def test_anonymous_read(make_server: Callable[..., Any], userfiles: Any):
    htpasswd, digest = userfiles
    live = make_server(htpasswd=str(htpasswd), digest_file=str(digest), anonymous="read")
    (live.root / "file.txt").write_bytes(b"public")
    assert fresh_get(live, "/file.txt").content == b"public"
    assert fresh_get(live, "/").status_code == 200
    propfind = requests.request("PROPFIND", live.url("/"), headers={"Depth": "1"}, timeout=30)
    assert propfind.status_code == 207
    for method, path in (("PUT", "/file.txt"), ("DELETE", "/file.txt"), ("MKCOL", "/d")):
        response = requests.request(method, live.url(path), data=b"changed", timeout=30)
        assert response.status_code == 401, method
        assert any(scheme == "basic" for scheme, _ in challenges(response))
    copy = requests.request(
        "COPY", live.url("/file.txt"), headers={"Destination": live.url("/c.txt")}, timeout=30
    )
    assert copy.status_code == 401
    assert sorted(p.name for p in live.root.iterdir()) == ["file.txt"]
    assert (live.root / "file.txt").read_bytes() == b"public"
    # A user logged in may still write.
    put = requests.put(
        live.url("/file.txt"), data=b"by alice", auth=("alice", PASSWORDS["alice"]), timeout=30
    )
    assert put.status_code == 204


# -- access rules from a configuration file ---------------------------------------------------

ACCESS_TOML = """\
[auth]
htpasswd = "users.htpasswd"
digest_file = "users.digest"
anonymous = "none"

[[access]]
path = "/"
user = "alice"
access = "write"

[[access]]
path = "/"
user = "bob"
access = "read"

[[access]]
path = "/bob"
user = "bob"
access = "write"

[[access]]
path = "/bob/ro"
user = "bob"
access = "read"

[[access]]
path = "/secret"
user = "bob"
access = "none"
"""


@pytest.fixture(scope="module")
def ruled_config(userfiles: tuple[Path, Path]) -> Any:
    """The access rules, loaded from a TOML file next to the user files it names."""
    folder = userfiles[0].parent
    (folder / "davserver.toml").write_text(ACCESS_TOML)
    config = load(str(folder / "davserver.toml"))
    assert config.htpasswd == str(userfiles[0])
    assert config.digest_file == str(userfiles[1])
    assert ("/bob/ro", "bob", "read") in config.access
    assert ("/secret", "bob", "none") in config.access
    return config


@pytest.fixture
def ruled(make_server: Callable[..., Any], ruled_config: Any) -> Any:
    config = ruled_config
    live = make_server(
        htpasswd=config.htpasswd,
        digest_file=config.digest_file,
        anonymous=config.anonymous,
        access=config.access,
    )
    root = live.root
    (root / "top.txt").write_bytes(b"top")
    (root / "bob" / "ro").mkdir(parents=True)
    (root / "bob" / "own.txt").write_bytes(b"own")
    (root / "bob" / "ro" / "keep.txt").write_bytes(b"keep")
    (root / "secret").mkdir()
    (root / "secret" / "s.txt").write_bytes(b"classified")
    (root / "secret" / "inner").mkdir()
    (root / "secret" / "inner" / "deep.txt").write_bytes(b"deep")
    return live


ALICE = ("alice", PASSWORDS["alice"])
BOB = ("bob", PASSWORDS["bob"])


def req(live: Any, method: str, path: str, auth: Any, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 30)
    headers = kwargs.pop("headers", {})
    if "Destination" in headers and headers["Destination"].startswith("/"):
        headers["Destination"] = live.url(headers["Destination"])
    return requests.request(method, live.url(path), auth=auth, headers=headers, **kwargs)


def test_bob_writes_only_where_allowed(ruled: Any):
    put = req(ruled, "PUT", "/x.txt", BOB, data=b"no")
    assert put.status_code == 403
    assert not (ruled.root / "x.txt").exists()
    assert req(ruled, "PUT", "/top.txt", BOB, data=b"no").status_code == 403
    assert (ruled.root / "top.txt").read_bytes() == b"top"
    assert req(ruled, "PUT", "/bob/x", BOB, data=b"mine").status_code == 201
    assert (ruled.root / "bob" / "x").read_bytes() == b"mine"
    assert req(ruled, "PUT", "/bob/ro/x", BOB, data=b"no").status_code == 403
    assert not (ruled.root / "bob" / "ro" / "x").exists()
    assert req(ruled, "MKCOL", "/bob/newdir", BOB).status_code == 201
    assert req(ruled, "MKCOL", "/newdir", BOB).status_code == 403
    assert not (ruled.root / "newdir").exists()
    # Reads where bob has read access.
    assert req(ruled, "GET", "/top.txt", BOB).content == b"top"
    assert req(ruled, "GET", "/bob/ro/keep.txt", BOB).content == b"keep"
    # alice writes anywhere.
    assert req(ruled, "PUT", "/top.txt", ALICE, data=b"alice").status_code == 204
    assert req(ruled, "PUT", "/secret/a.txt", ALICE, data=b"a").status_code == 201


def test_refused_tree_operations_change_nothing(ruled: Any):
    before = snapshot(ruled.root)
    delete = req(ruled, "DELETE", "/bob", BOB)
    assert delete.status_code == 403
    assert snapshot(ruled.root) == before
    copy = req(ruled, "COPY", "/bob/own.txt", BOB, headers={"Destination": "/bob/ro/copy.txt"})
    assert copy.status_code == 403
    copy_up = req(ruled, "COPY", "/bob/own.txt", BOB, headers={"Destination": "/copy.txt"})
    assert copy_up.status_code == 403
    move_out = req(ruled, "MOVE", "/bob/ro/keep.txt", BOB, headers={"Destination": "/bob/k.txt"})
    assert move_out.status_code == 403
    move_tree = req(ruled, "MOVE", "/bob/ro", BOB, headers={"Destination": "/bob/ro2"})
    assert move_tree.status_code == 403
    # COPY out of a tree bob may not read, into his own folder.
    steal = req(ruled, "COPY", "/secret", BOB, headers={"Destination": "/bob/stolen"})
    assert steal.status_code == 403
    assert req(ruled, "DELETE", "/bob/ro/keep.txt", BOB).status_code == 403
    proppatch = req(
        ruled,
        "PROPPATCH",
        "/bob/ro/keep.txt",
        BOB,
        data=proppatch_body("{urn:x}a", "1"),
    )
    assert proppatch.status_code == 403
    assert snapshot(ruled.root) == before
    # What bob may do still works: within /bob, outside /bob/ro.
    ok = req(ruled, "COPY", "/bob/ro/keep.txt", BOB, headers={"Destination": "/bob/k.txt"})
    assert ok.status_code == 201
    assert req(ruled, "DELETE", "/bob/own.txt", BOB).status_code == 204


def test_refused_read_is_403_for_a_user_and_401_for_anonymous(ruled: Any):
    for path in ("/secret/s.txt", "/secret/", "/secret/inner/deep.txt"):
        response = req(ruled, "GET", path, BOB)
        assert response.status_code == 403, path
        assert b"classified" not in response.content
        assert b"deep" not in response.content
    assert req(ruled, "PROPFIND", "/secret/", BOB, headers={"Depth": "1"}).status_code == 403
    anonymous = requests.get(ruled.url("/top.txt"), timeout=30)
    assert anonymous.status_code == 401
    assert req(ruled, "GET", "/secret/s.txt", ALICE).content == b"classified"


def hrefs_and_status(body: bytes) -> dict[str, str]:
    """href -> the response's own status line, or "propstat" when it has properties."""
    tree = etree.fromstring(body)
    found = {}
    for response in tree.iter(DAV + "response"):
        href = response.findtext(DAV + "href")
        status = response.findtext(DAV + "status")
        found[href] = status if status is not None else "propstat"
    return found


@pytest.mark.parametrize("depth", ["1", "infinity"])
def test_propfind_shows_a_forbidden_member_as_403_without_its_contents(ruled: Any, depth: str):
    response = req(ruled, "PROPFIND", "/", BOB, headers={"Depth": depth})
    assert response.status_code == 207
    found = hrefs_and_status(response.content)
    assert "/secret/" in found
    assert " 403 " in found["/secret/"]
    assert not [href for href in found if href.startswith("/secret/") and href != "/secret/"]
    assert found["/top.txt"] == "propstat"
    assert found["/bob/"] == "propstat"
    if depth == "infinity":
        assert found["/bob/ro/keep.txt"] == "propstat"
    assert b"classified" not in response.content
    # alice sees the whole tree.
    everything = hrefs_and_status(
        req(ruled, "PROPFIND", "/", ALICE, headers={"Depth": "infinity"}).content
    )
    assert everything["/secret/"] == "propstat"
    assert everything["/secret/inner/deep.txt"] == "propstat"


def test_html_listing_hides_what_the_user_may_not_read(ruled: Any):
    bob_page = req(ruled, "GET", "/", BOB)
    assert bob_page.status_code == 200
    assert parse_listing(bob_page.text).names == ["bob/", "top.txt"]
    alice_page = req(ruled, "GET", "/", ALICE)
    assert alice_page.status_code == 200
    assert parse_listing(alice_page.text).names == ["bob/", "secret/", "top.txt"]


@pytest.mark.rfc4918("R-020")
def test_locks_belong_to_their_user(ruled: Any):
    target = "/bob/own.txt"
    locked = req(
        ruled, "LOCK", target, ALICE, data=lockinfo("alice"), headers={"Timeout": "Second-600"}
    )
    assert locked.status_code == 200
    token = locked.headers["Lock-Token"].strip("<>")
    unlock = req(ruled, "UNLOCK", target, BOB, headers={"Lock-Token": f"<{token}>"})
    assert unlock.status_code == 403
    put = req(ruled, "PUT", target, BOB, data=b"bob was here", headers={"If": f"(<{token}>)"})
    assert put.status_code == 423
    delete = req(ruled, "DELETE", target, BOB, headers={"If": f"(<{token}>)"})
    assert delete.status_code == 423
    assert (ruled.root / "bob" / "own.txt").read_bytes() == b"own"
    # The lock is still there for alice, who may use and remove it.
    put = req(ruled, "PUT", target, ALICE, data=b"alice", headers={"If": f"(<{token}>)"})
    assert put.status_code == 204
    assert (
        req(ruled, "UNLOCK", target, ALICE, headers={"Lock-Token": f"<{token}>"}).status_code == 204
    )
    assert req(ruled, "PUT", target, BOB, data=b"bob").status_code == 204


@pytest.mark.rfc4918("R-159")
def test_a_lock_refresh_needs_no_depth_and_no_rights_below(ruled: Any):
    # bob may write /bob/ but only read /bob/ro/: he may hold a Depth 0 lock on /bob/, not a
    # Depth infinity one. A refresh (a LOCK without a body, RFC 4918 9.10.2) renews the lock
    # it names, whatever Depth says or does not say.
    locked = req(
        ruled,
        "LOCK",
        "/bob/",
        BOB,
        data=lockinfo("bob"),
        headers={"Depth": "0", "Timeout": "Second-600"},
    )
    assert locked.status_code == 200, locked.text
    token = locked.headers["Lock-Token"].strip("<>")
    for depth in (None, "infinity", "0", "1"):
        headers = {"If": f"(<{token}>)", "Timeout": "Second-900"}
        if depth is not None:
            headers["Depth"] = depth
        refreshed = req(ruled, "LOCK", "/bob/", BOB, headers=headers)
        assert refreshed.status_code == 200, (depth, refreshed.text)
        assert "Second-900" in refreshed.text
    # A new lock over the whole tree is still refused: bob may not write /bob/ro/.
    deep = req(ruled, "LOCK", "/bob/", BOB, data=lockinfo("bob"), headers={"Depth": "infinity"})
    assert deep.status_code == 403
    # And a refresh still needs write access where it is sent.
    ro = req(ruled, "LOCK", "/bob/ro/", BOB, headers={"If": f"(<{token}>)"})
    assert ro.status_code == 403


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def test_tls(make_server: Callable[..., Any], certificate: tuple[Path, Path], userfiles: Any):
    cert, key = certificate
    htpasswd, _ = userfiles
    # The default, [auth] basic = "https": Basic is offered and accepted over TLS.
    live = make_server(cert=str(cert), key=str(key), htpasswd=str(htpasswd), basic="https")
    assert live.base.startswith("https://127.0.0.1:")
    (live.root / "file.txt").write_bytes(b"over tls")
    response = requests.get(live.url("/file.txt"), verify=str(cert), auth=ALICE, timeout=30)
    assert response.status_code == 200
    assert response.content == b"over tls"
    anonymous = requests.get(live.url("/file.txt"), verify=str(cert), timeout=30)
    assert anonymous.status_code == 401
    assert [scheme for scheme, _ in challenges(anonymous)] == ["basic"]
    # Basic over TLS for writing, as Windows does.
    put = requests.put(
        live.url("/up.txt"), data=b"uploaded", verify=str(cert), auth=ALICE, timeout=30
    )
    assert put.status_code == 201
    assert (live.root / "up.txt").read_bytes() == b"uploaded"
    # Without trusting the certificate the client refuses.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(live.url("/file.txt"), timeout=30)
    # Plain HTTP to the TLS port gets a plain 400 saying so, and nothing from the share.
    plain = f"http://127.0.0.1:{live.port}/file.txt"
    answer = requests.get(plain, auth=ALICE, timeout=30)
    assert answer.status_code == 400
    assert answer.content == b"This server speaks HTTPS only on this port."
    # And the server still serves TLS afterwards.
    again = requests.get(live.url("/file.txt"), verify=str(cert), auth=ALICE, timeout=30)
    assert again.content == b"over tls"


# -- Basic only over HTTPS (the default; RFC 4918 section 20.1) -----------------------------


def test_basic_is_offered_over_https_only_by_default() -> None:
    assert Config().basic == "https"


@pytest.fixture
def behind_proxy(make_server: Callable[..., Any], userfiles: tuple[Path, Path]) -> Any:
    """The default Basic setting behind a trusted proxy (this test, on 127.0.0.1)."""
    htpasswd, _ = userfiles
    live = make_server(htpasswd=str(htpasswd), basic="https", trusted_proxies=("127.0.0.1",))
    (live.root / "file.txt").write_bytes(b"protected content")
    return live


@pytest.mark.parametrize(
    "forwarded",
    [{"X-Forwarded-Proto": "https"}, {"Forwarded": "for=192.0.2.1;proto=https"}],
)
def test_basic_through_a_trusted_https_proxy(behind_proxy: Any, forwarded: dict[str, str]):
    ok = fresh_get(behind_proxy, "/file.txt", auth=ALICE, headers=forwarded)
    assert (ok.status_code, ok.content) == (200, b"protected content")
    refused = fresh_get(behind_proxy, "/file.txt", headers=forwarded)
    assert [scheme for scheme, _ in challenges(refused)] == ["basic"]


def test_basic_through_a_plain_http_proxy_is_refused(behind_proxy: Any):
    refused = fresh_get(
        behind_proxy, "/file.txt", auth=ALICE, headers={"X-Forwarded-Proto": "http"}
    )
    # No scheme is usable on this connection, and a 401 must offer one: 403, saying why.
    assert refused.status_code == 403
    assert refused.content == (
        b"log in over HTTPS: Basic authentication is offered over HTTPS only "
        b"(RFC 4918 section 20.1)\n"
    )
    assert "WWW-Authenticate" not in refused.headers


def test_an_untrusted_peer_cannot_claim_https(
    make_server: Callable[..., Any], userfiles: tuple[Path, Path]
):
    htpasswd, digest = userfiles
    live = make_server(htpasswd=str(htpasswd), digest_file=str(digest), basic="https")
    (live.root / "file.txt").write_bytes(b"protected content")
    claimed = fresh_get(live, "/file.txt", auth=ALICE, headers={"X-Forwarded-Proto": "https"})
    assert claimed.status_code == 401
    assert claimed.content == (
        b"Basic authentication is offered over HTTPS only (RFC 4918 section 20.1); "
        b'use Digest, HTTPS, or set [auth] basic = "always"\n'
    )
    assert sorted(scheme for scheme, _ in challenges(claimed)) == ["digest", "digest"]


@pytest.mark.parametrize(
    ("extra", "started"),
    [
        ({}, False),
        ({"public_url": "http://files.example/"}, False),
        ({"public_url": "https://files.example/"}, True),
        ({"trusted_proxies": ["10.0.0.0/8"]}, True),
        ({"basic": "always"}, True),
    ],
)
def test_users_with_no_way_to_log_in_are_refused_at_startup(
    tmp_path: Path, userfiles: tuple[Path, Path], extra: dict[str, Any], started: bool
):
    htpasswd, _ = userfiles
    overrides = {"root": str(tmp_path / "share"), "htpasswd": str(htpasswd), **extra}
    if started:
        assert load(None, overrides).htpasswd == str(htpasswd)
        return
    with pytest.raises(ConfigError) as refused:
        load(None, overrides)
    message = str(refused.value)
    assert message.startswith('[auth] basic = "https" (the default) and no digest_file')
    assert 'set basic = "always"' in message


def test_basic_true_in_an_old_config_file_names_the_new_values(tmp_path: Path):
    config = tmp_path / "davserver.toml"
    config.write_text("[auth]\nbasic = true\n")
    with pytest.raises(ConfigError) as refused:
        load(str(config), {})
    assert str(refused.value) == (
        f'{config}: [auth] basic: expected "https" (the default), "always" or "never", got True'
    )


def test_serve_command_with_users_and_tls(
    tmp_path: Path, certificate: tuple[Path, Path], userfiles: Any
):
    cert, key = certificate
    htpasswd, digest = userfiles
    root = tmp_path / "share"
    root.mkdir()
    (root / "file.txt").write_bytes(b"from the command")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "davserver",
            "serve",
            str(root),
            "--port",
            "0",
            "--state-dir",
            str(tmp_path / "state"),
            "--htpasswd",
            str(htpasswd),
            "--digest-file",
            str(digest),
            "--anonymous",
            "read",
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--no-access-log",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = wait_for_url(process)
        assert url.startswith("https://127.0.0.1:")
        base = url.rstrip("/")
        get = requests.get(base + "/file.txt", verify=str(cert), timeout=30)
        assert get.content == b"from the command"
        put = requests.put(base + "/anon.txt", data=b"x", verify=str(cert), timeout=30)
        assert put.status_code == 401
        offered = [scheme for scheme, _ in challenges(put)]
        assert offered.count("digest") == 2
        assert "basic" in offered
        put = requests.put(
            base + "/user.txt",
            data=b"written",
            verify=str(cert),
            auth=HTTPDigestAuth("bob", PASSWORDS["bob"]),
            timeout=30,
        )
        assert put.status_code == 201
        assert (root / "user.txt").read_bytes() == b"written"
        assert not (root / "anon.txt").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def wait_for_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in iter_lines(process):
        match = re.search(r"URL:\s+(\S+)", line)
        if match:
            return match.group(1)
    raise AssertionError("the server printed no URL")


def iter_lines(process: subprocess.Popen[str]) -> Iterator[str]:
    assert process.stdout is not None
    for _ in range(20):
        line = process.stdout.readline()
        if not line:
            return
        yield line
