"""``callmanager dnc``: the do-not-call list from the server's console.

``list``, ``add PHONE --reason``, ``remove PHONE --reason``, ``import FILE`` and ``export FILE`` work on the
system's own database (``CALLMANAGER_DATABASE_URL`` when set, else the SQLite file of the data dir, as
``callmanager users`` and ``callmanager import`` do), acting as ``cli:<operating-system account>``. Every
change is audited twice, as over HTTP: per number in ``dnc_changes`` (by the list itself) and once per
command in the gateway's audit log (method ``CLI``, action ``dnc.manage``).
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import sqlalchemy as sa
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from contacts.commands import Caller
from contacts.dnc import DncEntry, DncList
from contacts.errors import ContactError
from gateway.audit import AuditEntry, AuditLog, Outcome
from gateway.roles import Capability
from importexport.dnclist import read_dnc_file
from importexport.pipeline import reader_limits
from importexport.spreadsheets import FileRejected, spanish_count
from importexport.views import dnc_export_file
from kernel.logs import configure_logging
from kernel.roles import Role
from kernel.settings import Settings
from system.admin import open_database
from system.jobregistry import max_upload_bytes

console = Console(stderr=True, soft_wrap=True)
dnc_app = typer.Typer(
    help="Lista de no llamar: ver, añadir, quitar, importar de un archivo y exportar.", no_args_is_help=True
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Carpeta de datos del modo embebido (CALLMANAGER_DATA_DIR, ./var)."),
]
Reason = Annotated[str, typer.Option("--reason", help="Motivo (queda en la auditoría).")]
SHOWN_ROWS = 10
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class _Session:
    """The list, the audit log and the caller one command works with."""

    settings: Settings
    dnc: DncList
    audit: AuditLog
    caller: Caller

    def audited(self, command: str, **detail: Any) -> None:
        """Record the command in the gateway's audit log, as a request to ``/dnc`` would be."""
        self.audit.record(
            AuditEntry(
                method="CLI",
                path=f"callmanager dnc {command}",
                outcome=Outcome.ALLOWED,
                status_code=0,
                action=Capability.MANAGE_DNC.value,
                username=self.caller.username,
                role=self.caller.role.value,
                source=self.caller.username,
                detail=detail,
            )
        )


@contextmanager
def _session(data_dir: Path | None) -> Iterator[_Session]:
    try:
        given: dict[str, Any] = {"data_dir": data_dir} if data_dir is not None else {}
        settings = Settings(**given)
    except ValidationError as exc:
        _fail(f"Configuración inválida: {exc}", 2)
    configure_logging(settings)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        engine = open_database(settings)
    except sa.exc.SQLAlchemyError as exc:
        _fail(f"No se pudo abrir la base de datos: {type(exc).__name__}", 2)
    try:
        yield _Session(settings, DncList(engine), AuditLog(engine), _cli_caller())
    except ContactError as exc:
        _fail(exc.message, 1)
    finally:
        engine.dispose()


def _cli_caller() -> Caller:
    """Whoever runs the command on the server's console acts with TI rights (as ``callmanager users``)."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "desconocido"
    return Caller(user_id="cli", username=f"cli:{who}", role=Role.TI)


def _fail(message: str, code: int) -> NoReturn:
    console.print(f"[red]{message}[/red]", markup=True)
    raise typer.Exit(code)


@dnc_app.command("list")
def list_numbers(
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="Cuántos, los más nuevos primero.")
    ] = 50,
    data_dir: DataDir = None,
) -> None:
    """Show the listed numbers, newest first."""
    with _session(data_dir) as session:
        entries = session.dnc.entries(limit)
    table = Table("Teléfono", "Motivo", "Añadido por", "Fecha (UTC)")
    for entry in entries:
        table.add_row(entry.phone_e164, entry.reason, entry.added_by_name, f"{entry.added_at:%Y-%m-%d %H:%M}")
    Console(soft_wrap=True).print(table)
    console.print(f"{spanish_count(len(entries))} números")


@dnc_app.command("add")
def add_number(
    phone: Annotated[str, typer.Argument(help="Teléfono, escrito como sea (8812-3456, +506 8812 3456).")],
    reason: Reason = "",
    data_dir: DataDir = None,
) -> None:
    """Put a number on the list (or change its reason)."""
    with _session(data_dir) as session:
        entry = session.dnc.add(phone, reason, session.caller, datetime.now(UTC))
        session.audited("add", phone=entry.phone_e164, reason=entry.reason)
    console.print(f"[green]{entry.phone_e164}[/green] está en la lista de no llamar.")


@dnc_app.command("remove")
def remove_number(
    phone: Annotated[str, typer.Argument(help="Teléfono a quitar de la lista.")],
    reason: Reason = "",
    data_dir: DataDir = None,
) -> None:
    """Take a number off the list (exit code 1 when it was not on it)."""
    with _session(data_dir) as session:
        removed = session.dnc.remove(phone, reason, session.caller, datetime.now(UTC))
        if removed:
            session.audited("remove", phone=phone, reason=reason)
    if not removed:
        _fail(f"El número {phone} no está en la lista de no llamar.", 1)
    console.print(f"{phone} ya no está en la lista de no llamar.")


@dnc_app.command("import")
def import_numbers(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Archivo .csv, .xlsx o .xls.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Motivo para las filas que no traen uno (columna «Motivo»).")
    ] = "",
    data_dir: DataDir = None,
) -> None:
    """Add the numbers of a file (a phone column and, optionally, «Motivo»); the listed ones are left."""
    with _session(data_dir) as session:
        limits = reader_limits(max_upload_bytes(session.settings), session.settings.max_import_rows)
        try:
            found = read_dnc_file(file, limits, session.settings.max_import_rows)
        except FileRejected as exc:
            _fail(exc.reason, 1)
        entries = [(number.e164, number.reason or reason) for number in found.numbers]
        added = set(session.dnc.add_many(entries, session.caller, datetime.now(UTC)))
        session.audited(
            "import",
            file=file.name,
            added=len(added),
            already_listed=len(found.numbers) - len(added),
            invalid=len(found.invalid),
        )
    console.print(
        f"[green]{spanish_count(len(added))} añadidos[/green], "
        f"{spanish_count(len(found.numbers) - len(added))} ya estaban, "
        f"{spanish_count(len(found.invalid))} filas no válidas, "
        f"{spanish_count(len(found.repeated))} repetidas ({spanish_count(found.total)} filas leídas)."
    )
    if found.invalid:
        table = Table("Fila", "Teléfono", "Motivo")
        for issue in found.invalid[:SHOWN_ROWS]:
            table.add_row(str(issue.row), issue.phone, issue.message)
        console.print(table)


@dnc_app.command("export")
def export_numbers(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="Archivo de salida .csv o .xlsx.")],
    data_dir: DataDir = None,
) -> None:
    """Write the whole list to .csv or .xlsx (no cell can run a formula)."""
    export_format = file.suffix.lower().lstrip(".")
    if export_format not in ("csv", "xlsx"):
        _fail("el archivo de salida debe terminar en .csv o .xlsx", 2)
    with _session(data_dir) as session:
        entries: list[DncEntry] = []
        while page := session.dnc.entries(_PAGE, len(entries)):
            entries.extend(page)
            if len(page) < _PAGE:
                break
        file.write_bytes(dnc_export_file(entries, export_format))
        session.audited("export", file=file.name, numbers=len(entries))
    console.print(f"[green]{spanish_count(len(entries))} números exportados[/green] a {file}")
