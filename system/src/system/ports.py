"""The generator and import/export services behind the gateway's ports, in each mode.

:class:`GeneratorHandlers` and :class:`TransferHandlers` are the services' side: they run one public
command against a contacts client, in whichever process hosts the service. Embedded, the gateway's ports
call them directly (:class:`LocalGenerator`, :class:`LocalTransfer`) and jobs run on this process's
threads. Distributed, the ports (:class:`RqGenerator`, :class:`RqTransfer`) put jobs and calls on the
service's own rq queue, which ``callmanager serve generator`` / ``serve importexport`` consume
(:mod:`system.worker`); a call's answer comes back as rq's result, a refusal as the contract's error.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from contacts.client import ContactsClient
from contacts.errors import ContactError
from contacts.views import error_from_data, error_to_data
from gateway.ports import GeneratorPort, ServiceUnavailable, TransferPort
from generator.batch import GenerationRequest, run_generation
from generator.commands import GENERATE_JOB, GenerateNumbers, GenerationRefused
from generator.draw import GenerationError
from generator.views import generation_view
from importexport.commands import (
    EXPORT_JOB,
    IMPORT_JOB,
    ExportContacts,
    ImportRecords,
    ImportRefused,
    InspectUpload,
    ReadDncFile,
    StartImport,
)
from importexport.dnclist import read_dnc_file
from importexport.export import expected_total, stream_export, write_export
from importexport.headers import detect_headers
from importexport.pipeline import import_records
from importexport.spreadsheets import FileRejected, ReaderLimits, peek_rows
from importexport.views import import_view
from kernel.jobqueue import Job, JobRunner

log = structlog.get_logger(__name__)

CALL_SECONDS = {"generate": 30, "inspect": 30, "import_records": 120, "export": 300, "read_dnc": 120}
"""How long the gateway waits for a service's answer to a call before answering 503."""

WAIT_SLICE_SECONDS = 2
"""A call's wait blocks on Redis in slices this long: redis-py's default socket timeout (5 s) would cut a
longer blocking read short with a TimeoutError, answered 503 while the service was only busy with a job."""


@dataclass(frozen=True)
class GeneratorHandlers:
    """The generator service's commands, run in this process."""

    contacts: ContactsClient
    weights: Mapping[str, float]

    def generate(self, command: GenerateNumbers) -> dict[str, Any]:
        """Run ``command`` now; its view, or :class:`GenerationRefused`."""
        request = GenerationRequest.from_params(command.to_data())
        try:
            run = run_generation(request, self.weights, self.contacts, command.caller)
        except GenerationError as exc:
            raise GenerationRefused("generation_impossible", str(exc)) from exc
        return generation_view(run)


@dataclass(frozen=True)
class TransferHandlers:
    """The import/export service's immediate commands, run in this process."""

    contacts: ContactsClient
    limits: ReaderLimits
    exports_dir: Path

    def inspect(self, command: InspectUpload) -> dict[str, str]:
        """The upload's header mapping, or :class:`ImportRefused` with the reason."""
        try:
            return detect_headers(peek_rows(command.path, self.limits)).mapping()
        except FileRejected as exc:
            raise ImportRefused(exc.reason) from exc

    def read_dnc(self, command: ReadDncFile) -> dict[str, Any]:
        """The numbers of an uploaded do-not-call list, or :class:`ImportRefused` with the reason."""
        try:
            return read_dnc_file(command.path, self.limits).to_data()
        except FileRejected as exc:
            raise ImportRefused(exc.reason) from exc

    def import_records(self, command: ImportRecords) -> dict[str, Any]:
        """Import the records now; the report's view, or :class:`ImportRefused`."""
        try:
            report = import_records(
                command.records,
                self.contacts,
                command.caller,
                command.list_name,
                command.max_rows,
                command.dry_run,
                command.merge,
            )
        except FileRejected as exc:
            raise ImportRefused(exc.reason) from exc
        return import_view(report)

    def export_chunks(self, command: ExportContacts) -> Iterator[bytes]:
        """The export file as chunks, written as they are read; a contacts error raises before the first."""
        rows = self.contacts.export_contacts(command.caller, command.filters())
        first = list(itertools.islice(rows, 1))
        return stream_export(itertools.chain(first, rows), command.format)

    def export_file(self, command: ExportContacts) -> str:
        """Write the export to a new file in the exports folder; its name."""
        rows = self.contacts.export_contacts(command.caller, command.filters())
        first = list(itertools.islice(rows, 1))
        self.exports_dir.mkdir(parents=True, exist_ok=True)
        path = self.exports_dir / f"stream-{uuid.uuid4().hex}.{command.format}"
        try:
            write_export(path, itertools.chain(first, rows), command.format)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path.name

    def expected_total(self, command: ExportContacts) -> int:
        """How many contacts the export should hold (for the job's progress)."""
        return expected_total(self.contacts, command.caller, command.request())


