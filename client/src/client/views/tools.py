"""Tool windows: import, export, generator and desks (supervisors) and metrics (everyone); each shows one
view model."""

from __future__ import annotations

import tkinter as tk
import tkinter.font as tkfont
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from tkinter import filedialog, ttk

import customtkinter as ctk

from client.api import ContactQuery
from client.i18n import Translator
from client.viewmodels.desks import COLUMNS as DESK_COLUMNS
from client.viewmodels.desks import DesksViewModel
from client.viewmodels.exporter import FORMATS, ExportState, ExportViewModel
from client.viewmodels.generator import METHODS, GeneratorState, GeneratorViewModel
from client.viewmodels.importer import ImportState, ImportViewModel
from client.viewmodels.metrics import MetricsViewModel, Period

TABLE_TYPES = [("Excel", "*.xlsx"), ("CSV", "*.csv")]


def _table(master: tk.Misc, columns: list[str], headings: list[str], height: int = 10) -> ttk.Treeview:
    tree = ttk.Treeview(master, columns=columns, show="headings", height=height)
    for column, heading in zip(columns, headings, strict=True):
        tree.heading(column, text=heading, anchor="w")
        tree.column(column, width=140, anchor="w")
    return tree


def _fill(tree: ttk.Treeview, rows: Sequence[Sequence[object]]) -> None:
    tree.delete(*tree.get_children())
    for row in rows:
        tree.insert("", "end", values=tuple(row))


class ImportWindow(ctk.CTkToplevel):  # type: ignore[misc]
    """File dialog → dry run summary → confirm → progress bar → report with rejected rows."""

    def __init__(self, master: tk.Misc, vm: ImportViewModel, translate: Translator) -> None:
        super().__init__(master)
        self.vm = vm
        self.t = translate
        self.title(translate("import.title"))
        self.geometry("720x460")
        top = ctk.CTkFrame(self, fg_color="transparent")
        top.pack(fill="x", padx=10, pady=8)
        self.choose_button = ctk.CTkButton(top, text=translate("import.choose"), command=self.choose)
        self.choose_button.pack(side="left")
        self.confirm_button = ctk.CTkButton(top, text=translate("import.confirm"), command=vm.confirm)
        self.confirm_button.pack(side="left", padx=8)
        self.cancel_button = ctk.CTkButton(top, text=translate("common.cancel"), command=vm.cancel, width=90)
        self.cancel_button.pack(side="left")
        self.save_button = ctk.CTkButton(top, text=translate("import.save_report"), command=self.save_report)
        self.save_button.pack(side="right")
        self.status = ctk.CTkLabel(self, text="", anchor="w", justify="left", wraplength=680)
        self.status.pack(fill="x", padx=10)
        self.bar = ctk.CTkProgressBar(self)
        self.bar.pack(fill="x", padx=10, pady=6)
        self.rows = _table(
            self,
            ["row", "phone", "outcome", "reason"],
            [translate(f"import.{c}") for c in ("row", "phone", "outcome", "reason")],
        )
        self.rows.column("row", width=50, stretch=False)
        self.rows.column("phone", width=120, stretch=False)
        self.rows.column("outcome", width=100, stretch=False)
        self.rows.column("reason", width=420)
        self.rows.pack(fill="both", expand=True, padx=10, pady=(0, 10))
        vm.on_change = self.refresh
        self.refresh()

    def choose(self) -> None:
        """Ask for a file and start the dry run."""
        name = filedialog.askopenfilename(
            parent=self, filetypes=[("Excel / CSV", "*.xlsx *.xls *.csv"), *TABLE_TYPES]
        )
        if name:
            self.vm.choose(Path(name))

    def save_report(self) -> None:
        """Save the rejected rows."""
        name = filedialog.asksaveasfilename(parent=self, defaultextension=".xlsx", filetypes=TABLE_TYPES)
        if name:
            self.vm.save_report(Path(name))

    def refresh(self) -> None:
        """Redraw from the view model."""
        vm = self.vm
        self.status.configure(text=f"{vm.text}\n{vm.notice}" if vm.notice else vm.text)
        self.bar.set(vm.fraction)
        busy = vm.state in (ImportState.CHECKING, ImportState.IMPORTING)
        self.confirm_button.configure(state="normal" if vm.can_confirm else "disabled")
        self.choose_button.configure(state="disabled" if busy else "normal")
        self.cancel_button.configure(state="normal" if busy or vm.can_confirm else "disabled")
        self.save_button.configure(state="normal" if vm.can_save_report else "disabled")
        _fill(self.rows, list(vm.report_rows))


