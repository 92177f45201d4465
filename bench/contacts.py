"""Contacts service at scale: batch creation (events + read model), then list, lookup and command latency.

``python -m bench contacts [--n 100000] [--samples 300] [--pg-url URL] [--skip-postgres] [--skip-sqlite]``
(``--n 1000000`` for the large run). On each database (a fresh PostgreSQL schema, a fresh SQLite file):

1. ``ContactsService.create_or_merge`` creates ``--n`` contacts (ten lists, several statuses, the three
   operators) through the real handler: domain decision per row, events appended with ``append_many``
   and the read model written in the same transactions. Printed: seconds and contacts/s.
   Targets at 1,000,000: ≤ 40 s on PostgreSQL, ≤ 120 s on SQLite.
2. With that many contacts (after ``VACUUM ANALYZE``, as autovacuum would), the first page (100 rows) of
   the default-ordered list under several filters: p50/p99 in ms (target p99 ≤ 20 ms); counts by status.
3. Lookup by phone typed as users type it (``8812-3456``): p99 (target ≤ 5 ms).
4. Single commands: lock and edit of random contacts by random agents: p99 (target ≤ 15 ms).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bench.machine import describe
from bench.store import postgres_schema
from contacts.commands import Caller, ImportRow, LockContact, Source, UpdateContact
from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.statuses import DEFAULT_CATALOGUE
from contacts.views import ContactFilters
from kernel.roles import Role
from kernel.store import EventStore, create_engine
from system.migrate import upgrade
from system.tuning import BulkTuning

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LISTS = 10
# Prefix → operator, as phonenumbers' carrier data says (COSTA_RICA.md).
PREFIXES = (("88", "kolbi"), ("87", "kolbi"), ("86", "kolbi"), ("60", "telefonica"), ("61", "telefonica"),
            ("62", "telefonica"), ("70", "claro"), ("71", "claro"))  # fmt: skip
STATUSES = ("",) * 14 + ("NC", "NC", "CUELGA", "INTERESADO", "COMPLETADA", "PENDIENTE")
FIRST_NAMES = (
    "José",
    "María",
    "Ana",
    "Luis",
    "Carlos",
    "Sofía",
    "Valeria",
    "Andrés",
    "Daniela",
    "Jorge",
    "Laura",
    "Juan",
    "Gabriela",
    "Diego",
    "Fernanda",
    "Alejandro",
    "Mariana",
    "Ricardo",
    "Paola",
    "Esteban",
    "Karla",
    "Mauricio",
    "Natalia",
    "Pablo",
    "Silvia",
    "Roberto",
    "Adriana",
    "Fabián",
    "Melissa",
    "Óscar",
    "Carolina",
    "Randall",
    "Priscilla",
    "Minor",
    "Yendry",
    "Johnny",
    "Marielos",
    "Greivin",
    "Hazel",
    "Kattia",
)
LAST_NAMES = (
    "Rodríguez",
    "Jiménez",
    "Mora",
    "Vargas",
    "Rojas",
    "Solano",
    "Araya",
    "Chaves",
    "Brenes",
    "Castro",
    "Quesada",
    "Sánchez",
    "Hernández",
    "Ramírez",
    "Alvarado",
    "Núñez",
    "Méndez",
    "Salazar",
    "Cordero",
    "Calderón",
    "Soto",
    "Arias",
    "Campos",
    "Herrera",
    "Madrigal",
    "Víquez",
    "Zúñiga",
    "Porras",
    "Montero",
    "Villalobos",
    "Barrantes",
    "Fonseca",
    "Umaña",
    "Cascante",
    "Sibaja",
    "Segura",
    "Valverde",
    "Murillo",
    "Aguilar",
    "Badilla",
    "Carvajal",
    "Esquivel",
    "Gamboa",
    "Leiva",
    "Matarrita",
    "Ovares",
    "Picado",
    "Retana",
    "Saborío",
    "Ulate",
    "Zamora",
    "Bolaños",
    "Cubero",
    "Durán",
    "Elizondo",
    "Garro",
    "Jara",
    "León",
    "Marín",
    "Obando",
)


def national(i: int) -> str:
    """The i-th benchmark phone's eight national digits (distinct for i < 8,000,000)."""
    prefix, _ = PREFIXES[i % len(PREFIXES)]
    return f"{prefix}{i // len(PREFIXES):06d}"


def rows_for(n: int, list_index: int) -> list[ImportRow]:
    """The rows of one list: every LISTS-th contact, with a Costa Rican name, a status and the operator."""
    draw = random.Random(list_index)
    rows = []
    for i in range(list_index, n, LISTS):
        digits = national(i)
        name = f"{draw.choice(FIRST_NAMES)} {draw.choice(LAST_NAMES)} {draw.choice(LAST_NAMES)}"
        rows.append(
            ImportRow(
                row=i + 2,
                e164=f"+506{digits}",
                national=f"{digits[:4]}-{digits[4:]}",
                phone=digits,
                name=name,
                status=draw.choice(STATUSES),
                operator=PREFIXES[i % len(PREFIXES)][1],
            )
        )
    return rows


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 of durations in seconds, in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def timed(work: Callable[[], object], count: int) -> list[float]:
    """Durations of ``count`` calls of ``work`` (after three warm-up calls)."""
    for _ in range(3):
        work()
    durations = []
    for _ in range(count):
        start = time.perf_counter()
        work()
        durations.append(time.perf_counter() - start)
    return durations