class LocalGenerator(GeneratorPort):
    """Embedded: the generator runs in this process, its jobs on this process's job threads."""

    def __init__(self, handlers: GeneratorHandlers, runner: JobRunner) -> None:
        self._handlers = handlers
        self._runner = runner

    def generate(self, command: GenerateNumbers) -> dict[str, Any]:
        return self._handlers.generate(command)

    def start(self, command: GenerateNumbers, created_by: str) -> Job:
        return self._runner.submit(GENERATE_JOB, command.to_data(), created_by, total=command.count)


class LocalTransfer(TransferPort):
    """Embedded: import/export runs in this process, its jobs on this process's job threads."""

    def __init__(self, handlers: TransferHandlers, runner: JobRunner) -> None:
        self._handlers = handlers
        self._runner = runner

    def inspect(self, command: InspectUpload) -> dict[str, str]:
        return self._handlers.inspect(command)

    def start_import(self, command: StartImport, created_by: str) -> Job:
        return self._runner.submit(IMPORT_JOB, command.to_data(), created_by)

    def read_dnc(self, command: ReadDncFile) -> dict[str, Any]:
        return self._handlers.read_dnc(command)

    def import_records(self, command: ImportRecords) -> dict[str, Any]:
        return self._handlers.import_records(command)

    def start_export(self, command: ExportContacts, created_by: str) -> Job:
        total = self._handlers.expected_total(command)
        return self._runner.submit(EXPORT_JOB, command.to_data(), created_by, total=total)

    def export_now(self, command: ExportContacts) -> Iterator[bytes]:
        return self._handlers.export_chunks(command)


# --- over rq ------------------------------------------------------------------------------------------


def answer_of(call: Any, *args: Any) -> dict[str, Any]:
    """``call(*args)`` as a reply over rq: ``{"ok": value}``, or ``{"error": ...}`` for a typed refusal."""
    try:
        return {"ok": call(*args)}
    except GenerationRefused as exc:
        return {"error": {"kind": "generation", "code": exc.code, "message": exc.message}}
    except ImportRefused as exc:
        return {"error": {"kind": "import", "reason": exc.reason}}
    except ContactError as exc:
        return {"error": {"kind": "contacts", "data": error_to_data(exc)}}


def _raise(error: Mapping[str, Any]) -> None:
    """Raise the contract's error an :func:`answer_of` reply carries."""
    if error["kind"] == "generation":
        raise GenerationRefused(str(error["code"]), str(error["message"]))
    if error["kind"] == "import":
        raise ImportRefused(str(error["reason"]))
    raise error_from_data(error["data"])


