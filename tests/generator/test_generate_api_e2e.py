"""``POST /api/generate_contacts`` on a real embedded system (``callmanager up`` as a process)."""

from __future__ import annotations

import csv
import io
import queue
import time
from typing import Any

import httpx
import socketio

from kernel.phone import parse_phone
from tests.support.servers import EmbeddedServer, wait_finished

OPERATORS = {"kolbi", "telefonica", "claro"}


def contacts_in(client: httpx.Client, list_name: str) -> list[dict[str, Any]]:
    response = client.get("/contacts", params={"list": list_name, "limit": 1000})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


class JobListener:
    """A real Socket.IO client recording ``job_progress`` messages."""

    def __init__(self, base_url: str, key: str) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        self.client.on("job_progress", self.messages.put)
        self.client.connect(base_url, auth={"api_key": key}, transports=["websocket"], wait_timeout=10)

    def received(self, job_id: str, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Messages of ``job_id`` until its final one."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if message.get("id") == job_id:
                got.append(message)
                if message["state"] in ("finished", "failed", "cancelled"):
                    return got
        raise AssertionError(f"no final job_progress for {job_id}; got {got}")

    def close(self) -> None:
        self.client.disconnect()


def test_saved_numbers_become_contacts_with_their_operator_and_a_second_save_adds_no_duplicate(
    embedded_server: EmbeddedServer,
) -> None:
    manager = embedded_server.client(embedded_server.create_user("paula", "ProjectManager"))

    first = manager.post("/api/generate_contacts", json={"amount": 200, "save": True, "seed": 42})

    assert first.status_code == 200, first.text
    body = first.json()
    assert body["success"] is True
    assert body["count"] == 200
    assert body["saved"] == 200
    assert body["list"].startswith("gen-")
    assert {o["code"]: o["count"] for o in body["operators"]} == {"kolbi": 80, "telefonica": 70, "claro": 50}
    phone = body["phones"][0]
    assert phone["formatted"] == f"{phone['number'][:4]}-{phone['number'][4:]}"
    assert phone["e164"] == f"+506{phone['number']}"
    saved = contacts_in(manager, body["list"])
    assert len(saved) == 200
    operator_of = {p["e164"]: p["operator"] for p in body["phones"]}
    for contact in saved:
        assert contact["operator"] == operator_of[contact["phone_e164"]]
        assert contact["operator"] == parse_phone(contact["phone_e164"]).operator
        assert contact["phone_national"] == contact["phone"]

    second = manager.post(
        "/api/generate_contacts", json={"count": 200, "auto_import": True, "seed": 42, "method": "stratified"}
    ).json()

    assert second["saved"] == 200
    assert second["list"] != body["list"]
    assert second["redraws"] >= 200
    first_phones = {p["e164"] for p in body["phones"]}
    second_phones = {p["e164"] for p in second["phones"]}
    assert first_phones.isdisjoint(second_phones)
    everyone = manager.get("/contacts", params={"limit": 1000}).json()
    assert len(everyone) == 400
    assert len({c["phone_e164"] for c in everyone}) == 400


def test_only_project_managers_and_ti_may_generate(embedded_server: EmbeddedServer) -> None:
    for username, role in (("ana", "Agent"), ("tomas", "TeamLead")):
        client = embedded_server.client(embedded_server.create_user(username, role))
        refused = client.post("/api/generate_contacts", json={"amount": 5})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
    ti = embedded_server.client(embedded_server.create_user("ivan", "TI"))
    allowed = ti.post("/api/generate_contacts", json={"amount": 5, "method": "simple"})
    assert allowed.status_code == 200
    assert allowed.json()["saved"] == 0
    assert allowed.json()["list"] is None
    assert ti.get("/contacts", params={"limit": 1000}).json() == []


def test_impossible_requests_are_refused_with_a_spanish_reason(embedded_server: EmbeddedServer) -> None:
    manager = embedded_server.client(embedded_server.create_user("paula", "ProjectManager"))
    cases: dict[str, list[dict[str, Any]]] = {
        "invalid_amount": [
            {"amount": 0},
            {"amount": 1_000_001},
            {"amount": 1001, "background": False},
        ],
        "invalid_method": [{"amount": 10, "method": "aleatorio"}],
        "invalid_weights": [
            {"amount": 10, "weights": {"kolbi": 1, "movistar": 1}},
            {"amount": 10, "weights": {"kolbi": 0, "telefonica": 0, "claro": 0}},
        ],
    }
    for code, bodies in cases.items():
        for body in bodies:
            refused = manager.post("/api/generate_contacts", json=body)
            assert refused.status_code == 422, body
            error = refused.json()["error"]
            assert error["code"] == code, body
    amount = manager.post("/api/generate_contacts", json={"amount": 0}).json()["error"]["message"]
    assert "La cantidad debe ser" in amount
    method = manager.post("/api/generate_contacts", json={"amount": 1, "method": "x"}).json()["error"]
    assert "Método desconocido" in method["message"]
    not_a_number = manager.post("/api/generate_contacts", json={"amount": "muchos"})
    assert not_a_number.status_code == 422
    assert not_a_number.json()["error"]["message"] == "Datos de entrada no válidos."


def test_large_generation_runs_as_a_job_whose_progress_reaches_its_creator(
    embedded_server: EmbeddedServer,
) -> None:
    key = embedded_server.create_user("paula", "ProjectManager")
    manager = embedded_server.client(key)
    listener = JobListener(embedded_server.base_url, key)
    try:
        started = manager.post(
            "/api/generate_contacts", json={"amount": 5000, "save": True, "method": "random", "seed": 7}
        )
        assert started.status_code == 202, started.text
        job = started.json()
        assert started.headers["location"] == f"/jobs/{job['id']}"
        assert job["kind"] == "generate"
        assert job["state"] in ("queued", "running", "finished")
        assert job["progress"]["total"] == 5000

        done = wait_finished(manager, job["id"])
        messages = listener.received(job["id"])
    finally:
        listener.close()

    assert done["state"] == "finished", done
    report = done["report"]
    assert report["count"] == 5000
    assert report["saved"] == 5000
    assert report["method"] == "random"
    assert report["list"] == job["list"]
    assert sum(o["count"] for o in report["operators"]) == 5000
    assert abs(sum(o["share"] for o in report["operators"]) - 1) < 1e-9
    assert messages[-1]["state"] == "finished"
    phases = [m.get("phase") for m in messages]
    assert phases.index("checking") < phases.index("saving")
    assert messages[-1]["progress"] == {"done": 5000, "total": 5000}
    page = manager.get("/contacts", params={"list": job["list"], "operator": "claro", "limit": 5})
    assert page.status_code == 200
    assert [c["operator"] for c in page.json()] == ["claro"] * 5


def test_an_unsaved_job_leaves_its_numbers_for_download(embedded_server: EmbeddedServer) -> None:
    manager = embedded_server.client(embedded_server.create_user("paula", "ProjectManager"))
    other = embedded_server.client(embedded_server.create_user("tomas", "TeamLead"))
    job = manager.post("/api/generate_contacts", json={"amount": 1500, "method": "simple"}).json()

    done = wait_finished(manager, job["id"])

    assert done["state"] == "finished", done
    assert done["report"]["saved"] == 0
    download = manager.get(done["report"]["download"])
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["numero", "formateado", "e164", "operador"]
    assert len(rows) == 1501
    assert len({r[0] for r in rows[1:]}) == 1500
    assert {r[3] for r in rows[1:]} == OPERATORS
    assert other.get(done["report"]["download"]).status_code == 404
    assert manager.get("/contacts", params={"limit": 1000}).json() == []
