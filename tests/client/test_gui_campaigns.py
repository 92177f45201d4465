"""«Campañas»' whole form and «Rellamadas»' live changes in the real window under Xvfb, against the gateway
double: a ProjectManager fills every rule (lists from the known names, teams, time zone, calling hours per
weekday, caps, retry delays, priority) and saves; a wrong form keeps every field typed with the error beside
each, and so does the server's 422; an agent's «Rellamadas» follows a team lead's reschedule and cancel,
and the schedule's share, without a reload. Screenshots go to ``$CALLMANAGER_SCREENSHOT_DIR`` when set,
else the temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gateway_double import USERS, GatewayDouble
from test_gui_calls import open_desk
from tkdrive import pump, settle, shot

from client.centretime import local_text

pytestmark = pytest.mark.gui

ANA_ID = USERS["key-agent"]["user_id"]

FULL_FORM: dict[str, Any] = {
    "name": "Cobros marzo",
    "priority": "5",
    "known_lists": ["lista-2", "lista-4"],
    "lists": "feria-2026",
    "teams": "ventas, cobros",
    "timezone": "America/Guatemala",
    "days": {
        "mon": ("08:00", "12:00", "13:00", "18:00"),
        "tue": ("08:00", "17:00", "", ""),
        "sat": ("09:00", "13:00", "", ""),
    },
    "attempts": "8",
    "per_day": "2",
    "retry": {"busy": "15", "no_answer": "90", "failed": "0"},
}
FULL_BODY: dict[str, Any] = {
    "name": "Cobros marzo",
    "active": True,
    "priority": 5,
    "lists": ["feria-2026", "lista-2", "lista-4"],
    "teams": ["ventas", "cobros"],
    "timezone": "America/Guatemala",
    "calling_hours": {
        "mon": [["08:00", "12:00"], ["13:00", "18:00"]],
        "tue": [["08:00", "17:00"]],
        "sat": [["09:00", "13:00"]],
    },
    "max_attempts": 8,
    "max_per_day": 2,
    "retry_minutes": {"busy": 15, "no_answer": 90, "failed": 0},
}


def type_into(entry: Any, text: str) -> None:
    entry.delete(0, "end")
    if text:
        entry.insert(0, text)


def fill_campaign_form(root: Any, window: Any, values: dict[str, Any]) -> None:
    """Type every rule of ``values`` into the window's form as a person would (a known list chosen from
    its menu, the calling-hours box ticked, each weekday's row)."""
    type_into(window.name, values["name"])
    type_into(window.priority, values["priority"])
    type_into(window.lists, values["lists"])
    for name in values["known_lists"]:
        pump(root, lambda name=name: name in window.vm.list_choices(), what=f"the known list {name}")
        window.lists_menu._dropdown_callback(name)  # what a click on the menu's entry does
    type_into(window.teams, values["teams"])
    window.timezone.set(values["timezone"])
    if not window.hours_limited.get():
        window.hours_limited.toggle()
    for day, (box, entries) in window.days.items():
        times = values["days"].get(day)
        if times is None:
            box.deselect()
            continue
        box.select()
        for entry, text in zip(entries, times, strict=True):
            type_into(entry, text)
    type_into(window.attempts, values["attempts"])
    type_into(window.per_day, values["per_day"])
    for outcome, text in values["retry"].items():
        type_into(window.retry[outcome], text)


def shown_errors(window: Any) -> dict[str, str]:
    """The error lines the form shows, by field."""
    return {key: str(label.cget("text")) for key, label in window.errors.items() if label.winfo_ismapped()}


@pytest.fixture
def gateway() -> Iterator[GatewayDouble]:
    double = GatewayDouble(contacts=40).start()
    yield double
    double.stop()


