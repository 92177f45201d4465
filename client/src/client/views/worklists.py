"""The work queue's windows: «Rellamadas» (everyone: today's callbacks, open, reschedule, cancel) and
«Campañas» (TeamLead and up: list, rules, progress); each shows one view model."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Sequence
from datetime import timedelta
from tkinter import messagebox, ttk

import customtkinter as ctk

from client.centretime import local_parts
from client.i18n import Translator
from client.models import RETRY_OUTCOMES
from client.viewmodels.call import CALLBACK_SCOPES
from client.viewmodels.callbacks import COLUMNS as CALLBACK_COLUMNS
from client.viewmodels.callbacks import CallbacksViewModel
from client.viewmodels.campaigns import CampaignsViewModel

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


class CampaignsWindow(ctk.CTkToplevel):  # type: ignore[misc]
    """Campaigns on the left (active, archived on demand); the selected one's rules and progress on the
    right."""

    def __init__(self, master: tk.Misc, vm: CampaignsViewModel, translate: Translator) -> None:
        super().__init__(master)
        self.vm = vm
        self.t = translate
        self.title(translate("campaigns.title"))
        self.geometry("920x660")
        top = ctk.CTkFrame(self, fg_color="transparent")
        top.pack(fill="x", padx=10, pady=6)
        self.archived = ctk.CTkCheckBox(
            top, text=translate("campaigns.show_archived"), command=self._archived_toggled
        )
        self.archived.pack(side="left")
        ctk.CTkButton(top, text=translate("tool.reload"), width=100, command=vm.refresh).pack(side="right")
        ctk.CTkButton(top, text=translate("campaigns.new"), width=100, command=vm.new).pack(
            side="right", padx=6
        )
        self.message = ctk.CTkLabel(self, text="", anchor="w", justify="left", wraplength=860)
        self.message.pack(fill="x", padx=10)
        body = ctk.CTkFrame(self, fg_color="transparent")
        body.pack(fill="both", expand=True, padx=10, pady=(0, 10))
        columns = ("name", "state", "attempts")
        self.table = _table(body, columns, [translate(f"campaigns.{c}") for c in columns], height=14)
        self.table.pack(side="left", fill="both", expand=True)
        self.table.bind("<<TreeviewSelect>>", self._chosen)
        form = ctk.CTkFrame(body)
        form.pack(side="right", fill="both", padx=(10, 0))
        ctk.CTkLabel(form, text=translate("campaigns.name")).grid(row=0, column=0, sticky="w", padx=8, pady=4)
        self.name = ctk.CTkEntry(form, width=220)
        self.name.grid(row=0, column=1, sticky="ew", padx=8, pady=4)
        self.active = ctk.CTkCheckBox(form, text=translate("campaigns.is_active"))
        self.active.grid(row=1, column=1, sticky="w", padx=8, pady=4)
        ctk.CTkLabel(form, text=translate("campaigns.attempts")).grid(row=2, column=0, sticky="w", padx=8)
        self.attempts = ctk.CTkEntry(form, width=80)
        self.attempts.grid(row=2, column=1, sticky="w", padx=8, pady=4)
        ctk.CTkLabel(form, text=translate("campaigns.retry"), anchor="w").grid(
            row=3, column=0, columnspan=2, sticky="w", padx=8, pady=(8, 0)
        )
        self.retry: dict[str, ctk.CTkEntry] = {}
        for index, outcome in enumerate(RETRY_OUTCOMES, start=4):
            ctk.CTkLabel(form, text=translate(f"value.{outcome}")).grid(
                row=index, column=0, sticky="w", padx=18
            )
            entry = ctk.CTkEntry(form, width=80)
            entry.grid(row=index, column=1, sticky="w", padx=8, pady=2)
            self.retry[outcome] = entry
        self.save_button = ctk.CTkButton(form, text=translate("campaigns.save"), command=self.save)
        self.save_button.grid(row=8, column=1, sticky="e", padx=8, pady=8)
        ctk.CTkLabel(form, text=translate("campaigns.progress"), font=ctk.CTkFont(weight="bold")).grid(
            row=9, column=0, columnspan=2, sticky="w", padx=8, pady=(8, 0)
        )
        self.bar = ctk.CTkProgressBar(form)
        self.bar.grid(row=10, column=0, columnspan=2, sticky="ew", padx=8, pady=4)
        self.worked = ctk.CTkLabel(form, text="", anchor="w", justify="left", wraplength=320)
        self.worked.grid(row=11, column=0, columnspan=2, sticky="w", padx=8)
        self.figures = ctk.CTkLabel(form, text="", anchor="w", justify="left")
        self.figures.grid(row=12, column=0, columnspan=2, sticky="w", padx=8, pady=(2, 8))
        self._form_of: tuple[str | None, str] | None = None
        vm.on_change = self.refresh
        self.refresh()
        vm.refresh()

    def _archived_toggled(self) -> None:
        self.vm.set_archived(bool(self.archived.get()))

    def _chosen(self, _event: object = None) -> None:
        chosen = self.table.selection()
        if chosen and chosen[0] != self.vm.selected:
            self.vm.select(str(chosen[0]))

    def save(self) -> None:
        """Copy the form into the view model and save."""
        vm = self.vm
        vm.set_form("name", self.name.get())
        vm.set_form("active", bool(self.active.get()))
        vm.set_form("max_attempts", self.attempts.get())
        for outcome, entry in self.retry.items():
            vm.set_form(f"retry.{outcome}", entry.get())
        vm.save()

    def _fill_form(self) -> None:
        form = self.vm.form
        self.name.delete(0, "end")
        self.name.insert(0, form.name)
        if form.active:
            self.active.select()
        else:
            self.active.deselect()
        self.attempts.delete(0, "end")
        self.attempts.insert(0, form.max_attempts)
        for outcome, entry in self.retry.items():
            entry.delete(0, "end")
            entry.insert(0, form.retry_minutes.get(outcome, ""))

    def refresh(self) -> None:
        """Redraw from the view model (the form only when another campaign is shown)."""
        if not self.winfo_exists():
            return
        vm = self.vm
        self.message.configure(text=vm.message, text_color=ERROR_COLOUR if vm.error else INFO_COLOUR)
        _refill(self.table, [(row[0], row[1:]) for row in vm.rows()])
        if vm.selected and self.table.exists(vm.selected) and self.table.selection() != (vm.selected,):
            self.table.selection_set(vm.selected)
        shown = (vm.form.campaign_id, vm.form.name)
        if shown != self._form_of:
            self._form_of = shown
            self._fill_form()
        self.save_button.configure(state="disabled" if vm.saving else "normal")
        self.bar.set(vm.worked_share)
        self.worked.configure(text=vm.worked_text)
        self.figures.configure(text="\n".join(f"{label}: {value}" for label, value in vm.progress_lines()))
