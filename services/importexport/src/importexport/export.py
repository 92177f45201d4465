"""Export contacts to xlsx or csv in constant memory: as a job with progress, or streamed into a response.

Rows come from ``ContactsClient.export_contacts`` (one streamed query over the contacts read model in
process; pages of the internal API over HTTP) and go straight into :mod:`importexport.writers`, which
never hold more than a few hundred rows. Filters: status (several), list, operator. Columns: those of
:data:`~importexport.writers.CONTACT_HEADERS` (Spanish), every text cell escaped against formulas.

``GET /export`` answers with the file itself while the system holds at most :data:`STREAM_LIMIT`
contacts (or when asked with ``async=false``); above that, or with ``async=true``, it starts an
``export`` job whose file is downloaded from ``GET /jobs/{id}/download`` when it ends.
"""

from __future__ import annotations

import contextlib
import io
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

from contacts.asks import GetStats
from contacts.client import ContactsClient
from contacts.commands import Caller
from contacts.views import ContactFilters, ContactRow, caller_from_data, caller_to_data
from importexport.writers import COSTA_RICA_TIME, export_filename, write_csv, write_xlsx
from kernel.jobqueue import JobContext

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_JOB",
    "MEDIA_TYPES",
    "STREAM_LIMIT",
    "ExportRequest",
    "expected_total",
    "export_job",
    "stream_export",
    "write_export",
]

EXPORT_JOB = "export"
EXPORT_FORMATS = ("xlsx", "csv")
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
STREAM_LIMIT = 100_000
COLUMN_WIDTHS = (38, 16, 30, 18, 40, 18, 20, 20, 20)
_PROGRESS_EVERY = 10_000
_CHUNK_BYTES = 256 << 10
_PIPE_DEPTH = 8


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: the format (``xlsx`` or ``csv``) and the filters."""

    format: str = "xlsx"
    statuses: tuple[str, ...] = ()
    list_name: str | None = None
    operator: str | None = None

    def __post_init__(self) -> None:
        if self.format not in EXPORT_FORMATS:
            raise ValueError(f"formato de exportación desconocido: {self.format!r}")

    def filters(self) -> ContactFilters:
        """The contact-list filters of this export."""
        return ContactFilters(statuses=self.statuses, list_name=self.list_name, operator=self.operator)

    def to_params(self) -> dict[str, Any]:
        """JSON parameters (for a job)."""
        return {
            "format": self.format,
            "statuses": list(self.statuses),
            "list": self.list_name,
            "operator": self.operator,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ExportRequest:
        """Rebuild from :meth:`to_params` output."""
        return cls(
            format=str(params.get("format") or "xlsx"),
            statuses=tuple(str(s) for s in params.get("statuses") or ()),
            list_name=params.get("list"),
            operator=params.get("operator"),
        )

    def filename(self, now: datetime | None = None) -> str:
        """``contactos_YYYYMMDD_HHMMSS.<format>`` in Costa Rica time."""
        moment = (now or datetime.now(COSTA_RICA_TIME)).astimezone(COSTA_RICA_TIME)
        return export_filename(moment, self.format)


def write_export(target: str | Path | IO[bytes], rows: Iterable[Sequence[Any]], export_format: str) -> int:
    """Write contact rows in ``export_format``; returns how many were written."""
    if export_format == "csv":
        return write_csv(target, rows)
    return write_xlsx(target, rows, column_widths=COLUMN_WIDTHS)


def expected_total(contacts: ContactsClient, caller: Caller, request: ExportRequest) -> int:
    """How many contacts the export should hold, from the totals (exact without list/operator filters)."""
    stats = contacts.ask(GetStats(), caller)
    if request.statuses:
        by_status: Mapping[str, int] = stats.get("by_status") or {}
        wanted = {status.strip().upper().replace(" ", "_") for status in request.statuses}
        return sum(int(count) for code, count in by_status.items() if code in wanted)
    return int(stats.get("total") or 0)


def export_params(request: ExportRequest, caller: Caller) -> dict[str, Any]:
    """The parameters of an ``export`` job for ``request`` made by ``caller``."""
    return {**request.to_params(), "caller": caller_to_data(caller)}


def export_job(context: JobContext, *, contacts: ContactsClient, exports_dir: Path) -> dict[str, Any]:
    """Write the export in ``context.params`` to ``exports_dir``; the report names the file to download."""
    request = ExportRequest.from_params(context.params)
    caller = caller_from_data(context.params["caller"])
    total = max(context.job.total, 0) or expected_total(contacts, caller, request)
    context.progress(0, total, force=True, phase="exporting", rows=0)

    def counted(rows: Iterable[ContactRow]) -> Iterator[ContactRow]:
        for done, row in enumerate(rows, start=1):
            if done % _PROGRESS_EVERY == 0:
                context.progress(done, max(total, done), phase="exporting", rows=done)
            yield row

    exports_dir.mkdir(parents=True, exist_ok=True)
    path, handle = _new_file(exports_dir, request.filename())
    try:
        with handle:
            count = write_export(
                handle, counted(contacts.export_contacts(caller, request.filters())), request.format
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    context.progress(count, count, force=True, phase="done", rows=count)
    return {
        "file": path.name,
        "download": f"/jobs/{context.job.id}/download",
        "rows": count,
        "format": request.format,
        "filters": {k: v for k, v in request.to_params().items() if k != "format" and v},
    }


def _new_file(folder: Path, name: str) -> tuple[Path, IO[bytes]]:
    """Create ``name`` in ``folder`` (``name_2``... when taken), opened for writing."""
    stem, _, suffix = name.rpartition(".")
    for attempt in range(1, 1000):
        candidate = folder / (name if attempt == 1 else f"{stem}_{attempt}.{suffix}")
        with contextlib.suppress(FileExistsError):
            return candidate, candidate.open("xb")
    raise FileExistsError(name)


# --- streaming into a response ------------------------------------------------------------------------


class _ReaderGone(Exception):
    """The response's reader stopped (the client went away): the writer stops too."""


