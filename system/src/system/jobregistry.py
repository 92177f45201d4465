"""Every service's job functions; the generator and import/export ports of each mode (composition root)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import sqlalchemy.exc

from contacts.client import ContactsClient, ContactsUnavailable
from gateway.ports import GeneratorPort, TransferPort
from gateway.routes.transfer import TransferConfig
from generator.generatejob import GENERATE_JOB, generate_job
from generator.service import weights_from_settings
from importexport.export import EXPORT_JOB, export_job
from importexport.pipeline import IMPORT_JOB, import_job, reader_limits
from importexport.writers import write_csv
from kernel.jobqueue import (
    JOBS_TOPIC,
    Job,
    JobExecutor,
    JobFunction,
    JobReaper,
    JobStore,
    RqJobRunner,
    ThreadJobRunner,
    rq_undelivered,
)
from kernel.settings import Settings
from system.bootstrap import Infrastructure, Mode
from system.ports import (
    GeneratorHandlers,
    LocalGenerator,
    LocalTransfer,
    RqCalls,
    RqGenerator,
    RqTransfer,
    TransferHandlers,
)
from system.reader import READER_COMMAND

GENERATOR_QUEUE = "generator"
IMPORTEXPORT_QUEUE = "importexport"
KIND_QUEUES = {GENERATE_JOB: GENERATOR_QUEUE, IMPORT_JOB: IMPORTEXPORT_QUEUE, EXPORT_JOB: IMPORTEXPORT_QUEUE}
"""The service queue each kind of job runs on (distributed mode)."""

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ContactsUnavailable,
    ConnectionError,
    sqlalchemy.exc.OperationalError,
)
"""Errors a job function is run again for, after a pause: the contacts service restarting, a dropped
connection (the database's included)."""


def job_functions(infra: Infrastructure, contacts: ContactsClient) -> Mapping[str, JobFunction]:
    """Every kind of job, bound to this process's dependencies."""
    exports = exports_dir(infra.settings)
    weights = weights_from_settings(infra.settings)
    reports = reports_dir(infra.settings)
    max_rows = infra.settings.max_import_rows
    limits = reader_limits(max_upload_bytes(infra.settings), max_rows)
    # Embedded, contacts decides and writes in this process: a large file is read in a process of its
    # own beside it. Distributed, the contacts service does that in its own process already.
    read_apart = None if infra.mode is Mode.EMBEDDED else False
    return {
        GENERATE_JOB: lambda context: generate_job(
            context, contacts=contacts, exports_dir=exports, write_table=write_csv, weights=weights
        ),
        IMPORT_JOB: lambda context: import_job(
            context,
            contacts=contacts,
            reports_dir=reports,
            limits=limits,
            max_rows=max_rows,
            reader_process=read_apart,
            reader_command=READER_COMMAND,
        ),
        EXPORT_JOB: lambda context: export_job(context, contacts=contacts, exports_dir=exports),
    }


def exports_dir(settings: Settings) -> Path:
    """Where jobs leave files for download (``GET /jobs/{id}/download``)."""
    return settings.data_dir / "exports"


def reports_dir(settings: Settings) -> Path:
    """Where import jobs leave their reports (``GET /jobs/{id}/report``)."""
    return settings.data_dir / "reports"


def max_upload_bytes(settings: Settings) -> int:
    """The upload limit of the settings in bytes."""
    return settings.max_upload_mb << 20


def transfer_config(settings: Settings) -> TransferConfig:
    """Folders and limits of the gateway's import/export routes."""
    return TransferConfig(
        uploads_dir=settings.uploads_path,
        reports_dir=reports_dir(settings),
        max_upload_bytes=max_upload_bytes(settings),
        max_import_rows=settings.max_import_rows,
    )


def job_executor(infra: Infrastructure, contacts: ContactsClient) -> JobExecutor:
    """Runs jobs in this process (embedded server threads, or a distributed worker)."""
    return JobExecutor(
        JobStore(infra.engine),
        job_functions(infra, contacts),
        infra.bus,
        infra.topic(JOBS_TOPIC),
        lease=infra.settings.job_lease_seconds,
        transient=TRANSIENT_ERRORS,
        rerunnable=rerunnable,
    )


def rerunnable(job: Job) -> bool:
    """Whether ``job`` may run again from the start: every kind but a generation that saves its numbers
    (a second run would draw and save another set beside the first one's)."""
    return not (job.kind == GENERATE_JOB and job.params.get("save"))


def rq_reaper(settings: Settings, executor: JobExecutor) -> JobReaper:
    """A reaper of a distributed worker: jobs it takes back go to their service's queue again, those
    whose worker died and those queued whose rq job is gone from Redis (after the lease as grace)."""
    import redis
    from rq import Queue

    assert settings.redis_url is not None
    connection = redis.Redis.from_url(settings.redis_url)
    runners = {
        service: RqJobRunner(executor.store, Queue(queue_name(settings, service), connection=connection))
        for service in (GENERATOR_QUEUE, IMPORTEXPORT_QUEUE)
    }

    def resubmit(job: Job) -> None:
        runners[KIND_QUEUES.get(job.kind, IMPORTEXPORT_QUEUE)].enqueue(job)

    def undelivered(jobs: Sequence[Job]) -> set[str]:
        return rq_undelivered(connection, jobs)

    return JobReaper(executor, resubmit, undelivered=undelivered)


def generator_handlers(infra: Infrastructure, contacts: ContactsClient) -> GeneratorHandlers:
    """The generator's commands over ``contacts``, with the configured weights."""
    return GeneratorHandlers(contacts, weights_from_settings(infra.settings))


def transfer_handlers(infra: Infrastructure, contacts: ContactsClient) -> TransferHandlers:
    """Import/export's immediate commands over ``contacts``, with the configured limits."""
    settings = infra.settings
    limits = reader_limits(max_upload_bytes(settings), settings.max_import_rows)
    return TransferHandlers(contacts, limits, exports_dir(settings))


def service_ports(infra: Infrastructure, contacts: ContactsClient) -> tuple[GeneratorPort, TransferPort]:
    """The gateway's generator and import/export ports: this process (embedded) or their rq queues.

    Embedded, jobs run on threads of this process, and the jobs the last server of the data folder left
    unfinished are taken over first (``ThreadJobRunner.recover``): one embedded server per data folder,
    as the in-process bus requires; a reaper thread re-runs a job whose lease lapsed. Distributed,
    ``contacts`` is only the gateway's (to size an export
    job); the services use their own.
    """
    if infra.mode is Mode.EMBEDDED:
        runner = ThreadJobRunner(job_executor(infra, contacts))
        infra.on_close(runner.shutdown)
        runner.recover()
        infra.background.spawn("job-reaper", runner.reaper().run_forever)
        return (
            LocalGenerator(generator_handlers(infra, contacts), runner),
            LocalTransfer(transfer_handlers(infra, contacts), runner),
        )
    import redis
    from rq import Queue

    assert infra.settings.redis_url is not None
    connection = redis.Redis.from_url(infra.settings.redis_url)
    store = JobStore(infra.engine)
    generator = Queue(queue_name(infra.settings, GENERATOR_QUEUE), connection=connection)
    transfer = Queue(queue_name(infra.settings, IMPORTEXPORT_QUEUE), connection=connection)
    return (
        RqGenerator(RqJobRunner(store, generator), RqCalls(generator)),
        RqTransfer(RqJobRunner(store, transfer), RqCalls(transfer), contacts, exports_dir(infra.settings)),
    )


def queue_name(settings: Settings, service: str) -> str:
    """The rq queue of ``service`` (generator, importexport) in this deployment."""
    return f"{settings.bus_prefix}-{service}"
