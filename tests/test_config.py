"""Configuration: the documented example files, validation messages and flag overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from davserver import config
from davserver.config import ConfigError, load

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_file_loads(path: Path) -> None:
    loaded = load(str(path))
    # Relative folders are resolved against the file; every example names a real folder.
    assert Path(loaded.root).is_absolute()
    assert Path(loaded.resolved_state_dir()).is_absolute()


def test_reference_file_documents_every_option_with_its_default() -> None:
    text = (CONFIG_DIR / "davserver.toml").read_text()
    loaded = load(str(CONFIG_DIR / "davserver.toml"))
    defaults = config.Config()
    assert "# [[access]]\n# path = " in text
    for name, field in config.OPTIONS.items():
        section = field.metadata["section"]
        if section == "access":
            continue
        assert f"[{section}]" in text
        match = re.search(rf"^# .*\n{name} = ", text, re.MULTILINE)
        assert match, f"{name} is not documented with a comment above it"
        if name != "root":
            assert getattr(loaded, name) == getattr(defaults, name), name


def test_unknown_key_names_file_section_and_allowed_keys(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server]\nprot = 80\n")
    with pytest.raises(ConfigError) as info:
        load(str(path))
    message = str(info.value)
    assert str(path) in message and "[server] prot" in message and "port" in message


def refused(path: Path, text: str, message: str) -> None:
    """A file holding `text` fails to load with a ConfigError matching `message`."""
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(str(path))


def test_wrong_type_and_range(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    refused(path, '[server]\nport = "eighty"\n', r"\[server\] port: expected an integer")
    refused(path, "[server]\nport = 70000\n", "from 0 to 65535")
    refused(path, '[log]\nlog_level = "loud"\n', "one of debug, info")


def test_unknown_section_and_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    refused(path, "[srv]\nport = 1\n", r"unknown section \[srv\]")
    refused(path, "[server\n", "not valid TOML")
    with pytest.raises(ConfigError, match="cannot read"):
        load(str(tmp_path / "missing.toml"))


def test_flags_override_file_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = 9000\n[storage]\nroot = "data"\n')
    loaded = load(str(path), {"port": 9001, "host": None})
    assert loaded.port == 9001
    assert loaded.host == "127.0.0.1"
    assert loaded.root == str(tmp_path / "data")


def test_default_state_dir_is_per_share_under_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
    a = Path(load(None, {"root": str(tmp_path / "a")}).resolved_state_dir())
    b = Path(load(None, {"root": str(tmp_path / "b")}).resolved_state_dir())
    assert a.parent == b.parent == tmp_path / "state-home" / "davserver"
    assert a.name.startswith("a-") and b.name.startswith("b-")


def test_default_state_dir_without_xdg_state_home_is_in_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    state = Path(load(None, {"root": str(tmp_path / "a")}).resolved_state_dir())
    assert state.parent == tmp_path / "home" / ".local" / "state" / "davserver"


def test_systemd_unit_runs_the_server_and_stops_it_with_sigterm() -> None:
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(CONFIG_DIR / "davserver.service")
    service = unit["Service"]
    command = service["ExecStart"].split()
    assert command[0].endswith("/davserver") and command[1:3] == ["serve", "--config"]
    assert service["KillSignal"] == "SIGTERM" and service["User"] == "davserver"
    assert service["StateDirectory"] == "davserver"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
