"""The real client window under Xvfb placing a real call: ``callmanager up`` (embedded), an Agent, the real
``callmanager-dialer`` with its baresip driver, a headless baresip and SIPp as the called party on loopback.

The agent selects a contact and presses Llamar (F5); the call box follows what the desk reports
(«Marcando…», «Sonando…», «En llamada» with its timer); Colgar (F8) makes baresip send BYE to SIPp; the
wrap-up opens with the outcome the desk reported, and saving it reaches the server's contact and history.
A busy callee ends the call in the wrap-up without Colgar. «Siguiente» (F6) takes the work queue's next
contact, and its wrap-up records a callback the server then lists. The in-call screenshot goes to
``$CALLMANAGER_SCREENSHOT_DIR`` when set (``docs/screenshots``), else the test's temp dir."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_gui_real_server import open_client
from tkdrive import cells, pump, settle, shot

from client.centretime import end_of_local_day, local_parts
from tests.support.servers import EmbeddedServer, start_embedded
from tests.support.softphone import SippProcess, softphone_tools_or_skip, start_sipp
from tests.system.test_calls_e2e import SCENARIOS, Desk, start_desk

pytestmark = [pytest.mark.gui, pytest.mark.slow]

DESK = "puesto-e2e"  # the name start_desk gives the dialer


@dataclass
class World:
    """The server, the agent's desk (dialer + baresip) and where SIPp keeps its logs."""

    server: EmbeddedServer
    desk: Desk
    workdir: Path

    @property
    def keys(self) -> dict[str, str]:
        return self.server.keys

    def desk_state(self) -> str:
        with self.server.client(self.keys["ana"]) as http:
            desks = http.get("/desks").json()
        return str(desks[0]["state"]) if desks else "offline"

    def wait_desk(self, state: str = "ready", timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.desk_state() == state:
                return
            time.sleep(0.1)
        raise AssertionError(f"the desk never became {state}:\n{self.desk.log()}")

    def new_contact(self, phone: str, name: str) -> dict[str, Any]:
        with self.server.client(self.keys["ana"]) as http:
            created = http.post("/contacts", json={"phone": phone, "name": name, "note": "Vino a la feria"})
        assert created.status_code == 201, created.text
        return dict(created.json())

    def contact(self, contact_id: str) -> dict[str, Any]:
        with self.server.client(self.keys["ana"]) as http:
            return dict(http.get(f"/contacts/{contact_id}").json())

    def call_history(self, contact_id: str) -> list[dict[str, Any]]:
        with self.server.client(self.keys["ana"]) as http:
            rows = http.get(f"/contacts/{contact_id}/history").json()
        return [row for row in rows if row["field"] == "call"]

    def sipp(self, scenario: str, **options: Any) -> SippProcess:
        return start_sipp(SCENARIOS / scenario, self.workdir / "sipp", port=self.desk.callee_port, **options)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    softphone_tools_or_skip("baresip", "sipp")
    workdir = tmp_path_factory.mktemp("gui-real-desk")
    server = start_embedded(workdir)
    desk: Desk | None = None
    try:
        server.create_user("ana", "Agent", "ventas")
        desk = start_desk(server, server.keys["ana"], workdir)
        world = World(server, desk, workdir)
        world.wait_desk("ready")
        yield world
    finally:
        if desk is not None:
            desk.stop()
        server.process.stop()


@pytest.fixture
def agent_desk(display, world, tmp_path, monkeypatch) -> Iterator[Any]:
    """Ana's window, as ``callmanager-client --url <server>`` opens it, with her desk shown ready."""
    desk = open_client(world, "ana", tmp_path, monkeypatch)
    try:
        box = desk.window.panel.callbox
        pump(desk.root, lambda: box.desk_line.cget("text") == f"Puesto «{DESK}»: listo", what="the desk")
        yield desk
    finally:
        if desk.root.winfo_exists():
            desk.close()


def record_phases(box: Any) -> list[str]:
    """Every phase text the call box shows, in order (each redraw goes through ``tick``)."""
    shown: list[str] = []
    tick = box.tick

    def recording() -> None:
        tick()
        text = str(box.phase.cget("text"))
        if text and (not shown or shown[-1] != text):
            shown.append(text)

    box.tick = recording
    return shown


def select_and_call(desk: Any, contact_id: str) -> None:
    """Pick the contact in the list and press F5, as the agent does."""
    root, panel = desk.root, desk.window.panel
    pump(root, lambda: contact_id in desk.window.table.tree.get_children(), what="the new contact's row")
    desk.window.table.select(contact_id)
    pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id == contact_id)
    pump(root, lambda: desk.calls.can_call and panel.call_button.cget("text") == "📞 Llamar (F5)")
    root.focus_force()
    settle(root, 0.1)
    root.event_generate("<F5>")