class ExportWindow(ctk.CTkToplevel):  # type: ignore[misc]
    """Filters and format → save dialog → progress → where the file is."""

    def __init__(
        self, master: tk.Misc, vm: ExportViewModel, translate: Translator, query: ContactQuery
    ) -> None:
        super().__init__(master)
        self.vm = vm
        self.t = translate
        vm.query = query
        self.title(translate("export.title"))
        self.geometry("560x220")
        filters = ", ".join(f"{k}={v}" for k, v in query.export_params().items()) or translate("filter.all")
        ctk.CTkLabel(self, text=f"{translate('filter.status')}/{translate('filter.list')}: {filters}").pack(
            anchor="w", padx=10, pady=(10, 4)
        )
        row = ctk.CTkFrame(self, fg_color="transparent")
        row.pack(fill="x", padx=10)
        ctk.CTkLabel(row, text=translate("export.format")).pack(side="left")
        self.format = ctk.CTkSegmentedButton(row, values=list(FORMATS), command=self._format)
        self.format.set(vm.fmt)
        self.format.pack(side="left", padx=8)
        self.start_button = ctk.CTkButton(row, text=translate("export.start"), command=self.start)
        self.start_button.pack(side="right")
        self.bar = ctk.CTkProgressBar(self, mode="determinate")
        self.bar.set(0)
        self.bar.pack(fill="x", padx=10, pady=10)
        self.status = ctk.CTkLabel(self, text="", anchor="w", justify="left", wraplength=520)
        self.status.pack(fill="x", padx=10)
        vm.on_change = self.refresh

    def _format(self, value: str) -> None:
        self.vm.fmt = value

    def start(self) -> None:
        """Ask where to save, then download."""
        name = filedialog.asksaveasfilename(
            parent=self,
            initialfile=self.vm.suggested_name(datetime.now().strftime("%Y%m%d_%H%M%S")),
            defaultextension=f".{self.vm.fmt}",
        )
        if name:
            self.vm.start(Path(name))

    def refresh(self) -> None:
        """Redraw from the view model."""
        self.status.configure(text=self.vm.text)
        self.format.set(self.vm.fmt)
        fraction = self.vm.fraction
        self.bar.set(fraction if fraction is not None else 0.5)
        self.start_button.configure(state="disabled" if self.vm.state is ExportState.RUNNING else "normal")


