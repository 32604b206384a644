"""Users and password hashes: Apache htpasswd files and davserver's digest file.

An htpasswd file holds `user:hash` lines in the forms Apache's `htpasswd` writes: bcrypt
(`$2y$`, `-B`), SHA-256-crypt and SHA-512-crypt (`$5$`, `$6$`, `-2`/`-5`), Apache MD5 (`$apr1$`,
the default) and `{SHA}` (`-s`). bcrypt is checked by the `bcrypt` package; the crypt forms are
implemented here from their specifications because the stdlib `crypt` module is deprecated and
gone in Python 3.13. New passwords are always written as bcrypt.

HTTP Digest (RFC 7616) cannot use any of those hashes: it needs H(user:realm:password). A digest
file keeps Apache htdigest's `user:realm:HA1` line format, with an MD5 line (32 hex digits, what
`htdigest` writes) and a SHA-256 line (64 hex digits) per user; `davserver passwd --digest`
writes both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import bcrypt

log = logging.getLogger(__name__)

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _b64_from_24bit(b2: int, b1: int, b0: int, n: int) -> str:
    w = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(n):
        out.append(_ITOA64[w & 0x3F])
        w >>= 6
    return "".join(out)


# Output byte order of SHA-crypt (Drepper, "Unix crypt using SHA-256 and SHA-512").
_SHA256_ORDER = [
    (0, 10, 20),
    (21, 1, 11),
    (12, 22, 2),
    (3, 13, 23),
    (24, 4, 14),
    (15, 25, 5),
    (6, 16, 26),
    (27, 7, 17),
    (18, 28, 8),
    (9, 19, 29),
]
_SHA512_ORDER = [(0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4),
                 (47, 5, 26), (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51),
                 (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13), (56, 14, 35),
                 (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19),
                 (62, 20, 41)]  # fmt: skip


def sha_crypt(password: bytes, setting: str) -> str:
    """SHA-crypt (`$5$` SHA-256 or `$6$` SHA-512) of `password` with the salt and rounds
    in `setting` (a full hash or just its `$5$[rounds=N$]salt` prefix)."""
    parts = setting.split("$")
    ident = parts[1]
    new: Callable[..., hashlib._Hash] = hashlib.sha256 if ident == "5" else hashlib.sha512
    rounds, explicit = 5000, False
    rest = parts[2:]
    if rest and rest[0].startswith("rounds="):
        rounds = min(max(int(rest[0][7:]), 1000), 999_999_999)
        explicit = True
        rest = rest[1:]
    salt = rest[0][:16].encode() if rest else b""
    size = new().digest_size
    b = new(password + salt + password).digest()
    a = new(password + salt)
    length = len(password)
    i = length
    while i > size:
        a.update(b)
        i -= size
    a.update(b[:i])
    i = length
    while i:
        a.update(b if i & 1 else password)
        i >>= 1
    digest_a = a.digest()
    dp = new(password * length).digest()
    p = (dp * (length // size + 1))[:length]
    ds = new(salt * (16 + digest_a[0])).digest()
    s = (ds * (len(salt) // size + 1))[: len(salt)]
    c = digest_a
    for r in range(rounds):
        ctx = new(p if r & 1 else c)
        if r % 3:
            ctx.update(s)
        if r % 7:
            ctx.update(p)
        ctx.update(c if r & 1 else p)
        c = ctx.digest()
    if ident == "5":
        encoded = "".join(_b64_from_24bit(c[x], c[y], c[z], 4) for x, y, z in _SHA256_ORDER)
        encoded += _b64_from_24bit(0, c[31], c[30], 3)
    else:
        encoded = "".join(_b64_from_24bit(c[x], c[y], c[z], 4) for x, y, z in _SHA512_ORDER)
        encoded += _b64_from_24bit(0, 0, c[63], 2)
    prefix = f"${ident}$" + (f"rounds={rounds}$" if explicit else "")
    return f"{prefix}{salt.decode()}${encoded}"


def apr1_crypt(password: bytes, setting: str) -> str:
    """Apache's MD5-crypt (`$apr1$salt$hash`), the default of `htpasswd`."""
    magic = b"$apr1$"
    salt = setting[len(magic) :].split("$")[0][:8].encode()
    ctx = hashlib.md5(password + magic + salt)  # noqa: S324 - the format is MD5 by definition
    final = hashlib.md5(password + salt + password).digest()  # noqa: S324
    remaining = len(password)
    while remaining > 0:
        ctx.update(final[: min(16, remaining)])
        remaining -= 16
    i = len(password)
    while i:
        ctx.update(b"\0" if i & 1 else password[:1])
        i >>= 1
    final = ctx.digest()
    for r in range(1000):
        step = hashlib.md5(password if r & 1 else final)  # noqa: S324
        if r % 3:
            step.update(salt)
        if r % 7:
            step.update(password)
        step.update(final if r & 1 else password)
        final = step.digest()
    f = final
    encoded = "".join(
        _b64_from_24bit(f[x], f[y], f[z], 4)
        for x, y, z in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5))
    )
    encoded += _b64_from_24bit(0, 0, f[11], 2)
    return f"$apr1${salt.decode()}${encoded}"


