"""Export: filters and format → save dialog → download with progress → where it was saved (or why not)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from client.api import ContactQuery, Gateway, error_text
from client.dispatch import Runner
from client.i18n import Translator

FORMATS = ("xlsx", "csv")


def human_size(size: int) -> str:
    """Bytes as ``12.3 MB``."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class ExportState(StrEnum):
    """Where the export stands."""

    IDLE = "idle"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ExportViewModel:
    """One export download; progress arrives from the worker through ``post`` (the UI dispatcher)."""

    def __init__(
        self,
        api: Gateway,
        runner: Runner,
        translate: Translator,
        post: Callable[[Callable[[], None]], None],
    ) -> None:
        self._api = api
        self._runner = runner
        self._post = post
        self.t = translate
        self.fmt = "xlsx"
        self.query = ContactQuery()
        self.state = ExportState.IDLE
        self.received = 0
        self.total: int | None = None
        self.path: Path | None = None
        self.error = ""
        self.on_change: Callable[[], None] = lambda: None

    def suggested_name(self, stamp: str) -> str:
        """The default file name, like the server's ``contactos_YYYYMMDD_HHMMSS.xlsx``."""
        return f"contactos_{stamp}.{self.fmt}"

    @property
    def text(self) -> str:
        """One line saying where the export stands."""
        if self.state is ExportState.RUNNING:
            return self.t("export.running", received=human_size(self.received))
        if self.state is ExportState.DONE:
            return self.t("export.done", path=self.path, size=human_size(self.received))
        if self.state is ExportState.FAILED:
            return self.t("export.failed", message=self.error.rstrip(". "))
        return ""

    @property
    def fraction(self) -> float | None:
        """Progress 0..1, or None when the size is unknown."""
        if self.state is ExportState.DONE:
            return 1.0
        return self.received / self.total if self.total else None

    def start(self, dest: Path) -> None:
        """Download into ``dest`` (written only when complete); a .csv/.xlsx name sets the format."""
        if self.state is ExportState.RUNNING:
            return
        suffix = dest.suffix.lower().lstrip(".")
        if suffix in FORMATS:
            self.fmt = suffix
        self.path = dest
        self.received = 0
        self.total = None
        self.error = ""
        self.state = ExportState.RUNNING
        self.on_change()
        fmt, query = self.fmt, self.query

        def progress(received: int, total: int | None) -> None:
            def show() -> None:
                if self.state is ExportState.RUNNING:
                    self.received, self.total = received, total
                    self.on_change()

            self._post(show)

        self._runner.submit(lambda: self._api.export(fmt, query, dest, progress), self._done, self._failed)

    def _done(self, written: int) -> None:
        self.received = written
        self.state = ExportState.DONE
        self.on_change()

    def _failed(self, exc: Exception) -> None:
        self.state = ExportState.FAILED
        self.error = error_text(exc)
        self.on_change()
