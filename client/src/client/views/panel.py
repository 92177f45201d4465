"""The contact panel: fields, lock line, actions and the history tab of the open contact.

Keyboard first: Tab goes Nombre → Estado → Nota → the buttons (Tab leaves Nota; Ctrl+Tab types a tab in
it); on Estado, ↑ ↓ change the status and Space or Enter open the list; Alt+1 … Alt+9 choose a status from
anywhere (the main window binds them); a focused button runs with Space or Enter."""

from __future__ import annotations

import tkinter as tk
from tkinter import messagebox, ttk

import customtkinter as ctk

from client.i18n import Translator
from client.models import parse_time
from client.viewmodels.call import CallViewModel
from client.viewmodels.catalogue import StatusCatalogue
from client.viewmodels.generator import operator_name
from client.viewmodels.panel import (
    MERGEABLE,
    Choice,
    ConflictRow,
    ContactPanelViewModel,
    LockState,
    MessageKind,
)
from client.views.call import CallBox

REMEMBER_AFTER_MS = 400
"""Typing is written to the drafts file this long after the last key."""
CHOSEN = "#2e7d32"
FOCUS_RING = "#f9a825"
FOCUSED_MENU = ("#0d47a1", "#0d47a1")
HINT_COLOUR = ("#555555", "#aaaaaa")
CALL_COLOUR = "#2e7d32"
DNC_COLOUR = "#8e8e8e"
"""Llamar greyed out while the open contact is on the do-not-call list."""

MESSAGE_COLOURS = {
    MessageKind.INFO: ("#1b5e20", "#a5d6a7"),
    MessageKind.WARNING: ("#8a5a00", "#ffcc80"),
    MessageKind.ERROR: ("#b71c1c", "#ef9a9a"),
}


