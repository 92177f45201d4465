"""The file side of an import: open, scan, classify, merge repeats and cut into batches.

:func:`read_file` yields what the importer needs, in this order: :class:`Opened` (the header found),
:class:`Scanned` (the data rows counted, the row limit enforced), then :class:`Classified` messages: the
next rows to send, with the rejected, warned and merged rows found since the last message. The last
:class:`Classified` may carry no rows (only what the file's end left to report).

Two passes over the table:

1. **scan** (phone column only): counts the data rows — the row limit is enforced here, before anything
   is written — and finds the phones that appear more than once in the file.
2. **classify**: every row is classified (fast phone path). A row whose phone appears once goes straight
   into the next batch; the rows of a repeated phone are merged (later non-empty fields win) and sent
   once, when its last occurrence has been read.

:func:`read_apart` runs :func:`read_file` in a process of its own (a fresh interpreter) and
yields the same messages as they arrive through a pipe: reading and classifying take a third of an
import's Python time, and apart they use the second core while this process decides and writes (on
two cores, 15-17 % less time end to end from 100,000 rows; nothing gained below 50,000). The pipe holds
about one batch, so the reader never runs far ahead and memory stays bounded. The process is stopped
when the caller stops listening.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from contacts.commands import ImportRow
from importexport.headers import HeaderMap, detect_headers
from importexport.report import MergedRow, RowIssue
from importexport.rows import AcceptedRow, DuplicateTracker, RejectedRow, cell_text, classify_rows, merge_rows
from importexport.spreadsheets import Cell, FileRejected, ReaderLimits, Row, Table, open_rows, spanish_count
from kernel.phonefast import same_number_key

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "PREVIEW_ROWS",
    "READER_COMMAND",
    "Classified",
    "FileMessage",
    "Opened",
    "ReadOptions",
    "ReaderDied",
    "Scan",
    "Scanned",
    "file_info",
    "read_apart",
    "read_file",
    "read_table",
    "scan_phones",
    "serve_reading",
]

# Rows per create_or_merge message. Contacts writes them in transactions of its own batch size (5,000),
# deciding one while the previous is written; 20,000-row messages cost 10-20 % less CPU than 5,000.
DEFAULT_BATCH_ROWS = 20_000
PREVIEW_ROWS = 20
_SCAN_PROGRESS_EVERY = 20_000
_FIRST_BATCH_ROWS = 5_000

Checking = Callable[[int], None]
"""Told the data rows counted so far while the scan runs (every 20,000)."""


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """What the reading needs: the sheet, the limits, rows per batch, and whether to keep a preview."""

    sheet: str | None = None
    limits: ReaderLimits = field(default_factory=ReaderLimits)
    max_rows: int | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS
    preview: bool = False


@dataclass(frozen=True, slots=True)
class Opened:
    """The file opened and its header row found; ``file`` describes it for the report."""

    headers: HeaderMap
    file: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Scanned:
    """The first pass is over: ``total`` data rows, none past the limit."""

    total: int


@dataclass(frozen=True, slots=True)
class Classified:
    """The next ``rows`` to send, and what the rows read since the last message left to report.

    ``read`` counts every data row read so far. Pickled with its rows as one JSON array of their fields
    (orjson): for 100,000 rows dumping took 0.06 s and loading 0.07 s so, against 0.23 s and 0.11 s as
    pickled tuples (0.82 s in all as pickled dataclasses); building the rows again takes 0.16 s more.
    """

    rows: list[ImportRow]
    read: int
    errors: list[RowIssue]
    warnings: list[RowIssue]
    merged: list[MergedRow]
    preview: list[dict[str, Any]]

    def __reduce__(self) -> tuple[Any, ...]:
        fields = [
            (r.row, r.e164, r.national, r.phone, r.name, r.note, r.status, r.email, r.extra, r.operator)
            for r in self.rows
        ]
        packed: bytes | list[tuple[Any, ...]]
        try:
            packed = orjson.dumps(fields)
        except orjson.JSONEncodeError:  # text JSON cannot carry (a lone surrogate): pickled as it is
            packed = fields
        return (_classified, (packed, self.read, self.errors, self.warnings, self.merged, self.preview))


def _classified(
    packed: bytes | list[tuple[Any, ...]],
    read: int,
    errors: list[RowIssue],
    warnings: list[RowIssue],
    merged: list[MergedRow],
    preview: list[dict[str, Any]],
) -> Classified:
    fields: list[Any] = orjson.loads(packed) if isinstance(packed, bytes) else packed
    rows = [
        ImportRow(
            row=row,
            e164=e164,
            national=national,
            phone=phone,
            name=name,
            note=note,
            status=status,
            email=email,
            extra=extra,
            operator=operator,
        )
        for row, e164, national, phone, name, note, status, email, extra, operator in fields
    ]
    return Classified(rows, read, errors, warnings, merged, preview)


FileMessage = Opened | Scanned | Classified


# --- in this process -------------------------------------------------------------------------------------


def read_file(path: Path, options: ReadOptions, checking: Checking) -> Generator[FileMessage]:
    """:class:`Opened`, :class:`Scanned`, then the :class:`Classified` batches of the file at ``path``.

    Raises :class:`FileRejected` (before :class:`Scanned` for every refusal of the file as a whole).
    """
    table = open_rows(path, options.limits, options.sheet)
    headers = detect_headers(table)
    yield Opened(headers, file_info(table, headers))
    yield from read_table(table, headers, options, checking)


def read_table(
    table: Iterable[Row], headers: HeaderMap, options: ReadOptions, checking: Checking
) -> Iterator[Scanned | Classified]:
    """:class:`Scanned`, then the :class:`Classified` batches of ``table`` (iterable twice)."""
    scan = scan_phones(table, headers, max_rows=options.max_rows, progress=checking)
    yield Scanned(scan.data_rows)
    found = _Found(options.preview)
    rows: list[ImportRow] = []
    # The first batch is smaller, so that writing starts sooner.
    size = min(options.batch_rows, _FIRST_BATCH_ROWS)
    for row in _feed(classify_rows(table, headers, max_rows=options.max_rows), scan.repeats, found):
        rows.append(_batch_row(row))
        if len(rows) >= size:
            yield found.take(rows)
            rows = []
            size = options.batch_rows
    yield found.take(rows)


def file_info(table: Table, headers: HeaderMap) -> dict[str, Any]:
    """The file's kind, header row, sheet, encoding and delimiter, as the report shows them."""
    info: dict[str, Any] = {"kind": table.kind, "header_row": headers.row_number}
    if table.sheet is not None:
        info["sheet"] = table.sheet
    if table.encoding is not None:
        info["encoding"] = table.encoding
    if table.delimiter is not None:
        info["delimiter"] = table.delimiter
    return info


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


