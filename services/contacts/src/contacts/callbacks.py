"""The callbacks read model: the pending callback of each contact, folded from its callback events.

A ``DispositionRecorded`` with ``callback_at`` sets the contact's callback (its id, who and their team,
personal or shared, when); one without it, a ``CallbackCancelled`` or the contact's deletion clears it.
``CallbackRescheduled`` moves it (due time, scope, owner; its reminder is owed again),
``CallbackShared`` makes it shared and ``CallbackReminded`` notes its reminder. :func:`apply_callback_events`
runs in the transaction that appended the events (the handlers call it beside the calls read model), and
the rebuild replays the stored events through :func:`apply_stored`. :class:`CallbackBook` lists them
for people (``contacts.agenda``) and finds the ones the scheduler acts on (``contacts.scheduler``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from contacts.agenda import CallbackView, Visibility
from contacts.campaigns import Callback
from contacts.commands import CallbackScope
from contacts.domain import PendingCallback
from contacts.events import (
    CallbackCancelled,
    CallbackReminded,
    CallbackRescheduled,
    CallbackShared,
    ContactDeleted,
    ContactEvent,
    DispositionRecorded,
    decode_event,
)
from contacts.schema import contact_callbacks, contacts
from kernel.envelope import Envelope

CALLBACK_EVENT_TYPES = frozenset(
    {
        DispositionRecorded.TYPE,
        ContactDeleted.TYPE,
        CallbackRescheduled.TYPE,
        CallbackCancelled.TYPE,
        CallbackShared.TYPE,
        CallbackReminded.TYPE,
    }
)
_IDS_CHUNK = 500
_CALLBACK_EVENTS = (
    DispositionRecorded,
    ContactDeleted,
    CallbackRescheduled,
    CallbackCancelled,
    CallbackShared,
    CallbackReminded,
)


_k = contact_callbacks.c
_OF_CALLBACK = (_k.contact_id == sa.bindparam("b_contact"), _k.callback_id == sa.bindparam("b_callback"))
_SHARE = contact_callbacks.update().where(*_OF_CALLBACK).values(scope="shared")
_REMIND = contact_callbacks.update().where(*_OF_CALLBACK).values(reminded_at=sa.bindparam("b_at"))


def apply_callback_events(conn: Connection, changes: Iterable[tuple[ContactEvent, int]]) -> int:
    """Fold the callback events among ``(event, stream version)`` pairs, oldest first, into
    ``contact_callbacks``; returns how many events changed it. A run of ``CallbackShared`` or of
    ``CallbackReminded`` (a scheduler pass: hundreds) goes as one statement executed for many rows."""
    applied = 0
    k = contact_callbacks.c
    run: list[dict[str, object]] = []
    run_statement: sa.Update | None = None

    def flush() -> None:
        nonlocal run_statement
        if run_statement is not None and run:
            conn.execute(run_statement, run)
        run.clear()
        run_statement = None

    for event, version in changes:
        if not isinstance(event, _CALLBACK_EVENTS):
            continue
        applied += 1
        key = uuid.UUID(event.contact_id)
        if isinstance(event, CallbackShared | CallbackReminded):
            statement = _SHARE if isinstance(event, CallbackShared) else _REMIND
            if statement is not run_statement:
                flush()
                run_statement = statement
            row: dict[str, object] = {"b_contact": key, "b_callback": event.callback_id}
            if statement is _REMIND:
                row["b_at"] = event.at
            run.append(row)
            continue
        flush()
        of_contact = k.contact_id == key
        match event:
            case DispositionRecorded():
                conn.execute(contact_callbacks.delete().where(of_contact))
                if event.callback_at is not None:
                    conn.execute(
                        contact_callbacks.insert().values(
                            contact_id=key,
                            callback_id=event.callback_id or f"{event.contact_id}.{version}",
                            user_id=event.user_id,
                            username=event.username,
                            team=event.team,
                            scope=event.callback_scope.value,
                            due_at=event.callback_at,
                            set_at=event.at,
                        )
                    )
            case ContactDeleted():
                conn.execute(contact_callbacks.delete().where(of_contact))
            case CallbackCancelled():
                conn.execute(contact_callbacks.delete().where(of_contact, k.callback_id == event.callback_id))
            case CallbackRescheduled():
                moved = {
                    "due_at": event.due_at,
                    "scope": event.scope.value,
                    "user_id": event.user_id,
                    "username": event.username,
                    "team": event.team,
                    "reminded_at": None,
                }
                conn.execute(
                    contact_callbacks.update()
                    .where(of_contact, k.callback_id == event.callback_id)
                    .values(moved)
                )
    flush()
    return applied


def apply_stored(conn: Connection, stored: Sequence[Envelope]) -> int:
    """:func:`apply_callback_events` for stored envelopes (the rebuild)."""
    changes = [
        (decode_event(e.type, e.data, e.schema_version), e.stream_version)
        for e in stored
        if e.type in CALLBACK_EVENT_TYPES
    ]
    return apply_callback_events(conn, changes)


def pending_of(conn: Connection, contact_ids: Sequence[str]) -> dict[str, PendingCallback]:
    """The pending callback of each of ``contact_ids`` that has one, as the domain folds it (the read
    model's contact states leave it out): the scheduler's batches decide on these."""
    k = contact_callbacks.c
    found: dict[str, PendingCallback] = {}
    keys = [uuid.UUID(contact_id) for contact_id in contact_ids]
    for start in range(0, len(keys), _IDS_CHUNK):
        query = sa.select(contact_callbacks).where(k.contact_id.in_(keys[start : start + _IDS_CHUNK]))
        for row in conn.execute(query):
            found[str(row.contact_id)] = PendingCallback(
                callback_id=row.callback_id,
                user_id=row.user_id,
                username=row.username,
                team=row.team,
                scope=CallbackScope(row.scope),
                due_at=_utc(row.due_at),
                reminded=row.reminded_at is not None,
            )
    return found


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


class CallbackBook:
    """The pending callbacks as people list them and as the scheduler finds them."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def listed(
        self,
        seen: Visibility,
        due_before: datetime | None = None,
        limit: int = 1000,
        contact_id: str | None = None,
    ) -> list[CallbackView]:
        """The callbacks ``seen`` holds (of one contact, with ``contact_id``), soonest first."""
        k, c = contact_callbacks.c, contacts.c
        query = sa.select(
            k.callback_id,
            k.contact_id,
            c.phone_e164,
            c.name,
            k.user_id,
            k.username,
            k.team,
            k.scope,
            k.due_at,
            k.set_at,
            k.reminded_at,
        ).join_from(contact_callbacks, contacts, c.id == k.contact_id)
        if seen.user_id is not None:
            query = query.where(sa.or_(k.scope == "shared", k.user_id == seen.user_id))
        if seen.team is not None:
            query = query.where(k.team == seen.team)
        if due_before is not None:
            query = query.where(k.due_at <= due_before)
        if contact_id is not None:
            try:
                query = query.where(k.contact_id == uuid.UUID(contact_id))
            except ValueError:
                return []
        query = query.order_by(k.due_at, k.contact_id).limit(limit)
        with self._engine.connect() as conn:
            return [
                CallbackView(
                    callback_id=row.callback_id,
                    contact_id=str(row.contact_id),
                    phone_e164=row.phone_e164,
                    name=row.name,
                    user_id=row.user_id,
                    username=row.username,
                    team=row.team,
                    scope=row.scope,
                    due_at=_utc(row.due_at),
                    set_at=_utc(row.set_at),
                    reminded_at=_utc(row.reminded_at) if row.reminded_at is not None else None,
                )
                for row in conn.execute(query)
            ]

    def to_remind(self, until: datetime, limit: int = 500) -> list[tuple[str, str]]:
        """``(contact id, callback id)`` of the callbacks due by ``until`` whose reminder has not gone out."""
        k = contact_callbacks.c
        query = (
            sa.select(k.contact_id, k.callback_id)
            .where(k.reminded_at.is_(None), k.due_at <= until)
            .order_by(k.due_at)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [(str(row.contact_id), row.callback_id) for row in conn.execute(query)]

    def stale_personal(self, due_before: datetime, limit: int = 500) -> list[tuple[str, str]]:
        """``(contact id, callback id)`` of the personal callbacks due before ``due_before``."""
        k = contact_callbacks.c
        query = (
            sa.select(k.contact_id, k.callback_id)
            .where(k.scope == "personal", k.due_at <= due_before)
            .order_by(k.due_at)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [(str(row.contact_id), row.callback_id) for row in conn.execute(query)]


def _utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back: they are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


__all__ = [
    "CALLBACK_EVENT_TYPES",
    "CallbackBook",
    "apply_callback_events",
    "apply_stored",
    "clear",
    "pending_callbacks",
    "pending_of",
]
