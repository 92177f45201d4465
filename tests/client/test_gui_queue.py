"""The work queue in the real window under Xvfb, against the gateway double: «Siguiente» (F6) over the live
connection with the reason shown, an empty queue as a notice (never a dialog), the unsaved-typing prompt
first; the «No llamar» badge; «Rellamadas» opening a contact and the live reminder; a team lead's
«Campañas» window with its progress bar (its rules read only) and the desk board's calls today.
Screenshots go to ``$CALLMANAGER_SCREENSHOT_DIR`` when set, else the temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from gateway_double import USERS, GatewayDouble
from test_gui_calls import open_desk
from tkdrive import cells, pump, settle, shot

from client.centretime import local_parts

pytestmark = pytest.mark.gui

ANA_ID = USERS["key-agent"]["user_id"]


@pytest.fixture
def gateway() -> Iterator[GatewayDouble]:
    double = GatewayDouble(contacts=60).start()
    yield double
    double.stop()


def press(root, key: str) -> None:
    root.focus_force()
    settle(root, 0.1)
    root.event_generate(key)


def test_siguiente_opens_the_queues_contact_and_an_empty_queue_is_a_notice(display, gateway, tmp_path):
    desk = open_desk(gateway, "key-agent")
    root, panel = desk.root, desk.window.panel
    try:
        assert panel.queue_button.cget("text") == "⏭ Siguiente (F6)"
        assert "F6 Siguiente" in panel.keys_help.cget("text")
        gateway.queue_empty_until = (datetime.now(UTC) + timedelta(minutes=40)).isoformat()
        press(root, "<F6>")
        pump(root, lambda: desk.panel.message.startswith("No hay contactos para llamar ahora."))
        assert "Todos los contactos están en espera de reintento." in panel.message.cget("text")
        assert gateway.queue_asks == ["socket"]
        assert not [w for w in root.winfo_children() if w.winfo_class() == "Toplevel" and w.winfo_ismapped()]
        assert desk.panel.contact is None

        target = gateway.rows[17]
        gateway.queue_ids = [target["id"]]
        panel.queue_button.invoke()
        pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id == target["id"])
        assert gateway.queue_asks == ["socket", "socket"]
        assert panel.message.cget("text") == ("Siguiente de «General»: Nunca se ha llamado (intentos: 0).")
        assert panel.title.cget("text") == target["name"]
        pump(root, lambda: desk.window.table.tree.selection() == (target["id"],), what="the row selected")
        assert gateway.by_id[target["id"]]["locked_by"] == ANA_ID
        settle(root, 0.3)
        shot(display, root, "queue_next", tmp_path)
    finally:
        desk.close()


def test_siguiente_asks_about_unsaved_typing_first(display, gateway):
    desk = open_desk(gateway, "key-agent")
    root, window = desk.root, desk.window
    try:
        first = window.table.tree.get_children()[3]
        window.table.select(first)
        pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id == first)
        window.panel.note.delete("1.0", "end")
        window.panel.note.insert("1.0", "a medio escribir")
        gateway.queue_ids = [gateway.rows[30]["id"]]
        press(root, "<F6>")
        pump(root, lambda: window.unsaved is not None and window.unsaved.winfo_ismapped(), what="the prompt")
        window.unsaved.cancel_button.invoke()
        settle(root, 0.3)
        assert gateway.queue_asks == []  # nothing asked: she stays with her typing
        assert desk.panel.contact.id == first
        assert desk.panel.draft["note"] == "a medio escribir"

        press(root, "<F6>")
        pump(root, lambda: window.unsaved is not None and window.unsaved.winfo_ismapped())
        window.unsaved.save_button.invoke()
        pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id == gateway.rows[30]["id"])
        assert gateway.by_id[first]["note"] == "a medio escribir"
    finally:
        desk.close()


def test_a_do_not_call_contact_shows_the_red_badge_and_llamar_is_disabled(display, gateway, tmp_path):
    row = gateway.rows[5]
    gateway.dnc[row["id"]] = "pidió no ser llamado"
    gateway.connect_desk("key-agent", "puesto-3")
    desk = open_desk(gateway, "key-agent")
    root, panel = desk.root, desk.window.panel
    try:
        desk.window.table.select(row["id"])
        pump(root, lambda: panel.dnc_badge.winfo_ismapped(), what="the badge")
        assert panel.dnc_badge.cget("text") == "⛔ No llamar — En la lista de no llamar: pidió no ser llamado"
        pump(root, lambda: panel.call_button.cget("text") == "📞 No llamar")
        assert panel.call_button.cget("state") == "disabled"
        settle(root, 0.3)
        shot(display, root, "dnc_badge", tmp_path)

        other = gateway.rows[6]
        desk.window.table.select(other["id"])
        pump(root, lambda: not panel.dnc_badge.winfo_ismapped(), what="no badge on the next contact")
        pump(root, lambda: panel.call_button.cget("text") == "📞 Llamar (F5)")
    finally:
        desk.close()
        gateway.desk_state("key-agent", "puesto-3", "offline")


def test_rellamadas_lists_todays_callbacks_opens_one_and_the_reminder_is_a_notice(display, gateway, tmp_path):
    row = gateway.rows[12]
    due = datetime.now(UTC) + timedelta(minutes=20)
    gateway.callbacks["cb-7"] = {
        "callback_id": "cb-7",
        "contact_id": row["id"],
        "phone_e164": row["phone_e164"],
        "name": row["name"],
        "user_id": ANA_ID,
        "username": "ana",
        "scope": "personal",
        "due_at": due.isoformat(),
        "set_at": datetime.now(UTC).isoformat(),
    }
    desk = open_desk(gateway, "key-agent")
    root, panel = desk.root, desk.window.panel
    try:
        panel.callbacks_button.invoke()
        window = desk.windows["callbacks"]
        pump(root, lambda: window.table.exists("cb-7"), what="the callback row")
        national = row["phone_e164"].removeprefix("+506")
        assert window.table.item("cb-7", "values")[1:] == (
            row["name"],
            f"{national[:4]}-{national[4:]}",
            "Personal (solo yo)",
        )
        assert window.summary.cget("text") == "1 rellamada para hoy"
        settle(root, 0.3)
        shot(display, window, "callbacks", tmp_path)

        window.table.selection_set("cb-7")
        pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id == row["id"])
        pump(
            root,
            lambda: gateway.by_id[row["id"]]["locked_by"] == ANA_ID,
            what="the callback's contact locked",
        )

        gateway.remind("cb-7")
        pump(
            root, lambda: desk.window.notice.cget("text").startswith("⏰ Rellamada a las"), what="the notice"
        )
        assert row["name"] in desk.window.notice.cget("text")
        assert not [w for w in root.winfo_children() if w.winfo_class() == "Toplevel" and w is not window]

        window.date.delete(0, "end")
        window.time.delete(0, "end")
        later = due + timedelta(hours=1)
        date_text, time_text = local_parts(later)
        window.date.insert(0, date_text)
        window.time.insert(0, time_text)
        window.reschedule()
        pump(root, lambda: desk.callbacks.message.startswith("Rellamada movida al"))
        assert datetime.fromisoformat(gateway.callbacks["cb-7"]["due_at"]) == later.replace(
            second=0, microsecond=0
        )
        window.destroy()
    finally:
        desk.close()


def test_team_lead_works_campaigns_and_sees_calls_today_on_the_board(display, gateway, tmp_path):
    gateway.campaign_progress["general"] = {
        "total": 60,
        "never_tried": 15,
        "in_retry": 10,
        "reached": 20,
        "closed": 8,
        "dnc": 1,
        "capped": 4,
        "locked": 2,
    }
    gateway.connect_desk("key-agent", "puesto-7")
    desk = open_desk(gateway, "key-lead")
    root = desk.root
    try:
        assert desk.window.tool_buttons["campaigns"].winfo_ismapped()
        desk.window.tool_buttons["campaigns"].invoke()
        window = desk.windows["campaigns"]
        pump(root, lambda: window.table.exists("general") and desk.windows["campaigns"].vm.progress)
        assert window.table.item("general", "values") == ("General", "activa", "6")
        pump(root, lambda: window.worked.cget("text") == "45 de 60 contactos trabajados (75 %)")
        assert window.bar.get() == pytest.approx(0.75)
        assert "Nunca llamados: 15" in window.figures.cget("text")
        settle(root, 0.3)
        shot(display, window, "campaigns", tmp_path)

        # A team lead reads the rules; ProjectManager and TI change them (test_gui_campaigns.py).
        assert window.name.get() == "General"
        assert window.save_button.cget("state") == "disabled"
        window.destroy()

        desk.window.tool_buttons["desks"].invoke()
        board = desk.windows["desks"]
        pump(root, lambda: len(board.desks.get_children()) == 1, what="the desk")
        pump(root, lambda: cells(board.desks, board.desks.get_children()[0])[5:] == ("12", "64 %"))
        board.destroy()
    finally:
        desk.close()
        gateway.desk_state("key-agent", "puesto-7", "offline")
