"""Campaign rules through the real embedded system: edit with Spanish 422s, archive, teams (403 audited),
progress for TeamLeads and up, next contact across the caller's team's campaigns."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import EmbeddedServer, start_embedded

PROGRESS_KEYS = {
    "campaign",
    "total",
    "never_tried",
    "in_retry",
    "reached",
    "closed",
    "dnc",
    "capped",
    "locked",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    running = start_embedded(tmp_path_factory.mktemp("campaigns"))
    try:
        for name, role, team in [
            ("ana", "Agent", "norte"),
            ("sofia", "Agent", "sur"),
            ("lucia", "TeamLead", "norte"),
            ("pablo", "ProjectManager", None),
            ("tomas", "TI", None),
        ]:
            running.create_user(name, role, team)
        yield running
    finally:
        running.process.stop()


def _as(server: EmbeddedServer, who: str) -> httpx.Client:
    return server.client(server.keys[who])


def _create(http: httpx.Client, phone: str, list_name: str) -> str:
    created = http.post("/contacts", json={"phone": phone, "list": list_name})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_campaign_rules_are_edited_with_spanish_errors_and_archived(server: EmbeddedServer) -> None:
    with _as(server, "pablo") as pablo, _as(server, "ana") as ana:
        made = pablo.post("/campaigns", json={"name": "Mañanas", "lists": ["m"], "teams": ["norte"]})
        assert made.status_code == 201, made.text
        campaign = made.json()["id"]
        hours = {"mon": [["08:00", "12:00"], ["13:00", "17:00"]], "sat": [["09:00", "13:00"]]}
        edited = pablo.patch(
            f"/campaigns/{campaign}", json={"calling_hours": hours, "max_per_day": 2, "priority": 3}
        )
        assert edited.status_code == 200, edited.text
        body = edited.json()
        assert (body["calling_hours"], body["max_per_day"], body["priority"]) == (hours, 2, 3)
        assert body["timezone"] == "America/Costa_Rica"

        backwards = pablo.patch(
            f"/campaigns/{campaign}", json={"calling_hours": {"mon": [["17:00", "08:00"]]}}
        )
        assert backwards.status_code == 422
        assert backwards.json()["error"]["field"] == "calling_hours"
        assert "termina antes de empezar" in backwards.json()["error"]["message"]
        zone = pablo.patch(f"/campaigns/{campaign}", json={"timezone": "Marte/Olympus"})
        assert zone.status_code == 422
        assert "Zona horaria desconocida" in zone.json()["error"]["message"]
        lifted = pablo.patch(f"/campaigns/{campaign}", json={"calling_hours": None, "max_per_day": None})
        assert (lifted.json()["calling_hours"], lifted.json()["max_per_day"]) == (None, None)
        assert lifted.json()["priority"] == 3
        general = pablo.patch("/campaigns/general", json={"teams": ["norte"]})
        assert general.status_code == 422
        assert "General" in general.json()["error"]["message"]

        archived = pablo.patch(f"/campaigns/{campaign}", json={"archived": True})
        assert archived.json()["archived"] is True
        assert archived.json()["active"] is False
        assert campaign not in [c["id"] for c in ana.get("/campaigns").json()]
        every = ana.get("/campaigns", params={"archived": "true"}).json()
        assert campaign in [c["id"] for c in every]
        assert ana.patch(f"/campaigns/{campaign}", json={"archived": False}).status_code == 403


def test_next_contact_works_only_the_campaigns_of_the_callers_team(server: EmbeddedServer) -> None:
    with _as(server, "pablo") as pablo, _as(server, "ana") as ana, _as(server, "sofia") as sofia:
        made = pablo.post("/campaigns", json={"name": "Sur", "lists": ["lista-sur"], "teams": ["sur"]})
        assert made.status_code == 201, made.text
        south = _create(pablo, "8840-0001", "lista-sur")

        refused = ana.post("/queue/next", params={"campaign": "sur"})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "campaign_not_worked"
        taken = sofia.post("/queue/next", params={"campaign": "sur"})
        assert taken.status_code == 200, taken.text
        assert taken.json()["contact"]["id"] == south
        assert taken.json()["campaign"] == "Sur"
        why = ana.get(f"/contacts/{south}/eligibility", params={"campaign": "sur"}).json()
        assert [r["reason"] for r in why["reasons"]][:1] == ["not_your_team"]
        assert pablo.delete(f"/contacts/{south}/lock").status_code == 200

    with _as(server, "tomas") as ti:
        denied = ti.get("/admin/audit", params={"outcome": "denied", "username": "ana"}).json()
    entry = next(e for e in denied if e["path"] == "/queue/next")
    assert entry["status_code"] == 403
    assert entry["detail"]["campaign_id"] == "sur"


def test_progress_is_for_team_leads_and_up_with_the_clients_keys(server: EmbeddedServer) -> None:
    with _as(server, "pablo") as pablo:
        assert pablo.post("/campaigns", json={"name": "Avance", "lists": ["avance"]}).status_code == 201
        _create(pablo, "8840-0101", "avance")
        _create(pablo, "8840-0102", "avance")
    with _as(server, "ana") as ana:
        assert ana.get("/campaigns/avance/progress").status_code == 403
    with _as(server, "lucia") as lucia:
        answer = lucia.get("/campaigns/avance/progress")
        missing = lucia.get("/campaigns/nada/progress")

    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == PROGRESS_KEYS
    assert answer.json()["total"] == 2
    assert answer.json()["never_tried"] == 2
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "campaign_not_found"


def test_campaign_routes_are_documented_in_spanish(server: EmbeddedServer) -> None:
    with _as(server, "ana") as http:
        paths = http.get("/openapi.json").json()["paths"]
    assert paths["/campaigns/{campaign_id}/progress"]["get"]["summary"].startswith("Avance de una campaña")
    assert "archivarla" in paths["/campaigns/{campaign_id}"]["patch"]["summary"]
    assert "priority" in paths["/queue/next"]["post"]["description"]
