"""`.env.example` documents every setting the code reads."""

from __future__ import annotations

from pathlib import Path

from kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    missing = []
    for name, field in Settings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", [f"CALLMANAGER_{name.upper()}"])
        if not any(str(alias) in text for alias in aliases):
            missing.append(name)
    assert missing == []


def test_env_example_holds_no_secret_value() -> None:
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.startswith("CALLMANAGER_SECRET_KEY="):
            assert line.split("=", 1)[1].strip() == ""
