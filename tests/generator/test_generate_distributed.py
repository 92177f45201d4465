"""A large generation in distributed mode: the gateway queues it on the generator's rq queue, and
``callmanager serve generator`` runs it.

The generator process saves through the internal contacts API (``HttpContactsClient``) as the user whose
key asked, and leaves an unsaved job's file in the data dir the gateway serves downloads from (shared
here, as a volume would be in docker compose).
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from gateway.users import UserDirectory
from kernel.store import create_engine
from system.migrate import upgrade
from tests.support.servers import Process, clean_env, free_port, start, wait_healthy


@dataclass
class Deployment:
    gateway_url: str
    database_url: str

    def client(self, role: str) -> httpx.Client:
        engine = create_engine(self.database_url)
        try:
            _, issued = UserDirectory(engine).create_user(f"u{uuid.uuid4().hex[:8]}", role)
        finally:
            engine.dispose()
        return httpx.Client(base_url=self.gateway_url, headers={"X-API-Key": issued.plaintext}, timeout=30)


@pytest.fixture
def deployment(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Deployment]:
    engine = create_engine(postgres_url)
    upgrade(engine)
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
        gateway = start("gateway", ["serve", "gateway", "--port", str(gateway_port)], env, tmp_path)
        processes.append(gateway)
        wait_healthy(f"http://127.0.0.1:{gateway_port}", gateway)
        processes.append(start("generator", ["serve", "generator"], env, tmp_path))
        yield Deployment(f"http://127.0.0.1:{gateway_port}", postgres_url)
    finally:
        for process in processes:
            process.stop()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def wait_finished(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("finished", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not done within {timeout} s")


def test_the_worker_saves_a_large_generation_and_leaves_unsaved_numbers_for_download(
    deployment: Deployment,
) -> None:
    manager = deployment.client("ProjectManager")

    saved = manager.post("/api/generate_contacts", json={"amount": 3000, "save": True, "seed": 5})
    unsaved = manager.post("/api/generate_contacts", json={"amount": 1200, "method": "random"})

    assert saved.status_code == 202, saved.text
    assert unsaved.status_code == 202, unsaved.text
    done = wait_finished(manager, saved.json()["id"])
    assert done["state"] == "finished", done
    assert done["report"]["saved"] == 3000
    assert done["progress"] == {"done": 3000, "total": 3000}
    page = manager.get("/contacts", params={"list": done["report"]["list"], "limit": 1000})
    assert len(page.json()) == 1000
    assert 'rel="next"' in page.headers["link"]
    assert {c["operator"] for c in page.json()} == {"kolbi", "telefonica", "claro"}

    file_job = wait_finished(manager, unsaved.json()["id"])
    assert file_job["state"] == "finished", file_job
    download = manager.get(file_job["report"]["download"])
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 1201
