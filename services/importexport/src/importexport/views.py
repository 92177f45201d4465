"""What the import/export service answers: the JSON of an import report (``POST /import`` with JSON), and
the do-not-call list as a file (``GET /dnc/export``: the list is rendered where it is read)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from contacts.campaigns import DncEntry
from importexport.dnclist import dnc_file_bytes
from importexport.report import ImportReport

__all__ = ["dnc_export_file", "import_view"]


def import_view(report: ImportReport) -> dict[str, Any]:
    """``{inserted, updated, listed, unchanged, duplicates_merged, rejected, errors, merged, ...}``."""
    return report.to_data()


def dnc_export_file(entries: Iterable[DncEntry], export_format: str) -> bytes:
    """The do-not-call list as a ``csv`` or ``xlsx`` file (formula-like text escaped, as the contacts
    export): phone, reason, who added it and when (Costa Rica time).

    Costa Rican numbers are written ``8812-3456`` (as the contacts export writes them), others in E.164
    (``'+1...`` once escaped): both read back by ``POST /dnc/import``.
    """
    rows = ((_shown(e.phone_e164), e.reason, e.added_by_name, e.added_at) for e in entries)
    return dnc_file_bytes(rows, export_format)


def _shown(phone_e164: str) -> str:
    if phone_e164.startswith("+506") and len(phone_e164) == 12:
        return f"{phone_e164[4:8]}-{phone_e164[8:]}"
    return phone_e164
