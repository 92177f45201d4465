"""Real threads against PostgreSQL: one lock winner, no lost update, imports and agents side by side."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from contacts_support import (
    ANA,
    LAURA,
    FakeClock,
    create_contact,
    edit_note,
    lock_contact,
    some_agents,
    together,
    update_contact,
)
from sqlalchemy.engine import Engine

from contacts.commands import Caller, ImportRow, Outcome
from contacts.domain import LockPolicy
from contacts.errors import Locked, VersionMismatch
from contacts.handlers import ContactsService
from contacts.projection import rebuild
from contacts.queries import ContactQueries
from contacts.schema import contacts
from contacts.statuses import DEFAULT_CATALOGUE
from kernel.store import EventStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


def _snapshot(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(sa.select(contacts).order_by(contacts.c.id)).mappings()]


def test_hundred_agents_locking_one_contact_produce_exactly_one_lock(
    service: ContactsService, store: EventStore
) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    agents = some_agents(100)

    results = together([lambda agent=agent: lock_contact(service, agent, contact.id) for agent in agents])

    winners = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Locked)]
    assert len(winners) == 1
    assert len(refused) == 99
    assert {r.locked_by for r in refused} == {winners[0].locked_by}
    types = [e.type for e in store.read_stream(contact.id)]
    assert types == ["contacts.ContactCreated", "contacts.ContactLocked"]


def test_fifty_concurrent_edits_with_expected_versions_lose_nothing(
    service: ContactsService, queries: ContactQueries, store: EventStore
) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    agents = some_agents(50)
    mismatches = [0] * len(agents)

    def edit(index: int, agent: Caller) -> int:
        while True:
            seen = queries.get(contact.id)
            try:
                return update_contact(
                    service,
                    agent,
                    contact.id,
                    note=f"nota {index}",
                    extra={f"campo{index}": str(index)},
                    expected_version=seen.version,
                ).version
            except VersionMismatch:
                mismatches[index] += 1

    results = together([lambda i=i, a=a: edit(i, a) for i, a in enumerate(agents)])

    assert not [r for r in results if isinstance(r, Exception)]
    stored = store.read_stream(contact.id)
    assert [e.stream_version for e in stored] == list(range(1, 102))
    notes = {e.data["new"] for e in stored if e.type == "contacts.NoteEdited"}
    assert notes == {f"nota {i}" for i in range(50)}
    final = queries.get(contact.id)
    assert final.version == 101
    assert final.extra == {f"campo{i}": str(i) for i in range(50)}
    assert sum(mismatches) > 0


def test_fifty_edits_from_the_same_version_let_exactly_one_through(
    service: ContactsService, store: EventStore
) -> None:
    contact = create_contact(service, ANA, "8812-3456")

    results = together(
        [
            lambda agent=agent, i=i: edit_note(service, agent, contact.id, f"nota {i}", expected_version=1)
            for i, agent in enumerate(some_agents(50))
        ]
    )

    assert sum(1 for r in results if not isinstance(r, Exception)) == 1
    assert sum(1 for r in results if isinstance(r, VersionMismatch)) == 49
    assert len(store.read_stream(contact.id)) == 2


def test_an_import_running_while_agents_edit_loses_nothing(
    engine: Engine, store: EventStore, clock: FakeClock, queries: ContactQueries
) -> None:
    service = ContactsService(engine, store, LockPolicy(), DEFAULT_CATALOGUE, clock, batch_size=250)
    seeded = service.create_or_merge(
        [ImportRow(row=n, e164=f"+50688{n:06d}", name=f"Cliente {n}") for n in range(200)], "base", LAURA
    )
    existing = [o.contact_id for o in seeded.outcomes]
    rows = [ImportRow(row=n, e164=f"+50688{n:06d}", email=f"c{n}@example.com") for n in range(3000)]
    agents = some_agents(8)
    edits: list[list[str]] = [[] for _ in agents]

    def agent_work(index: int) -> None:
        for contact_id in existing[index::8]:
            update_contact(service, agents[index], contact_id, extra={"agente": agents[index].user_id})
            edits[index].append(contact_id)

    results = together(
        [lambda: service.create_or_merge(rows, "feria", LAURA)]
        + [lambda i=i: agent_work(i) for i in range(8)]
    )

    assert not [r for r in results if isinstance(r, Exception)]
    imported = results[0]
    assert imported.count(Outcome.UPDATED) == 200
    assert imported.count(Outcome.INSERTED) == 2800
    assert sum(len(done) for done in edits) == 200
    for index, contact_id in enumerate(existing):
        contact = queries.get(contact_id)
        assert contact.email == f"c{index}@example.com"
        assert contact.extra == {"agente": agents[index % 8].user_id}
        assert contact.version == 4  # created, merged (email), listed in «feria», the agent's edit
    assert queries.stats()["total"] == 3000
    before = _snapshot(engine)
    rebuild(engine)
    assert _snapshot(engine) == before
