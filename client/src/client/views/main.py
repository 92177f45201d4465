"""The main window: filters and tools on top, the contact table and panel side by side, a status bar."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from tkinter import ttk

import customtkinter as ctk

from client.i18n import Translator
from client.live import ConnectionState
from client.viewmodels.call import CallViewModel
from client.viewmodels.catalogue import StatusCatalogue
from client.viewmodels.contacts import ContactListViewModel
from client.viewmodels.generator import operator_name
from client.viewmodels.panel import ContactPanelViewModel
from client.viewmodels.queue import NextContactViewModel
from client.viewmodels.session import SessionViewModel
from client.views.panel import ContactPanel
from client.views.table import ContactTable
from client.views.unsaved import UnsavedDialog

OPERATORS = ("kolbi", "telefonica", "claro")
STATE_COLOURS = {
    ConnectionState.CONNECTED: "#2e7d32",
    ConnectionState.CONNECTING: "#f9a825",
    ConnectionState.RECONNECTING: "#f9a825",
    ConnectionState.DISCONNECTED: "#c62828",
}


@dataclass
class ToolOpeners:
    """What the tool buttons open (built by the composition root)."""

    import_: Callable[[], None]
    export: Callable[[], None]
    generate: Callable[[], None]
    metrics: Callable[[], None]
    desks: Callable[[], None]
    callbacks: Callable[[], None] = lambda: None
    campaigns: Callable[[], None] = lambda: None


class MainWindow(ctk.CTkFrame):  # type: ignore[misc]
    """Shows the session, list and panel view models; binds the keyboard shortcuts."""

    def __init__(
        self,
        master: ctk.CTk,
        translate: Translator,
        session: SessionViewModel,
        contacts: ContactListViewModel,
        panel: ContactPanelViewModel,
        tools: ToolOpeners,
        calls: CallViewModel,
        queue: NextContactViewModel | None = None,
    ) -> None:
        super().__init__(master, fg_color="transparent")
        self.t = translate
        self.session = session
        self.contacts = contacts
        self.panel_vm = panel
        self.unsaved: UnsavedDialog | None = None
        self.calls = calls
        self.queue = queue
        self._status_codes: dict[str, str] = {}

        bar = ctk.CTkFrame(self)
        bar.pack(fill="x", padx=6, pady=(6, 2))
        self.filter_labels: dict[str, ctk.CTkLabel] = {}

        def labelled(key: str) -> ctk.CTkFrame:
            """A small frame with the filter's name above it (the filter goes in the frame)."""
            cell = ctk.CTkFrame(bar, fg_color="transparent")
            cell.pack(side="left", padx=4, pady=(2, 6))
            self.filter_labels[key] = ctk.CTkLabel(
                cell, text=translate(key), anchor="w", height=16, font=ctk.CTkFont(size=11)
            )
            self.filter_labels[key].pack(fill="x", padx=2)
            return cell

        self.search = ctk.CTkEntry(
            labelled("filter.search_label"), placeholder_text=translate("filter.search"), width=210
        )
        self.search.pack()
        self.search.bind("<KeyRelease>", self._typed)
        self.status_filter = ctk.CTkOptionMenu(
            labelled("filter.status"),
            values=[translate("filter.all")],
            command=self._status_chosen,
            width=150,
        )
        self.status_filter.pack()
        self._operators = {operator_name(code): code for code in OPERATORS}
        self.operator_filter = ctk.CTkOptionMenu(
            labelled("filter.operator"),
            values=[translate("filter.all"), *self._operators],
            command=self._operator_chosen,
            width=110,
        )
        self.operator_filter.pack()
        self.list_filter = ctk.CTkEntry(
            labelled("filter.list"), placeholder_text=translate("filter.list_hint"), width=100
        )
        self.list_filter.pack()
        self.list_filter.bind("<Return>", self._list_entered)
        self.list_filter.bind("<FocusOut>", self._list_entered)
        ctk.CTkButton(bar, text=translate("tool.reload"), width=90, command=contacts.reload).pack(
            side="left", padx=4, pady=(18, 6)
        )
        self.tool_buttons = {
            "campaigns": ctk.CTkButton(
                bar, text=translate("tool.campaigns"), width=100, command=tools.campaigns
            ),
            "desks": ctk.CTkButton(bar, text=translate("tool.desks"), width=100, command=tools.desks),
            "metrics": ctk.CTkButton(bar, text=translate("tool.metrics"), width=100, command=tools.metrics),
            "generate": ctk.CTkButton(
                bar, text=translate("tool.generate"), width=100, command=tools.generate
            ),
            "export": ctk.CTkButton(bar, text=translate("tool.export"), width=100, command=tools.export),
            "import": ctk.CTkButton(bar, text=translate("tool.import"), width=100, command=tools.import_),
        }

        body = ttk.PanedWindow(self, orient="horizontal")
        body.pack(fill="both", expand=True, padx=6, pady=2)
        self.table = ContactTable(body, contacts, translate)
        self.table.on_select = self._selected
        self.panel = ContactPanel(body, panel, translate, session.catalogue, calls)
        self.panel.next_button.configure(command=self.next_contact)
        self.panel.queue_button.configure(command=self.queue_next)
        self.panel.callbacks_button.configure(command=tools.callbacks)
        if queue is not None:
            queue.on_change = self._queue_changed
            queue.on_opened = lambda claim: self.show_in_list(claim.contact.id)
        calls.on_wrapped = lambda _contact: self.panel.queue_button.focus_set()
        body.add(self.table, weight=3)
        body.add(self.panel, weight=2)
        self._body = body
        self._sash_placed = False
        body.bind("<Configure>", self._place_sash)

        status = ctk.CTkFrame(self, height=28)
        status.pack(fill="x", padx=6, pady=(2, 6))
        self.connection_dot = ctk.CTkLabel(status, text="●", width=16)
        self.connection_dot.pack(side="left", padx=(8, 2))
        self.connection = ctk.CTkLabel(status, text="")
        self.connection.pack(side="left", padx=(0, 12))
        self.user = ctk.CTkLabel(status, text="")
        self.user.pack(side="left", padx=12)
        self.count = ctk.CTkLabel(status, text="")
        self.count.pack(side="left", padx=12)
        self.clock = ctk.CTkLabel(status, text="")
        self.clock.pack(side="right", padx=8)
        self.notice = ctk.CTkLabel(status, text="", text_color=("#8a5a00", "#ffcc80"))
        self.notice.pack(side="right", padx=12)

        contacts.on_summary = self._count
        contacts.on_error = self.show_notice
        session.listeners.append(self.refresh_session)
        session.catalogue_listeners.append(self._catalogue)
        panel.on_saved = contacts.patch
        calls.on_saved = contacts.patch
        panel.on_deleted = lambda iid: contacts.apply("contact_deleted", {"id": iid})
        self._bind_keys(master)
        self._catalogue(session.catalogue)
        self.refresh_session()
        self._tick()

    def _place_sash(self, _event: object) -> None:
        width = self._body.winfo_width()
        if not self._sash_placed and width > 200:
            self._sash_placed = True
            self._body.sashpos(0, int(width * 0.62))  # type: ignore[no-untyped-call]

    def _bind_keys(self, root: tk.Misc) -> None:
        root.bind_all("<Control-f>", lambda _e: self.search.focus_set())
        root.bind_all("<Escape>", self._clear_search)
        root.bind_all("<F5>", lambda _e: self.panel.call())
        root.bind_all("<F6>", lambda _e: self.queue_next())
        root.bind_all("<F8>", lambda _e: self.calls.hangup())
        root.bind_all("<Control-n>", lambda _e: self.next_contact())
        root.bind_all("<Control-s>", lambda _e: self.save())
        for number in range(1, 10):
            root.bind_all(f"<Alt-Key-{number}>", self._status_key(number))

    def _status_key(self, number: int) -> Callable[[object], None]:
        """Alt+``number``: the open contact's status becomes the catalogue's ``number``-th."""
        return lambda _event: self.panel.status_hotkey(number)

    def save(self) -> None:
        """Ctrl+S: the call's wrap-up while it is open, else the contact's fields."""
        if self.calls.wrapup is not None:
            self.panel.callbox.save()
        else:
            self.panel.save()

    def _typed(self, _event: object) -> None:
        self.contacts.set_search(self.search.get())

    def _clear_search(self, _event: object) -> None:
        self.search.delete(0, "end")
        self.contacts.set_search("")

    def _status_chosen(self, label: str) -> None:
        self.contacts.set_filters(status=self._status_codes.get(label, ""))

    def _operator_chosen(self, value: str) -> None:
        self.contacts.set_filters(operator=self._operators.get(value, value if value in OPERATORS else ""))

    def _list_entered(self, _event: object) -> None:
        self.contacts.set_filters(list_name=self.list_filter.get().strip())

    def _selected(self, iid: str) -> None:
        contact = self.contacts.contacts.get(iid)
        current = self.panel_vm.contact
        if contact is None or (current is not None and current.id == iid):
            return

        def back() -> None:
            if current is not None:
                self.table.select(current.id)

        self.guard(lambda: self.panel_vm.open(contact), cancelled=back)

    def next_contact(self) -> None:
        """Open the contact after the selected one (Siguiente; asks first when typing is unsaved)."""
        current = self.panel_vm.contact.id if self.panel_vm.contact else None
        following = self.contacts.next_id(current)
        if following is not None:
            self.table.select(following)

    def queue_next(self) -> None:
        """«Siguiente» (F6): the work queue's next contact, locked to me; unsaved typing is asked about
        first, and a call or its wrap-up still open is finished first."""
        queue = self.queue
        if queue is None or queue.busy or queue.refused():
            return
        self.guard(queue.next)

    def _queue_changed(self) -> None:
        queue = self.queue
        busy = queue is not None and queue.busy
        self.panel.queue_button.configure(
            text=self.t("panel.queue_asking" if busy else "panel.queue_next"),
            state="disabled" if busy else "normal",
        )

    def show_in_list(self, contact_id: str) -> None:
        """Select the queue's contact in the table when the list holds it (the panel shows it either way)."""
        if contact_id in self.contacts.contacts:
            self.table.select(contact_id)

    def guard(self, proceed: Callable[[], None], cancelled: Callable[[], None] = lambda: None) -> None:
        """Run ``proceed`` now, or after «Guardar» saved or «Descartar» dropped the panel's unsaved typing;
        «Cancelar» leaves everything as it was."""
        self.panel.remember()
        vm = self.panel_vm
        if not vm.dirty or vm.contact is None:
            proceed()
            return
        if self.unsaved is not None and self.unsaved.winfo_exists():
            cancelled()
            return
        contact_id = vm.contact.id

        def answered(choice: str) -> None:
            self.unsaved = None
            if choice == "discard":
                vm.discard()
                proceed()
            elif choice == "save":
                self.panel.save()
                self._after_save(contact_id, proceed, cancelled)
            else:
                cancelled()

        name = vm.contact.name or vm.contact.display_phone
        self.unsaved = UnsavedDialog(self, self.t, name, answered)

    def _after_save(
        self, contact_id: str, proceed: Callable[[], None], cancelled: Callable[[], None]
    ) -> None:
        """Go on once the save went through; stay (the panel says why) if it did not."""
        vm = self.panel_vm
        if vm.busy:
            self.after(50, lambda: self._after_save(contact_id, proceed, cancelled))
        elif vm.contact is not None and vm.contact.id == contact_id and vm.dirty:
            cancelled()
        else:
            proceed()

    def _catalogue(self, catalogue: StatusCatalogue) -> None:
        self._status_codes = {catalogue.label(c, self.t.language): c for c in catalogue.codes()}
        self.status_filter.configure(values=[self.t("filter.all"), *self._status_codes])
        self.table.colour_rows(catalogue)
        self.panel.set_catalogue(catalogue)
        self.contacts.set_catalogue(catalogue)

    def _count(self, text: str) -> None:
        self.session.set_count(text)

    def show_notice(self, text: str) -> None:
        """A one-line notice in the status bar."""
        self.notice.configure(text=text)

    def refresh_session(self) -> None:
        """Redraw the status bar and show the tools the role may use."""
        session = self.session
        self.connection.configure(text=session.connection_text)
        self.connection_dot.configure(text_color=STATE_COLOURS[session.state])
        self.user.configure(text=session.user_text)
        self.count.configure(text=session.count_text)
        notice = session.notice or session.catalogue_notice
        if notice:
            self.notice.configure(text=notice)
        caps = session.capabilities
        visible = {
            "import": caps.import_export,
            "export": caps.import_export,
            "generate": caps.generate,
            "metrics": True,  # an agent sees their own call figures, supervisors more
            "desks": caps.metrics,  # TeamLead and up: their team's desks, or every desk
            "campaigns": caps.metrics,  # TeamLead and up
        }
        for name, button in self.tool_buttons.items():
            if visible[name]:
                button.pack(side="right", padx=4, pady=(18, 6))
            else:
                button.pack_forget()

    def _tick(self) -> None:
        self.clock.configure(text=self.session.clock_text(datetime.now().astimezone()))
        self.panel.tick()
        self.after(1000, self._tick)
