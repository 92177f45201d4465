"""The call box of the contact panel: the desk line, the call in progress (state, timer, Colgar) and the
wrap-up form (outcome, status, note to add, optional callback) that replaces the panel's tabs until it is
saved."""

from __future__ import annotations

import tkinter as tk

import customtkinter as ctk

from client.i18n import Translator
from client.viewmodels.call import CALLBACK_SCOPES, OUTCOMES, CallPhase, CallViewModel
from client.viewmodels.catalogue import StatusCatalogue
from client.viewmodels.panel import MessageKind

DESK_COLOURS = {
    MessageKind.INFO: ("#1b5e20", "#a5d6a7"),
    MessageKind.WARNING: ("#8a5a00", "#ffcc80"),
    MessageKind.ERROR: ("#b71c1c", "#ef9a9a"),
}
PHASE_COLOURS = {
    CallPhase.REQUESTING: ("#8a5a00", "#ffcc80"),
    CallPhase.DIALLING: ("#8a5a00", "#ffcc80"),
    CallPhase.RINGING: ("#0d47a1", "#90caf9"),
    CallPhase.IN_CALL: ("#1b5e20", "#a5d6a7"),
    CallPhase.HANGING_UP: ("#555555", "#bbbbbb"),
}


class CallBox(ctk.CTkFrame):  # type: ignore[misc]
    """Shows ``CallViewModel``; every button calls one view-model method."""

    def __init__(
        self, master: tk.Misc, vm: CallViewModel, translate: Translator, catalogue: StatusCatalogue
    ) -> None:
        super().__init__(master, fg_color="transparent", height=1)  # nothing shown: no gap
        self.vm = vm
        self.t = translate
        self.catalogue = catalogue
        self._wrap_shown: str | None = None
        self.desk_line = ctk.CTkLabel(self, text="", anchor="w", justify="left", wraplength=420)
        self.desk_line.pack(fill="x", padx=4)

        self.live = ctk.CTkFrame(self)
        self.phase = ctk.CTkLabel(self.live, text="", font=ctk.CTkFont(size=20, weight="bold"))
        self.phase.pack(side="left", padx=(12, 8), pady=8)
        self.timer = ctk.CTkLabel(self.live, text="", font=ctk.CTkFont(family="DejaVu Sans Mono", size=20))
        self.timer.pack(side="left", padx=8)
        self.hangup_button = ctk.CTkButton(
            self.live, text=translate("call.hangup"), command=vm.hangup, width=130, fg_color="#b71c1c"
        )
        self.hangup_button.pack(side="right", padx=12, pady=8)

        self.wrap = ctk.CTkFrame(self)
        self.wrap_title = ctk.CTkLabel(
            self.wrap,
            text="",
            anchor="w",
            justify="left",
            wraplength=420,
            font=ctk.CTkFont(size=15, weight="bold"),
        )
        self.wrap_title.grid(row=0, column=0, columnspan=2, sticky="ew", padx=8, pady=(8, 2))
        self.wrap_hint = ctk.CTkLabel(self.wrap, text="", anchor="w", justify="left", wraplength=420)
        self.wrap_hint.grid(row=1, column=0, columnspan=2, sticky="ew", padx=8)
        ctk.CTkLabel(self.wrap, text=translate("wrapup.outcome")).grid(row=2, column=0, sticky="w", padx=8)
        self._outcomes = {vm.outcome_label(code): code for code in OUTCOMES}
        self.outcome = ctk.CTkOptionMenu(self.wrap, values=list(self._outcomes), command=self._outcome)
        self.outcome.grid(row=2, column=1, sticky="ew", padx=8, pady=4)
        ctk.CTkLabel(self.wrap, text=translate("panel.status")).grid(row=3, column=0, sticky="w", padx=8)
        self.status = ctk.CTkOptionMenu(self.wrap, values=self._labels(), command=self._status)
        self.status.grid(row=3, column=1, sticky="ew", padx=8, pady=4)
        ctk.CTkLabel(self.wrap, text=translate("wrapup.note_added")).grid(
            row=4, column=0, sticky="nw", padx=8
        )
        self.note = ctk.CTkTextbox(self.wrap, height=110)
        self.note.grid(row=4, column=1, sticky="nsew", padx=8, pady=4)
        self.note.bind("<KeyRelease>", self._typed)
        self.callback_on = ctk.CTkCheckBox(
            self.wrap, text=translate("wrapup.callback"), command=self._callback_toggled
        )
        self.callback_on.grid(row=5, column=0, columnspan=2, sticky="w", padx=8, pady=(6, 0))
        when = ctk.CTkFrame(self.wrap, fg_color="transparent")
        when.grid(row=6, column=0, columnspan=2, sticky="ew", padx=8)
        ctk.CTkLabel(when, text=translate("wrapup.callback_when"), anchor="w").pack(fill="x")
        self.callback_date = ctk.CTkEntry(when, width=110, placeholder_text="dd/mm/aaaa")
        self.callback_date.pack(side="left", padx=(0, 4))
        self.callback_time = ctk.CTkEntry(when, width=70, placeholder_text="HH:MM")
        self.callback_time.pack(side="left", padx=4)
        self._scopes = {vm.scope_label(scope): scope for scope in CALLBACK_SCOPES}
        self.callback_scope = ctk.CTkOptionMenu(when, values=list(self._scopes), command=self._scope)
        self.callback_scope.pack(side="left", padx=4)
        for entry in (self.callback_date, self.callback_time):
            entry.bind("<KeyRelease>", self._typed, add="+")
        self.save_button = ctk.CTkButton(self.wrap, text=translate("wrapup.save"), command=self.save)
        self.save_button.grid(row=7, column=1, sticky="e", padx=8, pady=(4, 10))
        self.wrap.columnconfigure(1, weight=1)
        self.wrap.rowconfigure(4, weight=1)

    def _labels(self) -> list[str]:
        return [self.catalogue.label(code, self.t.language) for code in self.catalogue.codes()]

    def set_catalogue(self, catalogue: StatusCatalogue) -> None:
        """Offer the statuses of a new catalogue."""
        self.catalogue = catalogue
        self.status.configure(values=self._labels())

    def _outcome(self, label: str) -> None:
        self.vm.set_wrapup("outcome", self._outcomes.get(label, ""))

    def _status(self, label: str) -> None:
        for code in self.catalogue.codes():
            if self.catalogue.label(code, self.t.language) == label:
                self.vm.set_wrapup("status", code)
                return

    def _typed(self, _event: object = None) -> None:
        self.vm.set_wrapup("note", self.note.get("1.0", "end-1c"))
        self.vm.set_wrapup("callback_date", self.callback_date.get())
        self.vm.set_wrapup("callback_time", self.callback_time.get())

    def _callback_toggled(self) -> None:
        self.vm.set_wrapup("callback", "1" if self.callback_on.get() else "")
        self._callback_fields()

    def _scope(self, label: str) -> None:
        self.vm.set_wrapup("callback_scope", self._scopes.get(label, ""))

    def _callback_fields(self) -> None:
        """The date, time and scope are editable only while «Programar rellamada» is ticked."""
        state = "normal" if self.callback_on.get() else "disabled"
        for widget in (self.callback_date, self.callback_time, self.callback_scope):
            widget.configure(state=state)

    def set_callback(self, date_text: str, time_text: str, scope: str = "personal") -> None:
        """Tick «Programar rellamada» and fill its fields (what typing them does)."""
        if not self.callback_on.get():
            self.callback_on.select()
        self._callback_toggled()
        for entry, text in ((self.callback_date, date_text), (self.callback_time, time_text)):
            entry.delete(0, "end")
            entry.insert(0, text)
        self.callback_scope.set(self.vm.scope_label(scope))
        self._scope(self.vm.scope_label(scope))
        self._typed()

    def save(self) -> None:
        """Copy the note typed into the wrap-up and save it."""
        self._typed()
        self.vm.save_wrapup()

    @property
    def empty(self) -> bool:
        """Whether there is nothing to show (desk unknown, no call): the panel then hides the box."""
        return not self.vm.desk_text and not self.vm.phase_text and self.vm.wrapup is None

    @property
    def wrapping_up(self) -> bool:
        """Whether the wrap-up form is shown (the panel hides its tabs meanwhile)."""
        return self.vm.wrapup is not None

    def refresh(self) -> None:
        """Redraw from the view model (the wrap-up fields only when a new wrap-up opens)."""
        vm = self.vm
        light, dark = DESK_COLOURS[vm.desk_kind]
        self.desk_line.configure(text=vm.desk_text, text_color=(light, dark))
        if not vm.desk_text:
            self.desk_line.pack_forget()  # not known yet (or a server without GET /desks): no empty gap
        elif not self.desk_line.winfo_manager():
            after = [frame for frame in (self.live, self.wrap) if frame.winfo_manager()]
            self.desk_line.pack(fill="x", padx=4, before=after[0] if after else None)
        if vm.phase_text:
            self.live.pack(fill="x", padx=4, pady=4)
        else:
            self.live.pack_forget()
        wrap = vm.wrapup
        if wrap is None:
            self.wrap.pack_forget()
            self._wrap_shown = None
        else:
            self.wrap.pack(fill="both", expand=True, padx=4, pady=4)
            if self._wrap_shown != wrap.call_id:
                self._wrap_shown = wrap.call_id
                self.status.set(self.catalogue.label(wrap.status, self.t.language))
                self.note.delete("1.0", "end")
                self.note.insert("1.0", wrap.note)
                if wrap.callback:
                    self.callback_on.select()
                else:
                    self.callback_on.deselect()
                self._callback_fields()
                for entry, text in (
                    (self.callback_date, wrap.callback_date),
                    (self.callback_time, wrap.callback_time),
                ):
                    entry.configure(state="normal")
                    entry.delete(0, "end")
                    entry.insert(0, text)
                self.callback_scope.set(self.vm.scope_label(wrap.callback_scope))
                self._callback_fields()
            self.wrap_title.configure(text=vm.wrapup_title)
            self.wrap_hint.configure(text=vm.wrapup_hint)
            self.outcome.set(vm.outcome_label(wrap.outcome))
            self.outcome.configure(state="normal" if wrap.outcome_editable else "disabled")
            self.save_button.configure(text=vm.wrapup_button, state="disabled" if wrap.saving else "normal")
        self.tick()

    def tick(self) -> None:
        """The phase and its running time (called every second)."""
        vm = self.vm
        colour = PHASE_COLOURS.get(vm.phase, ("#333333", "#dddddd"))
        self.phase.configure(text=vm.phase_text, text_color=colour)
        self.timer.configure(text=vm.timer_text())
        self.hangup_button.configure(state="normal" if vm.can_hangup else "disabled")
