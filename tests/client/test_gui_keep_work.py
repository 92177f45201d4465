"""No agent's work is lost, in the real window under Xvfb against the gateway double: two clients edit one
contact (the conflict view), the unsaved-changes prompt, read-only fields under someone else's lock, the
lock-expiry warning with «Extender» and the notice of a force release. Screenshots: ``conflict.png``,
``unsaved_prompt.png``, ``locked_by_other.png``, ``lock_expiring.png``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gateway_double import GatewayDouble
from tkdrive import pump, settle, shot

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayDouble]:
    double = GatewayDouble(contacts=300).start()
    yield double
    double.stop()


def open_desk(gateway, key):
    from client.desk import build_desk

    desk = build_desk(gateway.url, key, language="es")
    desk.start()
    pump(desk.root, lambda: desk.session.me is not None and desk.contacts.loaded_once)
    return desk


@pytest.fixture
def ana(display, gateway):
    desk = open_desk(gateway, "key-agent")
    yield desk
    if desk.root.winfo_exists():
        desk.close()


def show(desk, iid):
    desk.window.table.select(iid)
    pump(desk.root, lambda: desk.panel.contact is not None and desk.panel.contact.id == iid)
    pump(desk.root, lambda: desk.panel.history_loaded)


def type_note(desk, text):
    panel = desk.window.panel
    panel.note.delete("1.0", "end")
    panel.note.insert("1.0", text)
    panel.note._textbox.focus_force()
    settle(desk.root, 0.1)
    panel.note._textbox.event_generate("<KeyRelease>")
    settle(desk.root, 0.6)  # past the drafts file's debounce


def test_two_clients_edit_one_contact_and_the_second_sees_the_first_beside_hers(
    display, gateway, ana, tmp_path: Path
):
    lucia = open_desk(gateway, "key-lead")
    try:
        iid = ana.window.table.tree.get_children()[2]
        show(ana, iid)
        show(lucia, iid)
        type_note(ana, "Quiere el plan de 20 GB")
        type_note(lucia, "Pidió que la llamen el lunes")
        lucia.window.panel.save_button.invoke()
        pump(lucia.root, lambda: lucia.panel.message == "Cambios guardados.")
        pump(
            ana.root,
            lambda: "mientras usted editaba" in ana.panel.message,
            what=f"notice ({ana.panel.message!r})",
        )
        assert ana.panel.draft["note"] == "Quiere el plan de 20 GB"

        ana.window.panel.save_button.invoke()
        pump(ana.root, lambda: bool(ana.panel.conflict), what="the conflict view")
        panel = ana.window.panel
        pump(ana.root, lambda: panel.conflict_box.winfo_ismapped())
        assert gateway.by_id[iid]["note"] == "Pidió que la llamen el lunes", "never a silent overwrite"
        row = ana.panel.conflict[0]
        assert (row.field, row.who, row.mine, row.theirs) == (
            "note",
            "lucia",
            "Quiere el plan de 20 GB",
            "Pidió que la llamen el lunes",
        )
        assert "Otra persona cambió este contacto" in panel.message.cget("text")
        lucia.root.withdraw()  # both windows open at one place: show hers
        ana.root.lift()
        settle(ana.root, 0.5)
        shot(display, ana.root, "conflict", tmp_path)

        panel.conflict_buttons[("note", _choice("merge"))].invoke()
        settle(ana.root, 0.1)
        panel.save_button.invoke()
        pump(ana.root, lambda: ana.panel.message == "Cambios guardados.")
        assert gateway.by_id[iid]["note"] == "Pidió que la llamen el lunes\nQuiere el plan de 20 GB"
        pump(ana.root, lambda: not panel.conflict_box.winfo_ismapped())
    finally:
        lucia.close()


def _choice(name):
    from client.viewmodels.panel import Choice

    return Choice(name)


def test_leaving_unsaved_typing_asks_guardar_descartar_cancelar(display, gateway, ana, tmp_path: Path):
    root, window = ana.root, ana.window
    first = window.table.tree.get_children()[10]
    show(ana, first)
    original = gateway.by_id[first]["note"]
    type_note(ana, "a medio escribir")

    root.event_generate("<Control-n>")
    pump(root, lambda: window.unsaved is not None and window.unsaved.winfo_ismapped(), what="the prompt")
    dialog = window.unsaved
    assert [b.cget("text") for b in (dialog.save_button, dialog.discard_button, dialog.cancel_button)] == [
        "Guardar",
        "Descartar",
        "Cancelar",
    ]
    settle(root, 0.3)
    shot(display, dialog, "unsaved_prompt", tmp_path)
    dialog.cancel_button.invoke()
    settle(root, 0.3)
    assert ana.panel.contact.id == first
    assert window.table.tree.selection() == (first,)
    assert ana.panel.draft["note"] == "a medio escribir"

    root.event_generate("<Control-n>")
    pump(root, lambda: window.unsaved is not None)
    window.unsaved.discard_button.invoke()
    pump(root, lambda: ana.panel.contact.id != first)
    assert gateway.by_id[first]["note"] == original

    second = ana.panel.contact.id
    type_note(ana, "guardar al salir")
    root.event_generate("<Control-n>")
    pump(root, lambda: window.unsaved is not None)
    window.unsaved.save_button.invoke()
    pump(root, lambda: ana.panel.contact.id != second, what="the next contact after saving")
    assert gateway.by_id[second]["note"] == "guardar al salir"


def test_someone_elses_lock_makes_the_fields_read_only(display, gateway, ana, tmp_path: Path):
    iid = ana.window.table.tree.get_children()[20]
    show(ana, iid)
    gateway.lock(iid, "beto", minutes=15)
    panel = ana.window.panel
    pump(ana.root, lambda: panel.name.cget("state") == "disabled", what="read-only fields")
    assert panel.note.cget("state") == "disabled"
    assert panel.status.cget("state") == "disabled"
    assert panel.lock_line.cget("text").startswith("Bloqueado por beto")
    assert panel.save_button.cget("state") == "disabled"
    settle(ana.root, 0.3)
    shot(display, ana.root, "locked_by_other", tmp_path)


def test_warned_before_my_lock_expires_and_told_when_a_lead_force_releases_it(
    display, gateway, ana, tmp_path: Path
):
    lucia = open_desk(gateway, "key-lead")
    lucia.root.withdraw()  # both windows open at one place: show hers
    try:
        iid = ana.window.table.tree.get_children()[30]
        show(ana, iid)
        panel = ana.window.panel
        panel.lock_button.invoke()
        pump(ana.root, lambda: ana.panel.lock_text().startswith("Bloqueado por usted"))
        soon = datetime.now(UTC) + timedelta(seconds=50)

        def fifty_seconds_left() -> bool:
            """The lock as if taken nine minutes ago (live echoes of the lock may still come in)."""
            if ana.panel.contact.locked_until != soon:
                ana.panel.contact = replace(ana.panel.contact, locked_until=soon)
            return bool(panel.extend_button.winfo_ismapped())

        pump(ana.root, fifty_seconds_left, what="the Extender button")
        assert "Su bloqueo vence a las" in panel.message.cget("text")
        settle(ana.root, 0.3)
        shot(display, ana.root, "lock_expiring", tmp_path)
        panel.extend_button.invoke()
        pump(ana.root, lambda: not panel.extend_button.winfo_ismapped())
        later = ana.panel.contact.locked_until
        assert later is not None
        assert later > soon + timedelta(minutes=5)

        show(lucia, iid)
        lucia.window.panel.release_button.invoke()
        pump(ana.root, lambda: ana.panel.message.startswith("lucia liberó su bloqueo"))
        assert panel.name.cget("state") == "normal"
    finally:
        lucia.close()