def test_agent_calls_through_the_real_desk_hangs_up_and_wraps_up(display, world, agent_desk, tmp_path):
    desk, root = agent_desk, agent_desk.root
    panel = desk.window.panel
    box = panel.callbox
    phases = record_phases(box)
    contact = world.new_contact("8812-4455", "Rebeca Solís")
    sipp = world.sipp("answer_caller_bye.xml", rtp_echo=True)
    try:
        select_and_call(desk, contact["id"])
        pump(root, lambda: box.phase.cget("text") == "En llamada", timeout=20, what="«En llamada»")
        call_id = desk.calls.active.call_id
        assert call_id
        assert phases[0] == "Marcando…"
        assert "Sonando…" in phases, phases  # SIPp sends 180 Ringing and answers 300 ms later
        assert phases[-1] == "En llamada"
        assert box.desk_line.cget("text") == f"Puesto «{DESK}»: ocupado (En llamada)"
        assert panel.call_button.cget("state") == "disabled"
        assert box.hangup_button.cget("state") == "normal"
        assert world.desk_state() == "in_call"
        assert cells(desk.window.table.tree, contact["id"])[4] == "ana"  # the call locked the contact
        pump(root, lambda: box.timer.cget("text") == "00:02", timeout=5, what="the timer at 00:02")
        settle(root, 0.3)
        shot(display, root, "call_real_desk", tmp_path)

        root.focus_force()
        settle(root, 0.1)
        root.event_generate("<F8>")  # Colgar
        pump(root, lambda: box.wrap.winfo_ismapped(), timeout=20, what="the wrap-up")
        assert sipp.wait(timeout=20) == 0, sipp.log()  # SIPp received our BYE and answered it
    finally:
        sipp.stop()

    assert "Colgando…" in phases, phases
    assert not panel.tabs.winfo_ismapped()
    assert box.outcome.get() == "contestada"
    assert box.outcome.cget("state") == "disabled"  # reported by the desk, not chosen
    assert box.wrap_hint.cget("text") == "Resultado informado por su puesto."
    pump(root, lambda: "en llamada)" in box.wrap_title.cget("text"), what="the talk time")
    title = box.wrap_title.cget("text")
    match = re.fullmatch(r"Cierre de la llamada con Rebeca Solís \(00:(\d\d) en llamada\)", title)
    assert match, title
    assert int(match.group(1)) >= 2
    assert box.note.get("1.0", "end-1c") == ""  # the wrap-up's note is added to the contact's

    box.status.set("Interesado")
    box._status("Interesado")
    box.note.insert("end", "Quiere el plan de 20 GB")
    box.note.event_generate("<KeyRelease>")
    box.save_button.invoke()
    pump(root, lambda: not desk.calls.wrapup or not desk.calls.wrapup.saving, what="the wrap-up saved")
    assert desk.panel.message.startswith("Cierre de la llamada guardado."), desk.panel.message
    pump(root, lambda: panel.tabs.winfo_ismapped() and not box.wrap.winfo_ismapped())
    pump(root, lambda: cells(desk.window.table.tree, contact["id"])[2] == "Interesado")

    saved = world.contact(contact["id"])
    assert (saved["status"], saved["note"]) == ("INTERESADO", "Vino a la feria\nQuiere el plan de 20 GB")
    rows = [row for row in world.call_history(contact["id"]) if row["detail"].get("call_id") == call_id]
    assert [row["new"] for row in rows] == ["requested", "started", "answered"]
    assert int(rows[-1]["detail"]["duration_seconds"]) >= 2
    world.wait_desk("ready")
    pump(root, lambda: box.desk_line.cget("text") == f"Puesto «{DESK}»: listo", what="the desk ready again")


def test_a_busy_callee_ends_in_the_wrap_up_without_colgar(display, world, agent_desk):
    desk, root = agent_desk, agent_desk.root
    box = desk.window.panel.callbox
    contact = world.new_contact("8812-4486", "Tomás Brenes")
    sipp = world.sipp("busy_486.xml")
    api, hangups = desk.calls._api, []
    sent = api.hangup
    api.hangup = lambda *args: hangups.append(args) or sent(*args)  # any hang-up request would show here
    try:
        select_and_call(desk, contact["id"])
        pump(root, lambda: box.wrap.winfo_ismapped(), timeout=20, what="the wrap-up after 486")
        call_id = desk.calls.wrapup.call_id
        assert sipp.wait(timeout=20) == 0, sipp.log()
    finally:
        sipp.stop()
    assert hangups == []  # the desk saw the 486 and ended the call itself
    assert box.outcome.get() == "ocupado"
    assert box.outcome.cget("state") == "disabled"
    assert box.save_button.cget("text") == "💾 Guardar cierre"
    box.status.set("No contesta")
    box._status("No contesta")
    box.save_button.invoke()
    pump(root, lambda: not desk.calls.wrapup or not desk.calls.wrapup.saving, what="the wrap-up saved")
    assert desk.panel.message.startswith("Cierre de la llamada guardado."), desk.panel.message
    assert world.contact(contact["id"])["status"] == "NC"
    rows = [row for row in world.call_history(contact["id"]) if row["detail"].get("call_id") == call_id]
    assert [row["new"] for row in rows] == ["requested", "started", "busy"]
    assert int(rows[-1]["detail"]["duration_seconds"]) == 0
    world.wait_desk("ready")


