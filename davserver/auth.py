"""Who is asking (HTTP Basic and Digest) and what they may do (access rules per path).

Authentication yields a user name or None (anonymous). Authorisation is a pure function of
(user, path): the most specific matching rule decides between none, read and write. A request
that needs more than the user has is refused as a whole before anything changes: 401 with a
challenge when nobody logged in, 403 otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from . import paths
from .errors import Forbidden, Unauthorized
from .passwords import Users

Access = Literal["none", "read", "write"]
_RANK = {"none": 0, "read": 1, "write": 2}
ANONYMOUS = "anonymous"
ANY_USER = "*"


@dataclass(frozen=True, slots=True)
class Rule:
    """`user` ("*" any logged-in user, "anonymous" nobody) gets `access` under `path`."""

    path: str
    user: str
    access: Access

    def applies(self, user: str | None, path: str) -> bool:
        if not paths.is_same_or_ancestor(self.path, path):
            return False
        if self.user == ANONYMOUS:
            return user is None
        if self.user == ANY_USER:
            return user is not None
        return self.user == user

    def specificity(self) -> tuple[int, int]:
        return len(paths.split(self.path)), 0 if self.user in (ANY_USER, ANONYMOUS) else 1


class Policy:
    """Access rules, most specific first: a longer path wins, then a named user over "*";
    among equals the later rule wins (configured rules come after the defaults)."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        indexed = list(enumerate(rules))
        indexed.sort(key=lambda item: (item[1].specificity(), item[0]), reverse=True)
        self.rules = [rule for _, rule in indexed]

    def access(self, user: str | None, path: str) -> Access:
        for rule in self.rules:
            if rule.applies(user, path):
                return rule.access
        return "none"

    def allows(self, user: str | None, path: str, needed: Access) -> bool:
        return _RANK[self.access(user, path)] >= _RANK[needed]

    def satisfies(self, user: str | None, need: Need) -> bool:
        if need.tree:
            return self.allows_tree(user, need.path, need.level)
        return self.allows(user, need.path, need.level)

    def allows_tree(self, user: str | None, path: str, needed: Access) -> bool:
        """Whether `needed` holds for `path` and for everything under it."""
        if not self.allows(user, path, needed):
            return False
        return all(
            self.allows(user, rule.path, needed)
            for rule in self.rules
            if paths.is_ancestor(path, rule.path)
        )


class Need(NamedTuple):
    """One access requirement of a request: `level` on `path` (and under it if `tree`). (A
    tuple: made for every request, and a frozen dataclass costs several times as much.)"""

    path: str
    level: Access
    tree: bool = False


def needs(
    method: str,
    path: str,
    destination: Callable[[], str],
    depth: str | None = None,
    refresh: bool = False,
) -> list[Need]:
    """What a method needs, so that a refusal comes before any change (never a partial one):
    reads need read; a tree operation needs its level on everything under the path (a
    Depth: infinity LOCK included: it would stop others writing anywhere below, RFC 4918
    6.4). A LOCK `refresh` makes no lock and ignores Depth (RFC 4918 9.10.2): it renews one
    this user was allowed to make, so it needs write on the path alone."""
    if method in ("GET", "HEAD", "PROPFIND", "POST"):
        # A batch (POST) needs read on its collection; each item then needs what its own
        # method would.
        return [Need(path, "read")]
    if method == "DELETE":
        return [Need(path, "write", tree=True)]
    if method == "COPY":
        return [Need(path, "read", tree=True), Need(destination(), "write", tree=True)]
    if method == "MOVE":
        return [Need(path, "write", tree=True), Need(destination(), "write", tree=True)]
    if method == "LOCK":
        tree = not refresh and (depth or "infinity").strip().lower() != "0"
        return [Need(path, "write", tree=tree)]
    return [Need(path, "write")]


def require(
    policy: Policy, authenticator: Authenticator | None, user: str | None, needs: Iterable[Need]
) -> None:
    """Raise unless `user` meets every need: 401 with the challenges for an anonymous user
    when there is a way to log in, 403 otherwise (logging in again would not help)."""
    for need in needs:
        if not policy.satisfies(user, need):
            if user is None and authenticator is not None:
                raise Unauthorized("log in to do this")
            raise Forbidden(f"{user or 'anonymous'} may not {need.level} here")


