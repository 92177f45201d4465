"""``callmanager import`` and ``callmanager export``: spreadsheets in and out, with progress bars.

Without ``--server`` they work on the system's own database (``CALLMANAGER_DATABASE_URL`` when set,
else the SQLite file of the data dir, as ``callmanager users`` does) through the same pipeline the
import and export jobs run, acting as a TI user named after the operating-system account. With
``--server URL --key KEY`` they go through the gateway like any client: the upload becomes an import
job (its progress polled), the export is streamed or, when the gateway makes it a job, downloaded at
its end.
"""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import sqlalchemy as sa
import typer
from pydantic import ValidationError
from rich import progress as rich_progress
from rich.console import Console
from rich.table import Table

from contacts.client import ContactsClient, LocalContactsClient
from contacts.commands import Caller, MergeMode
from contacts.dialect import read_model_dialect
from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.statuses import DEFAULT_CATALOGUE
from contacts.views import ContactRow
from importexport.export import EXPORT_FORMATS, ExportRequest, expected_total, write_export
from importexport.pipeline import ImportOptions, ImportProgress, import_list_name, reader_limits, run_import
from importexport.report import ImportReport, write_report
from importexport.spreadsheets import FileRejected, spanish_count
from kernel.logs import configure_logging
from kernel.roles import Role
from kernel.settings import Settings
from kernel.store import EventStore, store_dialect
from system.admin import open_database
from system.jobregistry import max_upload_bytes
from system.reader import READER_COMMAND
from system.tuning import BulkTuning

console = Console(stderr=True, soft_wrap=True)

PHASES = {
    "checking": "Revisando el archivo",
    "importing": "Importando",
    "classifying": "Clasificando (prueba)",
    "done": "Terminado",
    "exporting": "Exportando",
    "queued": "En cola",
}
SHOWN_ERRORS = 10
_FINAL = ("finished", "failed", "cancelled")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Carpeta de datos del modo embebido (CALLMANAGER_DATA_DIR, ./var)."),
]
Server = Annotated[
    str | None,
    typer.Option("--server", help="URL del gateway (p. ej. http://10.0.0.5:5000); sin ella, local."),
]
Key = Annotated[
    str | None, typer.Option("--key", envvar="CALLMANAGER_API_KEY", help="Clave API (con --server).")
]


def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Archivo .xlsx, .xls o .csv.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Clasificar las filas sin escribir nada.")
    ] = False,
    list_name: Annotated[
        str | None, typer.Option("--list", help="Lista de los contactos nuevos (imp-... por defecto).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Guardar el informe (.csv o .xlsx) en este archivo.")
    ] = None,
    merge: Annotated[
        MergeMode,
        typer.Option(
            "--merge",
            help="Contactos que ya existen: fill (sólo campos vacíos), overwrite (gana el archivo; "
            "ProjectManager y TI) o skip (no se tocan). Las notas siempre se añaden.",
        ),
    ] = MergeMode.FILL,
    server: Server = None,
    key: Key = None,
    data_dir: DataDir = None,
) -> None:
    """Import contacts from a spreadsheet (every row gets an outcome; re-importing changes nothing)."""
    if report is not None and report.suffix.lower() not in (".csv", ".xlsx"):
        _fail("--report debe terminar en .csv o .xlsx", 2)
    chosen_list = list_name or import_list_name(file.name)
    if server is not None:
        data = _remote_import(server, _required_key(key), file, dry_run, chosen_list, report, merge)
    else:
        data = _local_import(file, dry_run, chosen_list, report, _settings(data_dir), merge)
    _print_import(data)


