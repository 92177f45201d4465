"""Scheduled work of the contacts service: lock expiry announcements, the ageing pass, call timeouts and
the callbacks' reminders and personal-to-shared moves.

All run in the service's own background threads (embedded and distributed alike), never on a read
path, and both are idempotent: they find candidates in the read model and let the domain decide, so a
second run, or a second replica running at the same moment, appends nothing new (a replica that loses
the race gets a concurrency conflict, reloads and finds nothing left to do).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from contacts.callbacks import CallbackBook
from contacts.campaignbook import CampaignBook
from contacts.handlers import ContactsService
from contacts.queries import status_condition
from contacts.schema import contact_calls, contact_locks, contacts
from contacts.statuses import DEFAULT_CATALOGUE, Catalogue

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]

# A calendar month is at least 28 days: a candidate filter in days never misses a contact the
# domain's calendar-month rule would age (the domain makes the exact decision).
_SHORTEST_MONTH_DAYS = 28


class ScheduleSettings(Protocol):
    """The part of ``kernel.settings.Settings`` the schedules read."""

    @property
    def lock_sweep_seconds(self) -> float: ...

    @property
    def ageing_interval_minutes(self) -> int: ...


class LockExpiry:
    """Announces lapsed locks: one ``LockExpired`` event per lock whose ``locked_until`` has passed."""

    def __init__(
        self,
        service: ContactsService,
        engine: Engine,
        interval_seconds: float = 5.0,
        clock: Clock | None = None,
        batch_size: int = 500,
    ) -> None:
        self._service = service
        self._engine = engine
        self._interval = interval_seconds
        self._clock = clock or service.now
        self._batch_size = batch_size

    def expire_locks(self, now: datetime | None = None) -> int:
        """Append LockExpired for every lock lapsed at ``now``; returns how many (0 when run again)."""
        moment = (now or self._clock()).astimezone(UTC)
        expired = 0
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            query = (
                sa.select(contact_locks.c.locked_until, contact_locks.c.id)
                .where(contact_locks.c.locked_until <= moment)
                .order_by(contact_locks.c.locked_until, contact_locks.c.id)
                .limit(self._batch_size)
            )
            if after is not None:
                key = sa.tuple_(contact_locks.c.locked_until, contact_locks.c.id)
                query = query.where(key > sa.tuple_(*_bound(after)))
            with self._engine.connect() as conn:
                found = [(until, key) for until, key in conn.execute(query)]
            if not found:
                return expired
            expired += self._service.expire_locks([str(key) for _, key in found], moment)
            after = found[-1]

    def run_forever(self, stop: threading.Event) -> None:
        """Expire lapsed locks every ``interval_seconds`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                count = self.expire_locks()
                if count:
                    log.info("contacts.locks_expired", count=count)
            except Exception:
                log.exception("contacts.lock_expiry_failed")
            stop.wait(self._interval)


class Ageing:
    """The ageing pass: statuses move to NO_EXISTE / SIN_RED / NO_CONTACTO after months without contact."""

    def __init__(
        self,
        service: ContactsService,
        engine: Engine,
        catalogue: Catalogue = DEFAULT_CATALOGUE,
        interval_minutes: float = 60,
        clock: Clock | None = None,
        batch_size: int = 1000,
    ) -> None:
        self._service = service
        self._engine = engine
        self._catalogue = catalogue
        self._interval = interval_minutes * 60
        self._clock = clock or service.now
        self._batch_size = batch_size

    def age_contacts(self, now: datetime | None = None) -> int:
        """Age every contact due at ``now``, in batches; returns how many changed (0 when run again)."""
        moment = (now or self._clock()).astimezone(UTC)
        aged = 0
        for status, months in self._movable():
            since = moment - timedelta(days=_SHORTEST_MONTH_DAYS * months)
            after: tuple[datetime, uuid.UUID] | None = None
            while True:
                query = (
                    sa.select(contacts.c.age_key, contacts.c.id)
                    .where(*status_condition(self._catalogue, status), contacts.c.age_key <= since)
                    .order_by(contacts.c.age_key, contacts.c.id)
                    .limit(self._batch_size)
                )
                if after is not None:
                    query = query.where(
                        sa.tuple_(contacts.c.age_key, contacts.c.id) > sa.tuple_(*_bound(after))
                    )
                with self._engine.connect() as conn:
                    found = [(age_key, key) for age_key, key in conn.execute(query)]
                if not found:
                    break
                aged += self._service.age_contacts([str(key) for _, key in found], moment)
                after = found[-1]
        return aged

    def run_forever(self, stop: threading.Event) -> None:
        """Run the ageing pass every ``interval_minutes`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                count = self.age_contacts()
                if count:
                    log.info("contacts.contacts_aged", count=count)
            except Exception:
                log.exception("contacts.ageing_failed")
            stop.wait(self._interval)

    def _movable(self) -> list[tuple[str, int]]:
        """Each status ageing may still move, with the months until its next step."""
        ranks = {step.status: rank for rank, step in enumerate(self._catalogue.ageing)}
        movable = []
        for status in self._catalogue.statuses:
            if not status.ageable:
                continue
            rank = ranks.get(status.code, -1)
            later = [step.months for step in self._catalogue.ageing[rank + 1 :]]
            if later:
                movable.append((status.code, min(later)))
        return movable