_END = object()


class _Pipe(io.RawIOBase):
    """A write-only stream that hands ``_CHUNK_BYTES`` chunks to a reader through a bounded queue."""

    def __init__(self, chunks: queue.Queue[object], gone: threading.Event) -> None:
        super().__init__()
        self._chunks = chunks
        self._gone = gone
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        if len(self._buffer) >= _CHUNK_BYTES:
            self.push()
        return len(data)

    def push(self) -> None:
        """Hand what is buffered to the reader (waiting while the queue is full)."""
        if not self._buffer:
            return
        chunk = bytes(self._buffer)
        self._buffer.clear()
        while True:
            if self._gone.is_set():
                raise _ReaderGone
            try:
                self._chunks.put(chunk, timeout=0.2)
                return
            except queue.Full:
                continue


def stream_export(
    rows: Iterable[Sequence[Any]], export_format: str, on_done: Callable[[int], None] | None = None
) -> Iterator[bytes]:
    """The export file as byte chunks, written on a thread as the chunks are consumed (constant memory)."""
    chunks: queue.Queue[object] = queue.Queue(maxsize=_PIPE_DEPTH)
    gone = threading.Event()
    pipe = _Pipe(chunks, gone)

    def work() -> None:
        try:
            count = write_export(cast(IO[bytes], pipe), rows, export_format)
            pipe.push()
            if on_done is not None:
                on_done(count)
            item: object = _END
        except _ReaderGone:
            return
        except BaseException as exc:  # handed to the reader, which raises it
            item = exc
        while not gone.is_set():
            with contextlib.suppress(queue.Full):
                chunks.put(item, timeout=0.2)
                return

    writer = threading.Thread(target=work, name="export-stream", daemon=True)
    writer.start()
    try:
        while True:
            item = chunks.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item
    finally:
        gone.set()
        writer.join(timeout=5)
