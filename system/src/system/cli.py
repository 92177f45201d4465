"""The ``callmanager`` command: run the system, one service, a worker, or maintenance tasks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from kernel.logs import configure_logging
from kernel.settings import Settings
from system.admin import check_secure_command, setup_secure, users_app
from system.bootstrap import ConfigurationError, Infrastructure, Mode, build_infrastructure
from system.dnc_cli import dnc_app
from system.generate_cli import generate
from system.transfer_cli import export_file, import_file

app = typer.Typer(
    name="callmanager",
    help="CallManager: gestión de contactos para call centers.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


class Service(StrEnum):
    CONTACTS = "contacts"
    GATEWAY = "gateway"
    GENERATOR = "generator"
    IMPORTEXPORT = "importexport"
    BACKUP = "backup"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and ``.env``, with command-line overrides that were given."""
    given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValueError as exc:
        console.print(f"[red]Configuración inválida:[/red] {exc}")
        raise typer.Exit(2) from exc


@contextmanager
def operator_errors() -> Iterator[None]:
    """Turn a configuration problem into a red message and exit code 2 instead of a traceback."""
    try:
        yield
    except ConfigurationError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def open_configured(settings: Settings) -> Infrastructure:
    """The migrated infrastructure these settings name: PostgreSQL + Redis when both are set, else SQLite."""
    mode = Mode.DISTRIBUTED if settings.database_url and settings.redis_url else Mode.EMBEDDED
    with operator_errors():
        return build_infrastructure(settings, mode, migrate=True)


@contextmanager
def own_embedded_folder(settings: Settings) -> Iterator[None]:
    """Hold the embedded data folder for a command that rewrites its database (migrations, a read-model
    rebuild), refusing with exit code 1 while ``callmanager up`` (or another such command) holds it.
    Distributed mode has no folder to hold: its migrations serialise in the database."""
    if settings.database_url and settings.redis_url:
        yield
        return
    from system.ownership import FolderInUse, hold_folder

    try:
        owner = hold_folder(settings.data_dir)
    except FolderInUse as exc:
        console.print(f"[red]{exc}[/red] Deténgalo antes de ejecutar este comando.", soft_wrap=True)
        raise typer.Exit(1) from exc
    try:
        yield
    finally:
        owner.release()


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Interfaz donde escuchar (CALLMANAGER_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Puerto HTTP (CALLMANAGER_PORT, 5000).")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Carpeta de datos (CALLMANAGER_DATA_DIR, ./var).")
    ] = None,
    client: Annotated[
        bool,
        typer.Option("--client/--no-client", help="Abrir también el cliente de escritorio si hay pantalla."),
    ] = True,
) -> None:
    """Run every server service in one process (embedded mode: SQLite in the data dir, in-process bus)."""
    from system.desk import start_client_beside
    from system.server import serve_embedded

    settings = load_settings(host=host, port=port, data_dir=data_dir)
    configure_logging(settings)
    desk_client = start_client_beside(settings) if client else None
    try:
        with operator_errors():
            serve_embedded(settings)
    finally:
        if desk_client is not None and desk_client.poll() is None:
            desk_client.terminate()


@app.command()
def serve(
    service: Annotated[Service, typer.Argument(help="Servicio a ejecutar.")],
    host: Annotated[str | None, typer.Option(help="Interfaz donde escuchar.")] = None,
    port: Annotated[int | None, typer.Option(help="Puerto HTTP.")] = None,
) -> None:
    """Run one service in distributed mode (PostgreSQL and Redis from settings).

    contacts and gateway serve HTTP; generator and importexport consume their own rq queue; backup takes
    a verified pg_dump every BACKUP_INTERVAL_MINUTES into CALLMANAGER_BACKUP_DIR.
    """
    from system.server import serve_distributed

    settings = load_settings(host=host, port=port)
    configure_logging(settings)
    with operator_errors():
        serve_distributed(settings, service.value)


@app.command()
def migrate(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Carpeta de datos (modo embebido).")
    ] = None,
) -> None:
    """Apply every database migration (PostgreSQL when CALLMANAGER_DATABASE_URL is set, else SQLite)."""
    settings = load_settings(data_dir=data_dir)
    configure_logging(settings)
    with own_embedded_folder(settings):
        infra = open_configured(settings)
        infra.close()
    console.print(f"[green]Migraciones aplicadas[/green] ({infra.dialect.name})")


