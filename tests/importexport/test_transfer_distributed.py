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
from collections.abc import Iterator
from pathlib import Path

import httpx
import openpyxl
import pytest
import sqlalchemy as sa

from kernel.store import create_engine
from tests.support.cluster import Cluster, run_cluster, wait_finished

ROWS = 50_000


LEASE_SECONDS = 3
"""A short job lease, so a killed worker's job is taken back in seconds rather than the default 40."""


@pytest.fixture
def cluster(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[Cluster, httpx.Client]]:
    """A TeamLead's client of a gateway, with contacts and an rq worker as separate processes."""
    with (
        run_cluster(
            postgres_url, redis_url, tmp_path, workers=["importexport"], JOB_LEASE_SECONDS=str(LEASE_SECONDS)
        ) as system,
        system.client(system.create_key("TeamLead", "lucia")) as client,
    ):
        yield system, client


@pytest.fixture
def gateway(cluster: tuple[Cluster, httpx.Client]) -> httpx.Client:
    return cluster[1]


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
    job = wait_finished(gateway, uploaded.json()["id"])
    # The same file into the same list again writes nothing; into another list (the import's own, no
    # list given) it changes no field and lists every contact there too: ``listed``.
    again = wait_finished(
        gateway,
        gateway.post(
            "/import", files={"file": ("lista.xlsx", content.getvalue())}, data={"list": "d"}
        ).json()["id"],
    )
    elsewhere = wait_finished(
        gateway, gateway.post("/import", files={"file": ("lista.xlsx", content.getvalue())}).json()["id"]
    )
    report = gateway.get(f"/jobs/{job['id']}/report", params={"format": "csv"})
    exported = gateway.get("/export", params={"async": "true", "format": "csv", "status": "NC"})
    export_job = wait_finished(gateway, exported.json()["id"])
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
    system.start_worker("importexport")
    job = wait_finished(client, job_id, timeout=240)
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
    system.start_worker("importexport")  # a new worker's reaper finds nothing to take back
    time.sleep(LEASE_SECONDS)
    assert client.get(f"/jobs/{job_id}").json()["state"] == "cancelled"
