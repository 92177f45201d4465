"""The do-not-call list in distributed mode: the gateway hands the uploaded list to the importexport worker
(``read_dnc_file`` over rq), adds its numbers through the internal contacts API, and a contacts import run
by that worker gets the listed rows back as ``dnc`` (real and dry run) and saves none of them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from tests.support.cluster import run_cluster, wait_finished


@pytest.fixture
def gateway(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """A ProjectManager's client of a gateway, with contacts and an importexport worker as processes."""
    with (
        run_cluster(postgres_url, redis_url, tmp_path, workers=["importexport"]) as running,
        running.client(running.create_key("ProjectManager", "pablo"), timeout=60) as client,
    ):
        yield client


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
    dry_job = wait_finished(gateway, dry.json()["id"])
    real = gateway.post("/import", files={"file": ("c.xlsx", contacts_file)})
    real_job = wait_finished(gateway, real.json()["id"])
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
