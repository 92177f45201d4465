"""SQLAlchemy engines set up for the event store on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``: psycopg 3 for PostgreSQL, WAL and explicit write locks for SQLite.

    JSON columns are written and read with orjson on both databases.
    """
    parsed = sa.make_url(url)
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    if parsed.get_backend_name() in ("postgresql", "postgres"):
        # The bulk path uses psycopg 3's COPY, whatever driver the URL names.
        parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False, **kwargs.get("connect_args", {})}
        engine = sa.create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    raise ValueError(f"unsupported database {parsed.get_backend_name()!r}: use PostgreSQL or SQLite")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _configure_sqlite(engine: Engine) -> None:
    """Let SQLAlchemy, not the driver, send BEGIN, so writers can ask for ``BEGIN IMMEDIATE``.

    A deferred transaction that later writes can fail with "database is locked" when two writers race;
    taking the write lock at BEGIN makes writers queue instead (see :func:`write_transaction`).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def sqlite_data_version(connection: Any) -> int:
    """SQLite's ``PRAGMA data_version`` on a DB-API connection (~6 µs).

    It changes whenever another connection, of this process or another, commits to the database, and
    not for the connection's own commits: a connection that only reads can tell cheaply whether what it
    read last may have changed.
    """
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA data_version")
        row = cursor.fetchone()
        assert row is not None
        return int(row[0])
    finally:
        cursor.close()


def own_connection(engine: Engine, local: threading.local) -> Any:
    """This thread's DB-API connection kept in ``local``: opened once with the engine's PRAGMAs, outside
    the pool (autocommit reads see every commit; no checkout per statement)."""
    connection = getattr(local, "connection", None)
    if connection is None:
        connection = engine.raw_connection()
        connection.detach()
        local.connection = connection
    return connection