def export_file(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="Archivo de salida .xlsx o .csv.")],
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Sólo estos estados (repetible).")
    ] = None,
    list_name: Annotated[str | None, typer.Option("--list", help="Sólo esta lista.")] = None,
    operator: Annotated[
        str | None, typer.Option("--operator", help="Sólo este operador (kolbi, telefonica, claro).")
    ] = None,
    server: Server = None,
    key: Key = None,
    data_dir: DataDir = None,
) -> None:
    """Export contacts to .xlsx or .csv (Spanish headers, no cell can run a formula)."""
    export_format = file.suffix.lower().lstrip(".")
    if export_format not in EXPORT_FORMATS:
        _fail("el archivo de salida debe terminar en .xlsx o .csv", 2)
    request = ExportRequest(export_format, tuple(status or ()), list_name, operator)
    if server is not None:
        count: int | None = _remote_export(server, _required_key(key), request, file)
    else:
        count = _local_export(request, file, _settings(data_dir))
    if count is None:
        console.print(f"[green]Exportado[/green] a {file} ({file.stat().st_size / 1e6:.1f} MB)")
    else:
        console.print(f"[green]{spanish_count(count)} contactos exportados[/green] a {file}")


# --- local ------------------------------------------------------------------------------------------


def _settings(data_dir: Path | None) -> Settings:
    try:
        given: dict[str, Any] = {"data_dir": data_dir} if data_dir is not None else {}
        settings = Settings(**given)
    except ValidationError as exc:
        console.print(f"[red]Configuración inválida:[/red] {exc}")
        raise typer.Exit(2) from exc
    configure_logging(settings)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    return settings


class _LocalContacts:
    """The contacts service over the system's database, for one command."""

    def __init__(self, settings: Settings) -> None:
        try:
            self.engine = open_database(settings)
        except sa.exc.SQLAlchemyError as exc:
            _fail(f"No se pudo abrir la base de datos: {type(exc).__name__}", 2)
        store = EventStore(self.engine, store_dialect(self.engine))
        read_model = read_model_dialect(store.dialect)
        policy = LockPolicy(settings.default_lock_duration_minutes, settings.max_lock_duration_minutes)
        self.client: ContactsClient = LocalContactsClient(
            ContactsService(
                self.engine, store, policy, DEFAULT_CATALOGUE, dialect=read_model, tuning=BulkTuning()
            ),
            ContactQueries(self.engine, store, DEFAULT_CATALOGUE, dialect=read_model),
        )

    def __enter__(self) -> ContactsClient:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.engine.dispose()