class GenerateWindow(ctk.CTkToplevel):  # type: ignore[misc]
    """Amount, method, save toggle → result table and shares, savable as CSV/xlsx."""

    def __init__(self, master: tk.Misc, vm: GeneratorViewModel, translate: Translator) -> None:
        super().__init__(master)
        self.vm = vm
        self.t = translate
        self.title(translate("generate.title"))
        self.geometry("640x560")
        form = ctk.CTkFrame(self, fg_color="transparent")
        form.pack(fill="x", padx=10, pady=8)
        ctk.CTkLabel(form, text=translate("generate.amount")).grid(row=0, column=0, sticky="w")
        self.amount = ctk.CTkEntry(form, width=90)
        self.amount.insert(0, vm.amount_text)
        self.amount.grid(row=0, column=1, sticky="w", padx=6)
        ctk.CTkLabel(form, text=translate("generate.method")).grid(row=1, column=0, sticky="w", pady=4)
        self._methods = {translate(f"method.{m}"): m for m in METHODS}
        self.method = ctk.CTkOptionMenu(form, values=list(self._methods), command=self._method)
        self.method.set(translate(f"method.{vm.method}"))
        self.method.grid(row=1, column=1, sticky="w", padx=6)
        self.save = ctk.CTkSwitch(form, text=translate("generate.save"), command=self._save_toggled)
        self.save.grid(row=2, column=0, columnspan=2, sticky="w", pady=4)
        self.run_button = ctk.CTkButton(form, text=translate("generate.run"), command=self.run)
        self.run_button.grid(row=0, column=2, rowspan=2, padx=20)
        self.save_button = ctk.CTkButton(form, text=translate("generate.save_as"), command=self.save_result)
        self.save_button.grid(row=2, column=2, padx=20)
        self.status = ctk.CTkLabel(self, text="", anchor="w", justify="left", wraplength=600)
        self.status.pack(fill="x", padx=10)
        self.shares = ctk.CTkLabel(self, text="", anchor="w", justify="left", wraplength=600)
        self.shares.pack(fill="x", padx=10)
        self.rows = _table(
            self,
            ["number", "formatted", "operator"],
            [translate("generate.number"), translate("generate.formatted"), translate("generate.operator")],
            height=14,
        )
        self.rows.pack(fill="both", expand=True, padx=10, pady=8)
        vm.on_change = self.refresh
        vm.load_weights()
        self.refresh()

    def _method(self, label: str) -> None:
        self.vm.method = self._methods[label]

    def _save_toggled(self) -> None:
        self.vm.save = bool(self.save.get())

    def run(self) -> None:
        """Generate with the values typed."""
        self.vm.amount_text = self.amount.get()
        self.vm.generate()

    def save_result(self) -> None:
        """Save the result table."""
        name = filedialog.asksaveasfilename(parent=self, defaultextension=".xlsx", filetypes=TABLE_TYPES)
        if not name:
            return
        try:
            self.vm.save_result(Path(name))
        except OSError as exc:
            self.status.configure(text=self.t("file.failed", path=name, message=exc))
            return
        self.status.configure(text=self.t("generate.saved_file", path=name))

    def refresh(self) -> None:
        """Redraw from the view model."""
        vm = self.vm
        self.status.configure(text=vm.text)
        self.shares.configure(text=vm.shares_text())
        self.run_button.configure(state="disabled" if vm.state is GeneratorState.RUNNING else "normal")
        self.save_button.configure(state="normal" if vm.rows() else "disabled")
        _fill(self.rows, vm.rows())


