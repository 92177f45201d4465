"""Desks and trustworthy call records on a real embedded system (``docs/CALLS.md``).

A desk is a Socket.IO connection that names itself a desk; only it may report call progress, and only
for calls the gateway issued to it that are still open. Everything else is refused, audited, and counts
for nothing in the call figures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.test_live_e2e import Listener
from tests.support.servers import EmbeddedServer, start_embedded


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    running = start_embedded(
        tmp_path_factory.mktemp("desks"),
        CALLMANAGER_CALL_START_TIMEOUT_SECONDS="5",
        CALLMANAGER_LOCK_SWEEP_SECONDS="0.5",
    )
    try:
        for name, role, team in [
            ("ana", "Agent", "norte"),
            ("beto", "Agent", "norte"),
            ("carla", "Agent", "sur"),
            ("lucia", "TeamLead", "norte"),
            ("tomas", "TI", None),
        ]:
            running.create_user(name, role, team)
        yield running
    finally:
        running.process.stop()


def _desk(server: EmbeddedServer, who: str, name: str | None = None) -> Listener:
    return Listener(server.base_url, {"api_key": server.keys[who], "desk": name or f"puesto-{who}"})


def _contact(server: EmbeddedServer, who: str, phone: str) -> str:
    with server.client(server.keys[who]) as http:
        created = http.post("/contacts", json={"phone": phone})
        assert created.status_code in (201, 409), created.text
        body = created.json()
        return str(body["id"] if created.status_code == 201 else body["error"]["existing_id"])


def _call(server: EmbeddedServer, who: str, contact_id: str) -> httpx.Response:
    with server.client(server.keys[who]) as http:
        return http.post(f"/contacts/{contact_id}/call")


def _figures(server: EmbeddedServer, who: str) -> dict[str, Any]:
    with server.client(server.keys["tomas"]) as http:
        rows = http.get("/metrics/calls").json()["agents"]
    return next(row for row in rows if row["username"] == who)


def _denials(server: EmbeddedServer, path: str) -> list[dict[str, Any]]:
    with server.client(server.keys["tomas"]) as http:
        entries = http.get("/admin/audit", params={"outcome": "denied", "limit": 500}).json()
    items = entries["items"] if isinstance(entries, dict) else entries
    return [e for e in items if e["path"] == path]


def test_an_agents_own_connection_cannot_forge_call_reports(server: EmbeddedServer) -> None:
    contact_id = _contact(server, "beto", "8812-7001")
    plain = Listener(server.base_url, {"api_key": server.keys["beto"]})
    try:
        forged = {"id": contact_id, "call_id": "invented", "outcome": "answered", "talk_seconds": 3600}
        started = plain.client.call("call_started", forged, timeout=10)
        ended = plain.client.call("call_ended", forged, timeout=10)
    finally:
        plain.close()

    assert started["ok"] is False
    assert started["error"]["code"] == "not_a_desk"
    assert ended["ok"] is False
    assert ended["error"]["code"] == "not_a_desk"
    assert _figures(server, "beto")["made"] == 0
    assert {e["username"] for e in _denials(server, "/socket.io/call_ended")} >= {"beto"}


def test_a_desk_reports_only_its_own_open_calls_once(server: EmbeddedServer) -> None:
    contact_id = _contact(server, "ana", "8812-7002")
    ana_desk, beto_desk = _desk(server, "ana"), _desk(server, "beto")
    try:
        placed = _call(server, "ana", contact_id)
        assert placed.status_code == 202, placed.text
        call_id = placed.json()["call_id"]
        dial = ana_desk.wait_for("dial", call_id=call_id)
        assert (dial["dial"], dial["desk"], dial["phone_e164"]) == ("88127002", "puesto-ana", "+50688127002")

        report = {"id": contact_id, "call_id": call_id}
        foreign = beto_desk.client.call("call_started", report, timeout=10)
        unknown = ana_desk.client.call("call_started", {**report, "call_id": "nunca-pedida"}, timeout=10)
        assert ana_desk.client.call("call_started", report, timeout=10) == {"ok": True}
        assert ana_desk.client.call("call_started", report, timeout=10) == {"ok": True}  # a resend
        time.sleep(1.1)
        end = {**report, "outcome": "answered", "ring_seconds": 0, "talk_seconds": 3600}
        assert ana_desk.client.call("call_ended", end, timeout=10) == {"ok": True}
        again = ana_desk.client.call("call_ended", end, timeout=10)
    finally:
        ana_desk.close()
        beto_desk.close()

    for refused in (foreign, unknown, again):
        assert refused["ok"] is False
        assert refused["error"]["code"] == "call_not_open"
    ana = _figures(server, "ana")
    assert (ana["made"], ana["successful"]) == (1, 1)
    assert 1 <= ana["talk_seconds"] <= 3, "the desk's 3600 s were kept within the server's clock"
    with server.client(server.keys["ana"]) as http:
        history = http.get(f"/contacts/{contact_id}/history").json()
    assert [h["new"] for h in history if h["field"] == "call"] == ["requested", "started", "answered"]
    assert len(_denials(server, "/socket.io/call_started")) >= 2


def test_calling_a_contact_someone_else_holds_is_refused_before_the_desk_is_looked_at(
    server: EmbeddedServer,
) -> None:
    contact_id = _contact(server, "carla", "8812-7003")
    with server.client(server.keys["beto"]) as http:
        assert http.post(f"/contacts/{contact_id}/lock").status_code == 200

    refused = _call(server, "carla", contact_id)  # carla has no desk either: the lock is checked first

    assert refused.status_code == 423
    assert refused.json()["error"]["code"] == "locked"


def test_calling_locks_the_contact_to_the_agent(server: EmbeddedServer) -> None:
    contact_id = _contact(server, "carla", "8812-7004")
    desk = _desk(server, "carla")
    try:
        assert _call(server, "carla", contact_id).status_code == 202
    finally:
        desk.close()
    with server.client(server.keys["carla"]) as http:
        contact = http.get(f"/contacts/{contact_id}").json()
    assert contact["locked_by_name"] in ("carla", "")
    assert contact["locked_by"]


def test_desk_states_reach_the_agent_and_her_lead_and_desks_are_listed_by_role(
    server: EmbeddedServer,
) -> None:
    agent = Listener(server.base_url, {"api_key": server.keys["beto"]})
    lead = Listener(server.base_url, {"api_key": server.keys["lucia"]})
    other = Listener(server.base_url, {"api_key": server.keys["carla"]})
    desk = _desk(server, "beto", "mesa-3")
    try:
        assert desk.client.call("desk_state", {"state": "ringing", "call_id": "c-9"}, timeout=10) == {
            "ok": True
        }
        for listener in (agent, lead):
            seen = listener.wait_for("desk_state", state="ringing", desk="mesa-3")
            assert (seen["username"], seen["call_id"]) == ("beto", "c-9")
        with server.client(server.keys["lucia"]) as http:
            listed = {d["desk"]: d["state"] for d in http.get("/desks").json()}
        with server.client(server.keys["carla"]) as http:
            carla_sees = [d["desk"] for d in http.get("/desks").json()]
        bad = desk.client.call("desk_state", {"state": "dancing"}, timeout=10)
    finally:
        desk.close()
    lead.wait_for("desk_state", state="offline", desk="mesa-3")
    with pytest.raises(AssertionError):
        other.wait_for("desk_state", timeout=1.0, desk="mesa-3")
    for listener in (agent, lead, other):
        listener.close()

    assert listed["mesa-3"] == "ringing"
    assert "mesa-3" not in carla_sees
    assert bad["ok"] is False


def test_hang_up_reaches_the_agents_desk(server: EmbeddedServer) -> None:
    contact_id = _contact(server, "beto", "8812-7005")
    desk = _desk(server, "beto")
    try:
        call_id = _call(server, "beto", contact_id).json()["call_id"]
        with server.client(server.keys["beto"]) as http:
            answer = http.post(f"/calls/{call_id}/hangup", json={"outcome": "no_answer"})
        got = desk.wait_for("hangup", call_id=call_id)
    finally:
        desk.close()
    assert answer.status_code == 202
    assert answer.json()["sent"] is True
    assert got["outcome"] == "no_answer"


def test_a_call_no_desk_starts_is_closed_as_failed_with_the_reason(server: EmbeddedServer) -> None:
    contact_id = _contact(server, "ana", "8812-7006")
    desk = _desk(server, "ana")
    try:
        call_id = _call(server, "ana", contact_id).json()["call_id"]
        desk.wait_for("dial", call_id=call_id)
        deadline = time.monotonic() + 20
        ended: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not ended:
            with server.client(server.keys["ana"]) as http:
                history = http.get(f"/contacts/{contact_id}/history").json()
            ended = [h for h in history if h["field"] == "call" and h["new"] == "failed"]
            time.sleep(0.3)
        late = desk.client.call("call_started", {"id": contact_id, "call_id": call_id}, timeout=10)
    finally:
        desk.close()
    assert ended, "the unstarted call was never closed"
    assert "no informó el inicio" in ended[0]["detail"]["reason"]
    assert late["error"]["code"] == "call_not_open"
