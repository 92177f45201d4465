"""Event store bulk append against the raw driver, side by side on PostgreSQL and SQLite.

``python -m bench store [--n 200000] [--batch 10000] [--per-stream 5] [--rounds 1] [--pg-url URL]
[--skip-postgres] [--skip-sqlite]`` (``--n 1000000`` for the large run). With several rounds the order
alternates (store last, then first) and the best of each side counts.

Both sides start from the same events (ids, streams, versions, times, actor, a JSON payload), write into
the same migrated ``events`` table (with its ``UNIQUE(id)`` and ``UNIQUE(stream_id, version)`` indexes),
``--batch`` events per transaction, on a fresh schema (PostgreSQL) or a fresh file (SQLite) each run:

* PostgreSQL: raw psycopg ``COPY`` with ``write_row`` in text format (JSON dumped with orjson) and in
  binary format (``set_types``), vs ``EventStore.append_many`` (binary ``COPY``).
* SQLite: raw ``sqlite3`` ``executemany`` with the store's pragmas vs ``EventStore.append_many``.

It prints rows/s and the ratio store/raw (target ≥ 80 %), then, for SQLite, where the time goes: building
rows in Python, the insert without the two unique indexes, and with ``synchronous=OFF``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from bench.machine import describe
from kernel.envelope import Actor, Envelope
from kernel.store import EventStore, StreamAppend, create_engine
from system.migrate import upgrade

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
COLUMNS = (
    "id",
    "stream_id",
    "version",
    "type",
    "schema_version",
    "occurred_at",
    "actor",
    "correlation_id",
    "causation_id",
    "data",
)
PG_TYPES = ("uuid", "text", "int4", "text", "int2", "timestamptz", "jsonb", "uuid", "uuid", "jsonb")
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-65536",
)


@dataclass(frozen=True, slots=True)
class Workload:
    """The same events twice: as store batches (envelopes) and as plain values for the raw driver."""

    batches: list[list[StreamAppend]]
    raw: list[list[tuple[Any, ...]]]
    count: int


def make_workload(n: int, batch: int, per_stream: int) -> Workload:
    """``n`` events of ``per_stream`` events per new stream, cut into transactions of ``batch`` events."""
    start = datetime(2025, 5, 1, 14, 0, tzinfo=UTC)
    actor = Actor(user_id="importer", role="admin", desk="")
    correlation = uuid.uuid4()
    batches: list[list[StreamAppend]] = []
    raw: list[list[tuple[Any, ...]]] = []
    streams = -(-n // per_stream)
    for first_stream in range(0, streams, batch // per_stream):
        appends: list[StreamAppend] = []
        rows: list[tuple[Any, ...]] = []
        for s in range(first_stream, min(streams, first_stream + batch // per_stream)):
            stream_id = f"contact-{s:08d}"
            events: list[Envelope] = []
            for v in range(1, per_stream + 1):
                i = s * per_stream + v - 1
                if i >= n:
                    break
                data = {
                    "phone": f"+506{80000000 + i % 20000000}",
                    "name": f"Contacto {i} Núñez",
                    "status": "Nuevo",
                    "source": "import:ventas-mayo.xlsx",
                    "row": i,
                }
                e = Envelope(
                    type="contacts.ContactImported",
                    stream_id=stream_id,
                    data=data,
                    occurred_at=start + timedelta(microseconds=i),
                    actor=actor,
                    correlation_id=correlation,
                )
                events.append(e)
                rows.append(
                    (e.id, stream_id, v, e.type, 1, e.occurred_at, actor.to_dict(), correlation, None, data)
                )
            appends.append(StreamAppend(stream_id, 0, events))
        batches.append(appends)
        raw.append(rows)
    return Workload(batches, raw, n)


def rate(count: int, run: Callable[[], None]) -> float:
    """Rows per second of one ``run``."""
    began = time.perf_counter()
    run()
    return count / (time.perf_counter() - began)


def store_run(engine: sa.Engine, work: Workload) -> float:
    """``EventStore.append_many``, one transaction per batch."""
    store = EventStore(engine)

    def run() -> None:
        for appends in work.batches:
            with store.transaction() as conn:
                store.append_many(conn, appends)

    return rate(work.count, run)


@contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    """A migrated fresh schema; yields a URL whose connections use it. Dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    try:
        upgrade(rendered)
        yield rendered
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_raw_run(url: str, work: Workload, *, binary: bool) -> float:
    """Raw psycopg ``COPY ... FROM STDIN`` with ``write_row``, one transaction per batch.

    Text format gets the JSON as orjson-dumped strings; binary format declares the column types with
    ``set_types`` and lets psycopg dump the dicts with orjson.
    """
    import psycopg
    from psycopg.types.json import set_json_dumps

    parsed = sa.make_url(url)
    dumps = orjson.dumps
    with psycopg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database,
        options=str(parsed.query["options"]),
    ) as conn:
        set_json_dumps(dumps, conn)
        statement = f"COPY events ({', '.join(COLUMNS)}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")

        def run_text() -> None:
            for rows in work.raw:
                with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
                    for r in rows:
                        copy.write_row(
                            (
                                r[0],
                                r[1],
                                r[2],
                                r[3],
                                r[4],
                                r[5],
                                dumps(r[6]).decode(),
                                r[7],
                                r[8],
                                dumps(r[9]).decode(),
                            )
                        )

        def run_binary() -> None:
            for rows in work.raw:
                with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
                    copy.set_types(PG_TYPES)
                    for r in rows:
                        copy.write_row(r)

        return rate(work.count, run_binary if binary else run_text)


