"""The real client window under Xvfb against the real embedded server (``callmanager up``): a lock taken by
another agent's Socket.IO client shows up in the row, the call button without a desk agent says so plainly,
a supervisor imports a small spreadsheet through the window to its report, exports, generates numbers and
reads the metrics. Screenshots of these screens go to ``$CALLMANAGER_SCREENSHOT_DIR`` when set (that is
how ``docs/screenshots`` is made) and to the test's temp dir otherwise."""

from __future__ import annotations

import csv
import queue
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from openpyxl import Workbook, load_workbook
from tkdrive import cells, pump, settle, shot

from contacts.statuses import DEFAULT_CATALOGUE
from tests.support.servers import EmbeddedServer, start_embedded

STATUS_COUNT = len(DEFAULT_CATALOGUE.codes)  # the server's catalogue, not a copy of it

pytestmark = pytest.mark.gui

FIRST = ("María", "Luis", "Ana", "José", "Carmen", "Jorge", "Sofía", "Diego", "Valeria", "Andrés")
LAST = ("Vargas", "Rojas", "Mora", "Jiménez", "Quesada", "Solano", "Araya", "Castro", "Chaves", "Calderón")
STATUSES = ("NC", "CUELGA", "SIN_GESTIONAR", "SIN_GESTIONAR", "INTERESADO", "PENDIENTE", "SERVICIOS_ACTIVOS")
NOTES = ("Llamar después de las 3 pm", "Interesado en plan pospago", "", "Pidió información por correo", "")
# Mobile blocks every operator owns (COSTA_RICA.md): Kölbi 83-89, Telefónica 60-64, Claro 71-72.
PREFIXES = ("83", "84", "85", "86", "87", "88", "89", "60", "61", "62", "63", "64", "71", "72")
SEEDED = 36
NO_DESK = (
    "Su puesto no tiene el marcador conectado. Inicie «callmanager-dialer» en este equipo (vea --check)."
)


@dataclass
class World:
    """The running server, its users' keys and the contacts seeded through its HTTP API."""

    server: EmbeddedServer
    keys: dict[str, str]
    contacts: list[dict[str, Any]]

    def contact(self, index: int) -> dict[str, Any]:
        return self.contacts[index]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = start_embedded(tmp_path_factory.mktemp("server"))
    try:
        keys = {
            "ana": server.create_user("ana", "Agent", team="ventas"),
            "beto": server.create_user("beto", "Agent", team="ventas"),
            "lucia": server.create_user("lucia", "TeamLead", team="ventas"),
            "pedro": server.create_user("pedro", "ProjectManager"),
        }
        rnd = random.Random(2026)
        created: list[dict[str, Any]] = []
        phones: set[str] = set()
        with server.client(keys["pedro"]) as http:
            while len(created) < SEEDED:
                phone = rnd.choice(PREFIXES) + f"{rnd.randrange(0, 1_000_000):06d}"
                if phone in phones:
                    continue
                phones.add(phone)
                index = len(created)
                name = f"{FIRST[index % 10]} {LAST[(index // 10 + 3 * index) % 10]}"
                answer = http.post(
                    "/contacts",
                    json={
                        "phone": phone,
                        "name": name,
                        "status": STATUSES[len(created) % len(STATUSES)],
                        "note": NOTES[len(created) % len(NOTES)],
                        "list": "feria-2026",
                    },
                )
                assert answer.status_code == 201, answer.text
                created.append(answer.json())
        yield World(server, keys, created)
    finally:
        server.process.stop()


