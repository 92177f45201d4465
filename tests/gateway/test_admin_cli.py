"""``callmanager users ...``, ``setup-secure`` and ``check-secure``, as an operator runs them."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from gateway.audit import AuditLog
from kernel.settings import Settings
from kernel.store import create_engine
from system.admin import Severity, check_secure
from system.cli import app

KEY = r"cm_[0-9a-f]{12}_[A-Za-z0-9_-]{43}"


def _setting_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.update(str(c) for c in getattr(field.validation_alias, "choices", [name]))
    return names


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and an environment with no CallManager setting."""
    for name in _setting_names() | {"POSTGRES_PASSWORD"}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def run(workdir: Path) -> Callable[..., Result]:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        # The commands configure logging for the process; put the test session's back afterwards.
        root = logging.getLogger()
        handlers, level, config = root.handlers[:], root.level, structlog.get_config()
        try:
            return runner.invoke(app, list(args))
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
            structlog.reset_defaults()
            structlog.configure(**config)

    return invoke


@pytest.fixture
def data_dir(workdir: Path) -> Path:
    return workdir / "data"


@pytest.fixture
def running_gateway(data_dir: Path, app_over: Callable[..., FastAPI]) -> Iterator[Callable[[], TestClient]]:
    """Start (lazily, after the CLI made the database) an app over the same SQLite file as the CLI."""
    engines = []
    clients: list[TestClient] = []

    def start() -> TestClient:
        engine = create_engine(f"sqlite:///{data_dir / 'callmanager.db'}")
        engines.append(engine)
        client = TestClient(app_over(engine), client=("127.0.0.1", 50000))
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
    for engine in engines:
        engine.dispose()


