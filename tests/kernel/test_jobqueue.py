"""Jobs: state, progress on the bus, cancellation, failure messages (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from kernel.bus.memory import InProcessBus
from kernel.jobqueue import (
    INTERRUPTED,
    JobContext,
    JobExecutor,
    JobFailed,
    JobState,
    JobStore,
    ThreadJobRunner,
)
from kernel.store import create_engine
from system.migrate import upgrade

TOPIC = "test:jobs"


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


def refuse(context: JobContext) -> dict[str, Any]:
    raise JobFailed("El archivo no tiene columna de teléfono.", {"headers": ["a", "b"]})


def crash(context: JobContext) -> dict[str, Any]:
    raise RuntimeError("secret internal detail")


def wait_final(store: JobStore, job_id: str, timeout: float = 10.0) -> JobState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.get(job_id)
        assert job is not None
        if job.state in (JobState.FINISHED, JobState.FAILED, JobState.CANCELLED):
            return job.state
        time.sleep(0.02)
    raise AssertionError("job did not end")


def published_until_final(bus: InProcessBus, job_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The job messages of the ``watch`` group up to ``job_id``'s final one.

    The runner publishes that message just after the store marks the job ended, so :func:`wait_final`
    can return before it is on the bus.
    """
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages += [orjson.loads(d.body) for d in bus.read(TOPIC, "watch", "me", 100, 20)]
        if any(m["id"] == job_id and m["state"] in {"finished", "failed", "cancelled"} for m in messages):
            return messages
    raise AssertionError("the job's final message was not published")


def runner_for(engine: sa.Engine, bus: InProcessBus, **functions: Any) -> tuple[ThreadJobRunner, JobStore]:
    store = JobStore(engine)
    return ThreadJobRunner(JobExecutor(store, functions, bus, TOPIC)), store


def test_a_job_runs_to_its_report_and_publishes_progress(engine: sa.Engine) -> None:
    bus = InProcessBus()
    bus.ensure_group(TOPIC, "watch", "0")
    runner, store = runner_for(engine, bus, count=count_to)
    job = runner.submit("count", {"n": 5}, created_by="ana", total=5)
    assert job.state is JobState.QUEUED
    assert wait_final(store, job.id) is JobState.FINISHED
    finished = store.get(job.id)
    assert finished is not None
    assert finished.report == {"counted": 5}
    assert finished.to_data()["progress"] == {"done": 5, "total": 5}
    messages = published_until_final(bus, job.id)
    assert [m["progress"]["done"] for m in messages if m["state"] == "running"][-1] == 5
    assert messages[-1]["state"] == "finished"
    runner.shutdown()


def test_a_refused_job_fails_with_the_users_message_and_a_crash_hides_internals(engine: sa.Engine) -> None:
    runner, store = runner_for(engine, InProcessBus(), refuse=refuse, crash=crash)
    refused = runner.submit("refuse", {}, created_by="ana")
    crashed = runner.submit("crash", {}, created_by="ana")
    assert wait_final(store, refused.id) is JobState.FAILED
    assert wait_final(store, crashed.id) is JobState.FAILED
    refused_job, crashed_job = store.get(refused.id), store.get(crashed.id)
    assert refused_job is not None
    assert crashed_job is not None
    assert refused_job.error == "El archivo no tiene columna de teléfono."
    assert refused_job.report == {"headers": ["a", "b"]}
    assert crashed_job.error is not None
    assert "secret" not in crashed_job.error
    assert "RuntimeError" not in crashed_job.error, "no exception names for users"
    assert crashed.id in crashed_job.error, "the job's code, to quote to TI"
    runner.shutdown()


def test_cancel_stops_a_running_job_at_its_next_progress_point(engine: sa.Engine) -> None:
    started = threading.Event()

    def slow(context: JobContext) -> dict[str, Any]:
        for done in range(1000):
            started.set()
            context.progress(done, 1000, force=True)
            time.sleep(0.01)
        return {}

    runner, store = runner_for(engine, InProcessBus(), slow=slow)
    job = runner.submit("slow", {}, created_by="ana")
    assert started.wait(5)
    store.request_cancel(job.id)
    assert wait_final(store, job.id) is JobState.CANCELLED
    runner.shutdown()


def test_cancelling_a_queued_job_ends_it_at_once(engine: sa.Engine) -> None:
    store = JobStore(engine)
    job = store.create("count", {"n": 1}, created_by="ana")
    cancelled = store.request_cancel(job.id)
    assert cancelled is not None
    assert cancelled.state is JobState.CANCELLED
    JobExecutor(store, {"count": count_to}, None, TOPIC).run(job.id)
    after = store.get(job.id)
    assert after is not None
    assert after.state is JobState.CANCELLED


def test_a_restarted_runner_fails_what_was_running_and_runs_what_was_queued(engine: sa.Engine) -> None:
    """The jobs a stopped embedded server left behind: none stays 'running' or 'queued' forever."""
    store = JobStore(engine)
    interrupted = store.create("count", {"n": 3}, created_by="ana", total=3)
    store.mark(interrupted.id, JobState.RUNNING)
    store.progress(interrupted.id, 1, 3)
    waiting = store.create("count", {"n": 2}, created_by="luis", total=2)
    ended = store.create("count", {"n": 1}, created_by="ana", total=1)
    store.mark(ended.id, JobState.FINISHED, report={"counted": 1})
    bus = InProcessBus()
    bus.ensure_group(TOPIC, "watch", "0")

    runner, _ = runner_for(engine, bus, count=count_to)
    found = runner.recover()

    assert [j.id for j in found] == [interrupted.id, waiting.id]
    failed = store.get(interrupted.id)
    assert failed is not None
    assert failed.state is JobState.FAILED
    assert failed.error == INTERRUPTED
    assert failed.to_data()["progress"] == {"done": 1, "total": 3}
    assert wait_final(store, waiting.id) is JobState.FINISHED
    again = store.get(ended.id)
    assert again is not None
    assert again.report == {"counted": 1}
    messages = published_until_final(bus, waiting.id)
    assert {"id": interrupted.id, "state": "failed"}.items() <= messages[0].items()
    assert messages[-1]["id"] == waiting.id
    assert messages[-1]["state"] == "finished"
    assert runner.recover() == []
    runner.shutdown()