def default_policy(has_users: bool, anonymous: str, rules: Iterable[Rule]) -> Policy:
    """Logged-in users may write everywhere; anonymous users get `anonymous`, which defaults
    to nothing once users exist and to write access when there are none."""
    anon: Access = anonymous or ("none" if has_users else "write")  # type: ignore[assignment]
    base = [Rule(paths.ROOT, ANY_USER, "write"), Rule(paths.ROOT, ANONYMOUS, anon)]
    return Policy([*base, *rules])


class Authenticator:
    """Checks Basic and Digest credentials against `Users`; makes the challenges."""

    CACHE_SIZE = 1024
    CACHE_SECONDS = 300.0

    def __init__(
        self,
        users: Users,
        realm: str,
        *,
        basic: str,
        digest: bool,
        secret: bytes,
        nonce_lifetime: int,
        counts: NonceCounts | None = None,
    ) -> None:
        self.users = users
        self.realm = realm
        self.basic = basic
        self.digest = digest
        self.secret = secret
        self.nonce_lifetime = nonce_lifetime
        self._lock = threading.Lock()
        # Checking a bcrypt hash costs tens of milliseconds; remember good credentials briefly.
        self._basic_ok: OrderedDict[bytes, float] = OrderedDict()
        self.counts = counts or MemoryNonceCounts()

    # -- entry point ------------------------------------------------------------------------

    def identify(
        self, method: str, names_request: Callable[[str], bool], header: str | None, secure: bool
    ) -> str | None:
        """The user named by an Authorization header, None without one; raises 401 when the
        credentials are wrong, stale or of a scheme not offered. `names_request` tells whether
        a URI names the resource of the request (the Digest `uri` must, RFC 7616 3.4.6);
        `secure` whether the client's connection is HTTPS (to this server or to a proxy)."""
        if not header:
            return None
        scheme, _, credentials = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and self.offers_basic(secure):
            return self._basic(credentials.strip())
        if scheme == "basic" and self.basic == "https":
            raise Unauthorized(
                "Basic authentication is offered over HTTPS only (RFC 4918 section 20.1); "
                'use Digest, HTTPS, or set [auth] basic = "always"'
            )
        if scheme == "digest" and self.digest:
            return self._digest(method, names_request, credentials)
        raise Unauthorized("this authentication scheme is not offered")

    def offers_basic(self, secure: bool) -> bool:
        """Whether Basic is offered and accepted on a connection: RFC 4918 section 20.1 allows
        it over a secure one only, unless [auth] basic = "always" says otherwise."""
        return self.basic == "always" or (self.basic == "https" and secure)

    def challenges(self, stale: bool, secure: bool) -> list[tuple[str, str]]:
        """The WWW-Authenticate headers of a 401 on a connection (`secure`: HTTPS)."""
        realm = self.realm.replace('"', "")
        offers: list[tuple[str, str]] = []
        if self.digest:
            nonce = self._new_nonce()
            opaque = hashlib.sha256(self.secret + b"opaque").hexdigest()[:32]
            for algorithm in ("SHA-256", "MD5"):
                offers.append(
                    (
                        "WWW-Authenticate",
                        f'Digest realm="{realm}", qop="auth", algorithm={algorithm}, '
                        f'nonce="{nonce}", opaque="{opaque}"' + (", stale=true" if stale else ""),
                    )
                )
        if self.offers_basic(secure):
            offers.append(("WWW-Authenticate", f'Basic realm="{realm}", charset="UTF-8"'))
        return offers

    # -- Basic (RFC 7617) ------------------------------------------------------------------

    def _basic(self, credentials: str) -> str:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise Unauthorized("malformed Basic credentials")
        # The file's stamp is part of the key: a changed password stops working at once.
        self.users.reload()
        key = hashlib.sha256(decoded.encode("utf-8") + repr(self.users.stamp).encode()).digest()
        now = time.monotonic()
        with self._lock:
            expires = self._basic_ok.get(key)
            if expires is not None and expires > now:
                return user
        if not self.users.check_password(user, password):
            raise Unauthorized("wrong user name or password")
        with self._lock:
            self._basic_ok[key] = now + self.CACHE_SECONDS
            while len(self._basic_ok) > self.CACHE_SIZE:
                self._basic_ok.popitem(last=False)
        return user

    # -- Digest (RFC 7616) -----------------------------------------------------------------

    def _new_nonce(self) -> str:
        stamp = f"{int(time.time())}:{secrets.token_hex(8)}"
        mac = hmac.new(self.secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        return base64.b64encode(f"{stamp}:{mac}".encode()).decode()

    def _nonce_age(self, nonce: str) -> float | None:
        """Seconds since the nonce was made, or None when it is not one of ours."""
        try:
            stamp, _, mac = base64.b64decode(nonce).decode().rpartition(":")
            issued = int(stamp.split(":")[0])
        except (ValueError, UnicodeDecodeError):
            return None
        expected = hmac.new(self.secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(mac.encode("utf-8"), expected.encode()):
            return None
        return time.time() - issued

    def _digest(self, method: str, names_request: Callable[[str], bool], credentials: str) -> str:
        params = parse_auth_params(credentials)
        # The URI the client signed: what it wrote in its request line, which a proxy may have
        # rewritten since (a stripped prefix, another encoding) into the one we received.
        uri = params.get("uri", "")
        user = params.get("username", "")
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm not in ("MD5", "SHA-256") or params.get("qop") != "auth":
            raise Unauthorized("Digest needs qop=auth and MD5 or SHA-256")
        if params.get("realm") != self.realm or not names_request(uri):
            raise Unauthorized("Digest realm or uri does not match the request")
        nonce = params.get("nonce", "")
        age = self._nonce_age(nonce)
        if age is None:
            raise Unauthorized("unknown nonce")
        if age > self.nonce_lifetime:
            raise Unauthorized("the nonce has expired", stale=True)
        ha1 = self.users.ha1(user, self.realm, algorithm)
        if ha1 is None:
            raise Unauthorized("wrong user name or password")
        h = _hash(algorithm)
        ha2 = h(f"{method}:{uri}")
        expected = h(f"{ha1}:{nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:auth:{ha2}")
        answer = params.get("response", "").lower().encode("utf-8", "replace")
        if not hmac.compare_digest(expected.encode(), answer):
            raise Unauthorized("wrong user name or password")
        self._check_replay(nonce, params.get("nc", ""))
        return user

    def _check_replay(self, nonce: str, nc: str) -> None:
        """Each use of a nonce must carry a higher nonce count than the last (RFC 7616 3.4)."""
        try:
            count = int(nc, 16)
        except ValueError:
            raise Unauthorized("malformed nonce count") from None
        if not self.counts.advance(nonce, count):
            raise Unauthorized("replayed request (nonce count reused)", stale=True)

    def close(self) -> None:
        """Release the nonce counts' store."""
        close = getattr(self.counts, "close", None)
        if close is not None:
            close()


class NonceCounts(Protocol):
    """The highest nonce count seen with each nonce (RFC 7616 3.4)."""

    def advance(self, nonce: str, count: int) -> bool:
        """Record `count` for `nonce` and return True if it is higher than any before it;
        False (a replay) otherwise."""
        ...


class MemoryNonceCounts:
    """`NonceCounts` for one process: the most recent 65,536 nonces."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: OrderedDict[str, int] = OrderedDict()

    def advance(self, nonce: str, count: int) -> bool:
        with self._lock:
            if count <= self._counts.get(nonce, 0):
                return False
            self._counts[nonce] = count
            self._counts.move_to_end(nonce)
            while len(self._counts) > 65536:
                self._counts.popitem(last=False)
            return True


def _hash(algorithm: str) -> Callable[[str], str]:
    def md5(text: str) -> str:
        return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - RFC 7616 MD5

    def sha256(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    return md5 if algorithm == "MD5" else sha256


def parse_auth_params(text: str) -> dict[str, str]:
    """`a=b, c="d, e"` -> {"a": "b", "c": "d, e"} (RFC 9110 11.2 auth-param lists)."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        start = i
        while i < n and text[i] not in "= \t,":
            i += 1
        key = text[start:i].lower()
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != "=":
            if key:
                params[key] = ""
            continue
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            value = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(text[i])
                i += 1
            i += 1
            params[key] = "".join(value)
        else:
            start = i
            while i < n and text[i] not in " \t,":
                i += 1
            params[key] = text[start:i]
    return params


def load_secret(state_dir: str) -> bytes:
    """The key that signs Digest nonces, kept in the state folder so that restarts and other
    processes sharing it accept each other's nonces."""
    path = os.path.join(state_dir, "auth-secret")
    try:
        with open(path, "rb") as handle:
            secret = handle.read()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    os.makedirs(state_dir, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret
