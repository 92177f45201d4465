"""First-run dialog: server URL, API key and language, tested before they are saved."""

from __future__ import annotations

from collections.abc import Callable

import customtkinter as ctk

from client.i18n import Translator
from client.viewmodels.setup import SetupState, SetupViewModel


class SetupFrame(ctk.CTkFrame):  # type: ignore[misc]
    """The form inside the first-run window; ``on_done`` runs once the settings are saved."""

    def __init__(self, master: ctk.CTk, vm: SetupViewModel, translate: Translator) -> None:
        super().__init__(master)
        self.vm = vm
        self.t = translate
        self.on_done: Callable[[], None] = lambda: None
        self.on_cancel: Callable[[], None] = lambda: None
        ctk.CTkLabel(self, text=translate("setup.title"), font=ctk.CTkFont(size=18, weight="bold")).grid(
            row=0, column=0, columnspan=2, sticky="w", padx=12, pady=(12, 8)
        )
        ctk.CTkLabel(self, text=translate("setup.url")).grid(row=1, column=0, sticky="w", padx=12, pady=4)
        self.url = ctk.CTkEntry(self, width=320)
        self.url.insert(0, vm.url)
        self.url.grid(row=1, column=1, sticky="ew", padx=12, pady=4)
        ctk.CTkLabel(self, text=translate("setup.key")).grid(row=2, column=0, sticky="w", padx=12, pady=4)
        self.key = ctk.CTkEntry(self, width=320, show="•")
        self.key.grid(row=2, column=1, sticky="ew", padx=12, pady=4)
        ctk.CTkLabel(self, text=translate("setup.language")).grid(
            row=3, column=0, sticky="w", padx=12, pady=4
        )
        self.language = ctk.CTkSegmentedButton(self, values=["es", "en"], command=self._language)
        self.language.set(vm.language)
        self.language.grid(row=3, column=1, sticky="w", padx=12, pady=4)
        buttons = ctk.CTkFrame(self, fg_color="transparent")
        buttons.grid(row=4, column=0, columnspan=2, sticky="e", padx=8, pady=8)
        ctk.CTkButton(buttons, text=translate("setup.cancel"), command=self._cancel, width=100).pack(
            side="right", padx=4
        )
        self.submit_button = ctk.CTkButton(buttons, text=translate("setup.test"), command=self.submit)
        self.submit_button.pack(side="right", padx=4)
        self.message = ctk.CTkLabel(self, text="", anchor="w", justify="left", wraplength=440)
        self.message.grid(row=5, column=0, columnspan=2, sticky="ew", padx=12, pady=(0, 12))
        self.columnconfigure(1, weight=1)
        self.key.bind("<Return>", lambda _e: self.submit())
        vm.on_change = self.refresh

    def _language(self, value: str) -> None:
        self.vm.language = value

    def _cancel(self) -> None:
        self.on_cancel()

    def submit(self) -> None:
        """Copy the fields into the view model and test them."""
        self.vm.url = self.url.get()
        self.vm.key = self.key.get()
        self.vm.submit()

    def refresh(self) -> None:
        """Redraw from the view model."""
        vm = self.vm
        colour = ("#b71c1c", "#ef9a9a") if vm.state is SetupState.FAILED else ("#1b5e20", "#a5d6a7")
        self.message.configure(text=vm.message, text_color=colour)
        self.submit_button.configure(state="disabled" if vm.state is SetupState.TESTING else "normal")
        if vm.state is SetupState.SAVED:
            self.after(1200, self.on_done)
