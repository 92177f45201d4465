"""Import and export in distributed mode: the gateway stores the upload, ``callmanager serve importexport``
checks it and runs the job from its rq queue.

That process writes through the internal contacts API (``HttpContactsClient``, batches sent from a
background thread while the next is read) and leaves the report and the export file in the data dir the
gateway serves them from (shared here through the working directory, as a volume in docker compose);
an immediate export is written there too and streamed by the gateway.
"""

from __future__ import annotations

import io
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
import redis
import sqlalchemy as sa

from gateway.users import UserDirectory
from kernel.store import create_engine
from system.migrate import upgrade
from tests.support.servers import Process, clean_env, free_port, start, wait_healthy

ROWS = 50_000


LEASE_SECONDS = 3
"""A short job lease, so a killed worker's job is taken back in seconds rather than the default 40."""


@dataclass
class Cluster:
    """contacts, a gateway and importexport workers as separate processes, against one schema."""

    env: dict[str, str]
    folder: Path
    database_url: str
    processes: list[Process] = field(default_factory=list)

    def start_worker(self) -> Process:
        worker = start(
            f"importexport-{len(self.processes)}", ["serve", "importexport"], self.env, self.folder
        )
        self.processes.append(worker)
        return worker


@pytest.fixture
def cluster(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[Cluster, httpx.Client]]:
    """A TeamLead's client of a gateway, with contacts and an rq worker as separate processes."""
    engine = create_engine(postgres_url)
    upgrade(engine)
    _, issued = UserDirectory(engine).create_user("lucia", "TeamLead")
    engine.dispose()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    contacts_port, gateway_port = free_port(), free_port()
    env = clean_env(
        CALLMANAGER_DATABASE_URL=postgres_url,
        CALLMANAGER_REDIS_URL=redis_url,
        CALLMANAGER_BUS_PREFIX=prefix,
        CALLMANAGER_CONTACTS_URL=f"http://127.0.0.1:{contacts_port}",
        CALLMANAGER_LOG_FORMAT="json",
        CALLMANAGER_SECRET_KEY=uuid.uuid4().hex + uuid.uuid4().hex,
        CALLMANAGER_JOB_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    system = Cluster(env, tmp_path, postgres_url)
    try:
        contacts = start("contacts", ["serve", "contacts", "--port", str(contacts_port)], env, tmp_path)
        system.processes.append(contacts)
        wait_healthy(f"http://127.0.0.1:{contacts_port}", contacts)
        server = start("gateway", ["serve", "gateway", "--port", str(gateway_port)], env, tmp_path)
        system.processes.append(server)
        wait_healthy(f"http://127.0.0.1:{gateway_port}", server)
        system.start_worker()
        with httpx.Client(
            base_url=f"http://127.0.0.1:{gateway_port}", headers={"X-API-Key": issued.plaintext}, timeout=30
        ) as client:
            yield system, client
    finally:
        logs = [process.stop() for process in system.processes]
        client_redis = redis.Redis.from_url(redis_url)
        keys = list(client_redis.scan_iter(f"{prefix}*"))
        if keys:
            client_redis.delete(*keys)
        client_redis.close()
    assert not any("Traceback" in log for log in logs)


@pytest.fixture
def gateway(cluster: tuple[Cluster, httpx.Client]) -> httpx.Client:
    return cluster[1]


def finished(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("finished", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end within {timeout} s")


def test_a_worker_imports_an_upload_and_exports_through_the_internal_api(gateway: httpx.Client) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Teléfono", "Nombre", "Estado"])
    for i in range(2500):
        sheet.append([f"8812-{i:04d}", f"Cliente {i}", "NC" if i % 2 else ""])
    sheet.append(["8812-0007", "Cliente siete", ""])
    sheet.append(["123", "malo", ""])
    content = io.BytesIO()
    book.save(content)

    uploaded = gateway.post("/import", files={"file": ("lista.xlsx", content.getvalue())}, data={"list": "d"})
    job = finished(gateway, uploaded.json()["id"])
    # The same file into the same list again writes nothing; into another list (the import's own, no
    # list given) it changes no field and lists every contact there too: ``listed``.
    again = finished(
        gateway,
        gateway.post(
            "/import", files={"file": ("lista.xlsx", content.getvalue())}, data={"list": "d"}
        ).json()["id"],
    )
    elsewhere = finished(
        gateway, gateway.post("/import", files={"file": ("lista.xlsx", content.getvalue())}).json()["id"]
    )
    report = gateway.get(f"/jobs/{job['id']}/report", params={"format": "csv"})
    exported = gateway.get("/export", params={"async": "true", "format": "csv", "status": "NC"})
    export_job = finished(gateway, exported.json()["id"])
    download = gateway.get(exported.json()["download"])
    streamed = gateway.get("/export", params={"list": "d"})

    assert uploaded.status_code == 202
    assert job["state"] == "finished", job
    counts = {k: job["report"][k] for k in ("inserted", "duplicates_merged", "rejected")}
    assert counts == {"inserted": 2500, "duplicates_merged": 1, "rejected": 1}
    assert (again["report"]["unchanged"], again["report"]["inserted"]) == (2500, 0)
    moved = {k: elsewhere["report"][k] for k in ("listed", "updated", "unchanged", "inserted")}
    assert moved == {"listed": 2500, "updated": 0, "unchanged": 0, "inserted": 0}
    assert report.status_code == 200
    assert len(report.content.decode("utf-8-sig").splitlines()) == 3
    assert (export_job["state"], export_job["report"]["rows"]) == ("finished", 1250)
    assert len(download.content.decode("utf-8-sig").splitlines()) == 1251
    rows = list(openpyxl.load_workbook(io.BytesIO(streamed.content), read_only=True).active.iter_rows())  # type: ignore[union-attr]
    assert len(rows) == 2501


def big_csv(rows: int) -> bytes:
    """A CSV of ``rows`` distinct mobile numbers (no duplicates, none rejected)."""
    lines = ["Teléfono,Nombre"] + [f"88{i:06d},Cliente {i}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def list_counts(database_url: str, list_name: str) -> tuple[int, int]:
    """(contacts in the list, distinct phones among them)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return _counts(conn, list_name)
    finally:
        engine.dispose()


def _counts(conn: sa.Connection, list_name: str) -> tuple[int, int]:
    query = sa.text("SELECT count(*), count(DISTINCT phone_e164) FROM contacts WHERE list = :list")
    row = conn.execute(query, {"list": list_name}).one()
    conn.commit()
    return int(row[0]), int(row[1])


def attempts_of(database_url: str, job_id: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(sa.text("SELECT attempts FROM jobs WHERE id = :id"), {"id": job_id}).scalar_one()
            )
    finally:
        engine.dispose()


def kill_mid_import(system: Cluster, client: httpx.Client, job_id: str, list_name: str) -> tuple[int, float]:
    """Wait until the job reports progress and has written rows, then ``kill -9`` the worker running it.

    Returns (rows written before the kill, seconds since upload when killed)."""
    [worker] = [p for p in system.processes if p.name.startswith("importexport") and p.popen.poll() is None]
    engine = create_engine(system.database_url)
    try:
        with engine.connect() as conn:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                job = client.get(f"/jobs/{job_id}").json()
                assert job["state"] in ("queued", "running"), job
                written, _ = _counts(conn, list_name)
                if job["progress"]["done"] > 0 and written > 0:
                    os.kill(worker.popen.pid, signal.SIGKILL)
                    worker.popen.wait(timeout=10)
                    return written, time.monotonic()
                time.sleep(0.01)
    finally:
        engine.dispose()
    raise AssertionError("the import never got going")


def test_a_killed_worker_s_import_is_run_again_by_the_next_worker_and_imports_every_row_once(
    cluster: tuple[Cluster, httpx.Client],
) -> None:
    system, client = cluster
    started = time.monotonic()
    uploaded = client.post("/import", files={"file": ("grande.csv", big_csv(ROWS))}, data={"list": "grande"})
    assert uploaded.status_code == 202, uploaded.text
    job_id = uploaded.json()["id"]
    uploads = system.folder / "var" / "uploads"
    assert len(list(uploads.iterdir())) == 1

    written, killed_at = kill_mid_import(system, client, job_id, "grande")
    assert 0 < written < ROWS, "killed half-way"
    assert client.get(f"/jobs/{job_id}").json()["state"] == "running"  # its lease has not lapsed yet
    system.start_worker()
    job = finished(client, job_id, timeout=240)
    ended_at = time.monotonic()

    assert job["state"] == "finished", job
    assert job["attempts"] == 2 == attempts_of(system.database_url, job_id), "run twice: killed, then again"
    assert job["report"]["list"] == "grande"
    assert list_counts(system.database_url, "grande") == (ROWS, ROWS), "every row once, in the job's one list"
    assert job["report"]["inserted"] + job["report"]["unchanged"] == ROWS
    assert list(uploads.iterdir()) == [], "the upload is deleted when the job ends"
    print(
        f"\n{ROWS} rows: killed after {killed_at - started:.1f} s with {written} written; "
        f"finished {ended_at - killed_at:.1f} s after the kill (lease {LEASE_SECONDS} s)"
    )


def test_cancelling_the_import_of_a_killed_worker_ends_it_cancelled_and_deletes_the_upload(
    cluster: tuple[Cluster, httpx.Client],
) -> None:
    system, client = cluster
    uploads = system.folder / "var" / "uploads"
    uploaded = client.post("/import", files={"file": ("grande.csv", big_csv(ROWS))}, data={"list": "corte"})
    job_id = uploaded.json()["id"]
    assert len(list(uploads.iterdir())) == 1

    kill_mid_import(system, client, job_id, "corte")
    time.sleep(LEASE_SECONDS + 0.5)  # nobody renews the lease: nobody holds the job any more
    cancelled = client.delete(f"/jobs/{job_id}")

    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert client.get(f"/jobs/{job_id}").json()["state"] == "cancelled"
    assert list(uploads.iterdir()) == [], "the upload is deleted"
    system.start_worker()  # a new worker's reaper finds nothing to take back
    time.sleep(LEASE_SECONDS)
    assert client.get(f"/jobs/{job_id}").json()["state"] == "cancelled"
