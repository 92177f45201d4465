"""``GatewayApi`` and ``LiveFeed`` over real HTTP and Socket.IO, against the in-process gateway double."""

from __future__ import annotations

import threading
import time

import pytest
from gateway_double import GatewayDouble

from client.api import (
    Conflict,
    ContactQuery,
    Forbidden,
    GatewayApi,
    LockedByOther,
    NetworkError,
    NoDesk,
    NotFound,
    PreconditionFailed,
    Unauthorized,
    error_text,
)
from client.live import ConnectionState, LiveFeed


@pytest.fixture(scope="module")
def gateway():
    double = GatewayDouble(contacts=450).start()
    yield double
    double.stop()


def test_pages_follow_the_link_header_and_filters_reach_the_server(gateway):
    api = GatewayApi(gateway.url, "key-agent")
    first = api.list_contacts(ContactQuery(), 200)
    assert len(first.contacts) == 200
    assert first.next_cursor == "200"
    assert GatewayApi(gateway.url, "key-lead").stats()["total"] == 450
    assert first.contacts[0].phone_national.count("-") == 1
    second = api.list_contacts(ContactQuery(), 200, first.next_cursor)
    third = api.list_contacts(ContactQuery(), 200, second.next_cursor)
    assert len(third.contacts) == 50
    assert third.next_cursor == ""
    assert len({c.id for c in (*first.contacts, *second.contacts, *third.contacts)}) == 450
    only_nc = api.list_contacts(ContactQuery(status="NC", operator="kolbi"), 1000)
    assert only_nc.contacts
    assert {(c.status, c.operator) for c in only_nc.contacts} == {("NC", "kolbi")}
    found = api.list_contacts(ContactQuery(q="Ana Mora 0 "), 10)
    assert [c.name for c in found.contacts] == ["Ana Mora 0"]


def test_search_with_spaces_keeps_its_cursor_link(gateway):
    api = GatewayApi(gateway.url, "key-agent")
    page = api.list_contacts(ContactQuery(q="a"), 5)
    assert page.next_cursor == "5"


def test_bad_key_and_missing_role_raise_typed_errors_with_the_servers_message(gateway):
    with pytest.raises(
        Unauthorized, match=r"La llave de API no es válida o fue revocada\. Pida una nueva a TI"
    ):
        GatewayApi(gateway.url, "mala").me()
    agent = GatewayApi(gateway.url, "key-agent")
    contact = agent.list_contacts(ContactQuery(), 1).contacts[0]
    with pytest.raises(Forbidden, match=r"Su rol no puede eliminar contactos\."):
        agent.delete_contact(contact.id)


def test_update_with_a_stale_version_is_refused(gateway):
    api = GatewayApi(gateway.url, "key-agent")
    contact = api.get_contact(gateway.rows[10]["id"])
    updated = api.update_contact(contact.id, {"note": "primera"}, contact.version)
    assert updated.version == contact.version + 1
    with pytest.raises(PreconditionFailed):
        api.update_contact(contact.id, {"note": "segunda"}, contact.version)


def test_lock_held_by_someone_else_names_the_owner(gateway):
    ana, lucia = GatewayApi(gateway.url, "key-agent"), GatewayApi(gateway.url, "key-lead")
    contact_id = gateway.rows[20]["id"]
    info = ana.lock(contact_id, 10)
    assert info.locked_by_name == "ana"
    with pytest.raises(LockedByOther) as denied:
        lucia.lock(contact_id, 10)
    assert denied.value.owner == "ana"
    assert denied.value.locked_until is not None
    assert denied.value.message == "El contacto está bloqueado por ana"
    ana.unlock(contact_id)


def test_call_without_desk_is_a_no_desk_error_then_goes_to_the_connected_desk(gateway):
    api = GatewayApi(gateway.url, "key-agent")
    contact = gateway.rows[0]
    with pytest.raises(NoDesk, match="No hay ningún agente de puesto conectado") as refused:
        api.call(contact["id"])
    assert (refused.value.status, refused.value.code) == (409, "no_desk")
    gateway.connect_desk("key-agent", "puesto-7")
    try:
        answer = api.call(contact["id"])
        assert answer.call_id
        assert (answer.desk, answer.contact_id, answer.desk_connected) == ("puesto-7", contact["id"], True)
        assert answer.dial == contact["phone_e164"].removeprefix("+506")
        assert len(answer.dial) == 8
        assert gateway.calls[answer.call_id]["desk"] == "puesto-7"
    finally:
        gateway.desk_state("key-agent", "puesto-7", "offline")


