"""Next-contact latency for one agent alone and for N agents asking at once, and a check that no contact
was given twice.

``python -m bench queue [--contacts 20000] [--single 300] [--agents 50] [--claims 2000] [--pg-url URL]
[--skip-postgres] [--skip-sqlite] [--floor] [--explain]``: creates ``--contacts`` contacts
(``--contacts 1000000`` for the issue's size) in the default campaign on a fresh PostgreSQL schema and a
fresh SQLite file, streamed through the bulk writer 20,000 rows per transaction; then one agent claims
``--single`` contacts one after another (0: skip), then ``--agents`` threads released together claim
``--claims`` contacts in all (each its share, one after another; several values: one run after the
other on the same contacts), through
:class:`contacts.queue.WorkQueue` (requests arriving together are served by one transaction,
:mod:`contacts.claims`). The engine pool holds one connection per agent. Prints, for each run, claims/s,
p50/p95/p99/max latency per claim, and the number of contacts given more than once (must be 0) over
every claim of the run. ``--claims 2000 100000`` adds the issue's exactly-once run after the burst.

``--floor`` also measures the floor under any claim: the same agents each locking contacts chosen in
advance (``LockContact``, no pick), i.e. N appends of one ``ContactLocked`` serialised by the event
store's global append lock. ``--explain`` prints the plan of the never-tried pick at that size.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from bench.machine import describe
from bench.store import DEFAULT_PG_URL, postgres_schema
from contacts.campaignbook import CampaignBook
from contacts.commands import Caller, ImportRow, LockContact
from contacts.dnc import DncList
from contacts.domain import LockPolicy, contact_id_for_phone
from contacts.handlers import ContactsService
from contacts.queue import WorkQueue, explain_pick
from contacts.statuses import DEFAULT_CATALOGUE
from kernel.roles import Role
from kernel.store import EventStore, create_engine
from system.migrate import upgrade

LOADER = Caller(user_id="bench", username="bench", role=Role.PROJECT_MANAGER)
SEED_CHUNK = 20_000


def _phone(n: int) -> str:
    return f"+5068{n:07d}"


def _seed(service: ContactsService, contacts: int) -> None:
    """Create ``contacts`` contacts through the bulk writer, one transaction per chunk."""

    def batches() -> Iterator[list[ImportRow]]:
        numbers = iter(range(contacts))
        while chunk := list(itertools.islice(numbers, SEED_CHUNK)):
            yield [ImportRow(row=n, e164=_phone(n)) for n in chunk]

    started = time.perf_counter()
    for _ in service.create_or_merge_stream(batches(), "bench", LOADER):
        pass
    elapsed = time.perf_counter() - started
    print(f"  loaded {contacts} contacts in {elapsed:.1f} s ({contacts / elapsed:.0f}/s)")


def _explain(engine: Engine, queue: WorkQueue) -> None:
    """Print the plan of the first pick (never-tried group) as the queue asks it."""
    for line in explain_pick(engine, queue.campaigns.get(None), datetime.now(UTC)):
        print(f"    {line}")


def run(
    url: str,
    contacts: int,
    agents: int,
    claims: Sequence[int],
    *,
    single: int = 0,
    floor: bool = False,
    explain: bool = False,
) -> None:
    """Load, claim concurrently, print the figures."""
    # A pool of its own size: the batcher needs one writing connection, the agents a few to read; a
    # connection per agent would take half of a shared server's 100.
    engine = create_engine(url, pool_size=10, max_overflow=10)
    upgrade(engine)
    store = EventStore(engine)
    # Locks of an hour: a claim of a long run must not lapse and be given again (rightly) before the end.
    policy = LockPolicy(60, 60)
    service = ContactsService(engine, store, policy, DEFAULT_CATALOGUE, lambda: datetime.now(UTC))
    _seed(service, contacts)
    queue = WorkQueue(engine, store, service, DncList(engine), CampaignBook(engine))
    if explain:
        _explain(engine, queue)
    if floor:
        print("  floor: the same agents locking contacts chosen in advance (no pick)")
        _lock_only(service, contacts, agents, claims[0] // agents)
    if single:
        print(f"  1 agent alone × {single} claims")
        _claims(queue, 1, single)
    for total in claims:
        print(f"  {agents} agents at once, {total} claims in all")
        _claims(queue, agents, total)
    engine.dispose()


def _together(agents: int, work: Callable[[int], tuple[list[float], list[str]]]) -> None:
    """Run ``work(index)`` on ``agents`` threads released together; report latencies and repeats."""
    barrier = threading.Barrier(agents)
    latencies: list[float] = []
    claimed: list[str] = []
    errors: list[Exception] = []
    guard = threading.Lock()

    def agent(index: int) -> None:
        barrier.wait()
        try:
            mine, ids = work(index)
        except Exception as error:
            with guard:
                errors.append(error)
            return
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


def _lock_only(service: ContactsService, contacts: int, agents: int, claims: int) -> None:
    """Each agent locks its own contacts from the end of the order: one append each, no pick."""

    def work(index: int) -> tuple[list[float], list[str]]:
        caller = Caller(user_id=f"floor-{index}", username=f"piso {index}", role=Role.AGENT)
        mine: list[float] = []
        ids: list[str] = []
        for n in range(claims):
            contact_id = contact_id_for_phone(_phone(contacts - 1 - (n * agents + index)))
            began = time.perf_counter()
            service.execute(LockContact(caller=caller, now=datetime.now(UTC), contact_id=contact_id))
            mine.append(time.perf_counter() - began)
            ids.append(contact_id)
        return mine, ids

    _together(agents, work)


def _claims(queue: WorkQueue, agents: int, claims: int) -> None:
    """``agents`` threads released together claim ``claims`` contacts in all (the first ones one more
    when they do not divide evenly)."""

    def work(index: int) -> tuple[list[float], list[str]]:
        caller = Caller(user_id=f"agent-{index}", username=f"agente {index}", role=Role.AGENT)
        mine: list[float] = []
        ids: list[str] = []
        for _ in range(claims // agents + (1 if index < claims % agents else 0)):
            began = time.perf_counter()
            claim = queue.next_contact(caller)
            mine.append(time.perf_counter() - began)
            ids.append(claim.contact.id)
        return mine, ids

    _together(agents, work)


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
    for kind, count in Counter(f"{type(e).__name__}: {e}" for e in errors).most_common(3):
        print(f"  {count} × {kind}")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench queue")
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--single", type=int, default=300, help="claims of one agent alone first (0: none)")
    parser.add_argument(
        "--claims",
        type=int,
        nargs="+",
        default=[2000],
        help="claims of the agents together, in all (each run)",
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--floor", action="store_true", help="also lock chosen contacts (no pick)")
    parser.add_argument("--explain", action="store_true", help="print the pick's plan")
    args = parser.parse_args(argv)
    print(describe())
    options = {"single": args.single, "floor": args.floor, "explain": args.explain}
    if not args.skip_postgres:
        print(f"PostgreSQL: {args.contacts} contacts")
        with postgres_schema(args.pg_url) as url:
            run(url, args.contacts, args.agents, args.claims, **options)
    if not args.skip_sqlite:
        print(f"SQLite: {args.contacts} contacts")
        with tempfile.TemporaryDirectory() as folder:
            path = f"sqlite:///{Path(folder) / 'queue.db'}"
            run(path, args.contacts, args.agents, args.claims, **options)
    return 0
