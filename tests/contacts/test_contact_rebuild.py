"""The read model (calls included) can be dropped and rebuilt from the event store: the same rows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from contacts_support import (
    ANA,
    BETO,
    LAURA,
    PABLO,
    FakeClock,
    create_contact,
    delete_contact,
    end_call,
    lock_contact,
    request_call,
    start_call,
    update_contact,
)
from sqlalchemy.engine import Engine

from contacts.calls import apply_stored
from contacts.commands import CallOutcome, ImportRow
from contacts.handlers import ContactsService
from contacts.projection import ContactProjection, rebuild
from contacts.queries import ContactQueries
from contacts.schema import SEARCH_TABLE, contact_calls, contact_locks, contact_status_counts, contacts
from contacts.statuses import DEFAULT_CATALOGUE
from kernel.store import EventStore


def _snapshot(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(sa.select(contacts).order_by(contacts.c.id)).mappings()]
        locks = [
            dict(row)
            for row in conn.execute(sa.select(contact_locks).order_by(contact_locks.c.id)).mappings()
        ]
        counted = sa.select(contact_status_counts).where(contact_status_counts.c.count != 0)
        counts = [
            dict(row) for row in conn.execute(counted.order_by(contact_status_counts.c.status)).mappings()
        ]
        calls = [
            dict(row)
            for row in conn.execute(
                sa.select(contact_calls).order_by(contact_calls.c.call_id, contact_calls.c.contact_id)
            ).mappings()
        ]
    return [*rows, *locks, *counts, *calls]


def _work(service: ContactsService, clock: FakeClock) -> None:
    """A day of work: creations, an import with merges, locks, edits, calls (answered, busy, ringing, on a
    contact deleted since), a deletion and a comeback."""
    rows = [
        ImportRow(
            row=n, e164=f"+50688{n:06d}", national=f"88{n:02d}-{n:04d}", name=f"Cliente {n}", status="NC"
        )
        for n in range(300)
    ]
    service.create_or_merge(rows, "lista-1", LAURA)
    first = create_contact(service, ANA, "8812-3456", name="José", extra={"ciudad": "Heredia"})
    clock.advance(minutes=3)
    lock_contact(service, ANA, first.id, 5)
    update_contact(
        service, ANA, first.id, note="interesada en fibra", status="INTERESADO", extra={"plan": "B"}
    )
    request_call(service, ANA, first.id, "c-1", "desk-1")
    clock.advance(seconds=4)
    start_call(service, ANA, first.id, "c-1")
    clock.advance(seconds=65)
    end_call(service, ANA, first.id, "c-1", CallOutcome.ANSWERED, 60)
    request_call(service, ANA, first.id, "c-2", "desk-1")
    clock.advance(seconds=20)
    end_call(service, ANA, first.id, "c-2", CallOutcome.BUSY, 0)
    request_call(service, ANA, first.id, "c-3", "desk-1")
    clock.advance(minutes=10)
    lock_contact(service, BETO, first.id)
    service.create_or_merge(
        [ImportRow(row=1, e164="+50688000007", note="actualizada", email="c7@example.com"), *rows[:50]],
        "lista-2",
        LAURA,
    )
    gone = create_contact(service, ANA, "6012-3456", name="Se va")
    request_call(service, BETO, gone.id, "c-1")
    end_call(service, BETO, gone.id, "c-1", CallOutcome.NO_ANSWER, 0)
    delete_contact(service, PABLO, gone.id)
    create_contact(service, BETO, "6012-3456", name="Vuelve")
    service.age_contacts([first.id], clock.advance(days=400))


def test_rebuilding_gives_the_same_rows(
    service: ContactsService, engine: Engine, clock: FakeClock, store: EventStore, queries: ContactQueries
) -> None:
    _work(service, clock)
    before = _snapshot(engine)

    replayed = rebuild(engine, DEFAULT_CATALOGUE, batch_size=97)

    assert replayed == store.last_position()
    assert _snapshot(engine) == before
    assert len(before) == 302 + 1 + 3 + 4
    assert {(a.username, a.figures.made, a.figures.successful) for a in queries.call_figures()} == {
        ("ana", 3, 1),
        ("beto", 1, 0),
    }


def test_rebuilding_from_a_damaged_read_model_repairs_it(
    service: ContactsService, engine: Engine, clock: FakeClock
) -> None:
    _work(service, clock)
    before = _snapshot(engine)
    with engine.begin() as conn:
        conn.execute(contacts.update().values(name="dañado", version=0))
        conn.execute(contacts.delete().where(contacts.c.phone_e164 == "+50688000001"))
        conn.execute(contact_calls.update().values(outcome="answered", duration_seconds=1))
        conn.execute(contact_calls.delete().where(contact_calls.c.call_id == "c-3"))

    rebuild(engine)

    assert _snapshot(engine) == before


def test_applying_stored_events_by_type_name_matches_the_live_projection(
    service: ContactsService, engine: Engine, clock: FakeClock, store: EventStore
) -> None:
    _work(service, clock)
    before = _snapshot(engine)
    with engine.begin() as conn:
        for table in (contacts, contact_locks, contact_status_counts, contact_calls):
            conn.execute(table.delete())
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"DELETE FROM {SEARCH_TABLE}")
        projection = ContactProjection()
        for stored in store.read_all(0, 100_000, conn=conn):
            projection.apply(conn, [stored])
            apply_stored(conn, [stored])

    assert _snapshot(engine) == before


def test_status_counts_follow_every_change(
    service: ContactsService, engine: Engine, clock: FakeClock
) -> None:
    _work(service, clock)

    with engine.connect() as conn:
        scanned = dict(
            conn.execute(sa.select(contacts.c.status, sa.func.count()).group_by(contacts.c.status)).all()
        )
        kept = dict(
            conn.execute(
                sa.select(contact_status_counts.c.status, contact_status_counts.c.count).where(
                    contact_status_counts.c.count != 0
                )
            ).all()
        )

    assert kept == scanned
