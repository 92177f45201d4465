"""The do-not-call list in distributed mode: the gateway hands the uploaded list to the importexport worker
(``read_dnc_file`` over rq), adds its numbers through the internal contacts API, and a contacts import run
by that worker gets the listed rows back as ``dnc`` (real and dry run) and saves none of them."""

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
import rq

from gateway.users import UserDirectory
from kernel.store import create_engine
from system.migrate import upgrade
from tests.support.servers import Process, clean_env, free_port, start, wait_healthy


@pytest.fixture
def gateway(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """A ProjectManager's client of a gateway, with contacts and an importexport worker as processes."""
    engine = create_engine(postgres_url)
    upgrade(engine)
    _, issued = UserDirectory(engine).create_user("pablo", "ProjectManager")
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
        _wait_for_worker(redis_url, f"{prefix}-importexport")
        with httpx.Client(
            base_url=f"http://127.0.0.1:{gateway_port}", headers={"X-API-Key": issued.plaintext}, timeout=60
        ) as client:
            yield client
    finally:
        logs = [process.stop() for process in processes]
        bus = redis.Redis.from_url(redis_url)
        keys = list(bus.scan_iter(f"{prefix}*"))
        if keys:
            bus.delete(*keys)
        bus.close()
    assert not any("Traceback" in log for log in logs)


def _wait_for_worker(redis_url: str, queue_name: str) -> None:
    """Until an rq worker listens on ``queue_name`` (its start-up takes seconds on a loaded machine, and
    the gateway's calls to it wait less than that for their answer)."""
    bus = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if rq.Worker.all(connection=bus, queue=rq.Queue(queue_name, connection=bus)):
                return
            time.sleep(0.2)
    finally:
        bus.close()
    raise AssertionError(f"no worker on {queue_name}")


def _finished(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("finished", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end")


def _xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_list_uploaded_to_the_gateway_is_read_by_the_worker_and_imports_leave_its_numbers_out(
    gateway: httpx.Client,
) -> None:
    listed = [f"8860-{i:04d}" for i in range(0, 3000, 3)]
    dnc_file = (
        "Teléfono;Motivo\r\n" + "".join(f"{phone};campaña vieja\r\n" for phone in listed) + "12;malo\r\n"
    )
    contacts_file = _xlsx([["Teléfono", "Nombre"], *([f"8860-{i:04d}", f"Cliente {i}"] for i in range(3000))])

    added = gateway.post("/dnc/import", files={"file": ("no_llamar.csv", dnc_file.encode())})
    dry = gateway.post("/import", files={"file": ("c.xlsx", contacts_file)}, data={"dry_run": "true"})
    dry_job = _finished(gateway, dry.json()["id"])
    real = gateway.post("/import", files={"file": ("c.xlsx", contacts_file)})
    real_job = _finished(gateway, real.json()["id"])
    exported = gateway.get("/dnc/export", params={"format": "csv"})

    assert added.status_code == 200, added.text
    assert (added.json()["added"], added.json()["invalid"]) == (1000, 1)
    assert [row["row"] for row in added.json()["invalid_rows"]] == [1002]
    for job in (dry_job, real_job):
        assert job["state"] == "finished", job
        assert (job["report"]["dnc"], job["report"]["inserted"]) == (1000, 2000)
        assert job["report"]["dnc_rows"][0] == {
            "row": 2,
            "phone": "8860-0000",
            "message": "El número está en la lista de no llamar: no se guardó",
        }
    assert dry_job["report"]["dry_run"] is True
    assert gateway.get("/stats").json()["total"] == 2000
    assert gateway.get("/contacts", params={"q": "8860-0003"}).json() == []
    assert exported.status_code == 200
    assert exported.content.decode("utf-8-sig").count("campaña vieja") == 1000