def test_a_project_manager_fills_every_rule_and_saves_the_campaign(display, gateway, tmp_path):
    desk = open_desk(gateway, "key-pm")
    root = desk.root
    try:
        desk.window.tool_buttons["campaigns"].invoke()
        window = desk.windows["campaigns"]
        pump(root, lambda: window.table.exists("general"), what="the campaigns")
        assert str(window.lists.cget("state")) == "disabled"  # General takes no lists
        window.vm.new()
        pump(root, lambda: window.name.get() == "" and str(window.lists.cget("state")) == "normal")
        assert window.timezone.get() == "America/Costa_Rica"
        fill_campaign_form(root, window, FULL_FORM)
        settle(root, 0.2)
        shot(display, window, "campaign_form_filled", tmp_path)
        window.save()
        pump(root, lambda: window.table.exists("cobros-marzo"), what="the new campaign")

        assert gateway.campaign_bodies[-1] == (None, FULL_BODY)
        assert window.message.cget("text") == "Campaña «Cobros marzo» guardada."
        assert shown_errors(window) == {}
        assert window.table.selection() == ("cobros-marzo",)
        # the form now shows the campaign as the server has it
        assert window.lists.get() == "feria-2026, lista-2, lista-4"
        assert [e.get() for e in window.days["mon"][1]] == ["08:00", "12:00", "13:00", "18:00"]
        assert not window.days["wed"][0].get()

        type_into(window.per_day, "")
        window.archive.select()
        window.active.deselect()
        window.save()
        pump(root, lambda: gateway.campaigns["cobros-marzo"].get("archived") is True, what="the archive")
        assert gateway.campaign_bodies[-1] == (
            "cobros-marzo",
            {"active": False, "max_per_day": None, "archived": True},
        )
        pump(root, lambda: not window.table.exists("cobros-marzo"), what="the archived one hidden")
        window.archived.toggle()
        pump(root, lambda: window.table.exists("cobros-marzo"))
        assert window.table.item("cobros-marzo", "values")[1] == "archivada"
    finally:
        desk.close()


def test_a_wrong_form_keeps_everything_typed_with_each_error_beside_its_field(display, gateway, tmp_path):
    desk = open_desk(gateway, "key-pm")
    root = desk.root
    try:
        desk.window.tool_buttons["campaigns"].invoke()
        window = desk.windows["campaigns"]
        pump(root, lambda: window.table.exists("general"))
        window.vm.new()
        pump(root, lambda: window.name.get() == "")
        wrong = {
            **FULL_FORM,
            "priority": "urgente",
            "timezone": "America/Atlantida",
            "days": {**FULL_FORM["days"], "tue": ("17:00", "08:00", "", "")},
            "per_day": "500",
        }
        fill_campaign_form(root, window, wrong)
        window.save()
        pump(root, lambda: bool(shown_errors(window)), what="the errors")

        assert shown_errors(window) == {
            "priority": "La prioridad debe ser un número de 0 a 1000.",
            "timezone": "Zona horaria desconocida: «America/Atlantida». Elija una de la lista (p. ej. "
            "America/Costa_Rica).",
            "hours.tue": "Martes: la franja 17:00-08:00 termina antes de empezar.",
            "max_per_day": "Intentos por día debe ser un número de 1 a 100, o quedar vacío (sin límite).",
        }
        assert window.message.cget("text").startswith("Hay 4 campos por corregir (en rojo).")
        assert gateway.campaign_bodies == []
        red = ("#b71c1c", "#ef9a9a")
        assert window.priority.cget("border_color") == red
        assert window.name.cget("border_color") != red
        assert (window.name.get(), window.priority.get(), window.timezone.get()) == (
            "Cobros marzo",
            "urgente",
            "America/Atlantida",
        )
        assert [e.get() for e in window.days["tue"][1][:2]] == ["17:00", "08:00"]
        assert window.lists.get() == "feria-2026, lista-2, lista-4"
        settle(root, 0.2)
        shot(display, window, "campaign_form_errors", tmp_path)

        type_into(window.priority, "5")
        window.timezone.set("America/Guatemala")
        type_into(window.days["tue"][1][0], "08:00")
        type_into(window.days["tue"][1][1], "17:00")
        type_into(window.per_day, "2")
        gateway.refuse_campaign = ("calling_hours", "La franja 13:00-18:00 de «mon» se cruza con otra")
        window.save()
        pump(root, lambda: "hours.mon" in shown_errors(window) or "calling_hours" in shown_errors(window))
        assert shown_errors(window) == {"calling_hours": "La franja 13:00-18:00 de «mon» se cruza con otra"}
        assert window.message.cget("text") == (
            "No se guardó la campaña: La franja 13:00-18:00 de «mon» se cruza con otra"
        )
        assert gateway.campaign_bodies[-1] == (None, FULL_BODY)
        assert window.name.get() == "Cobros marzo"
        assert [e.get() for e in window.days["mon"][1]] == ["08:00", "12:00", "13:00", "18:00"]
        assert "cobros-marzo" not in gateway.campaigns

        window.save()  # the same form again, now accepted
        pump(root, lambda: window.table.exists("cobros-marzo"))
        assert shown_errors(window) == {}
    finally:
        desk.close()