def run(label: str, url: str, n: int, samples: int) -> None:
    """Create ``n`` contacts on ``url`` and measure the read and command figures."""
    engine = create_engine(url)
    upgrade(engine)
    store = EventStore(engine)
    service = ContactsService(engine, store, LockPolicy(), DEFAULT_CATALOGUE, tuning=BulkTuning())
    queries = ContactQueries(engine, store, DEFAULT_CATALOGUE)
    importer = Caller(user_id="u-bench", username="bench", role=Role.PROJECT_MANAGER)
    try:
        lists = [rows_for(n, k) for k in range(LISTS)]
        start = time.perf_counter()
        created = 0
        for k, rows in enumerate(lists):
            result = service.create_or_merge(rows, f"lista-{k}", importer, source=Source.GENERATOR)
            created += len(result.outcomes)
        seconds = time.perf_counter() - start
        del lists
        print(f"{label}: batch create {created:,} contacts (events + read model) in {seconds:.1f} s "
              f"= {created / seconds:,.0f} contacts/s")  # fmt: skip
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")

        rng = random.Random(7)
        now = service.now()  # the service stamps each command with its own clock anyway
        agents = [Caller(user_id=f"u-agent-{a}", username=f"agente {a}", role=Role.AGENT) for a in range(50)]
        locked_ids = [
            c.id for c in queries.list_contacts(ContactFilters(list_name="lista-4"), limit=50).items
        ]
        for contact_id, agent in zip(locked_ids, agents, strict=True):
            service.handle(LockContact(caller=agent, now=now, contact_id=contact_id, duration_minutes=60))

        filters = {
            "no filter": ContactFilters(),
            "status=NC": ContactFilters(statuses=("NC",)),
            "status=INTERESADO,COMPLETADA": ContactFilters(statuses=("INTERESADO", "COMPLETADA")),
            "list=lista-3": ContactFilters(list_name="lista-3"),
            "operator=claro": ContactFilters(operator="claro"),
            "list+status": ContactFilters(list_name="lista-7", statuses=("CUELGA",)),
            "locked=true": ContactFilters(locked=True),
            "q=full name": ContactFilters(q="maria rodriguez"),
            "q=one common name": ContactFilters(q="maría"),
            "q=rare surname": ContactFilters(q="matarrita ovares"),
            "q=phone digits": ContactFilters(q="8800012"),
            "q=whole phone": ContactFilters(q="8800-0123"),
        }
        for name, chosen in filters.items():
            p50, p99 = percentiles(timed(partial(queries.list_contacts, chosen, 100), samples))
            print(f"{label}: first page, {name:<30} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
        second = queries.list_contacts(ContactFilters(), 100).next_cursor
        p50, p99 = percentiles(timed(lambda: queries.list_contacts(ContactFilters(), 100, second), samples))
        print(f"{label}: second page (cursor), no filter{'':<14} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")

        p50, p99 = percentiles(timed(queries.counts_by_status, max(10, samples // 10)))
        print(f"{label}: counts by status{'':<22} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")

        def lookup() -> None:
            digits = national(rng.randrange(n))
            queries.get_by_phone(f"{digits[:4]}-{digits[4:]}")

        p50, p99 = percentiles(timed(lookup, samples * 3))
        print(f"{label}: lookup by phone{'':<23} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")

        free = iter(c.id for c in queries.iter_contacts(ContactFilters(list_name="lista-8"), page_size=1000))
        editable = [
            c.id for c in queries.list_contacts(ContactFilters(list_name="lista-9"), limit=1000).items
        ]

        def lock() -> None:
            service.handle(
                LockContact(caller=rng.choice(agents), now=now, contact_id=next(free), duration_minutes=5)
            )

        def edit() -> None:
            command = UpdateContact(
                caller=rng.choice(agents),
                now=now,
                contact_id=rng.choice(editable),
                note=f"nota {rng.random()}",
            )
            service.handle(command)

        durations = timed(lock, samples)
        p50, p99 = percentiles(durations)
        print(f"{label}: lock command{'':<26} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
        p50, p99 = percentiles(timed(edit, samples))
        print(f"{label}: edit command{'':<26} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
    finally:
        engine.dispose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench contacts")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--pg-url", default=os.environ.get("CALLMANAGER_TEST_DATABASE_URL", DEFAULT_PG_URL))
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args(argv)
    print(describe())
    print(f"{args.n:,} contacts, {args.samples} samples per figure, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    if not args.skip_postgres:
        with postgres_schema(args.pg_url) as url:
            run("PostgreSQL", url, args.n, args.samples)
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            run("SQLite", f"sqlite:///{Path(folder) / 'contacts.db'}", args.n, args.samples)
    return 0
