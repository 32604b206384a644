"""Configuration: one frozen dataclass, from defaults, a TOML file and command-line flags.

Every option is declared once below with its TOML section, its type and what it means;
`config/davserver.toml` documents the same options and a test checks that the two agree. A wrong
key or value is refused at startup with a message naming the file, the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A configuration problem, with a message meant for the person starting the server."""


def _default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "davserver")


def _opt(
    section: str,
    default: Any,
    help: str,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    return field(default=default, metadata={"section": section, "help": help, "check": check})


def _port(v: Any) -> str | None:
    return None if isinstance(v, int) and 0 <= v <= 65535 else "an integer from 0 to 65535"


def _positive(v: Any) -> str | None:
    return None if isinstance(v, int) and v > 0 else "a positive integer"


def _non_negative(v: Any) -> str | None:
    return None if isinstance(v, int) and v >= 0 else "0 or a positive integer"


ENGINES = ("httptools", "cheroot")


def _engine(v: Any) -> str | None:
    return None if v in ENGINES else "one of " + ", ".join(ENGINES)


def _anonymous(v: Any) -> str | None:
    allowed = ("", "none", "read", "write")
    return None if v in allowed else '"" (automatic), "none", "read" or "write"'


BASIC_MODES = ("https", "always", "never")


def _basic(v: Any) -> str | None:
    return None if v in BASIC_MODES else '"https" (the default), "always" or "never"'


def _public_url(v: Any) -> str | None:
    if v == "":
        return None
    try:
        parts = urlsplit(v)
    except ValueError:
        return "an http:// or https:// URL such as https://files.example.com/dav/"
    if parts.scheme in ("http", "https") and parts.hostname and not parts.query:
        return None
    return "an http:// or https:// URL such as https://files.example.com/dav/"


def _prefix(v: Any) -> str | None:
    segments = [s for s in v.split("/") if s]
    if any(s in (".", "..") or "\\" in s for s in segments):
        return "a path such as /dav, without . or .. segments"
    return None


def _prefix_mode(v: Any) -> str | None:
    return None if v in ("strip", "keep") else '"strip" or "keep"'


def _networks(v: Any) -> str | None:
    for item in v:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"addresses or CIDR ranges such as 127.0.0.1 or 10.0.0.0/8 ({item!r} is not)"
    return None


def _database(v: Any) -> str | None:
    if v == "" or (isinstance(v, str) and v.startswith(("postgresql://", "postgres://"))):
        return None
    return '"" (SQLite in the state folder) or a URL such as postgresql://dav@db.example/dav'


def _level(v: Any) -> str | None:
    allowed = ("debug", "info", "warning", "error")
    return None if v in allowed else "one of " + ", ".join(allowed)


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the server can be told; see config/davserver.toml for the documentation."""

    # [server]
    host: str = _opt("server", "127.0.0.1", "address to listen on")
    port: int = _opt("server", 8080, "TCP port; 0 picks a free one", _port)
    engine: str = _opt("server", "httptools", "the HTTP server that runs the app", _engine)
    workers: int = _opt(
        "server", 0, "worker processes on the one port; 0: one per CPU", _non_negative
    )
    threads: int = _opt("server", 32, "worker threads started at once", _positive)
    max_threads: int = _opt(
        "server", 256, "the most worker threads when every one is busy", _positive
    )
    request_timeout: int = _opt(
        "server", 60, "seconds a connection may stay idle or stall mid-request", _positive
    )
    header_timeout: int = _opt(
        "server",
        30,
        "seconds a client has for a request's line and headers (and a small XML or JSON "
        "body, plus a second per 32 KiB), however it trickles them",
        _positive,
    )
    cert: str = _opt("server", "", "TLS certificate chain (PEM); with key, serve HTTPS")
    key: str = _opt("server", "", "TLS private key (PEM)")
    # [storage]
    root: str = _opt(
        "storage",
        "./share",
        "the folder to share (created when missing), or s3://bucket/optional/prefix",
    )
    readonly: bool = _opt("storage", False, "refuse every method that changes anything")
    state_dir: str = _opt(
        "storage",
        "",
        "where properties and locks are kept; empty: a folder per share under "
        "$XDG_STATE_HOME/davserver (~/.local/state/davserver)",
    )
    database: str = _opt(
        "storage",
        "",
        "a PostgreSQL URL (postgresql://user@host/db) where several instances share "
        "properties, locks and changes in progress; empty: SQLite in the state folder",
        _database,
    )
    hide_apple_metadata: bool = _opt(
        "storage", False, "leave ._* and .DS_Store files out of listings (they stay usable)"
    )
    s3_endpoint: str = _opt(
        "storage", "", "with an s3:// root: the store's URL; empty: AWS (or AWS_ENDPOINT_URL)"
    )
    s3_region: str = _opt(
        "storage", "", "with an s3:// root: the region; empty: from the AWS variables or files"
    )
    # [limits]
    max_xml_body: int = _opt(
        "limits",
        1024 * 1024,
        "largest XML request body in bytes (PROPFIND, LOCK, ...), and property value",
        _positive,
    )
    max_propfind_resources: int = _opt(
        "limits",
        500_000,
        "most resources a Depth: infinity PROPFIND may report; past it the answer is 403 "
        "with <D:propfind-finite-depth/>",
        _positive,
    )
    max_batch_operations: int = _opt(
        "limits", 1000, "most operations in one JSON batch (POST)", _positive
    )
    max_batch_body: int = _opt(
        "limits", 16 * 1024 * 1024, "largest JSON batch body in bytes", _positive
    )
    # [locks]
    lock_default_timeout: int = _opt(
        "locks", 3600, "seconds a lock lasts when the client asks for no timeout", _positive
    )
    lock_max_timeout: int = _opt(
        "locks",
        86400,
        "longest lock granted, in seconds (also for Timeout: Infinite)",
        _positive,
    )
    # [auth]
    htpasswd: str = _opt("auth", "", "Apache htpasswd file of users; empty: no users")
    digest_file: str = _opt(
        "auth", "", "HA1 file for HTTP Digest (written by davserver passwd --digest)"
    )
    realm: str = _opt("auth", "davserver", "the realm shown by clients when they ask")
    basic: str = _opt(
        "auth",
        "https",
        "when HTTP Basic is offered: https (over HTTPS only), always, or never",
        _basic,
    )
    anonymous: str = _opt(
        "auth",
        "",
        "what anonymous users may do: none, read or write; empty: none once "
        "users exist, write otherwise",
        _anonymous,
    )
    nonce_lifetime: int = _opt("auth", 300, "seconds a Digest nonce stays valid", _positive)
    # [proxy]
    public_url: str = _opt(
        "proxy", "", "the URL clients use, e.g. https://files.example.com/dav/", _public_url
    )
    prefix: str = _opt("proxy", "", "the path prefix the share appears under, e.g. /dav", _prefix)
    prefix_mode: str = _opt(
        "proxy",
        "strip",
        "strip: the proxy removes the prefix; keep: requests carry it",
        _prefix_mode,
    )
    trusted_proxies: tuple[str, ...] = _opt(
        "proxy",
        (),
        "addresses or CIDR ranges allowed to send Forwarded / X-Forwarded-*",
        _networks,
    )
    # [[access]] tables: (path, user, access), see config/davserver.toml
    access: tuple[tuple[str, str, str], ...] = _opt("access", (), "per-path access rules")
    # [log]
    log_level: str = _opt("log", "info", "debug, info, warning or error", _level)
    access_log: bool = _opt("log", True, "one line per request on standard error")

    def worker_count(self) -> int:
        """`workers`, with 0 read as the number of CPUs this process may run on."""
        return self.workers or len(os.sched_getaffinity(0))

    def tls(self) -> bool:
        return bool(self.cert and self.key)

    def resolved_state_dir(self) -> str:
        """The state folder for this share: explicit, or one per shared root by default."""
        if self.state_dir:
            return os.path.abspath(os.path.expanduser(self.state_dir))
        real = self.root if self.root.startswith("s3://") else os.path.realpath(self.root)
        tag = os.path.basename(real) or "root"
        digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:12]
        return os.path.join(_default_state_dir(), f"{tag}-{digest}")


OPTIONS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Config)}


def sections() -> dict[str, list[str]]:
    """Option names grouped by TOML section, in declaration order."""
    grouped: dict[str, list[str]] = {}
    for name, f in OPTIONS.items():
        if f.metadata["section"] == "access":
            continue
        grouped.setdefault(f.metadata["section"], []).append(name)
    return grouped


def _check(name: str, value: Any, where: str) -> Any:
    f = OPTIONS[name]
    section = f.metadata["section"]
    expected = type(f.default)
    label = f"{where}[{section}] {name}"
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{label}: expected an integer, got {value!r}")
    if expected is bool and not isinstance(value, bool):
        raise ConfigError(f"{label}: expected true or false, got {value!r}")
    if expected is str and not isinstance(value, str):
        described = f.metadata["check"](value) if f.metadata["check"] else None
        raise ConfigError(f"{label}: expected {described or 'a string'}, got {value!r}")
    if section == "access":
        return tuple(tuple(rule) for rule in value)
    if expected is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{label}: expected a list of strings, got {value!r}")
        value = tuple(value)
    check = f.metadata["check"]
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{label}: expected {problem}, got {value!r}")
    return value


_ACCESS_LEVELS = ("none", "read", "write")


def _access_rules(path: str, tables: Any) -> tuple[tuple[str, str, str], ...]:
    """`[[access]]` tables: each names a path (plain, not percent-encoded), a user ("*" for
    every logged-in user, "anonymous" for everyone else) and an access level."""
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: access must be written as [[access]] tables")
    rules = []
    for number, table in enumerate(tables, 1):
        where = f"{path}: [[access]] #{number}"
        if not isinstance(table, dict) or set(table) != {"path", "user", "access"}:
            raise ConfigError(f"{where}: needs exactly the keys path, user and access")
        rule_path, user, level = table["path"], table["user"], table["access"]
        if not isinstance(rule_path, str) or not rule_path.startswith("/"):
            raise ConfigError(f"{where} path: expected a path starting with '/', got {rule_path!r}")
        segments = [seg for seg in rule_path.split("/") if seg]
        if any(seg in (".", "..") or "\\" in seg for seg in segments):
            raise ConfigError(f"{where} path: '.', '..' and backslashes are not allowed")
        if not isinstance(user, str) or not user:
            raise ConfigError(f'{where} user: expected a user name, "*" or "anonymous"')
        if level not in _ACCESS_LEVELS:
            raise ConfigError(f"{where} access: expected none, read or write, got {level!r}")
        rules.append(("/" + "/".join(segments), user, level))
    return tuple(rules)


def load(path: str | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the TOML file at `path`, then `overrides` (from command-line flags)."""
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_read_toml(path))
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _check(name, value, "command line: ")
    config = Config(**values)
    _check_together(config, f"{path}: " if path else "")
    return config


