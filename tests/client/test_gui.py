"""The real client window under Xvfb against the in-process gateway double: load, search, select, lock,
live patch, call without desk, reconnect, supervisor tools, first-run dialog. (The same window against the
real server, and the screenshots, are in ``test_gui_real_server.py``.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from gateway_double import GatewayDouble
from tkdrive import cells as row_cells
from tkdrive import pump, settle

from contacts.statuses import DEFAULT_CATALOGUE

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayDouble]:
    double = GatewayDouble(contacts=2000).start()
    yield double
    double.stop()


def cells(desk, iid: str) -> tuple[str, ...]:
    return row_cells(desk.window.table.tree, iid)


@pytest.fixture
def desk(display, gateway):
    from client.desk import build_desk

    desk = build_desk(gateway.url, "key-pm", language="es")
    desk.start()
    yield desk
    if desk.root.winfo_exists():
        desk.close()


def test_window_lists_contacts_and_follows_the_user(display, gateway, desk):
    from client.live import ConnectionState

    root, table = desk.root, desk.window.table.tree
    pump(root, lambda: len(table.get_children()) == 200 and desk.session.state is ConnectionState.CONNECTED)
    pump(root, lambda: desk.session.me is not None)
    assert desk.window.connection.cget("text") == "conectado"
    assert desk.window.user.cget("text") == "pedro (Gerente de proyecto)"
    assert desk.window.count.cget("text") == "2,000 contactos"
    first = cells(desk, table.get_children()[0])
    assert first[2] == "No contesta"
    assert all(button.winfo_ismapped() for button in desk.window.tool_buttons.values())

    search = desk.window.search
    search._entry.focus_force()
    settle(root, 0.1)
    search.insert(0, "Ana Mora 1")
    search._entry.event_generate("<KeyRelease>")
    pump(root, lambda: desk.contacts.query.q == "Ana Mora 1" and not desk.contacts.loading)
    names = [cells(desk, iid)[0] for iid in table.get_children()]
    assert names
    assert all(name.startswith("Ana Mora 1") for name in names)
    search.delete(0, "end")
    search._entry.event_generate("<KeyRelease>")
    pump(root, lambda: desk.contacts.query.q == "" and len(table.get_children()) == 200)

    table.yview_moveto(1.0)
    pump(root, lambda: len(table.get_children()) >= 400)

    iid = table.get_children()[3]
    desk.window.table.select(iid)
    pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id == iid)
    desk.window.panel.lock_button.invoke()
    pump(root, lambda: desk.panel.lock_text().startswith("Bloqueado por usted"))
    pump(root, lambda: cells(desk, iid)[4] == "pedro")

    other = table.get_children()[5]
    before = [cells(desk, i) for i in table.get_children()[:20]]
    gateway.update(other, note="Cliente pidió llamada el viernes", status="INTERESADO")
    pump(root, lambda: cells(desk, other)[3] == "Cliente pidió llamada el viernes")
    assert cells(desk, other)[2] == "Interesado"
    after = [cells(desk, i) for i in table.get_children()[:20]]
    assert [a for a, b in zip(before, after, strict=True) if a != b] == [before[5]]

    desk.window.panel.call_button.invoke()
    pump(root, lambda: "marcador" in desk.window.panel.message.cget("text"))
    assert desk.window.panel.message.cget("text").startswith("Su puesto no tiene el marcador conectado.")
    desk.panel.message = ""
    desk.window.panel.note.insert("end", " — revisado")
    desk.window.panel.note._textbox.focus_force()
    settle(root, 0.1)
    root.event_generate("<Control-s>")
    pump(root, lambda: desk.panel.message == "Cambios guardados.")

    root.event_generate("<Control-n>")
    pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id != iid)

    gateway.drop_clients()
    pump(root, lambda: desk.session.state is not ConnectionState.CONNECTED, timeout=5)
    missed = table.get_children()[8]
    gateway.update(missed, name="Nombre cambiado sin conexión")
    pump(root, lambda: cells(desk, missed)[0] == "Nombre cambiado sin conexión", timeout=20)
    # The missed change may be shown by the reload before the socket's reconnection is reported: wait for it.
    pump(root, lambda: desk.session.state is ConnectionState.CONNECTED, timeout=20, what="the reconnection")


def test_supervisor_tools(display, gateway, desk, tmp_path, monkeypatch):
    from tkinter import filedialog

    root = desk.root
    pump(root, lambda: desk.session.me is not None and desk.contacts.loaded_once)

    source = tmp_path / "lista.csv"
    source.write_text("telefono,nombre\n88123456,Ana\n123,Corto\n60001122,Luis\n", encoding="utf-8")
    monkeypatch.setattr(filedialog, "askopenfilename", lambda **_: str(source))
    desk.window.tool_buttons["import"].invoke()
    window = desk.windows["import"]
    window.choose_button.invoke()
    vm = desk.imports[-1]
    pump(root, lambda: vm.state.value == "preview")
    assert "3 filas" in window.status.cget("text")
    window.confirm_button.invoke()
    pump(root, lambda: vm.state.value == "done")
    assert window.status.cget("text").startswith("Importación terminada: 2 nuevas")
    assert [window.rows.item(i, "values") for i in window.rows.get_children()] == [
        ("3", "", "rechazada", "número no válido: demasiado corto")
    ]
    window.destroy()

    desk.window.tool_buttons["generate"].invoke()
    window = desk.windows["generate"]
    window.amount.delete(0, "end")
    window.amount.insert(0, "20")
    window.run_button.invoke()
    pump(root, lambda: len(window.rows.get_children()) == 20)
    assert window.status.cget("text") == "20 números generados (no se guardaron)."
    target = tmp_path / "numeros.csv"
    monkeypatch.setattr(filedialog, "asksaveasfilename", lambda **_: str(target))
    window.save_button.invoke()
    assert target.read_text(encoding="utf-8-sig").count("\n") == 21
    window.destroy()

    desk.window.tool_buttons["export"].invoke()
    window = desk.windows["export"]
    exported = tmp_path / "contactos.csv"
    monkeypatch.setattr(filedialog, "asksaveasfilename", lambda **_: str(exported))
    window.start_button.invoke()
    pump(root, lambda: "guardada" in window.status.cget("text"))
    assert exported.read_text().count("\n") == 2001
    assert window.format.get() == "csv"
    window.destroy()

    desk.window.tool_buttons["metrics"].invoke()
    window = desk.windows["metrics"]
    pump(root, lambda: len(window.by_status.get_children()) == len(DEFAULT_CATALOGUE.codes))
    pump(root, lambda: window.agents is not None and window.teams is not None)
    assert window.calls_label.cget("text") == "Llamadas de todos los equipos"
    agents = [window.agents.item(i, "values")[:3] for i in window.agents.get_children()]
    assert agents == [("ana", "ventas", "12"), ("beto", "ventas", "9"), ("carla", "soporte", "5")]
    assert len(window.teams.get_children()) == 2
    window.period.set("Últimos 7 días")
    window._period_chosen("Últimos 7 días")
    pump(root, lambda: gateway.call_metric_windows[-1][0] is not None and not window.vm.loading)
    since = datetime.fromisoformat(gateway.call_metric_windows[-1][0])
    assert (since.hour, since.minute, since.second) == (0, 0, 0)
    assert (datetime.now().astimezone().date() - since.date()).days == 6
    window.destroy()


def test_agent_sees_only_their_own_metrics_and_a_lock_held_by_someone_else(display, gateway):
    from client.desk import build_desk

    desk = build_desk(gateway.url, "key-agent", language="en")
    desk.start()
    try:
        root = desk.root
        pump(root, lambda: desk.session.me is not None and desk.contacts.loaded_once)
        settle(root, 0.2)
        shown = {name for name, button in desk.window.tool_buttons.items() if button.winfo_ismapped()}
        assert shown == {"metrics"}
        assert desk.window.user.cget("text") == "ana (Agent) · ventas"
        desk.window.tool_buttons["metrics"].invoke()
        window = desk.windows["metrics"]
        pump(root, lambda: len(window.calls.get_children()) == 8)
        figures = dict(window.calls.item(i, "values") for i in window.calls.get_children())
        assert (figures["Made"], figures["Success rate"], figures["Talk time"]) == ("12", "63.6 %", "30:30")
        assert (window.agents, window.teams) == (None, None)
        assert not window.by_status.winfo_ismapped()
        window.destroy()
        iid = desk.window.table.tree.get_children()[1]
        gateway.lock(iid, "beto")
        pump(root, lambda: cells(desk, iid)[4] == "beto")
        desk.window.table.select(iid)
        pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id == iid)
        desk.window.panel.lock_button.configure(state="normal")
        desk.panel.lock()
        pump(root, lambda: "beto" in desk.window.panel.message.cget("text"))
        assert desk.window.panel.lock_line.cget("text").startswith("Locked by beto until")
        assert desk.window.panel.save_button.cget("state") == "disabled"
    finally:
        desk.close()


def test_first_run_dialog_tests_and_saves_the_connection(display, gateway, tmp_path):
    import customtkinter as ctk

    from client.api import GatewayApi
    from client.config import ConfigStore, FileKeyStore, KeyStoreChoice
    from client.desk import release_tk_garbage
    from client.dispatch import Dispatcher, ThreadRunner
    from client.i18n import Translator
    from client.viewmodels.setup import SetupState, SetupViewModel
    from client.views.setup import SetupFrame

    root = ctk.CTk()
    dispatcher = Dispatcher()
    dispatcher.attach(root)
    runner = ThreadRunner(dispatcher, workers=1)
    store = ConfigStore(tmp_path)
    keys = KeyStoreChoice(FileKeyStore(tmp_path), False, "sin servicio de llavero")
    vm = SetupViewModel(Translator("es"), runner, GatewayApi, store, keys, store.load())
    frame = SetupFrame(root, vm, Translator("es"))
    frame.pack(fill="both", expand=True, padx=8, pady=8)
    try:
        frame.url.delete(0, "end")
        frame.url.insert(0, gateway.url)
        frame.key.insert(0, "key-lead")
        frame.submit_button.invoke()
        pump(root, lambda: vm.state is SetupState.SAVED)
        assert frame.message.cget("text").startswith("Conectado como lucia (Líder de equipo).")
        assert store.load().server_url == gateway.url
    finally:
        runner.shutdown()
        dispatcher.detach()
        root.destroy()
        release_tk_garbage()
