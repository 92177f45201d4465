"""What the generator and import/export processes run for rq, by import path with plain arguments.

``callmanager serve generator`` and ``serve importexport`` are rq workers on their service's queue
(:func:`system.server.serve_queue`). Jobs arrive as :func:`run_job` with the job id; immediate calls as
:func:`generate_now`, :func:`inspect_upload`, :func:`read_dnc_file`, :func:`import_records_now` and
:func:`export_file` with a command's ``to_data()``, answered with :func:`system.ports.answer_of`'s reply.
The process builds its dependencies (distributed infrastructure, its own contacts client, job functions)
on the first message and keeps them for the next ones (the workers do not fork per job).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from contacts.client import HttpContactsClient
from generator.commands import GenerateNumbers
from importexport.commands import ExportContacts, ImportRecords, InspectUpload, ReadDncFile
from kernel.jobqueue import JobExecutor
from kernel.settings import load_settings
from system.bootstrap import Mode, build_infrastructure
from system.jobregistry import generator_handlers, job_executor, rq_reaper, transfer_handlers
from system.ports import GeneratorHandlers, TransferHandlers, answer_of
from system.server import internal_token


@dataclass(frozen=True)
class _Parts:
    executor: JobExecutor
    generator: GeneratorHandlers
    transfer: TransferHandlers


@cache
def _parts() -> _Parts:
    settings = load_settings()
    infra = build_infrastructure(settings, Mode.DISTRIBUTED, migrate=False)
    contacts = HttpContactsClient(settings.contacts_url, internal_token=internal_token(settings))
    return _Parts(
        job_executor(infra, contacts), generator_handlers(infra, contacts), transfer_handlers(infra, contacts)
    )


def start_reaper() -> None:
    """Build this process's parts now and take back, from a background thread, the jobs whose worker
    died (:class:`kernel.jobqueue.JobReaper`): each is queued again, or failed after its last attempt."""
    import threading

    reaper = rq_reaper(load_settings(), _parts().executor)
    threading.Thread(
        target=reaper.run_forever, args=(threading.Event(),), name="job-reaper", daemon=True
    ).start()


def run_job(job_id: str) -> None:
    """Run one job to its end (state, progress and report are in the jobs table)."""
    _parts().executor.run(job_id)


def generate_now(data: dict[str, Any]) -> dict[str, Any]:
    """A small generation (``GenerateNumbers``), answered at once."""
    return answer_of(_parts().generator.generate, GenerateNumbers.from_data(data))


def inspect_upload(data: dict[str, Any]) -> dict[str, Any]:
    """The header mapping of an upload in the shared data folder (``InspectUpload``)."""
    return answer_of(_parts().transfer.inspect, InspectUpload.from_data(data))


def read_dnc_file(data: dict[str, Any]) -> dict[str, Any]:
    """The numbers of an uploaded do-not-call list in the shared data folder (``ReadDncFile``)."""
    return answer_of(_parts().transfer.read_dnc, ReadDncFile.from_data(data))


def import_records_now(data: dict[str, Any]) -> dict[str, Any]:
    """A JSON import (``ImportRecords``), answered with its report."""
    return answer_of(_parts().transfer.import_records, ImportRecords.from_data(data))


def export_file(data: dict[str, Any]) -> dict[str, Any]:
    """An immediate export (``ExportContacts``) written to the shared exports folder; its file name."""
    return answer_of(_parts().transfer.export_file, ExportContacts.from_data(data))
