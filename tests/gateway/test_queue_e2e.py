"""The work queue on a real embedded system: next contact, wrap-up, do-not-call and eligibility over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.servers import EmbeddedServer, start_embedded


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    running = start_embedded(tmp_path_factory.mktemp("queue"))
    try:
        for name, role, team in [
            ("ana", "Agent", "norte"),
            ("beto", "Agent", "norte"),
            ("lucia", "TeamLead", "norte"),
            ("pablo", "ProjectManager", None),
        ]:
            running.create_user(name, role, team)
        yield running
    finally:
        running.process.stop()


def _as(server: EmbeddedServer, who: str) -> httpx.Client:
    return server.client(server.keys[who])


def _create(server: EmbeddedServer, phone: str, **fields: str) -> str:
    with _as(server, "pablo") as http:
        created = http.post("/contacts", json={"phone": phone, **fields})
        assert created.status_code == 201, created.text
        return str(created.json()["id"])


def _release_everything(server: EmbeddedServer) -> None:
    with _as(server, "pablo") as http:
        for contact in http.get("/contacts", params={"locked": "true"}).json():
            assert http.delete(f"/contacts/{contact['id']}/lock").status_code == 200


def test_a_fresh_install_answers_queue_empty_and_says_why(server: EmbeddedServer) -> None:
    with _as(server, "ana") as http:
        empty = http.post("/queue/next")

    assert empty.status_code == 404
    error = empty.json()["error"]
    assert error["code"] == "queue_empty"
    assert "importe o cree contactos" in error["message"]


def test_next_contact_comes_locked_to_the_agent_and_wrap_up_releases_it(server: EmbeddedServer) -> None:
    first = _create(server, "8830-0001", status="NC")
    second = _create(server, "8830-0002")

    with _as(server, "ana") as ana, _as(server, "beto") as beto:
        ana_next = ana.post("/queue/next")
        beto_next = beto.post("/queue/next")
        assert ana_next.status_code == 200, ana_next.text
        assert beto_next.status_code == 200, beto_next.text
        mine = ana_next.json()
        assert mine["contact"]["id"] == first
        assert mine["reason"] == "never_tried"
        assert mine["campaign"] == "General"
        assert beto_next.json()["contact"]["id"] == second
        assert mine["contact"]["locked_by_name"] == "ana"

        refused = beto.post(f"/contacts/{first}/disposition", json={"outcome": "sale"})
        assert refused.status_code == 423
        assert refused.json()["error"]["code"] == "locked"

        callback = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        wrapped = ana.post(
            f"/contacts/{first}/disposition",
            json={
                "outcome": "callback",
                "status": "Interesado",
                "note": "Llamar mañana",
                "callback_at": callback,
                "callback_scope": "shared",
            },
        )
        assert wrapped.status_code == 200, wrapped.text
        after = wrapped.json()
        assert after["status"] == "INTERESADO"
        assert after["note"] == "Llamar mañana"
        assert after["locked_by"] is None
        history = ana.get(f"/contacts/{first}/history").json()
        assert any(row["field"] == "disposition" and row["new"] == "callback" for row in history)
        pending = beto.get("/callbacks").json()
        assert [(c["contact_id"], c["scope"], c["username"]) for c in pending] == [(first, "shared", "ana")]
        assert ana.get("/callbacks", params={"due_before": datetime.now(UTC).isoformat()}).json() == []
    _release_everything(server)


def test_a_do_not_call_number_is_never_offered_nor_called(server: EmbeddedServer) -> None:
    listed = _create(server, "8830-0100")
    with _as(server, "ana") as ana, _as(server, "pablo") as pablo:
        assert ana.post("/dnc", json={"phone": "8830-0100"}).status_code == 403
        added = pablo.post("/dnc", json={"phone": "8830 0100", "reason": "Pidió no ser llamado"})
        assert added.status_code == 201, added.text
        assert added.json()["phone_e164"] == "+50688300100"
        assert [e["phone_e164"] for e in pablo.get("/dnc").json()] == ["+50688300100"]

        called = ana.post(f"/contacts/{listed}/call")
        assert called.status_code == 409
        assert called.json()["error"]["code"] == "dnc"
        assert "no llamar" in called.json()["error"]["message"]

        why = ana.get(f"/contacts/{listed}/eligibility").json()
        assert why["eligible"] is False
        assert [r["reason"] for r in why["reasons"]] == ["dnc"]

        offered = []
        while (claim := ana.post("/queue/next")).status_code == 200:
            offered.append(claim.json()["contact"]["id"])
        assert listed not in offered
        assert claim.status_code == 404
        assert claim.json()["error"]["counts"]["dnc"] == 1

        assert pablo.delete("/dnc/+50688300100", params={"reason": "error"}).status_code == 204
        assert pablo.delete("/dnc/+50688300100").status_code == 404
        assert ana.get(f"/contacts/{listed}/eligibility").json()["eligible"] is True
    _release_everything(server)


def test_eligibility_explains_a_lock_held_by_someone_else(server: EmbeddedServer) -> None:
    contact = _create(server, "8830-0200")
    with _as(server, "beto") as beto, _as(server, "ana") as ana:
        assert beto.post(f"/contacts/{contact}/lock").status_code == 200
        why = ana.get(f"/contacts/{contact}/eligibility").json()
    assert why["eligible"] is False
    assert why["reasons"][0]["reason"] == "locked"
    assert "beto" in why["reasons"][0]["message"]
    _release_everything(server)


def test_campaigns_list_the_default_general(server: EmbeddedServer) -> None:
    with _as(server, "ana") as http:
        campaigns = http.get("/campaigns").json()
    general = next(c for c in campaigns if c["id"] == "general")
    assert general["name"] == "General"
    assert general["calling_hours"] is None


def test_project_managers_manage_campaigns_and_agents_work_them(server: EmbeddedServer) -> None:
    with _as(server, "ana") as ana, _as(server, "pablo") as pablo:
        assert ana.post("/campaigns", json={"name": "Cobros"}).status_code == 403
        made = pablo.post(
            "/campaigns", json={"name": "Cobros", "max_attempts": 3, "retry_minutes": {"busy": 10}}
        )
        assert made.status_code == 201, made.text
        assert made.json()["id"] == "cobros"
        assert pablo.post("/campaigns", json={"name": "Cobros"}).json()["error"]["code"] == "campaign_exists"
        paused = pablo.patch("/campaigns/cobros", json={"active": False})
        assert paused.status_code == 200
        assert paused.json()["active"] is False
        assert ana.patch("/campaigns/cobros", json={"active": True}).status_code == 403

        inactive = ana.post("/queue/next", params={"campaign": "cobros"})
        assert inactive.status_code == 404
        assert "inactiva" in inactive.json()["error"]["message"]
        unknown = ana.post("/queue/next", params={"campaign": "nada"})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "campaign_not_found"
        assert [c["id"] for c in ana.get("/campaigns").json()] == ["cobros", "general"]


def test_queue_routes_are_documented_in_spanish(server: EmbeddedServer) -> None:
    with _as(server, "ana") as http:
        paths = http.get("/openapi.json").json()["paths"]
    assert paths["/queue/next"]["post"]["summary"].startswith("Siguiente contacto")
    assert "/contacts/{contact_id}/disposition" in paths
    assert "/contacts/{contact_id}/eligibility" in paths
    assert {"get", "post"} <= set(paths["/dnc"])
    assert "delete" in paths["/dnc/{phone}"]
