"""A keyboard-first, plain-Spanish panel, in the real window under Xvfb against the gateway double: Tab
goes through every field (Estado included) and leaves Nota (Ctrl+Tab types a tab), ↑ ↓ and Alt+1…9 set
the status, the panel shows e-mail, operator by name, list and the file's other columns, the filters are
labelled, and an error says what to do in plain Spanish. Screenshots: ``keyboard_status.png``,
``panel_details.png``, ``error_plain.png``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from gateway_double import GatewayDouble
from tkdrive import pump, settle, shot

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayDouble]:
    double = GatewayDouble(contacts=300).start()
    yield double
    double.stop()


@pytest.fixture
def desk(display, gateway):
    from client.desk import build_desk

    desk = build_desk(gateway.url, "key-agent", language="es")
    desk.start()
    pump(desk.root, lambda: desk.session.me is not None and desk.contacts.loaded_once)
    yield desk
    if desk.root.winfo_exists():
        desk.close()


def open_first_with_extra(desk) -> str:
    """Open the first listed contact that has an e-mail and other columns; its id."""
    iid = next(
        iid
        for iid in desk.window.table.tree.get_children()
        if desk.contacts.contacts[iid].email and desk.contacts.contacts[iid].extra
    )
    desk.window.table.select(iid)
    pump(desk.root, lambda: desk.panel.contact is not None and desk.panel.contact.id == iid)
    settle(desk.root, 0.2)
    return iid


def press(widget, key: str) -> None:
    widget.focus_force()
    settle(widget.winfo_toplevel(), 0.05)
    widget.event_generate(key)
    settle(widget.winfo_toplevel(), 0.1)


def test_tab_goes_through_every_field_and_leaves_the_note(display, desk, tmp_path: Path) -> None:
    panel = desk.window.panel
    open_first_with_extra(desk)
    name, status, note = panel.name._entry, panel.status._canvas, panel.note._textbox

    press(name, "<Tab>")
    assert desk.root.focus_get() is status
    before = panel.vm.draft["status"]
    press(status, "<Down>")
    after = panel.vm.draft["status"]
    assert after != before
    assert panel.status.get() == desk.session.catalogue.label(after, "es")
    shot(display, desk.root, "keyboard_status", tmp_path)
    press(status, "<Tab>")
    assert desk.root.focus_get() is note
    press(note, "<Control-Tab>")
    assert "\t" in panel.note.get("1.0", "end-1c")
    text_before = panel.note.get("1.0", "end-1c")
    press(note, "<Tab>")
    assert desk.root.focus_get() is not note
    assert panel.note.get("1.0", "end-1c") == text_before
    assert desk.root.focus_get() is panel.save_button._canvas
    press(note, "<Shift-Tab>")
    assert desk.root.focus_get() is status


def test_alt_and_a_number_chooses_the_status_from_anywhere(display, desk) -> None:
    panel = desk.window.panel
    open_first_with_extra(desk)
    codes = list(desk.session.catalogue.codes())

    press(panel.name._entry, "<Alt-Key-2>")
    assert panel.vm.draft["status"] == codes[1]
    press(panel.note._textbox, "<Alt-Key-1>")
    assert panel.vm.draft["status"] == codes[0]
    assert "Alt+1" in panel.status_hint.cget("text")


def test_the_panel_shows_email_operator_list_and_other_columns_and_filters_are_labelled(
    display, desk, tmp_path: Path
) -> None:
    from client.viewmodels.generator import operator_name

    panel = desk.window.panel
    iid = open_first_with_extra(desk)
    contact = desk.contacts.contacts[iid]

    details = panel.details.cget("text")
    assert f"Correo: {contact.email}" in details
    assert f"Operador: {operator_name(contact.operator)}" in details
    assert f"Lista: {contact.list}" in details
    for key, value in contact.extra:
        assert f"{key}: {value}" in details
    labels = {key: label.cget("text") for key, label in desk.window.filter_labels.items()}
    assert labels == {
        "filter.search_label": "Buscar",
        "filter.status": "Estado",
        "filter.operator": "Operador",
        "filter.list": "Lista",
    }
    assert "Kölbi (ICE)" in desk.window.operator_filter.cget("values")
    desk.window.operator_filter.set("Kölbi (ICE)")
    desk.window._operator_chosen("Kölbi (ICE)")
    pump(desk.root, lambda: desk.contacts.query.operator == "kolbi" and not desk.contacts.loading)
    shot(display, desk.root, "panel_details", tmp_path)


def test_an_agent_sees_the_real_total_in_the_status_bar(display, desk) -> None:
    pump(desk.root, lambda: desk.window.count.cget("text") == "300 contactos")


def test_an_error_says_what_to_do_in_plain_spanish(display, desk, tmp_path: Path) -> None:
    from client.api import NetworkError, unreachable

    panel = desk.window.panel
    open_first_with_extra(desk)
    panel.vm._error(NetworkError(unreachable("http://10.0.0.5:5000", requests.ConnectionError("refused"))))
    settle(desk.root, 0.2)

    text = panel.message.cget("text")
    assert text.startswith("No se pudo conectar con el servidor http://10.0.0.5:5000. Revise")
    assert "Error" not in text
    shot(display, desk.root, "error_plain", tmp_path)