def test_siguiente_then_call_hang_up_and_wrap_up_with_a_shared_callback(display, world, agent_desk, tmp_path):
    """The work queue end to end: «Siguiente» (F6) asks over Socket.IO and opens the contact locked to her
    with why it was chosen; F5, F8; the wrap-up records outcome, status, note and a callback typed in
    Costa Rica time in one request; the server has the disposition and the callback, «Rellamadas» lists it
    when it is due today, and «Siguiente» is offered next."""
    desk, root = agent_desk, agent_desk.root
    panel = desk.window.panel
    box = panel.callbox
    with world.server.client(world.keys["ana"]) as http:
        created = http.post(
            "/contacts", json={"phone": "8812-4520", "name": "Gabriela Ureña", "status": "NC"}
        )
    assert created.status_code == 201, created.text
    contact = dict(created.json())
    sipp = world.sipp("answer_caller_bye.xml", rtp_echo=True)
    try:
        root.focus_force()
        settle(root, 0.1)
        root.event_generate("<F6>")  # Siguiente
        pump(
            root,
            lambda: desk.panel.contact is not None and desk.panel.contact.id == contact["id"],
            what="the queue's contact in the panel",
        )
        assert desk.queue.via_socket  # asked over the live connection, not HTTP
        assert desk.panel.message == "Siguiente de «General»: Nunca se ha llamado (intentos: 0)."
        assert world.contact(contact["id"])["locked_by_name"] == "ana"
        pump(root, lambda: desk.calls.can_call and panel.call_button.cget("text") == "📞 Llamar (F5)")
        assert panel.dnc_badge.winfo_manager() == ""  # not on the do-not-call list: no badge

        root.focus_force()
        settle(root, 0.1)
        root.event_generate("<F5>")
        pump(root, lambda: box.phase.cget("text") == "En llamada", timeout=20, what="«En llamada»")
        call_id = desk.calls.active.call_id
        root.focus_force()
        settle(root, 0.1)
        root.event_generate("<F8>")
        pump(root, lambda: box.wrap.winfo_ismapped(), timeout=20, what="the wrap-up")
        assert sipp.wait(timeout=20) == 0, sipp.log()
    finally:
        sipp.stop()

    due = (datetime.now(UTC) + timedelta(minutes=6)).replace(second=0, microsecond=0)
    due_date, due_time = local_parts(due)
    box.status.set("Pendiente")
    box._status("Pendiente")
    box.note.insert("end", "Pide que la llamen en un rato")
    box.note.event_generate("<KeyRelease>")
    box.set_callback(due_date, due_time, "shared")
    settle(root, 0.3)
    shot(display, root, "wrapup_with_callback", tmp_path)
    box.save_button.invoke()
    pump(root, lambda: desk.calls.wrapup is None, timeout=20, what="the wrap-up saved")
    assert desk.panel.message == (
        "Cierre de la llamada guardado. Pulse «Siguiente» (F6) para el próximo contacto."
    ), desk.panel.message
    assert panel.queue_button.cget("state") == "normal"

    saved = world.contact(contact["id"])
    assert saved["status"] == "PENDIENTE"
    assert saved["note"] == "Pide que la llamen en un rato"
    assert saved["locked_by"] is None  # the disposition released her lock
    with world.server.client(world.keys["ana"]) as http:
        history = http.get(f"/contacts/{contact['id']}/history").json()
        callbacks = http.get("/callbacks", params={"mine": "true"}).json()
    [disposition] = [row for row in history if row["field"] == "disposition"]
    assert disposition["new"] == "answered"
    assert disposition["detail"]["callback_scope"] == "shared"
    assert datetime.fromisoformat(disposition["detail"]["callback_at"]) == due
    [callback] = [c for c in callbacks if c["contact_id"] == contact["id"]]
    assert (callback["scope"], datetime.fromisoformat(callback["due_at"])) == ("shared", due)
    calls = [row for row in world.call_history(contact["id"]) if row["detail"].get("call_id") == call_id]
    assert [row["new"] for row in calls] == ["requested", "started", "answered"]

    panel.callbacks_button.invoke()  # «Rellamadas»: today's, read from the server
    window = desk.windows["callbacks"]
    pump(root, lambda: desk.callbacks.loaded, what="the callbacks")
    listed = [window.table.item(iid, "values") for iid in window.table.get_children()]
    due_today = due <= end_of_local_day(datetime.now(UTC))
    assert (len(listed) == 1) is due_today, listed
    assert not due_today or listed[0][1:] == ("Gabriela Ureña", "8812-4520", "Compartida (cualquiera)")
    world.wait_desk("ready")
