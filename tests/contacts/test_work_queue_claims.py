"""Group commit of claims, on SQLite and PostgreSQL: agents asking together are served by one transaction,
each gets a contact of their own (or their own answer), and picks skip what is locked however much."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from contacts_support import ANA, BETO, PABLO, FakeClock, some_agents, together
from sqlalchemy.engine import Engine

from contacts.campaignbook import CampaignBook
from contacts.campaigns import Claim, Reason
from contacts.commands import ImportRow, LockContact
from contacts.dnc import DncList
from contacts.domain import contact_id_for_phone
from contacts.errors import CampaignNotWorked, Locked, QueueEmpty
from contacts.handlers import ContactsService
from contacts.handlers import Outcome as CommandOutcome
from contacts.queue import WorkQueue
from contacts.schema import contacts
from kernel.store import EventStore

AGENTS = 50


@pytest.fixture
def queue(engine: Engine, store: EventStore, service: ContactsService) -> WorkQueue:
    return WorkQueue(engine, store, service, DncList(engine), CampaignBook(engine))


@pytest.fixture
def commits(engine: Engine) -> Iterator[list[int]]:
    """Counts the transactions committed on the engine from now on (one per batch of claims)."""
    seen: list[int] = []

    def count(_: Any) -> None:
        seen.append(1)

    sa.event.listen(engine, "commit", count)
    yield seen
    sa.event.remove(engine, "commit", count)


def _contacts(service: ContactsService, count: int, list_name: str = "cola") -> None:
    rows = [ImportRow(row=n, e164=f"+5068800{n:04d}") for n in range(count)]
    service.create_or_merge(rows, list_name, PABLO)


def _in_order(engine: Engine) -> list[str]:
    c = contacts.c
    with engine.connect() as conn:
        query = sa.select(c.id).order_by(c.status_priority, c.age_key, c.id)
        return [str(i) for i in conn.execute(query).scalars()]


def _locked_by(store: EventStore, contact_id: str) -> list[str]:
    """Who each ContactLocked of the contact's stream locked it for."""
    return [e.actor.user_id for e in store.read_stream(contact_id) if e.type == "contacts.ContactLocked"]


def _wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def _start(work: Callable[[], Any], results: dict[str, Any], key: str) -> threading.Thread:
    def run() -> None:
        try:
            results[key] = work()
        except Exception as error:
            results[key] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread


