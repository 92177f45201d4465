"""Event store port on SQLAlchemy 2: one append-only table, PostgreSQL or SQLite."""

from kernel.store.engine import create_engine, own_connection, sqlite_data_version, write_transaction
from kernel.store.events import ConcurrencyError, EventStore, PositionStore, StoredEvents, StreamAppend

__all__ = [
    "ConcurrencyError",
    "EventStore",
    "PositionStore",
    "StoredEvents",
    "StreamAppend",
    "create_engine",
    "own_connection",
    "sqlite_data_version",
    "write_transaction",
]
