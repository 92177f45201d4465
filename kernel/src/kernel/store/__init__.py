"""Event store port on SQLAlchemy 2: one append-only table, PostgreSQL or SQLite."""

from kernel.store.dialect import (
    PostgresDialect,
    SqliteDialect,
    StoreDialect,
    store_dialect,
    write_transaction,
)
from kernel.store.engine import create_engine, own_connection, sqlite_data_version
from kernel.store.events import ConcurrencyError, EventStore, PositionStore, StoredEvents, StreamAppend

__all__ = [
    "ConcurrencyError",
    "EventStore",
    "PositionStore",
    "PostgresDialect",
    "SqliteDialect",
    "StoreDialect",
    "StoredEvents",
    "StreamAppend",
    "create_engine",
    "own_connection",
    "sqlite_data_version",
    "store_dialect",
    "write_transaction",
]
