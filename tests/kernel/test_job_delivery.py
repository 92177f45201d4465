"""Queued jobs whose message to the workers was lost (Redis flushed or restarted, a key evicted) are sent
again by the reaper, up to the attempt limit, then failed with a plain reason (SQLite and PostgreSQL; the
rq part against real Redis and PostgreSQL, with an in-process rq worker)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from rq import Queue, SimpleWorker
from rq.job import Job as RqJob

from kernel.jobqueue import (
    NOT_QUEUED,
    Job,
    JobContext,
    JobExecutor,
    JobReaper,
    JobState,
    JobStore,
    RqJobRunner,
    message_lost,
    rq_job_id,
    rq_undelivered,
)
from kernel.store import create_engine
from kernel.store.schema import jobs
from system.migrate import upgrade

TOPIC = "test:jobs"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def count_to(context: JobContext) -> dict[str, Any]:
    total = int(context.params["n"])
    for done in range(1, total + 1):
        context.progress(done, total, force=True)
    return {"counted": total}


def _lost_messages(ids: set[str]) -> Callable[[Sequence[Job]], Collection[str]]:
    """An undelivered check that says the messages of ``ids`` are gone (and records what it was asked)."""

    def check(jobs: Sequence[Job]) -> Collection[str]:
        asked.append([job.id for job in jobs])
        return ids & {job.id for job in jobs}

    asked: list[list[str]] = []
    check.asked = asked  # type: ignore[attr-defined]
    return check


def test_a_queued_job_whose_message_is_lost_is_sent_again_after_the_grace_period(engine: sa.Engine) -> None:
    clock = Clock()
    store = JobStore(engine, clock)
    executor = JobExecutor(store, {"count": count_to}, None, TOPIC, lease=30)
    lost = store.create("count", {"n": 2}, created_by="ana")
    delivered = store.create("count", {"n": 2}, created_by="ana")
    resent: list[Job] = []
    check = _lost_messages({lost.id})
    reaper = JobReaper(executor, resent.append, undelivered=check, grace=60)

    clock.advance(59)
    assert reaper.reap() == [], "within the grace period (the runner may not have sent it yet)"
    assert check.asked == []  # type: ignore[attr-defined]

    clock.advance(2)
    [taken] = reaper.reap()
    assert (taken.id, taken.state, taken.attempts) == (lost.id, JobState.QUEUED, 1)
    assert [job.id for job in resent] == [lost.id], "a job whose message is there is left alone"
    assert check.asked == [[lost.id, delivered.id]]  # type: ignore[attr-defined]
    assert JobStore(engine, clock).take_undelivered(lost) is None, "two reapers never both take it"

    assert reaper.reap() == [], "sent again just now: a new grace period"
    executor.run(lost.id)  # the message sent again arrives
    ran = store.get(lost.id)
    assert ran is not None
    assert (ran.state, ran.report, ran.attempts) == (JobState.FINISHED, {"counted": 2}, 2)


def test_a_job_whose_messages_keep_getting_lost_fails_after_the_last_attempt_with_a_plain_reason(
    engine: sa.Engine, tmp_path: Path
) -> None:
    clock = Clock()
    store = JobStore(engine, clock)
    executor = JobExecutor(store, {}, None, TOPIC, lease=30)
    upload = tmp_path / "subida.csv"
    upload.write_text("telefono\n88120000\n")
    job = store.create("import", {"path": str(upload)}, created_by="ana")
    resent: list[str] = []
    lost = _lost_messages({job.id})
    reaper = JobReaper(executor, lambda j: resent.append(j.id), max_attempts=3, undelivered=lost, grace=10)
    for attempts in (1, 2, 3):
        clock.advance(11)
        [taken] = reaper.reap()
        assert (taken.state, taken.attempts) == (JobState.QUEUED, attempts)
    clock.advance(11)
    [failed] = reaper.reap()

    assert resent == [job.id] * 3
    assert failed.state is JobState.FAILED
    assert failed.error == message_lost(3)
    assert failed.error.startswith("El trabajo no llegó a los procesos que lo ejecutan (3 veces);")
    assert "Error" not in failed.error
    assert "Redis" not in failed.error
    assert not upload.exists(), "the job's upload goes with it"
    clock.advance(11)
    assert reaper.reap() == []


def test_a_reaper_without_an_undelivered_check_leaves_queued_jobs_alone(engine: sa.Engine) -> None:
    """Embedded, queued jobs wait on this process's threads, not in Redis: nothing can lose them."""
    clock = Clock()
    store = JobStore(engine, clock)
    job = store.create("count", {"n": 1}, created_by="ana")
    clock.advance(3600)

    assert JobReaper(JobExecutor(store, {}, None, TOPIC), lambda j: None).reap() == []
    still = store.get(job.id)
    assert still is not None
    assert still.state is JobState.QUEUED


