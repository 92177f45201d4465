"""Test doubles for the client's view models: an in-memory gateway, a manual clock scheduler, a queued
runner and a table sink that records what the view was asked to do."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from client.api import (
    ApiError,
    ContactQuery,
    Disposition,
    Forbidden,
    LockInfo,
    NotFound,
    PreconditionFailed,
    QueueEmpty,
)
from client.models import (
    DEFAULT_STATUSES,
    Callback,
    CallRequest,
    Campaign,
    CampaignProgress,
    Claim,
    Contact,
    DeskState,
    Eligibility,
    GeneratedPhone,
    Generation,
    HistoryEntry,
    JobProgress,
    Me,
    Page,
    StatusOption,
)
from client.viewmodels.contacts import Row

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PRIORITY = {s.code: s.priority for s in DEFAULT_STATUSES}


def make_contact(n: int, status: str = "SIN_GESTIONAR", **changes: Any) -> Contact:
    """Contact number ``n`` with a stable id and an 8-digit CR mobile."""
    digits = f"{88000000 + n}"
    contact = Contact(
        id=f"c{n:06d}",
        phone=digits,
        phone_e164=f"+506{digits}",
        phone_national=f"{digits[:4]}-{digits[4:]}",
        name=f"Cliente {n}",
        status=status,
        note=f"nota {n}",
        operator="kolbi",
        list="lista-1",
        version=1,
    )
    return replace(contact, **changes)


def campaign_data(campaign: Campaign) -> dict[str, Any]:
    """``campaign`` as the gateway's JSON."""
    hours = campaign.calling_hours
    return {
        "id": campaign.id,
        "name": campaign.name,
        "active": campaign.active,
        "archived": campaign.archived,
        "priority": campaign.priority,
        "max_attempts": campaign.max_attempts,
        "max_per_day": campaign.max_per_day,
        "retry_minutes": dict(campaign.retry_minutes),
        "closed_statuses": list(campaign.closed_statuses),
        "lists": list(campaign.lists),
        "teams": list(campaign.teams),
        "timezone": campaign.timezone,
        "calling_hours": None
        if hours is None
        else {day: [list(w) for w in windows] for day, windows in hours.items()},
    }


