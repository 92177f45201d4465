"""Every difference between SQLite and PostgreSQL the event store has, in one object per database.

:func:`store_dialect` picks it once from the engine (the composition root does, and hands it down); code
outside this module asks the dialect and never the engine's database name. A dialect covers: how a
write transaction begins (SQLite takes the write lock at ``BEGIN IMMEDIATE``), how appends are
serialised (``LOCK TABLE events IN EXCLUSIVE MODE`` on PostgreSQL; SQLite has one writer), the bulk
append (binary ``COPY`` against ``executemany``), upserts, how a reader learns of commits (SQLite's
``PRAGMA data_version``; PostgreSQL's ``LISTEN``/``NOTIFY``, :mod:`kernel.store.changes`) and how
migrations wait for one another.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from kernel.envelope import Actor
from kernel.store.engine import sqlite_data_version
from kernel.store.schema import events

if TYPE_CHECKING:
    from kernel.store.events import StreamAppend

EVENT_COLUMNS = (
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
_PG_COPY_TYPES = ("uuid", "text", "int4", "text", "int2", "timestamptz", "jsonb", "uuid", "uuid", "jsonb")


class StoreDialect(Protocol):
    """What the event store (and every table beside it) does differently on one database."""

    name: str
    """The database's name, for messages and logs only: branch on the dialect's members instead."""

    announces_changes: bool
    """Whether writers announce commits to listening processes (PostgreSQL ``NOTIFY``), so a process
    may keep rows while a :class:`~kernel.store.changes.ChangeSignal` stays still. Without it (SQLite)
    a reader asks ``PRAGMA data_version`` on a connection of its own instead."""

    def begin_write(self, conn: Connection) -> None:
        """Make the connection's next ``BEGIN`` one that will write (before the transaction begins)."""
        ...

    def lock_appends(self, conn: Connection) -> None:
        """Serialise appends for the rest of the transaction, so positions become visible in order."""
        ...

    def bulk_append(self, conn: Connection, appends: Sequence[StreamAppend]) -> None:
        """Write the events of ``appends`` to ``events`` at once, versions following the expected ones."""
        ...

    def envelope_json(self) -> sa.ColumnElement[str]:
        """An expression, over the ``events`` table's columns, for the event's envelope as the JSON text
        :meth:`~kernel.envelope.Envelope.from_json` reads, built by the database (the relay publishes it as
        it comes, without building an envelope in Python)."""
        ...

    def integrity_errors(self) -> tuple[type[Exception], ...]:
        """The driver's errors a refused bulk append raises (a unique index)."""
        ...

    def change_probe(self, engine: Engine) -> Callable[[], bool]:
        """A cheap check of whether anything may have been committed since it was last called."""
        ...

    def insert(self, table: sa.Table) -> Any:
        """An ``INSERT`` into ``table`` that takes ``on_conflict_do_update`` (an upsert)."""
        ...

    def serialise_migrations(self, conn: Connection, key: int) -> None:
        """Wait, in this transaction, for any other process migrating the same database."""
        ...


class SqliteDialect:
    """SQLite: one writer at a time, taken at ``BEGIN IMMEDIATE``; ``executemany`` for bulk appends."""

    name = "sqlite"
    announces_changes = False

    def begin_write(self, conn: Connection) -> None:
        conn.execution_options(sqlite_begin="IMMEDIATE")

    def lock_appends(self, conn: Connection) -> None:
        """Nothing to do: the write transaction holds SQLite's only write lock from its ``BEGIN``."""

    def bulk_append(self, conn: Connection, appends: Sequence[StreamAppend]) -> None:
        _executemany_sqlite(conn, appends)

    def envelope_json(self) -> sa.ColumnElement[str]:
        """``json_object``: ids are the 32 hex digits SQLAlchemy stores, times its naive UTC text (both
        read back by ``Envelope.from_json``); ``json()`` embeds the stored actor and data as JSON."""
        return _envelope_object(sa.func.json_object, sa.func.json)

    def integrity_errors(self) -> tuple[type[Exception], ...]:
        return (sqlite3.IntegrityError,)

    def change_probe(self, engine: Engine) -> Callable[[], bool]:
        """``PRAGMA data_version`` on a connection of the probe's own (~6 µs, against ~300 µs for an empty
        read through the pool), which changes with every commit of any other connection, in any process."""
        connection = engine.raw_connection()
        connection.detach()
        seen: list[int] = []

        def changed() -> bool:
            version = sqlite_data_version(connection)
            if seen and seen[0] == version:
                return False
            seen[:] = [version]
            return True

        return changed

    def insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    def serialise_migrations(self, conn: Connection, key: int) -> None:
        """Nothing to do: the migration's ``BEGIN IMMEDIATE`` holds the only write lock."""


