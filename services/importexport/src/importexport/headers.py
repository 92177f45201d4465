"""Find the header row of an import and which column holds each contact field.

Headers are compared case- and accent-insensitively, ignoring punctuation. A header names a field when
it is exactly one of the field's synonyms (``Teléfono``, ``E-mail``) or, for the unambiguous words, when
it contains one (``Teléfono móvil``, ``Número de teléfono``, ``Correo electrónico``). Ambiguous words
count only on their own: ``Número`` is the phone but ``Número de cédula`` is not, ``Cliente`` is the
name but ``ID cliente`` is not, ``Estado`` is the status but ``Estado civil`` is not.

When several columns name the same field, an exact synonym beats a partial one, which beats a weak one,
then the leftmost wins; the others go to ``extra`` under their original header, like every unrecognised
column. The header row is the one among the first ten with the best phone header (then the one naming
most fields, then the first), so a title line above the headers is skipped.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from importexport.spreadsheets import Cell, FileRejected, Row, Table
from kernel.phone import InvalidPhone
from kernel.phonefast import normalise_fast

__all__ = ["FIELDS", "HeaderMap", "detect_headers", "header_field", "normalise_header"]

Field = Literal["phone", "name", "note", "status", "email"]
FIELDS: tuple[Field, ...] = ("phone", "name", "note", "status", "email")
FIELD_LABELS: dict[Field, str] = {
    "phone": "teléfono",
    "name": "nombre",
    "note": "nota",
    "status": "estado",
    "email": "correo",
}
SCAN_ROWS = 10

# Synonyms compared after normalise_header: PRODUCT.md's list plus plurals and common spellings.
# Strong synonyms name the field on their own; weak ones ("numero", "cliente", "estado") only when the
# header is exactly that word, and they lose to any strong match in another column.
_STRONG: dict[Field, frozenset[str]] = {
    "phone": frozenset(
        {
            "telefono",
            "telefonos",
            "tel",
            "telf",
            "celular",
            "celulares",
            "cel",
            "movil",
            "moviles",
            "phone",
            "phones",
            "mobile",
            "telephone",
            "cellphone",
            "whatsapp",
        }
    ),
    "name": frozenset({"nombre", "nombres", "name"}),
    "note": frozenset(
        {"nota", "notas", "observaciones", "observacion", "note", "notes", "comentario", "comentarios"}
    ),
    "status": frozenset({"status", "estatus"}),
    "email": frozenset({"correo", "email", "mail"}),
}
_WEAK: dict[Field, frozenset[str]] = {
    "phone": frozenset({"numero", "numeros"}),
    "name": frozenset({"cliente"}),
    "note": frozenset(),
    "status": frozenset({"estado"}),
    "email": frozenset(),
}
# Ranks: a header that is exactly a strong synonym, one that contains one, one that is a weak synonym.
_EXACT, _PARTIAL, _WEAK_EXACT = 0, 1, 2
# A longer text containing "teléfono" is a title ("Lista de teléfonos de marzo"), not a header.
_MAX_PARTIAL_WORDS = 4
_NON_WORD = re.compile(r"[^0-9a-z]+")
# The header row of our own export (writers.CONTACT_HEADERS, normalised); re-importing an export must
# change nothing, so its read-only columns are not kept as extra fields.
_EXPORT_HEADERS = frozenset(
    {
        "id",
        "telefono",
        "nombre",
        "estado",
        "nota",
        "bloqueado por",
        "ultimo contacto",
        "creado",
        "actualizado",
    }
)
_EXPORT_SYSTEM_HEADERS = frozenset({"id", "bloqueado por", "ultimo contacto", "creado", "actualizado"})


@dataclass(frozen=True, slots=True)
class HeaderMap:
    """The header row of a table and the column of each field; unrecognised columns go to ``extra``."""

    row_index: int
    row_number: int
    headers: tuple[str, ...]
    columns: dict[Field, int]
    extra: tuple[tuple[int, str], ...]

    @property
    def phone(self) -> int:
        """Column of the phone."""
        return self.columns["phone"]

    def mapping(self) -> dict[str, str]:
        """What to show the user: field name → the header it was read from, then extra columns."""
        shown: dict[str, str] = {field: self.headers[column] for field, column in self.columns.items()}
        shown.update({f"extra:{key}": key for _, key in self.extra})
        return shown


def normalise_header(value: object) -> str:
    """Lower case, no accents, punctuation as single spaces: ``' Teléfono-Móvil '`` → ``'telefono movil'``."""
    text = _cell_text(value).lower()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", text).strip()


def header_field(value: object) -> Field | None:
    """The field a single header names (``"Teléfono"`` → ``"phone"``), or ``None`` for an extra column."""
    key = normalise_header(value)
    match = _field_of(key) if key else None
    return match[0] if match is not None else None


def detect_headers(table: Table | Iterable[Row], scan_rows: int = SCAN_ROWS) -> HeaderMap:
    """The header row among the first ``scan_rows``; :class:`FileRejected` naming what was seen if none."""
    first_number = table.first_row_number if isinstance(table, Table) else 1
    scanned = list(itertools.islice(iter(table), scan_rows))
    best: tuple[tuple[int, int, int], dict[Field, int]] | None = None
    for index, row in enumerate(scanned):
        ranks = _match_fields(row)
        if "phone" not in ranks:
            continue
        # Best phone match first, then the row naming most fields ("Teléfono móvil, Nombre" beats a
        # title "Lista de teléfonos" above it), then the earliest row.
        score = (ranks["phone"][0], -len(ranks), index)
        if best is None or score < best[0]:
            best = (score, {field: column for field, (_, column) in ranks.items()})
    if best is None:
        raise FileRejected(_no_phone_reason(scanned))
    index = best[0][2]
    columns = best[1]
    headers = tuple(_cell_text(cell) for cell in scanned[index])
    return HeaderMap(
        row_index=index,
        row_number=first_number + index,
        headers=headers,
        columns=columns,
        extra=_extra_keys(headers, set(columns.values()) | _export_system_columns(headers)),
    )


def _export_system_columns(headers: tuple[str, ...]) -> set[int]:
    """In a file this system exported, the columns it writes but never reads back (id, times, lock)."""
    keys = [normalise_header(header) for header in headers]
    if not _EXPORT_HEADERS.issubset(keys):
        return set()
    return {column for column, key in enumerate(keys) if key in _EXPORT_SYSTEM_HEADERS}


def _match_fields(row: Sequence[Cell]) -> dict[Field, tuple[int, int]]:
    """Field → (rank, column) of its best header in one candidate row (text cells only)."""
    best: dict[Field, tuple[int, int]] = {}
    for column, cell in enumerate(row):
        if not isinstance(cell, str):
            continue
        key = normalise_header(cell)
        if not key:
            continue
        match = _field_of(key)
        if match is None:
            continue
        field, rank = match
        if field not in best or (rank, column) < best[field]:
            best[field] = (rank, column)
    return {field: best[field] for field in FIELDS if field in best}


def _field_of(key: str) -> tuple[Field, int] | None:
    compact = key.replace(" ", "")  # "E-mail" → "e mail" → "email"
    for field in FIELDS:
        if key in _STRONG[field] or compact in _STRONG[field]:
            return field, _EXACT
    words = key.split()
    if len(words) <= _MAX_PARTIAL_WORDS:
        for field in FIELDS:
            if not _STRONG[field].isdisjoint(words):
                return field, _PARTIAL
    for field in FIELDS:
        if key in _WEAK[field]:
            return field, _WEAK_EXACT
    return None


def _extra_keys(headers: tuple[str, ...], used: set[int]) -> tuple[tuple[int, str], ...]:
    """Unique keys for the other columns: the header, ``Columna C`` when blank, ``X (2)`` when repeated."""
    keys: list[tuple[int, str]] = []
    taken: set[str] = set()
    for column, header in enumerate(headers):
        if column in used:
            continue
        key = header or f"Columna {_column_letter(column)}"
        candidate, n = key, 1
        while candidate in taken:
            n += 1
            candidate = f"{key} ({n})"
        taken.add(candidate)
        keys.append((column, candidate))
    return tuple(keys)


def _no_phone_reason(scanned: list[Row]) -> str:
    first = next((row for row in scanned if any(_cell_text(c) for c in row)), None)
    if first is None:
        return "El archivo no tiene encabezados ni datos en las primeras filas."
    seen = [_cell_text(c) for c in first if _cell_text(c)]
    listed = ", ".join(f"«{h}»" for h in seen[:15]) + (" …" if len(seen) > 15 else "")
    if any(not isinstance(normalise_fast(c), InvalidPhone) for c in first if _cell_text(c)):
        return (
            f"El archivo no tiene fila de encabezados: la primera fila ya trae datos ({listed}). "
            "Agregue arriba una fila con los títulos de las columnas, por ejemplo «Teléfono» y «Nombre»."
        )
    return (
        "No se encontró la columna de teléfono (se buscó «teléfono», «celular», «móvil», «número», "
        f"«phone» o «mobile»). Encabezados encontrados: {listed}."
    )


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