def _check_together(config: Config, where: str) -> None:
    """Options that only make sense together: refused at startup rather than half-applied."""
    if bool(config.cert) != bool(config.key):
        raise ConfigError(f"{where}[server] cert and key: give both (HTTPS) or neither")
    if config.digest_file and not config.htpasswd:
        raise ConfigError(
            f"{where}[auth] digest_file: needs [auth] htpasswd, the users it belongs to"
        )
    if config.htpasswd and not config.digest_file:
        if config.basic == "never":
            raise ConfigError(
                f'{where}[auth] basic = "never" and no digest_file: users would have no way '
                "to log in"
            )
        if config.basic == "https" and not _reached_over_https(config):
            raise ConfigError(
                f'{where}[auth] basic = "https" (the default) and no digest_file, cert or '
                "HTTPS proxy: users would have no way to log in. Basic sends the password "
                "readable, so RFC 4918 (section 20.1) allows it over HTTPS only. Serve HTTPS "
                "([server] cert and key), name the HTTPS proxy in front ([proxy] public_url = "
                '"https://..." or trusted_proxies), add a digest_file, or set basic = "always" '
                "to allow Basic over plain HTTP"
            )
    if config.digest_file and any(c in ':"' or not c.isprintable() for c in config.realm):
        raise ConfigError(
            f"{where}[auth] realm: expected no ':', '\"' or control characters (Digest), "
            f"got {config.realm!r}"
        )


