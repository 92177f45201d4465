"""The callbacks read model: the pending callback of each contact, folded from its wrap-ups.

A ``DispositionRecorded`` with ``callback_at`` sets the contact's callback (who, personal or shared, when);
one without it, or the contact's deletion, clears it. :func:`apply_callback_events` runs in the
transaction that appended the events (the handlers call it beside the calls read model), and the rebuild
replays the stored events through :func:`apply_stored`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from contacts.campaigns import Callback
from contacts.events import ContactDeleted, ContactEvent, DispositionRecorded, decode_event
from contacts.schema import contact_callbacks, contacts
from kernel.envelope import Envelope

CALLBACK_EVENT_TYPES = frozenset({DispositionRecorded.TYPE, ContactDeleted.TYPE})


def apply_callback_events(conn: Connection, events: Iterable[ContactEvent]) -> int:
    """Fold the wrap-ups and deletions among ``events`` into ``contact_callbacks``; returns rows changed."""
    last: dict[str, DispositionRecorded | ContactDeleted] = {}
    for event in events:
        if isinstance(event, DispositionRecorded | ContactDeleted):
            last[event.contact_id] = event
    if not last:
        return 0
    keys = [uuid.UUID(contact_id) for contact_id in last]
    conn.execute(contact_callbacks.delete().where(contact_callbacks.c.contact_id.in_(keys)))
    rows = [
        {
            "contact_id": uuid.UUID(event.contact_id),
            "user_id": event.user_id,
            "username": event.username,
            "scope": event.callback_scope.value,
            "due_at": event.callback_at,
            "set_at": event.at,
        }
        for event in last.values()
        if isinstance(event, DispositionRecorded) and event.callback_at is not None
    ]
    if rows:
        conn.execute(contact_callbacks.insert(), rows)
    return len(last)


def apply_stored(conn: Connection, stored: Sequence[Envelope]) -> int:
    """:func:`apply_callback_events` for stored envelopes (the rebuild)."""
    events = [
        decode_event(e.type, e.data, e.schema_version) for e in stored if e.type in CALLBACK_EVENT_TYPES
    ]
    return apply_callback_events(conn, events)


def clear(conn: Connection) -> None:
    """Empty the callbacks read model (before a rebuild)."""
    conn.execute(contact_callbacks.delete())


def pending_callbacks(
    engine: Engine, *, user_id: str | None = None, due_before: datetime | None = None, limit: int = 1000
) -> list[Callback]:
    """Pending callbacks, soonest first: with ``user_id``, that user's personal ones and every shared one."""
    k, c = contact_callbacks.c, contacts.c
    query = sa.select(k.contact_id, c.phone_e164, c.name, k.user_id, k.username, k.scope, k.due_at, k.set_at)
    query = query.join_from(contact_callbacks, contacts, c.id == k.contact_id)
    if user_id is not None:
        query = query.where(sa.or_(k.scope == "shared", k.user_id == user_id))
    if due_before is not None:
        query = query.where(k.due_at <= due_before)
    query = query.order_by(k.due_at, k.contact_id).limit(limit)
    with engine.connect() as conn:
        return [
            Callback(
                str(row.contact_id),
                row.phone_e164,
                row.name,
                row.user_id,
                row.username,
                row.scope,
                _utc(row.due_at),
                _utc(row.set_at),
            )
            for row in conn.execute(query)
        ]


def _utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back: they are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


__all__ = ["CALLBACK_EVENT_TYPES", "apply_callback_events", "apply_stored", "clear", "pending_callbacks"]
