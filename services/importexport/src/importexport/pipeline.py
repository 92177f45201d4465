"""The import pipeline: a file (or JSON records) → classified rows → batch commands to contacts → a report.

Two streamed passes over the file:

1. **scan** (phone column only): counts the data rows — the row limit is enforced here, before anything
   is written — and finds the phones that appear more than once in the file.
2. **import**: every row is classified (fast phone path). A row whose phone appears once goes straight
   into the next batch; the rows of a repeated phone are merged (later non-empty fields win) and sent
   once, when its last occurrence has been read. Batches of ``batch_rows`` go to
   ``ContactsClient.create_or_merge_stream``, which takes the next batch while the one before is written
   (the service's own pipeline in one process, a sending thread over HTTP); each row's outcome
   (inserted, updated, unchanged, rejected + reason) is counted into the report.

Repeats are merged before sending because, sent row by row, a phone typed twice with two different
names would be written twice on every run (first name, then the second), so re-importing the file would
not be "unchanged". Merged, every contact receives one row per import.

Idempotent: contacts decides every row against the stored contact and a row that changes nothing appends
nothing, so re-running a file, or a job retried after a crash half-way, creates nothing twice: the rows
written before the crash come back ``unchanged``.

A dry run reads and classifies the same way but asks contacts only which phones exist
(``existing_phones``, per batch): nothing is written; the report counts new and existing contacts and
shows a preview of the first rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from contacts.client import ContactsClient
from contacts.commands import BatchResult, Caller, Outcome, Source
from contacts.commands import ImportRow as BatchRow
from contacts.errors import ContactError
from contacts.views import caller_from_data, caller_to_data
from importexport.headers import HeaderMap, detect_headers, header_field
from importexport.readers import Cell, FileRejected, ReaderLimits, Row, Table, open_rows, spanish_count
from importexport.report import ImportReport, MergedRow, RowIssue, write_report_files
from importexport.rows import (
    DuplicateTracker,
    ImportRow,
    RejectedRow,
    cell_text,
    classify_rows,
    merge_rows,
)
from importexport.writers import COSTA_RICA_TIME
from kernel.jobs import JobContext, JobFailed
from kernel.phonefast import same_number_key

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "IMPORT_JOB",
    "ImportOptions",
    "ImportProgress",
    "Scan",
    "import_job",
    "import_list_name",
    "import_params",
    "import_records",
    "reader_limits",
    "run_import",
    "scan_phones",
]

IMPORT_JOB = "import"
# Rows per create_or_merge message. Contacts writes them in transactions of its own batch size (5,000),
# deciding one while the previous is written; 20,000-row messages cost 10-20 % less CPU than 5,000.
DEFAULT_BATCH_ROWS = 20_000
PREVIEW_ROWS = 20
_SCAN_PROGRESS_EVERY = 20_000
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


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How to import: target list, dry run, sheet, limits and batch size."""

    list_name: str = ""
    dry_run: bool = False
    sheet: str | None = None
    source_name: str = ""
    job_id: str = ""
    max_rows: int | None = None
    limits: ReaderLimits = field(default_factory=ReaderLimits)
    batch_rows: int = DEFAULT_BATCH_ROWS


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


# --- pass 1: scan --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scan:
    """What the first pass learnt: data rows, and occurrences of every phone seen more than once.

    ``repeats`` is keyed by :func:`~kernel.phonefast.same_number_key`: a valid phone's E.164.
    """

    data_rows: int
    repeats: dict[str, int]


def scan_phones(
    table: Iterable[Row],
    headers: HeaderMap,
    max_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
    same_number: Callable[[Cell], str | None] = same_number_key,
) -> Scan:
    """Count data rows (refusing past ``max_rows``) and repeated phones, reading only the phone cell.

    Phones are compared by ``same_number`` (equal for every way of typing one valid number), not fully
    normalised: the import pass does that, and only the repeats of valid phones are ever looked up.
    """
    phone_col = headers.phone
    skip = headers.row_index
    seen: set[str] = set()
    repeats: dict[str, int] = {}
    data_rows = 0
    for index, cells in enumerate(table):
        if index <= skip:
            continue
        raw: Cell = cells[phone_col] if phone_col < len(cells) else None
        # The same input classify_rows normalises: the unescaped text of a text cell, else the cell.
        value: Cell = cell_text(raw) if isinstance(raw, str) else raw
        blank = value == "" if isinstance(value, str) else cell_text(value) == ""
        if blank and not any(cell_text(c) for c in cells):
            continue
        data_rows += 1
        if max_rows is not None and data_rows > max_rows:
            raise FileRejected(
                f"El archivo tiene más de {spanish_count(max_rows)} filas de datos, el máximo permitido."
            )
        if progress is not None and data_rows % _SCAN_PROGRESS_EVERY == 0:
            progress(data_rows)
        if blank:
            continue
        key = same_number(value)
        if key is None:
            continue
        if key in seen:
            repeats[key] = repeats.get(key, 1) + 1
        else:
            seen.add(key)
    return Scan(data_rows, repeats)


