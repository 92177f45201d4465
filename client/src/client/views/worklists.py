"""The work queue's windows: «Rellamadas» (everyone: today's callbacks, open, reschedule, cancel) and
«Campañas» (TeamLead and up: list, rules, progress); each shows one view model."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable, Sequence
from datetime import timedelta
from tkinter import messagebox, ttk

import customtkinter as ctk

from client.centretime import local_parts
from client.i18n import Translator
from client.models import RETRY_OUTCOMES, WEEKDAYS
from client.viewmodels.call import CALLBACK_SCOPES
from client.viewmodels.callbacks import COLUMNS as CALLBACK_COLUMNS
from client.viewmodels.callbacks import CallbacksViewModel
from client.viewmodels.campaigns import TIMEZONES, CampaignsViewModel, DayForm, with_name
from client.views.unsaved import UnsavedDialog

ERROR_COLOUR = ("#b71c1c", "#ef9a9a")
INFO_COLOUR = ("#1b5e20", "#a5d6a7")


def _table(master: tk.Misc, columns: Sequence[str], headings: Sequence[str], height: int) -> ttk.Treeview:
    tree = ttk.Treeview(master, columns=list(columns), show="headings", height=height, selectmode="browse")
    for column, heading in zip(columns, headings, strict=True):
        tree.heading(column, text=heading, anchor="w")
        tree.column(column, width=140, anchor="w")
    return tree


def _refill(tree: ttk.Treeview, rows: Sequence[tuple[str, Sequence[object]]]) -> None:
    """Rows by id, keeping the selection when its row is still there."""
    chosen = tree.selection()
    tree.delete(*tree.get_children())
    for iid, values in rows:
        tree.insert("", "end", iid=iid, values=tuple(values))
    kept = [iid for iid in chosen if tree.exists(iid)]
    if kept:
        tree.selection_set(kept)


class CallbacksWindow(ctk.CTkToplevel):  # type: ignore[misc]
    """Today's callbacks, soonest first: a click opens the contact; Reprogramar and Cancelar act on the one
    selected."""

    def __init__(self, master: tk.Misc, vm: CallbacksViewModel, translate: Translator) -> None:
        super().__init__(master)
        self.vm = vm
        self.t = translate
        self.title(translate("callbacks.title"))
        self.geometry("720x420")
        top = ctk.CTkFrame(self, fg_color="transparent")
        top.pack(fill="x", padx=10, pady=6)
        self.summary = ctk.CTkLabel(top, text="", anchor="w", justify="left", wraplength=520)
        self.summary.pack(side="left")
        ctk.CTkButton(top, text=translate("tool.reload"), width=100, command=vm.refresh).pack(side="right")
        columns = list(CALLBACK_COLUMNS)
        self.table = _table(self, columns, [translate(f"callbacks.{c}") for c in columns], height=10)
        self.table.pack(fill="both", expand=True, padx=10)
        self.table.bind("<<TreeviewSelect>>", self._clicked)
        self.table.bind("<Return>", self._clicked)
        actions = ctk.CTkFrame(self, fg_color="transparent")
        actions.pack(fill="x", padx=10, pady=6)
        self.date = ctk.CTkEntry(actions, width=110, placeholder_text="dd/mm/aaaa")
        self.date.pack(side="left", padx=(0, 4))
        self.time = ctk.CTkEntry(actions, width=70, placeholder_text="HH:MM")
        self.time.pack(side="left", padx=4)
        self._scopes = {translate(f"callback.scope.{s}"): s for s in CALLBACK_SCOPES}
        self.scope = ctk.CTkOptionMenu(actions, values=list(self._scopes), width=180)
        self.scope.pack(side="left", padx=4)
        self.reschedule_button = ctk.CTkButton(
            actions, text=translate("callbacks.reschedule"), width=120, command=self.reschedule
        )
        self.reschedule_button.pack(side="left", padx=4)
        self.cancel_button = ctk.CTkButton(
            actions, text=translate("callbacks.cancel"), width=140, fg_color="#b71c1c", command=self.cancel
        )
        self.cancel_button.pack(side="right")
        self._opened: str | None = None
        vm.on_change = self.refresh
        self.refresh()
        vm.refresh()

    def selected(self) -> str | None:
        """The id of the callback selected (None when none)."""
        chosen = self.table.selection()
        return str(chosen[0]) if chosen else None

    def _clicked(self, _event: object = None) -> None:
        callback_id = self.selected()
        if callback_id is None or callback_id == self._opened:
            return
        self._opened = callback_id
        callback = self.vm.find(callback_id)
        if callback is not None and callback.due_at is not None:
            date_text, time_text = local_parts(callback.due_at + timedelta(hours=1))
            for entry, text in ((self.date, date_text), (self.time, time_text)):
                entry.delete(0, "end")
                entry.insert(0, text)
            self.scope.set(self.t(f"callback.scope.{callback.scope}"))
        self.vm.open(callback_id)

    def reschedule(self) -> None:
        """Move the selected callback to the date and time typed (Costa Rica time)."""
        callback_id = self.selected()
        if callback_id is None:
            self.summary.configure(text=self.t("callbacks.pick"), text_color=ERROR_COLOUR)
            return
        self.vm.reschedule(callback_id, self.date.get(), self.time.get(), self._scopes.get(self.scope.get()))

    def cancel(self) -> None:
        """Cancel the selected callback, after asking."""
        callback_id = self.selected()
        callback = self.vm.find(callback_id) if callback_id else None
        if callback is None:
            self.summary.configure(text=self.t("callbacks.pick"), text_color=ERROR_COLOUR)
            return
        question = self.t("callbacks.confirm_cancel", name=callback.name or callback.phone)
        if messagebox.askyesno(self.t("callbacks.cancel"), question, parent=self):
            self.vm.cancel(callback.id)

    def refresh(self) -> None:
        """Redraw from the view model."""
        if not self.winfo_exists():
            return
        vm = self.vm
        self.summary.configure(text=vm.message, text_color=ERROR_COLOUR if vm.error else INFO_COLOUR)
        _refill(self.table, [(c.id, row) for c, row in zip(vm.callbacks, vm.rows(), strict=True)])


def _put(entry: ctk.CTkEntry | ctk.CTkComboBox, text: str) -> None:
    """Replace what ``entry`` shows with ``text`` (its placeholder comes back when empty), even when the
    entry is disabled."""
    state = str(entry.cget("state"))
    entry.configure(state="normal")
    if isinstance(entry, ctk.CTkComboBox):
        entry.set(text)
    else:
        entry.delete(0, "end")
        if text:
            entry.insert(0, text)
    entry.configure(state=state)


def _tick(box: ctk.CTkCheckBox, on: bool) -> None:
    if on:
        box.select()
    else:
        box.deselect()


class CampaignsWindow(ctk.CTkToplevel):  # type: ignore[misc]
    """Campaigns and the selected one's progress on the left; every rule of the selected (or new) campaign
    on the right, each field with its error beside it."""

    def __init__(self, master: tk.Misc, vm: CampaignsViewModel, translate: Translator) -> None:
        super().__init__(master)
        self.vm = vm
        self.t = translate
        self.title(translate("campaigns.title"))
        self.geometry("1180x780")
        top = ctk.CTkFrame(self, fg_color="transparent")
        top.pack(fill="x", padx=10, pady=6)
        self.archived = ctk.CTkCheckBox(
            top, text=translate("campaigns.show_archived"), command=self._archived_toggled
        )
        self.archived.pack(side="left")
        ctk.CTkButton(top, text=translate("tool.reload"), width=100, command=vm.refresh).pack(side="right")
        self.new_button = ctk.CTkButton(
            top, text=translate("campaigns.new"), width=100, command=lambda: self.guard(vm.new)
        )
        self.new_button.pack(side="right", padx=6)
        self.unsaved: UnsavedDialog | None = None
        self.message = ctk.CTkLabel(self, text="", anchor="w", justify="left", wraplength=1100)
        self.message.pack(fill="x", padx=10)
        body = ctk.CTkFrame(self, fg_color="transparent")
        body.pack(fill="both", expand=True, padx=10, pady=(0, 10))
        left = ctk.CTkFrame(body, fg_color="transparent")
        left.pack(side="left", fill="both", expand=True)
        columns = ("name", "state", "attempts")
        self.table = _table(left, columns, [translate(f"campaigns.{c}") for c in columns], height=12)
        self.table.pack(fill="both", expand=True)
        self.table.bind("<<TreeviewSelect>>", self._chosen)
        ctk.CTkLabel(left, text=translate("campaigns.progress"), font=ctk.CTkFont(weight="bold")).pack(
            anchor="w", pady=(8, 0)
        )
        self.bar = ctk.CTkProgressBar(left)
        self.bar.pack(fill="x", pady=4)
        self.worked = ctk.CTkLabel(left, text="", anchor="w", justify="left", wraplength=420)
        self.worked.pack(anchor="w")
        self.figures = ctk.CTkLabel(left, text="", anchor="w", justify="left")
        self.figures.pack(anchor="w", pady=(2, 8))
        self.form_frame = ctk.CTkScrollableFrame(body, width=620)
        self.form_frame.pack(side="right", fill="both", expand=True, padx=(10, 0))
        self.errors: dict[str, ctk.CTkLabel] = {}
        self._marked: dict[str, list[ctk.CTkBaseClass]] = {}
        self._row = 0
        self._build_form()
        self._form_version = -1
        vm.on_change = self.refresh
        self.refresh()
        vm.refresh()

    # -- building -------------------------------------------------------------------------------------

    def _next_row(self) -> int:
        self._row += 1
        return self._row

    def _label(self, key: str, row: int, column: int = 0, **options: object) -> ctk.CTkLabel:
        label = ctk.CTkLabel(self.form_frame, text=self.t(key), anchor="w", **options)
        label.grid(row=row, column=column, sticky="w", padx=8, pady=(6, 0))
        return label

    def _heading(self, key: str) -> int:
        row = self._next_row()
        self._label(key, row, font=ctk.CTkFont(weight="bold")).grid(columnspan=6, pady=(12, 0))
        return row

    def _error_slot(self, key: str, *marked: ctk.CTkBaseClass) -> None:
        """A red line under the row for ``key``'s error, hidden while there is none."""
        label = ctk.CTkLabel(
            self.form_frame, text="", anchor="w", justify="left", wraplength=560, text_color=ERROR_COLOUR
        )
        label.grid(row=self._next_row(), column=0, columnspan=6, sticky="w", padx=18)
        label.grid_remove()
        self.errors[key] = label
        self._marked[key] = list(marked)

    def _entry(self, row: int, column: int, width: int, span: int = 1, hint: str = "") -> ctk.CTkEntry:
        entry = ctk.CTkEntry(self.form_frame, width=width, placeholder_text=self.t(hint) if hint else None)
        entry.grid(row=row, column=column, columnspan=span, sticky="w", padx=8, pady=(6, 0))
        return entry

    def _names_row(self, key: str) -> tuple[ctk.CTkEntry, ctk.CTkOptionMenu]:
        row = self._next_row()
        self._label(f"campaigns.{key}", row)
        entry = self._entry(row, 1, 300, span=3, hint=f"campaigns.{key}_hint")
        menu = ctk.CTkOptionMenu(
            self.form_frame,
            values=[self.t("campaigns.none_known")],
            width=170,
            command=lambda chosen: self._add_known(entry, chosen),
        )
        menu.set(self.t("campaigns.add_known"))
        menu.grid(row=row, column=4, columnspan=2, sticky="w", padx=8, pady=(6, 0))
        self._error_slot(key, entry)
        return entry, menu

    def _build_form(self) -> None:
        t = self.t
        row = self._row
        self._label("campaigns.name", row)
        self.name = self._entry(row, 1, 420, span=5)
        self._error_slot("name", self.name)
        row = self._next_row()
        self.active = ctk.CTkCheckBox(self.form_frame, text=t("campaigns.is_active"))
        self.active.grid(row=row, column=1, columnspan=2, sticky="w", padx=8, pady=(6, 0))
        self.archive = ctk.CTkCheckBox(self.form_frame, text=t("campaigns.is_archived"))
        self.archive.grid(row=row, column=3, columnspan=3, sticky="w", padx=8, pady=(6, 0))
        self._error_slot("active")
        self._error_slot("archived")
        row = self._next_row()
        self._label("campaigns.priority", row)
        self.priority = self._entry(row, 1, 80)
        self._label("campaigns.priority_hint", row, column=2, text_color="gray").grid(columnspan=4)
        self._error_slot("priority", self.priority)
        self.lists, self.lists_menu = self._names_row("lists")
        self.teams, self.teams_menu = self._names_row("teams")
        self.general_note = ctk.CTkLabel(
            self.form_frame, text=t("campaigns.general_note"), anchor="w", text_color="gray", wraplength=560
        )
        self.general_note.grid(row=self._next_row(), column=0, columnspan=6, sticky="w", padx=18)
        row = self._next_row()
        self._label("campaigns.timezone", row)
        self.timezone = ctk.CTkComboBox(self.form_frame, values=list(TIMEZONES), width=260)
        self.timezone.grid(row=row, column=1, columnspan=3, sticky="w", padx=8, pady=(6, 0))
        self._error_slot("timezone", self.timezone)

        row = self._heading("campaigns.hours")
        self.hours_limited = ctk.CTkCheckBox(
            self.form_frame, text=t("campaigns.hours_limited"), command=self._hours_toggled
        )
        self.hours_limited.grid(row=row, column=2, columnspan=4, sticky="w", padx=8, pady=(12, 0))
        self._error_slot("calling_hours")
        row = self._next_row()
        for column, key in enumerate(("from", "to", "and_from", "and_to"), start=1):
            self._label(f"campaigns.{key}", row, column=column, text_color="gray")
        self.days: dict[str, tuple[ctk.CTkCheckBox, list[ctk.CTkEntry]]] = {}
        for day in WEEKDAYS:
            row = self._next_row()
            box = ctk.CTkCheckBox(self.form_frame, text=t(f"weekday.{day}"), width=110)
            box.grid(row=row, column=0, sticky="w", padx=8, pady=(4, 0))
            entries = [self._entry(row, column, 70, hint="") for column in range(1, 5)]
            for entry in entries:
                entry.configure(placeholder_text="HH:MM")
            self.days[day] = (box, entries)
            self._error_slot(f"hours.{day}", *entries)

        row = self._heading("campaigns.limits")
        row = self._next_row()
        self._label("campaigns.attempts", row)
        self.attempts = self._entry(row, 1, 80)
        self._label("campaigns.per_day", row, column=2).grid(columnspan=2)
        self.per_day = self._entry(row, 4, 80, hint="campaigns.per_day_hint")
        self.per_day.configure(width=150)
        self._error_slot("max_attempts", self.attempts)
        self._error_slot("max_per_day", self.per_day)

        self._heading("campaigns.retry")
        self.retry: dict[str, ctk.CTkEntry] = {}
        for outcome in RETRY_OUTCOMES:
            row = self._next_row()
            label = ctk.CTkLabel(self.form_frame, text=t(f"value.{outcome}"), anchor="w")
            label.grid(row=row, column=0, sticky="w", padx=18, pady=(4, 0))
            self.retry[outcome] = self._entry(row, 1, 80)
            self._error_slot(f"retry.{outcome}", self.retry[outcome])
        self._error_slot("retry_minutes", *self.retry.values())
        row = self._next_row()
        self.save_button = ctk.CTkButton(self.form_frame, text=t("campaigns.save"), command=self.save)
        self.save_button.grid(row=row, column=3, columnspan=3, sticky="e", padx=8, pady=12)
        if not self.vm.can_manage:
            note = ctk.CTkLabel(
                self.form_frame, text=t("campaigns.read_only"), text_color="gray", wraplength=300, anchor="w"
            )
            note.grid(row=row, column=0, columnspan=3, sticky="w", padx=8)

    # -- actions --------------------------------------------------------------------------------------

    def _archived_toggled(self) -> None:
        self.vm.set_archived(bool(self.archived.get()))

    def _hours_toggled(self) -> None:
        self._enable_days(bool(self.hours_limited.get()))

    def _enable_days(self, on: bool) -> None:
        for box, entries in self.days.values():
            for widget in (box, *entries):
                widget.configure(state="normal" if on else "disabled")

    def _add_known(self, entry: ctk.CTkEntry, chosen: str) -> None:
        """A known list or team chosen from its menu: added to what is typed."""
        if chosen != self.t("campaigns.none_known") and str(entry.cget("state")) == "normal":
            _put(entry, with_name(entry.get(), chosen))
        menu = self.lists_menu if entry is self.lists else self.teams_menu
        menu.set(self.t("campaigns.add_known"))

    def _chosen(self, _event: object = None) -> None:
        chosen = self.table.selection()
        if chosen and chosen[0] != self.vm.selected:
            campaign_id = str(chosen[0])
            self.guard(lambda: self.vm.select(campaign_id), self._reselect)

    def _reselect(self) -> None:
        """Show the row of the form kept (none for a new campaign)."""
        selected = self.vm.selected
        if selected and self.table.exists(selected):
            self.table.selection_set(selected)
        elif self.table.selection():
            self.table.selection_remove(self.table.selection())

    def guard(self, proceed: Callable[[], None], cancelled: Callable[[], None] = lambda: None) -> None:
        """Run ``proceed`` now, or after «Guardar» saved or «Descartar» dropped the form's unsaved typing;
        «Cancelar» keeps the form as typed."""
        self.collect()
        vm = self.vm
        if not vm.can_manage or not vm.has_changes:
            proceed()
            return
        if self.unsaved is not None and self.unsaved.winfo_exists():
            cancelled()
            return

        def answered(choice: str) -> None:
            self.unsaved = None
            if choice == "discard":
                proceed()
            elif choice == "save":
                cancelled()  # the form stays shown until saved; a refusal keeps it with its errors
                vm.save(then=proceed)
            else:
                cancelled()

        self.unsaved = UnsavedDialog(self, self.t, vm.form_title, answered)

    def collect(self) -> None:
        """Copy every field of the form into the view model."""
        vm = self.vm
        for name, entry in (
            ("name", self.name),
            ("priority", self.priority),
            ("lists", self.lists),
            ("teams", self.teams),
            ("timezone", self.timezone),
            ("max_attempts", self.attempts),
            ("max_per_day", self.per_day),
        ):
            vm.set_form(name, entry.get())
        vm.set_form("active", bool(self.active.get()))
        vm.set_form("archived", bool(self.archive.get()))
        vm.set_form("hours_limited", bool(self.hours_limited.get()))
        for day, (box, entries) in self.days.items():
            vm.set_form(f"day.{day}.enabled", bool(box.get()))
            for part, entry in zip(("start", "end", "start2", "end2"), entries, strict=True):
                vm.set_form(f"day.{day}.{part}", entry.get())
        for outcome, entry in self.retry.items():
            vm.set_form(f"retry.{outcome}", entry.get())

    def save(self) -> None:
        """Copy the form into the view model and save."""
        self.collect()
        self.vm.save()

    # -- drawing --------------------------------------------------------------------------------------

    def _fill_form(self) -> None:
        form = self.vm.form
        general = form.is_general
        for entry in (self.lists, self.teams):
            entry.configure(state="normal")
        _put(self.name, form.name)
        _tick(self.active, form.active)
        _tick(self.archive, form.archived)
        _put(self.priority, form.priority)
        _put(self.lists, form.lists)
        _put(self.teams, form.teams)
        _put(self.timezone, form.timezone)
        _tick(self.hours_limited, form.hours_limited)
        self._enable_days(True)
        for day, (box, entries) in self.days.items():
            row = form.days.get(day, DayForm())
            _tick(box, row.enabled)
            for entry, text in zip(entries, (row.start, row.end, row.start2, row.end2), strict=True):
                _put(entry, text)
        self._enable_days(form.hours_limited)
        _put(self.attempts, form.max_attempts)
        _put(self.per_day, form.max_per_day)
        for outcome, entry in self.retry.items():
            _put(entry, form.retry_minutes.get(outcome, ""))
        fixed = "disabled" if general else "normal"
        for widget in (self.lists, self.teams, self.lists_menu, self.teams_menu):
            widget.configure(state=fixed)
        self.archive.configure(state="disabled" if general or form.campaign_id is None else "normal")
        if general:
            self.general_note.grid()
        else:
            self.general_note.grid_remove()

    def _show_errors(self) -> None:
        errors = self.vm.errors
        for key, label in self.errors.items():
            text = errors.get(key, "")
            label.configure(text=text)
            if text:
                label.grid()
            else:
                label.grid_remove()
            for widget in self._marked[key]:
                normal = ctk.ThemeManager.theme[type(widget).__name__]["border_color"]
                widget.configure(border_color=ERROR_COLOUR if text else normal)

    def refresh(self) -> None:
        """Redraw from the view model (the form's fields only when another form is loaded)."""
        if not self.winfo_exists():
            return
        vm = self.vm
        self.message.configure(text=vm.message, text_color=ERROR_COLOUR if vm.error else INFO_COLOUR)
        _refill(self.table, [(row[0], row[1:]) for row in vm.rows()])
        if vm.selected and self.table.exists(vm.selected) and self.table.selection() != (vm.selected,):
            self.table.selection_set(vm.selected)
        elif vm.selected is None and self.table.selection():
            # A new campaign is typed: no row stays chosen (its pending select event then finds none and
            # does not load that campaign over the new form).
            self.table.selection_remove(self.table.selection())
        if vm.form_version != self._form_version:
            self._form_version = vm.form_version
            self._fill_form()
        self._show_errors()
        for menu, choices in ((self.lists_menu, vm.list_choices()), (self.teams_menu, vm.team_choices())):
            menu.configure(values=choices or [self.t("campaigns.none_known")])
        self.save_button.configure(state="disabled" if vm.saving or not vm.can_manage else "normal")
        self.bar.set(vm.worked_share)
        self.worked.configure(text=vm.worked_text)
        self.figures.configure(text="\n".join(f"{label}: {value}" for label, value in vm.progress_lines()))
