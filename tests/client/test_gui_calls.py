"""The call workflow in the real window under Xvfb, against the gateway double playing the desk agent: the
Call button follows the desk, Llamar → «Marcando…» → «En llamada» with its timer, Colgar sends the hang-up,
``call_ended`` opens the wrap-up and saving it updates status and note; a desk that cannot see the call
lets the agent choose the outcome the hang-up carries; a team lead's «Puestos» board follows every desk.
Screenshots go to ``$CALLMANAGER_SCREENSHOT_DIR`` when set (``docs/screenshots``), else the temp dir."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import pytest
from gateway_double import GatewayDouble
from tkdrive import cells, pump, settle, shot

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayDouble]:
    double = GatewayDouble(contacts=300).start()
    yield double
    double.stop()


def open_desk(gateway: GatewayDouble, key: str):
    from client.desk import build_desk
    from client.live import ConnectionState

    desk = build_desk(gateway.url, key, language="es")
    desk.start()
    pump(
        desk.root,
        lambda: (
            desk.session.me is not None
            and desk.contacts.loaded_once
            and desk.session.state is ConnectionState.CONNECTED
        ),
        what="the window to load and connect",
    )
    return desk


def the_call(gateway: GatewayDouble) -> str:
    """The id of the newest call the double has seen."""
    return list(gateway.calls)[-1]


def test_agent_calls_hangs_up_and_wraps_up(display, gateway, tmp_path):
    desk = open_desk(gateway, "key-agent")
    root, panel = desk.root, desk.window.panel
    try:
        table = desk.window.table.tree
        iid = table.get_children()[2]
        desk.window.table.select(iid)
        pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id == iid)
        pump(root, lambda: panel.callbox.desk_line.cget("text").startswith("Sin marcador"))
        assert panel.call_button.cget("text") == "📞 Llamar (F5) · sin marcador"

        gateway.connect_desk("key-agent", "puesto-7")
        pump(root, lambda: panel.callbox.desk_line.cget("text") == "Puesto «puesto-7»: listo")
        assert panel.call_button.cget("text") == "📞 Llamar (F5)"

        note_before = gateway.by_id[iid]["note"]
        panel.note.delete("1.0", "end")
        panel.note.insert("1.0", "Pidió información del plan")  # typed before the call: kept
        panel.call_button.invoke()
        pump(root, lambda: panel.callbox.phase.cget("text") == "Marcando…", what="«Marcando…»")
        pump(root, lambda: bool(gateway.calls))
        call_id = the_call(gateway)
        assert gateway.calls[call_id]["desk"] == "puesto-7"
        assert panel.call_button.cget("state") == "disabled"

        gateway.progress(call_id, "dialling")
        gateway.start_call(call_id)
        gateway.progress(call_id, "in_call")
        pump(root, lambda: panel.callbox.phase.cget("text") == "En llamada", what="«En llamada»")
        pump(root, lambda: panel.callbox.timer.cget("text") == "00:02", timeout=5, what="the timer")
        assert panel.callbox.hangup_button.cget("state") == "normal"
        assert panel.callbox.desk_line.cget("text") == "Puesto «puesto-7»: ocupado (En llamada)"
        assert cells(table, iid)[4] == "ana"  # the call locked the contact to her
        settle(root, 0.3)
        shot(display, root, "call_in_progress", tmp_path)

        root.focus_force()
        settle(root, 0.1)
        root.event_generate("<F8>")  # Colgar
        pump(root, lambda: gateway.hangups and gateway.hangups[-1][0] == call_id, what="the hang-up")
        assert gateway.hangups[-1] == (call_id, None)  # this desk sees the call: it reports the outcome
        pump(root, lambda: panel.callbox.wrap.winfo_ismapped(), what="the wrap-up")
        box = panel.callbox
        assert not panel.tabs.winfo_ismapped()
        assert (
            box.wrap_title.cget("text")
            == f"Cierre de la llamada con {desk.panel.contact.name} (00:42 en llamada)"
        )
        assert box.outcome.get() == "contestada"
        assert box.outcome.cget("state") == "disabled"
        assert box.note.get("1.0", "end-1c") == "Pidió información del plan"
        assert box.save_button.cget("text") == "💾 Guardar cierre"

        box.status.set("Interesado")
        box._status("Interesado")
        box.note.insert("end", "; quiere 20 GB, llamar el viernes")
        box.note.event_generate("<KeyRelease>")
        settle(root, 0.3)
        shot(display, root, "call_wrapup", tmp_path)

        box.save_button.invoke()
        pump(
            root,
            lambda: desk.panel.message.startswith("Cierre de la llamada guardado."),
            what="the wrap-up saved",
        )
        row = gateway.by_id[iid]
        assert gateway.dispositions[-1] == (
            iid,
            {
                "outcome": "answered",
                "status": "INTERESADO",
                "note": "Pidió información del plan; quiere 20 GB, llamar el viernes",
            },
        )
        assert (row["status"], row["note"]) == (
            "INTERESADO",
            f"{note_before}\nPidió información del plan; quiere 20 GB, llamar el viernes".strip(),
        )
        pump(root, lambda: panel.tabs.winfo_ismapped() and not box.wrap.winfo_ismapped())
        pump(root, lambda: cells(table, iid)[2] == "Interesado")
        assert panel.note.get("1.0", "end-1c") == row["note"]
        pump(root, lambda: panel.call_button.cget("text") == "📞 Llamar (F5)")
    finally:
        desk.close()
        gateway.desk_state("key-agent", "puesto-7", "offline")


def test_desk_that_cannot_see_the_call_sends_the_chosen_outcome_with_the_hangup(display, gateway):
    desk = open_desk(gateway, "key-agent")
    root, panel = desk.root, desk.window.panel
    try:
        gateway.connect_desk("key-agent", "interphone")
        iid = desk.window.table.tree.get_children()[5]
        desk.window.table.select(iid)
        pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id == iid)
        pump(root, lambda: desk.calls.can_call and panel.call_button.cget("state") == "normal")
        root.focus_force()
        settle(root, 0.1)
        root.event_generate("<F5>")
        pump(root, lambda: bool(gateway.calls) and gateway.calls[the_call(gateway)]["contact_id"] == iid)
        call_id = the_call(gateway)
        gateway.start_call(call_id)  # and nothing more: the softphone does not say whether they answered
        pump(root, lambda: panel.callbox.phase.cget("text") == "En llamada")

        panel.callbox.hangup_button.invoke()
        box = panel.callbox
        pump(root, lambda: box.wrap.winfo_ismapped())
        assert not any(hung == call_id for hung, _ in gateway.hangups)
        assert box.outcome.cget("state") == "normal"
        assert box.save_button.cget("text") == "📵 Colgar y guardar"
        box.outcome.set("no contestó")
        box._outcome("no contestó")
        box.status.set("No contesta")
        box._status("No contesta")
        root.focus_force()
        settle(root, 0.1)
        root.event_generate("<Control-s>")  # during the wrap-up, Ctrl+S saves the wrap-up
        pump(root, lambda: desk.panel.message.startswith("Cierre de la llamada guardado."))
        assert (call_id, "no_answer") in gateway.hangups
        assert gateway.dispositions[-1][1]["outcome"] == "no_answer"
        assert gateway.by_id[iid]["status"] == "NC"
    finally:
        desk.close()
        gateway.desk_state("key-agent", "interphone", "offline")


def test_team_lead_sees_every_desk_live_beside_the_call_figures(display, gateway, tmp_path):
    gateway.connect_desk("key-agent", "puesto-7")
    gateway.connect_desk("key-lead", "puesto-1")
    desk = open_desk(gateway, "key-lead")
    root = desk.root
    try:
        assert desk.window.tool_buttons["desks"].winfo_ismapped()
        desk.window.tool_buttons["desks"].invoke()
        window = desk.windows["desks"]
        pump(root, lambda: len(window.desks.get_children()) == 2, what="the desks")
        pump(root, lambda: window.agents is not None and window.teams is not None, what="the figures")
        rows = [cells(window.desks, i) for i in window.desks.get_children()]
        assert [row[:3] for row in rows] == [("ana", "puesto-7", "Listo"), ("lucia", "puesto-1", "Listo")]
        assert window.summary.cget("text") == "2 puestos conectados"

        contact = gateway.rows[0]
        gateway.desk_state("key-agent", "puesto-7", "in_call", "call-ana", contact["id"])
        pump(root, lambda: cells(window.desks, window.desks.get_children()[0])[2] == "En llamada")
        first = cells(window.desks, window.desks.get_children()[0])
        assert first[3] == contact["name"]
        assert re.fullmatch(r"\d\d:\d\d:\d\d \(00:0\d\)", first[4])
        agents = [window.agents.item(i, "values")[:3] for i in window.agents.get_children()]
        assert agents == [("ana", "ventas", "12"), ("beto", "ventas", "9")]
        assert window.calls_label.cget("text") == "Llamadas del equipo ventas"
        settle(root, 1.2)
        shot(display, window, "desks", tmp_path)

        window.period.set("Esta semana")
        window._period_chosen("Esta semana")
        pump(root, lambda: gateway.call_metric_windows[-1][0] is not None and not window.figures.loading)
        since = datetime.fromisoformat(gateway.call_metric_windows[-1][0])
        assert since.weekday() == 0
        assert (since.hour, since.minute) == (0, 0)

        gateway.desk_state("key-lead", "puesto-1", "offline")
        pump(root, lambda: len(window.desks.get_children()) == 1, what="the desk that left")
        window.destroy()
    finally:
        desk.close()
        gateway.desk_state("key-agent", "puesto-7", "offline")
