"""SQLite first pages served again from memory: only while nothing they show can have changed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from contacts_support import ANA, BETO, LAURA, FakeClock, lock_contact, update_contact

from contacts.commands import ImportRow
from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.statuses import DEFAULT_CATALOGUE
from contacts.views import ContactFilters
from kernel.store import EventStore, create_engine
from system.migrate import upgrade

FIRST = ContactFilters()


class Setup:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.engine = create_engine(f"sqlite:///{path}")
        upgrade(self.engine)
        self.clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        store = EventStore(self.engine)
        self.service = ContactsService(self.engine, store, LockPolicy(10, 60), DEFAULT_CATALOGUE, self.clock)
        self.queries = ContactQueries(self.engine, store, DEFAULT_CATALOGUE, self.clock)
        rows = [ImportRow(row=n, e164=f"+50688{n:06d}", national=f"8800-{n:04d}") for n in range(20)]
        self.service.create_or_merge(rows, "norte", LAURA)
        self.reads = 0
        fetch = self.queries._own_connections.fetch

        def counted(sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
            self.reads += 1
            return fetch(sql, params)

        self.queries._own_connections.fetch = counted  # type: ignore[method-assign]

    def page(self, limit: int = 10) -> list[dict[str, object]]:
        """The cached JSON page, checked against the uncached page built from the same rows."""
        body, _ = self.queries.list_contacts_json(FIRST, limit)
        served: list[dict[str, object]] = orjson.loads(body)
        assert served == [c.to_data() for c in self.queries.list_contacts(FIRST, limit).items]
        return served


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    made = Setup(tmp_path / "callmanager.db")
    try:
        yield made
    finally:
        made.engine.dispose()


def test_an_unchanged_first_page_is_read_once(setup: Setup) -> None:
    first = setup.page()
    assert setup.page() == setup.page() == first
    assert setup.reads == 1
    setup.page(limit=11)  # another page size is another page
    assert setup.reads == 2


def test_every_commit_of_the_service_is_seen_at_once(setup: Setup) -> None:
    top = setup.page()[0]
    update_contact(setup.service, ANA, str(top["id"]), name="Nombre nuevo")
    assert setup.page()[0]["name"] == "Nombre nuevo"
    lock_contact(setup.service, BETO, str(top["id"]), 10)
    assert setup.page()[0]["locked_by"] == BETO.user_id
    assert setup.reads == 3


def test_a_commit_from_another_process_is_seen_at_once(setup: Setup) -> None:
    top = setup.page()[0]
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
        "c.execute(\"UPDATE contacts SET note = 'desde otro proceso' WHERE id = ?\", (sys.argv[2],));"
        "c.commit()"
    )
    contact_id = str(top["id"]).replace("-", "")
    subprocess.run([sys.executable, "-c", script, str(setup.path), contact_id], check=True)
    assert setup.page()[0]["note"] == "desde otro proceso"


def test_a_shown_lock_disappears_when_it_ends_without_any_commit(setup: Setup) -> None:
    top = setup.page()[0]
    lock_contact(setup.service, ANA, str(top["id"]), 1)
    assert setup.page()[0]["locked_by"] == ANA.user_id
    setup.clock.advance(seconds=59)
    assert setup.page()[0]["locked_by"] == ANA.user_id
    reads = setup.reads
    setup.clock.advance(seconds=2)  # the lock ended; the expiry pass has not run yet
    assert setup.page()[0]["locked_by"] is None
    assert setup.reads == reads + 1


def test_a_clock_set_back_reads_again(setup: Setup) -> None:
    setup.page()
    setup.clock.advance(seconds=-30)
    setup.page()
    assert setup.reads == 2
