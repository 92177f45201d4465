"""«Cambios sin guardar»: Guardar / Descartar / Cancelar before the panel's typing would go away."""

from __future__ import annotations

import contextlib
import tkinter as tk
from collections.abc import Callable

import customtkinter as ctk

from client.i18n import Translator


class UnsavedDialog(ctk.CTkToplevel):  # type: ignore[misc]
    """A modal question; ``answer`` gets ``"save"``, ``"discard"`` or ``"cancel"`` once (closing it is
    Cancelar)."""

    def __init__(
        self, master: tk.Misc, translate: Translator, name: str, answer: Callable[[str], None]
    ) -> None:
        super().__init__(master)
        self.title(translate("unsaved.title"))
        self.resizable(False, False)
        self._answer = answer
        self._answered = False
        self.question = ctk.CTkLabel(
            self, text=translate("unsaved.question", name=name), wraplength=380, justify="left"
        )
        self.question.pack(padx=18, pady=(16, 10), anchor="w")
        row = ctk.CTkFrame(self, fg_color="transparent")
        row.pack(padx=14, pady=(0, 14), fill="x")
        self.save_button = ctk.CTkButton(
            row, text=translate("unsaved.save"), width=110, command=lambda: self._done("save")
        )
        self.discard_button = ctk.CTkButton(
            row,
            text=translate("unsaved.discard"),
            width=110,
            fg_color="#b71c1c",
            command=lambda: self._done("discard"),
        )
        self.cancel_button = ctk.CTkButton(
            row, text=translate("unsaved.cancel"), width=110, command=lambda: self._done("cancel")
        )
        for button in (self.save_button, self.discard_button, self.cancel_button):
            button.pack(side="left", padx=4)
        self.protocol("WM_DELETE_WINDOW", lambda: self._done("cancel"))
        self.bind("<Escape>", lambda _e: self._done("cancel"))
        self.bind("<Return>", lambda _e: self._done("save"))
        self.transient(master.winfo_toplevel())
        self.after(50, self._grab)

    def _grab(self) -> None:
        if self.winfo_exists():
            with contextlib.suppress(tk.TclError):  # not viewable yet; the buttons still answer
                self.grab_set()
            self.save_button.focus_set()

    def _done(self, choice: str) -> None:
        if self._answered:
            return
        self._answered = True
        self.grab_release()
        self.destroy()
        self._answer(choice)
