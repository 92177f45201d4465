"""The work-queue calls of ``GatewayApi`` and ``LiveFeed`` over real HTTP and Socket.IO, against the gateway
double (the routes being built beside this client: campaign progress, callback reschedule and cancel, the
``callback_reminder`` notice)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from gateway_double import GatewayDouble

from client.api import Disposition, DoNotCall, Forbidden, GatewayApi, NotFound, QueueEmpty
from client.live import ConnectionState, LiveFeed
from client.viewmodels.queue import claim_from_ack


@pytest.fixture
def gateway():
    double = GatewayDouble(contacts=40).start()
    yield double
    double.stop()


def connected_feed(gateway, key="key-agent"):
    events = []
    got = threading.Condition()

    def on_event(name, payload):
        with got:
            events.append((name, dict(payload)))
            got.notify_all()

    states = []
    feed = LiveFeed(gateway.url, key, on_event, lambda s, _d: states.append(s))
    feed.start()
    deadline = time.monotonic() + 10
    while not feed.connected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ConnectionState.CONNECTED in states

    def wait_for(name, timeout=10.0):
        with got:
            assert got.wait_for(lambda: any(n == name for n, _ in events), timeout), events
            return next(p for n, p in events if n == name)

    return feed, wait_for


def test_next_contact_over_http_is_locked_to_me_and_an_empty_queue_says_until_when(gateway):
    api = GatewayApi(gateway.url, "key-agent")
    gateway.queue_ids = [gateway.rows[5]["id"]]
    claim = api.next_contact()
    assert claim.contact.id == gateway.rows[5]["id"]
    assert claim.contact.locked_by_name == "ana"
    assert (claim.campaign, claim.reason, claim.attempts) == ("General", "never_tried", 0)
    assert gateway.queue_asks == ["http"]

    until = datetime.now(UTC) + timedelta(minutes=30)
    gateway.queue_empty_until = until.isoformat()
    with pytest.raises(QueueEmpty) as empty:
        api.next_contact()
    assert empty.value.message == "Todos los contactos están en espera de reintento."
    assert empty.value.until == until


def test_queue_next_over_the_live_connection_answers_the_same_claim(gateway):
    gateway.queue_ids = [gateway.rows[8]["id"]]
    feed, _wait = connected_feed(gateway)
    try:
        claim = claim_from_ack(feed.request("queue_next", {}))
        with pytest.raises(QueueEmpty):
            claim_from_ack(feed.request("queue_next", {}))
    finally:
        feed.stop()
    assert claim.contact.id == gateway.rows[8]["id"]
    assert gateway.queue_asks == ["socket", "socket"]
    assert gateway.by_id[claim.contact.id]["locked_by_name"] == "ana"


def test_disposition_with_a_callback_then_reschedule_and_cancel_it(gateway):
    api = GatewayApi(gateway.url, "key-agent")
    row = gateway.rows[3]
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    saved = api.disposition(
        row["id"],
        Disposition("no_answer", "PENDIENTE", "Llamar luego", callback_at=due, callback_scope="shared"),
    )
    assert (saved.status, saved.locked_by) == ("PENDIENTE", "")
    assert saved.note.endswith("Llamar luego")
    assert gateway.dispositions[-1][1]["callback_scope"] == "shared"

    [callback] = api.callbacks(due + timedelta(minutes=1))
    assert (callback.contact_id, callback.due_at, callback.scope) == (row["id"], due, "shared")
    assert api.callbacks(due - timedelta(minutes=1)) == []

    later = due + timedelta(hours=1)
    api.reschedule_callback(callback.id, later, "personal")
    [moved] = api.callbacks()
    assert (moved.due_at, moved.scope) == (later, "personal")
    api.cancel_callback(callback.id)
    assert api.callbacks() == []
    with pytest.raises(NotFound):
        api.cancel_callback(callback.id)


def test_a_do_not_call_number_shows_in_eligibility_and_its_call_is_refused(gateway):
    api = GatewayApi(gateway.url, "key-agent")
    row = gateway.rows[9]
    gateway.dnc[row["id"]] = "pidió no ser llamado"
    gateway.connect_desk("key-agent")
    found = api.eligibility(row["id"])
    assert not found.eligible
    assert found.dnc is not None
    assert "pidió no ser llamado" in found.dnc.message
    assert api.eligibility(gateway.rows[10]["id"]).dnc is None
    with pytest.raises(DoNotCall) as refused:
        api.call(row["id"])
    assert "lista de no llamar" in refused.value.message


def test_campaigns_are_listed_created_edited_and_report_progress(gateway):
    with pytest.raises(Forbidden):  # a team lead reads campaigns; ProjectManager and TI change them
        GatewayApi(gateway.url, "key-lead").save_campaign(None, {"name": "Renovaciones"})
    api = GatewayApi(gateway.url, "key-pm")
    assert [c.id for c in api.campaigns()] == ["general"]
    made = api.save_campaign(None, {"name": "Renovaciones", "max_attempts": 3, "retry_minutes": {"busy": 10}})
    assert (made.id, made.max_attempts, made.retry_minutes["busy"]) == ("renovaciones", 3, 10)
    archived = api.save_campaign("renovaciones", {"active": False})
    assert archived.active is False
    assert archived.retry_minutes["busy"] == 10

    with pytest.raises(NotFound):
        api.campaign_progress("renovaciones")
    gateway.campaign_progress["renovaciones"] = {"total": 10, "never_tried": 4, "reached": 3, "dnc": 1}
    progress = api.campaign_progress("renovaciones")
    assert progress.total == 10
    assert progress.counts["in_retry"] == 0  # not sent: counted as none
    assert progress.worked_share == pytest.approx(0.6)


def test_a_callback_reminder_reaches_the_live_feed(gateway):
    gateway.callbacks["cb-1"] = {
        "callback_id": "cb-1",
        "contact_id": gateway.rows[1]["id"],
        "phone_e164": gateway.rows[1]["phone_e164"],
        "name": gateway.rows[1]["name"],
        "user_id": "0a0a0a0a-0000-4000-8000-00000000000a",
        "username": "ana",
        "scope": "personal",
        "due_at": datetime.now(UTC).isoformat(),
        "set_at": datetime.now(UTC).isoformat(),
    }
    feed, wait_for = connected_feed(gateway)
    try:
        gateway.remind("cb-1")
        reminder = wait_for("callback_reminder")
    finally:
        feed.stop()
    assert (reminder["callback_id"], reminder["contact_name"]) == ("cb-1", gateway.rows[1]["name"])
