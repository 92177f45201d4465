"""The client's composition root: builds the gateway API, live feed, dispatcher, view models and windows."""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import customtkinter as ctk

from client.api import Gateway, GatewayApi, error_text
from client.dispatch import Dispatcher, ThreadRunner, TkScheduler
from client.drafts import DraftStore
from client.i18n import Translator
from client.live import ConnectionState, LiveFeed, NotConnected, SocketLike, real_socket
from client.models import Contact
from client.viewmodels.call import CallPhase, CallViewModel
from client.viewmodels.callbacks import CallbacksViewModel
from client.viewmodels.campaigns import CampaignsViewModel
from client.viewmodels.contacts import ContactListViewModel
from client.viewmodels.desks import DesksViewModel
from client.viewmodels.exporter import ExportViewModel
from client.viewmodels.generator import GeneratorViewModel
from client.viewmodels.importer import ImportViewModel
from client.viewmodels.metrics import MetricsViewModel
from client.viewmodels.panel import ContactPanelViewModel
from client.viewmodels.queue import NextContactViewModel
from client.viewmodels.session import SessionViewModel
from client.views.main import MainWindow, ToolOpeners
from client.views.tools import DesksWindow, ExportWindow, GenerateWindow, ImportWindow, MetricsWindow
from client.views.worklists import CallbacksWindow, CampaignsWindow


@dataclass
class Desk:
    """One running client window and everything behind it (tests and the benchmark reach in here)."""

    root: ctk.CTk
    api: Gateway
    dispatcher: Dispatcher
    runner: ThreadRunner
    translate: Translator
    session: SessionViewModel
    contacts: ContactListViewModel
    panel: ContactPanelViewModel
    calls: CallViewModel
    window: MainWindow
    queue: NextContactViewModel
    callbacks: CallbacksViewModel
    live: LiveFeed | None = None
    imports: list[ImportViewModel] = field(default_factory=list)
    windows: dict[str, ctk.CTkToplevel] = field(default_factory=dict)
    first_page_wait_ms: int = 1500

    def route(self, name: str, payload: Mapping[str, Any]) -> None:
        """Hand one live event to every view model it concerns (on the Tk thread)."""
        self.contacts.apply(name, payload)
        self.panel.apply(name, payload)
        self.calls.apply(name, payload)
        self.callbacks.apply(name, payload)
        for vm in self.imports:
            vm.apply(name, payload)
        board = self.windows.get("desks")
        if name == "desk_state" and isinstance(board, DesksWindow) and board.winfo_exists():
            board.vm.apply(name, payload)
        if name == "resync":
            self.window.show_notice(self.translate("status.resynced"))
        elif name == "error":
            self.window.show_notice(str(payload.get("message") or payload.get("data") or ""))

    def open_tool(self, name: str) -> None:
        """Open (or raise) one supervisor tool window."""
        existing = self.windows.get(name)
        if existing is not None and existing.winfo_exists():
            existing.deiconify()
            existing.lift()
            return
        scheduler = TkScheduler(self.root)
        window: ctk.CTkToplevel
        if name == "import":
            vm = ImportViewModel(self.api, self.runner, scheduler, self.translate)
            self.imports.append(vm)
            window = ImportWindow(self.root, vm, self.translate)
        elif name == "export":
            export_vm = ExportViewModel(self.api, self.runner, self.translate, self.dispatcher.post)
            window = ExportWindow(self.root, export_vm, self.translate, self.contacts.query)
        elif name == "generate":
            window = GenerateWindow(
                self.root, GeneratorViewModel(self.api, self.runner, self.translate), self.translate
            )
        elif name == "callbacks":
            window = CallbacksWindow(self.root, self.callbacks, self.translate)
        elif name == "campaigns":
            me = self.session.me
            campaigns_vm = CampaignsViewModel(
                self.api,
                self.runner,
                self.translate,
                known_lists=lambda: {c.list for c in self.contacts.contacts.values()},
                known_teams=lambda: [me.team] if me is not None and me.team else [],
                can_manage=self.session.capabilities.manage_campaigns,
            )
            window = CampaignsWindow(self.root, campaigns_vm, self.translate)
        elif name == "desks":
            board = DesksViewModel(
                self.api, self.runner, self.translate, known_contact=self.contacts.contacts.get
            )
            figures = MetricsViewModel(
                self.api, self.runner, self.translate, self.session.catalogue, supervisor=False
            )
            window = DesksWindow(self.root, board, figures, self.translate)
        else:
            metrics_vm = MetricsViewModel(
                self.api,
                self.runner,
                self.translate,
                self.session.catalogue,
                supervisor=self.session.capabilities.metrics,
                server_figures=self.session.capabilities.all_metrics,
            )
            window = MetricsWindow(self.root, metrics_vm, self.translate)
        self.windows[name] = window
        window.after(100, window.lift)

    def start(self) -> None:
        """Ask who we are and connect the live feed; the first page loads once it is connected."""
        # Loading after the connect means no change slips between page and feed; a slow feed does not
        # hold the list back for more than first_page_wait_ms.
        self.session.start()
        self.calls.refresh_desks()
        if self.live is None:
            self.contacts.reload()
            return
        self.live.start()
        self.root.after(self.first_page_wait_ms, self._load_if_idle)

    def open_contact(self, contact_id: str) -> None:
        """Open one contact by id in the panel (a callback clicked), after the unsaved-typing prompt."""

        def opened(contact: Contact) -> None:
            self.window.guard(lambda: self._open_locked(contact))

        def failed(exc: Exception) -> None:
            self.window.show_notice(error_text(exc))

        self.runner.submit(lambda: self.api.get_contact(contact_id), opened, failed)

    def _open_locked(self, contact: Contact) -> None:
        self.panel.open(contact)
        self.panel.lock()  # a callback is worked like a queue contact: locked to me
        self.window.show_in_list(contact.id)

    def _load_if_idle(self) -> None:
        if not self.contacts.loaded_once and not self.contacts.loading:
            self.contacts.reload()

    def connection_changed(self, state: ConnectionState, detail: str) -> None:
        """Show the connection; once connected, read the desks again (``desk_state`` is not replayed)."""
        self.session.set_connection(state, detail)
        if state is ConnectionState.CONNECTED:
            self.calls.refresh_desks()
            board = self.windows.get("desks")
            if isinstance(board, DesksWindow) and board.winfo_exists():
                board.vm.refresh()

    def fresh_connection(self) -> None:
        """The feed connected with no position to resume from: read the list (and open contact) anew."""
        self.contacts.reload()
        if self.panel.contact is not None:
            self.panel.open(self.panel.contact)

    def close(self) -> None:
        """Stop the live feed and the workers, then the window."""
        if self.live is not None:
            self.live.stop()
        self.runner.shutdown()
        self.dispatcher.detach()
        self.root.destroy()
        release_tk_garbage()


