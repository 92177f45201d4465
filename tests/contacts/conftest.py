"""Fixtures of the contacts tests: a migrated database, a clock tests move, the service and its queries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from contacts_support import FakeClock
from sqlalchemy.engine import Engine

from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.statuses import DEFAULT_CATALOGUE
from kernel.store import EventStore, create_engine
from system.migrate import upgrade


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def store(engine: Engine) -> EventStore:
    return EventStore(engine)


@pytest.fixture
def service(engine: Engine, store: EventStore, clock: FakeClock) -> ContactsService:
    return ContactsService(engine, store, LockPolicy(10, 60), DEFAULT_CATALOGUE, clock)


@pytest.fixture
def queries(engine: Engine, store: EventStore, clock: FakeClock) -> ContactQueries:
    return ContactQueries(engine, store, DEFAULT_CATALOGUE, clock)