class Agent:
    """A second user's real Socket.IO client: sends lock/unlock, records what the server sends it."""

    def __init__(self, base_url: str, key: str, desk: str = "") -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.socket = socketio.Client(reconnection=False)
        for name in ("dial", "lock_denied", "error"):
            self.socket.on(name, self._recorder(name))
        auth = {"api_key": key, **({"desk": desk} if desk else {})}
        self.socket.connect(base_url, auth=auth, transports=["websocket"], wait_timeout=10)

    def _recorder(self, name: str) -> Any:
        def record(data: dict[str, Any]) -> None:
            self.events.put((name, data))

        return record

    def send(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        answer = self.socket.call(event, data, timeout=10)
        assert isinstance(answer, dict), answer
        assert answer.get("ok"), answer
        return answer

    def wait_for(self, name: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got, data = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if got == name:
                return data
        raise AssertionError(f"no {name} within {timeout} s")

    def close(self) -> None:
        self.socket.disconnect()


def open_client(world: World, user: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str):
    """The window exactly as ``callmanager-client --url <server>`` opens it, the key from the environment."""
    from client.__main__ import open_desk, parse_args
    from client.live import ConnectionState

    monkeypatch.setenv("CALLMANAGER_CLIENT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CALLMANAGER_API_KEY", world.keys[user])
    desk = open_desk(parse_args(["--url", world.server.base_url, *args]))
    assert desk is not None
    desk.start()
    pump(
        desk.root,
        lambda: (
            desk.session.me is not None
            and desk.contacts.loaded_once
            and desk.session.state is ConnectionState.CONNECTED
        ),
        what="the first page and the live connection",
    )
    return desk


@pytest.fixture
def close_later() -> Iterator[list[Any]]:
    opened: list[Any] = []
    yield opened
    for desk in opened:
        if desk.root.winfo_exists():
            desk.close()


def row_of(desk: Any, contact_id: str) -> tuple[str, ...]:
    return cells(desk.window.table.tree, contact_id)


def test_agent_sees_a_lock_taken_by_another_agent_and_a_call_without_desk(
    display, world, tmp_path, monkeypatch, close_later
):
    desk = open_client(world, "ana", tmp_path, monkeypatch)
    close_later.append(desk)
    root, tree, panel = desk.root, desk.window.table.tree, desk.window.panel
    assert desk.window.user.cget("text") == "ana (Agente) · ventas"
    with world.server.client(world.keys["ana"]) as http:
        assert len(tree.get_children()) == len(http.get("/contacts").json())
    shown = {name for name, button in desk.window.tool_buttons.items() if button.winfo_ismapped()}
    assert shown == {"metrics"}
    assert [row_of(desk, iid)[2] for iid in tree.get_children()[:2]] == ["No contesta", "No contesta"]

    target = world.contact(4)
    beto = Agent(world.server.base_url, world.keys["beto"])
    try:
        beto.send("lock_contact", {"id": target["id"], "duration_minutes": 15})
        pump(root, lambda: row_of(desk, target["id"])[4] == "beto", timeout=5, what="beto's lock in the row")

        desk.window.table.select(target["id"])
        pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id == target["id"])
        assert panel.lock_line.cget("text").startswith("Bloqueado por beto hasta las ")
        assert panel.save_button.cget("state") == "disabled"
        assert panel.lock_button.cget("state") == "disabled"
        desk.panel.lock()
        pump(root, lambda: "beto" in panel.message.cget("text"), what="the lock refusal")

        mine = world.contact(2)
        desk.window.table.select(mine["id"])
        pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id == mine["id"])
        panel.lock_button.invoke()
        pump(root, lambda: row_of(desk, mine["id"])[4] == "ana", what="my own lock in the row")
        assert desk.panel.lock_text().startswith("Bloqueado por usted")
        desk.panel.set_field("status", "INTERESADO")
        panel.note.delete("1.0", "end")
        panel.note.insert("1.0", "Quiere el plan de 20 GB; llamar el viernes")
        panel.save_button.invoke()
        pump(
            root,
            lambda: not desk.panel.busy and desk.panel.message != "Contacto bloqueado por 10 minutos.",
            what="the save",
        )
        assert desk.panel.message == "Cambios guardados."
        pump(
            root,
            lambda: (
                row_of(desk, mine["id"])[2:4] == ("Interesado", "Quiere el plan de 20 GB; llamar el viernes")
            ),
        )

        panel.call_button.invoke()
        pump(root, lambda: panel.message.cget("text") != "Cambios guardados.", what="the call answer")
        assert panel.message.cget("text") == NO_DESK
        settle(root, 0.5)
        shot(display, root, "main", tmp_path)

        panel.tabs.set("Historial")
        pump(
            root,
            lambda: any(panel.history.item(i, "values")[1] == "ana" for i in panel.history.get_children()),
            what="my changes in the history",
        )
        history = [cells(panel.history, i) for i in panel.history.get_children()]
        assert ("ana", "Estado", "Sin gestionar", "Interesado") in [row[1:] for row in history]
        assert ("pedro", "Nombre", "", mine["name"]) in [row[1:] for row in history]
        settle(root, 0.3)
        shot(display, root, "panel_history", tmp_path)
        panel.tabs.set("Contacto")

        desk_agent = Agent(world.server.base_url, world.keys["ana"], desk="puesto-7")
        try:
            panel.call_button.invoke()
            dial = desk_agent.wait_for("dial")
            assert dial["contact_id"] == mine["id"]
            assert dial["dial"] == mine["phone_e164"].removeprefix("+506")
            pump(root, lambda: panel.message.cget("text").startswith("Llamada enviada a su puesto"))
            call = {"id": mine["id"], "call_id": dial["call_id"]}
            desk_agent.send("call_started", call)
            time.sleep(1.1)  # the server keeps only the talk time its own clock saw
            desk_agent.send("call_ended", {**call, "outcome": "answered", "duration_seconds": 1})
        finally:
            desk_agent.close()

        desk.window.tool_buttons["metrics"].invoke()
        window = desk.windows["metrics"]
        pump(root, lambda: len(window.calls.get_children()) == 8, what="my call figures")
        figures = dict(cells(window.calls, i) for i in window.calls.get_children())
        assert window.calls_label.cget("text") == "Sus llamadas"
        assert (figures["Realizadas"], figures["Exitosas"], figures["Tasa de éxito"]) == ("1", "1", "100.0 %")
        assert figures["Tiempo en llamada"] == "0:01"
        assert (window.agents, window.teams) == (None, None)
        window.destroy()

        beto.send("unlock_contact", {"id": target["id"]})
        pump(root, lambda: row_of(desk, target["id"])[4] == "", timeout=5, what="beto's release in the row")
    finally:
        beto.close()


