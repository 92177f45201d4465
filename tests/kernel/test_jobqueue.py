"""Jobs: state, progress on the bus, cancellation, failure messages, leases, the reaper, attempts and
transient retries (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from kernel.bus.memory import InProcessBus
from kernel.jobqueue import (
    INTERRUPTED,
    UNAVAILABLE,
    Job,
    JobContext,
    JobExecutor,
    JobFailed,
    JobReaper,
    JobState,
    JobStore,
    LeaseLost,
    RqJobRunner,
    ThreadJobRunner,
    discard_upload,
    worker_lost,
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


# --- leases, the reaper, attempts (a controlled clock) ------------------------------------------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_a_run_holds_a_lease_that_renewing_extends_and_a_lapsed_one_is_taken_by_one_reaper_only(
    engine: sa.Engine,
) -> None:
    clock = Clock()
    store = JobStore(engine, clock)
    job = store.create("count", {"n": 3}, created_by="ana")
    claimed = store.claim(job.id, "run-1", lease=30)
    assert claimed is not None
    assert (claimed.state, claimed.attempts) == (JobState.RUNNING, 1)
    assert store.claim(job.id, "run-2", lease=30) is None, "a held lease cannot be claimed"

    clock.advance(25)
    assert store.renew(job.id, "run-1", lease=30) == (True, False)
    clock.advance(25)  # 50 s after the claim, 25 s after the renewal: still held
    assert store.lapsed() == []
    assert store.progress(job.id, 1, 3, "run-1", lease=30) is False  # progress renews too
    clock.advance(29)
    assert store.lapsed() == []

    clock.advance(2)  # the run's process died: nobody renewed for 31 s
    [lapsed] = store.lapsed()
    first = JobStore(engine, clock).take_lapsed(lapsed)
    second = JobStore(engine, clock).take_lapsed(lapsed)
    assert first is not None
    assert (first.state, first.attempts) == (JobState.QUEUED, 1)
    assert second is None, "two reapers never both take the same job"
    assert store.renew(job.id, "run-1", lease=30) == (False, False), "the dead run's lease is gone"
    with pytest.raises(LeaseLost):
        store.progress(job.id, 2, 3, "run-1")
    assert not store.mark(job.id, JobState.FINISHED, "run-1"), "a late run cannot end a job it lost"

    again = store.claim(job.id, "run-2", lease=30)
    assert again is not None
    assert again.attempts == 2


def test_a_job_whose_process_keeps_dying_fails_after_the_last_attempt_with_a_plain_reason(
    engine: sa.Engine,
) -> None:
    clock = Clock()
    store = JobStore(engine, clock)
    executor = JobExecutor(store, {"count": count_to}, None, TOPIC, lease=30)
    resubmitted: list[str] = []
    reaper = JobReaper(executor, lambda job: resubmitted.append(job.id), max_attempts=3)
    job = store.create("count", {"n": 1}, created_by="ana")
    for attempt in (1, 2, 3):
        assert store.claim(job.id, f"run-{attempt}", lease=30) is not None  # a worker starts it, then dies
        assert reaper.reap() == [], "a held lease is left alone"
        clock.advance(31)
        [taken] = reaper.reap()
        assert taken.attempts == attempt
    assert resubmitted == [job.id, job.id]
    failed = store.get(job.id)
    assert failed is not None
    assert failed.state is JobState.FAILED
    assert failed.error == worker_lost(3)
    assert failed.error.startswith("El proceso que ejecutaba el trabajo se detuvo 3 veces;")
    assert reaper.reap() == []


def test_cancel_of_a_job_whose_process_died_ends_it_at_once_and_deletes_its_upload(
    engine: sa.Engine, tmp_path: Path
) -> None:
    clock = Clock()
    store = JobStore(engine, clock)
    upload = tmp_path / "subida.csv"
    upload.write_text("telefono\n88120000\n")
    job = store.create("import", {"path": str(upload)}, created_by="ana")
    store.claim(job.id, "run-1", lease=30)

    held = store.request_cancel(job.id)  # its process is alive: it stops at its next progress point
    assert held is not None
    assert held.state is JobState.RUNNING
    assert store.progress(job.id, 1, 2, "run-1") is True

    clock.advance(31)  # ... but it died instead
    cancelled = store.request_cancel(job.id)
    assert cancelled is not None
    assert cancelled.state is JobState.CANCELLED
    discard_upload(cancelled)  # what DELETE /jobs/{id} does with a job it ended
    assert not upload.exists()
    assert store.lapsed() == []


def test_the_reaper_cancels_a_dead_jobs_requested_cancel_and_deletes_its_upload(
    engine: sa.Engine, tmp_path: Path
) -> None:
    clock = Clock()
    store = JobStore(engine, clock)
    upload = tmp_path / "subida.csv"
    upload.write_text("x")
    job = store.create("import", {"path": str(upload)}, created_by="ana")
    store.claim(job.id, "run-1", lease=30)
    store.request_cancel(job.id)
    clock.advance(31)
    [taken] = JobReaper(JobExecutor(store, {}, None, TOPIC), lambda job: None).reap()
    assert taken.state is JobState.CANCELLED
    assert not upload.exists()


def test_the_heartbeat_keeps_a_slow_jobs_lease_and_a_reaper_reruns_a_job_whose_run_died(
    engine: sa.Engine,
) -> None:
    """Real time, a short lease: a job function quiet for several leases keeps its job; a run that
    dies (here: the process stops, SystemExit) lets it go at once and a reaper runs it again."""
    runs: list[int] = []

    def quiet_then_die(context: JobContext) -> dict[str, Any]:
        runs.append(context.job.attempts)
        time.sleep(1.0)  # no progress for 5 leases: only the heartbeat renews
        if context.job.attempts == 1:
            raise SystemExit("the worker stops")
        return {"attempts": context.job.attempts}

    store = JobStore(engine)
    executor = JobExecutor(store, {"quiet": quiet_then_die}, None, TOPIC, lease=0.2)
    reruns: list[threading.Thread] = []

    def rerun(job: Job) -> None:
        reruns.append(threading.Thread(target=executor.run, args=(job.id,)))
        reruns[-1].start()

    reaper = JobReaper(executor, rerun)
    job = store.create("quiet", {}, created_by="ana")
    stopped: list[BaseException] = []

    def first_run() -> None:
        try:
            executor.run(job.id)
        except SystemExit as exc:
            stopped.append(exc)

    first = threading.Thread(target=first_run)
    first.start()
    time.sleep(0.6)
    assert reaper.reap() == [], "the heartbeat holds the lease while the function is quiet"
    first.join()
    assert len(stopped) == 1, "the run let the process stop"
    [taken] = reaper.reap()
    assert taken.state is JobState.QUEUED
    assert wait_final(store, job.id) is JobState.FINISHED
    reruns[0].join()
    ended = store.get(job.id)
    assert ended is not None
    assert (ended.attempts, ended.report, runs) == (2, {"attempts": 2}, [1, 2])


def test_transient_errors_are_retried_with_backoff_then_fail_plainly(engine: sa.Engine) -> None:
    calls: list[float] = []

    def flaky(context: JobContext) -> dict[str, Any]:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("contacts restarting")
        return {"ok": True}

    def down(context: JobContext) -> dict[str, Any]:
        raise ConnectionError("contacts down")

    store = JobStore(engine)
    executor = JobExecutor(
        store,
        {"flaky": flaky, "down": down},
        None,
        TOPIC,
        transient=(ConnectionError,),
        retry_delays=(0.1, 0.3),
    )
    recovered = store.create("flaky", {}, created_by="ana")
    executor.run(recovered.id)
    given_up = store.create("down", {}, created_by="ana")
    executor.run(given_up.id)

    ok, failed = store.get(recovered.id), store.get(given_up.id)
    assert ok is not None
    assert failed is not None
    assert (ok.state, ok.report, ok.attempts) == (JobState.FINISHED, {"ok": True}, 1)
    assert calls[1] - calls[0] >= 0.1
    assert calls[2] - calls[1] >= 0.3, "the waits grow"
    assert (failed.state, failed.error) == (JobState.FAILED, UNAVAILABLE)


def test_a_job_that_cannot_run_twice_fails_at_once_when_its_process_dies(engine: sa.Engine) -> None:
    clock = Clock()
    store = JobStore(engine, clock)
    executor = JobExecutor(store, {}, None, TOPIC, rerunnable=lambda job: not job.params.get("save"))
    resubmitted: list[str] = []
    saving = store.create("generate", {"save": True}, created_by="ana")
    store.claim(saving.id, "run-1", lease=30)
    clock.advance(31)
    [taken] = JobReaper(executor, lambda job: resubmitted.append(job.id)).reap()
    assert (taken.state, taken.error, resubmitted) == (JobState.FAILED, worker_lost(1), [])


# --- found by mutation testing (docs/MUTATION.md) --------------------------------------------------------


def test_a_lease_lapses_the_moment_it_ends(engine: sa.Engine) -> None:
    clock = Clock()
    store = JobStore(engine, clock)
    job = store.create("count", {"n": 1}, created_by="ana")
    store.claim(job.id, "run-1", lease=30)
    clock.advance(29.999)
    assert store.lapsed() == []
    clock.advance(0.001)
    assert [lapsed.id for lapsed in store.lapsed()] == [job.id]


def test_the_reapers_loop_takes_lapsed_jobs_until_stopped(engine: sa.Engine) -> None:
    store = JobStore(engine)
    executor = JobExecutor(store, {"count": count_to}, None, TOPIC, lease=0.15)
    taken: list[str] = []
    reaper = JobReaper(executor, lambda job: taken.append(job.id))
    job = store.create("count", {"n": 1}, created_by="ana")
    store.claim(job.id, "run-1", lease=-1)  # its process died a second ago
    stop = threading.Event()
    loop = threading.Thread(target=reaper.run_forever, args=(stop,))
    loop.start()
    deadline = time.monotonic() + 10
    while not taken and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    loop.join(5)
    assert taken == [job.id]
    assert not loop.is_alive(), "the loop ends once stopped"


def test_a_runners_reaper_runs_the_jobs_it_takes_on_the_runners_threads_up_to_its_attempts(
    engine: sa.Engine,
) -> None:
    clock = Clock()
    store = JobStore(engine, clock)
    runner = ThreadJobRunner(JobExecutor(store, {"count": count_to}, None, TOPIC))
    spent = store.create("count", {"n": 2}, created_by="ana")
    for attempt in (1, 2):  # started twice, its process died twice
        assert store.claim(spent.id, f"run-{attempt}", lease=30) is not None
        clock.advance(31)
    [failed] = runner.reaper(max_attempts=2).reap()
    assert (failed.id, failed.state, failed.error) == (spent.id, JobState.FAILED, worker_lost(2))

    again = store.create("count", {"n": 2}, created_by="ana")
    store.claim(again.id, "run-1", lease=30)
    clock.advance(31)
    [taken] = runner.reaper(max_attempts=2).reap()
    assert taken.id == again.id
    assert wait_final(store, again.id) is JobState.FINISHED, "run again on the runner's own threads"
    runner.shutdown()


class RecordingQueue:
    """An rq queue that records what is put on it."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def enqueue(self, function: str, *args: Any, **options: Any) -> None:
        self.enqueued.append((function, args, options))


