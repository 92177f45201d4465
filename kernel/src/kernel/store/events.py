"""The append-only event store on SQLAlchemy 2 (PostgreSQL with psycopg 3, or SQLite).

Appends are serialised (``LOCK TABLE events IN EXCLUSIVE MODE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite), so global positions become visible in order: a reader tailing by position never skips an event
whose transaction committed late. Reads are not blocked by appends.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from kernel.envelope import Actor, Envelope
from kernel.store.engine import write_transaction
from kernel.store.schema import events, positions

_COLUMNS = (
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


class ConcurrencyError(Exception):
    """The stream moved on since the caller read it: reload, decide again, or report a conflict."""

    def __init__(self, stream_id: str, expected: int, actual: int | None = None) -> None:
        detail = f", it is at {actual}" if actual is not None else ""
        super().__init__(f"stream {stream_id!r} expected at version {expected}{detail}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True, slots=True)
class StreamAppend:
    """New events for one stream, to be appended after ``expected_version``."""

    stream_id: str
    expected_version: int
    events: Sequence[Envelope]


class EventStore:
    """Append and read events. Writes take a connection so callers can add their own rows atomically."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction; everything done on the connection commits or rolls back together."""
        with write_transaction(self.engine) as conn:
            yield conn

    def append(
        self, conn: Connection, stream_id: str, expected_version: int, new_events: Sequence[Envelope]
    ) -> list[Envelope]:
        """Append ``new_events`` to one stream if it is still at ``expected_version``.

        Raises :class:`ConcurrencyError` otherwise. Returns the events with version and position.
        """
        if not new_events:
            return []
        self._lock(conn)
        actual = self.stream_version(conn, stream_id)
        if actual != expected_version:
            raise ConcurrencyError(stream_id, expected_version, actual)
        rows = [self._row(e, stream_id, expected_version + i) for i, e in enumerate(new_events, 1)]
        result = conn.execute(events.insert().returning(events.c.position), rows)
        stored_positions = [r[0] for r in result]
        return [
            e.stored_as(expected_version + i, p)
            for i, (e, p) in enumerate(zip(new_events, stored_positions, strict=True), 1)
        ]

    def append_many(self, conn: Connection, appends: Sequence[StreamAppend]) -> list[Envelope]:
        """Bulk-append to many streams in one go (PostgreSQL ``COPY``, SQLite ``executemany``).

        Each stream must still be at its expected version. The check is the ``(stream_id, version)``
        unique index: writing ``expected + 1`` fails whenever the stream has moved on, and the whole
        batch is refused with :class:`ConcurrencyError` (the caller's transaction is then unusable).
        """
        staged: list[Envelope] = []
        for append in appends:
            for i, e in enumerate(append.events, 1):
                staged.append(
                    Envelope(
                        type=e.type,
                        stream_id=append.stream_id,
                        data=e.data,
                        id=e.id,
                        schema_version=e.schema_version,
                        stream_version=append.expected_version + i,
                        occurred_at=e.occurred_at,
                        actor=e.actor,
                        correlation_id=e.correlation_id,
                        causation_id=e.causation_id,
                    )
                )
        if not staged:
            return []
        self._lock(conn)
        try:
            if self._postgres:
                self._copy_postgres(conn, staged)
            else:
                self._executemany_sqlite(conn, staged)
        except _DuplicateVersion as exc:
            raise ConcurrencyError(_conflicting_stream(str(exc), appends), -1) from exc
        last = conn.execute(sa.select(sa.func.max(events.c.position))).scalar_one()
        first = last - len(staged) + 1
        return [e.stored_as(e.stream_version, first + i) for i, e in enumerate(staged)]

    def stream_version(self, conn: Connection, stream_id: str) -> int:
        """The version of the newest event in a stream (0 for a stream with none)."""
        query = sa.select(sa.func.coalesce(sa.func.max(events.c.version), 0)).where(
            events.c.stream_id == stream_id
        )
        return int(conn.execute(query).scalar_one())

    def read_stream(self, stream_id: str, after_version: int = 0, conn: Connection | None = None) -> list[Envelope]:
        """Every event of one stream after ``after_version``, oldest first."""
        query = (
            sa.select(events)
            .where(events.c.stream_id == stream_id, events.c.version > after_version)
            .order_by(events.c.version)
        )
        return self._fetch(query, conn)

    def read_all(self, after_position: int = 0, limit: int = 1000, conn: Connection | None = None) -> list[Envelope]:
        """Up to ``limit`` events of every stream with a position above ``after_position``, in order."""
        query = (
            sa.select(events).where(events.c.position > after_position).order_by(events.c.position).limit(limit)
        )
        return self._fetch(query, conn)

    def last_position(self, conn: Connection | None = None) -> int:
        """The highest global position written so far (0 when empty)."""
        query = sa.select(sa.func.coalesce(sa.func.max(events.c.position), 0))
        if conn is not None:
            return int(conn.execute(query).scalar_one())
        with self.engine.connect() as own:
            return int(own.execute(query).scalar_one())

    def _fetch(self, query: sa.Select[Any], conn: Connection | None) -> list[Envelope]:
        if conn is not None:
            return [self._envelope(r) for r in conn.execute(query).mappings()]
        with self.engine.connect() as own:
            return [self._envelope(r) for r in own.execute(query).mappings()]

    def _lock(self, conn: Connection) -> None:
        if self._postgres:
            conn.exec_driver_sql("LOCK TABLE events IN EXCLUSIVE MODE")

    @staticmethod
    def _row(e: Envelope, stream_id: str, version: int) -> dict[str, Any]:
        return {
            "id": e.id,
            "stream_id": stream_id,
            "version": version,
            "type": e.type,
            "schema_version": e.schema_version,
            "occurred_at": e.occurred_at,
            "actor": e.actor.to_dict(),
            "correlation_id": e.correlation_id,
            "causation_id": e.causation_id,
            "data": e.data,
        }

    @staticmethod
    def _copy_postgres(conn: Connection, staged: Iterable[Envelope]) -> None:
        import psycopg

        cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY events ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for e in staged:
                    copy.write_row(
                        (
                            e.id,
                            e.stream_id,
                            e.stream_version,
                            e.type,
                            e.schema_version,
                            e.occurred_at,
                            orjson.dumps(e.actor.to_dict()).decode(),
                            e.correlation_id,
                            e.causation_id,
                            orjson.dumps(e.data).decode(),
                        )
                    )
        except psycopg.errors.UniqueViolation as exc:
            raise _DuplicateVersion(str(exc)) from exc
        finally:
            cursor.close()

    @staticmethod
    def _executemany_sqlite(conn: Connection, staged: Iterable[Envelope]) -> None:
        # The same storage formats SQLAlchemy's Uuid, DateTime and JSON types use on SQLite.
        rows = (
            (
                e.id.hex,
                e.stream_id,
                e.stream_version,
                e.type,
                e.schema_version,
                _sqlite_datetime(e.occurred_at),
                orjson.dumps(e.actor.to_dict()).decode(),
                e.correlation_id.hex if e.correlation_id else None,
                e.causation_id.hex if e.causation_id else None,
                orjson.dumps(e.data).decode(),
            )
            for e in staged
        )
        placeholders = ", ".join("?" * len(_COLUMNS))
        cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({placeholders})", rows)
        except sqlite3.IntegrityError as exc:
            raise _DuplicateVersion(str(exc)) from exc
        finally:
            cursor.close()

    @staticmethod
    def _envelope(row: RowMapping) -> Envelope:
        occurred: datetime = row["occurred_at"]
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=UTC)
        return Envelope(
            id=row["id"],
            type=row["type"],
            schema_version=row["schema_version"],
            stream_id=row["stream_id"],
            stream_version=row["version"],
            position=row["position"],
            occurred_at=occurred,
            actor=Actor.from_dict(row["actor"]),
            correlation_id=row["correlation_id"],
            causation_id=row["causation_id"],
            data=row["data"],
        )


class PositionStore:
    """Durable positions of followers (the relay, projections): saved in the caller's transaction."""

    def get(self, conn: Connection, name: str) -> int:
        """The saved position of ``name`` (0 if never saved)."""
        value = conn.execute(sa.select(positions.c.position).where(positions.c.name == name)).scalar()
        return int(value or 0)

    def set(self, conn: Connection, name: str, position: int) -> None:
        """Save ``position`` for ``name``, in the caller's transaction."""
        updated = conn.execute(
            positions.update().where(positions.c.name == name).values(position=position)
        ).rowcount
        if not updated:
            conn.execute(positions.insert().values(name=name, position=position))


def _sqlite_datetime(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


class _DuplicateVersion(Exception):
    """A bulk append hit the (stream_id, version) unique index."""


def _conflicting_stream(text: str, appends: Sequence[StreamAppend]) -> str:
    for append in appends:
        if append.stream_id in text:
            return append.stream_id
    return appends[0].stream_id if len(appends) == 1 else "<batch>"


def as_uuid(value: str | uuid.UUID) -> uuid.UUID:
    """Accept a UUID in either form."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)