class _RefusingQueue:
    def enqueue(self, *args: object, **kwargs: object) -> None:
        raise ConnectionError("Redis is down")


def test_a_job_the_queue_refuses_fails_at_once_so_no_reaper_sends_it_later(engine: sa.Engine) -> None:
    store = JobStore(engine)

    with pytest.raises(ConnectionError):
        RqJobRunner(store, _RefusingQueue()).submit("count", {"n": 1}, created_by="ana")

    assert store.unfinished() == [], "nothing is left queued for a reaper to send"
    with engine.connect() as conn:
        [(state, error)] = conn.execute(sa.select(jobs.c.state, jobs.c.error)).all()
    assert (state, error) == (JobState.FAILED.value, NOT_QUEUED)


# --- real Redis and PostgreSQL, an rq worker in this process -------------------------------------------

_EXECUTORS: dict[str, JobExecutor] = {}
"""The executor of the running test, for :func:`run_job_here` (the rq worker runs in this process)."""


def run_job_here(job_id: str) -> None:
    """What the rq worker runs (by import path, as ``system.worker.run_job``): the test's executor."""
    _EXECUTORS["current"].run(job_id)


@pytest.fixture
def rq_parts(postgres_url: str, redis_url: str) -> Iterator[tuple[JobStore, Queue, redis.Redis]]:
    engine = create_engine(postgres_url)
    upgrade(engine)
    connection = redis.Redis.from_url(redis_url)
    queue = Queue(f"test-delivery-{uuid.uuid4().hex[:10]}", connection=connection)
    store = JobStore(engine)
    _EXECUTORS["current"] = JobExecutor(store, {"count": count_to}, None, TOPIC, lease=30)
    try:
        yield store, queue, connection
    finally:
        _EXECUTORS.clear()
        queue.empty()
        queue.delete(delete_jobs=True)
        connection.close()
        engine.dispose()


def test_a_job_whose_rq_job_was_deleted_from_redis_runs_to_the_end_after_recovery(
    rq_parts: tuple[JobStore, Queue, redis.Redis],
) -> None:
    store, queue, connection = rq_parts
    runner = RqJobRunner(store, queue, function_path=f"{__name__}.run_job_here")
    job = runner.submit("count", {"n": 3}, created_by="ana")
    other = runner.submit("count", {"n": 1}, created_by="ana")
    assert rq_undelivered(connection, [job, other]) == set(), "both messages are in Redis"

    assert connection.delete(RqJob.key_for(rq_job_id(job))) == 1  # the message is lost
    assert rq_undelivered(connection, [job, other]) == {job.id}
    reaper = JobReaper(
        _EXECUTORS["current"],
        runner.enqueue,
        undelivered=lambda jobs: rq_undelivered(connection, jobs),
        grace=0,
    )
    [taken] = reaper.reap()
    assert (taken.id, taken.state, taken.attempts) == (job.id, JobState.QUEUED, 1)
    assert rq_undelivered(connection, [taken]) == set(), "sent again as a new rq job"

    SimpleWorker([queue], connection=connection).work(burst=True)

    ran, done = store.get(job.id), store.get(other.id)
    assert ran is not None
    assert done is not None
    assert (ran.state, ran.report, ran.done) == (JobState.FINISHED, {"counted": 3}, 3)
    assert done.state is JobState.FINISHED
    assert reaper.reap() == []


def test_a_job_whose_rq_job_ended_without_running_it_is_sent_again(
    rq_parts: tuple[JobStore, Queue, redis.Redis],
) -> None:
    """An rq job that failed before the job started (a worker that could not reach the database) leaves
    the job queued: its message is as good as lost."""
    store, queue, connection = rq_parts
    runner = RqJobRunner(store, queue, function_path=f"{__name__}.run_job_here")
    job = runner.submit("count", {"n": 1}, created_by="ana")
    rq_job = RqJob.fetch(rq_job_id(job), connection=connection)
    with connection.pipeline() as pipe:
        rq_job.set_status("failed", pipeline=pipe)  # type: ignore[arg-type]
        pipe.execute()

    assert rq_undelivered(connection, [job]) == {job.id}