class MetricsWindow(ctk.CTkToplevel):  # type: ignore[misc]
    """Call figures for the chosen period (own, per agent and per team by role); supervisors also see
    contacts by status and the server's figures."""

    def __init__(self, master: tk.Misc, vm: MetricsViewModel, translate: Translator) -> None:
        super().__init__(master)
        self.vm = vm
        self.t = translate
        self.title(translate("metrics.title"))
        self.geometry("960x780" if vm.supervisor else "520x360")
        top = ctk.CTkFrame(self, fg_color="transparent")
        top.pack(fill="x", padx=10, pady=6)
        ctk.CTkLabel(top, text=translate("metrics.period")).pack(side="left")
        self._periods = {label: period for period, label in vm.periods()}
        self.period = ctk.CTkOptionMenu(top, values=list(self._periods), command=self._period_chosen)
        self.period.set(next(label for label, period in self._periods.items() if period is vm.period))
        self.period.pack(side="left", padx=6)
        ctk.CTkButton(top, text=translate("metrics.refresh"), command=vm.refresh).pack(side="right")
        self.error = ctk.CTkLabel(self, text="", text_color=("#b71c1c", "#ef9a9a"))
        self.error.pack(fill="x", padx=10)
        body = ctk.CTkFrame(self, fg_color="transparent")
        body.pack(fill="both", expand=True, padx=10, pady=4)
        body.columnconfigure((0, 1), weight=1)
        # The per-agent table takes the room left: the others show all their rows.
        body.rowconfigure(7, weight=1)
        self._body = body
        pair = [translate("metrics.key"), translate("metrics.value")]
        self.calls_label = ctk.CTkLabel(body, text=translate("metrics.calls"), anchor="w")
        self.calls_label.grid(row=0, column=0, sticky="w")
        self.calls = _table(body, ["k", "v"], pair, height=8)
        self.calls.grid(row=1, column=0, sticky="nsew", padx=(0, 6), columnspan=1 if vm.supervisor else 2)
        self.by_status = _table(body, ["k", "v"], pair, height=12)
        self.other = _table(body, ["k", "v"], pair, height=4)
        if vm.supervisor:
            ctk.CTkLabel(body, text=translate("metrics.by_status")).grid(row=0, column=1, sticky="w")
            self.by_status.grid(row=1, column=1, rowspan=3, sticky="nsew")
            ctk.CTkLabel(body, text=translate("metrics.other")).grid(row=2, column=0, sticky="w", pady=(8, 0))
            self.other.grid(row=3, column=0, sticky="nsew", padx=(0, 6))
            self.other.column("k", width=200)
            self.other.column("v", width=80)
        self.teams_label = ctk.CTkLabel(body, text=translate("metrics.per_team"))
        self.teams_label.grid(row=4, column=0, sticky="w", pady=(8, 0))
        self.teams_frame = ctk.CTkFrame(body, fg_color="transparent")
        self.teams_frame.grid(row=5, column=0, columnspan=2, sticky="nsew")
        self.teams: ttk.Treeview | None = None
        self.agents_label = ctk.CTkLabel(body, text=translate("metrics.per_agent"))
        self.agents_label.grid(row=6, column=0, sticky="w", pady=(8, 0))
        self.agents_frame = ctk.CTkFrame(body, fg_color="transparent")
        self.agents_frame.grid(row=7, column=0, columnspan=2, sticky="nsew")
        self.agents: ttk.Treeview | None = None
        vm.on_change = self.refresh
        vm.refresh()

    def _period_chosen(self, label: str) -> None:
        self.vm.set_period(self._periods[label])

    def refresh(self) -> None:
        """Redraw from the view model."""
        vm = self.vm
        self.error.configure(text=vm.error)
        waiting = vm.loading or vm.calls
        self.calls_label.configure(text=vm.calls_title if waiting else self.t("metrics.no_calls"))
        if waiting:
            self.calls.grid()
        else:
            self.calls.grid_remove()
        _fill(self.calls, vm.calls)
        _fill(self.by_status, vm.by_status)
        _fill(self.other, vm.other)
        self.teams = rows_table(
            self.t, self.teams, self.teams_label, self.teams_frame, vm.team_columns, vm.per_team
        )
        self.agents = rows_table(
            self.t, self.agents, self.agents_label, self.agents_frame, vm.agent_columns, vm.per_agent
        )


def rows_table(
    translate: Translator,
    current: ttk.Treeview | None,
    label: ctk.CTkLabel,
    frame: ctk.CTkFrame,
    columns: list[str],
    rows: list[list[str]],
) -> ttk.Treeview | None:
    """A table of call figures with ``columns`` (rebuilt, as they may change), or nothing shown without."""
    if current is not None:
        current.destroy()
    if not columns:
        label.grid_remove()
        frame.grid_remove()
        return None
    label.grid()
    frame.grid()
    headings = [translate(f"metric.{c}") if translate.has(f"metric.{c}") else c for c in columns]
    table = _table(frame, columns, headings, height=min(max(len(rows), 2), 12))
    font = tkfont.nametofont("TkHeadingFont")
    for column, heading in zip(columns, headings, strict=True):
        named = column in ("agent", "team")
        width = max(font.measure(heading) + 16, 110 if named else 70)
        table.column(column, width=width, minwidth=width, stretch=named)
    table.pack(fill="both", expand=True)
    _fill(table, rows)
    return table


