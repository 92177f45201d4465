"""The import pipeline: a file (or JSON records) → classified rows → batch commands to contacts → a report.

The file side — open, scan (count rows, find repeated phones), classify, merge repeats, cut batches — is
:mod:`importexport.classification`; a large file is read there in a process of its own, beside this one. Here
the batches of ``batch_rows`` go to ``ContactsClient.create_or_merge_stream``, which takes the next batch
while the one before is written (the service's own pipeline in one process, a sending thread over HTTP);
each row's outcome (inserted, updated, listed — an existing contact that only joins the import's list —,
unchanged, locked, dnc or rejected + reason) is counted into the report. Contacts looks every batch up on
the do-not-call list at once, so a row whose phone is listed comes back ``dnc`` (not saved) in both modes
and in the dry run.
Existing contacts are merged by the import's :class:`~contacts.commands.MergeMode` (``fill`` unless asked).

Repeats are merged before sending because, sent row by row, a phone typed twice with two different
names would be written twice on every run (first name, then the second), so re-importing the file would
not be "unchanged". Merged, every contact receives one row per import.

Idempotent: contacts decides every row against the stored contact and a row that changes nothing appends
nothing, so re-running a file, or a job retried after a crash half-way, creates nothing twice: the rows
written before the crash come back ``unchanged``.

A dry run is the real run, rolled back: the same batches go through the same path with ``dry_run``,
and contacts decides and writes each in a transaction it rolls back, so every row's outcome and reason
are the real run's (PRODUCT.md: "the import dry run runs the real import's code"). The report counts them
as the real one does, plus new and existing contacts and a preview of the first rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from contacts.client import ContactsClient
from contacts.commands import BatchResult, Caller, ImportRow, MergeMode, Outcome, Source
from contacts.errors import ContactError
from contacts.views import caller_from_data, caller_to_data
from importexport.classification import (
    DEFAULT_BATCH_ROWS,
    Classified,
    FileMessage,
    Opened,
    ReadOptions,
    Scanned,
    read_apart,
    read_file,
    read_table,
)
from importexport.headers import HeaderMap, detect_headers, header_field
from importexport.report import ImportReport, MergedRow, RowIssue, write_report_files
from importexport.rows import cell_text
from importexport.spreadsheets import Cell, FileRejected, ReaderLimits, Row, spanish_count
from importexport.writers import COSTA_RICA_TIME
from kernel.jobqueue import JobContext, JobFailed

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "IMPORT_JOB",
    "READ_APART_FROM_BYTES",
    "ImportOptions",
    "ImportProgress",
    "import_job",
    "import_list_name",
    "import_params",
    "import_records",
    "reader_limits",
    "run_import",
]

IMPORT_JOB = "import"
# Files from this size (about 65,000 xlsx rows) are read in a process of their own. Measured on
# PostgreSQL (bench xlsx): 20,000 rows (0.6 MB) 1.27 s apart against 1.22 s here, 50,000 (1.5 MB) 2.74 s
# both, 100,000 (3 MB) 5.0 s against 5.9 s, 1,000,000 53 s against 64 s.
READ_APART_FROM_BYTES = 2_000_000
# Title and blank rows a sheet may have above and between its data, beyond the data-row limit.
_ROW_SLACK = 1_000


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Where an import is: ``phase`` (checking, importing, classifying, done) and its row counts."""

    phase: str
    read: int
    written: int
    rejected: int
    total: int


ProgressCallback = Callable[[ImportProgress], None]


def _silent(_: ImportProgress) -> None:
    return None


