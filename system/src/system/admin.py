"""Administration commands: ``callmanager users ...``, ``setup-secure`` and ``check-secure``.

The ``users`` commands open the same database as the running system (``CALLMANAGER_DATABASE_URL`` when
set, else the SQLite file in the data dir) and apply the migrations first. The gateway reads users and
keys from that database on every request, so what these commands change counts at once, also while the
system runs. There is no open registration and no default password: the first TI user is created here.

A key is printed only by the command that creates it (``users create``, ``users rotate-key``).
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
import typer
from dotenv import dotenv_values
from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from gateway.audit import AuditEntry, AuditLog, Outcome
from gateway.roles import Capability
from gateway.users import DirectoryError, IssuedKey, User, UserDirectory
from kernel.logs import configure_logging
from kernel.settings import Settings
from kernel.store import create_engine
from system.migrate import upgrade

users_app = typer.Typer(
    name="users",
    help="Usuarios y claves API (los cambios valen al instante, también con el sistema en marcha).",
    no_args_is_help=True,
)
console = Console(stderr=True, soft_wrap=True)

SECRET_MIN_LENGTH = 32
PASSWORD_MIN_LENGTH = 16
ENV_FILE = ".env"
# Values seen in examples and tutorials; a production secret must be none of them.
_KNOWN_DEFAULTS = frozenset(
    {
        "",
        "admin",
        "callmanager",
        "change-me",
        "change_me",
        "changeme",
        "default",
        "dev",
        "development",
        "example",
        "insecure",
        "password",
        "postgres",
        "secret",
        "secret-key",
        "secret_key",
        "test",
    }
)
_DEFAULT_MARKERS = ("change", "example", "default", "insecure", "your-", "your_", "xxxx")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Carpeta de datos del modo embebido (CALLMANAGER_DATA_DIR, ./var)."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Salida JSON (para scripts).")]


def open_database(settings: Settings) -> Engine:
    """An engine on the system's database (PostgreSQL if configured, else the embedded SQLite), migrated."""
    if settings.database_url:
        engine = create_engine(settings.database_url)
    else:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.embedded_database_url)
    upgrade(engine)
    return engine


@dataclass(frozen=True, slots=True)
class _Session:
    """The directory and audit log one command works with."""

    directory: UserDirectory
    audit: AuditLog

    def audited(self, command: str, target: str, **detail: Any) -> None:
        """Record a change made from the command line (HTTP changes are audited by the gateway)."""
        self.audit.record(
            AuditEntry(
                method="CLI",
                path=f"callmanager users {command}",
                outcome=Outcome.ALLOWED,
                status_code=0,
                action=Capability.MANAGE_USERS.value,
                source=f"cli:{_os_user()}",
                detail={"target": target, **detail},
            )
        )


@contextmanager
def _session(data_dir: Path | None) -> Iterator[_Session]:
    try:
        given: dict[str, Any] = {"data_dir": data_dir} if data_dir is not None else {}
        settings = Settings(**given)
    except ValidationError as exc:
        console.print(f"[red]Configuración inválida:[/red] {exc}")
        raise typer.Exit(2) from exc
    configure_logging(settings)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        engine = open_database(settings)
    except sa.exc.SQLAlchemyError as exc:
        console.print(f"[red]No se pudo abrir la base de datos:[/red] {type(exc).__name__}")
        raise typer.Exit(2) from exc
    try:
        yield _Session(UserDirectory(engine), AuditLog(engine))
    except DirectoryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "desconocido"


def _print_key(user: User, issued: IssuedKey, as_json: bool) -> None:
    if as_json:
        body = {"username": user.username, "role": user.role.value, "api_key": issued.plaintext}
        typer.echo(orjson.dumps(body).decode())
        return
    console.print(
        f"Clave API de [bold]{user.username}[/bold] ({user.role.value}, id {issued.key_id}). "
        "Guárdela ahora: no se volverá a mostrar."
    )
    typer.echo(issued.plaintext)


@users_app.command("create")
def create_user(
    username: Annotated[str, typer.Option("--username", "-u", help="Nombre de usuario (único).")],
    role: Annotated[str, typer.Option("--role", "-r", help="Agent, TeamLead, ProjectManager o TI.")],
    team: Annotated[str | None, typer.Option("--team", help="Equipo del usuario.")] = None,
    display_name: Annotated[str | None, typer.Option("--display-name", help="Nombre visible.")] = None,
    as_json: JsonFlag = False,
    data_dir: DataDir = None,
) -> None:
    """Create a user with one role and print its new API key (shown this once only)."""
    with _session(data_dir) as session:
        user, issued = session.directory.create_user(username, role, team=team, display_name=display_name)
        session.audited("create", user.username, role=user.role.value, key_id=issued.key_id)
    _print_key(user, issued, as_json)


