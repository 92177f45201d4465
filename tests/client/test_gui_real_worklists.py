"""«Campañas» and «Rellamadas» in the real window under Xvfb against the real embedded server
(``callmanager up``): a ProjectManager fills every rule of a campaign and saves it, and the server keeps each
one; a name already in use comes back as the server's 409 beside the name with everything typed kept; the
campaign is archived. An agent's «Rellamadas» follows, without a reload, a team lead rescheduling and
cancelling her callback, a teammate's new shared one, and a teammate's personal one the schedule shares
when its grace runs out (the gateway's live ``callback_changed``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_gui_campaigns import FULL_BODY, FULL_FORM, fill_campaign_form, shown_errors, type_into
from test_gui_real_server import open_client
from tkdrive import pump, settle, shot

from client.centretime import end_of_local_day, local_text
from tests.support.servers import EmbeddedServer, start_embedded

pytestmark = pytest.mark.gui

LISTS = ("lista-2", "lista-4")


@dataclass
class World:
    """The running server and its users' keys (what ``open_client`` needs)."""

    server: EmbeddedServer

    @property
    def keys(self) -> dict[str, str]:
        return self.server.keys

    def http(self, user: str) -> Any:
        return self.server.client(self.keys[user])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = start_embedded(
        tmp_path_factory.mktemp("worklists"),
        CALLMANAGER_RATE_LIMIT="100000/minute",
        # A personal callback still pending a minute after its time becomes shared (the shortest grace),
        # checked twice a second.
        CALLMANAGER_CALLBACK_GRACE_MINUTES="1",
        CALLMANAGER_CALLBACK_SWEEP_SECONDS="0.5",
    )
    try:
        server.create_user("ana", "Agent", team="ventas")
        server.create_user("beto", "Agent", team="ventas")
        server.create_user("lucia", "TeamLead", team="ventas")
        server.create_user("pedro", "ProjectManager")
        with server.client(server.keys["pedro"]) as http:
            for n in range(6):
                answer = http.post(
                    "/contacts",
                    json={"phone": f"8850{n:04d}", "name": f"Cliente {n}", "list": LISTS[n % 2]},
                )
                assert answer.status_code == 201, answer.text
        yield World(server)
    finally:
        server.process.stop()


def test_a_project_manager_saves_every_rule_and_the_server_keeps_them(display, world, tmp_path, monkeypatch):
    desk = open_client(world, "pedro", tmp_path, monkeypatch)
    root = desk.root
    try:
        desk.window.tool_buttons["campaigns"].invoke()
        window = desk.windows["campaigns"]
        pump(root, lambda: window.table.exists("general"), what="the campaigns")
        window.vm.new()
        pump(root, lambda: window.name.get() == "")
        fill_campaign_form(root, window, FULL_FORM)
        window.save()
        pump(root, lambda: window.table.exists("cobros-marzo"), what="the saved campaign", timeout=30)
        assert window.message.cget("text") == "Campaña «Cobros marzo» guardada."

        with world.http("pedro") as http:
            [kept] = [c for c in http.get("/campaigns").json() if c["id"] == "cobros-marzo"]
        assert {key: kept[key] for key in FULL_BODY} == FULL_BODY
        assert kept["archived"] is False

        # The same name again: the server's 409 beside the name, every field still as typed.
        window.vm.new()
        pump(root, lambda: window.name.get() == "")
        fill_campaign_form(root, window, {**FULL_FORM, "known_lists": [], "lists": "importados"})
        window.save()
        pump(root, lambda: "name" in shown_errors(window), what="the name refused", timeout=30)
        assert shown_errors(window)["name"].startswith("Ya existe")
        assert window.message.cget("text").startswith("No se guardó la campaña: ")
        assert (window.name.get(), window.lists.get(), window.per_day.get()) == (
            "Cobros marzo",
            "importados",
            "2",
        )
        assert [e.get() for e in window.days["mon"][1]] == ["08:00", "12:00", "13:00", "18:00"]
        settle(root, 0.2)
        shot(display, window, "campaign_form", tmp_path)

        type_into(window.name, "Cobros abril")
        window.save()
        pump(root, lambda: window.table.exists("cobros-abril"), what="the second campaign", timeout=30)
        assert shown_errors(window) == {}

        window.table.selection_set("cobros-marzo")
        pump(root, lambda: window.name.get() == "Cobros marzo", what="the first campaign's rules")
        window.archive.select()
        window.active.deselect()
        window.save()
        pump(
            root, lambda: not window.table.exists("cobros-marzo"), what="the archived one hidden", timeout=30
        )
        with world.http("pedro") as http:
            [archived] = [
                c
                for c in http.get("/campaigns", params={"archived": "true"}).json()
                if c["id"] == "cobros-marzo"
            ]
        assert (archived["archived"], archived["active"]) == (True, False)
        assert archived["calling_hours"] == FULL_BODY["calling_hours"]  # the other rules stand
    finally:
        desk.close()