def test_users_create_prints_the_new_key_once(run: Callable[..., Result], data_dir: Path) -> None:
    result = run("users", "create", "--username", "admin", "--role", "TI", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert re.fullmatch(KEY + "\n", result.stdout)
    assert "no se volverá a mostrar" in result.stderr
    listing = run("users", "list", "--data-dir", str(data_dir))
    assert "admin" in listing.stdout
    assert result.stdout.strip() not in listing.output


def test_users_create_json_has_username_role_and_key(run: Callable[..., Result], data_dir: Path) -> None:
    result = run(
        "users", "create", "--username", "Ana", "--role", "agent", "--team", "Norte", "--json",
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) == {"username", "role", "api_key"}
    assert (body["username"], body["role"]) == ("ana", "Agent")
    listed = json.loads(run("users", "list", "--json", "--data-dir", str(data_dir)).stdout)
    assert [(u["username"], u["role"], u["team"], u["active"]) for u in listed] == [
        ("ana", "Agent", "Norte", True)
    ]
    assert body["api_key"] not in json.dumps(listed)


def test_users_create_refuses_duplicates_and_unknown_roles(
    run: Callable[..., Result], data_dir: Path
) -> None:
    assert run("users", "create", "-u", "ana", "-r", "Agent", "--data-dir", str(data_dir)).exit_code == 0
    duplicate = run("users", "create", "-u", "ana", "-r", "TI", "--data-dir", str(data_dir))
    unknown = run("users", "create", "-u", "luis", "-r", "Supervisor", "--data-dir", str(data_dir))
    assert duplicate.exit_code == 1
    assert "ya existe" in duplicate.stderr
    assert unknown.exit_code == 1
    assert "rol desconocido" in unknown.stderr
    assert "cm_" not in duplicate.stdout + unknown.stdout


def test_deactivate_stops_the_key_at_once_on_a_running_gateway(
    run: Callable[..., Result], data_dir: Path, running_gateway: Callable[[], TestClient]
) -> None:
    created = run("users", "create", "-u", "ana", "-r", "Agent", "--json", "--data-dir", str(data_dir))
    headers = {"X-API-Key": json.loads(created.stdout)["api_key"]}
    gateway = running_gateway()
    assert gateway.get("/me", headers=headers).status_code == 200
    result = run("users", "deactivate", "ana", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert gateway.get("/me", headers=headers).status_code == 401
    listed = json.loads(run("users", "list", "--json", "--data-dir", str(data_dir)).stdout)
    assert listed[0]["active"] is False


def test_rotate_key_replaces_the_key_on_a_running_gateway(
    run: Callable[..., Result], data_dir: Path, running_gateway: Callable[[], TestClient]
) -> None:
    created = run("users", "create", "-u", "ana", "-r", "Agent", "--json", "--data-dir", str(data_dir))
    old = {"X-API-Key": json.loads(created.stdout)["api_key"]}
    gateway = running_gateway()
    assert gateway.get("/me", headers=old).status_code == 200
    rotated = run("users", "rotate-key", "--username", "ana", "--json", "--data-dir", str(data_dir))
    assert rotated.exit_code == 0, rotated.output
    new = {"X-API-Key": json.loads(rotated.stdout)["api_key"]}
    assert gateway.get("/me", headers=old).status_code == 401
    assert gateway.get("/me", headers=new).json()["username"] == "ana"


def test_users_commands_use_postgresql_when_configured(
    run: Callable[..., Result],
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    app_over: Callable[..., FastAPI],
) -> None:
    monkeypatch.setenv("CALLMANAGER_DATABASE_URL", postgres_url)
    created = run("users", "create", "-u", "admin", "-r", "TI", "--json")
    assert created.exit_code == 0, created.output
    engine = create_engine(postgres_url)
    try:
        with TestClient(app_over(engine)) as gateway:
            headers = {"X-API-Key": json.loads(created.stdout)["api_key"]}
            assert gateway.get("/me", headers=headers).json()["role"] == "TI"
            assert run("users", "deactivate", "admin").exit_code == 0
            assert gateway.get("/me", headers=headers).status_code == 401
    finally:
        engine.dispose()


# --- setup-secure ----------------------------------------------------------------------------------


def test_setup_secure_writes_a_private_env_with_generated_secrets(
    run: Callable[..., Result], workdir: Path
) -> None:
    result = run("setup-secure", "--dir", str(workdir))
    assert result.exit_code == 0, result.output
    env = workdir / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    values = dict(
        line.split("=", 1) for line in env.read_text().splitlines() if "=" in line and line[0] != "#"
    )
    assert values["CALLMANAGER_ENVIRONMENT"] == "production"
    assert values["ENABLE_AUTH"] == "true"
    assert len(values["CALLMANAGER_SECRET_KEY"]) >= 48
    assert len(values["POSTGRES_PASSWORD"]) >= 32
    assert values["CALLMANAGER_SECRET_KEY"] not in result.output
    assert check_secure(workdir, {}) == []


def test_setup_secure_refuses_to_overwrite_without_force(run: Callable[..., Result], workdir: Path) -> None:
    assert run("setup-secure", "--dir", str(workdir)).exit_code == 0
    first = (workdir / ".env").read_text()
    again = run("setup-secure", "--dir", str(workdir))
    assert again.exit_code == 1
    assert "--force" in again.stderr
    assert (workdir / ".env").read_text() == first
    forced = run("setup-secure", "--dir", str(workdir), "--force")
    assert forced.exit_code == 0
    assert (workdir / ".env").read_text() != first
    assert stat.S_IMODE((workdir / ".env").stat().st_mode) == 0o600


def test_two_setups_never_share_a_secret(run: Callable[..., Result], workdir: Path) -> None:
    run("setup-secure", "--dir", str(workdir / "a"))
    run("setup-secure", "--dir", str(workdir / "b"))
    a = (workdir / "a" / ".env").read_text().splitlines()
    b = (workdir / "b" / ".env").read_text().splitlines()
    secrets_a = {line for line in a if line.startswith(("CALLMANAGER_SECRET_KEY", "POSTGRES_PASSWORD"))}
    assert secrets_a.isdisjoint(b)


# --- check-secure ----------------------------------------------------------------------------------


def write_env(directory: Path, text: str) -> Path:
    env = directory / ".env"
    env.write_text(text)
    env.chmod(0o600)
    return env


def git(directory: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(directory), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
    )


def test_check_secure_fails_for_a_tracked_env(run: Callable[..., Result], workdir: Path) -> None:
    assert run("setup-secure", "--dir", str(workdir)).exit_code == 0
    git(workdir, "init", "-q")
    assert run("check-secure", "--dir", str(workdir)).exit_code == 0
    git(workdir, "add", "-f", ".env")
    git(workdir, "commit", "-q", "-m", "oops")
    result = run("check-secure", "--dir", str(workdir))
    assert result.exit_code == 1
    assert "versionado en git" in result.stderr


def test_check_secure_warns_when_env_is_not_ignored(workdir: Path) -> None:
    write_env(workdir, "CALLMANAGER_SECRET_KEY=" + "k" * 10 + "Zq8-Lm3_Xv9Tw2Rp7Yn4Bc6Hs1Jd5Gf0aa\n")
    git(workdir, "init", "-q")
    findings = check_secure(workdir, {})
    assert [f.severity for f in findings] == [Severity.WARNING]
    assert ".gitignore" in findings[0].message
    (workdir / ".gitignore").write_text(".env\n")
    assert check_secure(workdir, {}) == []


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("", "no está definida"),
        ("change-me", "valor por defecto"),
        ("your-secret-key-here-please-change-it-now", "valor por defecto"),
        ("s3cr3t-but-short", "demasiado corta"),
        ("a" * 40, "poco aleatoria"),
    ],
)
def test_check_secure_fails_for_weak_secrets_in_production(
    run: Callable[..., Result], workdir: Path, secret: str, problem: str
) -> None:
    write_env(workdir, f"CALLMANAGER_ENVIRONMENT=production\nCALLMANAGER_SECRET_KEY={secret}\n")
    result = run("check-secure", "--dir", str(workdir))
    assert result.exit_code == 1
    assert problem in result.stderr
    assert "CALLMANAGER_SECRET_KEY" in result.stderr
    if len(secret) > 8:
        assert secret not in result.output


