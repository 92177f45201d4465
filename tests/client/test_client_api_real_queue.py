"""The client's work-queue calls against a real ``callmanager up`` (embedded): what the client reads from
the server's own JSON — the claim, the empty queue with why, the disposition and its callback, eligibility
with the do-not-call finding, the call refused as ``dnc``, the campaigns — over the routes that exist."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import socketio

from client.api import Disposition, DoNotCall, Forbidden, GatewayApi, QueueEmpty
from client.viewmodels.queue import claim_from_ack
from tests.support.servers import EmbeddedServer, start_embedded


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    running = start_embedded(tmp_path_factory.mktemp("client-queue"))
    try:
        running.create_user("ana", "Agent", "ventas")
        running.create_user("pablo", "ProjectManager", None)
        yield running
    finally:
        running.process.stop()


def api(server: EmbeddedServer, who: str) -> GatewayApi:
    return GatewayApi(server.base_url, server.keys[who])


def test_the_queue_claim_disposition_and_callback_as_the_client_reads_them(server: EmbeddedServer) -> None:
    ana = api(server, "ana")
    with pytest.raises(QueueEmpty) as empty:
        ana.next_contact()
    assert "importe o cree contactos" in empty.value.message

    with server.client(server.keys["pablo"]) as http:
        created = http.post("/contacts", json={"phone": "8850-0001", "name": "Olga Rojas", "note": "Feria"})
    assert created.status_code == 201, created.text
    claim = ana.next_contact()
    assert claim.contact.id == created.json()["id"]
    assert (claim.campaign, claim.reason, claim.attempts) == ("General", "never_tried", 0)
    assert claim.message == "Nunca se ha llamado"
    assert claim.contact.locked_by_name == "ana"

    due = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    saved = ana.disposition(
        claim.contact.id,
        Disposition("no_answer", "PENDIENTE", "Volver a llamar", callback_at=due, callback_scope="personal"),
    )
    assert (saved.status, saved.note, saved.locked_by) == ("PENDIENTE", "Feria\nVolver a llamar", "")
    [callback] = [c for c in ana.callbacks(due + timedelta(minutes=1)) if c.contact_id == claim.contact.id]
    assert (callback.due_at, callback.scope, callback.name) == (due, "personal", "Olga Rojas")
    assert callback.display_phone == "8850-0001"
    assert [c for c in ana.callbacks(due - timedelta(minutes=1)) if c.contact_id == claim.contact.id] == []

    found = ana.eligibility(claim.contact.id)
    assert not found.eligible
    assert found.dnc is None
    assert "callback_pending" in {f.reason for f in found.reasons}


def test_a_do_not_call_number_is_found_by_eligibility_and_its_call_refused(server: EmbeddedServer) -> None:
    with server.client(server.keys["pablo"]) as http:
        created = http.post("/contacts", json={"phone": "8850-0099", "name": "No Molestar"})
        assert created.status_code == 201, created.text
        listed = http.post("/dnc", json={"phone": "8850-0099", "reason": "pidió no ser llamado"})
        assert listed.status_code == 201, listed.text
    ana = api(server, "ana")
    contact_id = created.json()["id"]
    found = ana.eligibility(contact_id)
    assert found.dnc is not None
    assert "no llamar" in found.dnc.message.lower()
    with pytest.raises(DoNotCall) as refused:
        ana.call(contact_id)
    assert "lista de no llamar" in refused.value.message


def test_campaigns_as_the_client_reads_and_saves_them(server: EmbeddedServer) -> None:
    pablo = api(server, "pablo")
    [general] = [c for c in pablo.campaigns() if c.id == "general"]
    assert (general.name, general.active) == ("General", True)
    assert general.retry_minutes["busy"] == 30
    made = pablo.save_campaign(
        None, {"name": "Renovaciones", "max_attempts": 3, "retry_minutes": {"busy": 10}}
    )
    assert (made.name, made.max_attempts, made.retry_minutes["busy"]) == ("Renovaciones", 3, 10)
    archived = pablo.save_campaign(made.id, {"active": False})
    assert archived.active is False
    with pytest.raises(Forbidden):
        api(server, "ana").save_campaign(None, {"name": "De un agente"})


def test_queue_next_over_the_socket_reads_as_the_same_claim(server: EmbeddedServer) -> None:
    with server.client(server.keys["pablo"]) as http:
        created = http.post("/contacts", json={"phone": "8850-0200", "name": "Por Socket"})
    assert created.status_code == 201, created.text
    client = socketio.Client(reconnection=False)
    client.connect(
        server.base_url, auth={"api_key": server.keys["ana"]}, transports=["websocket"], wait_timeout=10
    )
    try:
        claim = claim_from_ack(client.call("queue_next", {}, timeout=15))
        with pytest.raises(QueueEmpty):
            claim_from_ack(client.call("queue_next", {}, timeout=15))
    finally:
        client.disconnect()
    assert claim.contact.id == created.json()["id"]
    assert claim.contact.locked_by_name == "ana"