class CallTimeouts:
    """Closes calls no desk finished: not reported started within ``start_timeout_seconds`` of the
    request, or not reported ended within ``max_seconds`` of the start. Each ends ``failed`` with the
    reason, so figures never hang open; a desk's late report is then refused (the call is no longer open).
    """

    NOT_STARTED = "El puesto no informó el inicio de la llamada a tiempo"
    NOT_ENDED = "El puesto no informó el final de la llamada a tiempo"

    def __init__(
        self,
        service: ContactsService,
        engine: Engine,
        *,
        start_timeout_seconds: int = 60,
        max_seconds: int = 4 * 3600,
        interval_seconds: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self._service = service
        self._engine = engine
        self._start_timeout = timedelta(seconds=start_timeout_seconds)
        self._max = timedelta(seconds=max_seconds)
        self._interval = interval_seconds
        self._clock = clock or service.now

    def close_stale_calls(self, now: datetime | None = None) -> int:
        """Close every call overdue at ``now``; returns how many (0 when run again)."""
        moment = (now or self._clock()).astimezone(UTC)
        c = contact_calls.c
        open_calls = c.ended_at.is_(None)
        not_started = sa.and_(c.started_at.is_(None), c.requested_at <= moment - self._start_timeout)
        not_ended = c.started_at <= moment - self._max
        closed = 0
        for condition, reason in ((not_started, self.NOT_STARTED), (not_ended, self.NOT_ENDED)):
            query = sa.select(c.contact_id, c.call_id).where(open_calls, condition)
            with self._engine.connect() as conn:
                found = [(str(contact_id), call_id) for contact_id, call_id in conn.execute(query)]
            if found:
                closed += self._service.close_stale_calls(found, reason)
        return closed

    def run_forever(self, stop: threading.Event) -> None:
        """Close overdue calls every ``interval_seconds`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                count = self.close_stale_calls()
                if count:
                    log.info("contacts.stale_calls_closed", count=count)
            except Exception:
                log.exception("contacts.call_timeouts_failed")
            stop.wait(self._interval)


class CallbackSweep:
    """The callbacks' schedule: each pending callback's reminder goes out ``reminder_minutes`` before it
    is due (once: ``CallbackReminded``, relayed live by the gateway as ``callback_reminder``), and a
    personal callback still pending ``grace_minutes`` after it was due becomes shared
    (``CallbackShared``), so it is not lost while its agent is away.

    A pass appends its events ``batch_size`` callbacks per transaction (a transaction per callback made
    a pass owing a thousand reminders take 22 s on PostgreSQL). A shared callback's reminder names the
    teams working the contact's campaigns (read from ``campaigns`` once per pass; without them, every
    team), and the gateway sends it to those teams' agents only.
    """

    def __init__(
        self,
        service: ContactsService,
        book: CallbackBook,
        *,
        reminder_minutes: int = 5,
        grace_minutes: int = 30,
        interval_seconds: float = 15.0,
        clock: Clock | None = None,
        batch_size: int = 300,
        campaigns: CampaignBook | None = None,
    ) -> None:
        self._service = service
        self._book = book
        self._campaigns = campaigns
        self._batch_size = batch_size
        self._reminder = reminder_minutes
        self._grace = grace_minutes
        self._interval = interval_seconds
        self._clock = clock or service.now

    def remind(self, now: datetime | None = None) -> int:
        """Send every reminder owed at ``now``; returns how many (0 when run again)."""
        moment = (now or self._clock()).astimezone(UTC)
        until = moment + timedelta(minutes=self._reminder)
        every = self._campaigns.all() if self._campaigns is not None else []
        return self._in_batches(
            lambda: self._book.to_remind(until, self._batch_size),
            lambda found: self._service.remind_callbacks(found, self._reminder, moment, every),
        )

    def share_stale(self, now: datetime | None = None) -> int:
        """Make shared every personal callback past its grace at ``now``; returns how many (0 when run
        again)."""
        moment = (now or self._clock()).astimezone(UTC)
        due_before = moment - timedelta(minutes=self._grace)
        return self._in_batches(
            lambda: self._book.stale_personal(due_before, self._batch_size),
            lambda found: self._service.share_stale_callbacks(found, self._grace, moment),
        )

    def _in_batches(
        self,
        find: Callable[[], list[tuple[str, str]]],
        act: Callable[[list[tuple[str, str]]], int],
    ) -> int:
        """Act on what ``find`` gives until it gives a short batch or acting changes nothing (the rows
        left are then ones the domain declines, e.g. moved since: they are not asked for again now)."""
        total = 0
        while True:
            found = find()
            if not found:
                return total
            done = act(found)
            total += done
            if done == 0 or len(found) < self._batch_size:
                return total

    def run_forever(self, stop: threading.Event) -> None:
        """Remind and share every ``interval_seconds`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                reminded, shared = self.remind(), self.share_stale()
                if reminded or shared:
                    log.info("contacts.callbacks_swept", reminded=reminded, shared=shared)
            except Exception:
                log.exception("contacts.callback_sweep_failed")
            stop.wait(self._interval)


def _bound(key: tuple[datetime, uuid.UUID]) -> tuple[sa.BindParameter[datetime], sa.BindParameter[uuid.UUID]]:
    moment, contact_id = key
    return (
        sa.bindparam(None, moment, type_=contacts.c.age_key.type),
        sa.bindparam(None, contact_id, type_=contacts.c.id.type),
    )
