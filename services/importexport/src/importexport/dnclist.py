"""The do-not-call list as files: an uploaded list read into numbers, and the list written out.

Reading goes through the import's own readers and limits (type by content, size, zip bombs, password,
data-row limit) and finds the header row and phone column as an import does; the reason is the column
headed «Motivo» (or «Razón», «Causa», «Reason», else the import's note column: «Nota», «Observaciones»).
Every data row gives a number in E.164 or an invalid row (its number, the phone as typed, why). A number
given twice is kept once, at its first row.

Writing is the contacts export's: CSV (``;``, UTF-8 with BOM) or xlsx, text that starts like a formula
escaped (``'=...``) so a spreadsheet shows it and never evaluates it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from importexport.headers import HeaderMap, detect_headers, normalise_header
from importexport.report import RowIssue
from importexport.rows import cell_text
from importexport.spreadsheets import FileRejected, ReaderLimits, open_rows, spanish_count
from importexport.writers import write_csv, write_xlsx
from kernel.phone import InvalidPhone
from kernel.phonefast import parse_phone_fast

__all__ = ["DNC_EXPORT_HEADERS", "DncFile", "DncRow", "dnc_file_bytes", "read_dnc_file"]

DNC_EXPORT_HEADERS = ("telefono", "motivo", "agregado_por", "agregado_el")
_REASON_HEADERS = frozenset({"motivo", "motivos", "razon", "razones", "causa", "reason"})
_REASON_MAX = 500


@dataclass(frozen=True, slots=True)
class DncRow:
    """One number of an uploaded list: its spreadsheet row, the phone as typed, E.164 and reason."""

    row: int
    phone: str
    e164: str
    reason: str

    def to_data(self) -> dict[str, Any]:
        """``{row, phone, e164, reason}``."""
        return {"row": self.row, "phone": self.phone, "e164": self.e164, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class DncFile:
    """What an uploaded list holds: its numbers, its invalid rows, its repeated rows and data rows read."""

    numbers: tuple[DncRow, ...] = ()
    invalid: tuple[RowIssue, ...] = ()
    repeated: tuple[RowIssue, ...] = ()
    total: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        """JSON-ready (the rq reply of ``read_dnc``)."""
        return {
            "numbers": [number.to_data() for number in self.numbers],
            "invalid": [issue.to_data() for issue in self.invalid],
            "repeated": [issue.to_data() for issue in self.repeated],
            "total": self.total,
            "headers": dict(self.headers),
        }


def read_dnc_file(path: Path, limits: ReaderLimits, max_rows: int | None = None) -> DncFile:
    """The numbers of the list at ``path``; :class:`FileRejected` (with the reason) for an unusable file."""
    table = open_rows(path, limits)
    headers = detect_headers(table)
    reason_column = _reason_column(headers)
    numbers: list[DncRow] = []
    invalid: list[RowIssue] = []
    repeated: list[RowIssue] = []
    first_row: dict[str, int] = {}
    total = 0
    for index, cells in enumerate(table):
        row_number = table.first_row_number + index
        if index <= headers.row_index:
            continue
        texts = [cell_text(cell) for cell in cells]
        if not any(texts):
            continue
        total += 1
        if max_rows is not None and total > max_rows:
            raise FileRejected(
                f"El archivo tiene más de {spanish_count(max_rows)} filas de datos, el máximo permitido."
            )
        raw = texts[headers.phone] if headers.phone < len(texts) else ""
        if not raw:
            invalid.append(RowIssue(row_number, "", "Falta el teléfono."))
            continue
        try:
            e164 = parse_phone_fast(raw).e164
        except InvalidPhone as error:
            invalid.append(RowIssue(row_number, raw, f"Teléfono no válido ({error.reason})."))
            continue
        if e164 in first_row:
            repeated.append(RowIssue(row_number, raw, f"mismo número que la fila {first_row[e164]}"))
            continue
        first_row[e164] = row_number
        reason = texts[reason_column] if reason_column is not None and reason_column < len(texts) else ""
        numbers.append(DncRow(row_number, raw, e164, reason[:_REASON_MAX]))
    shown = {"phone": headers.headers[headers.phone]}
    if reason_column is not None:
        shown["reason"] = headers.headers[reason_column]
    return DncFile(tuple(numbers), tuple(invalid), tuple(repeated), total, shown)


def _reason_column(headers: HeaderMap) -> int | None:
    """The column headed like a reason, else the import's note column, else none."""
    for column, text in enumerate(headers.headers):
        if normalise_header(text) in _REASON_HEADERS and column != headers.phone:
            return column
    return headers.columns.get("note")


def dnc_file_bytes(entries: Iterable[Sequence[Any]], export_format: str) -> bytes:
    """The list as a CSV or xlsx file: rows of ``(E.164, reason, added by, added at)``."""
    out = io.BytesIO()
    if export_format == "csv":
        write_csv(out, entries, headers=DNC_EXPORT_HEADERS)
    else:
        write_xlsx(
            out, entries, headers=DNC_EXPORT_HEADERS, sheet_name="No llamar", column_widths=(16, 60, 20, 20)
        )
    return out.getvalue()
