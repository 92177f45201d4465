"""Import: choose a file → dry run → summary → confirm → live progress → report with rejected rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from client.api import ApiError, Gateway, error_text
from client.dispatch import Runner, Scheduler
from client.i18n import Translator
from client.models import JobProgress
from client.sheets import write_table


class ImportState(StrEnum):
    """Where the import stands."""

    IDLE = "idle"
    CHECKING = "checking"
    PREVIEW = "preview"
    IMPORTING = "importing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


OUTCOMES = ("rejected", "locked", "merged", "warning")


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """One row of a report that did not simply go in: rejected, left alone (locked), merged into an earlier
    row, or warned."""

    row: int
    phone: str
    outcome: str
    detail: str


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """Counts and noteworthy rows of a (dry-run or real) import report.

    A dry run is the real import rolled back: a server that states the ``merge`` mode reports its real
    counts; an older one counted only ``new`` and ``existing`` contacts, read as inserted and updated here.
    """

    total: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0
    rejected: int = 0
    entries: Sequence[ReportEntry] = field(default_factory=tuple)
    files: bool = False

    @property
    def errors(self) -> Sequence[tuple[int, str]]:
        """Rejected rows as (row, reason)."""
        return tuple((e.row, e.detail) for e in self.entries if e.outcome == "rejected")

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> ImportSummary:
        """The summary of a job report (``errors``, ``merged`` and ``warnings`` lists of rows)."""
        entries: list[ReportEntry] = []
        sources = (
            ("errors", "rejected"),
            ("rejected", "rejected"),
            ("locked_rows", "locked"),
            ("warnings", "warning"),
        )
        for key, outcome in sources:
            value = report.get(key)
            if not isinstance(value, list) or (key == "rejected" and isinstance(report.get("errors"), list)):
                continue
            entries.extend(
                ReportEntry(
                    _int(item.get("row")),
                    str(item.get("phone") or ""),
                    outcome,
                    str(item.get("message") or item.get("reason") or ""),
                )
                for item in value
                if isinstance(item, Mapping)
            )
        merged_rows = report.get("merged")
        if isinstance(merged_rows, list):
            entries.extend(
                ReportEntry(
                    _int(item.get("row")), str(item.get("phone") or ""), "merged", str(item.get("into") or "")
                )
                for item in merged_rows
                if isinstance(item, Mapping)
            )
        entries.sort(key=lambda e: (e.row, OUTCOMES.index(e.outcome)))

        def count(*keys: str) -> int:
            for key in keys:
                value = report.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
            return 0

        dry = bool(report.get("dry_run")) and "new" in report and "merge" not in report
        rejected = report.get("rejected")
        return cls(
            total=count("total", "rows"),
            inserted=count("new") if dry else count("inserted"),
            updated=count("existing") if dry else count("updated"),
            unchanged=0 if dry else count("unchanged"),
            merged=count("duplicates_merged") or (len(merged_rows) if isinstance(merged_rows, list) else 0),
            rejected=rejected if isinstance(rejected, int) else sum(e.outcome == "rejected" for e in entries),
            entries=tuple(entries),
            files=isinstance(report.get("report_files"), Mapping),
        )

    def text_values(self) -> dict[str, int]:
        """Counts for the message templates."""
        return {
            "total": self.total,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "merged": self.merged,
            "rejected": self.rejected,
        }


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else int(str(value or 0) or 0)


class ImportViewModel:
    """Drives one import; progress comes from ``job_progress`` events and, as a safety net, from polling."""

    poll_ms = 1000

    def __init__(self, api: Gateway, runner: Runner, scheduler: Scheduler, translate: Translator) -> None:
        self._api = api
        self._runner = runner
        self._scheduler = scheduler
        self.t = translate
        self.state = ImportState.IDLE
        self.path: Path | None = None
        self.job: JobProgress | None = None
        self.preview: ImportSummary | None = None
        self.result: ImportSummary | None = None
        self.error = ""
        self.notice = ""
        self._timer: object | None = None
        self.on_change: Callable[[], None] = lambda: None

    @property
    def text(self) -> str:
        """One line saying where the import stands."""
        name = self.path.name if self.path else ""
        if self.state is ImportState.IDLE:
            return self.t("import.idle")
        if self.state is ImportState.CHECKING:
            return self.t("import.checking", file=name)
        if self.state is ImportState.PREVIEW and self.preview is not None:
            return self.t("import.preview", file=name, **self.preview.text_values())
        if self.state is ImportState.IMPORTING:
            job = self.job
            return self.t(
                "import.running", file=name, done=job.done if job else 0, total=job.total if job else "?"
            )
        if self.state is ImportState.DONE and self.result is not None:
            return self.t("import.done", **self.result.text_values())
        if self.state is ImportState.CANCELLED:
            return self.t("import.cancelled")
        return self.t("import.failed", message=self.error)

    @property
    def fraction(self) -> float:
        """Progress bar fill, 0..1."""
        job = self.job
        if job is None or not job.total:
            return 1.0 if self.state is ImportState.DONE else 0.0
        return min(1.0, job.done / job.total)

    @property
    def can_confirm(self) -> bool:
        """Whether the confirm button is offered (after a dry run)."""
        return self.state is ImportState.PREVIEW

    @property
    def summary(self) -> ImportSummary | None:
        """The final report, or the dry run's while previewing."""
        return self.result if self.state is ImportState.DONE else self.preview

    @property
    def report_rows(self) -> Sequence[tuple[int, str, str, str]]:
        """Rows of the report shown in the table: row, phone, outcome, detail (in the user's language)."""
        summary = self.summary
        if summary is None:
            return ()
        return tuple(
            (e.row, e.phone, self.t(f"import.outcome.{e.outcome}"), self._detail(e)) for e in summary.entries
        )

    def _detail(self, entry: ReportEntry) -> str:
        return self.t("import.merged_into", row=entry.detail) if entry.outcome == "merged" else entry.detail

    @property
    def can_save_report(self) -> bool:
        """Whether there is a report to save (the server's files, or rows to list)."""
        summary = self.summary
        return summary is not None and (summary.files or bool(summary.entries))

    def choose(self, path: Path) -> None:
        """Start a dry run of ``path``."""
        self._stop_polling()
        self.path = path
        self.preview = None
        self.result = None
        self.error = ""
        self.notice = ""
        self._start(ImportState.CHECKING, dry_run=True)

    def confirm(self) -> None:
        """Import the checked file for real."""
        if self.state is not ImportState.PREVIEW or self.path is None:
            return
        self._start(ImportState.IMPORTING, dry_run=False)

    def cancel(self) -> None:
        """Cancel the running job (the state changes only when the server confirms)."""
        job = self.job
        if job is None or job.finished or self.state not in (ImportState.CHECKING, ImportState.IMPORTING):
            self._stop_polling()
            self.state = ImportState.IDLE if self.state is ImportState.PREVIEW else self.state
            self.on_change()
            return
        self._runner.submit(lambda: self._api.cancel_job(job.id), lambda _: self._poll_now(), self._failed)

    def _start(self, state: ImportState, *, dry_run: bool) -> None:
        path = self.path
        assert path is not None
        self.state = state
        self.job = None
        self.notice = ""
        self.on_change()
        self._runner.submit(lambda: self._api.start_import(path, dry_run), self._started, self._failed)

    def _started(self, job: JobProgress) -> None:
        self.job = job
        self.on_change()
        if job.finished:
            self._finished(job)
        else:
            self._schedule_poll()

    def _failed(self, exc: Exception) -> None:
        self._stop_polling()
        self.state = ImportState.FAILED
        self.error = error_text(exc)
        self.on_change()

    def _schedule_poll(self) -> None:
        self._stop_polling()
        self._timer = self._scheduler.call_later(self.poll_ms, self._poll_now)

    def _stop_polling(self) -> None:
        if self._timer is not None:
            self._scheduler.cancel(self._timer)
            self._timer = None

    def _poll_now(self) -> None:
        self._timer = None
        job = self.job
        if job is None or self.state not in (ImportState.CHECKING, ImportState.IMPORTING):
            return
        self._runner.submit(lambda: self._api.job(job.id), self._progress, self._failed)

    def _progress(self, job: JobProgress) -> None:
        if (
            self.job is None
            or job.id != self.job.id
            or self.state not in (ImportState.CHECKING, ImportState.IMPORTING)
        ):
            return
        self.job = job
        if job.finished:
            self._finished(job)
            return
        self.on_change()
        if self._timer is None:
            self._schedule_poll()

    def _finished(self, job: JobProgress) -> None:
        self._stop_polling()
        if job.state == "cancelled":
            self.state = ImportState.CANCELLED
        elif job.state == "failed":
            self.state = ImportState.FAILED
            self.error = job.message or "el trabajo terminó con error"
        elif self.state is ImportState.CHECKING:
            self.preview = ImportSummary.from_report(job.report)
            self.state = ImportState.PREVIEW
        else:
            self.result = ImportSummary.from_report(job.report)
            self.state = ImportState.DONE
        self.on_change()

    def apply(self, name: str, payload: Mapping[str, Any]) -> None:
        """A ``job_progress`` event for our job moves the bar (and may finish it)."""
        if name != "job_progress" or self.job is None:
            return
        event = JobProgress.from_json(payload)
        if event.id != self.job.id:
            return
        if event.finished and not event.report:
            self._poll_now()  # the event has no report: read it from the job
            return
        self._progress(event)

    def save_report(self, path: Path) -> None:
        """Save the report as ``path`` (.xlsx or .csv): the server's complete file when the job wrote one,
        else the rows shown; ``notice`` says how it went."""
        summary, job = self.summary, self.job
        fmt = path.suffix.lower().lstrip(".")
        if summary is not None and summary.files and job is not None and fmt in ("xlsx", "csv"):
            self._runner.submit(
                lambda: self._api.download_report(job.id, fmt, path),
                lambda _size: self._noted(self.t("import.report_saved", path=path)),
                lambda exc: self._noted(
                    self.t(
                        "file.failed", path=path, message=exc.message if isinstance(exc, ApiError) else exc
                    )
                ),
            )
            return
        headers = [
            self.t("import.row"),
            self.t("import.phone"),
            self.t("import.outcome"),
            self.t("import.reason"),
        ]
        try:
            write_table(path, headers, list(self.report_rows))
        except OSError as exc:
            self._noted(self.t("file.failed", path=path, message=exc))
            return
        self._noted(self.t("import.report_saved", path=path))

    def _noted(self, text: str) -> None:
        self.notice = text
        self.on_change()
