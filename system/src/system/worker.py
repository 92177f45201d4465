"""What an rq worker runs: :func:`run_job` by import path, with the job id as its only argument.

The worker process builds its dependencies (distributed infrastructure, contacts client, job
functions) on the first job and keeps them for the next ones.
"""

from __future__ import annotations

from functools import cache

from contacts.client import HttpContactsClient
from kernel.jobqueue import JobExecutor
from kernel.settings import load_settings
from system.bootstrap import Mode, build_infrastructure
from system.jobregistry import job_executor
from system.server import internal_token


@cache
def _executor() -> JobExecutor:
    settings = load_settings()
    infra = build_infrastructure(settings, Mode.DISTRIBUTED, migrate=False)
    contacts = HttpContactsClient(settings.contacts_url, internal_token=internal_token(settings))
    return job_executor(infra, contacts)


def run_job(job_id: str) -> None:
    """Run one job to its end (state, progress and report are in the jobs table)."""
    _executor().run(job_id)