def test_call_to_a_contact_someone_else_holds_names_the_holder(gateway):
    contact_id = gateway.rows[40]["id"]
    GatewayApi(gateway.url, "key-lead").lock(contact_id, 10)
    gateway.connect_desk("key-agent")
    try:
        with pytest.raises(LockedByOther) as denied:
            GatewayApi(gateway.url, "key-agent").call(contact_id)
        assert denied.value.owner == "lucia"
    finally:
        gateway.desk_state("key-agent", "puesto-1", "offline")
        GatewayApi(gateway.url, "key-lead").unlock(contact_id)


def test_hangup_carries_the_outcome_and_ends_only_the_callers_own_call(gateway):
    api = GatewayApi(gateway.url, "key-agent")
    gateway.connect_desk("key-agent")
    try:
        call = api.call(gateway.rows[41]["id"])
        with pytest.raises(NotFound, match="no es suya"):
            GatewayApi(gateway.url, "key-lead").hangup(call.call_id)
        api.hangup(call.call_id, "no_answer")
        assert gateway.hangups[-1] == (call.call_id, "no_answer")
        deadline = time.monotonic() + 5
        while gateway.calls[call.call_id]["state"] != "ended" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gateway.calls[call.call_id]["outcome"] == "no_answer"
        with pytest.raises(Conflict, match="ya terminó"):
            api.hangup(call.call_id)
        second = api.call(gateway.rows[41]["id"])
        api.hangup(second.call_id)
        assert gateway.hangups[-1] == (second.call_id, None)
    finally:
        gateway.desk_state("key-agent", "puesto-1", "offline")


def test_desks_are_scoped_by_role(gateway):
    gateway.connect_desk("key-agent", "puesto-1")
    gateway.connect_desk("key-lead", "puesto-2")
    gateway.connect_desk("key-pm", "puesto-3")
    try:

        def names(key):
            return sorted((d.username, d.desk, d.state) for d in GatewayApi(gateway.url, key).desks())

        assert names("key-agent") == [("ana", "puesto-1", "ready")]
        assert names("key-lead") == [("ana", "puesto-1", "ready"), ("lucia", "puesto-2", "ready")]
        assert len(names("key-pm")) == 3
        desk = GatewayApi(gateway.url, "key-agent").desks()[0]
        assert desk.user_id == "0a0a0a0a-0000-4000-8000-00000000000a"
        assert desk.since is not None
    finally:
        for key, desk in (("key-agent", "puesto-1"), ("key-lead", "puesto-2"), ("key-pm", "puesto-3")):
            gateway.desk_state(key, desk, "offline")


def test_live_feed_hears_desk_state_and_call_notices(gateway):
    events = []
    got = threading.Condition()

    def on_event(name, payload):
        with got:
            events.append((name, dict(payload)))
            got.notify_all()

    def wait_for(predicate, timeout=10.0):
        with got:
            assert got.wait_for(predicate, timeout), events

    states = []
    feed = LiveFeed(gateway.url, "key-agent", on_event, lambda s, d: states.append(s))
    feed.start()
    try:
        deadline = time.monotonic() + 10
        while ConnectionState.CONNECTED not in states and time.monotonic() < deadline:
            time.sleep(0.02)
        gateway.connect_desk("key-agent")
        gateway.connect_desk("key-pm", "puesto-pm")  # not hers: an agent is not told
        call = GatewayApi(gateway.url, "key-agent").call(gateway.rows[42]["id"])
        gateway.progress(call.call_id, "dialling")
        gateway.start_call(call.call_id)
        gateway.progress(call.call_id, "in_call")
        gateway.end_call(call.call_id, "answered", 30)
        wait_for(lambda: any(name == "call_ended" for name, _ in events))
        wait_for(lambda: [p["state"] for n, p in events if n == "desk_state"][-1:] == ["ready"])
        seen = [name for name, _ in events if name != "contact_locked"]
        assert seen == [
            "desk_state",
            "call_requested",
            "desk_state",
            "call_started",
            "desk_state",
            "call_ended",
            "desk_state",
        ]
        desk_states = [p for n, p in events if n == "desk_state"]
        assert [p["state"] for p in desk_states] == ["ready", "dialling", "in_call", "ready"]
        assert {p["desk"] for p in desk_states} == {"puesto-1"}
        assert set(desk_states[1]) >= {
            "user_id",
            "username",
            "desk",
            "state",
            "call_id",
            "contact_id",
            "since",
        }
        ended = next(p for n, p in events if n == "call_ended")
        assert (ended["call_id"], ended["outcome"], ended["talk_seconds"]) == (call.call_id, "answered", 30)
        assert ended["id"] == gateway.rows[42]["id"]
        assert isinstance(ended["position"], int)
    finally:
        feed.stop()
        gateway.desk_state("key-agent", "puesto-1", "offline")
        gateway.desk_state("key-pm", "puesto-pm", "offline")


