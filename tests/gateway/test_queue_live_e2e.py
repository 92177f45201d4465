"""``queue_next`` over Socket.IO on a real embedded system: the claim and refusals of POST /queue/next."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import socketio

from tests.support.servers import EmbeddedServer, start_embedded


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    running = start_embedded(tmp_path_factory.mktemp("queue-live"))
    try:
        for name, role, team in [
            ("ana", "Agent", "norte"),
            ("beto", "Agent", "norte"),
            ("pablo", "ProjectManager", None),
            ("ti", "TI", None),
        ]:
            running.create_user(name, role, team)
        yield running
    finally:
        running.process.stop()


def _socket(server: EmbeddedServer, who: str, **auth: Any) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(
        server.base_url, auth={"api_key": server.keys[who], **auth}, transports=["websocket"], wait_timeout=10
    )
    return client


def _ask(client: socketio.Client, data: Any = None) -> dict[str, Any]:
    answer = client.call("queue_next", data if data is not None else {}, timeout=15)
    assert isinstance(answer, dict)
    return answer


def _create(server: EmbeddedServer, phone: str, **fields: str) -> str:
    with server.client(server.keys["pablo"]) as http:
        created = http.post("/contacts", json={"phone": phone, **fields})
        assert created.status_code == 201, created.text
        return str(created.json()["id"])


def _denied_paths(server: EmbeddedServer) -> list[str]:
    with server.client(server.keys["ti"]) as http:
        answer = http.get("/admin/audit", params={"outcome": "denied", "limit": 500})
        assert answer.status_code == 200, answer.text
        body = answer.json()
    rows = body["items"] if isinstance(body, dict) else body
    return [str(row["path"]) for row in rows]


def test_empty_queue_is_answered_with_why_not_an_error_event(server: EmbeddedServer) -> None:
    ana = _socket(server, "ana")
    try:
        answer = _ask(ana)
    finally:
        ana.disconnect()

    assert answer["error"] == "queue_empty"
    assert "importe o cree contactos" in answer["message"]
    assert "until" in answer


def test_two_agents_get_different_contacts_locked_to_each(server: EmbeddedServer) -> None:
    first = _create(server, "8831-0001", status="NC")
    second = _create(server, "8831-0002")
    ana, beto = _socket(server, "ana"), _socket(server, "beto")
    try:
        mine = _ask(ana)
        theirs = _ask(beto)
    finally:
        ana.disconnect()
        beto.disconnect()

    assert {mine["contact"]["id"], theirs["contact"]["id"]} == {first, second}
    assert mine["contact"]["id"] == first
    assert mine["reason"] == "never_tried"
    assert mine["campaign"] == "General"
    assert mine["contact"]["locked_by_name"] == "ana"
    assert theirs["contact"]["locked_by_name"] == "beto"
    assert set(mine) == {"contact", "campaign", "reason", "message", "attempts"}
    with server.client(server.keys["pablo"]) as http:
        stored = http.get(f"/contacts/{first}").json()
    assert stored["locked_by_name"] == "ana"


def test_socket_claim_has_the_same_shape_as_the_http_answer(server: EmbeddedServer) -> None:
    _create(server, "8831-0003")
    _create(server, "8831-0004")
    with server.client(server.keys["pablo"]) as http:
        over_http = http.post("/queue/next")
    assert over_http.status_code == 200, over_http.text
    pablo_socket = _socket(server, "pablo")
    try:
        over_socket = _ask(pablo_socket)
    finally:
        pablo_socket.disconnect()

    assert set(over_socket) == set(over_http.json())
    assert set(over_socket["contact"]) == set(over_http.json()["contact"])
    assert over_socket["contact"]["id"] != over_http.json()["contact"]["id"]


def test_invalid_campaign_is_refused_and_unknown_campaign_named(server: EmbeddedServer) -> None:
    ana = _socket(server, "ana")
    try:
        invalid = _ask(ana, {"campaign": "no válida!"})
        unknown = _ask(ana, {"campaign": "no-existe"})
    finally:
        ana.disconnect()

    assert invalid["error"] == "invalid_input"
    assert unknown["error"] in {"campaign_not_found", "queue_empty"}
    assert unknown["message"]


def test_a_desk_connection_may_not_take_contacts_and_the_refusal_is_audited(server: EmbeddedServer) -> None:
    desk = _socket(server, "ana", desk="puesto-1")
    try:
        answer = _ask(desk)
    finally:
        desk.disconnect()

    assert answer["error"] == "not_an_agent"
    assert "/socket.io/queue_next" in _denied_paths(server)