# --- pass 2: classify -----------------------------------------------------------------------------------


class _Found:
    """What the rows read so far left to report, handed over (and started afresh) with every batch."""

    def __init__(self, preview: bool) -> None:
        self.read = 0
        self.errors: list[RowIssue] = []
        self.warnings: list[RowIssue] = []
        self.merged: list[MergedRow] = []
        self.preview: list[dict[str, Any]] | None = [] if preview else None
        self._previewed = 0

    def wants_preview(self) -> bool:
        return self.preview is not None and self._previewed < PREVIEW_ROWS

    def show(self, entry: dict[str, Any]) -> None:
        assert self.preview is not None
        self.preview.append(entry)
        self._previewed += 1

    def take(self, rows: list[ImportRow]) -> Classified:
        message = Classified(rows, self.read, self.errors, self.warnings, self.merged, self.preview or [])
        self.errors, self.warnings, self.merged = [], [], []
        if self.preview is not None:
            self.preview = []
        return message


def _feed(
    items: Iterable[AcceptedRow | RejectedRow], repeats: Mapping[str, int], found: _Found
) -> Iterator[AcceptedRow]:
    """Rows to send, in file order, with every repeated phone merged and sent at its last occurrence."""
    tracker = DuplicateTracker()
    pending: dict[str, tuple[AcceptedRow, int]] = {}
    for item in items:
        found.read += 1
        if isinstance(item, RejectedRow):
            found.errors.append(RowIssue(item.row, item.raw_phone, item.reason))
            if found.wants_preview():
                found.show(_preview_entry(item, None))
            continue
        for warning in item.warnings:
            found.warnings.append(RowIssue(item.row, item.raw_phone, warning))
        occurrences = repeats.get(item.e164)
        first = tracker.first_row_of(item) if occurrences is not None else None
        if found.wants_preview():
            found.show(_preview_entry(item, first))
        if occurrences is None:
            yield item
            continue
        if first is None:
            pending[item.e164] = (item, occurrences - 1)
            continue
        found.merged.append(MergedRow(item.row, first, item.raw_phone))
        kept, left = pending.pop(item.e164, (item, 1))
        kept = merge_rows(kept, item)
        if left > 1:
            pending[item.e164] = (kept, left - 1)
        else:
            yield kept
    # Only reached with rows the scan counted differently (it never should): send them anyway.
    yield from (kept for kept, _ in pending.values())


