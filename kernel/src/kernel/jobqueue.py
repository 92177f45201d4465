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

Leases: whoever runs a job holds its lease (``lease_owner``, ``lease_until``) and renews it from a
heartbeat thread every few seconds and at each progress report. A ``running`` job whose lease lapsed
lost its process (``kill -9``, a crash, a lost machine): a :class:`JobReaper` (a background thread of
every process that runs jobs) takes it with a conditional update, so two reapers never both take the
same job, and queues it again to run from the start (jobs are idempotent: an import run again writes
nothing twice), up to :data:`MAX_ATTEMPTS` starts (``attempts``); then it fails with a plain message.

Delivery: a ``queued`` job waits for its runner's message (an rq job in Redis, distributed). A message can
be lost without its job ending (Redis flushed or restarted without persistence, a key evicted): a reaper
given the runner's ``undelivered`` check also takes the jobs queued for longer than a grace period whose
message is gone and sends them again, each loss counted as an attempt, so the same limit ends a job whose
messages keep disappearing (:func:`message_lost`).
A job's ``params["path"]`` (an import's upload) belongs to the job and is deleted when it ends.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
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

LEASE_SECONDS = 30.0
"""How long a job's lease lasts unless renewed (the heartbeat renews it every sixth of that)."""

MAX_ATTEMPTS = 3
"""How many times a job is started before a lost process fails it for good."""

RETRY_DELAYS: tuple[float, ...] = (2.0, 5.0, 15.0)
"""The waits before running a job function again after a transient error (a service restarting)."""

UPLOAD_PARAM = "path"
"""The job parameter naming a file the job owns (an import's upload): deleted when the job ends."""

Clock = Callable[[], datetime]


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

UNAVAILABLE = (
    "Un servicio necesario no respondió después de varios intentos. Vuelva a lanzar el trabajo en unos "
    "minutos (no se duplica nada); si se repite, avise a TI."
)
"""The error of a job whose transient errors (a service restarting, a dropped connection) outlasted its
retries."""


def worker_lost(attempts: int) -> str:
    """The error of a job whose process stopped ``attempts`` times (found by :class:`JobReaper`)."""
    times = "1 vez" if attempts == 1 else f"{attempts} veces"
    return (
        f"El proceso que ejecutaba el trabajo se detuvo {times}; no se intentará de nuevo. Vuelva a "
        "lanzarlo (no se duplica nada); si se repite, avise a TI."
    )


def message_lost(attempts: int) -> str:
    """The error of a queued job whose message to the workers was lost once too often (found by
    :class:`JobReaper`)."""
    times = "1 vez" if attempts == 1 else f"{attempts} veces"
    return (
        f"El trabajo no llegó a los procesos que lo ejecutan ({times}); no se intentará de nuevo. Vuelva a "
        "lanzarlo (no se duplica nada); si se repite, avise a TI."
    )


NOT_QUEUED = "No se pudo poner el trabajo en cola; no se hizo nada. Vuelva a intentarlo en unos minutos."
"""The error of a job whose runner refused it at once (the queue unreachable): it will never run."""


def discard_upload(job: Job) -> None:
    """Delete the file the job owns (``params["path"]``, an import's upload), if any."""
    path = job.params.get(UPLOAD_PARAM)
    if path:
        Path(str(path)).unlink(missing_ok=True)


class JobCancelled(Exception):
    """Raised inside a job function at a progress point after a cancel was requested."""


class LeaseLost(Exception):
    """Raised inside a job function once its run no longer holds the job's lease (another took it)."""


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
    attempts: int = 0
    lease_until: datetime | None = None
    cancel_requested: bool = False

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
            "attempts": self.attempts,
        }


_ENDED = [s.value for s in FINAL_STATES]