# --- pass 2: import ------------------------------------------------------------------------------------


class _Tally:
    """Counts and row lists of one run; touched only by the thread reading the file."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.read = 0
        self.inserted = 0
        self.updated = 0
        self.unchanged = 0
        self.new = 0
        self.existing = 0
        self.errors: list[RowIssue] = []
        self.merged: list[MergedRow] = []
        self.warnings: list[RowIssue] = []
        self.preview: list[dict[str, Any]] = []

    @property
    def written(self) -> int:
        return self.new + self.existing if self.dry_run else self.inserted + self.updated + self.unchanged

    def progress(self, phase: str, total: int) -> ImportProgress:
        return ImportProgress(phase, self.read, self.written, len(self.errors), total)

    def count_written(self, rows: Sequence[BatchRow], result: BatchResult) -> None:
        for row, outcome in zip(rows, result.outcomes, strict=True):
            kind = outcome.outcome
            if kind is Outcome.INSERTED:
                self.inserted += 1
            elif kind is Outcome.UNCHANGED:
                self.unchanged += 1
            elif kind is Outcome.UPDATED:
                self.updated += 1
            else:
                self.errors.append(RowIssue(row.row, row.phone, outcome.reason or "rechazada"))

    def count_classified(self, rows: Sequence[BatchRow], existing: set[str]) -> None:
        found = sum(1 for row in rows if row.e164 in existing)
        self.existing += found
        self.new += len(rows) - found

    def report(
        self, source: str, list_name: str, headers: HeaderMap | None, file: Mapping[str, Any]
    ) -> ImportReport:
        return ImportReport(
            source=source,
            list_name=list_name,
            dry_run=self.dry_run,
            total=self.read,
            inserted=self.inserted,
            updated=self.updated,
            unchanged=self.unchanged,
            duplicates_merged=len(self.merged),
            rejected=len(self.errors),
            new=self.new,
            existing=self.existing,
            errors=tuple(sorted(self.errors, key=lambda issue: issue.row)),
            merged=tuple(self.merged),
            warnings=tuple(self.warnings),
            headers=headers.mapping() if headers is not None else {},
            file=dict(file),
            preview=tuple(self.preview),
        )


def _feed(
    items: Iterable[ImportRow | RejectedRow], repeats: Mapping[str, int], tally: _Tally
) -> Iterator[ImportRow]:
    """Rows to send, in file order, with every repeated phone merged and sent at its last occurrence."""
    tracker = DuplicateTracker()
    pending: dict[str, tuple[ImportRow, int]] = {}
    preview = tally.preview if tally.dry_run else None
    for item in items:
        tally.read += 1
        if isinstance(item, RejectedRow):
            tally.errors.append(RowIssue(item.row, item.raw_phone, item.reason))
            if preview is not None and len(preview) < PREVIEW_ROWS:
                preview.append(_preview_entry(item, None))
            continue
        for warning in item.warnings:
            tally.warnings.append(RowIssue(item.row, item.raw_phone, warning))
        occurrences = repeats.get(item.e164)
        first = tracker.first_row_of(item) if occurrences is not None else None
        if preview is not None and len(preview) < PREVIEW_ROWS:
            preview.append(_preview_entry(item, first))
        if occurrences is None:
            yield item
            continue
        if first is None:
            pending[item.e164] = (item, occurrences - 1)
            continue
        tally.merged.append(MergedRow(item.row, first, item.raw_phone))
        kept, left = pending.pop(item.e164, (item, 1))
        kept = merge_rows(kept, item)
        if left > 1:
            pending[item.e164] = (kept, left - 1)
        else:
            yield kept
    # Only reached with rows the scan counted differently (it never should): send them anyway.
    yield from (kept for kept, _ in pending.values())


def _preview_entry(item: ImportRow | RejectedRow, first: int | None) -> dict[str, Any]:
    """One preview line; ``action`` is filled in later for rows that are neither rejected nor merged."""
    if isinstance(item, RejectedRow):
        return {"row": item.row, "phone": item.raw_phone, "action": "rechazada", "message": item.reason}
    merged = first is not None
    return {
        "row": item.row,
        "phone": item.raw_phone,
        "e164": item.e164,
        "name": item.name or "",
        "status": item.status or "",
        "action": "combinada" if merged else "",
        "message": f"mismo teléfono que la fila {first}" if merged else "",
    }


def _batches(feed: Iterable[ImportRow], size: int) -> Iterator[list[BatchRow]]:
    batch: list[BatchRow] = []
    for row in feed:
        batch.append(_batch_row(row))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _batch_row(row: ImportRow) -> BatchRow:
    return BatchRow(
        row=row.row,
        e164=row.e164,
        national=row.national,
        phone=row.raw_phone,
        name=row.name or "",
        note=row.note or "",
        status=row.status or "",
        email=row.email or "",
        extra=row.extra,
        operator=row.operator,
    )


def _run(
    table: Iterable[Row],
    headers: HeaderMap,
    contacts: ContactsClient,
    caller: Caller,
    options: ImportOptions,
    progress: ProgressCallback,
) -> _Tally:
    """Both passes over ``table`` (iterable twice) with the writes or lookups of ``options``."""
    scan = scan_phones(
        table,
        headers,
        max_rows=options.max_rows,
        progress=lambda n: progress(ImportProgress("checking", n, 0, 0, 0)),
    )
    total = scan.data_rows
    tally = _Tally(options.dry_run)
    phase = "classifying" if options.dry_run else "importing"
    progress(tally.progress(phase, total))
    feed = _feed(classify_rows(table, headers, max_rows=options.max_rows), scan.repeats, tally)
    if options.dry_run:
        for rows in _batches(feed, options.batch_rows):
            tally.count_classified(rows, contacts.existing_phones(caller, [row.e164 for row in rows]))
            progress(tally.progress(phase, total))
    else:
        sent: deque[list[BatchRow]] = deque()

        def batches() -> Iterator[list[BatchRow]]:
            for rows in _batches(feed, options.batch_rows):
                sent.append(rows)
                yield rows

        results = contacts.create_or_merge_stream(
            batches(), options.list_name, caller, source=Source.IMPORT, job_id=options.job_id
        )
        with contextlib.closing(results):
            for result in results:
                tally.count_written(sent.popleft(), result)
                progress(tally.progress(phase, total))
    if options.dry_run:
        _resolve_preview(tally, contacts, caller)
    progress(tally.progress("done", total))
    return tally


def _resolve_preview(tally: _Tally, contacts: ContactsClient, caller: Caller) -> None:
    phones = [entry["e164"] for entry in tally.preview if not entry["action"]]
    existing = contacts.existing_phones(caller, phones) if phones else set()
    for entry in tally.preview:
        if not entry["action"]:
            entry["action"] = "existente" if entry["e164"] in existing else "nueva"


def run_import(
    path: str | Path,
    contacts: ContactsClient,
    caller: Caller,
    options: ImportOptions = ImportOptions(),
    progress: ProgressCallback = _silent,
) -> ImportReport:
    """Import (or dry-run) the file at ``path`` as ``caller``; :class:`FileRejected` before any write."""
    started = time.perf_counter()
    path = Path(path)
    table = open_rows(path, options.limits, options.sheet)
    headers = detect_headers(table)
    progress(ImportProgress("checking", 0, 0, 0, 0))
    tally = _run(table, headers, contacts, caller, options, progress)
    report = tally.report(
        options.source_name or path.name, options.list_name, headers, _file_info(table, headers)
    )
    return dataclasses.replace(report, seconds=time.perf_counter() - started)


def _file_info(table: Table, headers: HeaderMap) -> dict[str, Any]:
    info: dict[str, Any] = {"kind": table.kind, "header_row": headers.row_number}
    if table.sheet is not None:
        info["sheet"] = table.sheet
    if table.encoding is not None:
        info["encoding"] = table.encoding
    if table.delimiter is not None:
        info["delimiter"] = table.delimiter
    return info


# --- JSON records (POST /import with a JSON array) ------------------------------------------------------


def import_records(
    records: Sequence[Mapping[str, Any]],
    contacts: ContactsClient,
    caller: Caller,
    list_name: str = "",
    max_rows: int | None = None,
    dry_run: bool = False,
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
    options = ImportOptions(list_name=list_name, dry_run=dry_run, source_name="JSON")
    tally = _run(table, headers, contacts, caller, options, _silent)
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
) -> dict[str, Any]:
    """The parameters of an ``import`` job for the upload stored at ``path``."""
    return {
        "path": str(path),
        "source": source_name,
        "dry_run": dry_run,
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
            source=options.source_name, list_name=options.list_name, dry_run=options.dry_run, total=0
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
) -> dict[str, Any]:
    """Run the import in ``context.params``; the report is returned and written to ``reports_dir``.

    The uploaded file is deleted when the job ends here (finished, refused, failed or cancelled); a
    process that dies or is stopped half-way (``SystemExit``, a kill) leaves it, so the job can be run
    again: rows written before come back unchanged.
    """
    params = context.params
    path = Path(params["path"])
    caller = caller_from_data(params["caller"])
    options = ImportOptions(
        list_name=str(params.get("list") or ""),
        dry_run=bool(params.get("dry_run")),
        sheet=params.get("sheet"),
        source_name=str(params.get("source") or path.name),
        job_id=context.job.id,
        max_rows=max_rows,
        limits=limits,
        batch_rows=batch_rows,
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

    try:
        report = _imported(path, contacts, caller, options, progress)
    except Exception:
        path.unlink(missing_ok=True)
        raise
    path.unlink(missing_ok=True)
    files = write_report_files(report, reports_dir, context.job.id)
    data = report.to_data()
    data["report_files"] = files
    data["download"] = {kind: f"/jobs/{context.job.id}/report?format={kind}" for kind in files}
    return data
