"""Tables saved by the user (import reports, generated numbers) as CSV or xlsx, chosen by the file suffix."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str | int | float:
    """Numbers as they are; text with a leading quote when a spreadsheet would read it as a formula."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def write_table(path: Path, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Write ``rows`` under ``headers`` to ``path`` (.xlsx with openpyxl, anything else as UTF-8 CSV)."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet()
        sheet.append(list(headers))
        for row in rows:
            sheet.append([safe_cell(cell) for cell in row])
        book.save(path)
        return
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows([safe_cell(cell) for cell in row] for row in rows)
