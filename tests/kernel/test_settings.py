"""Settings come from CALLMANAGER_* variables, the seed's older names, and a .env file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from kernel.settings import Settings

_ALL_NAMES = (
    "CALLMANAGER_PORT",
    "CALLMANAGER_DATABASE_PATH",
    "CALLMANAGER_LOG_LEVEL",
    "CALLMANAGER_ENABLE_AUTH",
    "CALLMANAGER_DATA_DIR",
    "DATABASE_PATH",
    "LOG_LEVEL",
    "ENABLE_AUTH",
    "PORT",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in _ALL_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_without_any_configuration() -> None:
    settings = Settings(_env_file=None)

    assert (settings.port, settings.log_level, settings.enable_auth) == (5000, "INFO", True)
    assert settings.sqlite_path == Path("var") / "callmanager.db"


def test_prefixed_variables_configure_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLMANAGER_PORT", "8080")
    monkeypatch.setenv("CALLMANAGER_LOG_LEVEL", "debug")

    settings = Settings(_env_file=None)

    assert (settings.port, settings.log_level) == (8080, "DEBUG")


def test_the_seeds_old_variable_names_keep_working(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "old.db"))
    monkeypatch.setenv("LOG_LEVEL", "warning")
    monkeypatch.setenv("ENABLE_AUTH", "false")

    settings = Settings(_env_file=None)

    assert settings.sqlite_path == tmp_path / "old.db"
    assert settings.embedded_database_url == f"sqlite:///{(tmp_path / 'old.db').resolve()}"
    assert (settings.log_level, settings.enable_auth) == ("WARNING", False)


def test_the_prefixed_name_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLMANAGER_LOG_LEVEL", "ERROR")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")

    assert Settings(_env_file=None).log_level == "ERROR"


def test_a_dotenv_file_is_read(tmp_path: Path) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text("CALLMANAGER_PORT=5050\nENABLE_AUTH=0\nLOG_LEVEL=critical\n", encoding="utf-8")

    settings = Settings(_env_file=env_file)

    assert (settings.port, settings.enable_auth, settings.log_level) == (5050, False, "CRITICAL")


def test_the_environment_overrides_the_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CALLMANAGER_PORT=5050\n", encoding="utf-8")
    monkeypatch.setenv("CALLMANAGER_PORT", "6060")

    assert Settings(_env_file=env_file).port == 6060


@pytest.mark.parametrize(
    ("name", "value"),
    [("CALLMANAGER_PORT", "0"), ("CALLMANAGER_PORT", "70000"), ("LOG_LEVEL", "chatty")],
)
def test_invalid_values_are_refused_at_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def test_the_callbacks_schedule_has_bounded_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings(_env_file=None)
    assert (defaults.callback_reminder_minutes, defaults.callback_grace_minutes) == (5, 30)
    monkeypatch.setenv("CALLMANAGER_CALLBACK_REMINDER_MINUTES", "0")
    monkeypatch.setenv("CALLMANAGER_CALLBACK_GRACE_MINUTES", "90")
    configured = Settings(_env_file=None)
    assert (configured.callback_reminder_minutes, configured.callback_grace_minutes) == (0, 90)
    for name, value in (
        ("CALLMANAGER_CALLBACK_REMINDER_MINUTES", "1441"),
        ("CALLMANAGER_CALLBACK_GRACE_MINUTES", "0"),
        ("CALLMANAGER_CALLBACK_SWEEP_SECONDS", "0"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValidationError):
            Settings(_env_file=None)
        monkeypatch.delenv(name)


def test_public_view_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLMANAGER_SECRET_KEY", "s3cret")
    monkeypatch.setenv("CALLMANAGER_DATABASE_URL", "postgresql://u:pw@db/x")

    view = Settings(_env_file=None).public_view()

    assert "secret_key" not in view
    assert "database_url" not in view
    assert "s3cret" not in str(view)