@users_app.command("list")
def list_users(
    active_only: Annotated[bool, typer.Option("--active-only", help="Sólo usuarios activos.")] = False,
    as_json: JsonFlag = False,
    data_dir: DataDir = None,
) -> None:
    """List users (never their keys)."""
    with _session(data_dir) as session:
        found = session.directory.list_users(include_inactive=not active_only)
    if as_json:
        typer.echo(orjson.dumps([user.to_dict() for user in found]).decode())
        return
    table = Table("usuario", "rol", "equipo", "activo", "creado")
    for user in found:
        table.add_row(
            user.username,
            user.role.value,
            user.team or "",
            "sí" if user.active else "no",
            user.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    Console().print(table)


def _target(username: str | None, option: str | None) -> str:
    chosen = option or username
    if not chosen:
        console.print("[red]Indique el usuario (argumento o --username).[/red]")
        raise typer.Exit(2)
    return chosen


UsernameArgument = Annotated[str | None, typer.Argument(help="Nombre de usuario.", show_default=False)]
UsernameOption = Annotated[str | None, typer.Option("--username", "-u", help="Nombre de usuario.")]


@users_app.command("deactivate")
def deactivate_user(
    username: UsernameArgument = None,
    username_option: UsernameOption = None,
    as_json: JsonFlag = False,
    data_dir: DataDir = None,
) -> None:
    """Deactivate a user and revoke all of its keys, at once."""
    with _session(data_dir) as session:
        user = session.directory.deactivate(_target(username, username_option))
        session.audited("deactivate", user.username)
    if as_json:
        typer.echo(orjson.dumps(user.to_dict()).decode())
        return
    console.print(f"Usuario [bold]{user.username}[/bold] desactivado; sus claves ya no sirven.")


@users_app.command("rotate-key")
def rotate_key(
    username: UsernameArgument = None,
    username_option: UsernameOption = None,
    as_json: JsonFlag = False,
    data_dir: DataDir = None,
) -> None:
    """Revoke every key of a user and print a new one (shown this once only)."""
    with _session(data_dir) as session:
        name = _target(username, username_option)
        issued = session.directory.rotate_key(name)
        user = session.directory.get_user(name)
        session.audited("rotate-key", user.username, key_id=issued.key_id)
    _print_key(user, issued, as_json)


@users_app.command("revoke-key")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="Identificador público de la clave (cm_<id>_...).")],
    data_dir: DataDir = None,
) -> None:
    """Revoke one key by its public id."""
    with _session(data_dir) as session:
        info = session.directory.revoke_key(key_id)
        session.audited("revoke-key", key_id)
    console.print(f"Clave {info.id} revocada.")


# --- setup-secure / check-secure ---------------------------------------------------------------------


def secure_env_text(*, environment: str, host: str, now: datetime | None = None) -> str:
    """The text of a new ``.env`` with freshly generated secrets."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"# Generado por `callmanager setup-secure` el {stamp}. Nunca lo suba al repositorio.",
            f"CALLMANAGER_ENVIRONMENT={environment}",
            f"CALLMANAGER_HOST={host}",
            "ENABLE_AUTH=true",
            f"CALLMANAGER_SECRET_KEY={secrets.token_urlsafe(48)}",
            "# Contraseña de PostgreSQL para deploy/docker-compose.yml (modo distribuido)",
            f"POSTGRES_PASSWORD={secrets.token_urlsafe(32)}",
            "",
        ]
    )


def write_secure_env(directory: Path, *, force: bool, environment: str, host: str) -> Path:
    """Write ``directory/.env`` readable by its owner only; ``FileExistsError`` unless ``force``."""
    target = directory / ENV_FILE
    if target.exists() and not force:
        raise FileExistsError(target)
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f".env.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secure_env_text(environment=environment, host=host))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    target.chmod(0o600)
    return target


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def setup_secure(
    directory: Annotated[Path, typer.Option("--dir", help="Dónde escribir .env.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Reemplazar un .env existente.")] = False,
    environment: Annotated[
        Environment, typer.Option("--environment", help="Entorno a configurar.")
    ] = Environment.PRODUCTION,
    host: Annotated[str, typer.Option("--host", help="Interfaz donde escuchará el servidor.")] = "127.0.0.1",
) -> None:
    """Write .env with generated secrets (mode 600); refuses to overwrite one without --force."""
    try:
        target = write_secure_env(directory, force=force, environment=environment.value, host=host)
    except FileExistsError as exc:
        console.print(f"[red]{directory / ENV_FILE} ya existe;[/red] use --force para reemplazarlo.")
        raise typer.Exit(1) from exc
    console.print(f"[green]Creado {target}[/green] (permisos 600, secretos generados; no se muestran).")
    console.print("Siguiente paso: callmanager users create --username <usuario> --role TI")


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem ``check-secure`` found; errors make it fail."""

    severity: Severity
    message: str