@app.command("rebuild-contacts")
def rebuild_contacts(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Carpeta de datos (modo embebido).")
    ] = None,
) -> None:
    """Rebuild the contacts read model from the event store (the same rows the live projection wrote)."""
    from contacts.dialect import read_model_dialect
    from contacts.projection import rebuild

    settings = load_settings(data_dir=data_dir)
    configure_logging(settings)
    with own_embedded_folder(settings):
        infra = open_configured(settings)
        try:
            replayed = rebuild(infra.engine, dialect=read_model_dialect(infra.dialect))
        finally:
            infra.close()
    console.print(f"[green]Modelo de lectura de contactos reconstruido[/green] ({replayed:,} eventos)")


@app.command()
def worker(
    queues: Annotated[
        list[str] | None,
        typer.Option("--queue", help="Servicios cuyas colas atender (generator, importexport; ambos)."),
    ] = None,
) -> None:
    """Run an rq worker on the generator and import/export queues (distributed mode; one process for both)."""
    from system.server import run_worker

    settings = load_settings()
    configure_logging(settings)
    with operator_errors():
        run_worker(settings, queues or [])


config_app = typer.Typer(help="Configuración efectiva.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def config_check(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Carpeta de datos.")] = None,
) -> None:
    """Validate the settings and print each effective one by name, secrets masked (exit 2 when invalid)."""
    from kernel.settings import masked_view

    settings = load_settings(data_dir=data_dir)
    mode = "distribuido" if settings.database_url and settings.redis_url else "embebido"
    for name, value in masked_view(settings).items():
        typer.echo(f"{name}={value}")
    console.print(
        f"Modo {mode}. Los cambios en .env o en el entorno se aplican al reiniciar cada proceso; las "
        "duraciones de bloqueo y los límites de peticiones también se cambian en caliente (POST /config).",
        soft_wrap=True,
    )


@config_app.command("reset")
def config_reset(
    names: Annotated[list[str], typer.Argument(help="Ajustes a devolver al entorno, p. ej. rate_limit.")],
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Carpeta de datos.")] = None,
) -> None:
    """Hand runtime settings changed through POST /config back to the environment (.env) value."""
    from gateway.runtime import InvalidRuntimeSettings, reset_runtime
    from kernel.envelope import Actor

    settings = load_settings(data_dir=data_dir)
    configure_logging(settings)
    infra = open_configured(settings)
    try:
        keys = [name.strip().lower().removeprefix("callmanager_") for name in names]
        try:
            overridden = reset_runtime(infra.store, keys, Actor(user_id="cli", role="TI"))
        except InvalidRuntimeSettings as exc:
            console.print(f"[red]{exc}[/red]", soft_wrap=True)
            raise typer.Exit(2) from None
    finally:
        infra.close()
    for name in keys:
        state = "vuelve al valor del entorno" if name in overridden else "ya usaba el valor del entorno"
        console.print(f"{name}: {state}", soft_wrap=True)
    console.print("Los servidores en marcha lo aplican en unos segundos.", soft_wrap=True)


deploy_app = typer.Typer(help="Despliegue en un servidor Linux.", no_args_is_help=True)
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("render")
def deploy_render(
    out: Annotated[Path, typer.Option("--out", help="Carpeta donde escribir los archivos.")],
    server_name: Annotated[str, typer.Option(help="Nombre del servidor en el certificado.")] = (
        "callmanager.example.lan"
    ),
    executable: Annotated[str, typer.Option(help="Ruta del comando callmanager en el servidor.")] = (
        "/opt/callmanager/venv/bin/callmanager"
    ),
    user: Annotated[str, typer.Option(help="Usuario del sistema que ejecuta los servicios.")] = "callmanager",
    config_dir: Annotated[str, typer.Option(help="Carpeta de callmanager.env y secrets.env.")] = (
        "/etc/callmanager"
    ),
    data_dir: Annotated[str, typer.Option(help="CALLMANAGER_DATA_DIR.")] = "/var/lib/callmanager",
    backup_dir: Annotated[str, typer.Option(help="CALLMANAGER_BACKUP_DIR.")] = "/var/backups/callmanager",
    contacts_port: Annotated[int, typer.Option(help="Puerto interno de contacts.")] = 5101,
    gateway_port: Annotated[
        list[int] | None, typer.Option("--gateway-port", help="Un puerto por réplica del gateway.")
    ] = None,
    proxy: Annotated[str, typer.Option(help="Dirección desde la que conecta nginx.")] = "127.0.0.1",
    upstream_host: Annotated[str, typer.Option(help="Dirección de este servidor vista por nginx.")] = (
        "127.0.0.1"
    ),
    tls_certificate: Annotated[str, typer.Option(help="Certificado TLS (cadena completa).")] = (
        "/etc/ssl/callmanager/fullchain.pem"
    ),
    tls_certificate_key: Annotated[str, typer.Option(help="Clave privada TLS.")] = (
        "/etc/ssl/callmanager/privkey.pem"
    ),
    max_upload_mb: Annotated[int, typer.Option(help="MAX_UPLOAD_MB (y el límite de nginx).")] = 100,
    metrics_allow: Annotated[
        list[str] | None, typer.Option("--metrics-allow", help="Quién puede leer /metrics por nginx.")
    ] = None,
) -> None:
    """Write systemd units, callmanager.env and an nginx site for a Linux server into ``--out``."""
    from system.render import ServerLayout, render, unit_names

    layout = ServerLayout(
        server_name=server_name,
        executable=executable,
        user=user,
        config_dir=config_dir,
        data_dir=data_dir,
        backup_dir=backup_dir,
        contacts_port=contacts_port,
        gateway_ports=tuple(gateway_port or [5000]),
        proxy_address=proxy,
        upstream_host=upstream_host,
        tls_certificate=tls_certificate,
        tls_certificate_key=tls_certificate_key,
        max_upload_mb=max_upload_mb,
        metrics_allow=tuple(metrics_allow or ["127.0.0.1"]),
    )
    try:
        files = render(layout)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        typer.echo(out / name)
    units = " ".join(unit_names(layout))
    console.print(
        f"Instale las unidades en /etc/systemd/system, callmanager.env en {config_dir}, y luego:\n"
        f"  systemctl daemon-reload && systemctl enable --now callmanager.target {units}",
        soft_wrap=True,
        markup=False,
    )