class JobStore:
    """Job rows: create, read, and the state changes a run makes (``clock`` is injectable for tests)."""

    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    def create(self, kind: str, params: Mapping[str, Any], created_by: str, total: int = 0) -> Job:
        """A new queued job."""
        now = self._clock()
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
            "attempts": 0,
            "lease_owner": None,
            "lease_until": None,
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

    def waiting(self, since: datetime) -> list[Job]:
        """The jobs queued (last changed) at or before ``since``, oldest first."""
        query = (
            sa.select(jobs)
            .where(jobs.c.state == JobState.QUEUED.value, jobs.c.updated_at <= since)
            .order_by(jobs.c.created_at)
        )
        with self._engine.connect() as conn:
            return [_job(dict(row)) for row in conn.execute(query).mappings()]

    def mark(self, job_id: str, state: JobState, owner: str | None = None, **values: Any) -> bool:
        """Move a job to ``state`` (and set other columns), unless it already ended; with ``owner``, only
        while that run holds the lease. Returns whether the job changed."""
        condition = [jobs.c.id == job_id, jobs.c.state.not_in(_ENDED)]
        if owner is not None:
            condition.append(jobs.c.lease_owner == owner)
        if state in FINAL_STATES:
            values = {"lease_owner": None, "lease_until": None, **values}
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                jobs.update().where(*condition).values(state=state.value, updated_at=self._clock(), **values)
            )
        return result.rowcount == 1

    def claim(self, job_id: str, owner: str, lease: float = LEASE_SECONDS) -> Job | None:
        """Start a run of the job as ``owner``: it must be queued, or running with a lapsed lease (its
        process is gone). Counts the attempt; None when the job is not there to take."""
        now = self._clock()
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                jobs.update()
                .where(
                    jobs.c.id == job_id,
                    sa.or_(jobs.c.state == JobState.QUEUED.value, self._lapsed(now)),
                )
                .values(
                    state=JobState.RUNNING.value,
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=lease),
                    attempts=jobs.c.attempts + 1,
                    updated_at=now,
                )
            )
        return self.get(job_id) if result.rowcount == 1 else None

    def renew(self, job_id: str, owner: str, lease: float = LEASE_SECONDS) -> tuple[bool, bool]:
        """Extend ``owner``'s lease; returns (the lease is still held, a cancel was requested)."""
        now = self._clock()
        with write_transaction(self._engine) as conn:
            held = conn.execute(
                jobs.update()
                .where(
                    jobs.c.id == job_id,
                    jobs.c.lease_owner == owner,
                    jobs.c.state == JobState.RUNNING.value,
                )
                .values(lease_until=now + timedelta(seconds=lease))
            ).rowcount
            requested = conn.execute(sa.select(jobs.c.cancel_requested).where(jobs.c.id == job_id)).scalar()
        return held == 1, bool(requested)

    def release(self, job_id: str, owner: str) -> None:
        """Let the lease lapse now (the run's process is stopping): a reaper takes the job at once."""
        with write_transaction(self._engine) as conn:
            conn.execute(
                jobs.update()
                .where(
                    jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.state == JobState.RUNNING.value
                )
                .values(lease_until=self._clock())
            )

    def progress(
        self, job_id: str, done: int, total: int, owner: str | None = None, lease: float = LEASE_SECONDS
    ) -> bool:
        """Save progress (and renew ``owner``'s lease); returns whether a cancel was requested.

        Raises :class:`LeaseLost` when ``owner`` no longer holds the lease."""
        now = self._clock()
        condition = [jobs.c.id == job_id]
        values: dict[str, Any] = {"done": done, "total": total, "updated_at": now}
        if owner is not None:
            condition += [jobs.c.lease_owner == owner, jobs.c.state == JobState.RUNNING.value]
            values["lease_until"] = now + timedelta(seconds=lease)
        with write_transaction(self._engine) as conn:
            changed = conn.execute(jobs.update().where(*condition).values(**values)).rowcount
            requested = conn.execute(sa.select(jobs.c.cancel_requested).where(jobs.c.id == job_id)).scalar()
        if owner is not None and changed != 1:
            raise LeaseLost(job_id)
        return bool(requested)

    def request_cancel(self, job_id: str) -> Job | None:
        """Ask a job to stop. A queued job, or a running one nobody holds the lease of (its process died),
        is cancelled at once; a running one at its next progress point or heartbeat."""
        now = self._clock()
        with write_transaction(self._engine) as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.state.not_in(_ENDED))
                .values(cancel_requested=True, updated_at=now)
            )
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, sa.or_(jobs.c.state == JobState.QUEUED.value, self._lapsed(now)))
                .values(state=JobState.CANCELLED.value, lease_owner=None, lease_until=None, updated_at=now)
            )
        return self.get(job_id)

    def lapsed(self) -> list[Job]:
        """The running jobs whose lease lapsed (or that never had one), oldest first."""
        query = sa.select(jobs).where(self._lapsed(self._clock())).order_by(jobs.c.created_at)
        with self._engine.connect() as conn:
            return [_job(dict(row)) for row in conn.execute(query).mappings()]

    def take_lapsed(self, job: Job, max_attempts: int = MAX_ATTEMPTS) -> Job | None:
        """Take a job whose lease lapsed (as read in ``job``), with one conditional update: queued again
        to run from the start, cancelled if a cancel was requested, or failed after ``max_attempts``
        starts. None when another reaper (or a run) took it first."""
        now = self._clock()
        if job.cancel_requested:
            values: dict[str, Any] = {"state": JobState.CANCELLED.value}
        elif job.attempts >= max_attempts:
            values = {"state": JobState.FAILED.value, "error": worker_lost(job.attempts)}
        else:
            values = {"state": JobState.QUEUED.value}
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                jobs.update()
                .where(
                    jobs.c.id == job.id,
                    jobs.c.attempts == job.attempts,
                    jobs.c.cancel_requested == job.cancel_requested,
                    self._lapsed(now),
                )
                .values(lease_owner=None, lease_until=None, updated_at=now, **values)
            )
        return self.get(job.id) if result.rowcount == 1 else None

    def take_undelivered(self, job: Job, max_attempts: int = MAX_ATTEMPTS) -> Job | None:
        """Take a queued job whose message was lost (as read in ``job``), with one conditional update: the
        loss counts as an attempt and the job stays queued to be sent again, or it fails once
        ``max_attempts`` are spent. None when a run (or another reaper) took it first."""
        now = self._clock()
        values: dict[str, Any] = {"attempts": job.attempts + 1}
        if job.attempts >= max_attempts:
            values = {"state": JobState.FAILED.value, "error": message_lost(job.attempts)}
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                jobs.update()
                .where(
                    jobs.c.id == job.id,
                    jobs.c.state == JobState.QUEUED.value,
                    jobs.c.attempts == job.attempts,
                )
                .values(updated_at=now, **values)
            )
        return self.get(job.id) if result.rowcount == 1 else None

    @staticmethod
    def _lapsed(now: datetime) -> sa.ColumnElement[bool]:
        return sa.and_(
            jobs.c.state == JobState.RUNNING.value,
            sa.or_(jobs.c.lease_until.is_(None), jobs.c.lease_until <= now),
        )


