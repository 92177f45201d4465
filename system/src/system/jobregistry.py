"""The job functions of every service, and the runner of each mode (composition root)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from contacts.client import ContactsClient
from gateway.routes.transfer import TransferConfig
from generator.generatejob import GENERATE_JOB, generate_job
from generator.service import weights_from_settings
from importexport.export import EXPORT_JOB, export_job
from importexport.pipeline import IMPORT_JOB, import_job, reader_limits
from importexport.writers import write_csv
from kernel.jobqueue import (
    JOBS_TOPIC,
    JobExecutor,
    JobFunction,
    JobRunner,
    JobStore,
    RqJobRunner,
    ThreadJobRunner,
)
from kernel.settings import Settings
from system.bootstrap import Infrastructure, Mode
from system.reader import READER_COMMAND


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
        JobStore(infra.engine), job_functions(infra, contacts), infra.bus, infra.topic(JOBS_TOPIC)
    )


def job_runner(infra: Infrastructure, contacts: ContactsClient) -> JobRunner:
    """Threads of this process in embedded mode; the rq queue in distributed mode.

    Embedded, the jobs the last server of the data folder left unfinished are taken over first
    (``ThreadJobRunner.recover``): one embedded server per data folder, as the in-process bus requires.
    """
    if infra.mode is Mode.EMBEDDED:
        runner = ThreadJobRunner(job_executor(infra, contacts))
        infra.on_close(runner.shutdown)
        runner.recover()
        return runner
    import redis
    from rq import Queue

    assert infra.settings.redis_url is not None
    connection = redis.Redis.from_url(infra.settings.redis_url)
    return RqJobRunner(JobStore(infra.engine), Queue(job_queue_name(infra), connection=connection))


def job_queue_name(infra: Infrastructure) -> str:
    """The rq queue of this deployment."""
    return f"{infra.settings.bus_prefix}-jobs"
