"""The contact table: a ttk.Treeview filled a page at a time, rows patched one by one by iid."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable, Sequence
from tkinter import ttk

from client.i18n import Translator
from client.viewmodels.catalogue import StatusCatalogue
from client.viewmodels.contacts import ContactListViewModel, Row

COLUMNS = ("name", "phone", "status", "note", "lock")
WIDTHS = {"name": 170, "phone": 90, "status": 140, "note": 160, "lock": 110}


class ContactTable(ttk.Frame):
    """Implements the view model's ``TableSink``; asks for the next page when scrolled near the end."""

    def __init__(self, master: tk.Misc, vm: ContactListViewModel, translate: Translator) -> None:
        super().__init__(master)
        self.vm = vm
        self.tree = ttk.Treeview(self, columns=COLUMNS, show="headings", selectmode="browse")
        for column, key in zip(COLUMNS, ("name", "phone", "status", "note", "lock"), strict=True):
            self.tree.heading(column, text=translate(f"col.{key}"), anchor="w")
            self.tree.column(column, width=WIDTHS[column], stretch=column in {"name", "note"}, anchor="w")
        self.scroll = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=self._scrolled)
        self.tree.grid(row=0, column=0, sticky="nsew")
        self.scroll.grid(row=0, column=1, sticky="ns")
        self.rowconfigure(0, weight=1)
        self.columnconfigure(0, weight=1)
        self.on_select: Callable[[str], None] = lambda _iid: None
        self.tree.bind("<<TreeviewSelect>>", self._selected)
        self.colour_rows(vm.catalogue)
        self.rows = TreeRows(self.tree)
        vm.sink = self.rows

    def colour_rows(self, catalogue: StatusCatalogue) -> None:
        """One tag per status with its background colour."""
        for code in catalogue.codes():
            self.tree.tag_configure(code, background=catalogue.colour(code), foreground="#111111")

    def _scrolled(self, first: float | str, last: float | str) -> None:
        self.scroll.set(first, last)
        count = len(self.vm.order)
        if count:
            self.vm.visible(int(float(last) * count))

    def _selected(self, _event: object) -> None:
        selection = self.tree.selection()
        if selection:
            self.on_select(selection[0])

    def select(self, iid: str) -> None:
        """Select and show one row."""
        if self.tree.exists(iid):
            self.tree.selection_set(iid)
            self.tree.focus(iid)
            self.tree.see(iid)


class TreeRows:
    """The ``TableSink`` over one Treeview: each call touches only the rows it names."""

    def __init__(self, tree: ttk.Treeview) -> None:
        self.tree = tree

    def reset(self, rows: Sequence[Row]) -> None:
        """Replace every row."""
        selected = self.tree.selection()
        self.tree.delete(*self.tree.get_children())
        self.append(rows)
        if selected and self.tree.exists(selected[0]):
            self.tree.selection_set(selected[0])
        self.tree.yview_moveto(0)

    def append(self, rows: Sequence[Row]) -> None:
        """Add rows at the end."""
        insert = self.tree.insert
        for row in rows:
            insert("", "end", iid=row.iid, values=row.values(), tags=(row.status,))

    def insert(self, index: int, row: Row) -> None:
        """Add one row at ``index``."""
        self.tree.insert("", index, iid=row.iid, values=row.values(), tags=(row.status,))

    def update(self, row: Row) -> None:
        """Redraw one row."""
        if self.tree.exists(row.iid):
            self.tree.item(row.iid, values=row.values(), tags=(row.status,))

    def remove(self, iid: str) -> None:
        """Remove one row."""
        if self.tree.exists(iid):
            self.tree.delete(iid)
