"""What the gateway needs from the generator and import/export services: one small port each.

The gateway builds the services' public commands (``generator.commands``, ``importexport.commands``)
and hands them here. The composition root chooses the implementation: in process (embedded: the call
runs here, jobs on this process's threads) or over rq (distributed: the command goes to the queue of
``callmanager serve generator`` / ``serve importexport``). Either way a refusal comes back as the
contract's typed error and a job as its row (``kernel.jobqueue.Job``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from generator.commands import GenerateNumbers
from importexport.commands import ExportContacts, ImportRecords, InspectUpload, ReadDncFile, StartImport
from kernel.jobqueue import Job


class ServiceUnavailable(RuntimeError):
    """The service did not answer in time (no process consuming its queue, or all of them busy)."""


class GeneratorPort(Protocol):
    """The generator service."""

    def generate(self, command: GenerateNumbers) -> dict[str, Any]:
        """Run a small generation now; its ``generator.views.generation_view`` (GenerationRefused if not)."""
        ...

    def start(self, command: GenerateNumbers, created_by: str) -> Job:
        """Queue a ``generate`` job for ``command`` (already :meth:`~GenerateNumbers.pinned`)."""
        ...


class TransferPort(Protocol):
    """The import/export service."""

    def inspect(self, command: InspectUpload) -> dict[str, str]:
        """The header mapping of a usable upload (ImportRefused with the reason otherwise)."""
        ...

    def start_import(self, command: StartImport, created_by: str) -> Job:
        """Queue an ``import`` job."""
        ...

    def read_dnc(self, command: ReadDncFile) -> dict[str, Any]:
        """The numbers of an uploaded do-not-call list, its invalid and repeated rows (ImportRefused with
        the reason for an unusable file)."""
        ...

    def import_records(self, command: ImportRecords) -> dict[str, Any]:
        """Import JSON records now; the report's ``importexport.views.import_view`` (ImportRefused if not)."""
        ...

    def start_export(self, command: ExportContacts, created_by: str) -> Job:
        """Queue an ``export`` job."""
        ...

    def export_now(self, command: ExportContacts) -> Iterator[bytes]:
        """The export file as chunks; a contacts error (an unknown status) raises before the first one."""
        ...
