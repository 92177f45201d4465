"""Callbacks: ``python -m bench callbacks [--callbacks N] [--database-url URL]``.

On a fresh database (SQLite file by default, or a fresh schema of the PostgreSQL ``--database-url``,
dropped afterwards): N contacts created in
one batch, then N wrap-ups each leaving a personal callback (one command each, as agents do), then the
callbacks' schedule with a controlled clock: one reminder pass that owes all N, one pass that makes all N
shared after their grace, and a second of each (which must append nothing); then, after the callbacks
are moved (rescheduled: their reminders owed again), two sweeps reminding at once as two gateways'
processes would (own services and pools), which must send each reminder once. Prints wrap-ups per second,
each pass's seconds, events and transactions (a pass appends ``--batch-size`` callbacks per transaction),
and the p50/p99 of listing an agent's callbacks (``GET /callbacks``'s query). No target in the issue; the
figures say whether a 15 s sweep keeps up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.machine import describe
from bench.store import postgres_schema
from contacts.agenda import Visibility, visibility
from contacts.callbacks import CallbackBook
from contacts.commands import Caller, ImportRow, RecordDisposition, RescheduleCallback, Source
from contacts.domain import LockPolicy, contact_id_for_phone
from contacts.handlers import ContactsService
from contacts.scheduler import CallbackSweep
from contacts.statuses import DEFAULT_CATALOGUE
from kernel.roles import Role
from kernel.store import EventStore, create_engine
from kernel.store.schema import events
from system.migrate import upgrade

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENTS = [Caller(user_id=f"u-{n}", username=f"agente{n}", role=Role.AGENT, team="norte") for n in range(20)]
PM = Caller(user_id="u-pm", username="pm", role=Role.PROJECT_MANAGER)


class Clock:
    """A clock that stands still until moved."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench callbacks")
    parser.add_argument("--callbacks", type=int, default=2000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--batch-size", type=int, default=300, help="callbacks per transaction of a pass")
    args = parser.parse_args(argv)
    if args.database_url:
        with postgres_schema(args.database_url) as url:
            return run(url, args.callbacks, args.batch_size)
    with tempfile.TemporaryDirectory() as folder:
        return run(f"sqlite:///{Path(folder) / 'bench.db'}", args.callbacks, args.batch_size)


def run(url: str, n: int, batch_size: int = 300) -> int:
    """The run on the database at ``url``."""
    engine = create_engine(url)
    upgrade(engine)
    clock = Clock()
    store = EventStore(engine)
    service = ContactsService(engine, store, LockPolicy(10, 60), DEFAULT_CATALOGUE, clock)
    commits: list[int] = []
    store.after_commit(lambda: commits.append(1))
    book = CallbackBook(engine)
    phones = [f"+5068{n_:07d}" for n_ in range(n)]
    rows = [ImportRow(row=i + 2, e164=phone, name=f"Contacto {i}") for i, phone in enumerate(phones)]
    service.create_or_merge(rows, "bench", PM, source=Source.IMPORT)

    started = time.perf_counter()
    for i, phone in enumerate(phones):
        agent = AGENTS[i % len(AGENTS)]
        wrap_up = RecordDisposition(
            caller=agent,
            now=clock.now,
            contact_id=contact_id_for_phone(phone),
            outcome="callback",
            callback_at=START + timedelta(minutes=30, seconds=i % 600),
        )
        service.handle(wrap_up)
    wrap_seconds = time.perf_counter() - started

    sweep = CallbackSweep(
        service, book, reminder_minutes=60, grace_minutes=30, clock=clock, batch_size=batch_size
    )
    passes: list[tuple[str, float, int, int]] = []

    def timed(name: str, sweep_pass: Callable[[], int]) -> None:
        before = len(commits)
        began = time.perf_counter()
        count = sweep_pass()
        passes.append((name, time.perf_counter() - began, count, len(commits) - before))

    timed("remind", sweep.remind)
    timed("remind again", sweep.remind)
    clock.now = START + timedelta(hours=2)
    timed("share", sweep.share_stale)
    timed("share again", sweep.share_stale)
    _reschedule_all(engine, service, clock, n)
    timed("two at once", lambda: _two_sweeps(url, engine, service, clock, n, batch_size))

    listing: list[float] = []
    for i in range(200):
        began = time.perf_counter()
        book.listed(visibility(AGENTS[i % len(AGENTS)]), limit=100)
        listing.append((time.perf_counter() - began) * 1000)
    engine.dispose()

    print(describe())
    print(f"database: {url.split(':', 1)[0]}, callbacks: {n}")
    print(f"wrap-ups with a callback: {n / wrap_seconds:,.0f}/s ({wrap_seconds:.1f} s)")
    for name, seconds, count, transactions in passes:
        rate = f", {count / seconds:,.0f}/s" if count else ""
        print(f"{name:>13}: {count} events in {seconds:.2f} s{rate} ({transactions} transactions here)")
    quantiles = statistics.quantiles(listing, n=100)
    print(f"list an agent's first 100 callbacks: p50 {quantiles[49]:.1f} ms, p99 {quantiles[98]:.1f} ms")
    return 0


def _reschedule_all(engine: Engine, service: ContactsService, clock: Clock, n: int) -> None:
    """Move every callback to 30 minutes from now: its reminder is owed again."""
    due = clock.now + timedelta(minutes=30)
    for callback in CallbackBook(engine).listed(Visibility(), limit=n + 1):
        command = RescheduleCallback(
            caller=PM,
            now=clock.now,
            contact_id=callback.contact_id,
            callback_id=callback.callback_id,
            due_at=due,
        )
        service.handle(command)


def _two_sweeps(
    url: str, engine: Engine, service: ContactsService, clock: Clock, n: int, batch_size: int
) -> int:
    """Remind with two sweeps at once, each with its own service and pool; returns the reminders appended
    (SystemExit when a callback's went out twice)."""
    other_engine = create_engine(url)
    try:
        other = ContactsService(
            other_engine, EventStore(other_engine), LockPolicy(10, 60), DEFAULT_CATALOGUE, clock
        )
        sweeps = [
            CallbackSweep(s, CallbackBook(e), reminder_minutes=60, clock=clock, batch_size=batch_size)
            for s, e in ((service, engine), (other, other_engine))
        ]
        start = threading.Barrier(len(sweeps))

        def remind(sweep: CallbackSweep) -> int:
            start.wait()
            return sweep.remind()

        with ThreadPoolExecutor(len(sweeps)) as pool:
            counts = list(pool.map(remind, sweeps))
    finally:
        other_engine.dispose()
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(sa.func.count()).where(events.c.type == "contacts.CallbackReminded")
        ).scalar_one()
    if stored != 2 * n or sum(counts) != n:
        raise SystemExit(f"two sweeps at once: {counts} reminders, {stored} stored (a reminder went twice)")
    return sum(counts)
