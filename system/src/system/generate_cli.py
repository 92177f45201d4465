"""``callmanager generate``: Costa Rican mobile numbers from the command line, with a progress bar.

Without ``--save`` the numbers are drawn here and written to ``--out`` (``.csv`` or ``.xlsx``, the same
writers as the contact export) or, without ``--out``, printed one per line. With ``--save`` they become
contacts in the system's database (``CALLMANAGER_DATABASE_URL`` when set, else the SQLite file of the
data dir, as ``callmanager users`` does), through the contacts service's batch command, never colliding
with an existing contact. A summary (count and share per operator, redraws, saved, list) goes to stderr.
"""

from __future__ import annotations

import getpass
import logging
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from pydantic import ValidationError
from rich import progress as rich_progress
from rich.console import Console
from rich.table import Table

from contacts.client import LocalContactsClient
from contacts.commands import Caller
from contacts.dialect import read_model_dialect
from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.statuses import DEFAULT_CATALOGUE
from generator.batch import MAX_COUNT, GenerationRequest, GenerationRun, Progress, run_generation
from generator.draw import GenerationError, Method
from generator.generatejob import TableWriter, number_rows, write_numbers
from generator.service import weights_from_settings
from importexport.writers import write_csv, write_xlsx
from kernel.logs import configure_logging
from kernel.roles import Role
from kernel.settings import Settings
from kernel.store import EventStore, store_dialect
from system.admin import open_database
from system.tuning import BulkTuning

console = Console(stderr=True, soft_wrap=True)

WRITERS: dict[str, TableWriter] = {".csv": write_csv, ".xlsx": write_xlsx}
PHASES = {
    "generating": "Generando",
    "checking": "Comprobando contactos existentes",
    "saving": "Guardando contactos",
    "writing": "Escribiendo archivo",
}


def generate(
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, max=MAX_COUNT, help="Cuántos números (1..1.000.000).")
    ],
    method: Annotated[
        Method, typer.Option("--method", "-m", help="Reparto entre operadores.")
    ] = Method.STRATIFIED,
    save: Annotated[
        bool, typer.Option("--save", help="Guardarlos como contactos (sin chocar con los existentes).")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Archivo de salida .csv o .xlsx.")] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Semilla, para repetir una generación.")
    ] = None,
    list_name: Annotated[
        str | None, typer.Option("--list", help="Lista de los contactos guardados (gen-... por defecto).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Carpeta de datos del modo embebido (CALLMANAGER_DATA_DIR, ./var)."),
    ] = None,
) -> None:
    """Generate valid Costa Rican mobile numbers; optionally save them as contacts or write a file."""
    writer = _writer_for(out)
    settings = _settings(data_dir)
    configure_logging(settings)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    request = GenerationRequest(count, method, save, seed, list_name=list_name or "")
    with _progress_bar() as bar:
        task = bar.add_task(PHASES["generating"], total=count)

        def progress(phase: str, done: int, total: int) -> None:
            bar.update(task, description=PHASES.get(phase, phase), completed=done, total=total)

        run = _run(request, settings, progress)
        if out is not None and writer is not None:
            write_numbers(run, out, writer, progress)
        bar.update(task, completed=count, total=count)
    if out is None and not save:
        typer.echo("\n".join(row[1] for row in number_rows(run)))
    _print_summary(run, out)


def _writer_for(out: Path | None) -> TableWriter | None:
    if out is None:
        return None
    writer = WRITERS.get(out.suffix.lower())
    if writer is None:
        console.print("[red]--out debe terminar en .csv o .xlsx[/red]")
        raise typer.Exit(2)
    return writer


def _settings(data_dir: Path | None) -> Settings:
    try:
        given: dict[str, Any] = {"data_dir": data_dir} if data_dir is not None else {}
        return Settings(**given)
    except ValidationError as exc:
        console.print(f"[red]Configuración inválida:[/red] {exc}")
        raise typer.Exit(2) from exc


def _progress_bar() -> rich_progress.Progress:
    return rich_progress.Progress(
        rich_progress.TextColumn("{task.description}"),
        rich_progress.BarColumn(),
        rich_progress.MofNCompleteColumn(),
        rich_progress.TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _run(request: GenerationRequest, settings: Settings, progress: Progress) -> GenerationRun:
    """Generate (and save, on request) with the weights of ``settings``."""
    weights = weights_from_settings(settings)
    try:
        if not request.save:
            return run_generation(request, weights, progress=progress)
        try:
            engine = open_database(settings)
        except sa.exc.SQLAlchemyError as exc:
            console.print(f"[red]No se pudo abrir la base de datos:[/red] {type(exc).__name__}")
            raise typer.Exit(2) from exc
        try:
            store = EventStore(engine, store_dialect(engine))
            read_model = read_model_dialect(store.dialect)
            policy = LockPolicy(settings.default_lock_duration_minutes, settings.max_lock_duration_minutes)
            contacts = LocalContactsClient(
                ContactsService(
                    engine, store, policy, DEFAULT_CATALOGUE, dialect=read_model, tuning=BulkTuning()
                ),
                ContactQueries(engine, store, DEFAULT_CATALOGUE, dialect=read_model),
            )
            return run_generation(request, weights, contacts, _cli_caller(), progress=progress)
        finally:
            engine.dispose()
    except GenerationError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


def _cli_caller() -> Caller:
    """Whoever runs the command on the server's console acts with TI rights (as ``callmanager users``)."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "desconocido"
    return Caller(user_id="cli", username=f"cli:{who}", role=Role.TI)


def _print_summary(run: GenerationRun, out: Path | None) -> None:
    stats = run.summary()
    table = Table("operador", "cantidad", "porcentaje", title=f"{stats['count']:,} números".replace(",", "."))
    for operator in stats["operators"]:
        table.add_row(
            operator["name"], f"{operator['count']:,}".replace(",", "."), f"{operator['share']:.1%}"
        )
    console.print(table)
    console.print(f"método {stats['method']}, semilla {stats['seed']}, redibujados {stats['redraws']}")
    if run.saved is not None:
        console.print(
            f"guardados {stats['saved']}, ya existían {stats['merged']}, rechazados {stats['rejected']}, "
            f"lista [bold]{run.list_name}[/bold]"
        )
    if out is not None:
        console.print(f"archivo {out}")
