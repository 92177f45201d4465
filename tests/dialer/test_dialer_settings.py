"""Defaults < settings file < environment < command line; the key file must be private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dialer_agent.__main__ import build_parser, main, settings_from
from dialer_agent.settings import SettingsError, load_settings, read_key_file, resolve_api_key


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CALLMANAGER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def test_defaults_name_the_desk_after_the_host_and_keep_state_per_user(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.desk
    assert settings.softphone == "baresip"
    assert settings.baresip_address == ("127.0.0.1", 4444)
    assert settings.no_answer_seconds == 30
    assert settings.baresip_dial_template == "{number}"
    assert settings.data_dir == tmp_path / "state" / "callmanager-dialer"


def test_command_line_beats_environment_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_file = tmp_path / "settings.env"
    settings_file.write_text(
        "CALLMANAGER_DIALER_SERVER=http://from-file:8000\n"
        "CALLMANAGER_DIALER_DESK=file-desk\n"
        "CALLMANAGER_DIALER_PREFIX=7\n"
        "CALLMANAGER_DIALER_SOFTPHONE=command\n"
    )
    monkeypatch.setenv("CALLMANAGER_DIALER_DESK", "env-desk")
    monkeypatch.setenv("CALLMANAGER_DIALER_PREFIX", "8")
    args = build_parser().parse_args(["--settings", str(settings_file), "--prefix", "9"])
    settings = settings_from(args)
    assert settings.server == "http://from-file:8000"
    assert settings.desk == "env-desk"
    assert settings.prefix == "9"
    assert settings.softphone == "command"


def test_the_default_settings_file_is_read_when_present(tmp_path: Path) -> None:
    default = tmp_path / "config" / "callmanager-dialer" / "settings.env"
    default.parent.mkdir(parents=True)
    default.write_text("CALLMANAGER_DIALER_DESK=puesto-12\n")
    assert settings_from(build_parser().parse_args([])).desk == "puesto-12"


@pytest.mark.parametrize(
    "argv",
    [
        ["--prefix", "9a"],
        ["--server", "callmanager.local"],
        ["--baresip-ctrl", "4444"],
        ["--command-template", "linphonecsh dial"],
        ["--interphone-title", "(unclosed"],
    ],
)
def test_impossible_settings_are_refused_in_spanish(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--check"]) == 2
    assert "callmanager-dialer:" in capsys.readouterr().err


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("secret-key-123456\n")
    key_file.chmod(0o644)
    with pytest.raises(SettingsError, match="chmod 600") as refused:
        read_key_file(key_file)
    assert "secret-key" not in str(refused.value)
    key_file.chmod(0o640)
    with pytest.raises(SettingsError):
        read_key_file(key_file)
    key_file.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert read_key_file(key_file) == "secret-key-123456"


def test_the_key_comes_from_the_option_else_the_file_else_the_keyring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file")
    key_file.chmod(0o600)
    assert resolve_api_key(load_settings({"api_key": "given", "api_key_file": key_file})) == "given"
    assert resolve_api_key(load_settings({"api_key_file": key_file})) == "from-file"
    monkeypatch.setattr("dialer_agent.settings.read_keyring", lambda server: f"kept-for-{server}")
    assert resolve_api_key(load_settings({"server": "http://cm:8000"})) == "kept-for-http://cm:8000"
    monkeypatch.setattr("dialer_agent.settings.read_keyring", lambda server: None)
    with pytest.raises(SettingsError, match="falta la clave"):
        resolve_api_key(load_settings())


def test_the_key_is_never_shown_in_settings_or_their_errors() -> None:
    settings = load_settings({"api_key": "very-secret-key-987"})
    assert "very-secret-key-987" not in repr(settings)
    assert "very-secret-key-987" not in str(settings.model_dump())
