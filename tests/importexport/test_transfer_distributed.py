"""Import and export in distributed mode: the gateway stores the upload, ``callmanager serve importexport``
checks it and runs the job from its rq queue.

That process writes through the internal contacts API (``HttpContactsClient``, batches sent from a
background thread while the next is read) and leaves the report and the export file in the data dir the
gateway serves them from (shared here through the working directory, as a volume in docker compose);
an immediate export is written there too and streamed by the gateway.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
import redis

from gateway.users import UserDirectory
from kernel.store import create_engine
from system.migrate import upgrade
from tests.support.servers import Process, clean_env, free_port, start, wait_healthy


@pytest.fixture
def gateway(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
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
    )
    processes: list[Process] = []
    try:
        contacts = start("contacts", ["serve", "contacts", "--port", str(contacts_port)], env, tmp_path)
        processes.append(contacts)
        wait_healthy(f"http://127.0.0.1:{contacts_port}", contacts)
        server = start("gateway", ["serve", "gateway", "--port", str(gateway_port)], env, tmp_path)
        processes.append(server)
        wait_healthy(f"http://127.0.0.1:{gateway_port}", server)
        processes.append(start("importexport", ["serve", "importexport"], env, tmp_path))
        with httpx.Client(
            base_url=f"http://127.0.0.1:{gateway_port}", headers={"X-API-Key": issued.plaintext}, timeout=30
        ) as client:
            yield client
    finally:
        logs = [process.stop() for process in processes]
        client_redis = redis.Redis.from_url(redis_url)
        keys = list(client_redis.scan_iter(f"{prefix}*"))
        if keys:
            client_redis.delete(*keys)
        client_redis.close()
    assert not any("Traceback" in log for log in logs)


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
    again = finished(
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
    assert report.status_code == 200
    assert len(report.content.decode("utf-8-sig").splitlines()) == 3
    assert (export_job["state"], export_job["report"]["rows"]) == ("finished", 1250)
    assert len(download.content.decode("utf-8-sig").splitlines()) == 1251
    rows = list(openpyxl.load_workbook(io.BytesIO(streamed.content), read_only=True).active.iter_rows())  # type: ignore[union-attr]
    assert len(rows) == 2501