def test_weak_secrets_only_warn_in_development(workdir: Path) -> None:
    write_env(workdir, "CALLMANAGER_ENVIRONMENT=development\nCALLMANAGER_SECRET_KEY=change-me\n")
    assert [f.severity for f in check_secure(workdir, {})] == [Severity.WARNING]


def test_check_secure_fails_for_default_database_passwords_in_production(workdir: Path) -> None:
    (workdir / "ok").mkdir()
    write_env(workdir / "ok", "")
    environ = {
        "CALLMANAGER_ENVIRONMENT": "production",
        "CALLMANAGER_SECRET_KEY": "Zq8-Lm3_Xv9Tw2Rp7Yn4Bc6Hs1Jd5Gf0aKe",
        "POSTGRES_PASSWORD": "postgres",
        "CALLMANAGER_DATABASE_URL": "postgresql+psycopg://callmanager:changeme@db/callmanager",
    }
    messages = [f.message for f in check_secure(workdir / "ok", environ) if f.severity is Severity.ERROR]
    assert len(messages) == 2
    assert any("POSTGRES_PASSWORD" in m for m in messages)
    assert any("CALLMANAGER_DATABASE_URL" in m for m in messages)
    assert not any("changeme" in m for m in messages)


@pytest.mark.parametrize("flag", ["ENABLE_AUTH", "CALLMANAGER_ENABLE_AUTH"])
def test_check_secure_fails_for_auth_off_on_a_public_bind(
    run: Callable[..., Result], workdir: Path, flag: str
) -> None:
    assert run("setup-secure", "--dir", str(workdir), "--environment", "development").exit_code == 0
    env = workdir / ".env"
    env.write_text(
        env.read_text().replace("ENABLE_AUTH=true", "") + f"{flag}=false\nCALLMANAGER_HOST=0.0.0.0\n"
    )
    result = run("check-secure", "--dir", str(workdir))
    assert result.exit_code == 1
    assert "0.0.0.0" in result.stderr
    env.write_text(env.read_text().replace("CALLMANAGER_HOST=0.0.0.0", "CALLMANAGER_HOST=127.0.0.1"))
    assert run("check-secure", "--dir", str(workdir)).exit_code == 0


def test_the_process_environment_overrides_the_env_file(
    run: Callable[..., Result], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("setup-secure", "--dir", str(workdir)).exit_code == 0
    monkeypatch.setenv("CALLMANAGER_SECRET_KEY", "changeme")
    assert run("check-secure", "--dir", str(workdir)).exit_code == 1


def test_check_secure_fails_for_a_world_readable_env_in_production(
    run: Callable[..., Result], workdir: Path
) -> None:
    assert run("setup-secure", "--dir", str(workdir)).exit_code == 0
    os.chmod(workdir / ".env", 0o644)
    result = run("check-secure", "--dir", str(workdir))
    assert result.exit_code == 1
    assert "chmod 600" in result.stderr


def test_cli_changes_are_audited_without_keys(run: Callable[..., Result], data_dir: Path) -> None:
    created = run("users", "create", "-u", "ana", "-r", "Agent", "--json", "--data-dir", str(data_dir))
    rotated = run("users", "rotate-key", "ana", "--json", "--data-dir", str(data_dir))
    run("users", "deactivate", "ana", "--data-dir", str(data_dir))
    engine = create_engine(f"sqlite:///{data_dir / 'callmanager.db'}")
    try:
        entries = [r.entry for r in AuditLog(engine).list()]
    finally:
        engine.dispose()
    assert [(e.method, e.path, e.detail["target"]) for e in entries] == [
        ("CLI", "callmanager users deactivate", "ana"),
        ("CLI", "callmanager users rotate-key", "ana"),
        ("CLI", "callmanager users create", "ana"),
    ]
    dump = repr(entries)
    for output in (created.stdout, rotated.stdout):
        assert json.loads(output)["api_key"] not in dump