class FakeGateway:
    """The ``Gateway`` protocol in memory; ``fail[method]`` makes that call raise."""

    base_url = "http://fake"

    def __init__(self, contacts: Sequence[Contact] = (), me: Me | None = None) -> None:
        self.contacts: dict[str, Contact] = {c.id: c for c in contacts}
        self.me_value = me or Me("ana", "Agent", "equipo-1")
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, Exception] = {}
        self.jobs: dict[str, JobProgress] = {}
        self.job_reports: dict[bool, Mapping[str, Any]] = {}
        self.history_rows: list[HistoryEntry] = []
        self.changes_since: dict[str, list[HistoryEntry]] = {}
        self.call_answer = CallRequest("call-1", True, desk="puesto-1")
        self.desks_value: Sequence[DeskState] = []
        self.metrics_value: Mapping[str, Any] = {}
        self.config_value: Mapping[str, Any] = {}
        self.statuses_value: Sequence[StatusOption] = DEFAULT_STATUSES
        self.export_bytes = b"id,phone\n"
        self.report_bytes = b"fila,resultado\n"
        self.stats_value: Mapping[str, Any] | None = None
        self.call_metrics_value: Mapping[str, Any] | None = None
        self.queue: list[Claim] = []
        """What ``next_contact`` hands out, first first; empty: ``queue_empty_value`` is raised."""
        self.queue_empty_value = QueueEmpty(
            "Todos en espera de reintento.", until=NOW + timedelta(minutes=30)
        )
        self.eligibility_value: dict[str, Eligibility] = {}
        self.callbacks_value: list[Callback] = []
        self.campaigns_value: list[Campaign] = []
        self.progress_value: dict[str, CampaignProgress] = {}

    def _check(self, name: str, arg: Any = None) -> None:
        self.calls.append((name, arg))
        error = self.fail.get(name)
        if error is not None:
            raise error

    def names(self) -> list[str]:
        """Names of the calls made, in order."""
        return [name for name, _ in self.calls]

    def health(self) -> Mapping[str, Any]:
        self._check("health")
        return {"status": "healthy"}

    def me(self) -> Me:
        self._check("me")
        return self.me_value

    def statuses(self) -> Sequence[StatusOption]:
        self._check("statuses")
        return self.statuses_value

    def list_contacts(self, query: ContactQuery, limit: int, cursor: str = "") -> Page:
        self._check("list_contacts", (query, limit, cursor))
        rows = sorted(
            (c for c in self.contacts.values() if query.matches(c)),
            key=lambda c: (PRIORITY.get(c.status, 99), c.id),
        )
        start = int(cursor or 0)
        chunk = rows[start : start + limit]
        more = start + limit < len(rows)
        return Page(chunk, str(start + limit) if more else "", None)

    def get_contact(self, contact_id: str) -> Contact:
        self._check("get_contact", contact_id)
        return self.contacts[contact_id]

    def update_contact(self, contact_id: str, fields: Mapping[str, Any], version: int | None) -> Contact:
        self._check("update_contact", (contact_id, dict(fields), version))
        current = self.contacts[contact_id]
        if version is not None and version != current.version:
            raise PreconditionFailed(current=current, changes=self.changes_since.get(contact_id, []))
        updated = replace(current, version=current.version + 1, **dict(fields))
        self.contacts[contact_id] = updated
        return updated

    def delete_contact(self, contact_id: str) -> None:
        self._check("delete_contact", contact_id)
        del self.contacts[contact_id]

    def history(self, contact_id: str) -> Sequence[HistoryEntry]:
        self._check("history", contact_id)
        return self.history_rows

    def lock(self, contact_id: str, minutes: int) -> LockInfo:
        self._check("lock", (contact_id, minutes))
        until = NOW + timedelta(minutes=minutes)
        self.contacts[contact_id] = replace(
            self.contacts[contact_id], locked_by=self.me_value.username, locked_until=until
        )
        return LockInfo(self.me_value.username, until.isoformat())

    def unlock(self, contact_id: str) -> None:
        self._check("unlock", contact_id)

    def call(self, contact_id: str) -> CallRequest:
        self._check("call", contact_id)
        return self.call_answer

    def hangup(self, call_id: str, outcome: str | None = None) -> None:
        self._check("hangup", (call_id, outcome))

    def desks(self) -> Sequence[DeskState]:
        self._check("desks")
        return self.desks_value

    def start_import(self, path: Path, dry_run: bool) -> JobProgress:
        self._check("start_import", (path.name, dry_run))
        job = JobProgress(id=f"job-{uuid.uuid4().hex[:6]}", kind="import", state="queued", total=10)
        self.jobs[job.id] = job
        self.last_dry_run = dry_run
        return job

    def job(self, job_id: str) -> JobProgress:
        self._check("job", job_id)
        return self.jobs[job_id]

    def cancel_job(self, job_id: str) -> None:
        self._check("cancel_job", job_id)
        self.jobs[job_id] = replace(self.jobs[job_id], state="cancelled")

    def export(
        self, fmt: str, query: ContactQuery, dest: Path, on_progress: Callable[[int, int | None], None]
    ) -> int:
        self._check("export", (fmt, query))
        on_progress(len(self.export_bytes) // 2, len(self.export_bytes))
        dest.write_bytes(self.export_bytes)
        on_progress(len(self.export_bytes), len(self.export_bytes))
        return len(self.export_bytes)

    def download_report(self, job_id: str, fmt: str, dest: Path) -> int:
        self._check("download_report", (job_id, fmt))
        dest.write_bytes(self.report_bytes)
        return len(self.report_bytes)

    def generate(self, amount: int, method: str, save: bool) -> Generation:
        self._check("generate", (amount, method, save))
        operators = ["kolbi", "telefonica", "claro"]
        phones = [
            GeneratedPhone(f"{83000000 + i}", operators[i % 3], f"{8300 + i // 10000:04d}-{i % 10000:04d}")
            for i in range(amount)
        ]
        return Generation(True, amount, amount if save else 0, phones)

    def metrics(self) -> Mapping[str, Any]:
        self._check("metrics")
        return self.metrics_value

    def config(self) -> Mapping[str, Any]:
        self._check("config")
        return self.config_value

    def stats(self) -> Mapping[str, Any]:
        self._check("stats")
        if self.stats_value is None:
            raise Forbidden("Su rol no permite ver métricas.")
        return self.stats_value

    def call_metrics(self, since: datetime | None = None, until: datetime | None = None) -> Mapping[str, Any]:
        self._check("call_metrics", (since, until))
        if self.call_metrics_value is None:
            raise NotFound("No encontrado.")  # a gateway from before /metrics/calls
        return self.call_metrics_value

    def next_contact(self, campaign: str | None = None) -> Claim:
        self._check("next_contact", campaign)
        if not self.queue:
            raise self.queue_empty_value
        claim = self.queue.pop(0)
        self.contacts[claim.contact.id] = claim.contact
        return claim

    def disposition(self, contact_id: str, wrap: Disposition) -> Contact:
        self._check("disposition", (contact_id, wrap.body()))
        current = self.contacts[contact_id]
        note = f"{current.note}\n{wrap.note}".strip() if wrap.note else current.note
        updated = replace(
            current,
            status=wrap.status or current.status,
            note=note,
            version=current.version + 1,
            locked_by="",
            locked_by_name="",
            locked_until=None,
        )
        self.contacts[contact_id] = updated
        if wrap.callback_at is not None:
            self.callbacks_value.append(
                Callback(contact_id, wrap.callback_at, wrap.callback_scope, current.name, current.phone_e164)
            )
        return updated

    def eligibility(self, contact_id: str, campaign: str | None = None) -> Eligibility:
        self._check("eligibility", contact_id)
        return self.eligibility_value.get(contact_id, Eligibility(contact_id, True))

    def callbacks(self, due_before: datetime | None = None) -> Sequence[Callback]:
        self._check("callbacks", due_before)
        return [
            c for c in self.callbacks_value if due_before is None or (c.due_at and c.due_at <= due_before)
        ]

    def reschedule_callback(self, callback_id: str, due_at: datetime | None, scope: str | None) -> None:
        self._check("reschedule_callback", (callback_id, due_at, scope))
        self.callbacks_value = [
            replace(c, due_at=due_at or c.due_at, scope=scope or c.scope) if c.id == callback_id else c
            for c in self.callbacks_value
        ]

    def cancel_callback(self, callback_id: str) -> None:
        self._check("cancel_callback", callback_id)
        if not any(c.id == callback_id for c in self.callbacks_value):
            raise NotFound("La rellamada no existe.")
        self.callbacks_value = [c for c in self.callbacks_value if c.id != callback_id]

    def campaigns(self) -> Sequence[Campaign]:
        self._check("campaigns")
        return list(self.campaigns_value)

    def save_campaign(self, campaign_id: str | None, fields: Mapping[str, Any]) -> Campaign:
        self._check("save_campaign", (campaign_id, dict(fields)))
        if campaign_id is None:
            made = Campaign(id=str(fields["name"]).lower().replace(" ", "-"), name=str(fields["name"]))
        else:
            made = next(c for c in self.campaigns_value if c.id == campaign_id)
        changed = Campaign.from_json({**campaign_data(made), **fields})
        if changed.archived:
            changed = replace(changed, active=False)
        self.campaigns_value = [c for c in self.campaigns_value if c.id != changed.id] + [changed]
        return changed

    def campaign_progress(self, campaign_id: str) -> CampaignProgress:
        self._check("campaign_progress", campaign_id)
        if campaign_id not in self.progress_value:
            raise NotFound("No encontrado.")
        return self.progress_value[campaign_id]


class ManualScheduler:
    """``Scheduler`` on a clock the test moves with ``advance``."""

    def __init__(self) -> None:
        self.time_ms = 0
        self._pending: dict[int, tuple[int, Callable[[], None]]] = {}
        self._next = 0

    def call_later(self, delay_ms: int, callback: Callable[[], None]) -> object:
        self._next += 1
        self._pending[self._next] = (self.time_ms + delay_ms, callback)
        return self._next

    def cancel(self, handle: object) -> None:
        self._pending.pop(handle, None)  # type: ignore[call-overload]

    def now(self) -> float:
        return self.time_ms / 1000

    def advance(self, ms: int) -> None:
        """Move the clock and run every callback that fell due, in order."""
        target = self.time_ms + ms
        while True:
            due = [(at, h) for h, (at, _) in self._pending.items() if at <= target]
            if not due:
                break
            at, handle = min(due)
            self.time_ms = at
            _, callback = self._pending.pop(handle)
            callback()
        self.time_ms = target

    @property
    def pending(self) -> int:
        return len(self._pending)


class QueuedRunner:
    """``Runner`` that holds calls until the test runs them (to see in-flight states and races)."""

    def __init__(self) -> None:
        self.queue: list[tuple[Callable[[], Any], Callable[[Any], None], Callable[[Exception], None]]] = []

    def submit(
        self, call: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[Exception], None]
    ) -> None:
        self.queue.append((call, on_done, on_error))

    def run(self, index: int = 0) -> None:
        """Run one queued call (default: the oldest) and deliver its outcome."""
        call, on_done, on_error = self.queue.pop(index)
        try:
            result = call()
        except ApiError as exc:
            on_error(exc)
            return
        on_done(result)

    def run_all(self) -> None:
        while self.queue:
            self.run()


@dataclass
class RecordingSink:
    """``TableSink`` that keeps the rows like a Treeview would, and logs each operation."""

    rows: list[Row] = field(default_factory=list)
    ops: list[tuple[str, Any]] = field(default_factory=list)

    def reset(self, rows: Sequence[Row]) -> None:
        self.rows = list(rows)
        self.ops.append(("reset", len(rows)))

    def append(self, rows: Sequence[Row]) -> None:
        self.rows.extend(rows)
        self.ops.append(("append", len(rows)))

    def insert(self, index: int, row: Row) -> None:
        self.rows.insert(index, row)
        self.ops.append(("insert", row.iid))

    def update(self, row: Row) -> None:
        index = next(i for i, r in enumerate(self.rows) if r.iid == row.iid)
        self.rows[index] = row
        self.ops.append(("update", row.iid))

    def remove(self, iid: str) -> None:
        self.rows = [r for r in self.rows if r.iid != iid]
        self.ops.append(("remove", iid))

    def iids(self) -> list[str]:
        return [r.iid for r in self.rows]
