"""Faults in distributed mode, as real processes on PostgreSQL and Redis: ``kill -9`` of the contacts
service and of the gateway in the middle of an import, and a Socket.IO lock race over two gateways.

A queued job whose rq message Redis lost is sent again by a worker's reaper and runs to the end.

Afterwards nothing is lost and nothing is doubled: the job finishes, every row of the file is one contact
of the job's one list, and exactly one of the agents racing for a contact gets its lock. The killed
worker's case is in ``tests/importexport/test_transfer_distributed.py``; the cluster comes from there.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
import redis

from gateway.users import UserDirectory
from kernel.store import create_engine
from tests.gateway.test_live_e2e import Listener
from tests.importexport.test_transfer_distributed import (
    _counts,
    big_csv,
    cluster,  # noqa: F401 (the fixture)
    list_counts,
)
from tests.support.cluster import Cluster, wait_finished
from tests.support.servers import Process, free_port, start, wait_healthy

ROWS = 20_000


def _running(system: Cluster, name: str) -> Process:
    [process] = [p for p in system.processes if p.name == name and p.popen.poll() is None]
    return process


def _kill_when_writing(
    system: Cluster, client: httpx.Client, job_id: str, list_name: str, victim: Process
) -> int:
    """``kill -9`` ``victim`` once the job has written some rows but not all; the rows written then."""
    engine = create_engine(system.database_url)
    try:
        with engine.connect() as conn:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                written, _ = _counts(conn, list_name)
                if written > 0:
                    os.kill(victim.popen.pid, signal.SIGKILL)
                    victim.popen.wait(timeout=10)
                    return written
                job = client.get(f"/jobs/{job_id}").json()
                assert job["state"] in ("queued", "running"), job
                time.sleep(0.01)
    finally:
        engine.dispose()
    raise AssertionError("the import never got going")


def _upload(client: httpx.Client, name: str, list_name: str) -> str:
    """Upload a CSV of ``ROWS`` rows to ``list_name``, again after a 503's ``Retry-After``; the job id."""
    for _ in range(5):
        answer = client.post("/import", files={"file": (name, big_csv(ROWS))}, data={"list": list_name})
        if answer.status_code != 503:
            break
        time.sleep(int(answer.headers["Retry-After"]))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1].rstrip("/")


@pytest.mark.slow
def test_a_contacts_service_killed_mid_import_comes_back_and_the_job_imports_every_row_once(
    cluster: tuple[Cluster, httpx.Client],  # noqa: F811
) -> None:
    system, client = cluster
    job_id = _upload(client, "caida.csv", "caida")

    contacts = _running(system, "contacts")
    written = _kill_when_writing(system, client, job_id, "caida", contacts)
    killed_at = time.monotonic()
    time.sleep(1.0)  # down for a moment, as a restart by the supervisor would be
    during = client.get("/contacts", params={"limit": 1})
    port = _port(system.env["CALLMANAGER_CONTACTS_URL"])
    again = start("contacts-again", ["serve", "contacts", "--port", port], system.env, system.folder)
    system.processes.append(again)
    wait_healthy(system.env["CALLMANAGER_CONTACTS_URL"], again)
    job = wait_finished(client, job_id, timeout=240)
    print(
        f"\ncontacts killed with {written}/{ROWS} rows written; job {job['state']} after "
        f"{time.monotonic() - killed_at:.1f} s, attempts {job.get('attempts')}"
    )

    assert 0 < written < ROWS, "killed half-way"
    assert during.status_code == 503, during.text  # honest: a service is down, not a server error
    assert "Retry-After" in during.headers
    assert job["state"] == "finished", job
    assert job["report"]["list"] == "caida"
    assert list_counts(system.database_url, "caida") == (ROWS, ROWS), "every row once, in the job's one list"


@pytest.mark.slow
def test_a_gateway_killed_mid_import_leaves_the_job_running_to_the_end(
    cluster: tuple[Cluster, httpx.Client],  # noqa: F811
) -> None:
    system, client = cluster
    job_id = _upload(client, "sin.csv", "sin-gw")

    gateway = _running(system, "gateway")
    written = _kill_when_writing(system, client, job_id, "sin-gw", gateway)
    killed_at = time.monotonic()
    port = _port(str(client.base_url))
    again = start("gateway-again", ["serve", "gateway", "--port", port], system.env, system.folder)
    system.processes.append(again)
    wait_healthy(str(client.base_url).rstrip("/"), again)
    job = wait_finished(client, job_id, timeout=240)
    print(
        f"\ngateway killed with {written}/{ROWS} rows written; job {job['state']} after "
        f"{time.monotonic() - killed_at:.1f} s, attempts {job.get('attempts')}"
    )

    assert 0 < written < ROWS, "killed half-way"
    assert job["state"] == "finished", job
    assert job["attempts"] == 1, "the worker never stopped: nothing to run again"
    assert list_counts(system.database_url, "sin-gw") == (ROWS, ROWS)


