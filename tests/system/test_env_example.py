"""`.env.example` lists exactly the settings the code reads, and `callmanager config check` shows them."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from kernel.settings import Settings
from system.cli import app

ROOT = Path(__file__).resolve().parents[2]
SETTING_LINE = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=")


def example_blocks() -> list[list[str]]:
    """``.env.example``'s paragraphs (runs of non-blank lines)."""
    blocks: list[list[str]] = [[]]
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def field_of(name: str) -> str | None:
    for field, info in Settings.model_fields.items():
        choices = getattr(info.validation_alias, "choices", [])
        if name in {str(c) for c in choices}:
            return field
    return None


def test_env_example_lists_exactly_the_settings_the_code_reads() -> None:
    named = [m.group(1) for block in example_blocks() for line in block if (m := SETTING_LINE.match(line))]
    unknown = [name for name in named if field_of(name) is None]
    assert unknown == [], "listed in .env.example but read by no code"
    listed = {field_of(name) for name in named}
    assert sorted(set(Settings.model_fields) - listed) == [], "read by the code but missing from .env.example"
    assert len(named) == len(listed), "a setting is listed twice"


def test_every_setting_in_env_example_has_a_comment() -> None:
    for block in example_blocks():
        settings = [line for line in block if SETTING_LINE.match(line)]
        comments = [line for line in block if line.startswith("#") and not SETTING_LINE.match(line)]
        assert not settings or comments, f"no comment above {settings}"


def test_env_example_holds_no_secret_value() -> None:
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.startswith("CALLMANAGER_SECRET_KEY="):
            assert line.split("=", 1)[1].strip() == ""


def test_config_check_prints_every_effective_setting_with_secrets_masked(tmp_path: Path) -> None:
    env = {
        "CALLMANAGER_SECRET_KEY": "s3cret-value-that-must-not-show",
        "CALLMANAGER_DATABASE_URL": "postgresql+psycopg://cm:pg-password@db:5432/callmanager",
        "CALLMANAGER_REDIS_URL": "redis://:redis-password@cache:6379/0",
        "CALLMANAGER_PORT": "5050",
        "BACKUP_KEEP_COUNT": "12",
    }
    result = CliRunner().invoke(app, ["config", "check", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    for secret in ("s3cret-value", "pg-password", "redis-password"):
        assert secret not in result.output
    lines = dict(line.split("=", 1) for line in result.output.splitlines() if SETTING_LINE.match(line))
    assert set(lines) == {f"CALLMANAGER_{field.upper()}" for field in Settings.model_fields}
    assert lines["CALLMANAGER_SECRET_KEY"] == "***"
    assert lines["CALLMANAGER_DATABASE_URL"] == "postgresql+psycopg://cm:***@db:5432/callmanager"
    assert lines["CALLMANAGER_REDIS_URL"] == "redis://:***@cache:6379/0"
    assert lines["CALLMANAGER_PORT"] == "5050"
    assert lines["CALLMANAGER_BACKUP_KEEP_COUNT"] == "12"
    assert lines["CALLMANAGER_DATA_DIR"] == str(tmp_path)
    assert "reiniciar" in result.output


def test_config_check_refuses_an_invalid_setting() -> None:
    result = CliRunner().invoke(app, ["config", "check"], env={"CALLMANAGER_PORT": "70000"})
    assert result.exit_code == 2