app.add_typer(users_app, name="users")
app.add_typer(dnc_app, name="dnc")
app.command("setup-secure")(setup_secure)
app.command("check-secure")(check_secure_command)
app.command("generate")(generate)
app.command("import")(import_file)
app.command("export")(export_file)


backup_app = typer.Typer(
    help="Copias de seguridad: tomar una ahora (sin subcomando), listarlas, verificarlas.",
    no_args_is_help=False,
)
app.add_typer(backup_app, name="backup")
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Carpeta de datos.")]


@backup_app.callback(invoke_without_command=True)
def backup(ctx: typer.Context, data_dir: DataDir = None) -> None:
    """Take a verified backup now (SQLite online backup, or pg_dump in distributed mode), then prune."""
    if ctx.invoked_subcommand is not None:
        return
    from system.backup import BackupError, prune_backups, take_backup

    settings = load_settings(data_dir=data_dir)
    try:
        taken = take_backup(settings)
        removed = prune_backups(settings)
    except BackupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(
        f"[green]Copia creada y verificada:[/green] {taken.path} ({taken.size:,} bytes)", soft_wrap=True
    )
    if removed:
        console.print(f"Copias antiguas eliminadas: {len(removed)}")


@backup_app.command("list")
def backup_list(data_dir: DataDir = None) -> None:
    """List the backups in the backup folder, newest first (one per line: time, bytes, path)."""
    from system.backup import list_backups

    settings = load_settings(data_dir=data_dir)
    found = list_backups(settings)
    if not found:
        console.print(f"No hay copias en {settings.backups_path}")
    for item in found:
        typer.echo(f"{item.taken_at:%Y-%m-%d %H:%M:%S}Z  {item.size:>14,}  {item.path}")


@backup_app.command("verify")
def backup_verify(file: Annotated[Path, typer.Argument(help="Copia a verificar (.db o .dump).")]) -> None:
    """Open a copy and check it: integrity, event and contact counts (SQLite) or pg_restore --list (dump)."""
    from system.backup import BackupError, verify_backup

    try:
        result = verify_backup(file)
    except BackupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    typer.echo(f"{file}: {result.describe()}")


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="Copia a restaurar (callmanager-AAAAMMDD-HHMMSS.db o .dump).")],
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Carpeta de datos.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="No pedir confirmación.")] = False,
) -> None:
    """Replace the database with a backup.

    SQLite: refused while the system runs; the current database is kept aside. PostgreSQL: pg_restore into
    the configured database, which must be empty.
    """
    from system.backup import BackupError, is_postgresql, restore_backup, restore_pg_backup

    settings = load_settings(data_dir=data_dir)
    if is_postgresql(settings):
        try:
            restore_pg_backup(settings, file)
        except BackupError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
        console.print(
            f"[green]Restaurado[/green] {file} en la base de datos vacía configurada.", soft_wrap=True
        )
        return
    if not yes and not typer.confirm(f"¿Reemplazar {settings.sqlite_path} con {file}?"):
        raise typer.Exit(1)
    try:
        previous = restore_backup(settings, file)
    except BackupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"[green]Restaurado[/green] {file} en {settings.sqlite_path}.")
    if previous is not None:
        console.print(
            f"La base anterior quedó aparte en {previous}. Para deshacer, con CallManager detenido:\n"
            f"  callmanager restore {previous} --data-dir {settings.data_dir}",
            soft_wrap=True,
            markup=False,
        )
