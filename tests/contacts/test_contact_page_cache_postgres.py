"""PostgreSQL first pages served again from memory: only while PostgreSQL announces no change and no
lock they show has ended (the ``contacts_0004`` trigger notifies, a :class:`ChangeSignal` listens)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from contacts_support import ANA, BETO, LAURA, FakeClock, lock_contact, update_contact

from contacts.commands import ImportRow
from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.schema import CONTACTS_CHANNEL
from contacts.statuses import DEFAULT_CATALOGUE
from contacts.views import ContactFilters
from kernel.store import EventStore, create_engine
from kernel.store.changes import ChangeSignal
from system.migrate import upgrade
from tests.support.changes import Listening, settle, wait_until

pytestmark = pytest.mark.postgres

FIRST = ContactFilters()


class Setup:
    """A contacts process on PostgreSQL as ``build_contacts`` wires it: queries keep pages while the
    signal is quiet, and the store's own commits move the signal."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        upgrade(self.engine)
        self.clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        self.changes = ChangeSignal(self.engine, CONTACTS_CHANNEL, check_every=0.2, retry_every=0.2)
        self.listening = Listening(self.changes)
        store = EventStore(self.engine)
        store.after_commit(self.changes.move)
        self.service = ContactsService(self.engine, store, LockPolicy(10, 60), DEFAULT_CATALOGUE, self.clock)
        self.queries = ContactQueries(self.engine, store, DEFAULT_CATALOGUE, self.clock, changes=self.changes)
        rows = [ImportRow(row=n, e164=f"+50688{n:06d}", national=f"8800-{n:04d}") for n in range(20)]
        self.service.create_or_merge(rows, "norte", LAURA)
        wait_until(lambda: self.changes.version is not None)
        settle(self.changes)
        self.reads = 0
        read = self.queries._json_rows

        def counted(statement: sa.Select[Any], now: datetime) -> Any:
            self.reads += 1
            return read(statement, now)

        self.queries._json_rows = counted  # type: ignore[method-assign]

    def page(self, limit: int = 10) -> list[dict[str, object]]:
        """The kept JSON page, checked against the page built without keeping from the same rows."""
        body, _ = self.queries.list_contacts_json(FIRST, limit)
        served: list[dict[str, object]] = orjson.loads(body)
        assert served == [c.to_data() for c in self.queries.list_contacts(FIRST, limit).items]
        return served

    def close(self) -> None:
        self.listening.stop()
        self.engine.dispose()


@pytest.fixture
def setup(postgres_url: str) -> Iterator[Setup]:
    made = Setup(postgres_url)
    try:
        yield made
    finally:
        made.close()


def test_an_unchanged_first_page_is_read_once_and_then_answered_without_io(setup: Setup) -> None:
    assert setup.queries.kept_page_json(FIRST, 10) is None
    first = setup.page()
    assert setup.page() == setup.page() == first
    assert setup.reads == 1
    kept = setup.queries.kept_page_json(FIRST, 10)
    assert kept is not None
    assert orjson.loads(kept[0]) == first
    assert setup.queries.kept_page_json(FIRST, 10, cursor=kept[1]) is None  # later pages are always read
    setup.page(limit=11)  # another page size is another page
    assert setup.reads == 2


def test_every_commit_of_this_process_is_seen_at_once(setup: Setup) -> None:
    top = setup.page()[0]
    update_contact(setup.service, ANA, str(top["id"]), name="Nombre nuevo")
    assert setup.page()[0]["name"] == "Nombre nuevo"
    lock_contact(setup.service, BETO, str(top["id"]), 10)
    assert setup.page()[0]["locked_by"] == BETO.user_id
    assert setup.reads == 3


def test_a_commit_from_another_process_is_seen_once_announced(setup: Setup, postgres_url: str) -> None:
    top = setup.page()[0]
    other = create_engine(postgres_url)  # another process: its commits do not move this one's signal
    try:
        version = setup.changes.version
        with other.begin() as conn:
            conn.execute(
                sa.text("UPDATE contacts SET note = 'desde otro proceso' WHERE id = :id"), {"id": top["id"]}
            )
        wait_until(lambda: setup.changes.version != version)
        assert setup.queries.kept_page_json(FIRST, 10) is None
        assert setup.page()[0]["note"] == "desde otro proceso"
    finally:
        other.dispose()


def test_a_shown_lock_disappears_when_it_ends_without_any_commit(setup: Setup) -> None:
    top = setup.page()[0]
    lock_contact(setup.service, ANA, str(top["id"]), 1)
    settle(setup.changes)
    assert setup.page()[0]["locked_by"] == ANA.user_id
    setup.clock.advance(seconds=59)
    assert setup.page()[0]["locked_by"] == ANA.user_id
    reads = setup.reads
    setup.clock.advance(seconds=2)  # the lock ended; the expiry pass has not run yet
    assert setup.queries.kept_page_json(FIRST, 10) is None
    assert setup.page()[0]["locked_by"] is None
    assert setup.reads == reads + 1


def test_without_a_listening_connection_every_page_is_read(setup: Setup) -> None:
    setup.listening.stop()
    assert setup.changes.version is None
    setup.page()
    setup.page()
    assert setup.reads == 2
    assert setup.queries.kept_page_json(FIRST, 10) is None
