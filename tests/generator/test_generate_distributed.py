"""A large generation in distributed mode: the gateway queues it on the generator's rq queue, and
``callmanager serve generator`` runs it.

The generator process saves through the internal contacts API (``HttpContactsClient``) as the user whose
key asked, and leaves an unsaved job's file in the data dir the gateway serves downloads from (shared
here, as a volume would be in docker compose).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, run_cluster, wait_finished


@pytest.fixture
def deployment(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with run_cluster(postgres_url, redis_url, tmp_path, workers=["generator"]) as running:
        yield running


def test_the_worker_saves_a_large_generation_and_leaves_unsaved_numbers_for_download(
    deployment: Cluster,
) -> None:
    manager = deployment.client(deployment.create_key("ProjectManager"))

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
