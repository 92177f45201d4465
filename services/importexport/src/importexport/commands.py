"""The import/export service's public contract: its commands, limits, media types and typed refusal.

The gateway builds these from requests and hands them to its transfer port; the port runs them in
process (embedded) or sends them to ``callmanager serve importexport`` over rq (distributed). Commands
travel as ``to_data()`` (plain JSON); an uploaded file travels as its path in the shared data folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from contacts.commands import Caller, MergeMode
from contacts.views import ContactFilters, caller_from_data, caller_to_data
from importexport.export import EXPORT_FORMATS, EXPORT_JOB, MEDIA_TYPES, STREAM_LIMIT, ExportRequest
from importexport.pipeline import IMPORT_JOB, import_list_name

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_JOB",
    "IMPORT_JOB",
    "MEDIA_TYPES",
    "STREAM_LIMIT",
    "ExportContacts",
    "ImportRecords",
    "ImportRefused",
    "InspectUpload",
    "MergeMode",
    "ReadDncFile",
    "StartImport",
]


class ImportRefused(ValueError):
    """A file or a list of records that cannot be imported; ``reason`` (Spanish) says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class InspectUpload:
    """Check an uploaded file now (type by content, zip bombs, password, header row); answers its headers."""

    path: Path

    def to_data(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"path": str(self.path)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> InspectUpload:
        """The command :meth:`to_data` wrote."""
        return cls(Path(data["path"]))


@dataclass(frozen=True)
class ReadDncFile:
    """Read an uploaded do-not-call list now (the import's readers and limits); answers its numbers, its
    invalid and repeated rows (``importexport.dnclist.DncFile.to_data``)."""

    path: Path

    def to_data(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"path": str(self.path)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ReadDncFile:
        """The command :meth:`to_data` wrote."""
        return cls(Path(data["path"]))


@dataclass(frozen=True)
class StartImport:
    """Import the upload at ``path`` (``source`` to its user) as a job; new contacts join ``list_name``,
    existing ones are merged by ``merge``."""

    caller: Caller
    path: Path
    source: str
    dry_run: bool = False
    list_name: str = ""
    sheet: str | None = None
    merge: MergeMode = MergeMode.FILL

    def to_data(self) -> dict[str, Any]:
        """JSON-ready: the ``import`` job's parameters (the list chosen now when none was given)."""
        return {
            "path": str(self.path),
            "source": self.source,
            "dry_run": self.dry_run,
            "merge": self.merge.value,
            "list": self.list_name or import_list_name(self.source),
            "sheet": self.sheet,
            "caller": caller_to_data(self.caller),
        }


@dataclass(frozen=True)
class ImportRecords:
    """Import (or dry-run) JSON records at once, at most ``max_rows`` of them."""

    caller: Caller
    records: Sequence[Mapping[str, Any]]
    list_name: str = ""
    dry_run: bool = False
    max_rows: int | None = None
    merge: MergeMode = MergeMode.FILL

    def chosen_list(self) -> str:
        """The list new contacts join: the one asked for, else ``imp-<now>-api``."""
        return self.list_name.strip() or import_list_name("api")

    def to_data(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "records": [dict(r) for r in self.records],
            "list": self.list_name,
            "dry_run": self.dry_run,
            "merge": self.merge.value,
            "max_rows": self.max_rows,
            "caller": caller_to_data(self.caller),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ImportRecords:
        """The command :meth:`to_data` wrote."""
        return cls(
            caller=caller_from_data(data["caller"]),
            records=list(data["records"]),
            list_name=str(data.get("list") or ""),
            dry_run=bool(data.get("dry_run")),
            max_rows=data.get("max_rows"),
            merge=MergeMode(data.get("merge") or MergeMode.FILL),
        )


@dataclass(frozen=True)
class ExportContacts:
    """Export the contacts these filters select to ``format`` (xlsx or csv): streamed or as a job."""

    caller: Caller
    format: str = "xlsx"
    statuses: tuple[str, ...] = field(default=())
    list_name: str | None = None
    operator: str | None = None

    def request(self) -> ExportRequest:
        """Format and filters (ValueError for an unknown format)."""
        return ExportRequest(self.format, self.statuses, self.list_name, self.operator)

    def filters(self) -> ContactFilters:
        """The contact-list filters of this export."""
        return self.request().filters()

    def filename(self, now: datetime | None = None) -> str:
        """``contactos_YYYYMMDD_HHMMSS.<format>`` in Costa Rica time."""
        return self.request().filename(now)

    def to_data(self) -> dict[str, Any]:
        """JSON-ready: the ``export`` job's parameters."""
        return {**self.request().to_params(), "caller": caller_to_data(self.caller)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ExportContacts:
        """The command :meth:`to_data` wrote."""
        request = ExportRequest.from_params(data)
        return cls(
            caller_from_data(data["caller"]),
            request.format,
            request.statuses,
            request.list_name,
            request.operator,
        )