def _cli_caller() -> Caller:
    """Whoever runs the command on the server's console acts with TI rights (as ``callmanager users``)."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "desconocido"
    return Caller(user_id="cli", username=f"cli:{who}", role=Role.TI)


def _local_import(
    file: Path, dry_run: bool, list_name: str, report: Path | None, settings: Settings, merge: MergeMode
) -> dict[str, Any]:
    options = ImportOptions(
        list_name=list_name,
        dry_run=dry_run,
        merge=merge,
        source_name=file.name,
        max_rows=settings.max_import_rows,
        limits=reader_limits(max_upload_bytes(settings), settings.max_import_rows),
        reader_command=READER_COMMAND,
    )
    with _LocalContacts(settings) as contacts, _bar() as bar:
        task = bar.add_task(PHASES["checking"], total=None)

        def progress(step: ImportProgress) -> None:
            total = step.total or None
            bar.update(task, description=PHASES.get(step.phase, step.phase), completed=step.read, total=total)

        try:
            result: ImportReport = run_import(file, contacts, _cli_caller(), options, progress)
        except FileRejected as exc:
            bar.stop()
            _fail(exc.reason, 1)
    if report is not None:
        write_report(result, report)
    data = result.to_data(limit=SHOWN_ERRORS)
    data["report_file"] = str(report) if report is not None else None
    return data


def _local_export(request: ExportRequest, file: Path, settings: Settings) -> int:
    caller = _cli_caller()
    with _LocalContacts(settings) as contacts, _bar() as bar:
        total = expected_total(contacts, caller, request)
        task = bar.add_task(PHASES["exporting"], total=total or None)

        def counted(rows: Iterator[ContactRow]) -> Iterator[ContactRow]:
            for done, row in enumerate(rows, start=1):
                if done % 2000 == 0:
                    bar.update(task, completed=done, total=max(total, done))
                yield row

        try:
            count = write_export(
                file, counted(contacts.export_contacts(caller, request.filters())), request.format
            )
        except BaseException:
            file.unlink(missing_ok=True)
            raise
        bar.update(task, completed=count, total=count, description=PHASES["done"])
    return count


# --- through the gateway ------------------------------------------------------------------------------


def _required_key(key: str | None) -> str:
    if not key:
        _fail("--server necesita --key (o CALLMANAGER_API_KEY)", 2)
    return key


def _http(server: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.rstrip("/"), headers={"X-API-Key": key}, timeout=httpx.Timeout(60.0, read=600.0)
    )


def _remote_import(
    server: str,
    key: str,
    file: Path,
    dry_run: bool,
    list_name: str,
    report: Path | None,
    merge: MergeMode,
) -> dict[str, Any]:
    try:
        with _http(server, key) as http, _bar() as bar:
            task = bar.add_task("Subiendo", total=None)
            with file.open("rb") as content:
                form = {"list": list_name, "dry_run": "true" if dry_run else "false", "merge": merge.value}
                answer = http.post("/import", files={"file": (file.name, content)}, data=form)
            if answer.status_code != 202:
                bar.stop()
                _fail(_error_message(answer), 1)
            job = _follow(http, answer.json()["id"], bar, task)
            if job["state"] != "finished":
                bar.stop()
                _fail(job.get("error") or f"el trabajo terminó como {job['state']}", 1)
            if report is not None:
                fmt = report.suffix.lower().lstrip(".")
                report.write_bytes(
                    _checked(http.get(f"/jobs/{job['id']}/report", params={"format": fmt})).content
                )
    except httpx.HTTPError as exc:
        _fail(f"No se pudo hablar con {server}: {exc}", 2)
    data: dict[str, Any] = job["report"]
    data["report_file"] = str(report) if report is not None else None
    return data


def _remote_export(server: str, key: str, request: ExportRequest, file: Path) -> int | None:
    """Export through the gateway; the row count when the gateway made it a job (it streams otherwise)."""
    params: list[tuple[str, str | int | float | bool | None]] = [("format", request.format)]
    params += [("status", status) for status in request.statuses]
    params += [
        (name, value)
        for name, value in (("list", request.list_name), ("operator", request.operator))
        if value
    ]
    try:
        with _http(server, key) as http, _bar(download=True) as bar:
            task = bar.add_task(PHASES["exporting"], total=None)
            with http.stream("GET", "/export", params=params) as answer:
                if answer.status_code == 200:
                    _save(answer, file, bar, task)
                    return None
                answer.read()
                if answer.status_code != 202:
                    bar.stop()
                    _fail(_error_message(answer), 1)
                job_id = answer.json()["id"]
            job = _follow(http, job_id, bar, task)
            if job["state"] != "finished":
                bar.stop()
                _fail(job.get("error") or f"el trabajo terminó como {job['state']}", 1)
            with http.stream("GET", f"/jobs/{job_id}/download") as download:
                _checked(download)
                _save(download, file, bar, task)
            return int(job["report"]["rows"])
    except httpx.HTTPError as exc:
        file.unlink(missing_ok=True)
        _fail(f"No se pudo hablar con {server}: {exc}", 2)


def _follow(
    http: httpx.Client, job_id: str, bar: rich_progress.Progress, task: rich_progress.TaskID
) -> dict[str, Any]:
    """Poll the job until it ends, moving the bar with its progress."""
    while True:
        job: dict[str, Any] = _checked(http.get(f"/jobs/{job_id}")).json()
        done, total = job["progress"]["done"], job["progress"]["total"]
        phase = "done" if job["state"] in _FINAL else ("queued" if job["state"] == "queued" else job["kind"])
        description = PHASES.get(
            {"import": "importing", "export": "exporting"}.get(phase, phase), "Trabajando"
        )
        bar.update(task, description=description, completed=done, total=total or None)
        if job["state"] in _FINAL:
            return job
        time.sleep(0.3)


def _save(
    answer: httpx.Response, file: Path, bar: rich_progress.Progress, task: rich_progress.TaskID
) -> None:
    """Stream a response body into ``file`` (removed again if the transfer fails)."""
    received = 0
    try:
        with file.open("wb") as out:
            for chunk in answer.iter_bytes(1 << 16):
                out.write(chunk)
                received += len(chunk)
                bar.update(task, description="Descargando", completed=received)
    except BaseException:
        file.unlink(missing_ok=True)
        raise


def _checked(answer: httpx.Response) -> httpx.Response:
    if not answer.is_success:
        answer.read()
        _fail(_error_message(answer), 1)
    return answer


def _error_message(answer: httpx.Response) -> str:
    try:
        message = answer.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = answer.text[:300]
    return f"{message} (HTTP {answer.status_code})"


# --- output -------------------------------------------------------------------------------------------


def _bar(download: bool = False) -> rich_progress.Progress:
    amount: rich_progress.ProgressColumn = (
        rich_progress.DownloadColumn() if download else rich_progress.MofNCompleteColumn()
    )
    return rich_progress.Progress(
        rich_progress.TextColumn("{task.description}"),
        rich_progress.BarColumn(),
        amount,
        rich_progress.TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _print_import(data: dict[str, Any]) -> None:
    mode = _MERGE_LABELS.get(data.get("merge") or "fill", data.get("merge") or "fill")
    table = Table("resultado", "filas", title=f"{data['source']} → lista {data['list']} (modo {mode})")
    if data.get("dry_run"):
        rows = [
            ("se insertarían", data["inserted"]),
            ("se actualizarían", data["updated"]),
            ("se añadirían a la lista (sin otros cambios)", data.get("listed", 0)),
            ("quedarían sin cambios", data["unchanged"]),
        ]
    else:
        rows = [
            ("insertados", data["inserted"]),
            ("actualizados", data["updated"]),
            ("añadidos a la lista (sin otros cambios)", data.get("listed", 0)),
            ("sin cambios", data["unchanged"]),
        ]
    rows += [
        ("bloqueados (no se tocaron)", data.get("locked", 0)),
        ("en la lista de no llamar (no se guardaron)", data.get("dnc", 0)),
        ("combinados (repetidos)", data["duplicates_merged"]),
        ("rechazados", data["rejected"]),
        ("total", data["total"]),
    ]
    for label, count in rows:
        table.add_row(label, spanish_count(int(count)))
    console.print(table)
    if data.get("dry_run"):
        console.print("[yellow]Prueba: no se escribió nada.[/yellow]")
    for error in data["errors"][:SHOWN_ERRORS]:
        console.print(f"  fila {error['row']} «{error['phone']}»: {error['message']}")
    for held in data.get("locked_rows", [])[:SHOWN_ERRORS]:
        console.print(f"  fila {held['row']} «{held['phone']}»: {held['message']}")
    for listed in data.get("dnc_rows", [])[:SHOWN_ERRORS]:
        console.print(f"  fila {listed['row']} «{listed['phone']}»: {listed['message']}")
    hidden = int(data["rejected"]) - min(len(data["errors"]), SHOWN_ERRORS)
    if hidden > 0:
        console.print(f"  … y {spanish_count(hidden)} más (use --report para verlas todas)")
    if data.get("report_file"):
        console.print(f"Informe: {data['report_file']}")


_MERGE_LABELS = {
    "fill": "completar vacíos",
    "overwrite": "sobrescribir",
    "skip": "omitir existentes",
}


def _fail(message: str, code: int) -> NoReturn:
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(code)