def release_tk_garbage() -> None:
    """Collect the destroyed widgets' Tk objects (fonts, images) here, on the Tk thread.

    Left to the cyclic collector they may be finalised on a worker thread, whose call into Tcl then waits
    for a main loop that no longer runs: the process hangs on exit until the request times out.
    """
    gc.collect()


def build_desk(
    url: str,
    api_key: str,
    *,
    language: str = "es",
    api: Gateway | None = None,
    live: bool = True,
    socket_factory: Callable[[], SocketLike] = real_socket,
    root: ctk.CTk | None = None,
    drafts: DraftStore | None = None,
) -> Desk:
    """Build the main window for ``url`` with ``api_key`` (not started: call ``start()``)."""
    translate = Translator(language)
    root = root or ctk.CTk()
    root.title(translate("app.title"))
    root.geometry("1280x760")
    root.minsize(900, 500)
    dispatcher = Dispatcher()
    dispatcher.attach(root)
    runner = ThreadRunner(dispatcher)
    scheduler = TkScheduler(root)
    gateway = api or GatewayApi(url, api_key)
    session = SessionViewModel(gateway, runner, translate)
    contacts = ContactListViewModel(gateway, runner, scheduler, translate, session.catalogue)
    panel = ContactPanelViewModel(
        gateway,
        runner,
        translate,
        me=lambda: session.me,
        capabilities=lambda: session.capabilities,
        drafts=drafts,
    )
    calls = CallViewModel(gateway, runner, translate, me=lambda: session.me, panel=panel)
    holder: list[Desk] = []

    def ask_live(data: Mapping[str, Any]) -> Any:
        feed = holder[0].live if holder else None
        if feed is None:
            raise NotConnected("queue_next")
        return feed.request("queue_next", data)

    queue = NextContactViewModel(
        gateway,
        runner,
        translate,
        panel=panel,
        live=ask_live if live else None,
        blocked=lambda: translate("queue.finish_call") if calls.phase is not CallPhase.IDLE else "",
    )
    callbacks = CallbacksViewModel(gateway, runner, translate, me=lambda: session.me)
    tools = ToolOpeners(
        import_=lambda: holder[0].open_tool("import"),
        export=lambda: holder[0].open_tool("export"),
        generate=lambda: holder[0].open_tool("generate"),
        metrics=lambda: holder[0].open_tool("metrics"),
        desks=lambda: holder[0].open_tool("desks"),
        callbacks=lambda: holder[0].open_tool("callbacks"),
        campaigns=lambda: holder[0].open_tool("campaigns"),
    )
    window = MainWindow(root, translate, session, contacts, panel, tools, calls, queue)
    window.pack(fill="both", expand=True)
    desk = Desk(
        root,
        gateway,
        dispatcher,
        runner,
        translate,
        session,
        contacts,
        panel,
        calls,
        window,
        queue,
        callbacks,
    )
    callbacks.open_contact = desk.open_contact
    callbacks.on_reminder = window.show_notice
    dispatcher.on_error = lambda exc: window.show_notice(error_text(exc))
    holder.append(desk)
    if live:
        desk.live = LiveFeed(
            url,
            api_key,
            on_event=lambda name, payload: dispatcher.post(desk.route, name, payload),
            on_state=lambda state, detail: dispatcher.post(desk.connection_changed, state, detail),
            socket_factory=socket_factory,
            on_fresh=lambda: dispatcher.post(desk.fresh_connection),
        )
    else:
        session.set_connection(ConnectionState.DISCONNECTED, "sin conexión en vivo")
    root.protocol("WM_DELETE_WINDOW", lambda: window.guard(desk.close))
    return desk