def _preview_entry(item: AcceptedRow | RejectedRow, first: int | None) -> dict[str, Any]:
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


def _batch_row(row: AcceptedRow) -> ImportRow:
    return ImportRow(
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


# --- in a process of its own --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Checking:
    rows: int


@dataclass(frozen=True, slots=True)
class _Refused:
    reason: str


@dataclass(frozen=True, slots=True)
class _Failed:
    trace: str


@dataclass(frozen=True, slots=True)
class _Done:
    pass


class ReaderDied(RuntimeError):
    """The reading process ended without finishing (killed, out of memory)."""


def read_apart(
    path: Path, options: ReadOptions, checking: Checking, command: Sequence[str] = ()
) -> Generator[FileMessage]:
    """:func:`read_file` in a process of its own, its messages and refusals passed on as they arrive.

    The process is a fresh interpreter that imports only this module (``python -c``; not
    ``multiprocessing``'s spawn, which imports the program's main module again: for ``callmanager up``
    that is the whole system, a second of start-up). Its end of a socket pair is the only thing it
    inherits. POSIX only (``pass_fds``). Closing the generator early (a cancel, a failed write) stops
    the process at once.

    ``command``: the interpreter's arguments that end in :func:`serve_reading` with the socket's fd
    appended (:data:`READER_COMMAND` when empty); the composition root gives one that tunes the process
    first (``system.reader``).
    """
    ours, theirs = multiprocessing.Pipe()
    reader = subprocess.Popen(  # noqa: S603 (this interpreter, a fixed program, no shell)
        [sys.executable, *(command or READER_COMMAND), str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
        stdin=subprocess.DEVNULL,
    )
    theirs.close()
    finished = False
    try:
        ours.send((str(path), options))
        while True:
            try:
                message = ours.recv()
            except (EOFError, ConnectionResetError):
                ended = f"the process reading {path.name} ended (exit code {reader.wait()})"
                raise ReaderDied(ended) from None
            if isinstance(message, _Checking):
                checking(message.rows)
            elif isinstance(message, _Refused):
                finished = True
                raise FileRejected(message.reason)
            elif isinstance(message, _Failed):
                finished = True
                raise RuntimeError(f"reading {path.name} failed in its process:\n{message.trace}")
            elif isinstance(message, _Done):
                finished = True
                return
            else:
                yield message
    finally:
        ours.close()
        if not finished:
            reader.terminate()
        reader.wait()


READER_COMMAND = (
    "-c",
    "import sys\nfrom importexport.classification import serve_reading\nserve_reading(int(sys.argv[1]))",
)
"""The reading process as it is, untuned (tests, tools); ``system.reader`` has the tuned one."""


def serve_reading(fd: int) -> None:
    """The reading process: take the file and options from the socket ``fd``, send back its messages.

    The process runs at the lowest priority: it only has to stay a batch ahead, while deciding and writing
    (the importer and the database server, on the same cores) are the import's critical path; on two
    cores that took a 1,000,000-row import from 58 to 53 s. The interpreter's switches (the collector)
    are its entry point's to set (``system.reader``).
    """
    os.nice(19)
    connection = Connection(fd)
    try:
        path, options = connection.recv()
        _read_and_send(connection, Path(path), options)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        return  # the importer stopped listening
    finally:
        connection.close()


def _read_and_send(connection: Connection, path: Path, options: ReadOptions) -> None:
    try:
        for message in read_file(path, options, lambda rows: connection.send(_Checking(rows))):
            connection.send(message)
    except FileRejected as exc:
        connection.send(_Refused(exc.reason))
    except (BrokenPipeError, ConnectionResetError):
        raise
    except Exception:
        connection.send(_Failed(traceback.format_exc()))
    else:
        connection.send(_Done())