def test_an_rq_runner_queues_one_rq_job_per_start_with_a_long_timeout(engine: sa.Engine) -> None:
    store = JobStore(engine)
    queue = RecordingQueue()
    runner = RqJobRunner(store, queue)
    job = runner.submit("count", {"n": 1}, created_by="ana")
    stored = store.get(job.id)
    assert stored is not None
    assert (stored.created_by, stored.total, stored.state) == ("ana", 0, JobState.QUEUED)
    sized = runner.submit("count", {"n": 4}, created_by="luis", total=4)
    assert store.get(sized.id).total == 4  # type: ignore[union-attr]
    store.claim(job.id, "run-1", lease=-1)
    [taken] = JobReaper(JobExecutor(store, {}, None, TOPIC), runner.enqueue).reap()
    assert queue.enqueued == [
        ("system.worker.run_job", (job.id,), {"job_id": f"cm-{job.id}", "job_timeout": 6 * 3600}),
        ("system.worker.run_job", (sized.id,), {"job_id": f"cm-{sized.id}", "job_timeout": 6 * 3600}),
        ("system.worker.run_job", (job.id,), {"job_id": f"cm-{job.id}-1", "job_timeout": 6 * 3600}),
    ]
    assert taken.attempts == 1


def test_the_lost_worker_message_counts_the_stops_in_plain_spanish() -> None:
    tail = "; no se intentará de nuevo. Vuelva a lanzarlo (no se duplica nada); si se repite, avise a TI."
    assert worker_lost(1) == "El proceso que ejecutaba el trabajo se detuvo 1 vez" + tail
    assert worker_lost(2) == "El proceso que ejecutaba el trabajo se detuvo 2 veces" + tail


def test_failing_a_job_deletes_its_upload_and_announces_it(engine: sa.Engine, tmp_path: Path) -> None:
    bus = InProcessBus()
    bus.ensure_group(TOPIC, "watch", "0")
    store = JobStore(engine)
    upload = tmp_path / "subida.csv"
    upload.write_text("telefono\n88120000\n")
    job = store.create("import", {"path": str(upload)}, created_by="ana")
    JobExecutor(store, {}, bus, TOPIC).fail(job.id, "Se detuvo.")
    failed = store.get(job.id)
    assert failed is not None
    assert (failed.state, failed.error) == (JobState.FAILED, "Se detuvo.")
    assert not upload.exists()
    assert published_until_final(bus, job.id)[-1]["state"] == "failed"
