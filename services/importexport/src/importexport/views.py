"""What the import/export service answers: the JSON of an import report (``POST /import`` with JSON)."""

from __future__ import annotations

from typing import Any

from importexport.report import ImportReport

__all__ = ["import_view"]


def import_view(report: ImportReport) -> dict[str, Any]:
    """``{inserted, updated, unchanged, duplicates_merged, rejected, errors, merged, warnings, ...}``."""
    return report.to_data()