class _WriteLockHolder:
    """Holds the store's write lock (SQLite's one writer, PostgreSQL's append lock) until released, so
    that a claim transaction in flight cannot end and the requests behind it queue up."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self.held = threading.Event()
        self.release = threading.Event()
        self._thread = threading.Thread(target=self._hold)
        self._thread.start()
        assert self.held.wait(30)

    def _hold(self) -> None:
        with self._store.transaction() as conn:
            self._store.dialect.lock_appends(conn)
            self.held.set()
            assert self.release.wait(60)

    def stop(self) -> None:
        self.release.set()
        self._thread.join(30)


def test_fifty_agents_asking_at_once_each_get_their_own_contact_and_its_lock_event(
    queue: WorkQueue, service: ContactsService, store: EventStore
) -> None:
    _contacts(service, 150)
    agents = some_agents(AGENTS)

    results = together(
        [lambda agent=agent: [queue.next_contact(agent) for _ in range(2)] for agent in agents]
    )

    assert not [r for r in results if isinstance(r, Exception)]
    ids = [claim.contact.id for claims in results for claim in claims]
    assert len(ids) == 2 * AGENTS
    assert len(set(ids)) == 2 * AGENTS
    for agent, claims in zip(agents, results, strict=True):
        for claim in claims:
            assert claim.contact.locked_by == agent.user_id
            assert claim.reason is Reason.NEVER_TRIED
            assert _locked_by(store, claim.contact.id) == [agent.user_id]
    assert queue.claims.waiting == 0
    assert queue.claims.serving == 0


def test_requests_arriving_during_a_claim_are_served_by_one_transaction_each_with_its_own_answer(
    queue: WorkQueue,
    service: ContactsService,
    store: EventStore,
    engine: Engine,
    clock: FakeClock,
    commits: list[int],
) -> None:
    _contacts(service, 40)
    empty = queue.campaigns.create(PABLO, clock.now, name="Vacía", lists=["vacia"]).id
    north = queue.campaigns.create(PABLO, clock.now, name="Norte", lists=["norte"], teams=["norte"]).id
    agents = some_agents(12)
    results: dict[str, Any] = {}
    before = len(commits)
    holder = _WriteLockHolder(store)
    threads = [_start(lambda: queue.next_contact(ANA), results, "first")]
    _wait_until(lambda: queue.claims.serving == 1)
    for n, agent in enumerate(agents):
        if n in (3, 7):  # two callers of the batch ask for a campaign with nobody to call
            threads.append(
                _start(lambda agent=agent: queue.next_contact(agent, empty), results, agent.user_id)
            )
        else:
            threads.append(_start(lambda agent=agent: queue.next_contact(agent), results, agent.user_id))
        _wait_until(lambda n=n: queue.claims.waiting == n + 1)
    with pytest.raises(CampaignNotWorked):
        queue.next_contact(agents[0], north)  # refused before it asks for a claim
    assert queue.claims.waiting == len(agents)

    holder.stop()
    for thread in threads:
        thread.join(60)

    assert len(commits) - before == 3  # the lock holder's, the first claim's, then one for the twelve
    emptied = [results.pop(agents[n].user_id) for n in (3, 7)]
    assert all(isinstance(answer, QueueEmpty) for answer in emptied)
    assert all("No hay contactos en la campaña Vacía" in str(answer) for answer in emptied)
    claims: dict[str, Claim] = results
    assert all(isinstance(claim, Claim) for claim in claims.values())
    assert len({claim.contact.id for claim in claims.values()}) == 11
    order = _in_order(engine)
    assert sorted(order.index(claim.contact.id) for claim in claims.values()) == list(range(11))
    for key, claim in claims.items():
        holder_id = ANA.user_id if key == "first" else key
        assert claim.contact.locked_by == holder_id
        assert _locked_by(store, claim.contact.id) == [holder_id]


def test_a_lone_request_is_served_by_a_transaction_of_its_own(
    queue: WorkQueue, service: ContactsService, commits: list[int]
) -> None:
    _contacts(service, 3)
    before = len(commits)

    first = queue.next_contact(ANA)
    second = queue.next_contact(ANA)

    assert first.contact.id != second.contact.id
    assert len(commits) - before == 2


def test_more_agents_than_contacts_at_once_each_contact_goes_once_and_the_rest_hear_why(
    queue: WorkQueue, service: ContactsService
) -> None:
    _contacts(service, 20)

    results = together([lambda agent=agent: queue.next_contact(agent) for agent in some_agents(AGENTS)])

    claims = [r for r in results if isinstance(r, Claim)]
    empty = [r for r in results if isinstance(r, QueueEmpty)]
    assert len(claims) == 20
    assert len(empty) == AGENTS - 20
    assert Counter(c.contact.id for c in claims).most_common(1)[0][1] == 1
    assert all(e.counts["locked"] == 20 for e in empty)


def test_claims_far_past_the_locked_head_still_find_the_next_contact_and_a_lapsed_lock_comes_first(
    queue: WorkQueue, service: ContactsService, engine: Engine, clock: FakeClock
) -> None:
    _contacts(service, 130)
    order = _in_order(engine)

    claimed = [queue.next_contact(ANA).contact.id for _ in range(120)]

    assert claimed == order[:120]
    clock.advance(minutes=5)
    assert queue.next_contact(ANA).contact.id == order[120]
    clock.advance(minutes=6)  # the first 120 locks lapsed; nobody announced it yet
    again = queue.next_contact(ANA)
    assert again.contact.id == order[0]
    assert again.contact.locked_by == ANA.user_id


def test_locks_decided_together_refuse_a_locked_contact_alone(
    service: ContactsService, store: EventStore, clock: FakeClock
) -> None:
    _contacts(service, 3)
    first, held, third = (str(contact_id_for_phone(f"+5068800{n:04d}")) for n in range(3))
    service.execute(LockContact(caller=BETO, now=clock.now, contact_id=held))
    commands = [LockContact(caller=ANA, now=clock.now, contact_id=cid) for cid in (first, held, third)]

    with store.transaction() as conn:
        outcomes = service.execute_many_on(conn, commands)

    assert isinstance(outcomes[1], Locked)
    for outcome, contact_id in ((outcomes[0], first), (outcomes[2], third)):
        assert isinstance(outcome, CommandOutcome)
        assert outcome.contact is not None
        assert outcome.contact.locked_by == ANA.user_id
        assert [e.type for e in outcome.events] == ["contacts.ContactLocked"]
        assert _locked_by(store, contact_id) == [ANA.user_id]
    assert _locked_by(store, held) == [BETO.user_id]


def test_a_batch_spoiled_by_one_request_is_served_again_each_request_on_its_own(
    queue: WorkQueue,
    service: ContactsService,
    store: EventStore,
    commits: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _contacts(service, 20)
    agents = some_agents(6)
    broken = agents[2]
    alone, together_ = service.execute_on, service.execute_many_on

    def spoiled(conn: Any, commands: Any) -> Any:
        if len(commands) > 1:
            raise RuntimeError("a bug in the batch")
        return together_(conn, commands)

    def execute_on(conn: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        if command.caller == broken:
            raise RuntimeError("a bug for this caller only")
        return alone(conn, command, *args, **kwargs)

    monkeypatch.setattr(service, "execute_many_on", spoiled)
    monkeypatch.setattr(service, "execute_on", execute_on)
    results: dict[str, Any] = {}
    before = len(commits)
    holder = _WriteLockHolder(store)
    threads = [_start(lambda: queue.next_contact(ANA), results, "first")]
    _wait_until(lambda: queue.claims.serving == 1)
    for n, agent in enumerate(agents):
        threads.append(_start(lambda agent=agent: queue.next_contact(agent), results, agent.user_id))
        _wait_until(lambda n=n: queue.claims.waiting == n + 1)

    holder.stop()
    for thread in threads:
        thread.join(60)

    assert len(commits) - before == 3  # the holder's, then each batch once, served again in savepoints
    failed = results.pop(broken.user_id)
    assert isinstance(failed, RuntimeError)
    assert "this caller only" in str(failed)
    assert all(isinstance(claim, Claim) for claim in results.values())
    assert len({claim.contact.id for claim in results.values()}) == 6
    for key, claim in results.items():
        holder_id = ANA.user_id if key == "first" else key
        assert _locked_by(store, claim.contact.id) == [holder_id]
