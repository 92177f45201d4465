"""Call metrics on a real embedded system: calls placed through desks, figures scoped by the caller's role.

Teams: ana and beto (Agents) with lucia (TeamLead) in ``norte``, carla (Agent) in ``sur``, pedro
(ProjectManager) and tomas (TI) in none. Every call goes the real way: a desk connected over Socket.IO,
``POST /contacts/{id}/call``, then the desk's ``call_started`` and ``call_ended``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import socketio

from tests.support.servers import EmbeddedServer, start_embedded

# (agent, phone, outcome, talk seconds)
CALLS = [
    ("ana", "8812-0001", "answered", 2),
    ("ana", "8812-0002", "busy", 0),
    ("beto", "8812-0003", "no_answer", 0),
    ("carla", "8812-0004", "answered", 1),
]


@dataclass
class World:
    server: EmbeddedServer
    ids: dict[str, str]

    def get(self, who: str, **params: str) -> httpx.Response:
        with self.server.client(self.server.keys[who]) as http:
            return http.get("/metrics/calls", params=params)


def _place_call(server: EmbeddedServer, who: str, phone: str, outcome: str, talk: int) -> None:
    desk = socketio.Client(reconnection=False)
    desk.connect(
        server.base_url,
        auth={"api_key": server.keys[who], "desk": f"puesto-{who}"},
        transports=["websocket"],
        wait_timeout=10,
    )
    try:
        with server.client(server.keys[who]) as http:
            contact = http.post("/contacts", json={"phone": phone}).json()
            placed = http.post(f"/contacts/{contact['id']}/call")
            assert placed.status_code == 202, placed.text
        call = {"id": contact["id"], "call_id": placed.json()["call_id"]}
        assert desk.call("call_started", call, timeout=10) == {"ok": True}
        time.sleep(talk + 0.1)  # the server keeps only the talk time its own clock saw
        ended = {**call, "outcome": outcome, "duration_seconds": talk}
        assert desk.call("call_ended", ended, timeout=10) == {"ok": True}
    finally:
        desk.disconnect()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = start_embedded(tmp_path_factory.mktemp("calls"))
    try:
        for name, role, team in [
            ("ana", "Agent", "norte"),
            ("beto", "Agent", "norte"),
            ("lucia", "TeamLead", "norte"),
            ("carla", "Agent", "sur"),
            ("dani", "Agent", "sur"),
            ("pedro", "ProjectManager", None),
            ("tomas", "TI", None),
        ]:
            server.create_user(name, role, team)
        for who, phone, outcome, talk in CALLS:
            _place_call(server, who, phone, outcome, talk)
        with server.client(server.keys["tomas"]) as http:
            ids = {u["username"]: u["id"] for u in http.get("/admin/users").json()}
        yield World(server, ids)
    finally:
        server.process.stop()


def _rows(body: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        row["username"]: (row["team"], row["made"], row["successful"], row["failed"], row["talk_seconds"])
        for row in body["agents"]
    }


def test_an_agent_sees_only_their_own_figures(world: World) -> None:
    answer = world.get("ana")

    assert answer.status_code == 200
    body = answer.json()
    assert (body["scope"], body["teams"]) == ("own", [])
    assert _rows(body) == {"ana": ("norte", 2, 1, 1, 2)}
    (ana,) = body["agents"]
    assert ana["user_id"] == world.ids["ana"]
    assert (ana["success_rate"], ana["by_outcome"]["busy"]) == (0.5, 1)
    assert ana["average_handling_seconds"] is not None
    assert body["totals"]["made"] == 2


def test_a_team_lead_sees_their_team_and_its_totals(world: World) -> None:
    body = world.get("lucia").json()

    assert (body["scope"], body["team"]) == ("team", "norte")
    assert _rows(body) == {"ana": ("norte", 2, 1, 1, 2), "beto": ("norte", 1, 0, 1, 0)}
    (norte,) = body["teams"]
    assert (norte["team"], norte["agents"], norte["made"], norte["successful"], norte["failed"]) == (
        "norte",
        2,
        3,
        1,
        2,
    )
    assert norte["success_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert body["totals"]["made"] == 3


def test_a_project_manager_sees_everyone_with_idle_agents_at_zero(world: World) -> None:
    body = world.get("pedro").json()

    assert body["scope"] == "all"
    assert _rows(body) == {
        "ana": ("norte", 2, 1, 1, 2),
        "beto": ("norte", 1, 0, 1, 0),
        "carla": ("sur", 1, 1, 0, 1),
        "dani": ("sur", 0, 0, 0, 0),
    }
    teams = {t["team"]: (t["agents"], t["made"], t["successful"], t["talk_seconds"]) for t in body["teams"]}
    assert teams == {"norte": (2, 3, 1, 2), "sur": (2, 1, 1, 1)}
    totals = body["totals"]
    assert (totals["made"], totals["successful"], totals["failed"], totals["talk_seconds"]) == (4, 2, 2, 3)
    only_sur = world.get("pedro", team="sur").json()
    assert set(_rows(only_sur)) == {"carla", "dani"}
    assert world.get("tomas").json()["totals"] == totals


def test_asking_for_a_team_beyond_ones_role_is_refused_and_audited(world: World) -> None:
    agent_team = world.get("ana", team="norte")
    other_team = world.get("lucia", team="sur")
    own_team = world.get("lucia", team="norte")

    assert agent_team.status_code == 403
    assert agent_team.json()["error"]["code"] == "forbidden"
    assert other_team.status_code == 403
    assert own_team.status_code == 200
    with world.server.client(world.server.keys["tomas"]) as http:
        denied = http.get("/admin/audit", params={"outcome": "denied"}).json()
    refused = {(e["username"], e["path"], e["action"], e["status_code"]) for e in denied}
    assert ("ana", "/metrics/calls", "metrics.team", 403) in refused
    assert ("lucia", "/metrics/calls", "metrics.all", 403) in refused
    assert len([e for e in denied if e["path"] == "/metrics/calls" and e["status_code"] == 403]) == 2


def test_the_window_keeps_the_calls_placed_in_it(world: World) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()

    later = world.get("pedro", since=future).json()
    window = world.get("pedro", since=past, until=future).json()
    backwards = world.get("pedro", since=future, until=past)
    nonsense = world.get("ana", since="ayer")

    assert later["totals"]["made"] == 0
    assert all(row["made"] == 0 for row in later["agents"])
    assert window["totals"]["made"] == 4
    assert window["since"] is not None
    assert backwards.status_code == 422
    assert nonsense.status_code == 422
    assert world.get("ana", since=future).json()["agents"][0]["made"] == 0
    assert httpx.get(f"{world.server.base_url}/metrics/calls").status_code == 401


def test_metrics_publish_the_call_totals_as_json_and_prometheus_counters(world: World) -> None:
    base = world.server.base_url

    reader = {"X-API-Key": world.server.keys["pedro"]}  # a ProjectManager sees every metric
    stats = httpx.get(f"{base}/metrics", headers={"Accept": "application/json", **reader}).json()
    text = httpx.get(f"{base}/metrics", headers=reader).text

    assert (stats["calls"]["made"], stats["calls"]["successful"], stats["calls"]["failed"]) == (4, 2, 2)
    assert stats["callmanager_calls_ended"]["callmanager_calls_ended_total{outcome=answered}"] == 2
    assert "callmanager_calls_placed_total 4.0" in text
    assert 'callmanager_calls_ended_total{outcome="busy"} 1.0' in text
    assert "callmanager_call_talk_seconds_total 3.0" in text
    assert "callmanager_call_handling_seconds_count 4.0" in text
