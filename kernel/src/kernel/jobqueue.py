"""Jobs: long work (imports, exports, large generations) run off the request path, with progress.

A job is a row in ``jobs`` (state, progress, report) plus a run of a registered job function. The same
job function runs in both modes; only the runner differs:

* :class:`ThreadJobRunner` (embedded): a small thread pool in the server process.
* :class:`RqJobRunner` (distributed): an rq queue; ``callmanager worker`` processes call
  :func:`run_job` by import path with plain arguments (the job id), as rq prefers.

A job function receives a :class:`JobContext` and its JSON parameters and returns its report (a JSON
dict). It calls :meth:`JobContext.progress` as it goes: progress is saved, published on the bus as a
``job_progress`` message (topic ``<prefix>:jobs``), and raises :class:`JobCancelled` once a cancel was
requested, so cancellation takes effect at the next progress point.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from kernel.bus.port import Bus
from kernel.envelope import utcnow
from kernel.store.dialect import write_transaction
from kernel.store.schema import jobs

log = structlog.get_logger(__name__)

JOBS_TOPIC = "jobs"


def internal_failure(job_id: str) -> str:
    """What a user reads when a job broke on an unexpected error (the details are in the log, by job id)."""
    return (
        "El trabajo se detuvo por un error interno. Vuelva a intentarlo; si se repite, avise a TI con el "
        f"código {job_id}."
    )


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({JobState.FINISHED, JobState.FAILED, JobState.CANCELLED})

INTERRUPTED = "El servidor se detuvo mientras el trabajo corría; vuelva a lanzarlo (no se duplica nada)."
"""The error of a job a stopped embedded server left running (:meth:`ThreadJobRunner.recover`)."""


class JobCancelled(Exception):
    """Raised inside a job function at a progress point after a cancel was requested."""


class JobFailed(Exception):
    """A job function's way to fail with a message for the user (Spanish), and optionally a report."""

    def __init__(self, message: str, report: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.report = dict(report or {})


@dataclass(frozen=True, slots=True)
class Job:
    """A job as users see it (``GET /jobs/{id}``)."""

    id: str
    kind: str
    state: JobState
    done: int
    total: int
    params: dict[str, Any]
    report: dict[str, Any] | None
    error: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    def to_data(self) -> dict[str, Any]:
        """The JSON shape of PRODUCT.md: ``{id, kind, state, progress: {done, total}, report}``."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state.value,
            "progress": {"done": self.done, "total": self.total},
            "report": self.report,
            "error": self.error,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class JobStore:
    """Job rows: create, read, and the state changes a run makes."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, kind: str, params: Mapping[str, Any], created_by: str, total: int = 0) -> Job:
        """A new queued job."""
        now = utcnow()
        row = {
            "id": uuid.uuid4().hex,
            "kind": kind,
            "state": JobState.QUEUED.value,
            "done": 0,
            "total": total,
            "params": dict(params),
            "report": None,
            "error": None,
            "created_by": created_by,
            "cancel_requested": False,
            "created_at": now,
            "updated_at": now,
        }
        with write_transaction(self._engine) as conn:
            conn.execute(jobs.insert().values(**row))
        return _job(row)

    def get(self, job_id: str) -> Job | None:
        """The job, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return _job(dict(row)) if row is not None else None

    def unfinished(self) -> list[Job]:
        """Every job still queued or running, oldest first."""
        query = (
            sa.select(jobs)
            .where(jobs.c.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
            .order_by(jobs.c.created_at)
        )
        with self._engine.connect() as conn:
            return [_job(dict(row)) for row in conn.execute(query).mappings()]

    def mark(self, job_id: str, state: JobState, **values: Any) -> None:
        """Move a job to ``state`` (and set other columns), unless it already ended."""
        with write_transaction(self._engine) as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.state.not_in([s.value for s in FINAL_STATES]))
                .values(state=state.value, updated_at=utcnow(), **values)
            )

    def progress(self, job_id: str, done: int, total: int) -> bool:
        """Save progress; returns whether a cancel was requested."""
        with write_transaction(self._engine) as conn:
            conn.execute(
                jobs.update().where(jobs.c.id == job_id).values(done=done, total=total, updated_at=utcnow())
            )
            requested = conn.execute(sa.select(jobs.c.cancel_requested).where(jobs.c.id == job_id)).scalar()
        return bool(requested)

    def request_cancel(self, job_id: str) -> Job | None:
        """Ask a job to stop; a queued job is cancelled at once, a running one at its next progress point."""
        with write_transaction(self._engine) as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.state.not_in([s.value for s in FINAL_STATES]))
                .values(cancel_requested=True, updated_at=utcnow())
            )
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.state == JobState.QUEUED.value)
                .values(state=JobState.CANCELLED.value, updated_at=utcnow())
            )
        return self.get(job_id)


class JobContext:
    """What a running job function may do: report progress (which also checks for cancellation)."""

    def __init__(
        self, job: Job, store: JobStore, publish: Callable[[dict[str, Any]], None], interval: float = 0.5
    ) -> None:
        self.job = job
        self._store = store
        self._publish = publish
        self._interval = interval
        self._last = 0.0

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def progress(self, done: int, total: int, *, force: bool = False, **detail: Any) -> None:
        """Record progress (at most every ``interval`` seconds unless ``force``); raise if cancelled."""
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        cancelled = self._store.progress(self.job.id, done, total)
        self._publish(_progress_message(self.job, JobState.RUNNING, done, total, detail))
        if cancelled:
            raise JobCancelled(self.job.id)


JobFunction = Callable[[JobContext], dict[str, Any]]


class JobRunner(Protocol):
    """Starts jobs; where they run depends on the mode."""

    def submit(self, kind: str, params: Mapping[str, Any], created_by: str, total: int = 0) -> Job:
        """Create the job and start (or queue) it; returns the queued job."""
        ...


class JobExecutor:
    """Runs one job to its end: state changes, report, failure message, progress messages."""

    def __init__(
        self, store: JobStore, functions: Mapping[str, JobFunction], bus: Bus | None, topic: str
    ) -> None:
        self.store = store
        self._functions = functions
        self._bus = bus
        self._topic = topic

    def run(self, job_id: str) -> None:
        """Run the job ``job_id`` (called by a thread or an rq worker)."""
        job = self.store.get(job_id)
        if job is None or job.state in FINAL_STATES:
            return
        function = self._functions.get(job.kind)
        if function is None:
            self.store.mark(job_id, JobState.FAILED, error=f"tipo de trabajo desconocido: {job.kind}")
            return
        self.store.mark(job_id, JobState.RUNNING)
        context = JobContext(job, self.store, self.publish)
        self.publish(_progress_message(job, JobState.RUNNING, 0, job.total, {}))
        try:
            report = function(context)
        except JobCancelled:
            self.store.mark(job_id, JobState.CANCELLED)
            self._publish_final(job_id)
            return
        except JobFailed as exc:
            self.store.mark(job_id, JobState.FAILED, error=exc.message, report=exc.report or None)
            self._publish_final(job_id)
            return
        except Exception:
            log.exception("job.failed", job_id=job_id, kind=job.kind)
            self.store.mark(job_id, JobState.FAILED, error=internal_failure(job_id))
            self._publish_final(job_id)
            return
        self.store.mark(job_id, JobState.FINISHED, report=report)
        self._publish_final(job_id)

    def fail(self, job_id: str, message: str) -> None:
        """End an unfinished job as failed with ``message`` for its user, and announce it."""
        self.store.mark(job_id, JobState.FAILED, error=message)
        self._publish_final(job_id)

    def publish(self, message: dict[str, Any]) -> None:
        """Publish one ``job_progress`` message on the bus (if there is one)."""
        if self._bus is None:
            return
        try:
            self._bus.publish(self._topic, [orjson.dumps(message)])
        except Exception:
            log.exception("job.progress_unpublished", job_id=message.get("id"))

    def _publish_final(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is not None:
            self.publish(_progress_message(job, job.state, job.done, job.total, {}))


class ThreadJobRunner:
    """Embedded mode: jobs run on a small thread pool of this process."""

    def __init__(self, executor: JobExecutor, workers: int = 2) -> None:
        self._executor = executor
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")

    def submit(self, kind: str, params: Mapping[str, Any], created_by: str, total: int = 0) -> Job:
        job = self._executor.store.create(kind, params, created_by, total)
        self._pool.submit(self._executor.run, job.id)
        return job

    def recover(self) -> list[Job]:
        """Take over what the last server of this data folder left (call once, at start-up).

        Its threads are gone: a job it left ``running`` stopped somewhere in the middle and is marked
        failed, with a message saying so and a final ``job_progress`` (re-running an import is safe: it
        creates nothing twice); a job left ``queued`` never started and is run now. Returns the jobs
        found, as they were.
        """
        found = self._executor.store.unfinished()
        for job in found:
            if job.state is JobState.RUNNING:
                self._executor.fail(job.id, INTERRUPTED)
            else:
                self._pool.submit(self._executor.run, job.id)
        if found:
            log.warning(
                "jobs.recovered",
                failed=sum(j.state is JobState.RUNNING for j in found),
                requeued=sum(j.state is JobState.QUEUED for j in found),
            )
        return found

    def shutdown(self) -> None:
        """Wait for running jobs; queued ones stay queued in the table (:meth:`recover` runs them)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class RqJobRunner:
    """Distributed mode: jobs go to an rq queue; ``callmanager worker`` runs them."""

    def __init__(self, store: JobStore, queue: Any, function_path: str = "system.worker.run_job") -> None:
        self._store = store
        self._queue = queue
        self._function_path = function_path

    def submit(self, kind: str, params: Mapping[str, Any], created_by: str, total: int = 0) -> Job:
        job = self._store.create(kind, params, created_by, total)
        self._queue.enqueue(self._function_path, job.id, job_id=f"cm-{job.id}", job_timeout=6 * 3600)
        return job


def _progress_message(
    job: Job, state: JobState, done: int, total: int, detail: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "state": state.value,
        "progress": {"done": done, "total": total},
        "created_by": job.created_by,
        **detail,
    }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _job(row: Mapping[str, Any]) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        state=JobState(row["state"]),
        done=int(row["done"]),
        total=int(row["total"]),
        params=dict(row["params"] or {}),
        report=row["report"],
        error=row["error"],
        created_by=row["created_by"],
        created_at=_aware(row["created_at"]),
        updated_at=_aware(row["updated_at"]),
    )
