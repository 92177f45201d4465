"""Every difference between SQLite and PostgreSQL the contacts read model has, in one object per database.

:func:`read_model_dialect` picks it once for an event store dialect (the composition root does, and hands
it to :class:`~contacts.handlers.ContactsService`, :class:`~contacts.queries.ContactQueries` and
:class:`~contacts.projection.ContactProjection`); the rest of the service asks it and never the engine's
database name. It covers: bulk inserts (binary ``COPY`` against one prepared ``executemany`` that also
feeds the full-text table), upserts, ``id IN (...)`` for thousands of ids, the upkeep of the text search
index around a bulk write (a trigram GIN index's pending list, or FTS5 segments and the WAL), emptying the
read model for a rebuild, the rows per transaction of a batch, and what the queries may keep and how.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
import structlog
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.json import set_json_dumps
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from contacts.calls import clear as clear_calls
from contacts.schema import SEARCH_INDEX, SEARCH_TABLE, contact_locks, contact_status_counts, contacts
from kernel.store import PostgresDialect, SqliteDialect, StoreDialect, store_dialect, write_transaction

log = structlog.get_logger(__name__)

# Columns in table order: what COPY and the raw SQLite INSERT write.
COLUMNS: tuple[str, ...] = tuple(c.name for c in contacts.columns)

# Rows per transaction of a batch command. PostgreSQL: small enough that deciding one chunk overlaps writing
# the last on the server. SQLite works in this process (its process CPU time equals the wall time: nothing
# overlaps) and pays per transaction for every index page a chunk dirties, written to the log at commit:
# 300,000 contacts took 40 s in chunks of 20,000 against 45-46 s in chunks of 5,000.
DEFAULT_BATCH_SIZE = 5_000
SQLITE_BATCH_SIZE = 20_000

_PG_COPY_TYPES = tuple(
    {
        "id": "uuid",
        "status_priority": "int2",
        "extra": "jsonb",
        "locked_until": "timestamptz",
        "last_contacted_at": "timestamptz",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
        "age_key": "timestamptz",
        "version": "int4",
    }.get(name, "text")
    for name in COLUMNS
)
_COPY_FROM = 200
_UUID_LIST = re.compile(r"[0-9A-Fa-f,-]*")


class ReadModelDialect(Protocol):
    """What the contacts read model does differently on one database."""

    store: StoreDialect
    """The event store's dialect on the same database (upserts, write transactions, change signals)."""

    batch_size: int
    """Rows per transaction of a batch command."""

    keeps_pages_per_connection: bool
    """Queries compile a first page once, run it on a connection of each thread's own and keep it while
    that connection's ``PRAGMA data_version`` stays (SQLite); otherwise pages are kept per process while
    a change signal stays still (PostgreSQL)."""

    probes_search_index: bool
    """A text search first asks the full-text table for its few candidates (SQLite FTS5), so its plan
    depends on the data and its statement is never kept."""

    reads_in_autocommit: bool
    """A one-statement read runs in autocommit, without BEGIN/ROLLBACK round trips (PostgreSQL)."""

    def attach(self, engine: Engine) -> None:
        """Hook what the read model needs into ``engine`` (once per engine; idempotent)."""
        ...

    def ids_match(self, ids: Sequence[str], column: sa.Column[Any] = contacts.c.id) -> sa.ColumnElement[bool]:
        """``column IN ids`` (contact ids) as one bound value."""
        ...

    def streams_match(self, column: sa.Column[Any], stream_ids: Sequence[str]) -> sa.ColumnElement[bool]:
        """``column IN stream_ids`` for up to a thousand stream ids."""
        ...

    def insert_rows(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert contact rows in :data:`COLUMNS` order (ids as text, datetimes aware), search index too."""
        ...

    def prepare_bulk(self, conn: Connection) -> None:
        """At the start of a bulk chunk's transaction: leave index upkeep to :meth:`upkeep`."""
        ...

    @contextmanager
    def upkeep(self, engine: Engine, merge_every: float) -> Iterator[PendingListMerger | None]:
        """Around a bulk write: index upkeep beside it (PostgreSQL's merger thread), then :meth:`settle`."""
        ...
        yield None

    def settle(self, engine: Engine) -> None:
        """After a bulk write, pay its deferred index costs now; a failure is only logged."""
        ...

    def clear(self, conn: Connection) -> None:
        """Empty the read model (calls included) under the append lock, in a write transaction."""
        ...


class SqliteReadModel:
    """SQLite: ``executemany`` plus one statement feeding FTS5; upkeep deferred to :meth:`settle`."""

    batch_size = SQLITE_BATCH_SIZE
    keeps_pages_per_connection = True
    probes_search_index = True
    reads_in_autocommit = False

    def __init__(self, store: StoreDialect | None = None) -> None:
        self.store: StoreDialect = store or SqliteDialect()

    def attach(self, engine: Engine) -> None:
        """Give a pooled connection back its WAL auto-checkpoint after a bulk chunk (see prepare_bulk)."""
        if not sa.event.contains(engine, "checkin", restore_wal_checkpoints):
            sa.event.listen(engine, "checkin", restore_wal_checkpoints)

    def ids_match(self, ids: Sequence[str], column: sa.Column[Any] = contacts.c.id) -> sa.ColumnElement[bool]:
        """A JSON array of the ids' hex digits, walked by ``json_each``."""
        # Contact ids are canonical (lower-case, dashed): their SQLite form is the hex digits alone.
        hexes = orjson.dumps([i.replace("-", "").lower() for i in ids]).decode()
        each: sa.Select[Any] = sa.select(sa.column("value")).select_from(
            sa.func.json_each(sa.bindparam("ids", hexes))
        )
        return column.in_(each.scalar_subquery())

    def streams_match(self, column: sa.Column[Any], stream_ids: Sequence[str]) -> sa.ColumnElement[bool]:
        return column.in_(list(stream_ids))

    def insert_rows(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        _executemany_sqlite(conn, rows)

    def prepare_bulk(self, conn: Connection) -> None:
        """Chunks rewrite the same index pages again and again; checkpointing after every chunk copied them
        to the database file each time (a third of the bulk time), and merging the full-text segments
        after every chunk rewrote them as often. The connection gets its WAL setting back when it returns
        to the pool (:func:`restore_wal_checkpoints`); :meth:`settle` merges the segments.
        """
        fairy = conn.connection
        if _WAL_HOLD not in fairy.info:
            raw: Any = fairy.dbapi_connection
            fairy.info[_WAL_HOLD] = int(raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
            raw.execute("PRAGMA wal_autocheckpoint=0")
        # The full-text index merges its segments once, at settle(), not after every chunk.
        conn.exec_driver_sql(_FTS_AUTOMERGE_OFF)

    @contextmanager
    def upkeep(self, engine: Engine, merge_every: float) -> Iterator[PendingListMerger | None]:
        try:
            yield None
        finally:
            self.settle(engine)

    def settle(self, engine: Engine) -> None:
        """Turn the full-text index's automatic merging back on, do the merges it would have done meanwhile
        (:func:`_merge_search_segments`) and checkpoint the write-ahead log the chunks left behind."""
        try:
            with write_transaction(engine, self.store) as conn:
                conn.exec_driver_sql(_FTS_AUTOMERGE_ON)
                _merge_search_segments(conn)
            raw = engine.raw_connection()
            try:
                raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                raw.close()
        except (sa.exc.DBAPIError, sqlite3.Error):
            log.warning("contacts.bulk_settle_failed", exc_info=True)

    def clear(self, conn: Connection) -> None:
        """SQLite's write transaction holds the only write lock; the full-text table is emptied first, in
        one go, so its per-row delete trigger then finds nothing to do."""
        conn.exec_driver_sql(f"DELETE FROM {SEARCH_TABLE}")  # noqa: S608
        conn.execute(contacts.delete())
        conn.execute(contact_locks.delete())
        conn.execute(contact_status_counts.delete())
        clear_calls(conn)


class PostgresReadModel:
    """PostgreSQL: binary ``COPY`` for new rows, id arrays, a trigram index merged beside bulk writes."""

    batch_size = DEFAULT_BATCH_SIZE
    keeps_pages_per_connection = False
    probes_search_index = False
    reads_in_autocommit = True

    def __init__(self, store: StoreDialect | None = None) -> None:
        self.store: StoreDialect = store or PostgresDialect()

    def attach(self, engine: Engine) -> None:
        """Nothing to hook."""

    def ids_match(self, ids: Sequence[str], column: sa.Column[Any] = contacts.c.id) -> sa.ColumnElement[bool]:
        """One array literal, cast by the server: no UUID objects built in Python, and no list dumper
        (psycopg's took ~7 ms of Python for 5,000 ids, the literal 0.4 ms)."""
        literal = sa.bindparam("ids", _uuid_array_literal(ids), type_=sa.types.NullType())
        return column == sa.any_(sa.cast(literal, postgresql.ARRAY(postgresql.UUID())))

    def streams_match(self, column: sa.Column[Any], stream_ids: Sequence[str]) -> sa.ColumnElement[bool]:
        return column == sa.any_(
            sa.bindparam("streams", list(stream_ids), type_=postgresql.ARRAY(sa.String()))
        )

    def insert_rows(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if len(rows) >= _COPY_FROM:
            _copy_postgres(conn, rows)
            return
        params = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
        for values in params:
            values["id"] = uuid.UUID(values["id"])
        conn.execute(contacts.insert(), params)

    def prepare_bulk(self, conn: Connection) -> None:
        """The chunk's trigram entries go to the index's pending list (searched like the rest of the index)
        with room for 64 MB instead of 4 MB, so the chunk does not merge the list itself; the upkeep thread
        merges it meanwhile on its own connection."""
        conn.exec_driver_sql(_BULK_PENDING_LIST)

    @contextmanager
    def upkeep(self, engine: Engine, merge_every: float) -> Iterator[PendingListMerger | None]:
        """A thread merges the trigram index's pending list every ``merge_every`` seconds on a connection of
        its own, in parallel with the chunks' writes. Merged in the writing transaction, the list cost a
        million-contact bulk 10 s of its serial path; merged beside it, 5 s of another server process (the
        merge is physical upkeep, as autovacuum does it: every row is searchable from its chunk's commit,
        in the list or in the index)."""
        merger = PendingListMerger(engine, merge_every)
        try:
            yield merger
        finally:
            merger.stop()
            self.settle(engine)

    def settle(self, engine: Engine) -> None:
        """Fold the trigram index's pending list (the write that finds it full merges it, hundreds of ms)."""
        try:
            with engine.connect() as conn:
                conn.execute(_MERGE_PENDING_LIST)
                conn.commit()
        except sa.exc.DBAPIError:
            log.warning("contacts.bulk_settle_failed", exc_info=True)

    def clear(self, conn: Connection) -> None:
        """Writers wait meanwhile (the append lock is held); readers see the old rows until the commit."""
        self.store.lock_appends(conn)
        conn.exec_driver_sql("TRUNCATE contacts, contact_locks, contact_status_counts, contact_calls")


def read_model_dialect(store: StoreDialect | Engine | Connection) -> ReadModelDialect:
    """The read model's dialect beside an event store dialect (or on the database of an engine, for tools)."""
    if isinstance(store, Engine | Connection):
        store = store_dialect(store)
    if isinstance(store, SqliteDialect):
        return SqliteReadModel(store)
    if isinstance(store, PostgresDialect):
        return PostgresReadModel(store)
    raise ValueError(f"no contacts read model for the {store.name!r} event store")


def _uuid_array_literal(ids: Sequence[str]) -> str:
    """``{id,id,...}`` for PostgreSQL to cast to ``uuid[]``; anything but uuid characters is refused."""
    joined = ",".join(ids)
    if not _UUID_LIST.fullmatch(joined):
        raise ValueError("contact ids must be uuids")
    return "{" + joined + "}"


class _TextUuidDumper(Dumper):
    """Binary ``uuid`` from its text form, so COPY takes contact ids as they are (no UUID objects)."""

    format = Format.BINARY
    oid = postgres.types["uuid"].oid

    def dump(self, obj: Any) -> bytes:
        return bytes.fromhex(obj.replace("-", ""))


def _copy_postgres(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Binary ``COPY``: psycopg packs every field in C, orjson writes ``extra``."""
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    set_json_dumps(orjson.dumps, cursor)
    cursor.adapters.register_dumper(None, _TextUuidDumper)
    names = ", ".join(f'"{name}"' for name in COLUMNS)
    try:
        with cursor.copy(f"COPY contacts ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_PG_COPY_TYPES)
            write_row = copy.write_row
            for row in rows:
                write_row(row)
    finally:
        cursor.close()


def _executemany_sqlite(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """One prepared ``INSERT`` over rows in the storage formats SQLAlchemy's types use on SQLite."""
    dumps = orjson.dumps
    stamp = _SqliteStamps()
    values = (
        (
            r[0].replace("-", ""),
            *r[1:9],
            dumps(r[9]).decode() if r[9] else "{}",
            *r[10:14],
            stamp(r[14]),
            stamp(r[15]),
            stamp(r[16]),
            stamp(r[17]),
            stamp(r[18]),
            r[19],
            r[20],
        )
        for r in rows
    )
    names = ", ".join(f'"{name}"' for name in COLUMNS)
    insert = f"INSERT INTO contacts ({names}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        # New rows take rowids above the largest (the transaction holds the write lock): index them for
        # text search in one statement.
        before = cursor.execute("SELECT coalesce(max(rowid), 0) FROM contacts").fetchone()[0]
        cursor.executemany(insert, values)
        cursor.execute(_FTS_ADD, (before,))
    finally:
        cursor.close()


class _SqliteStamps:
    """The text SQLAlchemy's ``DateTime`` stores on SQLite, remembering the last value (batches share it)."""

    def __init__(self) -> None:
        self._last: datetime | None = None
        self._text = ""

    def __call__(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        if value != self._last:
            self._last = value
            moment = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
            self._text = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
        return self._text


_WAL_HOLD = "contacts.wal_autocheckpoint"
# SQLite full-text index upkeep around bulk writes (FTS5 commands; 4 is FTS5's default automerge).
_FTS_AUTOMERGE_OFF = f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rank) VALUES ('automerge', 0)"  # noqa: S608
_FTS_AUTOMERGE_ON = f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rank) VALUES ('automerge', 4)"  # noqa: S608
_FTS_MERGE = f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rank) VALUES ('merge', 2000)"  # noqa: S608
_FTS_ADD = (
    f"INSERT INTO {SEARCH_TABLE} (rowid, search, id) SELECT rowid, search, id FROM contacts WHERE rowid > ?"  # noqa: S608
)


# What a bulk chunk's transaction lets the trigram index's pending list grow to (kB; 4 MB by default).
_BULK_PENDING_LIST = "SET LOCAL gin_pending_list_limit = 65536"
_MERGE_PENDING_LIST = sa.text("SELECT gin_clean_pending_list(CAST(:index AS regclass))").bindparams(
    index=SEARCH_INDEX
)


class PendingListMerger:
    """A thread merging the trigram index's pending list every ``interval`` seconds until stopped."""

    def __init__(self, engine: Engine, interval: float) -> None:
        self.merged_pages = 0
        """Pending-list pages merged into the index so far."""
        self._engine = engine
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="contacts-gin-merge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the merge under way, if any."""
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            with self._engine.connect() as conn:
                while not self._stopped.wait(self._interval):
                    self.merged_pages += int(conn.execute(_MERGE_PENDING_LIST).scalar_one())
                    conn.commit()
        except sa.exc.DBAPIError:
            # Upkeep only: the writing chunks merge the list themselves past 64 MB, settle() at the end.
            log.warning("contacts.pending_list_merge_failed", exc_info=True)


def restore_wal_checkpoints(dbapi_connection: Any, record: Any) -> None:
    """Pool ``checkin`` listener: give a connection back its WAL auto-checkpoint after a bulk chunk."""
    held = record.info.pop(_WAL_HOLD, None)
    if held is not None:
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={int(held)}")


def _merge_search_segments(conn: Connection) -> None:
    """Merge the full-text segments a bulk write left, as automatic merging would have: levels only.

    FTS5's ``merge`` with a positive page budget merges a level once it holds ``usermerge`` (4) segments
    and reports no change when none does. ``optimize`` instead rewrote the whole index into one segment
    after every batch, at a cost growing with the index: 14.5 s of a 1,000,000-contact bulk in ten batches
    against 5 s for these merges.
    """
    raw: Any = conn.connection.dbapi_connection
    while True:
        before = raw.total_changes
        conn.exec_driver_sql(_FTS_MERGE)
        if raw.total_changes - before < 2:
            return
