"""Generated numbers saved as contacts: the path of ``POST /api/generate_contacts`` with ``save`` and its job.

``python -m bench generate_save [--n 100000] [--batch 20000 ...] [--again] [--pg-url URL] [--skip-postgres]
[--skip-sqlite]`` (``--n 1000000`` for the large run). On each database (a fresh PostgreSQL schema, a fresh
SQLite file), through the real contacts service (``LocalContactsClient`` over ``ContactsService`` and
``ContactQueries``, as embedded mode and the worker use them):

1. draw ``--n`` numbers with the existence check against the contacts read model (``existing_phones`` in
   slices of 10,000), as :func:`generator.batch.run_generation` does;
2. save them with :func:`generator.batch.save_numbers`: one batch command (``create_or_merge``,
   ``Source.GENERATOR``) per ``--batch`` rows; seconds and contacts/s for each batch size given (each on
   a fresh database);
3. with ``--again``, a second save of ``--n`` with the same seed, where every first-round number already
   belongs to a contact and is redrawn.

Targets at 1,000,000: generation ≤ 3 s; saving within the contacts batch-create target (≤ 40 s on
PostgreSQL, ≤ 120 s on SQLite).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.machine import describe
from bench.store import postgres_schema
from contacts.client import LocalContactsClient
from contacts.commands import Caller
from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.statuses import DEFAULT_CATALOGUE
from generator.batch import SAVE_BATCH, existing_lookup, save_numbers
from generator.draw import Method, generate
from generator.ranges import DEFAULT_WEIGHTS
from generator.service import GeneratorService
from kernel.roles import Role
from kernel.store import EventStore, create_engine
from system.migrate import upgrade
from system.tuning import BulkTuning

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MANAGER = Caller(user_id="u-bench", username="bench", role=Role.PROJECT_MANAGER)


@contextmanager
def database(kind: str, pg_url: str) -> Iterator[str]:
    """A fresh, migrated database of ``kind`` (``PostgreSQL`` or ``SQLite``); yields its URL."""
    if kind == "PostgreSQL":
        with postgres_schema(pg_url) as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'contacts.db'}"
        upgrade(url)
        yield url


def save_round(
    label: str, client: LocalContactsClient, n: int, batch: int, seed: int, list_name: str
) -> None:
    """One generation with ``save``: existence check, then batch commands; prints the phases."""
    service = GeneratorService(DEFAULT_WEIGHTS, existing=existing_lookup(client, MANAGER))
    start = time.perf_counter()
    result = service.generate(n, Method.STRATIFIED, seed=seed, avoid_existing=True)
    drawn = time.perf_counter()
    report = save_numbers(result, client, MANAGER, list_name, batch=batch)
    saved = time.perf_counter()
    print(
        f"{label}: draw + existence check {drawn - start:6.2f} s ({result.redraws:,} redrawn); "
        f"save {report.inserted:,} in batches of {batch:,}: {saved - drawn:6.1f} s "
        f"= {report.inserted / (saved - drawn):,.0f} contacts/s; total {saved - start:6.1f} s"
    )


def run(kind: str, pg_url: str, n: int, batch: int, again: bool) -> None:
    """Generate and save ``n`` numbers on a fresh database of ``kind``."""
    with database(kind, pg_url) as url:
        engine = create_engine(url)
        try:
            store = EventStore(engine)
            client = LocalContactsClient(
                ContactsService(engine, store, LockPolicy(), DEFAULT_CATALOGUE, tuning=BulkTuning()),
                ContactQueries(engine, store, DEFAULT_CATALOGUE),
            )
            save_round(f"{kind:>10} first ", client, n, batch, 1, "gen-bench-1")
            if again:
                save_round(f"{kind:>10} again ", client, n, batch, 1, "gen-bench-2")
        finally:
            engine.dispose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench generate_save")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, action="append", help="rows per batch command (repeatable)")
    parser.add_argument("--again", action="store_true", help="also save n more with the same seed")
    parser.add_argument("--pg-url", default=os.environ.get("CALLMANAGER_TEST_DATABASE_URL", DEFAULT_PG_URL))
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args(argv)
    batches = args.batch or [SAVE_BATCH]
    print(describe())
    print(f"{args.n:,} numbers, batches {batches}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    start = time.perf_counter()
    generate(args.n, Method.STRATIFIED, DEFAULT_WEIGHTS, seed=1)
    print(f"generation alone (no existence check): {time.perf_counter() - start:.2f} s")
    kinds = [k for k, skip in (("PostgreSQL", args.skip_postgres), ("SQLite", args.skip_sqlite)) if not skip]
    for kind in kinds:
        for batch in batches:
            run(kind, args.pg_url, args.n, batch, args.again)
    return 0