def postgres_round(server_url: str, work: Workload, store_first: bool) -> tuple[float, float, float]:
    """Rows/s of raw text COPY, raw binary COPY and the store, each on a fresh schema."""

    def store() -> float:
        with postgres_schema(server_url) as url:
            engine = create_engine(url)
            try:
                return store_run(engine, work)
            finally:
                engine.dispose()

    first = store() if store_first else 0.0
    with postgres_schema(server_url) as url:
        text = postgres_raw_run(url, work, binary=False)
    with postgres_schema(server_url) as url:
        binary = postgres_raw_run(url, work, binary=True)
    return text, binary, first if store_first else store()


def sqlite_rows(rows: Sequence[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """The values SQLAlchemy's types store on SQLite, built the way a hand-written loader would."""
    dumps = orjson.dumps
    for r in rows:
        yield (
            r[0].hex,
            r[1],
            r[2],
            r[3],
            r[4],
            r[5].strftime("%Y-%m-%d %H:%M:%S.%f"),
            dumps(r[6]).decode(),
            r[7].hex,
            None,
            dumps(r[9]).decode(),
        )


def sqlite_raw_run(path: Path, work: Workload, *, pragmas: Sequence[str] = SQLITE_PRAGMAS) -> float:
    """Raw sqlite3 ``executemany`` of one prepared INSERT, one ``BEGIN IMMEDIATE`` transaction per batch."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in pragmas:
        conn.execute(pragma)
    insert = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"

    def run() -> None:
        for rows in work.raw:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, sqlite_rows(rows))
            conn.execute("COMMIT")

    try:
        return rate(work.count, run)
    finally:
        conn.close()


def sqlite_file(folder: Path, *, indexes: bool = True) -> Path:
    """A fresh migrated SQLite file, optionally without the events table's unique indexes."""
    path = folder / f"{uuid.uuid4().hex}.db"
    upgrade(f"sqlite:///{path}")
    if not indexes:
        conn = sqlite3.connect(path)
        (create,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()
        kept = [line for line in create.splitlines() if "UNIQUE" not in line]
        kept[-2] = kept[-2].rstrip().rstrip(",")
        conn.executescript(f"DROP TABLE events; {chr(10).join(kept)};")
        conn.close()
    return path


def sqlite_round(work: Workload, folder: Path, store_first: bool) -> tuple[float, float]:
    """Rows/s of raw executemany and of the store, each on a fresh file."""

    def store() -> float:
        engine = create_engine(f"sqlite:///{sqlite_file(folder)}")
        try:
            return store_run(engine, work)
        finally:
            engine.dispose()

    first = store() if store_first else 0.0
    raw = sqlite_raw_run(sqlite_file(folder), work)
    return raw, first if store_first else store()


def sqlite_breakdown(work: Workload, folder: Path) -> dict[str, float]:
    """Rows/s of the parts of a raw SQLite load, to show what limits it."""
    python_only = rate(work.count, lambda: [sum(1 for _ in sqlite_rows(rows)) for rows in work.raw])
    no_indexes = sqlite_raw_run(sqlite_file(folder, indexes=False), work)
    no_fsync = sqlite_raw_run(
        sqlite_file(folder),
        work,
        pragmas=(*SQLITE_PRAGMAS[:1], "PRAGMA synchronous=OFF", *SQLITE_PRAGMAS[2:]),
    )
    return {
        "building rows in Python only": python_only,
        "raw insert without the unique indexes": no_indexes,
        "raw insert with synchronous=OFF": no_fsync,
    }


def report(label: str, raw: float, store: float) -> None:
    print(f"{label:<34} raw {raw:>9,.0f} rows/s   store {store:>9,.0f} rows/s   store/raw {store / raw:6.1%}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench store", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="events to append (try 1000000)")
    parser.add_argument("--batch", type=int, default=10_000, help="events per transaction")
    parser.add_argument("--per-stream", type=int, default=5, help="events per stream")
    parser.add_argument("--rounds", type=int, default=1, help="repeat and keep the best")
    parser.add_argument("--pg-url", default=os.environ.get("CALLMANAGER_TEST_DATABASE_URL", DEFAULT_PG_URL))
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args(argv)
    if args.batch % args.per_stream:
        parser.error("--batch must be a multiple of --per-stream")

    print(describe())
    work = make_workload(args.n, args.batch, args.per_stream)
    print(
        f"{work.count:,} events, {args.per_stream} per stream, {args.batch:,} per transaction, "
        f"best of {args.rounds}"
    )
    if not args.skip_postgres:
        pg = [postgres_round(args.pg_url, work, i % 2 == 1) for i in range(args.rounds)]
        store = max(s for _, _, s in pg)
        report("PostgreSQL vs raw COPY (text)", max(t for t, _, _ in pg), store)
        report("PostgreSQL vs raw COPY (binary)", max(b for _, b, _ in pg), store)
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
            folder = Path(tmp)
            lite = [sqlite_round(work, folder, i % 2 == 1) for i in range(args.rounds)]
            report("SQLite vs raw executemany", max(r for r, _ in lite), max(s for _, s in lite))
            print("SQLite, where the time goes:")
            for part, rows_per_s in sqlite_breakdown(work, folder).items():
                print(f"  {part:<40} {rows_per_s:>11,.0f} rows/s")
    return 0