def make_sheet(path: Path, existing_phone: str) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(["Teléfono", "Nombre", "Observaciones", "Ciudad"])
    sheet.append([88001122.0, "Rebeca Solís", "Cliente de la feria", "Cartago"])
    sheet.append(["6100-3344", "Tomás Brenes", "", "Heredia"])
    sheet.append(["123", "Número corto", "", "Alajuela"])
    sheet.append([existing_phone, "", "Actualizado desde la hoja", "San José"])
    sheet.append(["+506 7100 5566", "Elena Quirós", "Prefiere correo", "Limón"])
    sheet.append(["88001122", "Rebeca Solís", "Repetida", "Cartago"])
    book.save(path)
    return path


def test_supervisor_imports_a_sheet_to_its_report_and_exports_the_list(
    display, world, tmp_path, monkeypatch, close_later
):
    from tkinter import filedialog

    desk = open_client(world, "pedro", tmp_path, monkeypatch)
    close_later.append(desk)
    root = desk.root
    assert all(button.winfo_ismapped() for button in desk.window.tool_buttons.values())
    before = len(desk.window.table.tree.get_children())

    existing = world.contact(9)
    source = make_sheet(tmp_path / "feria.xlsx", existing["phone_national"])
    monkeypatch.setattr(filedialog, "askopenfilename", lambda **_: str(source))
    desk.window.tool_buttons["import"].invoke()
    window = desk.windows["import"]
    window.choose_button.invoke()
    vm = desk.imports[-1]
    pump(root, lambda: vm.state.value in ("preview", "failed"), what="the dry run")
    assert vm.state.value == "preview", vm.error
    assert window.status.cget("text") == (
        "Revisión de feria.xlsx: 6 filas — 3 nuevas, 1 ya existentes, 1 repetidas en el archivo, "
        "1 rechazadas. Todavía no se guardó nada."
    )
    assert len(desk.window.table.tree.get_children()) == before
    window.confirm_button.invoke()
    pump(root, lambda: vm.state.value in ("done", "failed"), what="the import")
    assert vm.state.value == "done", vm.error
    assert window.status.cget("text") == (
        "Importación terminada: 3 nuevas, 1 actualizadas, 0 sin cambios, 1 repetidas, 1 rechazadas de 6."
    )
    assert [cells(window.rows, i) for i in window.rows.get_children()] == [
        ("4", "123", "rechazada", "número demasiado corto"),
        ("7", "88001122", "combinada", "mismo teléfono que la fila 2; se combinó con ella"),
    ]
    pump(root, lambda: len(desk.window.table.tree.get_children()) == before + 3, what="imported rows live")
    pump(root, lambda: row_of(desk, existing["id"])[3] == "Actualizado desde la hoja")
    settle(root, 0.3)
    shot(display, window, "import", tmp_path)
    report = tmp_path / "informe.xlsx"
    monkeypatch.setattr(filedialog, "asksaveasfilename", lambda **_: str(report))
    window.save_button.invoke()
    pump(root, lambda: bool(vm.notice), what="the report download")
    assert vm.notice == f"Reporte guardado en {report}."
    saved = list(load_workbook(report).active.iter_rows(values_only=True))
    assert [row[:3] for row in saved[1:]] == [(4, "123", "rechazada"), (7, "88001122", "combinada")]
    window.destroy()

    desk.window.tool_buttons["export"].invoke()
    window = desk.windows["export"]
    window.format.set("csv")
    window._format("csv")
    exported = tmp_path / "contactos.csv"
    monkeypatch.setattr(filedialog, "asksaveasfilename", lambda **_: str(exported))
    window.start_button.invoke()
    pump(root, lambda: "guard" in window.status.cget("text") or "falló" in window.status.cget("text"))
    assert "guardada" in window.status.cget("text"), window.status.cget("text")
    with exported.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 1 + before + 3
    settle(root, 0.3)
    shot(display, window, "export", tmp_path)
    window.destroy()


