"""Configuration: one frozen dataclass, from defaults, a TOML file and command-line flags.

Every option is declared once below with its TOML section, its type and what it means;
`config/davserver.toml` documents the same options and a test checks that the two agree. A wrong
key or value is refused at startup with a message naming the file, the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


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


def _level(v: Any) -> str | None:
    allowed = ("debug", "info", "warning", "error")
    return None if v in allowed else "one of " + ", ".join(allowed)


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the server can be told; see config/davserver.toml for the documentation."""

    # [server]
    host: str = _opt("server", "127.0.0.1", "address to listen on")
    port: int = _opt("server", 8080, "TCP port; 0 picks a free one", _port)
    threads: int = _opt("server", 32, "worker threads serving requests", _positive)
    request_timeout: int = _opt(
        "server", 60, "seconds a connection may stay idle or stall mid-request", _positive
    )
    # [storage]
    root: str = _opt("storage", "./share", "the folder to share (created when missing)")
    readonly: bool = _opt("storage", False, "refuse every method that changes anything")
    state_dir: str = _opt(
        "storage",
        "",
        "where properties and locks are kept; empty: a folder per share under "
        "$XDG_STATE_HOME/davserver (~/.local/state/davserver)",
    )
    # [limits]
    max_xml_body: int = _opt(
        "limits",
        1024 * 1024,
        "largest XML request body in bytes (PROPFIND, LOCK, ...)",
        _positive,
    )
    max_propfind_resources: int = _opt(
        "limits",
        500_000,
        "most resources a Depth: infinity PROPFIND may report; past it the answer is 403 "
        "with <D:propfind-finite-depth/>",
        _positive,
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
    # [log]
    log_level: str = _opt("log", "info", "debug, info, warning or error", _level)
    access_log: bool = _opt("log", True, "one line per request on standard error")

    def resolved_state_dir(self) -> str:
        """The state folder for this share: explicit, or one per shared root by default."""
        if self.state_dir:
            return os.path.abspath(os.path.expanduser(self.state_dir))
        real = os.path.realpath(self.root)
        tag = os.path.basename(real) or "root"
        digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:12]
        return os.path.join(_default_state_dir(), f"{tag}-{digest}")


OPTIONS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Config)}


def sections() -> dict[str, list[str]]:
    """Option names grouped by TOML section, in declaration order."""
    grouped: dict[str, list[str]] = {}
    for name, f in OPTIONS.items():
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
        raise ConfigError(f"{label}: expected a string, got {value!r}")
    check = f.metadata["check"]
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{label}: expected {problem}, got {value!r}")
    return value


def load(path: str | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the TOML file at `path`, then `overrides` (from command-line flags)."""
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_read_toml(path))
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _check(name, value, "command line: ")
    return Config(**values)


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
    for key in ("root", "state_dir"):
        # Relative folders in a file mean relative to that file, not to wherever it is run.
        if values.get(key):
            values[key] = os.path.normpath(os.path.join(base, os.path.expanduser(values[key])))
    return values
