"""Dispositions and callbacks on a real embedded system: the status machine and its flags over HTTP, the
callback routes per role, and the live ``callback_reminder`` to a real Socket.IO client.

The server runs with a reminder window of 60 minutes and a callback sweep every 0.2 s, so a callback set
30 minutes ahead is owed its reminder at once: the schedule's clock is the real one, and the window puts
the callback inside it (the controlled-clock cases are tests/contacts/test_callbacks.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.live import REMINDER_KEYS
from tests.gateway.test_live_e2e import Listener
from tests.support.servers import EmbeddedServer, start_embedded


class ReminderListener(Listener):
    """A real Socket.IO client that also records ``callback_reminder``."""

    NAMES = (*Listener.NAMES, "callback_reminder")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    running = start_embedded(
        tmp_path_factory.mktemp("callbacks"),
        CALLMANAGER_CALLBACK_REMINDER_MINUTES="60",
        CALLMANAGER_CALLBACK_SWEEP_SECONDS="0.2",
        CALLMANAGER_RATE_LIMIT="100000/minute",
    )
    try:
        for name, role, team in [
            ("ana", "Agent", "norte"),
            ("beto", "Agent", "norte"),
            ("carlos", "Agent", "sur"),
            ("lucia", "TeamLead", "norte"),
            ("sofia", "TeamLead", "sur"),
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


def _wrap_up(server: EmbeddedServer, who: str, contact_id: str, **body: Any) -> httpx.Response:
    with _as(server, who) as http:
        assert http.post(f"/contacts/{contact_id}/lock").status_code == 200
        return http.post(f"/contacts/{contact_id}/disposition", json={"outcome": "callback", **body})


def _later(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def test_the_catalogue_route_shows_each_status_flags_and_transitions(server: EmbeddedServer) -> None:
    with _as(server, "ana") as http:
        statuses = {s["code"]: s for s in http.get("/statuses").json()}

    assert statuses["COMPLETADA"]["final"] is True
    assert statuses["COMPLETADA"]["leave_role"] == "TeamLead"
    assert statuses["COMPLETADA"]["transitions"]["SIN_GESTIONAR"] == "TeamLead"
    assert statuses["PENDIENTE"]["requires_callback"] is True
    assert statuses["NO_LLAMAR"]["dnc"] is True
    assert statuses["NO_LLAMAR"]["transitions"]["NC"] == "ProjectManager"
    assert statuses["NC"]["transitions"]["COMPLETADA"] == "Agent"
    assert statuses["INTERESADO"]["reached"] is True
    assert statuses["NC"]["reached"] is False


def test_an_agent_may_not_reopen_a_closed_sale_and_the_refusal_is_audited(server: EmbeddedServer) -> None:
    sold = _create(server, "8840-0001", status="COMPLETADA")

    refused = _wrap_up(server, "ana", sold, status="SIN_GESTIONAR")
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "transition_refused"
    assert (error["old"], error["new"], error["needed"]) == ("COMPLETADA", "SIN_GESTIONAR", "TeamLead")
    assert error["message"] == (
        "El rol Agent no puede pasar el contacto de COMPLETADA a SIN_GESTIONAR: "
        "solo TeamLead o superior puede hacerlo"
    )
    with _as(server, "ana") as http:
        patched = http.patch(f"/contacts/{sold}", json={"status": "NC"})
        assert patched.status_code == 403
        assert patched.json()["error"]["code"] == "transition_refused"
        assert http.delete(f"/contacts/{sold}/lock").status_code == 200

    reopened = _wrap_up(server, "lucia", sold, status="SIN_GESTIONAR")
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "SIN_GESTIONAR"

    audit = httpx.get(
        f"{server.base_url}/admin/audit",
        params={"outcome": "denied", "username": "ana"},
        headers={"X-API-Key": _admin_key(server)},
    ).json()
    denied = [e for e in audit if e["path"] == f"/contacts/{sold}/disposition"]
    assert len(denied) == 1
    assert denied[0]["status_code"] == 403
    assert denied[0]["detail"]["status"] == "SIN_GESTIONAR"


def test_a_status_that_requires_a_callback_is_refused_without_one(server: EmbeddedServer) -> None:
    pending = _create(server, "8840-0002")
    refused = _wrap_up(server, "ana", pending, status="PENDIENTE")
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "callback_required"
    assert refused.json()["error"]["field"] == "callback_at"
    with _as(server, "ana") as http:
        kept = http.post(
            f"/contacts/{pending}/disposition",
            json={"outcome": "later", "status": "PENDIENTE", "callback_at": _later(240)},
        )
    assert kept.status_code == 200, kept.text


def test_a_do_not_call_status_lists_the_number_in_the_same_request(server: EmbeddedServer) -> None:
    contact = _create(server, "8840-0003")
    wrapped = _wrap_up(server, "ana", contact, status="NO_LLAMAR")
    assert wrapped.status_code == 200, wrapped.text

    with _as(server, "pablo") as http:
        listed = {e["phone_e164"]: e for e in http.get("/dnc").json()}
    assert listed["+50688400003"]["added_by_name"] == "ana"
    assert "NO_LLAMAR" in listed["+50688400003"]["reason"]
    with _as(server, "ana") as http:
        call = http.post(f"/contacts/{contact}/call", json={})
    assert call.status_code == 409
    assert call.json()["error"]["code"] == "dnc"


@pytest.mark.parametrize(("method", "phone"), [("PATCH", "8840-0010"), ("PUT", "8840-0011")])
def test_a_do_not_call_status_set_by_editing_lists_the_number_in_the_same_request(
    server: EmbeddedServer, method: str, phone: str
) -> None:
    contact = _create(server, phone, name="Tere")
    with _as(server, "ana") as http:
        edited = http.request(method, f"/contacts/{contact}", json={"status": "NO_LLAMAR", "note": "no más"})
        assert edited.status_code == 200, edited.text
        assert edited.json()["status"] == "NO_LLAMAR"
        call = http.post(f"/contacts/{contact}/call", json={})
    assert call.status_code == 409
    assert call.json()["error"]["code"] == "dnc"
    e164 = "+506" + phone.replace("-", "")
    with _as(server, "pablo") as http:
        listed = {e["phone_e164"]: e for e in http.get("/dnc").json()}
    assert listed[e164]["added_by_name"] == "ana"
    assert listed[e164]["reason"] == "Estado NO_LLAMAR puesto al editar el contacto"


def test_callbacks_are_rescheduled_reassigned_and_cancelled_by_whom_the_rules_allow(
    server: EmbeddedServer,
) -> None:
    contact = _create(server, "8840-0004", name="Marta")
    assert _wrap_up(server, "ana", contact, callback_at=_later(600)).status_code == 200
    with _as(server, "ana") as http:
        [mine] = [c for c in http.get("/callbacks").json() if c["contact_id"] == contact]
    callback_id = mine["callback_id"]
    assert callback_id.startswith(f"{contact}.")
    assert (mine["username"], mine["team"], mine["scope"]) == ("ana", "norte", "personal")

    for outsider in ("beto", "carlos", "sofia"):
        with _as(server, outsider) as http:
            moved = http.patch(f"/callbacks/{callback_id}", json={"due_at": _later(700)})
            assert moved.status_code == 403, (outsider, moved.text)
            assert http.delete(f"/callbacks/{callback_id}").status_code == 403
    with _as(server, "beto") as http:
        assert all(c["callback_id"] != callback_id for c in http.get("/callbacks").json())
    with _as(server, "sofia") as http:
        assert http.get("/callbacks", params={"team": "norte"}).status_code == 403

    with _as(server, "ana") as http:
        assert http.patch(f"/callbacks/{callback_id}", json={"assignee": "beto"}).status_code == 403
        assert http.patch(f"/callbacks/{callback_id}", json={}).status_code == 422
        shared = http.patch(f"/callbacks/{callback_id}", json={"scope": "shared"})
        assert shared.status_code == 200, shared.text
        assert shared.json()["scope"] == "shared"
    with _as(server, "lucia") as http:
        team = http.get("/callbacks", params={"team": "norte"}).json()
        assert callback_id in [c["callback_id"] for c in team]
        assert http.patch(f"/callbacks/{callback_id}", json={"assignee": "carlos"}).status_code == 403
        assert http.patch(f"/callbacks/{callback_id}", json={"assignee": "nadie"}).status_code == 422
        reassigned = http.patch(f"/callbacks/{callback_id}", json={"assignee": "beto", "scope": "personal"})
        assert reassigned.status_code == 200, reassigned.text
        assert (reassigned.json()["username"], reassigned.json()["scope"]) == ("beto", "personal")
    with _as(server, "beto") as http:
        assert [c["callback_id"] for c in http.get("/callbacks").json() if c["contact_id"] == contact] == [
            callback_id
        ]
    with _as(server, "pablo") as http:
        assert http.delete(f"/callbacks/{callback_id}", params={"reason": "cliente llamó"}).status_code == 204
        gone = http.delete(f"/callbacks/{callback_id}")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "callback_not_found"
        assert all(
            c["callback_id"] != callback_id for c in http.get("/callbacks", params={"mine": "false"}).json()
        )


def test_the_reminder_reaches_its_agent_live_once_and_a_shared_one_reaches_everyone(
    server: EmbeddedServer,
) -> None:
    personal = _create(server, "8840-0005", name="Olga Rojas")
    shared = _create(server, "8840-0006", name="Pedro")
    ana = ReminderListener(server.base_url, {"api_key": server.keys["ana"]})
    beto = ReminderListener(server.base_url, {"api_key": server.keys["beto"]})
    try:
        due = _later(30)
        assert _wrap_up(server, "ana", personal, callback_at=due).status_code == 200
        reminder = ana.wait_for("callback_reminder", contact_id=personal)
        assert set(reminder) == set(REMINDER_KEYS)
        assert reminder["contact_name"] == "Olga Rojas"
        assert reminder["phone"] == "+50688400005"
        assert reminder["scope"] == "personal"
        assert reminder["callback_id"].startswith(f"{personal}.")
        assert datetime.fromisoformat(reminder["due_at"]) == datetime.fromisoformat(due)
        with _as(server, "ana") as http:
            [listed] = [c for c in http.get("/callbacks").json() if c["contact_id"] == personal]
            assert listed["reminded_at"] is not None
            assert reminder["user_id"] == listed["user_id"]

        assert (
            _wrap_up(server, "beto", shared, callback_at=_later(20), callback_scope="shared").status_code
            == 200
        )
        for listener in (ana, beto):
            heard = listener.wait_for("callback_reminder", contact_id=shared)
            assert heard["scope"] == "shared"
        with pytest.raises(AssertionError):
            beto.wait_for("callback_reminder", timeout=1.5, contact_id=personal)
        with pytest.raises(AssertionError):
            ana.wait_for("callback_reminder", timeout=1.5, contact_id=personal)
    finally:
        ana.close()
        beto.close()


def test_a_shared_reminder_reaches_only_the_teams_working_the_contacts_campaign(
    server: EmbeddedServer,
) -> None:
    with _as(server, "pablo") as http:
        made = http.post("/campaigns", json={"name": "Renovaciones", "lists": ["renov"], "teams": ["norte"]})
        assert made.status_code == 201, made.text
        created = http.post("/contacts", json={"phone": "8840-0007", "name": "Rita", "list": "renov"})
        assert created.status_code == 201, created.text
        north_only = str(created.json()["id"])
    everyone = _create(server, "8840-0008", name="Saúl")  # General: every team works it
    listeners = {
        who: ReminderListener(server.base_url, {"api_key": server.keys[who]})
        for who in ("ana", "carlos", "sofia", "pablo")
    }
    try:
        assert (
            _wrap_up(server, "beto", north_only, callback_at=_later(20), callback_scope="shared").status_code
            == 200
        )
        heard = listeners["ana"].wait_for("callback_reminder", contact_id=north_only)
        assert (heard["scope"], heard["contact_name"]) == ("shared", "Rita")
        assert set(heard) == set(REMINDER_KEYS)
        for outsider in ("carlos", "sofia", "pablo"):  # another team, and a manager of no team
            with pytest.raises(AssertionError):
                listeners[outsider].wait_for("callback_reminder", timeout=1.5, contact_id=north_only)

        assert (
            _wrap_up(server, "beto", everyone, callback_at=_later(20), callback_scope="shared").status_code
            == 200
        )
        for listener in listeners.values():
            assert listener.wait_for("callback_reminder", contact_id=everyone)["scope"] == "shared"
    finally:
        for listener in listeners.values():
            listener.close()


def _admin_key(server: EmbeddedServer) -> str:
    if "ti" not in server.keys:
        server.create_user("ti", "TI")
    return server.keys["ti"]