def test_project_manager_generates_numbers_and_reads_the_metrics(
    display, world, tmp_path, monkeypatch, close_later
):
    desk = open_client(world, "pedro", tmp_path, monkeypatch)
    close_later.append(desk)
    root = desk.root
    assert all(button.winfo_ismapped() for button in desk.window.tool_buttons.values())
    shown = len(desk.window.table.tree.get_children())

    desk.window.tool_buttons["generate"].invoke()
    window = desk.windows["generate"]
    window.amount.delete(0, "end")
    window.amount.insert(0, "25")
    window.run_button.invoke()
    pump(root, lambda: len(window.rows.get_children()) == 25, what="the generated numbers")
    assert window.status.cget("text") == "25 números generados (no se guardaron)."
    numbers = [cells(window.rows, i) for i in window.rows.get_children()]
    assert all(
        len(number) == 8 and formatted == f"{number[:4]}-{number[4:]}" for number, formatted, _ in numbers
    )
    settle(root, 0.3)
    shot(display, window, "generate", tmp_path)
    window.save.select()
    window._save_toggled()
    window.amount.delete(0, "end")
    window.amount.insert(0, "5")
    window.run_button.invoke()
    pump(
        root, lambda: window.status.cget("text").startswith("5 números generados;"), what="the saved numbers"
    )
    assert window.status.cget("text") == "5 números generados; 5 guardados como contactos."
    pump(root, lambda: len(desk.window.table.tree.get_children()) == shown + 5, what="saved numbers live")
    window.destroy()

    desk.window.tool_buttons["metrics"].invoke()
    window = desk.windows["metrics"]
    pump(root, lambda: len(window.by_status.get_children()) == STATUS_COUNT, what="the metrics")
    by_status = dict(cells(window.by_status, i) for i in window.by_status.get_children())
    assert sum(int(v) for v in by_status.values()) == shown + 5
    pump(root, lambda: window.agents is not None, what="the call figures per agent")
    assert window.calls_label.cget("text") == "Llamadas de todos los equipos"
    assert {cells(window.agents, i)[:2] for i in window.agents.get_children()} == {
        ("ana", "ventas"),
        ("beto", "ventas"),
    }
    settle(root, 0.5)
    shot(display, window, "metrics", tmp_path)
    window.destroy()


def test_team_lead_force_releases_an_agents_lock(display, world, tmp_path, monkeypatch, close_later):
    target = world.contact(11)
    with httpx.Client(base_url=world.server.base_url, headers={"X-API-Key": world.keys["beto"]}) as http:
        assert http.post(f"/contacts/{target['id']}/lock", json={"duration_minutes": 30}).status_code == 200
    desk = open_client(world, "lucia", tmp_path, monkeypatch, "--lang", "en")
    close_later.append(desk)
    root, panel = desk.root, desk.window.panel
    visible = {name for name, button in desk.window.tool_buttons.items() if button.winfo_ismapped()}
    assert visible == {"import", "export", "metrics", "desks", "campaigns"}
    assert row_of(desk, target["id"])[4] == "beto"
    desk.window.table.select(target["id"])
    pump(root, lambda: desk.panel.contact is not None and desk.panel.contact.id == target["id"])
    assert panel.lock_line.cget("text").startswith("Locked by beto until")
    assert panel.release_button.cget("text") == "🔓 Force release"
    settle(root, 0.3)
    shot(display, root, "lead_locked_en", tmp_path)
    panel.release_button.invoke()
    pump(root, lambda: row_of(desk, target["id"])[4] == "", what="the forced release in the row")
    assert panel.lock_line.cget("text") == "Free"


def test_first_run_dialog_checks_the_key_with_the_server(display, world, tmp_path):
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
        frame.url.insert(0, world.server.base_url)
        frame.key.insert(0, "cm_000000000000_no-es-una-llave")
        frame.submit_button.invoke()
        pump(root, lambda: vm.state is SetupState.FAILED, what="the refused key")
        assert store.load().server_url == ""
        frame.key.delete(0, "end")
        frame.key.insert(0, world.keys["lucia"])
        frame.submit_button.invoke()
        pump(root, lambda: vm.state is SetupState.SAVED, what="the accepted key")
        assert frame.message.cget("text").startswith("Conectado como lucia (Líder de equipo).")
        assert store.load().server_url == world.server.base_url
        assert FileKeyStore(tmp_path).load(world.server.base_url) == world.keys["lucia"]
        settle(root, 0.2)
        shot(display, root, "setup", tmp_path)
    finally:
        runner.shutdown()
        dispatcher.detach()
        root.destroy()
        release_tk_garbage()