class RqCalls:
    """Request/reply over one service's rq queue: the call goes to the front, its result is awaited."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def call(self, function: str, data: Mapping[str, Any], seconds: int) -> Any:
        """``function(data)`` run by a process consuming the queue; ServiceUnavailable past ``seconds``."""
        job = self._queue.enqueue(
            function,
            dict(data),
            at_front=True,
            ttl=seconds,  # not started by then: dropped, nobody waits for it any more
            result_ttl=60,
            failure_ttl=3600,
            job_timeout=seconds,
        )
        deadline = time.monotonic() + seconds
        result = job.latest_result(timeout=min(WAIT_SLICE_SECONDS, seconds))
        while result is None and (left := deadline - time.monotonic()) > 0:
            result = job.latest_result(timeout=max(1, min(WAIT_SLICE_SECONDS, round(left))))
        if result is None:
            log.warning("service.call_unanswered", function=function, queue=self._queue.name)
            raise ServiceUnavailable(f"{self._queue.name}: {function} sin respuesta en {seconds} s")
        if result.type is not result.Type.SUCCESSFUL:
            raise RuntimeError(f"{function} failed in {self._queue.name}: {result.exc_string}")
        reply: dict[str, Any] = result.return_value
        if "error" in reply:
            _raise(reply["error"])
        return reply["ok"]


class RqGenerator(GeneratorPort):
    """Distributed: calls and jobs go to the generator's queue (``callmanager serve generator``)."""

    def __init__(self, runner: JobRunner, calls: RqCalls) -> None:
        self._runner = runner
        self._calls = calls

    def generate(self, command: GenerateNumbers) -> dict[str, Any]:
        answer: dict[str, Any] = self._calls.call(
            "system.worker.generate_now", command.to_data(), CALL_SECONDS["generate"]
        )
        return answer

    def start(self, command: GenerateNumbers, created_by: str) -> Job:
        return self._runner.submit(GENERATE_JOB, command.to_data(), created_by, total=command.count)


class RqTransfer(TransferPort):
    """Distributed: calls and jobs go to import/export's queue (``callmanager serve importexport``).

    Files travel through the data folder gateway and service share: the upload (by path), and an
    immediate export, written there by the service and streamed from there (then removed) by the gateway.
    """

    def __init__(
        self, runner: JobRunner, calls: RqCalls, contacts: ContactsClient, exports_dir: Path
    ) -> None:
        self._runner = runner
        self._calls = calls
        self._contacts = contacts
        self._exports_dir = exports_dir

    def inspect(self, command: InspectUpload) -> dict[str, str]:
        headers: dict[str, str] = self._calls.call(
            "system.worker.inspect_upload", command.to_data(), CALL_SECONDS["inspect"]
        )
        return headers

    def start_import(self, command: StartImport, created_by: str) -> Job:
        return self._runner.submit(IMPORT_JOB, command.to_data(), created_by)

    def read_dnc(self, command: ReadDncFile) -> dict[str, Any]:
        found: dict[str, Any] = self._calls.call(
            "system.worker.read_dnc_file", command.to_data(), CALL_SECONDS["read_dnc"]
        )
        return found

    def import_records(self, command: ImportRecords) -> dict[str, Any]:
        report: dict[str, Any] = self._calls.call(
            "system.worker.import_records_now", command.to_data(), CALL_SECONDS["import_records"]
        )
        return report

    def start_export(self, command: ExportContacts, created_by: str) -> Job:
        total = expected_total(self._contacts, command.caller, command.request())
        return self._runner.submit(EXPORT_JOB, command.to_data(), created_by, total=total)

    def export_now(self, command: ExportContacts) -> Iterator[bytes]:
        name = self._calls.call("system.worker.export_file", command.to_data(), CALL_SECONDS["export"])
        return _chunks_then_remove(self._exports_dir / Path(str(name)).name)


def _chunks_then_remove(path: Path, size: int = 256 << 10) -> Iterator[bytes]:
    """The file's bytes in chunks; the file is removed once read (or abandoned)."""
    try:
        with path.open("rb") as file:
            while chunk := file.read(size):
                yield chunk
    finally:
        path.unlink(missing_ok=True)