class JobContext:
    """What a running job function may do: report progress (which also checks for cancellation)."""

    def __init__(
        self,
        job: Job,
        store: JobStore,
        publish: Callable[[dict[str, Any]], None],
        interval: float = 0.5,
        *,
        owner: str | None = None,
        lease: float = LEASE_SECONDS,
    ) -> None:
        self.job = job
        self._store = store
        self._publish = publish
        self._interval = interval
        self._owner = owner
        self._lease = lease
        self._last = 0.0
        self.cancel_seen = threading.Event()
        """Set by the heartbeat when a cancel was requested: the next progress call raises."""
        self.lease_lost = threading.Event()
        """Set by the heartbeat when another run took the lease: the next progress call raises."""

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def progress(self, done: int, total: int, *, force: bool = False, **detail: Any) -> None:
        """Record progress (at most every ``interval`` seconds unless ``force``); raise if cancelled."""
        self.check()
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        cancelled = self._store.progress(self.job.id, done, total, self._owner, self._lease)
        self._publish(_progress_message(self.job, JobState.RUNNING, done, total, detail))
        if cancelled:
            raise JobCancelled(self.job.id)

    def check(self) -> None:
        """Raise :class:`LeaseLost` or :class:`JobCancelled` if the heartbeat saw either."""
        if self.lease_lost.is_set():
            raise LeaseLost(self.job.id)
        if self.cancel_seen.is_set():
            raise JobCancelled(self.job.id)

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, ending early (raising) on a cancel or a lost lease the heartbeat saw."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.check()
            time.sleep(min(left, 0.1))
        self.check()