@pytest.mark.slow
def test_a_queued_job_whose_rq_job_was_lost_from_redis_is_sent_again_and_runs_to_the_end(
    cluster: tuple[Cluster, httpx.Client],  # noqa: F811
) -> None:
    """Redis loses a queued job's message (flushed, restarted without persistence): the job would stay
    queued forever. A worker's reaper finds it queued past the grace period with no rq job and sends it
    again; it runs to the end and its file is whole."""
    system, client = cluster
    rows = [{"phone": f"8850-{n:04d}", "name": f"Perdido {n}"} for n in range(300)]
    for _ in range(10):  # the worker answers JSON imports once it is up
        imported = client.post("/import", json=rows, params={"list": "perdidos"})
        if imported.status_code != 503:
            break
        time.sleep(int(imported.headers["Retry-After"]))
    assert imported.status_code == 200, imported.text
    for worker in [p for p in system.processes if p.name.startswith("importexport")]:
        worker.stop()  # no worker: the export waits in the queue

    exported = client.get("/export", params={"async": "true", "format": "csv", "list": "perdidos"})
    assert exported.status_code == 202, exported.text
    job_id = exported.json()["id"]
    connection = redis.Redis.from_url(system.env["CALLMANAGER_REDIS_URL"])
    try:
        assert connection.delete(f"rq:job:cm-{job_id}") == 1, "the job's rq message, lost"
    finally:
        connection.close()
    lost_at = time.monotonic()

    system.start_worker("importexport")
    job = wait_finished(client, job_id, timeout=120)
    print(f"\nlost rq job sent again: {job['state']} after {time.monotonic() - lost_at:.1f} s")

    assert job["state"] == "finished", job
    assert job["attempts"] == 2, "one lost delivery, one run"
    download = client.get(exported.json()["download"])
    assert download.status_code == 200
    assert len(download.text.strip().splitlines()) == len(rows) + 1  # the header and every contact


@pytest.mark.slow
def test_many_agents_racing_for_one_contact_over_socketio_on_two_gateways_one_wins(
    cluster: tuple[Cluster, httpx.Client],  # noqa: F811
) -> None:
    system, client = cluster
    second_url = f"http://127.0.0.1:{free_port()}"
    second = start("gateway-2", ["serve", "gateway", "--port", _port(second_url)], system.env, system.folder)
    system.processes.append(second)
    wait_healthy(second_url, second)
    urls = [str(client.base_url).rstrip("/"), second_url]

    contact = client.post("/contacts", json={"phone": f"89{uuid.uuid4().int % 1_000_000:06d}"})
    assert contact.status_code in (201, 409), contact.text
    contact_id = (
        contact.json()["id"] if contact.status_code == 201 else contact.json()["error"]["existing_id"]
    )
    keys = [_agent(system, f"agente-{n:02d}") for n in range(30)]
    listeners = [Listener(urls[n % 2], {"api_key": key}) for n, key in enumerate(keys)]
    answers: list[dict[str, Any]] = []
    gate = threading.Barrier(len(listeners))
    lock = threading.Lock()

    def race(listener: Listener) -> None:
        gate.wait(timeout=30)
        answer = listener.client.call("lock_contact", {"id": contact_id, "duration_minutes": 5}, timeout=30)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=race, args=(listener,)) for listener in listeners]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for listener in listeners:
            listener.close()

    print(f"\n{len(listeners)} agents over 2 gateways: {sum(1 for a in answers if a.get('ok'))} lock won")
    assert len(answers) == len(listeners)
    assert sum(1 for a in answers if a.get("ok") is True) == 1, answers
    assert all(a.get("ok") is False for a in answers if a.get("ok") is not True)
    locked = client.get(f"/contacts/{contact_id}").json()
    assert locked["locked_by"]


def _agent(system: Cluster, username: str) -> str:
    engine = create_engine(system.database_url)
    try:
        _, issued = UserDirectory(engine).create_user(username, "Agent")
    finally:
        engine.dispose()
    return issued.plaintext
