"""Next-contact latency with N agents asking at once, and a check that no contact was given twice.

``python -m bench queue [--contacts 20000] [--agents 50] [--claims 20] [--pg-url URL] [--skip-postgres]
[--skip-sqlite]``: creates ``--contacts`` contacts (one import batch) on a fresh PostgreSQL schema and a
fresh SQLite file, then starts ``--agents`` threads released together, each claiming ``--claims``
contacts through :class:`contacts.queue.WorkQueue` (pick and lock in one transaction). Prints claims/s,
p50/p95/p99/max latency per claim, and the number of contacts given more than once (must be 0).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.machine import describe
from bench.store import DEFAULT_PG_URL, postgres_schema
from contacts.campaignbook import CampaignBook
from contacts.commands import Caller, ImportRow
from contacts.dnc import DncList
from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.queue import WorkQueue
from contacts.statuses import DEFAULT_CATALOGUE
from kernel.roles import Role
from kernel.store import EventStore, create_engine
from system.migrate import upgrade

LOADER = Caller(user_id="bench", username="bench", role=Role.PROJECT_MANAGER)


def run(url: str, contacts: int, agents: int, claims: int) -> None:
    """Load, claim concurrently, print the figures."""
    engine = create_engine(url)
    upgrade(engine)
    store = EventStore(engine)
    service = ContactsService(engine, store, LockPolicy(10, 60), DEFAULT_CATALOGUE, lambda: datetime.now(UTC))
    rows = [ImportRow(row=n, e164=f"+5068{n:07d}") for n in range(contacts)]
    started = time.perf_counter()
    service.create_or_merge(rows, "bench", LOADER)
    print(f"  loaded {contacts} contacts in {time.perf_counter() - started:.1f} s")
    queue = WorkQueue(engine, store, service, DncList(engine), CampaignBook(engine))
    barrier = threading.Barrier(agents)
    latencies: list[float] = []
    claimed: list[str] = []
    errors: list[Exception] = []
    guard = threading.Lock()

    def agent(index: int) -> None:
        caller = Caller(user_id=f"agent-{index}", username=f"agente {index}", role=Role.AGENT)
        mine: list[float] = []
        ids: list[str] = []
        barrier.wait()
        for _ in range(claims):
            began = time.perf_counter()
            try:
                claim = queue.next_contact(caller)
            except Exception as error:
                with guard:
                    errors.append(error)
                return
            mine.append(time.perf_counter() - began)
            ids.append(claim.contact.id)
        with guard:
            latencies.extend(mine)
            claimed.extend(ids)

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(agents)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    repeated = sum(1 for count in Counter(claimed).values() if count > 1)
    _report(latencies, elapsed, repeated, errors)
    engine.dispose()


def _report(latencies: Sequence[float], elapsed: float, repeated: int, errors: Sequence[Exception]) -> None:
    if not latencies:
        print(f"  no claims; errors: {errors[:3]}")
        return
    ordered = sorted(latencies)
    cut = statistics.quantiles(ordered, n=100) if len(ordered) > 1 else [ordered[0]] * 99

    def ms(value: float) -> str:
        return f"{value * 1000:.1f}"

    print(
        f"  {len(ordered)} claims in {elapsed:.2f} s ({len(ordered) / elapsed:.0f}/s); latency ms "
        f"p50 {ms(cut[49])} p95 {ms(cut[94])} p99 {ms(cut[98])} max {ms(ordered[-1])}; "
        f"contacts given twice: {repeated}; errors: {len(errors)}"
    )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench queue")
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--claims", type=int, default=20)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args(argv)
    print(describe())
    if not args.skip_postgres:
        print(f"PostgreSQL: {args.agents} agents × {args.claims} claims over {args.contacts} contacts")
        with postgres_schema(args.pg_url) as url:
            run(url, args.contacts, args.agents, args.claims)
    if not args.skip_sqlite:
        print(f"SQLite: {args.agents} agents × {args.claims} claims over {args.contacts} contacts")
        with tempfile.TemporaryDirectory() as folder:
            run(f"sqlite:///{Path(folder) / 'queue.db'}", args.contacts, args.agents, args.claims)
    return 0