class DesksWindow(ctk.CTkToplevel):  # type: ignore[misc]
    """Supervisors: every desk live (agent, desk, state, contact, since) beside the call figures of today
    or this week, per team and per agent."""

    def __init__(
        self, master: tk.Misc, vm: DesksViewModel, figures: MetricsViewModel, translate: Translator
    ) -> None:
        super().__init__(master)
        self.vm = vm
        self.figures = figures
        self.t = translate
        self.title(translate("desks.title"))
        self.geometry("1000x640")
        top = ctk.CTkFrame(self, fg_color="transparent")
        top.pack(fill="x", padx=10, pady=6)
        self.summary = ctk.CTkLabel(top, text="", anchor="w")
        self.summary.pack(side="left")
        ctk.CTkButton(top, text=translate("metrics.refresh"), width=100, command=self.reload).pack(
            side="right"
        )
        self._periods = {translate(f"period.{p.value}"): p for p in (Period.TODAY, Period.THIS_WEEK)}
        self.period = ctk.CTkSegmentedButton(top, values=list(self._periods), command=self._period_chosen)
        self.period.set(translate(f"period.{figures.period.value}"))
        self.period.pack(side="right", padx=10)
        self.error = ctk.CTkLabel(self, text="", text_color=("#b71c1c", "#ef9a9a"), anchor="w")
        self.error.pack(fill="x", padx=10)
        body = ctk.CTkFrame(self, fg_color="transparent")
        body.pack(fill="both", expand=True, padx=10, pady=(0, 10))
        body.columnconfigure(0, weight=1)
        body.rowconfigure(6, weight=1)
        ctk.CTkLabel(body, text=translate("desks.title"), anchor="w", font=ctk.CTkFont(weight="bold")).grid(
            row=0, column=0, sticky="w"
        )
        columns = list(DESK_COLUMNS)
        self.desks = _table(body, columns, [translate(f"desks.{c}") for c in columns], height=8)
        for column, width in zip(columns, (130, 120, 130, 200, 140, 90, 90), strict=True):
            self.desks.column(column, width=width, minwidth=60, stretch=column in ("contact", "since"))
        self.desks.grid(row=1, column=0, sticky="nsew")
        self.calls_label = ctk.CTkLabel(
            body, text=translate("desks.calls"), anchor="w", font=ctk.CTkFont(weight="bold")
        )
        self.calls_label.grid(row=2, column=0, sticky="w", pady=(10, 0))
        self.teams_label = ctk.CTkLabel(body, text=translate("metrics.per_team"), anchor="w")
        self.teams_label.grid(row=3, column=0, sticky="w")
        self.teams_frame = ctk.CTkFrame(body, fg_color="transparent")
        self.teams_frame.grid(row=4, column=0, sticky="nsew")
        self.agents_label = ctk.CTkLabel(body, text=translate("metrics.per_agent"), anchor="w")
        self.agents_label.grid(row=5, column=0, sticky="w", pady=(8, 0))
        self.agents_frame = ctk.CTkFrame(body, fg_color="transparent")
        self.agents_frame.grid(row=6, column=0, sticky="nsew")
        self.teams: ttk.Treeview | None = None
        self.agents: ttk.Treeview | None = None
        vm.on_change = self.refresh
        figures.on_change = self.refresh_figures
        self._ticking: str | None = None
        self.reload()
        self._tick()

    def reload(self) -> None:
        """Read the desks and the figures again."""
        self.vm.refresh()
        self.figures.refresh()

    def _period_chosen(self, label: str) -> None:
        self.figures.set_period(self._periods[label])

    def refresh(self) -> None:
        """Redraw the desks from the view model."""
        self.summary.configure(text=self.vm.summary)
        self.error.configure(text="\n".join(e for e in (self.vm.error, self.figures.error) if e))
        _fill(self.desks, self.vm.rows())

    def refresh_figures(self) -> None:
        """Redraw the call figures (the caller's scope, per team and per agent)."""
        vm = self.figures
        self.calls_label.configure(text=vm.calls_title)
        self.error.configure(text="\n".join(e for e in (self.vm.error, vm.error) if e))
        self.teams = rows_table(
            self.t, self.teams, self.teams_label, self.teams_frame, vm.team_columns, vm.per_team
        )
        self.agents = rows_table(
            self.t, self.agents, self.agents_label, self.agents_frame, vm.agent_columns, vm.per_agent
        )

    def _tick(self) -> None:
        """The «since» column counts up: redraw every second."""
        _fill(self.desks, self.vm.rows())
        self._ticking = self.after(1000, self._tick)

    def destroy(self) -> None:
        """Stop the clock, then close."""
        if self._ticking is not None:
            self.after_cancel(self._ticking)
            self._ticking = None
        super().destroy()