def verify(stored: str, password: str) -> bool:
    """Whether `password` matches an htpasswd hash; unknown forms never match."""
    secret = password.encode("utf-8")
    if stored.startswith(("$2y$", "$2a$", "$2b$")):
        try:
            return bcrypt.checkpw(secret[:BCRYPT_MAX], stored.encode("ascii"))
        except ValueError:
            return False
    if stored.startswith(("$5$", "$6$")):
        computed = sha_crypt(secret, stored)
    elif stored.startswith("$apr1$"):
        computed = apr1_crypt(secret, stored)
    elif stored.startswith("{SHA}"):
        computed = "{SHA}" + base64.b64encode(hashlib.sha1(secret).digest()).decode()  # noqa: S324
    else:
        return False
    return hmac.compare_digest(computed, stored)


# bcrypt reads at most 72 bytes; Apache's htpasswd -B and older libraries silently use the first
# 72, while bcrypt 5 refuses longer input. Doing the cut here keeps such passwords working.
BCRYPT_MAX = 72


def hash_password(password: str) -> str:
    """A new bcrypt hash in the `$2y$` spelling Apache writes."""
    secret = password.encode("utf-8")[:BCRYPT_MAX]
    hashed = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=10)).decode()
    return "$2y$" + hashed[4:]


def digest_ha1(user: str, realm: str, password: str, algorithm: str) -> str:
    """H(user:realm:password) for RFC 7616 with "MD5" or "SHA-256"."""
    data = f"{user}:{realm}:{password}".encode()
    if algorithm == "MD5":
        return hashlib.md5(data).hexdigest()  # noqa: S324 - RFC 7616 MD5 for old clients
    return hashlib.sha256(data).hexdigest()


@dataclass
class Users:
    """The users of one htpasswd file (and, for Digest, one digest file), reloaded when the
    files change on disk so that `davserver passwd` needs no restart."""

    htpasswd: str
    digest: str = ""
    _hashes: dict[str, str] = field(default_factory=dict)
    _ha1: dict[tuple[str, str, str], str] = field(default_factory=dict)
    stamp: tuple[float, float] = (-1.0, -1.0)

    def __post_init__(self) -> None:
        self.reload()

    def reload(self) -> None:
        stamp = (_mtime(self.htpasswd), _mtime(self.digest) if self.digest else 0.0)
        if stamp == self.stamp:
            return
        try:
            hashes = read_htpasswd(self.htpasswd)
            ha1 = read_digest(self.digest) if self.digest else {}
        except (OSError, UnicodeDecodeError) as exc:
            if self.stamp == (-1.0, -1.0):
                raise  # at startup: the configuration is wrong, say so
            # While serving: keep the users we had rather than fail every request.
            log.warning("cannot reload users (%s); keeping the previous ones", exc)
            return
        self._hashes, self._ha1, self.stamp = hashes, ha1, stamp

    def check_password(self, user: str, password: str) -> bool:
        self.reload()
        stored = self._hashes.get(user)
        return stored is not None and verify(stored, password)

    def ha1(self, user: str, realm: str, algorithm: str) -> str | None:
        self.reload()
        return self._ha1.get((user, realm, algorithm))

    def __contains__(self, user: str) -> bool:
        return user in self._hashes


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return -1.0


def read_htpasswd(path: str) -> dict[str, str]:
    hashes: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#") and ":" in line:
                user, _, stored = line.partition(":")
                hashes[user] = stored
    return hashes


def read_digest(path: str) -> dict[tuple[str, str, str], str]:
    ha1: dict[tuple[str, str, str], str] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.strip().split(":")
            if len(parts) == 3:
                user, realm, value = parts
                algorithm = {32: "MD5", 64: "SHA-256"}.get(len(value))
                if algorithm:
                    ha1[(user, realm, algorithm)] = value.lower()
    return ha1


def set_password(
    htpasswd: str, user: str, password: str, digest: str = "", realm: str = ""
) -> None:
    """Add or change a user in the htpasswd file (and the digest file), atomically."""
    if not user or any(c == ":" or not c.isprintable() for c in user):
        raise ValueError("a user name may not be empty or contain ':' or control characters")
    if digest and (not realm or any(c in ':"' or not c.isprintable() for c in realm)):
        raise ValueError(
            "a Digest realm may not be empty or contain ':', '\"' or control characters"
        )
    lines = _lines(htpasswd)
    entry = f"{user}:{hash_password(password)}"
    _replace(htpasswd, [ln for ln in lines if ln.partition(":")[0] != user] + [entry])
    if digest:
        kept = [ln for ln in _lines(digest) if ln.split(":")[:2] != [user, realm]]
        kept += [
            f"{user}:{realm}:{digest_ha1(user, realm, password, 'MD5')}",
            f"{user}:{realm}:{digest_ha1(user, realm, password, 'SHA-256')}",
        ]
        _replace(digest, kept)


def _lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [line.rstrip("\n") for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def _replace(path: str, lines: list[str]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".passwd-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