JobFunction = Callable[[JobContext], dict[str, Any]]


class JobRunner(Protocol):
    """Starts jobs; where they run depends on the mode."""

    def submit(self, kind: str, params: Mapping[str, Any], created_by: str, total: int = 0) -> Job:
        """Create the job and start (or queue) it; returns the queued job."""
        ...


class _Heartbeat:
    """Renews a run's lease every ``every`` seconds on a thread of its own while the job function runs."""

    def __init__(self, store: JobStore, context: JobContext, owner: str, lease: float, every: float) -> None:
        self._store = store
        self._context = context
        self._owner = owner
        self._lease = lease
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{context.job.id[:8]}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(self._every + 5)

    def _run(self) -> None:
        job_id = self._context.job.id
        while not self._stop.wait(self._every):
            try:
                held, requested = self._store.renew(job_id, self._owner, self._lease)
            except Exception:
                log.warning("job.lease_not_renewed", job_id=job_id, exc_info=True)
                continue
            if requested:
                self._context.cancel_seen.set()
            if not held:
                log.warning("job.lease_lost", job_id=job_id)
                self._context.lease_lost.set()
                return


class JobExecutor:
    """Runs one job to its end: lease, state changes, report, failure message, progress messages.

    ``transient`` errors (a service restarting, a dropped connection) run the job function again from
    the start after each of ``retry_delays``, then fail the job with :data:`UNAVAILABLE`.
    """

    def __init__(
        self,
        store: JobStore,
        functions: Mapping[str, JobFunction],
        bus: Bus | None,
        topic: str,
        *,
        lease: float = LEASE_SECONDS,
        transient: tuple[type[BaseException], ...] = (),
        retry_delays: Sequence[float] = RETRY_DELAYS,
        rerunnable: Callable[[Job], bool] = lambda job: True,
    ) -> None:
        self.store = store
        self._functions = functions
        self._bus = bus
        self._topic = topic
        self.lease = lease
        self._transient = transient
        self._retry_delays = tuple(retry_delays)
        self.rerunnable = rerunnable
        """Whether a job may run again from the start (a transient error, a lost process): a job that
        is not (a generation saving random numbers) fails instead."""

    def run(self, job_id: str) -> None:
        """Run the job ``job_id`` (called by a thread or an rq worker)."""
        job = self.store.get(job_id)
        if job is None or job.state in FINAL_STATES:
            return
        function = self._functions.get(job.kind)
        if function is None:
            self.store.mark(job_id, JobState.FAILED, error=f"tipo de trabajo desconocido: {job.kind}")
            return
        owner = uuid.uuid4().hex
        claimed = self.store.claim(job_id, owner, self.lease)
        if claimed is None:
            log.info("job.not_claimed", job_id=job_id, state=job.state.value)
            return
        context = JobContext(claimed, self.store, self.publish, owner=owner, lease=self.lease)
        self.publish(_progress_message(claimed, JobState.RUNNING, 0, claimed.total, {}))
        log.info("job.started", job_id=job_id, kind=job.kind, attempt=claimed.attempts)
        try:
            with _Heartbeat(self.store, context, owner, self.lease, max(self.lease / 6, 0.05)):
                state, values = self._attempts(function, context)
        except BaseException:
            # The process is stopping (SystemExit, KeyboardInterrupt): another may take the job at once.
            self.store.release(job_id, owner)
            raise
        if state is None:
            log.warning("job.abandoned", job_id=job_id, reason="lease lost")
            return
        if self.store.mark(job_id, state, owner, **values):
            ended = self.store.get(job_id)
            if ended is not None:
                discard_upload(ended)
        self._publish_final(job_id)

    def _attempts(self, function: JobFunction, context: JobContext) -> tuple[JobState | None, dict[str, Any]]:
        """The job function's outcome as (final state, columns); (None, {}) when the lease was lost."""
        job = context.job
        delays = iter(self._retry_delays if self.rerunnable(job) else ())
        while True:
            try:
                return JobState.FINISHED, {"report": function(context)}
            except JobCancelled:
                return JobState.CANCELLED, {}
            except LeaseLost:
                return None, {}
            except JobFailed as exc:
                return JobState.FAILED, {"error": exc.message, "report": exc.report or None}
            except self._transient as exc:
                delay = next(delays, None)
                if delay is None:
                    log.error("job.unavailable", job_id=job.id, kind=job.kind, error=repr(exc))
                    return JobState.FAILED, {"error": UNAVAILABLE}
                log.warning("job.transient_error", job_id=job.id, error=repr(exc), retry_in=delay)
                try:
                    context.wait(delay)
                except JobCancelled:
                    return JobState.CANCELLED, {}
                except LeaseLost:
                    return None, {}
            except Exception:
                log.exception("job.failed", job_id=job.id, kind=job.kind)
                return JobState.FAILED, {"error": internal_failure(job.id)}

    def fail(self, job_id: str, message: str) -> None:
        """End an unfinished job as failed with ``message`` for its user, and announce it."""
        if self.store.mark(job_id, JobState.FAILED, error=message):
            ended = self.store.get(job_id)
            if ended is not None:
                discard_upload(ended)
        self._publish_final(job_id)

    def publish(self, message: dict[str, Any]) -> None:
        """Publish one ``job_progress`` message on the bus (if there is one)."""
        if self._bus is None:
            return
        try:
            self._bus.publish(self._topic, [orjson.dumps(message)])
        except Exception:
            log.exception("job.progress_unpublished", job_id=message.get("id"))

    def publish_final(self, job: Job) -> None:
        """Announce ``job``'s final state."""
        self.publish(_progress_message(job, job.state, job.done, job.total, {}))

    def _publish_final(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is not None:
            self.publish_final(job)


Undelivered = Callable[[Sequence[Job]], Collection[str]]
"""Which of some queued jobs no longer have their runner's message (the ids): see :func:`rq_undelivered`."""


class JobReaper:
    """Takes back the running jobs whose lease lapsed (their process died): ``resubmit`` runs one again
    from the start; after ``max_attempts`` starts it fails, and a requested cancel ends it cancelled.

    With ``undelivered`` it also sends again the jobs queued for more than ``grace`` seconds (the lease
    by default) whose message the check says is gone, counting each loss as an attempt.

    Every process that runs jobs runs one (:meth:`run_forever` on a background thread); the store's
    conditional updates give each job to one reaper only.
    """

    def __init__(
        self,
        executor: JobExecutor,
        resubmit: Callable[[Job], object],
        *,
        max_attempts: int = MAX_ATTEMPTS,
        undelivered: Undelivered | None = None,
        grace: float | None = None,
    ) -> None:
        self._executor = executor
        self._resubmit = resubmit
        self._max_attempts = max_attempts
        self._undelivered = undelivered
        self._grace = executor.lease if grace is None else grace

    @property
    def every(self) -> float:
        """How often to look: a dead process's job is found within ``lease + every`` seconds."""
        return max(self._executor.lease / 3, 0.05)

    def reap(self) -> list[Job]:
        """One pass; returns the jobs taken, as they are after it (queued, failed or cancelled)."""
        store = self._executor.store
        taken: list[Job] = []
        for job in store.lapsed():
            limit = self._max_attempts if self._executor.rerunnable(job) else min(job.attempts, 1)
            after = store.take_lapsed(job, limit)
            if after is None:
                continue
            taken.append(after)
            log.warning(
                "job.reaped", job_id=job.id, kind=job.kind, attempts=job.attempts, state=after.state.value
            )
            self._settle(after)
        return taken + self._redeliver()

    def _redeliver(self) -> list[Job]:
        """Send again the jobs queued past the grace period whose message is gone; the jobs taken."""
        if self._undelivered is None:
            return []
        store = self._executor.store
        waiting = store.waiting(store.now() - timedelta(seconds=self._grace))
        lost = set(self._undelivered(waiting)) if waiting else set()
        taken: list[Job] = []
        for job in waiting:
            if job.id not in lost:
                continue
            after = store.take_undelivered(job, self._max_attempts)
            if after is None:
                continue
            taken.append(after)
            log.warning(
                "job.undelivered",
                job_id=job.id,
                kind=job.kind,
                attempts=job.attempts,
                state=after.state.value,
            )
            self._settle(after)
        return taken

    def _settle(self, after: Job) -> None:
        """Send a job taken back again, or end it (upload deleted, final state announced)."""
        if after.state is JobState.QUEUED:
            try:
                self._resubmit(after)
            except Exception:
                log.exception("job.not_resubmitted", job_id=after.id)
                self._executor.fail(after.id, internal_failure(after.id))
        else:
            discard_upload(after)
            self._executor.publish_final(after)

    def run_forever(self, stop: threading.Event) -> None:
        """:meth:`reap` every :attr:`every` seconds until ``stop``."""
        while not stop.wait(self.every):
            try:
                self.reap()
            except Exception:
                log.exception("job.reaper_failed")


class ThreadJobRunner:
    """Embedded mode: jobs run on a small thread pool of this process."""

    def __init__(self, executor: JobExecutor, workers: int = 2) -> None:
        self._executor = executor
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")

    def submit(self, kind: str, params: Mapping[str, Any], created_by: str, total: int = 0) -> Job:
        job = self._executor.store.create(kind, params, created_by, total)
        self._pool.submit(self._executor.run, job.id)
        return job

    def reaper(self, max_attempts: int = MAX_ATTEMPTS) -> JobReaper:
        """A reaper that runs the jobs it takes back on this runner's threads."""
        return JobReaper(
            self._executor,
            lambda job: self._pool.submit(self._executor.run, job.id),
            max_attempts=max_attempts,
        )

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


RQ_JOB_TIMEOUT = 6 * 3600


class RqJobRunner:
    """Distributed mode: jobs go to an rq queue; ``callmanager worker`` runs them."""

    def __init__(self, store: JobStore, queue: Any, function_path: str = "system.worker.run_job") -> None:
        self._store = store
        self._queue = queue
        self._function_path = function_path

    def submit(self, kind: str, params: Mapping[str, Any], created_by: str, total: int = 0) -> Job:
        job = self._store.create(kind, params, created_by, total)
        try:
            self.enqueue(job)
        except Exception:
            # The caller hears of the failure; the job must not be sent later behind its back.
            self._store.mark(job.id, JobState.FAILED, error=NOT_QUEUED)
            raise
        return job

    def enqueue(self, job: Job) -> None:
        """Put ``job`` on the queue (again, after a reaper took it back: one rq job per attempt)."""
        self._queue.enqueue(self._function_path, job.id, job_id=rq_job_id(job), job_timeout=RQ_JOB_TIMEOUT)


def rq_job_id(job: Job) -> str:
    """The id of the rq job that carries ``job``'s current attempt."""
    return f"cm-{job.id}" if job.attempts == 0 else f"cm-{job.id}-{job.attempts}"


def rq_undelivered(connection: Any, jobs: Sequence[Job]) -> set[str]:
    """The ids of ``jobs`` whose rq job is gone from Redis (flushed, evicted) or ended without running
    them: an :data:`Undelivered` check for :class:`JobReaper`, one Redis round trip per call."""
    from rq.job import Job as RqJob
    from rq.job import JobStatus

    # On the way to a run, or in one; any other state (ended), or no rq job at all, means lost.
    waiting = {status.value for status in JobStatus} - {
        JobStatus.FINISHED.value,
        JobStatus.FAILED.value,
        JobStatus.STOPPED.value,
        JobStatus.CANCELED.value,
    }
    found = RqJob.fetch_many([rq_job_id(job) for job in jobs], connection=connection)
    return {
        job.id
        for job, rq_job in zip(jobs, found, strict=True)
        if rq_job is None or str(getattr(rq_job.get_status(refresh=False), "value", "")) not in waiting
    }


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
    lease_until = row.get("lease_until")
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
        attempts=int(row.get("attempts") or 0),
        lease_until=_aware(lease_until) if lease_until is not None else None,
        cancel_requested=bool(row.get("cancel_requested")),
    )
