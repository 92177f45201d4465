"""Exactly-once claims on real PostgreSQL: fifty agents asking for the next contact at the same instant."""

from __future__ import annotations

from collections import Counter

import pytest
from contacts_support import PABLO, some_agents, together
from sqlalchemy.engine import Engine

from contacts.campaignbook import CampaignBook
from contacts.campaigns import Claim
from contacts.commands import Caller, ImportRow
from contacts.dnc import DncList
from contacts.errors import QueueEmpty
from contacts.handlers import ContactsService
from contacts.queue import WorkQueue
from kernel.store import EventStore

pytestmark = pytest.mark.postgres

AGENTS = 50


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def queue(engine: Engine, store: EventStore, service: ContactsService) -> WorkQueue:
    return WorkQueue(engine, store, service, DncList(engine), CampaignBook(engine))


def _contacts(service: ContactsService, count: int) -> None:
    rows = [ImportRow(row=n, e164=f"+5068800{n:04d}") for n in range(count)]
    service.create_or_merge(rows, "cola", PABLO)


def _claims(queue: WorkQueue, agent: Caller, times: int) -> list[Claim]:
    return [queue.next_contact(agent) for _ in range(times)]


def test_fifty_agents_claiming_at_once_never_get_the_same_contact(
    queue: WorkQueue, service: ContactsService, store: EventStore
) -> None:
    _contacts(service, 200)
    agents = some_agents(AGENTS)

    results = together([lambda agent=agent: _claims(queue, agent, 3) for agent in agents])

    assert not [r for r in results if isinstance(r, Exception)]
    claims = [claim for batch in results for claim in batch]
    ids = [claim.contact.id for claim in claims]
    assert len(ids) == 150
    assert len(set(ids)) == 150
    for agent, batch in zip(agents, results, strict=True):
        assert all(claim.contact.locked_by == agent.user_id for claim in batch)
    for contact_id in ids:
        locks = [e for e in store.read_stream(contact_id) if e.type == "contacts.ContactLocked"]
        assert len(locks) == 1


def test_more_agents_than_contacts_each_contact_goes_to_exactly_one_and_the_rest_hear_why(
    queue: WorkQueue, service: ContactsService
) -> None:
    _contacts(service, 30)

    results = together([lambda agent=agent: queue.next_contact(agent) for agent in some_agents(AGENTS)])

    claims = [r for r in results if isinstance(r, Claim)]
    empty = [r for r in results if isinstance(r, QueueEmpty)]
    assert len(claims) == 30
    assert len(empty) == AGENTS - 30
    assert Counter(c.contact.id for c in claims).most_common(1)[0][1] == 1
    assert all(e.counts["locked"] == 30 for e in empty)