def wrap_up_with_callback(world: World, user: str, phone: str, due: datetime, scope: str) -> tuple[str, str]:
    """``user`` creates a contact and wraps up a call on it with a callback; its contact id and name."""
    name = f"Cliente {phone[-4:]}"
    with world.http(user) as http:
        created = http.post("/contacts", json={"phone": phone, "name": name})
        assert created.status_code == 201, created.text
        contact_id = str(created.json()["id"])
        assert http.post(f"/contacts/{contact_id}/lock").status_code == 200
        answer = http.post(
            f"/contacts/{contact_id}/disposition",
            json={"outcome": "callback", "callback_at": due.isoformat(), "callback_scope": scope},
        )
        assert answer.status_code == 200, answer.text
    return contact_id, name


def callback_of(world: World, contact_id: str) -> str:
    with world.http("lucia") as http:
        [found] = http.get("/callbacks", params={"mine": "false", "contact_id": contact_id}).json()
    return str(found["callback_id"])


def test_rellamadas_follows_a_team_leads_changes_live(display, world, tmp_path, monkeypatch):
    now = datetime.now(UTC)
    due = min(now + timedelta(minutes=40), end_of_local_day(now) - timedelta(minutes=3)).replace(
        microsecond=0
    )
    if due <= now + timedelta(minutes=1):
        pytest.skip("too close to midnight in Costa Rica for a callback due today")  # a minute a day
    first, first_name = wrap_up_with_callback(world, "ana", "88601001", due, "personal")
    second, second_name = wrap_up_with_callback(world, "ana", "88601002", due, "personal")
    first_id, second_id = callback_of(world, first), callback_of(world, second)

    desk = open_client(world, "ana", tmp_path, monkeypatch)
    root = desk.root
    try:
        desk.window.panel.callbacks_button.invoke()
        window = desk.windows["callbacks"]
        pump(root, lambda: window.table.exists(first_id) and window.table.exists(second_id), what="the rows")
        window.time.insert(0, "16:")  # half typed: the live updates leave it alone

        earlier = due - timedelta(minutes=10)
        with world.http("lucia") as http:
            moved = http.patch(
                f"/callbacks/{first_id}", json={"due_at": earlier.isoformat(), "reason": "pidió"}
            )
            assert moved.status_code == 200, moved.text
        pump(
            root,
            lambda: window.table.item(first_id, "values")[0] == local_text(earlier),
            what="the rescheduled time",
        )
        assert window.summary.cget("text") == (
            f"lucia reprogramó la rellamada a {first_name} ({local_text(earlier)}); la lista se actualizó."
        )

        with world.http("lucia") as http:
            assert http.delete(f"/callbacks/{second_id}").status_code == 204
        pump(root, lambda: not window.table.exists(second_id), what="the cancelled row gone")
        assert (
            window.summary.cget("text")
            == f"lucia canceló la rellamada a {second_name}; la lista se actualizó."
        )

        third, _ = wrap_up_with_callback(world, "beto", "88601003", due, "shared")
        third_id = callback_of(world, third)
        pump(root, lambda: window.table.exists(third_id), what="beto's shared callback")
        assert window.table.item(third_id, "values")[3] == "Compartida (cualquiera)"
        assert window.time.get() == "16:"
        settle(root, 0.2)
        shot(display, window, "callbacks_live", tmp_path)
    finally:
        desk.close()


def test_rellamadas_shows_a_teammates_callback_the_schedule_shares(display, world, tmp_path, monkeypatch):
    now = datetime.now(UTC)
    due = now + timedelta(seconds=5)
    if due >= end_of_local_day(now):
        pytest.skip("too close to midnight in Costa Rica for a callback due today")  # seconds a day
    contact, name = wrap_up_with_callback(world, "beto", "88601004", due, "personal")
    callback_id = callback_of(world, contact)

    desk = open_client(world, "ana", tmp_path, monkeypatch)
    root = desk.root
    try:
        desk.window.panel.callbacks_button.invoke()
        window = desk.windows["callbacks"]
        pump(root, lambda: window.vm.loaded, what="the list read")
        assert not window.table.exists(callback_id)  # beto's own, for now

        # due in 5 s, shared a minute after that: the list shows it without a reload
        pump(root, lambda: window.table.exists(callback_id), what="the shared callback", timeout=120)
        assert window.table.item(callback_id, "values")[1:] == (name, "8860-1004", "Compartida (cualquiera)")
        assert window.summary.cget("text") == (
            f"La rellamada a {name} pasó a compartida (nadie la atendió a tiempo); la lista se actualizó."
        )
    finally:
        desk.close()
