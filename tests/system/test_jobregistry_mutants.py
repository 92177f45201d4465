"""The job wiring of ``system.jobregistry`` in this process (the servers that use it run as subprocesses,
which mutation testing cannot see): which settings reach each job function, which jobs may run again,
which queue a job goes to, and what the embedded ports start with (docs/MUTATION.md)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import sqlalchemy.exc
from rq import Queue

import system.jobregistry as jobregistry
from contacts.client import ContactsUnavailable
from contacts.commands import Caller
from generator.commands import GENERATE_JOB, GenerateNumbers
from importexport.commands import StartImport
from importexport.export import EXPORT_JOB
from importexport.pipeline import IMPORT_JOB, reader_limits
from kernel.envelope import utcnow
from kernel.jobqueue import INTERRUPTED, Job, JobState, JobStore
from kernel.roles import Role
from kernel.settings import Settings
from system.bootstrap import Infrastructure, Mode, build_infrastructure
from system.ports import LocalGenerator, LocalTransfer, RqGenerator, RqTransfer
from system.reader import READER_COMMAND

LEAD = Caller(user_id="u-lead", username="lucia", role=Role.TEAM_LEAD)
CONTACTS: Any = object()
"""Stands for the contacts client: the wiring only hands it on (the recorded calls check it arrives)."""


def settings_in(data_dir: Path, **values: Any) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **values)


@pytest.fixture
def infra(tmp_path: Path) -> Iterator[Infrastructure]:
    infra = build_infrastructure(
        settings_in(tmp_path, max_upload_mb=3, max_import_rows=1234, job_lease_seconds=7.5), Mode.EMBEDDED
    )
    yield infra
    infra.close()


def job(kind: str, **params: Any) -> Job:
    now = utcnow()
    return Job("j1", kind, JobState.RUNNING, 0, 0, params, None, None, "u", now, now)


def test_the_folders_and_limits_come_from_the_settings(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, max_upload_mb=3, max_import_rows=1234)
    assert jobregistry.exports_dir(settings) == tmp_path / "exports"
    assert jobregistry.reports_dir(settings) == tmp_path / "reports"
    assert jobregistry.max_upload_bytes(settings) == 3 * 1024 * 1024
    config = jobregistry.transfer_config(settings)
    assert config.uploads_dir == tmp_path / "uploads"
    assert config.reports_dir == tmp_path / "reports"
    assert config.max_upload_bytes == 3 * 1024 * 1024
    assert config.max_import_rows == 1234


def test_only_a_generation_that_saves_its_numbers_may_not_run_again() -> None:
    assert jobregistry.rerunnable(job(GENERATE_JOB, save=True)) is False
    assert jobregistry.rerunnable(job(GENERATE_JOB, save=False)) is True
    assert jobregistry.rerunnable(job(GENERATE_JOB)) is True
    assert jobregistry.rerunnable(job(IMPORT_JOB, save=True)) is True
    assert jobregistry.rerunnable(job(EXPORT_JOB)) is True


def test_each_service_has_its_queue_in_the_deployment(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, bus_prefix="sede-norte")
    assert jobregistry.queue_name(settings, "generator") == "sede-norte-generator"
    assert jobregistry.queue_name(settings, "importexport") == "sede-norte-importexport"


def test_the_executor_holds_the_configured_lease_and_retries_only_transient_errors(
    infra: Infrastructure,
) -> None:
    executor = jobregistry.job_executor(infra, CONTACTS)
    assert executor.lease == 7.5
    assert executor.rerunnable is jobregistry.rerunnable
    assert executor._transient == jobregistry.TRANSIENT_ERRORS
    assert {ContactsUnavailable, ConnectionError, sqlalchemy.exc.OperationalError} <= set(
        jobregistry.TRANSIENT_ERRORS
    )
    assert set(executor._functions) == {GENERATE_JOB, IMPORT_JOB, EXPORT_JOB}
    topic = infra.topic("jobs")
    infra.bus.ensure_group(topic, "watch", "0")
    executor.publish({"id": "j1", "state": "running"})
    [message] = infra.bus.read(topic, "watch", "me", 10, 0)
    assert orjson.loads(message.body) == {"id": "j1", "state": "running"}


@pytest.mark.parametrize(("mode", "read_apart"), [(Mode.EMBEDDED, None), (Mode.DISTRIBUTED, False)])
def test_each_job_function_gets_this_processs_settings(
    infra: Infrastructure, monkeypatch: pytest.MonkeyPatch, mode: Mode, read_apart: bool | None
) -> None:
    calls: dict[str, tuple[Any, dict[str, Any]]] = {}

    def recorder(name: str) -> Any:
        def record(context: Any, **kwargs: Any) -> dict[str, Any]:
            calls[name] = (context, kwargs)
            return {}

        return record

    for name in ("generate_job", "import_job", "export_job"):
        monkeypatch.setattr(jobregistry, name, recorder(name))
    functions = jobregistry.job_functions(replace(infra, mode=mode), CONTACTS)
    context: Any = object()
    for kind in (GENERATE_JOB, IMPORT_JOB, EXPORT_JOB):
        functions[kind](context)

    data_dir = infra.settings.data_dir
    generate = calls["generate_job"]
    assert generate[0] is context
    assert generate[1]["contacts"] is CONTACTS
    assert generate[1]["exports_dir"] == data_dir / "exports"
    assert generate[1]["write_table"] is jobregistry.write_csv
    assert generate[1]["weights"] == jobregistry.weights_from_settings(infra.settings)
    imported = calls["import_job"]
    assert imported[0] is context
    assert imported[1] == {
        "contacts": CONTACTS,
        "reports_dir": data_dir / "reports",
        "limits": reader_limits(3 * 1024 * 1024, 1234),
        "max_rows": 1234,
        "reader_process": read_apart,
        "reader_command": READER_COMMAND,
    }
    exported = calls["export_job"]
    assert exported[0] is context
    assert exported[1] == {"contacts": CONTACTS, "exports_dir": data_dir / "exports"}


def test_the_transfer_handlers_read_with_the_configured_limits(infra: Infrastructure) -> None:
    handlers = jobregistry.transfer_handlers(infra, CONTACTS)
    assert handlers.contacts is CONTACTS
    assert handlers.limits == reader_limits(3 * 1024 * 1024, 1234)
    assert handlers.exports_dir == infra.settings.data_dir / "exports"
    generator = jobregistry.generator_handlers(infra, CONTACTS)
    assert generator.contacts is CONTACTS
    assert generator.weights == jobregistry.weights_from_settings(infra.settings)


def test_the_embedded_ports_fail_what_a_stopped_server_left_running_and_reap_lapsed_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated: list[Any] = []
    imported: list[Any] = []
    monkeypatch.setattr(
        jobregistry, "generate_job", lambda context, **kwargs: generated.append(kwargs["contacts"]) or {}
    )
    monkeypatch.setattr(
        jobregistry, "import_job", lambda context, **kwargs: imported.append(kwargs["contacts"]) or {}
    )
    infra = build_infrastructure(settings_in(tmp_path, job_lease_seconds=0.5), Mode.EMBEDDED)
    store = JobStore(infra.engine)
    left_running = store.create(IMPORT_JOB, {}, "u")
    assert store.claim(left_running.id, "gone", lease=600) is not None
    try:
        generator, transfer = jobregistry.service_ports(infra, CONTACTS)

        assert isinstance(generator, LocalGenerator)
        assert isinstance(transfer, LocalTransfer)
        assert generator._handlers == jobregistry.generator_handlers(infra, CONTACTS)
        assert transfer._handlers == jobregistry.transfer_handlers(infra, CONTACTS)
        ended = store.get(left_running.id)
        assert ended is not None
        assert (ended.state, ended.error) == (JobState.FAILED, INTERRUPTED)
        assert [closer.__name__ for closer in infra.closers] == ["shutdown"]  # the job threads' pool

        started = [
            generator.start(GenerateNumbers(caller=LEAD, count=3), "u-lead"),
            transfer.start_import(
                StartImport(caller=LEAD, path=tmp_path / "x.csv", source="x.csv"), "u-lead"
            ),
        ]
        for job in started:  # run on the ports' job threads
            deadline = time.monotonic() + 20
            while store.get(job.id).state is not JobState.FINISHED:  # type: ignore[union-attr]
                assert time.monotonic() < deadline, f"{job.kind} did not run"
                time.sleep(0.05)
        assert generated == [CONTACTS]
        assert imported == [CONTACTS]

        died = store.create(GENERATE_JOB, {}, "u")
        assert store.claim(died.id, "gone", lease=-1) is not None  # its process died a second ago
        deadline = time.monotonic() + 20
        while store.get(died.id).state is not JobState.FINISHED:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the reaper thread did not run the job again"
            time.sleep(0.05)
        assert generated == [CONTACTS, CONTACTS]
    finally:
        infra.close()


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def rq_infra(infra: Infrastructure, redis_url: str, prefix: str) -> Iterator[Infrastructure]:
    settings = infra.settings.model_copy(update={"redis_url": redis_url, "bus_prefix": prefix})
    yield replace(infra, settings=settings, mode=Mode.DISTRIBUTED)
    connection = redis.Redis.from_url(redis_url)
    for key in connection.scan_iter(f"rq:*{prefix}*"):
        connection.delete(key)
    connection.close()


def queued_ids(redis_url: str, name: str) -> list[str]:
    connection = redis.Redis.from_url(redis_url)
    try:
        return list(Queue(name, connection=connection).job_ids)
    finally:
        connection.close()


@pytest.mark.redis
def test_the_distributed_ports_put_each_job_on_its_services_queue(
    rq_infra: Infrastructure, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    generator, transfer = jobregistry.service_ports(rq_infra, CONTACTS)
    assert isinstance(generator, RqGenerator)
    assert isinstance(transfer, RqTransfer)

    generation = generator.start(GenerateNumbers(caller=LEAD, count=5), "u-lead")
    upload = tmp_path / "subida.csv"
    upload.write_text("telefono\n88887777\n")
    imported = transfer.start_import(StartImport(caller=LEAD, path=upload, source="subida.csv"), "u-lead")
    assert (generation.created_by, generation.total, imported.created_by) == ("u-lead", 5, "u-lead")
    assert transfer._contacts is CONTACTS
    assert generator._calls._queue.name == f"{prefix}-generator"  # calls go to the same queues
    assert transfer._calls._queue.name == f"{prefix}-importexport"
    assert transfer._exports_dir == rq_infra.settings.data_dir / "exports"

    assert queued_ids(redis_url, f"{prefix}-generator") == [f"cm-{generation.id}"]
    assert queued_ids(redis_url, f"{prefix}-importexport") == [f"cm-{imported.id}"]


@pytest.mark.redis
def test_a_distributed_reaper_sends_a_lapsed_job_back_to_its_services_queue(
    rq_infra: Infrastructure, redis_url: str, prefix: str
) -> None:
    executor = jobregistry.job_executor(rq_infra, CONTACTS)
    reaper = jobregistry.rq_reaper(rq_infra.settings, executor)
    store = JobStore(rq_infra.engine)
    lapsed = {}
    for kind in (GENERATE_JOB, IMPORT_JOB, EXPORT_JOB, "otro"):
        created = store.create(kind, {}, "u")
        assert store.claim(created.id, "gone", lease=-1.0) is not None  # its lease lapsed a second ago
        lapsed[kind] = created.id

    taken = reaper.reap()

    assert sorted(job.state for job in taken) == [JobState.QUEUED] * 4
    assert queued_ids(redis_url, f"{prefix}-generator") == [f"cm-{lapsed[GENERATE_JOB]}-1"]
    assert sorted(queued_ids(redis_url, f"{prefix}-importexport")) == sorted(
        [f"cm-{lapsed[IMPORT_JOB]}-1", f"cm-{lapsed[EXPORT_JOB]}-1", f"cm-{lapsed['otro']}-1"]
    ), "a kind without a queue of its own goes to import/export's"
