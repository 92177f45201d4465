"""The report of an import: counts, every row that did not simply go in, and the files users download.

A report states the merge mode used and lists every rejected row with its reason, every row whose contact
was locked and left alone, every row whose phone is on the do-not-call list (not saved), every row merged
into an earlier row of the same phone, and every warning (a dropped e-mail). The job keeps it as its JSON
report (lists capped at :data:`REPORT_LIST_LIMIT` entries each, with the full counts beside them) and
writes it whole to a CSV and an xlsx file for ``GET /jobs/{id}/report``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from importexport.writers import write_csv, write_xlsx

__all__ = [
    "REPORT_HEADERS",
    "REPORT_LIST_LIMIT",
    "ImportReport",
    "MergedRow",
    "RowIssue",
    "report_file_names",
    "write_report",
    "write_report_files",
]

REPORT_LIST_LIMIT = 10_000
REPORT_HEADERS = ("fila", "teléfono", "resultado", "detalle")

REJECTED = "rechazada"
LOCKED = "bloqueada"
DNC = "no llamar"
MERGED = "combinada"
WARNING = "aviso"


@dataclass(frozen=True, slots=True)
class RowIssue:
    """A rejected row or a warning: its spreadsheet row, the phone as typed and the Spanish message."""

    row: int
    phone: str
    message: str

    def to_data(self) -> dict[str, Any]:
        """``{row, phone, message}``."""
        return {"row": self.row, "phone": self.phone, "message": self.message}


@dataclass(frozen=True, slots=True)
class MergedRow:
    """Row ``row`` repeated the phone of row ``into`` and was merged into it."""

    row: int
    into: int
    phone: str

    def to_data(self) -> dict[str, Any]:
        """``{row, into, phone}``."""
        return {"row": self.row, "into": self.into, "phone": self.phone}


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What one import did (or, in a dry run, would do) with every row of its input."""

    source: str
    list_name: str
    dry_run: bool
    total: int
    merge: str = "fill"
    inserted: int = 0
    updated: int = 0
    listed: int = 0
    """Rows whose contact changed no field and only joined this import's list (``ContactListed``)."""
    unchanged: int = 0
    duplicates_merged: int = 0
    rejected: int = 0
    new: int = 0
    existing: int = 0
    errors: tuple[RowIssue, ...] = ()
    locked: tuple[RowIssue, ...] = ()
    dnc: tuple[RowIssue, ...] = ()
    merged: tuple[MergedRow, ...] = ()
    warnings: tuple[RowIssue, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    file: Mapping[str, Any] = field(default_factory=dict)
    preview: tuple[Mapping[str, Any], ...] = ()
    seconds: float = 0.0

    @property
    def written(self) -> int:
        """Rows that reached a contact (inserted, updated, listed, found unchanged or left alone while
        locked)."""
        return self.inserted + self.updated + self.listed + self.unchanged + len(self.locked)

    def to_data(self, limit: int | None = REPORT_LIST_LIMIT) -> dict[str, Any]:
        """JSON: PRODUCT.md's ``{inserted, updated, duplicates_merged, errors, total}`` plus the rest."""
        errors = self.errors if limit is None else self.errors[:limit]
        merged = self.merged if limit is None else self.merged[:limit]
        warnings = self.warnings if limit is None else self.warnings[:limit]
        locked = self.locked if limit is None else self.locked[:limit]
        dnc = self.dnc if limit is None else self.dnc[:limit]
        data: dict[str, Any] = {
            "source": self.source,
            "list": self.list_name,
            "dry_run": self.dry_run,
            "merge": self.merge,
            "total": self.total,
            "inserted": self.inserted,
            "updated": self.updated,
            "listed": self.listed,
            "unchanged": self.unchanged,
            "duplicates_merged": self.duplicates_merged,
            "rejected": self.rejected,
            "locked": len(self.locked),
            "dnc": len(self.dnc),
            "errors": [issue.to_data() for issue in errors],
            "locked_rows": [issue.to_data() for issue in locked],
            "dnc_rows": [issue.to_data() for issue in dnc],
            "merged": [row.to_data() for row in merged],
            "warnings": [issue.to_data() for issue in warnings],
            "truncated": len(errors) < len(self.errors)
            or len(merged) < len(self.merged)
            or len(warnings) < len(self.warnings)
            or len(locked) < len(self.locked)
            or len(dnc) < len(self.dnc),
            "headers": dict(self.headers),
            "file": dict(self.file),
            "seconds": round(self.seconds, 3),
        }
        if self.dry_run:
            data["new"] = self.new
            data["existing"] = self.existing
            data["preview"] = [dict(row) for row in self.preview]
        return data

    def rows(self) -> Iterator[tuple[int, str, str, str]]:
        """Every row of the report files, in spreadsheet-row order: rejected, locked, do-not-call, merged,
        warnings."""
        entries: list[tuple[int, str, str, str]] = [
            (issue.row, issue.phone, REJECTED, issue.message) for issue in self.errors
        ]
        entries.extend((issue.row, issue.phone, LOCKED, issue.message) for issue in self.locked)
        entries.extend((issue.row, issue.phone, DNC, issue.message) for issue in self.dnc)
        entries.extend(
            (row.row, row.phone, MERGED, f"mismo teléfono que la fila {row.into}; se combinó con ella")
            for row in self.merged
        )
        entries.extend((issue.row, issue.phone, WARNING, issue.message) for issue in self.warnings)
        entries.sort(key=lambda entry: entry[0])
        return iter(entries)


def report_file_names(job_id: str) -> dict[str, str]:
    """The names of a job's report files: ``{"csv": ..., "xlsx": ...}``."""
    return {"csv": f"informe_{job_id}.csv", "xlsx": f"informe_{job_id}.xlsx"}


def write_report(report: ImportReport, path: Path) -> int:
    """Write the report to ``path`` as CSV or xlsx (by its extension); returns its row count."""
    if path.suffix.lower() == ".csv":
        return write_csv(path, report.rows(), headers=REPORT_HEADERS)
    return write_xlsx(
        path, report.rows(), headers=REPORT_HEADERS, sheet_name="Informe", column_widths=(8, 20, 12, 80)
    )


def write_report_files(report: ImportReport, folder: Path, job_id: str) -> dict[str, str]:
    """Write the report as CSV and xlsx into ``folder``; returns ``{"csv": name, "xlsx": name}``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = report_file_names(job_id)
    for name in names.values():
        write_report(report, folder / name)
    return names
