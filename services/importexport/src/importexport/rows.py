"""Turn the rows of an import file into contacts to write or rejections to report (pure, no I/O).

Outcomes per data row (every row after the header):

* blank rows (every cell empty, ``nan`` or spaces) are skipped silently: they are layout, and listing
  them would bury the real errors;
* a row whose phone is empty or invalid is a :class:`RejectedRow` with the reason from
  :func:`kernel.phone.parse_phone` (same answers as the fast path);
* otherwise an :class:`AcceptedRow`; an unusable e-mail is dropped with a warning rather than losing the
  contact.

Repeats of a phone inside the file merge into its first row: later non-empty fields win, as they would
on the stored contact. So a writer may either call :func:`merge_duplicates` (everything in memory) or
stream rows in file order with the same rule and :class:`DuplicateTracker` to label the repeats: the
final contacts are the same.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from importexport.headers import HeaderMap
from importexport.spreadsheets import Cell, FileRejected, Table, spanish_count
from kernel.phone import InvalidPhone, Phone
from kernel.phonefast import normalise_fast

__all__ = [
    "AcceptedRow",
    "DuplicateTracker",
    "Merge",
    "MergedRows",
    "RejectedRow",
    "cell_text",
    "classify_rows",
    "merge_duplicates",
    "merge_rows",
]

Normaliser = Callable[[object], Phone | InvalidPhone]

_BLANKS = frozenset({"", "nan", "none", "null"})
# What writers.py prefixes with "'" so no formula runs; undone here so export → import changes nothing.
_ESCAPED = ("'=", "'+", "'-", "'@", "'\t", "'\r")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class AcceptedRow:
    """A row with a valid phone, ready to create or update a contact; ``row`` is the spreadsheet row."""

    row: int
    raw_phone: str
    e164: str
    national: str
    kind: str
    operator: str | None
    name: str | None = None
    note: str | None = None
    status: str | None = None
    email: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that cannot become a contact, with the reason in Spanish."""

    row: int
    raw_phone: str
    reason: str

    @property
    def message(self) -> str:
        """The reason with the phone as typed, for the report."""
        return f"{self.reason} («{self.raw_phone}»)" if self.raw_phone else self.reason


@dataclass(frozen=True, slots=True)
class Merge:
    """Row ``row`` repeated the phone of row ``into`` and was merged into it."""

    into: int
    row: int
    e164: str


@dataclass(frozen=True, slots=True)
class MergedRows:
    """One row per phone, in order of first appearance, and the merges that produced them."""

    rows: list[AcceptedRow]
    merges: list[Merge]


def cell_text(value: Cell | object) -> str:
    """Text of a cell as the user sees it: blanks (``None``, ``nan``, ``""``) → ``""``, ``12.0`` → ``12``."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _BLANKS:
            return ""
        return text[1:] if text.startswith(_ESCAPED) else text
    if isinstance(value, bool):
        return "VERDADERO" if value else "FALSO"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ", timespec="seconds" if value.microsecond == 0 else "auto")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value).strip()


def classify_rows(
    table: Table | Iterable[list[Cell]],
    headers: HeaderMap,
    normalise: Normaliser = normalise_fast,
    max_rows: int | None = None,
) -> Iterator[AcceptedRow | RejectedRow]:
    """Each non-blank row after the header as an :class:`AcceptedRow` or a :class:`RejectedRow`, lazily."""
    first_number = headers.row_number - headers.row_index
    phone_col = headers.columns["phone"]
    optional = [(name, headers.columns.get(name)) for name in ("name", "note", "status", "email")]
    extra_cols = headers.extra
    data_rows = 0
    for index, cells in enumerate(table):
        if index <= headers.row_index:
            continue
        texts = [cell_text(c) for c in cells]
        if not any(texts):
            continue
        data_rows += 1
        if max_rows is not None and data_rows > max_rows:
            raise FileRejected(
                f"El archivo tiene más de {spanish_count(max_rows)} filas de datos, el máximo permitido."
            )
        number = first_number + index
        raw = cells[phone_col] if phone_col < len(cells) else None
        raw_text = texts[phone_col] if phone_col < len(texts) else ""
        # An escaped phone ("'+506 ...") is normalised from its unescaped text.
        result = normalise(raw_text if isinstance(raw, str) else raw)
        if isinstance(result, InvalidPhone):
            yield RejectedRow(row=number, raw_phone=raw_text, reason=result.reason)
            continue
        values = {
            name: (texts[col] or None) if col is not None and col < len(texts) else None
            for name, col in optional
        }
        warnings: tuple[str, ...] = ()
        email = values["email"]
        if email is not None and not _EMAIL.fullmatch(email):
            warnings = (f"correo «{email}» no válido; se ignoró",)
            email = None
        extra = {key: texts[col] for col, key in extra_cols if col < len(texts) and texts[col]}
        yield AcceptedRow(
            row=number,
            raw_phone=raw_text,
            e164=result.e164,
            national=result.national,
            kind=result.kind,
            operator=result.operator,
            name=values["name"],
            note=values["note"],
            status=values["status"],
            email=email,
            extra=extra,
            warnings=warnings,
        )


def _field(texts: list[str], column: int | None) -> str | None:
    if column is None or column >= len(texts):
        return None
    return texts[column] or None


def merge_rows(kept: AcceptedRow, later: AcceptedRow) -> AcceptedRow:
    """``kept`` updated by a later row of the same phone: its non-empty fields win, extra merged by key."""
    return replace(
        kept,
        name=later.name or kept.name,
        note=later.note or kept.note,
        status=later.status or kept.status,
        email=later.email or kept.email,
        extra={**kept.extra, **later.extra} if later.extra else kept.extra,
        warnings=kept.warnings + later.warnings,
    )


class DuplicateTracker:
    """Remembers the first row of each phone so repeats can be labelled while streaming."""

    def __init__(self) -> None:
        self._first: dict[str, int] = {}

    def first_row_of(self, row: AcceptedRow) -> int | None:
        """The earlier row with the same phone, or ``None`` (and remember this one) if it is new."""
        first = self._first.setdefault(row.e164, row.row)
        return None if first == row.row else first


def merge_duplicates(rows: Iterable[AcceptedRow]) -> MergedRows:
    """Merge rows that share an E.164 into the first of them (later non-empty fields win)."""
    merged: dict[str, AcceptedRow] = {}
    merges: list[Merge] = []
    for row in rows:
        kept = merged.get(row.e164)
        if kept is None:
            merged[row.e164] = row
            continue
        merged[row.e164] = merge_rows(kept, row)
        merges.append(Merge(into=kept.row, row=row.row, e164=row.e164))
    return MergedRows(rows=list(merged.values()), merges=merges)
