"""Callbacks: ``python -m bench callbacks [--callbacks N] [--database-url URL]``.

On a fresh database (SQLite file by default, or a fresh schema of the PostgreSQL ``--database-url``,
dropped afterwards): N contacts created in
one batch, then N wrap-ups each leaving a personal callback (one command each, as agents do), then the
callbacks' schedule with a controlled clock: one reminder pass that owes all N, one pass that makes all N
shared after their grace, and a second of each (which must append nothing). Prints wrap-ups per second,
each pass's seconds and events, and the p50/p99 of listing an agent's callbacks (``GET /callbacks``'s
query). No target in the issue; the figures say whether a 15 s sweep keeps up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.machine import describe
from bench.store import postgres_schema
from contacts.agenda import visibility
from contacts.callbacks import CallbackBook
from contacts.commands import Caller, ImportRow, RecordDisposition, Source
from contacts.domain import LockPolicy, contact_id_for_phone
from contacts.handlers import ContactsService
from contacts.scheduler import CallbackSweep
from contacts.statuses import DEFAULT_CATALOGUE
from kernel.roles import Role
from kernel.store import EventStore, create_engine
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
    args = parser.parse_args(argv)
    if args.database_url:
        with postgres_schema(args.database_url) as url:
            return run(url, args.callbacks)
    with tempfile.TemporaryDirectory() as folder:
        return run(f"sqlite:///{Path(folder) / 'bench.db'}", args.callbacks)


def run(url: str, n: int) -> int:
    """The run on the database at ``url``."""
    engine = create_engine(url)
    upgrade(engine)
    clock = Clock()
    service = ContactsService(engine, EventStore(engine), LockPolicy(10, 60), DEFAULT_CATALOGUE, clock)
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

    sweep = CallbackSweep(service, book, reminder_minutes=60, grace_minutes=30, clock=clock)
    passes: list[tuple[str, float, int]] = []
    for name, run in (("remind", sweep.remind), ("remind again", sweep.remind)):
        began = time.perf_counter()
        count = run()
        passes.append((name, time.perf_counter() - began, count))
    clock.now = START + timedelta(hours=2)
    for name, run in (("share", sweep.share_stale), ("share again", sweep.share_stale)):
        began = time.perf_counter()
        count = run()
        passes.append((name, time.perf_counter() - began, count))

    listing: list[float] = []
    for i in range(200):
        began = time.perf_counter()
        book.listed(visibility(AGENTS[i % len(AGENTS)]), limit=100)
        listing.append((time.perf_counter() - began) * 1000)
    engine.dispose()

    print(describe())
    print(f"database: {url.split(':', 1)[0]}, callbacks: {n}")
    print(f"wrap-ups with a callback: {n / wrap_seconds:,.0f}/s ({wrap_seconds:.1f} s)")
    for name, seconds, count in passes:
        rate = f", {count / seconds:,.0f}/s" if count else ""
        print(f"{name:>13}: {count} events in {seconds:.2f} s{rate}")
    quantiles = statistics.quantiles(listing, n=100)
    print(f"list an agent's first 100 callbacks: p50 {quantiles[49]:.1f} ms, p99 {quantiles[98]:.1f} ms")
    return 0