class PostgresDialect:
    """PostgreSQL (psycopg 3): appends under a table lock, binary ``COPY`` for bulk appends, ``NOTIFY``."""

    name = "postgresql"
    announces_changes = True

    def begin_write(self, conn: Connection) -> None:
        """Nothing to do: row locks and the append lock are taken as the transaction writes."""

    def lock_appends(self, conn: Connection) -> None:
        conn.exec_driver_sql("LOCK TABLE events IN EXCLUSIVE MODE")

    def bulk_append(self, conn: Connection, appends: Sequence[StreamAppend]) -> None:
        _copy_postgres(conn, appends)

    def envelope_json(self) -> sa.ColumnElement[str]:
        """``json_build_object`` cast to text (uuid and timestamptz render in ISO form)."""
        built = _envelope_object(sa.func.json_build_object, lambda column: column)
        return sa.cast(built, sa.Text())

    def integrity_errors(self) -> tuple[type[Exception], ...]:
        from psycopg import IntegrityError

        return (IntegrityError, sqlite3.IntegrityError)

    def change_probe(self, engine: Engine) -> Callable[[], bool]:
        """Always yes: a tailing reader reads (a :class:`~kernel.store.changes.ChangeSignal` is what
        keeps reads from PostgreSQL)."""
        return lambda: True

    def insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    def serialise_migrations(self, conn: Connection, key: int) -> None:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def store_dialect(bind: Engine | Connection) -> StoreDialect:
    """The dialect of the database ``bind`` talks to (PostgreSQL or SQLite); anything else is refused."""
    name = bind.dialect.name
    if name == "postgresql":
        return PostgresDialect()
    if name == "sqlite":
        return SqliteDialect()
    raise ValueError(f"unsupported database {name!r}: use PostgreSQL or SQLite")


@contextmanager
def write_transaction(engine: Engine, dialect: StoreDialect | None = None) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it takes the write lock at BEGIN."""
    with engine.connect() as conn:
        (dialect or store_dialect(engine)).begin_write(conn)
        with conn.begin():
            yield conn


def _utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _copy_postgres(conn: Connection, appends: Sequence[StreamAppend]) -> None:
    """Stream the batch through binary ``COPY``: psycopg packs the fields in C, orjson writes the JSON."""
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.adapters.register_dumper(_JsonbText, _jsonb_text_dumper())
    dumps = orjson.dumps
    actors = _ActorJson()
    try:
        with cursor.copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_PG_COPY_TYPES)
            write_row = copy.write_row
            for append in appends:
                stream_id = append.stream_id
                version = append.expected_version
                for e in append.events:
                    version += 1
                    occurred_at = e.occurred_at
                    if occurred_at.tzinfo is not UTC:
                        occurred_at = _utc(occurred_at)
                    write_row(
                        (
                            e.id,
                            stream_id,
                            version,
                            e.type,
                            e.schema_version,
                            occurred_at,
                            actors.json(e.actor),
                            e.correlation_id,
                            e.causation_id,
                            dumps(e.data),
                        )
                    )
    finally:
        cursor.close()


class _JsonbText:
    """Marks the ``jsonb`` columns of the bulk ``COPY``, whose values arrive already serialised."""


def _jsonb_text_dumper() -> type[Any]:
    """A binary ``jsonb`` dumper for JSON already serialised by orjson: the format's version byte, then it."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class JsonbTextDumper(Dumper):
        format = Format.BINARY
        oid = 3802  # jsonb

        def dump(self, obj: bytes) -> bytes:
            return b"\x01" + obj

    return JsonbTextDumper


def _executemany_sqlite(conn: Connection, appends: Sequence[StreamAppend]) -> None:
    """One prepared ``INSERT`` run over generated tuples, in the storage formats SQLAlchemy's types use."""
    dumps = orjson.dumps
    actors = _ActorJson()
    rows = (
        (
            e.id.hex,
            append.stream_id,
            append.expected_version + i,
            e.type,
            e.schema_version,
            _sqlite_datetime(e.occurred_at),
            actors.text(e.actor),
            e.correlation_id.hex if e.correlation_id else None,
            e.causation_id.hex if e.causation_id else None,
            dumps(e.data).decode(),
        )
        for append in appends
        for i, e in enumerate(append.events, 1)
    )
    placeholders = ", ".join("?" * len(EVENT_COLUMNS))
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        insert = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({placeholders})"  # noqa: S608 (constants)
        cursor.executemany(insert, rows)
    finally:
        cursor.close()


class _ActorJson:
    """The JSON of an actor, reused while a batch keeps the same actor (it usually has one)."""

    def __init__(self) -> None:
        self._actor: Actor | None = None
        self._json = b""
        self._text = ""

    def json(self, actor: Actor) -> bytes:
        if actor is not self._actor:
            self._remember(actor)
        return self._json

    def text(self, actor: Actor) -> str:
        if actor is not self._actor:
            self._remember(actor)
        return self._text

    def _remember(self, actor: Actor) -> None:
        self._actor = actor
        self._json = orjson.dumps(actor.to_dict())
        self._text = self._json.decode()


def _envelope_object(build: Any, embed: Callable[[Any], Any]) -> sa.ColumnElement[str]:
    """The envelope's keys (those of ``Envelope.to_dict``) over the ``events`` columns; ``embed`` wraps
    the JSON columns so they are embedded as JSON, not as strings."""
    c = events.c
    built: sa.ColumnElement[str] = build(
        "id", c.id, "type", c.type, "schema_version", c.schema_version, "stream_id", c.stream_id,
        "stream_version", c.version, "position", c.position, "occurred_at", c.occurred_at,
        "actor", embed(c.actor), "correlation_id", c.correlation_id, "causation_id", c.causation_id,
        "data", embed(c.data),
    )  # fmt: skip
    return built


def _sqlite_datetime(value: datetime) -> str:
    """The text SQLAlchemy's ``DateTime`` stores on SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``), in UTC."""
    if value.tzinfo is not UTC:
        value = _utc(value)
    return value.isoformat(" ", "microseconds")[:26]