def _reached_over_https(config: Config) -> bool:
    """Whether clients may reach this server over HTTPS: its own TLS, a public https:// URL,
    or trusted proxies (which say X-Forwarded-Proto or Forwarded proto=https)."""
    return config.tls() or config.public_url.startswith("https://") or bool(config.trusted_proxies)


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    known = sections()
    values: dict[str, Any] = {}
    for section, table in data.items():
        if section == "access":
            values["access"] = _access_rules(path, table)
            continue
        if section not in known:
            raise ConfigError(
                f"{path}: unknown section [{section}]; allowed: "
                + ", ".join(f"[{s}]" for s in known)
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} must be a [{section}] table")
        for key, value in table.items():
            if key not in known[section]:
                raise ConfigError(
                    f"{path}: [{section}] {key}: unknown option; allowed in [{section}]: "
                    + ", ".join(known[section])
                )
            values[key] = _check(key, value, f"{path}: ")
    base = os.path.dirname(os.path.abspath(path))
    for key in ("root", "state_dir", "cert", "key", "htpasswd", "digest_file"):
        # Relative folders in a file mean relative to that file, not to wherever it is run.
        if values.get(key) and not str(values[key]).startswith("s3://"):
            values[key] = os.path.normpath(os.path.join(base, os.path.expanduser(values[key])))
    return values
