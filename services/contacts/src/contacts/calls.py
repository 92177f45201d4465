"""The calls read model: one row per call, folded from the call events, and the per-agent figures it gives.

A call is told by up to three events on its contact's stream: requested (the agent asked their desk to
dial), started (the softphone dialled) and ended (outcome, talk duration). :func:`apply_call_events`
folds them into ``contact_calls`` on the caller's connection, inside the transaction that appended
them (the handlers call it right after the contacts projection), so the figures are never behind the
stream. :func:`contacts.projection.rebuild` replays the stored call events through :func:`apply_stored`
into an emptied table, which must give the same rows.

The agent of a call is whoever requested it; a call heard of first by its start or end (a desk that
reports a call the gateway did not ask for) belongs to the user who reported it until its request shows.
Events may arrive for a call in any number of transactions, so each write merges into the stored row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from contacts.events import CallEnded, CallRequested, CallStarted, ContactEvent, decode_event
from contacts.schema import contact_calls
from contacts.views import AgentCalls, CallFigures
from kernel.envelope import Envelope
from kernel.store import StoreDialect, store_dialect

CallEvent = CallRequested | CallStarted | CallEnded

CALL_EVENT_TYPES: frozenset[str] = frozenset({CallRequested.TYPE, CallStarted.TYPE, CallEnded.TYPE})
"""Stored event type names the calls read model folds."""

_COLUMNS = tuple(c.name for c in contact_calls.columns)
_KEY_COLUMNS = ("call_id", "contact_id")
_IDS_CHUNK = 1000

Row = dict[str, Any]


def apply_call_events(
    conn: Connection, events: Iterable[ContactEvent], dialect: StoreDialect | None = None
) -> int:
    """Fold the call events among ``events`` (oldest first) into ``contact_calls``; returns rows written.

    Cheap for every other event: nothing is read or written unless a call event is present. Without a
    ``dialect`` (tools, tests) the connection's database decides how to upsert.
    """
    by_call: dict[tuple[str, str], list[CallEvent]] = {}
    for event in events:
        if isinstance(event, CallRequested | CallStarted | CallEnded):
            by_call.setdefault((event.contact_id, event.call_id), []).append(event)
    if not by_call:
        return 0
    stored = _load(conn, list(by_call))
    rows = []
    for key, call_events in by_call.items():
        row = stored.get(key)
        for event in call_events:
            row = fold_call(row, event)
        assert row is not None
        rows.append(row)
    _upsert(conn, rows, dialect or store_dialect(conn))
    return len(rows)


def apply_stored(conn: Connection, stored: Sequence[Envelope], dialect: StoreDialect | None = None) -> int:
    """:func:`apply_call_events` for stored envelopes (the rebuild); other types are not even decoded."""
    events = [decode_event(e.type, e.data, e.schema_version) for e in stored if e.type in CALL_EVENT_TYPES]
    return apply_call_events(conn, events, dialect)


def fold_call(row: Row | None, event: CallEvent) -> Row:
    """The call's row after ``event`` (``row`` None: the call's first event)."""
    at = _utc(event.at)
    if row is None:
        row = {
            "contact_id": event.contact_id,
            "call_id": event.call_id,
            "user_id": event.user_id,
            "username": event.username,
            "desk": "",
            "placed_at": at,
            "requested_at": None,
            "started_at": None,
            "ended_at": None,
            "outcome": None,
            "duration_seconds": 0,
            "handling_seconds": None,
        }
    else:
        row = dict(row)
    match event:
        case CallRequested():
            row["requested_at"] = at
            row["placed_at"] = at
            row["user_id"] = event.user_id
            row["username"] = event.username
            row["desk"] = event.desk
        case CallStarted():
            row["started_at"] = at
            row["placed_at"] = min(row["placed_at"], at)
        case CallEnded():
            row["ended_at"] = at
            row["outcome"] = event.outcome.value
            row["duration_seconds"] = event.duration_seconds
            row["placed_at"] = min(row["placed_at"], at)
    if not row["username"] and event.user_id == row["user_id"]:
        row["username"] = event.username
    requested, ended = row["requested_at"], row["ended_at"]
    row["handling_seconds"] = (
        max((ended - requested).total_seconds(), 0.0) if requested is not None and ended is not None else None
    )
    return row


def call_figures(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    user_ids: Sequence[str] | None = None,
) -> list[AgentCalls]:
    """Per-agent figures of the calls placed in ``[since, until)`` (either end open when None).

    ``user_ids`` keeps only those agents (None: every agent; empty: none). Agents with no call in the
    window are not listed. Ordered by user name, then user id.
    """
    if user_ids is not None and not user_ids:
        return []
    c = contact_calls.c
    conditions: list[sa.ColumnElement[bool]] = []
    if since is not None:
        conditions.append(c.placed_at >= _utc(since))
    if until is not None:
        conditions.append(c.placed_at < _utc(until))
    if user_ids is not None:
        conditions.append(c.user_id.in_(list(dict.fromkeys(user_ids))))
    query = (
        sa.select(
            c.user_id,
            sa.func.max(c.username),
            c.outcome,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(c.duration_seconds), 0),
            sa.func.coalesce(sa.func.sum(c.handling_seconds), 0.0),
            sa.func.count(c.handling_seconds),
        )
        .where(*conditions)
        .group_by(c.user_id, c.outcome)
    )
    names: dict[str, str] = {}
    figures: dict[str, CallFigures] = {}
    with engine.connect() as conn:
        for user_id, username, outcome, count, talk, handling, handled in conn.execute(query):
            names[user_id] = names.get(user_id) or username or ""
            group = CallFigures(
                made=int(count),
                by_outcome={outcome: int(count)} if outcome is not None else {},
                talk_seconds=int(talk),
                handling_seconds_total=float(handling),
                handled_calls=int(handled),
            )
            known = figures.get(user_id)
            figures[user_id] = group if known is None else known.plus(group)
    agents = [AgentCalls(user_id=uid, username=names[uid], figures=f) for uid, f in figures.items()]
    return sorted(agents, key=lambda agent: (agent.username, agent.user_id))


def clear(conn: Connection) -> None:
    """Empty the calls read model (before a rebuild)."""
    conn.execute(contact_calls.delete())


def _load(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Row]:
    """The stored rows of the given calls, by (contact id, call id).

    Looked up by call id, the primary key's first column (one ``IN`` per chunk), then matched on the
    whole key.
    """
    wanted = set(keys)
    call_ids = list(dict.fromkeys(call_id for _, call_id in keys))
    found: dict[tuple[str, str], Row] = {}
    for start in range(0, len(call_ids), _IDS_CHUNK):
        chunk = call_ids[start : start + _IDS_CHUNK]
        query = sa.select(contact_calls).where(contact_calls.c.call_id.in_(chunk))
        for row in conn.execute(query).mappings():
            values = dict(row)
            values["contact_id"] = str(values["contact_id"])
            key = (values["contact_id"], values["call_id"])
            if key not in wanted:
                continue
            for name in ("placed_at", "requested_at", "started_at", "ended_at"):
                values[name] = _utc(values[name]) if values[name] is not None else None
            found[key] = values
    return found


def _utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (SQLite gives naive UTC values back)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _upsert(conn: Connection, rows: Sequence[Mapping[str, Any]], dialect: StoreDialect) -> None:
    """Insert the rows, or replace every column of those already stored."""
    params = [{**row, "contact_id": uuid.UUID(str(row["contact_id"]))} for row in rows]
    insert = dialect.insert(contact_calls)
    upsert = insert.on_conflict_do_update(
        index_elements=[contact_calls.c[name] for name in _KEY_COLUMNS],
        set_={name: insert.excluded[name] for name in _COLUMNS if name not in _KEY_COLUMNS},
    )
    conn.execute(upsert, params)


__all__ = [
    "CALL_EVENT_TYPES",
    "apply_call_events",
    "apply_stored",
    "call_figures",
    "clear",
    "fold_call",
]
