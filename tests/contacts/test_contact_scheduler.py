"""Scheduled work: lapsed locks are announced once, the ageing pass moves statuses once."""

from __future__ import annotations

import threading

from contacts_support import ANA, BETO, LAURA, FakeClock, change_status, create_contact, lock_contact
from sqlalchemy.engine import Engine

from contacts.commands import ImportRow
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.scheduler import Ageing, LockExpiry
from kernel.store import EventStore


def _count(store: EventStore, contact_id: str, type_name: str) -> int:
    return sum(1 for e in store.read_stream(contact_id) if e.type == type_name)


def test_a_lapsed_lock_is_announced_exactly_once(
    service: ContactsService, engine: Engine, store: EventStore, clock: FakeClock
) -> None:
    lapsing = create_contact(service, ANA, "8812-3456")
    lasting = create_contact(service, ANA, "8812-3457")
    lock_contact(service, ANA, lapsing.id, 5)
    lock_contact(service, BETO, lasting.id, 30)
    expiry = LockExpiry(service, engine, clock=clock, batch_size=1)

    assert expiry.expire_locks() == 0
    clock.advance(minutes=5)
    first = expiry.expire_locks()
    second = expiry.expire_locks()

    assert (first, second) == (1, 0)
    assert _count(store, lapsing.id, "contacts.LockExpired") == 1
    assert _count(store, lasting.id, "contacts.LockExpired") == 0


def test_two_sweeps_at_once_announce_each_lock_once(
    service: ContactsService, engine: Engine, store: EventStore, clock: FakeClock
) -> None:
    ids = [create_contact(service, ANA, f"8812-34{n:02d}").id for n in range(20)]
    for contact_id in ids:
        lock_contact(service, ANA, contact_id, 1)
    clock.advance(minutes=2)
    sweeps = [LockExpiry(service, engine, clock=clock, batch_size=3) for _ in range(2)]

    threads = [threading.Thread(target=sweep.expire_locks) for sweep in sweeps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [_count(store, cid, "contacts.LockExpired") for cid in ids] == [1] * 20


def test_ageing_moves_untouched_contacts_once_and_spares_the_exempt(
    service: ContactsService, engine: Engine, queries: ContactQueries, store: EventStore, clock: FakeClock
) -> None:
    rows = [ImportRow(row=n, e164=f"+50688{n:06d}", status=s) for n, s in enumerate(["", "NC", "INTERESADO"])]
    created = service.create_or_merge(rows, "vieja", LAURA)
    pending, no_answer, interested = (o.contact_id for o in created.outcomes)
    called = create_contact(service, ANA, "8812-3456")
    ageing = Ageing(service, engine, clock=clock, batch_size=1)

    clock.advance(days=80)
    change_status(service, ANA, called.id, "CUELGA")
    clock.advance(days=15)
    first = ageing.age_contacts()
    second = ageing.age_contacts()

    assert (first, second) == (2, 0)
    assert queries.get(pending).status == "NO_EXISTE"
    assert queries.get(no_answer).status == "NO_EXISTE"
    assert queries.get(interested).status == "INTERESADO"
    assert queries.get(called.id).status == "CUELGA"

    clock.advance(days=130)
    assert ageing.age_contacts() == 3
    assert queries.get(pending).status == "SIN_RED"
    assert queries.get(called.id).status == "NO_EXISTE"
    assert ageing.age_contacts() == 0
    assert _count(store, pending, "contacts.StatusChanged") == 2


def test_ageing_waits_for_a_locked_contact(
    service: ContactsService, engine: Engine, queries: ContactQueries, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    clock.advance(days=100)
    lock_contact(service, ANA, contact.id, 30)
    ageing = Ageing(service, engine, clock=clock)

    assert ageing.age_contacts() == 0
    clock.advance(minutes=31)
    assert ageing.age_contacts() == 1
    assert queries.get(contact.id).status == "NO_EXISTE"


def test_the_loops_stop_when_asked(service: ContactsService, engine: Engine, clock: FakeClock) -> None:
    stop = threading.Event()
    loops = [
        threading.Thread(target=LockExpiry(service, engine, 0.01, clock).run_forever, args=(stop,)),
        threading.Thread(
            target=Ageing(service, engine, interval_minutes=0.001, clock=clock).run_forever, args=(stop,)
        ),
    ]
    for loop in loops:
        loop.start()

    stop.set()
    for loop in loops:
        loop.join(5)

    assert not any(loop.is_alive() for loop in loops)