class ContactPanel(ctk.CTkFrame):  # type: ignore[misc]
    """Shows ``ContactPanelViewModel`` and the call box of ``CallViewModel``; every button calls one
    view-model method."""

    def __init__(
        self,
        master: tk.Misc,
        vm: ContactPanelViewModel,
        translate: Translator,
        catalogue: StatusCatalogue,
        calls: CallViewModel,
    ) -> None:
        super().__init__(master)
        self.vm = vm
        self.calls = calls
        self.t = translate
        self.catalogue = catalogue
        self._showing: str | None = None
        self._replaced = vm.fields_replaced
        self._remember_job: str | None = None
        self._conflict_shown: tuple[tuple[str, str], ...] = ()
        self.conflict_buttons: dict[tuple[str, Choice], ctk.CTkButton] = {}
        self.title = ctk.CTkLabel(
            self, text=translate("panel.empty"), font=ctk.CTkFont(size=18, weight="bold")
        )
        self.title.pack(anchor="w", padx=12, pady=(10, 0))
        self.phone = ctk.CTkLabel(self, text="", font=ctk.CTkFont(size=15))
        self.phone.pack(anchor="w", padx=12)
        self.dnc_badge = ctk.CTkLabel(
            self,
            text="",
            anchor="w",
            justify="left",
            wraplength=440,
            text_color="#ffffff",
            fg_color="#b71c1c",
            corner_radius=6,
            font=ctk.CTkFont(weight="bold"),
        )
        self.details = ctk.CTkLabel(self, text="", anchor="w", justify="left", wraplength=440)
        self.details.pack(anchor="w", fill="x", padx=12)
        self.callbox = CallBox(self, calls, translate, catalogue)
        self.callbox.pack(fill="x", padx=8)
        self.keys_help = ctk.CTkLabel(
            self,
            text=translate("panel.keys_help"),
            anchor="w",
            justify="left",
            wraplength=440,
            text_color=HINT_COLOUR,
            font=ctk.CTkFont(size=11),
        )
        self.keys_help.pack(side="bottom", fill="x", padx=14, pady=(0, 4))
        self.message = ctk.CTkLabel(self, text="", anchor="w", justify="left", wraplength=440)
        self.message.pack(side="bottom", fill="x", padx=14, pady=(0, 6))
        self.extend_button = ctk.CTkButton(
            self, text=translate("lock.extend"), command=vm.extend, width=130, fg_color="#8a5a00"
        )
        self.tabs = ctk.CTkTabview(self)
        self.tabs.pack(fill="both", expand=True, padx=8, pady=4)
        edit = self.tabs.add(translate("panel.tab_edit"))
        history = self.tabs.add(translate("panel.tab_history"))

        ctk.CTkLabel(edit, text=translate("panel.name")).grid(row=0, column=0, sticky="w", padx=6, pady=4)
        self.name = ctk.CTkEntry(edit)
        self.name.grid(row=0, column=1, sticky="ew", padx=6, pady=4)
        ctk.CTkLabel(edit, text=translate("panel.status")).grid(row=1, column=0, sticky="nw", padx=6, pady=4)
        status_cell = ctk.CTkFrame(edit, fg_color="transparent")
        status_cell.grid(row=1, column=1, sticky="ew", padx=6, pady=(4, 0))
        self.status = ctk.CTkOptionMenu(status_cell, values=self._labels(), command=self._status_chosen)
        self.status.pack(fill="x")
        self._menu_colours = (self.status.cget("fg_color"), self.status.cget("button_color"))
        self.status_hint = ctk.CTkLabel(
            status_cell, text=translate("panel.status_keys"), text_color=HINT_COLOUR, anchor="w", height=18
        )
        self.status_hint.pack(fill="x")
        self._keyboard_status()
        ctk.CTkLabel(edit, text=translate("panel.note")).grid(row=2, column=0, sticky="nw", padx=6, pady=4)
        note_cell = ctk.CTkFrame(edit, fg_color="transparent")
        note_cell.grid(row=2, column=1, sticky="nsew", padx=6, pady=4)
        self.note = ctk.CTkTextbox(note_cell, height=110)
        self.note.pack(fill="both", expand=True)
        ctk.CTkLabel(
            note_cell, text=translate("panel.note_keys"), text_color=HINT_COLOUR, anchor="w", height=18
        ).pack(fill="x")
        self._keyboard_note()
        self.lock_line = ctk.CTkLabel(edit, text="", anchor="w", justify="left")
        self.lock_line.grid(row=3, column=0, columnspan=2, sticky="ew", padx=6, pady=(6, 2))
        self.conflict_box = ctk.CTkFrame(edit, border_width=2, border_color="#8a5a00")
        self.conflict_box.grid(row=5, column=0, columnspan=2, sticky="ew", padx=4, pady=4)
        self.conflict_box.grid_remove()
        for field in (self.name, self.note._textbox):
            field.bind("<KeyRelease>", self._typed, add="+")
        edit.columnconfigure(1, weight=1)
        edit.rowconfigure(2, weight=1)

        buttons = ctk.CTkFrame(edit, fg_color="transparent")
        buttons.grid(row=4, column=0, columnspan=2, sticky="ew", padx=2, pady=4)
        self.save_button = ctk.CTkButton(buttons, text=translate("panel.save"), command=self.save, width=130)
        self.call_button = ctk.CTkButton(
            buttons, text=translate("panel.call"), command=self.call, width=110, fg_color=CALL_COLOUR
        )
        self.lock_button = ctk.CTkButton(buttons, text=translate("panel.lock"), command=vm.lock, width=130)
        self.release_button = ctk.CTkButton(
            buttons, text=translate("panel.release"), command=vm.release, width=110
        )
        self.delete_button = ctk.CTkButton(
            buttons,
            text=translate("panel.delete"),
            command=self.confirm_delete,
            width=110,
            fg_color="#b71c1c",
        )
        self.queue_button = ctk.CTkButton(
            buttons, text=translate("panel.queue_next"), width=130, fg_color="#0d47a1"
        )
        self.next_button = ctk.CTkButton(buttons, text=translate("panel.next"), width=130)
        self.callbacks_button = ctk.CTkButton(buttons, text=translate("tool.callbacks"), width=110)
        layout = (
            (self.save_button, self.call_button),
            (self.queue_button, self.callbacks_button),
            (self.lock_button, self.release_button),
            (self.next_button, self.delete_button),
        )
        for row, group in enumerate(layout):
            for index, button in enumerate(group):
                button.grid(row=row, column=index, padx=4, pady=2, sticky="ew")
                _keyboard_button(button)

        columns = ("when", "who", "what", "old", "new")
        self.history = ttk.Treeview(history, columns=columns, show="headings", height=12)
        for column, width in zip(columns, (100, 60, 80, 95, 110), strict=True):
            self.history.heading(column, text=translate(f"history.{column}"), anchor="w")
            self.history.column(
                column, width=width, minwidth=40, anchor="w", stretch=column in ("old", "new")
            )
        self.history.pack(fill="both", expand=True, padx=4, pady=4)
        vm.on_change = self.refresh
        calls.on_change = self.refresh_call
        calls.sync_drafts = self._pull_fields
        self.refresh()
        self.refresh_call()

    # -- keyboard -----------------------------------------------------------------------------------

    def _keyboard_status(self) -> None:
        """Estado in the Tab order: ↑ ↓ step through the statuses, Space or Enter open the list."""
        canvas = self.status._canvas
        canvas.configure(takefocus=1)
        canvas.bind("<Up>", lambda _e: self.step_status(-1))
        canvas.bind("<Down>", lambda _e: self.step_status(1))
        for key in ("<space>", "<Return>"):
            canvas.bind(key, self._open_status)
        canvas.bind(
            "<FocusIn>", lambda _e: self.status.configure(fg_color=FOCUSED_MENU, button_color=FOCUSED_MENU)
        )
        canvas.bind(
            "<FocusOut>",
            lambda _e: self.status.configure(
                fg_color=self._menu_colours[0], button_color=self._menu_colours[1]
            ),
        )

    def _keyboard_note(self) -> None:
        """Tab leaves Nota (Shift+Tab goes back); Ctrl+Tab types a tab."""
        text = self.note._textbox
        text.bind("<Tab>", lambda _e: _focus(text.tk_focusNext()))
        for key in ("<Shift-Tab>", "<ISO_Left_Tab>"):
            text.bind(key, lambda _e: _focus(text.tk_focusPrev()))
        text.bind("<Control-Tab>", self._type_tab)

    def _type_tab(self, _event: object) -> str:
        self.note.insert("insert", "\t")
        self._typed()
        return "break"

    def _status_editable(self) -> bool:
        return self.vm.contact is not None and self.vm.lock_state() is not LockState.OTHER

    def _open_status(self, _event: object) -> str:
        if self._status_editable():
            self.status._open_dropdown_menu()
        return "break"

    def step_status(self, delta: int) -> str:
        """Estado one up (``-1``) or down (``1``) the catalogue's list."""
        codes = list(self.catalogue.codes())
        current = self.vm.draft.get("status", "")
        index = codes.index(current) if current in codes else -1
        if codes:
            self.choose_status(codes[(index + delta) % len(codes)])
        return "break"

    def status_hotkey(self, number: int) -> None:
        """Alt+``number``: the catalogue's ``number``-th status (from 1)."""
        codes = list(self.catalogue.codes())
        if 1 <= number <= len(codes):
            self.choose_status(codes[number - 1])

    def choose_status(self, code: str) -> None:
        """Put ``code`` in Estado as if chosen from its list (not while someone else holds the lock)."""
        if not self._status_editable():
            return
        label = self.catalogue.label(code, self.t.language)
        self.status.set(label)
        self._status_chosen(label)

    def _labels(self) -> list[str]:
        return [self.catalogue.label(code, self.t.language) for code in self.catalogue.codes()]

    def set_catalogue(self, catalogue: StatusCatalogue) -> None:
        """Offer the statuses of a new catalogue."""
        self.catalogue = catalogue
        self.status.configure(values=self._labels())
        self.callbox.set_catalogue(catalogue)
        self.refresh()

    def _status_chosen(self, label: str) -> None:
        for code in self.catalogue.codes():
            if self.catalogue.label(code, self.t.language) == label:
                self.vm.set_field("status", code)
                self.vm.remember()
                return

    def _typed(self, _event: object = None) -> None:
        """Keep the typing on disk shortly after the last key."""
        if self._remember_job is not None:
            self.after_cancel(self._remember_job)
        self._remember_job = self.after(REMEMBER_AFTER_MS, self.remember)

    def remember(self) -> None:
        """Copy the widgets into the draft and keep it on disk now."""
        self._remember_job = None
        self._pull_fields()
        self.vm.remember()

    def _pull_fields(self) -> None:
        if self.vm.contact is None or self.vm.lock_state() is LockState.OTHER:
            return
        self.vm.set_field("name", self.name.get())
        self.vm.set_field("note", self.note.get("1.0", "end-1c"))

    def save(self) -> None:
        """Copy the widgets into the draft and save."""
        self._pull_fields()
        self.vm.save()

    def call(self) -> None:
        """Keep what is typed in the draft, then have the desk dial the open contact (F5)."""
        self._pull_fields()
        self.calls.call(self.vm.contact)

    def refresh_call(self) -> None:
        """Redraw the call box; the wrap-up takes the tabs' place until it is saved."""
        box = self.callbox
        box.refresh()
        if box.empty:
            box.pack_forget()  # Tk keeps an emptied frame's size: hide it rather than leave a gap
        elif not box.winfo_manager():
            box.pack(fill="x", padx=8, before=self.tabs if self.tabs.winfo_manager() else self.message)
        if box.wrapping_up:
            self.tabs.pack_forget()
            box.pack_configure(fill="both", expand=True)
        else:
            if box.winfo_manager():
                box.pack_configure(fill="x", expand=False)
            if not self.tabs.winfo_manager():
                self.tabs.pack(fill="both", expand=True, padx=8, pady=4, before=self.message)
        self._call_button()

    def _call_button(self) -> None:
        calls = self.calls
        ready = self.vm.contact is not None and calls.can_call
        colour = DNC_COLOUR if self.vm.contact is not None and self.vm.dnc else CALL_COLOUR
        self.call_button.configure(
            text=calls.call_text, state="normal" if ready else "disabled", fg_color=colour
        )

    def _dnc_badge(self) -> None:
        """«No llamar» in red under the number, with the reason, while the open contact is on the list."""
        if self.vm.contact is not None and self.vm.dnc:
            self.dnc_badge.configure(text=f"{self.t('dnc.badge')} — {self.vm.dnc}")
            if not self.dnc_badge.winfo_manager():
                self.dnc_badge.pack(anchor="w", padx=12, pady=(2, 2), after=self.phone)
        elif self.dnc_badge.winfo_manager():
            self.dnc_badge.pack_forget()

    def confirm_delete(self) -> None:
        """Ask, then delete."""
        if self.vm.can_delete and messagebox.askyesno(
            self.t("panel.delete"), self.vm.delete_prompt(), parent=self.winfo_toplevel()
        ):
            self.vm.delete()

    def refresh(self) -> None:
        """Redraw from the view model (fields only when another contact opened or the form is clean)."""
        vm = self.vm
        contact = vm.contact
        if contact is None:
            self.title.configure(text=self.t("panel.empty"))
            self.phone.configure(text="")
            self.details.configure(text="")
            if self._showing is not None or self.status.get() != "":
                self.name.delete(0, "end")
                self.note.delete("1.0", "end")
                self.status.set("")
            self._showing = None
        else:
            self.title.configure(text=contact.name or contact.display_phone)
            self.phone.configure(text=f"{self.t('panel.phone')}: {contact.display_phone}")
            self.details.configure(text=self._details())
            replaced = self._replaced != vm.fields_replaced
            if self._showing == contact.id and not replaced:
                self._pull_fields()
            if self._showing != contact.id or not vm.dirty or replaced:
                self._fill()
            self._showing = contact.id
            self._replaced = vm.fields_replaced
        editable = "normal" if vm.can_edit else "disabled"
        self.save_button.configure(state=editable)
        readonly = contact is not None and vm.lock_state() is LockState.OTHER
        for field in (self.name, self.note, self.status):
            field.configure(state="disabled" if readonly else "normal")
        self._show_conflict()
        self._call_button()
        self._dnc_badge()
        self.next_button.configure(state="normal")
        lock_state = vm.lock_state()
        self.lock_button.configure(
            state="normal" if contact and lock_state is not LockState.OTHER else "disabled"
        )
        can_release = lock_state is LockState.MINE or vm.can_force_release
        self.release_button.configure(
            state="normal" if can_release else "disabled",
            text=self.t("panel.force_release") if lock_state is LockState.OTHER else self.t("panel.release"),
        )
        if vm.can_delete:
            self.delete_button.grid()
        else:
            self.delete_button.grid_remove()
        self.tick()
        light, dark = MESSAGE_COLOURS[vm.message_kind]
        self.message.configure(text=vm.message, text_color=(light, dark))
        self._fill_history()

    def _details(self) -> str:
        """E-mail, operator by name, list and the file's other columns of the open contact."""
        contact = self.vm.contact
        if contact is None:
            return ""
        t = self.t
        lines = [
            f"{t('panel.email')}: {contact.email or t('panel.no_email')}",
            f"{t('panel.operator')}: {operator_name(contact.operator) if contact.operator else '—'}"
            + (f"   ·   {t('panel.list')}: {contact.list}" if contact.list else ""),
        ]
        lines += [f"{key}: {value}" for key, value in contact.extra]
        return "\n".join(lines)

    def _show_conflict(self) -> None:
        """The fields both she and someone else changed: theirs beside hers, and a choice for each."""
        rows = self.vm.conflict
        shown = tuple((row.field, str(row.choice)) for row in rows)
        if shown == self._conflict_shown:
            return
        self._conflict_shown = shown
        for child in self.conflict_box.winfo_children():
            child.destroy()
        self.conflict_buttons = {}
        if not rows:
            self.conflict_box.grid_remove()
            return
        self.conflict_box.grid()
        ctk.CTkLabel(
            self.conflict_box, text=self.t("conflict.title"), font=ctk.CTkFont(weight="bold"), anchor="w"
        ).grid(row=0, column=0, columnspan=4, sticky="w", padx=8, pady=(6, 2))
        for index, row in enumerate(rows):
            self._conflict_row(1 + 4 * index, row)
        self.conflict_box.columnconfigure(0, weight=1)

    def _conflict_row(self, at: int, row: ConflictRow) -> None:
        box = self.conflict_box
        label = self.t(f"panel.{row.field}")
        ctk.CTkLabel(box, text=label, font=ctk.CTkFont(weight="bold"), anchor="w").grid(
            row=at, column=0, sticky="w", padx=8
        )
        when = row.when.astimezone().strftime("%H:%M") if row.when else "?"
        theirs = self.t("conflict.theirs", who=row.who, when=when, value=self._shown(row.field, row.theirs))
        mine = self.t("conflict.mine", value=self._shown(row.field, row.mine))
        for offset, text in ((1, theirs), (2, mine)):
            ctk.CTkLabel(box, text=text, anchor="w", justify="left", wraplength=400).grid(
                row=at + offset, column=0, columnspan=4, sticky="w", padx=18
            )
        choices = [(Choice.MINE, "conflict.keep"), (Choice.THEIRS, "conflict.take")]
        if row.field in MERGEABLE:
            choices.append((Choice.MERGE, "conflict.merge"))
        for column, (choice, key) in enumerate(choices, start=1):
            button = ctk.CTkButton(
                box,
                text=self.t(key),
                width=96,
                command=lambda f=row.field, c=choice: self.vm.choose(f, c),
                fg_color=CHOSEN if row.choice is choice else ("#3a7ebf", "#1f538d"),
            )
            button.grid(row=at + 3, column=column, padx=3, pady=(2, 6), sticky="w")
            self.conflict_buttons[(row.field, choice)] = button

    def _shown(self, field: str, value: str) -> str:
        if not value:
            return self.t("conflict.empty")
        if field == "status":
            return self.catalogue.label(value, self.t.language)
        return value if len(value) <= 120 else value[:117] + "…"

    def _fill(self) -> None:
        draft = self.vm.draft
        for field in (self.name, self.note, self.status):
            field.configure(state="normal")  # a disabled field ignores what is put in it
        self.name.delete(0, "end")
        self.name.insert(0, draft.get("name", ""))
        self.status.set(self.catalogue.label(draft.get("status", ""), self.t.language))
        self.note.delete("1.0", "end")
        self.note.insert("1.0", draft.get("note", ""))

    def _fill_history(self) -> None:
        self.history.delete(*self.history.get_children())
        for entry in self.vm.history:
            when = entry.when.astimezone().strftime("%d/%m %H:%M") if entry.when else ""
            what = self.t(f"field.{entry.what}") if self.t.has(f"field.{entry.what}") else entry.what
            values = (self._value(entry.what, entry.old), self._value(entry.what, entry.new))
            self.history.insert("", "end", values=(when, entry.who, what, *values))

    def _value(self, field: str, value: str) -> str:
        """A history value as people read it: status labels, local times, call outcomes."""
        if not value:
            return ""
        if field == "status":
            return self.catalogue.label(value, self.t.language)
        if field == "operator":
            return operator_name(value)
        if field == "locked_until":
            moment = parse_time(value)
            return moment.astimezone().strftime("%H:%M") if moment else value
        return (
            self.t(f"value.{value}")
            if field in ("call", "deleted") and self.t.has(f"value.{value}")
            else value
        )

    def tick(self) -> None:
        """Refresh the lock line (time left) and the call's timer; called every second."""
        self.callbox.tick()
        self.vm.check_expiry()
        state = self.vm.lock_state()
        colour = {
            LockState.FREE: ("#333333", "#dddddd"),
            LockState.MINE: ("#1b5e20", "#a5d6a7"),
            LockState.OTHER: ("#b71c1c", "#ef9a9a"),
        }[state]
        self.lock_line.configure(text=self.vm.lock_text() if self.vm.contact else "", text_color=colour)
        if self.vm.expiring and state is LockState.MINE:
            if not self.extend_button.winfo_manager():
                self.extend_button.pack(side="bottom", anchor="w", padx=14, pady=(0, 2), before=self.message)
        elif self.extend_button.winfo_manager():
            self.extend_button.pack_forget()


def _focus(widget: tk.Misc | None) -> str:
    """Give ``widget`` the focus; ``"break"`` so the key does nothing else."""
    if widget is not None:
        widget.focus_set()
    return "break"


def _keyboard_button(button: ctk.CTkButton) -> None:
    """A button in the Tab order, run by Space or Enter, with a ring while it has the focus."""
    canvas = button._canvas
    canvas.configure(takefocus=1)
    for key in ("<space>", "<Return>"):
        canvas.bind(key, lambda _e: (button.invoke(), "break")[1])
    canvas.bind("<FocusIn>", lambda _e: button.configure(border_width=2, border_color=FOCUS_RING))
    canvas.bind("<FocusOut>", lambda _e: button.configure(border_width=0))