def test_rellamadas_follows_another_users_changes_without_a_reload(display, gateway, tmp_path):
    rows = gateway.rows
    due = datetime.now(UTC) + timedelta(minutes=30)
    for callback_id, row, scope, owner in (
        ("cb-1", rows[3], "personal", ANA_ID),
        ("cb-2", rows[4], "personal", ANA_ID),
        ("cb-3", rows[5], "personal", USERS["key-lead"]["user_id"]),
    ):
        gateway.callbacks[callback_id] = {
            "callback_id": callback_id,
            "contact_id": row["id"],
            "phone_e164": row["phone_e164"],
            "name": row["name"],
            "user_id": owner,
            "username": "ana",
            "scope": scope,
            "due_at": due.isoformat(),
            "set_at": datetime.now(UTC).isoformat(),
        }
    desk = open_desk(gateway, "key-agent")
    root = desk.root
    try:
        desk.window.panel.callbacks_button.invoke()
        window = desk.windows["callbacks"]
        pump(root, lambda: window.table.exists("cb-1") and window.table.exists("cb-2"), what="the rows")
        assert not window.table.exists("cb-3")
        window.date.insert(0, "a medio escribir")  # what she is typing is not touched by the updates

        later = (due + timedelta(hours=2)).replace(second=0, microsecond=0)
        gateway.change_callback("cb-1", "rescheduled", due_at=later.isoformat())
        pump(
            root,
            lambda: window.table.item("cb-1", "values")[0] == local_text(later),
            what="the rescheduled time",
        )
        assert window.summary.cget("text") == (
            f"lucia reprogramó la rellamada a {rows[3]['name']} ({local_text(later)}); la lista se actualizó."
        )

        gateway.change_callback("cb-2", "cancelled")
        pump(root, lambda: not window.table.exists("cb-2"), what="the cancelled row gone")
        assert window.summary.cget("text") == (
            f"lucia canceló la rellamada a {rows[4]['name']}; la lista se actualizó."
        )

        gateway.change_callback("cb-3", "shared")  # lucia's own, nobody took it: now anyone's
        pump(root, lambda: window.table.exists("cb-3"), what="the shared callback")
        assert window.table.item("cb-3", "values")[3] == "Compartida (cualquiera)"
        assert window.date.get() == "a medio escribir"
        settle(root, 0.2)
        shot(display, window, "callbacks_live_double", tmp_path)
    finally:
        desk.close()


def test_choosing_another_campaign_asks_before_dropping_what_was_typed(display, gateway):
    gateway.campaigns["cobros"] = {**gateway.campaigns["general"], "id": "cobros", "name": "Cobros"}
    desk = open_desk(gateway, "key-pm")
    root = desk.root
    try:
        desk.window.tool_buttons["campaigns"].invoke()
        window = desk.windows["campaigns"]
        pump(root, lambda: window.table.exists("cobros") and window.name.get() == "Cobros")
        type_into(window.priority, "7")

        def asked() -> bool:
            return window.unsaved is not None and window.unsaved.winfo_ismapped()

        window.table.selection_set("general")
        pump(root, asked, what="the unsaved-changes question")
        assert window.unsaved is not None
        assert "«Cobros»" in window.unsaved.question.cget("text")
        window.unsaved.cancel_button.invoke()
        settle(root, 0.3)
        assert (window.vm.selected, window.name.get(), window.priority.get()) == ("cobros", "Cobros", "7")
        assert window.table.selection() == ("cobros",)

        window.table.selection_set("general")
        pump(root, asked)
        window.unsaved.discard_button.invoke()
        pump(root, lambda: window.name.get() == "General", what="General's rules")
        assert gateway.campaign_bodies == []

        type_into(window.per_day, "3")
        window.new_button.invoke()
        pump(root, asked)
        window.unsaved.save_button.invoke()
        pump(root, lambda: window.vm.selected is None and window.name.get() == "", what="the new form")
        assert gateway.campaign_bodies == [("general", {"max_per_day": 3})]
        assert gateway.campaigns["general"]["max_per_day"] == 3
    finally:
        desk.close()