class _GivenSettings(Settings):
    """Settings from the mapping passed in only (no process environment, no ``.env`` of the cwd)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def check_secure(directory: Path, environ: Mapping[str, str]) -> list[Finding]:
    """What is unsafe about the configuration in ``directory/.env`` overlaid with ``environ``."""
    findings: list[Finding] = []
    env_file = directory / ENV_FILE
    from_file: dict[str, str] = {}
    if env_file.is_file():
        from_file = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        findings += _git_findings(directory)
    values = {k.upper(): v for k, v in {**from_file, **environ}.items()}
    try:
        settings = _GivenSettings(**_for_settings(values))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return [*findings, Finding(Severity.ERROR, f"configuración inválida: {problems}")]
    production = settings.environment == "production"
    if env_file.is_file() and os.name == "posix" and env_file.stat().st_mode & 0o077:
        findings.append(
            Finding(
                Severity.ERROR if production else Severity.WARNING,
                f"{env_file} lo pueden leer otros usuarios (permisos "
                f"{oct(env_file.stat().st_mode & 0o777)}); use chmod 600",
            )
        )
    if not settings.enable_auth and not settings.is_loopback:
        findings.append(
            Finding(
                Severity.ERROR,
                f"autenticación desactivada (ENABLE_AUTH=false) escuchando en {settings.host}: "
                "sólo se permite en 127.0.0.1",
            )
        )
    elif not settings.enable_auth and production:
        findings.append(Finding(Severity.WARNING, "autenticación desactivada en producción (sólo loopback)"))
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
    findings += _secret_findings("CALLMANAGER_SECRET_KEY", secret, SECRET_MIN_LENGTH, production)
    if "POSTGRES_PASSWORD" in values:
        findings += _secret_findings(
            "POSTGRES_PASSWORD", values["POSTGRES_PASSWORD"], PASSWORD_MIN_LENGTH, production
        )
    if settings.database_url:
        password = sa.make_url(settings.database_url).password
        if password is not None:
            findings += _secret_findings(
                "la contraseña de CALLMANAGER_DATABASE_URL", str(password), PASSWORD_MIN_LENGTH, production
            )
    return findings


def _for_settings(values: Mapping[str, str]) -> dict[str, Any]:
    """Only the names Settings reads (any of a field's aliases), so unknown variables are ignored."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        choices = getattr(field.validation_alias, "choices", None) or [name]
        names.update(str(choice).upper() for choice in choices)
    return {k: v for k, v in values.items() if k in names}


def _secret_findings(name: str, value: str, shortest: int, production: bool) -> list[Finding]:
    lowered = value.strip().casefold()
    if not lowered:
        problem = "no está definida"
    elif lowered in _KNOWN_DEFAULTS or any(marker in lowered for marker in _DEFAULT_MARKERS):
        problem = "tiene un valor por defecto o de ejemplo"
    elif len(value) < shortest:
        problem = f"es demasiado corta ({len(value)} caracteres; mínimo {shortest})"
    elif len(set(value)) < 8:
        problem = "parece poco aleatoria"
    else:
        return []
    hint = " (genere una con `callmanager setup-secure`)"
    return [Finding(Severity.ERROR if production else Severity.WARNING, f"{name} {problem}{hint}")]


def _git_findings(directory: Path) -> list[Finding]:
    git = shutil.which("git")
    if git is None:
        return []
    tracked = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
        [git, "-C", str(directory), "ls-files", "--error-unmatch", "--", ENV_FILE],
        capture_output=True,
        check=False,
    )
    if tracked.returncode == 0:
        return [
            Finding(
                Severity.ERROR,
                f"{directory / ENV_FILE} está versionado en git: quítelo (git rm --cached .env), "
                "cambie todos sus secretos y añádalo a .gitignore",
            )
        ]
    ignored = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
        [git, "-C", str(directory), "check-ignore", "-q", "--", ENV_FILE],
        capture_output=True,
        check=False,
    )
    if ignored.returncode == 1:
        return [Finding(Severity.WARNING, f"{directory / ENV_FILE} no está en .gitignore")]
    return []


def check_secure_command(
    directory: Annotated[Path, typer.Option("--dir", help="Carpeta con el .env a revisar.")] = Path("."),
) -> None:
    """Fail when .env is tracked by git, secrets are defaults or too short in production, or auth is off."""
    findings = check_secure(directory, os.environ)
    for finding in findings:
        colour = "red" if finding.severity is Severity.ERROR else "yellow"
        label = "ERROR" if finding.severity is Severity.ERROR else "aviso"
        console.print(f"[{colour}]{label}:[/{colour}] {finding.message}")
    if any(f.severity is Severity.ERROR for f in findings):
        raise typer.Exit(1)
    console.print("[green]Configuración segura.[/green]")