def test_import_job_and_export_download(gateway, tmp_path):
    api = GatewayApi(gateway.url, "key-lead")
    source = tmp_path / "lista.csv"
    source.write_text("telefono,nombre\n88123456,Ana\n123,Corto\n", encoding="utf-8")
    job = api.start_import(source, dry_run=True)
    for _ in range(100):
        job = api.job(job.id)
        if job.finished:
            break
        time.sleep(0.05)
    assert job.state == "finished"
    assert job.report["errors"] == [{"row": 3, "message": "número no válido: demasiado corto"}]
    dest = tmp_path / "contactos.csv"
    seen = []
    written = api.export("csv", ContactQuery(status="NC"), dest, lambda done, total: seen.append(done))
    assert written == dest.stat().st_size
    assert dest.read_text().startswith("id,phone,name,status,note\n")
    assert not (tmp_path / "contactos.csv.part").exists()


def test_a_large_export_answered_with_a_job_is_downloaded_once_the_job_ends(gateway, tmp_path):
    api = GatewayApi(gateway.url, "key-lead")
    gateway.export_as_job = True
    try:
        dest = tmp_path / "grande.csv"
        written = api.export("csv", ContactQuery(q="Ana"), dest, lambda done, total: None)
    finally:
        gateway.export_as_job = False
    assert written == dest.stat().st_size
    lines = dest.read_text().splitlines()
    assert lines[0] == "id,phone,name,status,note"
    assert len(lines) == 1 + len(gateway.rows), "a search is not an export filter"


def test_unreachable_server_is_a_network_error():
    with pytest.raises(
        NetworkError, match=r"No se pudo conectar con el servidor http://127\.0\.0\.1:9\. Revise"
    ):
        GatewayApi("http://127.0.0.1:9", "k", timeout=2).health()


def test_a_malformed_server_address_says_how_to_write_it_without_exception_names():
    with pytest.raises(NetworkError) as caught:
        GatewayApi("http://", "k", timeout=2).health()
    assert "no es válida" in caught.value.message
    assert "http://10.0.0.5:5000" in caught.value.message
    assert "InvalidURL" not in caught.value.message
    assert error_text(RuntimeError("x")).startswith("Ocurrió un error inesperado")


def test_live_feed_reconnects_and_receives_what_it_missed(gateway):
    events, states = [], []
    got = threading.Condition()

    def on_event(name, payload):
        with got:
            events.append((name, payload.get("position")))
            got.notify_all()

    def wait_for(predicate, timeout=10.0):
        with got:
            assert got.wait_for(predicate, timeout), (events, states)

    feed = LiveFeed(gateway.url, "key-agent", on_event, lambda s, d: states.append(s))
    feed.start()
    try:
        deadline = time.monotonic() + 10
        while ConnectionState.CONNECTED not in states and time.monotonic() < deadline:
            time.sleep(0.02)
        contact_id = gateway.rows[30]["id"]
        gateway.update(contact_id, note="uno")
        wait_for(lambda: len(events) == 1)
        first = events[0][1]
        gateway.drop_clients()
        gateway.update(contact_id, note="dos")  # while the client is away
        wait_for(lambda: len(events) == 2)
        assert events[1] == ("contact_updated", first + 1)
        assert gateway.connects[-1]["last_position"] == first
        assert ConnectionState.RECONNECTING in states
    finally:
        feed.stop()


def test_call_metrics_send_the_window_and_come_back_scoped_by_the_key(gateway):
    from datetime import UTC, datetime

    since = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    own = GatewayApi(gateway.url, "key-agent").call_metrics(since)
    team = GatewayApi(gateway.url, "key-lead").call_metrics()
    everyone = GatewayApi(gateway.url, "key-pm").call_metrics(since, datetime(2026, 3, 2, 6, 0, tzinfo=UTC))

    assert (own["scope"], [a["username"] for a in own["agents"]]) == ("own", ["ana"])
    assert (team["scope"], [t["team"] for t in team["teams"]]) == ("team", ["ventas"])
    assert everyone["totals"]["made"] == 26
    assert gateway.call_metric_windows[-3:] == [
        ("2026-03-01T06:00:00+00:00", None),
        (None, None),
        ("2026-03-01T06:00:00+00:00", "2026-03-02T06:00:00+00:00"),
    ]