def _ignore(_: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How to import: target list, dry run, merge mode, sheet, limits, batch size, and where to read the file.

    ``reader_process``: read in a process of its own (``True``, POSIX only), here (``False``), or by the
    file's size (``None``: from :data:`READ_APART_FROM_BYTES`, on POSIX); ``reader_command`` starts that
    process (see :func:`~importexport.classification.read_apart`; the composition root gives a tuned one).
    """

    list_name: str = ""
    dry_run: bool = False
    merge: MergeMode = MergeMode.FILL
    sheet: str | None = None
    source_name: str = ""
    job_id: str = ""
    max_rows: int | None = None
    limits: ReaderLimits = field(default_factory=ReaderLimits)
    batch_rows: int = DEFAULT_BATCH_ROWS
    reader_process: bool | None = None
    reader_command: tuple[str, ...] = ()

    @property
    def reading(self) -> ReadOptions:
        """What the file's reading needs of these options."""
        return ReadOptions(
            sheet=self.sheet,
            limits=self.limits,
            max_rows=self.max_rows,
            batch_rows=self.batch_rows,
            preview=self.dry_run,
        )


def reader_limits(max_upload_bytes: int | None, max_rows: int | None) -> ReaderLimits:
    """Reader bounds for the settings' upload size and data-row limit (a little slack for title rows)."""
    return ReaderLimits(
        max_file_bytes=max_upload_bytes,
        max_rows=None if max_rows is None else max_rows + _ROW_SLACK,
    )


def import_list_name(source_name: str, now: datetime | None = None) -> str:
    """``imp-YYYYMMDD-HHMMSS-<file name>`` (Costa Rica time): the list new contacts of one import join."""
    moment = (now or datetime.now(COSTA_RICA_TIME)).astimezone(COSTA_RICA_TIME)
    stem = unicodedata.normalize("NFKD", Path(source_name).stem)
    slug = re.sub(r"[^0-9A-Za-z]+", "-", stem.encode("ascii", "ignore").decode()).strip("-").lower()
    return f"imp-{moment:%Y%m%d-%H%M%S}" + (f"-{slug[:40]}" if slug else "")


# --- sending ------------------------------------------------------------------------------------------


class _Tally:
    """Counts and row lists of one run: what the reading found, then what contacts answered."""

    def __init__(self, dry_run: bool, merge: MergeMode = MergeMode.FILL) -> None:
        self.dry_run = dry_run
        self.merge = merge
        self.read = 0
        self.inserted = 0
        self.updated = 0
        self.listed = 0
        self.unchanged = 0
        self.new = 0
        self.existing = 0
        self.errors: list[RowIssue] = []
        self.locked: list[RowIssue] = []
        self.dnc: list[RowIssue] = []
        self.merged: list[MergedRow] = []
        self.warnings: list[RowIssue] = []
        self.preview: list[dict[str, Any]] = []

    @property
    def written(self) -> int:
        return self.inserted + self.updated + self.listed + self.unchanged + len(self.locked)

    def progress(self, phase: str, total: int) -> ImportProgress:
        return ImportProgress(phase, self.read, self.written, len(self.errors), total)

    def add(self, found: Classified) -> None:
        """What the reading found since its last batch."""
        self.read = found.read
        self.errors.extend(found.errors)
        self.warnings.extend(found.warnings)
        self.merged.extend(found.merged)
        self.preview.extend(found.preview)

    def count_written(self, rows: Sequence[ImportRow], result: BatchResult) -> None:
        for row, outcome in zip(rows, result.outcomes, strict=True):
            kind = outcome.outcome
            if kind is Outcome.INSERTED:
                self.inserted += 1
            elif kind is Outcome.UNCHANGED:
                self.unchanged += 1
            elif kind is Outcome.UPDATED:
                self.updated += 1
            elif kind is Outcome.LISTED:
                self.listed += 1
            elif kind is Outcome.LOCKED:
                self.locked.append(RowIssue(row.row, row.phone, outcome.reason or "contacto bloqueado"))
            elif kind is Outcome.DNC:
                self.dnc.append(RowIssue(row.row, row.phone, outcome.reason or "en la lista de no llamar"))
            else:
                self.errors.append(RowIssue(row.row, row.phone, outcome.reason or "rechazada"))
        self.new = self.inserted
        self.existing = self.updated + self.listed + self.unchanged + len(self.locked)
        if self.preview:
            self._show_outcomes(rows, result)

    def _show_outcomes(self, rows: Sequence[ImportRow], result: BatchResult) -> None:
        """Fill in the preview lines of these rows (those neither rejected by the reading nor merged)."""
        waiting = {entry["row"]: entry for entry in self.preview if not entry["action"]}
        if not waiting:
            return
        for row, outcome in zip(rows, result.outcomes, strict=True):
            entry = waiting.get(row.row)
            if entry is not None:
                entry["action"] = _PREVIEW_ACTIONS[outcome.outcome]
                entry["message"] = outcome.reason

    def report(
        self, source: str, list_name: str, headers: HeaderMap | None, file: Mapping[str, Any]
    ) -> ImportReport:
        return ImportReport(
            source=source,
            list_name=list_name,
            dry_run=self.dry_run,
            merge=self.merge.value,
            total=self.read,
            inserted=self.inserted,
            updated=self.updated,
            listed=self.listed,
            unchanged=self.unchanged,
            duplicates_merged=len(self.merged),
            rejected=len(self.errors),
            new=self.new,
            existing=self.existing,
            errors=tuple(sorted(self.errors, key=lambda issue: issue.row)),
            locked=tuple(self.locked),
            dnc=tuple(self.dnc),
            merged=tuple(self.merged),
            warnings=tuple(self.warnings),
            headers=headers.mapping() if headers is not None else {},
            file=dict(file),
            preview=tuple(self.preview),
        )


def _run(
    messages: Iterator[FileMessage],
    contacts: ContactsClient,
    caller: Caller,
    options: ImportOptions,
    progress: ProgressCallback,
) -> _Tally:
    """Send (or look up) the batches of ``messages`` as ``options`` says, counting every row."""
    scanned = next(messages)
    if not isinstance(scanned, Scanned):
        raise TypeError(f"expected the scan's end, got {type(scanned).__name__}")
    total = scanned.total
    tally = _Tally(options.dry_run, options.merge)
    phase = "classifying" if options.dry_run else "importing"
    progress(tally.progress(phase, total))

    def batches() -> Iterator[list[ImportRow]]:
        for found in messages:
            if not isinstance(found, Classified):
                raise TypeError(f"expected classified rows, got {type(found).__name__}")
            tally.add(found)
            if found.rows:
                yield found.rows

    # The dry run takes this same path: contacts rolls its transactions back (``dry_run``).
    sent: deque[list[ImportRow]] = deque()

    def sending() -> Iterator[list[ImportRow]]:
        for rows in batches():
            sent.append(rows)
            yield rows

    results = contacts.create_or_merge_stream(
        sending(),
        options.list_name,
        caller,
        source=Source.IMPORT,
        job_id=options.job_id,
        merge=options.merge,
        dry_run=options.dry_run,
    )
    with contextlib.closing(results):
        for result in results:
            tally.count_written(sent.popleft(), result)
            progress(tally.progress(phase, total))
    progress(tally.progress("done", total))
    return tally


_PREVIEW_ACTIONS = {
    Outcome.INSERTED: "nueva",
    Outcome.UPDATED: "existente",
    Outcome.LISTED: "existente",
    Outcome.UNCHANGED: "existente",
    Outcome.LOCKED: "bloqueada",
    Outcome.DNC: "no llamar",
    Outcome.REJECTED: "rechazada",
}


def run_import(
    path: str | Path,
    contacts: ContactsClient,
    caller: Caller,
    options: ImportOptions = ImportOptions(),
    progress: ProgressCallback = _silent,
) -> ImportReport:
    """Import (or dry-run) the file at ``path`` as ``caller``; :class:`FileRejected` before any write.

    A large file is read in a process of its own (:func:`~importexport.classification.read_apart`).
    """
    started = time.perf_counter()
    path = Path(path)
    apart = options.reader_process
    if apart is None:
        apart = os.name == "posix" and path.stat().st_size >= READ_APART_FROM_BYTES

    def checking(rows: int) -> None:
        progress(ImportProgress("checking", rows, 0, 0, 0))

    if apart:
        messages = read_apart(path, options.reading, checking, options.reader_command)
    else:
        messages = read_file(path, options.reading, checking)
    with contextlib.closing(messages):
        opened = next(messages)
        if not isinstance(opened, Opened):
            raise TypeError(f"expected the opened file, got {type(opened).__name__}")
        progress(ImportProgress("checking", 0, 0, 0, 0))
        tally = _run(messages, contacts, caller, options, progress)
    report = tally.report(options.source_name or path.name, options.list_name, opened.headers, opened.file)
    return dataclasses.replace(report, seconds=time.perf_counter() - started)


# --- JSON records (POST /import with a JSON array) ------------------------------------------------------


def import_records(
    records: Sequence[Mapping[str, Any]],
    contacts: ContactsClient,
    caller: Caller,
    list_name: str = "",
    max_rows: int | None = None,
    dry_run: bool = False,
    merge: MergeMode = MergeMode.FILL,
) -> ImportReport:
    """Import (or dry-run) JSON records (``{phone, name?, note?, status?, email?, extra?, ...}``) at once.

    Keys are read like spreadsheet headers (``telefono`` and ``nombre`` work too); unknown keys and the
    entries of an ``extra`` object go to ``extra``. Record ``n`` (from 1) is row ``n`` of the report.
    """
    started = time.perf_counter()
    if max_rows is not None and len(records) > max_rows:
        raise FileRejected(
            f"Se enviaron {spanish_count(len(records))} registros; el máximo por petición es "
            f"{spanish_count(max_rows)}. Para más, suba un archivo."
        )
    flat = [_flatten(record) for record in records]
    keys = list(dict.fromkeys(key for record in flat for key in record))
    header_row: Row = list(keys)
    try:
        found = detect_headers([header_row], scan_rows=1)
    except FileRejected:
        raise FileRejected("Cada registro necesita el campo «phone» (teléfono).") from None
    headers = dataclasses.replace(found, row_number=0)
    table: list[Row] = [header_row]
    empty: list[RowIssue] = []
    for number, record in enumerate(flat, start=1):
        row: Row = [record.get(key) for key in keys]
        table.append(row)
        if not any(cell_text(cell) for cell in row):
            empty.append(RowIssue(number, "", "El registro está vacío: falta el teléfono."))
    options = ImportOptions(list_name=list_name, dry_run=dry_run, merge=merge, source_name="JSON")
    tally = _run(read_table(table, headers, options.reading, _ignore), contacts, caller, options, _silent)
    tally.errors.extend(empty)
    tally.read += len(empty)
    report = tally.report("JSON", list_name, headers, {"kind": "json"})
    return dataclasses.replace(report, seconds=time.perf_counter() - started)


def _flatten(record: Mapping[str, Any]) -> dict[str, Cell]:
    """A record's cells by key, field synonyms (``telefono``) under the field's name (``phone``).

    The entries of a nested ``extra`` object become keys of their own; the first non-empty value of a
    field wins when a record names it twice.
    """
    flat: dict[str, Cell] = {}
    for key, value in record.items():
        if key == "extra" and isinstance(value, Mapping):
            for extra_key, extra_value in value.items():
                flat.setdefault(str(extra_key), _cell(extra_value))
            continue
        name = header_field(key) or str(key)
        if name not in flat or not cell_text(flat[name]):
            flat[name] = _cell(value)
    return flat


def _cell(value: Any) -> Cell:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# --- the job ------------------------------------------------------------------------------------------


def import_params(
    path: Path,
    source_name: str,
    caller: Caller,
    *,
    dry_run: bool = False,
    list_name: str = "",
    sheet: str | None = None,
    merge: MergeMode = MergeMode.FILL,
) -> dict[str, Any]:
    """The parameters of an ``import`` job for the upload stored at ``path``."""
    return {
        "path": str(path),
        "source": source_name,
        "dry_run": dry_run,
        "merge": merge.value,
        "list": list_name or import_list_name(source_name),
        "sheet": sheet,
        "caller": caller_to_data(caller),
    }


def _imported(
    path: Path, contacts: ContactsClient, caller: Caller, options: ImportOptions, progress: ProgressCallback
) -> ImportReport:
    """:func:`run_import`, its refusals and the service's errors turned into :class:`JobFailed`."""
    try:
        return run_import(path, contacts, caller, options, progress)
    except FileRejected as exc:
        refused = ImportReport(
            source=options.source_name,
            list_name=options.list_name,
            dry_run=options.dry_run,
            merge=options.merge.value,
            total=0,
        )
        raise JobFailed(exc.reason, {**refused.to_data(), "refused": exc.reason}) from exc
    except ContactError as exc:
        raise JobFailed(f"El servicio de contactos rechazó la importación: {exc.message}") from exc


def import_job(
    context: JobContext,
    *,
    contacts: ContactsClient,
    reports_dir: Path,
    limits: ReaderLimits,
    max_rows: int | None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    reader_process: bool | None = None,
    reader_command: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run the import in ``context.params``; the report is returned and written to ``reports_dir``.

    ``reader_process`` and ``reader_command`` as in :class:`ImportOptions`: reading apart pays when
    ``contacts`` decides and writes in this process; over HTTP the contacts service does that in its own
    process already.

    The uploaded file (``params["path"]``) belongs to the job: the executor deletes it when the job ends
    (finished, refused, failed, cancelled, or given up by a reaper). An error worth retrying (the contacts
    service restarting) and a process that dies or is stopped half-way (``SystemExit``, a kill) leave it,
    so the job can be run again: rows written before come back unchanged, into the same list
    (``params["list"]``, chosen once when the job was created).
    """
    params = context.params
    path = Path(params["path"])
    caller = caller_from_data(params["caller"])
    options = ImportOptions(
        list_name=str(params.get("list") or ""),
        dry_run=bool(params.get("dry_run")),
        merge=MergeMode(params.get("merge") or MergeMode.FILL),
        sheet=params.get("sheet"),
        source_name=str(params.get("source") or path.name),
        job_id=context.job.id,
        max_rows=max_rows,
        limits=limits,
        batch_rows=batch_rows,
        reader_process=reader_process,
        reader_command=reader_command,
    )

    def progress(step: ImportProgress) -> None:
        force = step.phase == "done"
        context.progress(
            step.read,
            step.total,
            force=force,
            phase=step.phase,
            read=step.read,
            written=step.written,
            rejected=step.rejected,
        )

    report = _imported(path, contacts, caller, options, progress)
    path.unlink(missing_ok=True)
    files = write_report_files(report, reports_dir, context.job.id)
    data = report.to_data()
    data["report_files"] = files
    data["download"] = {kind: f"/jobs/{context.job.id}/report?format={kind}" for kind in files}
    return data
