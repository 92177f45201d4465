"""The contacts read model: stored events folded into one row per live contact, on the caller's connection.

Handlers call :meth:`ContactProjection.apply_events` inside the transaction that appended the events, so
a write is readable at once and the row's ``version`` is always its stream's version. A row holds the
whole :class:`~contacts.domain.ContactState` (except the ``source`` of creation), so :func:`state_of` can
give batch handlers the state without reading every stream; :func:`rebuild` replays the event store
into an empty table and must produce the same rows.

Bulk writes avoid per-row SQL: PostgreSQL gets binary ``COPY`` for new rows, SQLite one prepared
``INSERT`` through ``executemany`` (both in :mod:`contacts.dialect`); updates go through ``executemany``
on both. A pipelined batch works
out its row changes with :meth:`ContactProjection.plan` on the thread that decides it and hands them to
the writing thread, which only runs :meth:`ContactProjection.write` in the append's transaction.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from contacts.callbacks import apply_stored as apply_stored_callbacks
from contacts.callbacks import clear as clear_callbacks
from contacts.calls import apply_stored as apply_stored_calls
from contacts.commands import Source
from contacts.dialect import COLUMNS, PendingListMerger, ReadModelDialect, read_model_dialect
from contacts.domain import ContactState, evolve
from contacts.errors import DuplicatePhone
from contacts.events import ContactCreated, ContactEvent, ContactListed, decode_event
from contacts.schema import PHONE_INDEX, contact_lists, contact_locks, contact_status_counts, contacts
from contacts.statuses import DEFAULT_CATALOGUE, Catalogue
from kernel.envelope import Envelope
from kernel.store import EventStore, write_transaction

_IDS_CHUNK = 5000
_PRIORITY_MAX = 32_767
_DIGITS_AND_PHONE_MARKS = frozenset("0123456789+-(). ")

Row = dict[str, Any]


class _FoldTable(dict[int, str]):
    """``str.translate`` table filled on first sight of a character: its NFKD form without accents."""

    def __missing__(self, code: int) -> str:
        decomposed = unicodedata.normalize("NFKD", chr(code))
        folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """Text as ``q`` compares it: accents dropped, case folded, runs of whitespace as one space."""
    if not text.isascii():
        text = text.translate(_FOLD)
    return " ".join(text.casefold().split())


def search_text(name: str, phone_e164: str) -> str:
    """The ``search`` column of a contact: folded name and the E.164 digits."""
    return f"{fold(name)} {phone_e164.lstrip('+')}".lstrip()


def search_terms(q: str) -> list[str]:
    """What ``q`` must all contain: one digit string for a phone-looking query, else its folded words."""
    text = q.strip()
    if not text:
        return []
    if any(ch.isdigit() for ch in text) and set(text) <= _DIGITS_AND_PHONE_MARKS:
        return ["".join(ch for ch in text if ch.isdigit())]
    return fold(text).split(" ")


def row_of(state: ContactState, catalogue: Catalogue = DEFAULT_CATALOGUE) -> Row:
    """The read-model row of a live contact state (column name → Python value)."""
    locked = state.locked_by is not None
    return {
        "id": uuid.UUID(state.contact_id),
        "phone": state.phone,
        "phone_e164": state.phone_e164,
        "phone_national": state.phone_national,
        "name": state.name,
        "status": state.status,
        "status_priority": min(catalogue.priority(state.status), _PRIORITY_MAX),
        "note": state.note,
        "email": state.email,
        "extra": dict(state.extra),
        "list": state.list_name,
        "operator": state.operator or "",
        "locked_by": state.locked_by,
        "locked_by_name": state.locked_by_name if locked else None,
        "locked_until": utc(state.locked_until) if locked else None,
        "last_contacted_at": utc(state.last_contacted_at),
        "created_at": utc_required(state.created_at),
        "updated_at": utc_required(state.updated_at),
        "age_key": utc_required(state.ageing_since),
        "search": search_text(state.name, state.phone_e164),
        "version": state.version,
    }


def state_of(row: Mapping[Any, Any]) -> ContactState:
    """The contact state a read-model row holds (``source`` is not kept and reads as ``api``)."""
    return ContactState(
        contact_id=str(row["id"]),
        phone=row["phone"],
        phone_e164=row["phone_e164"],
        phone_national=row["phone_national"],
        operator=row["operator"] or None,
        name=row["name"],
        status=row["status"],
        note=row["note"],
        email=row["email"],
        extra=dict(row["extra"] or {}),
        list_name=row["list"],
        source=Source.API,
        locked_by=row["locked_by"],
        locked_by_name=row["locked_by_name"] or "",
        locked_until=utc(row["locked_until"]),
        last_contacted_at=utc(row["last_contacted_at"]),
        created_at=utc_required(row["created_at"]),
        updated_at=utc_required(row["updated_at"]),
        version=int(row["version"]),
    )


def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (SQLite gives naive UTC values back)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_required(value: datetime) -> datetime:
    """:func:`utc` for a column that is never NULL."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ids_match(
    conn: Connection, ids: Sequence[str], column: sa.Column[Any] = contacts.c.id
) -> sa.ColumnElement[bool]:
    """``column IN ids`` (contact ids) as one bound value, for tools and tests without a dialect at hand
    (:meth:`~contacts.dialect.ReadModelDialect.ids_match`)."""
    return read_model_dialect(conn).ids_match(ids, column)


@dataclass(slots=True)
class ReadModelChanges:
    """The row changes a batch of events makes (:meth:`ContactProjection.plan`), ready to write."""

    inserts: list[tuple[Any, ...]] = field(default_factory=list)  # rows in COLUMNS order
    updates: list[dict[str, Any]] = field(default_factory=list)  # _UPDATE_ROW's bound values
    deletes: list[str] = field(default_factory=list)
    locks: list[dict[str, Any]] = field(default_factory=list)
    unlocks: list[str] = field(default_factory=list)
    counts: list[dict[str, Any]] = field(default_factory=list)  # status and its change, never 0
    listings: list[dict[str, Any]] = field(default_factory=list)  # contact_lists rows to add


class ContactProjection:
    """Folds contact events into the read model on a given connection."""

    def __init__(
        self, catalogue: Catalogue = DEFAULT_CATALOGUE, dialect: ReadModelDialect | None = None
    ) -> None:
        # Without a dialect (tools, tests) each connection's database decides.
        self._catalogue = catalogue
        self._dialect = dialect

    def _dialect_of(self, bind: Engine | Connection) -> ReadModelDialect:
        return self._dialect or read_model_dialect(bind)

    def load_states(self, conn: Connection, contact_ids: Iterable[str]) -> dict[str, ContactState]:
        """The states of the live contacts among ``contact_ids``, read from the read model."""
        ids = list(dict.fromkeys(contact_ids))
        found: dict[str, ContactState] = {}
        dialect = self._dialect_of(conn)
        for start in range(0, len(ids), _IDS_CHUNK):
            query = sa.select(contacts).where(dialect.ids_match(ids[start : start + _IDS_CHUNK]))
            for row in conn.execute(query).mappings():
                state = state_of(row)
                found[state.contact_id] = state
        if found:
            found.update(_with_lists(conn, dialect, found))
        return found

    def prepare_bulk(self, conn: Connection) -> None:
        """At the start of a bulk chunk's transaction: leave index upkeep to :meth:`bulk_upkeep`
        (:meth:`~contacts.dialect.ReadModelDialect.prepare_bulk`)."""
        self._dialect_of(conn).prepare_bulk(conn)

    @contextmanager
    def bulk_upkeep(self, engine: Engine, merge_every: float = 1.0) -> Iterator[PendingListMerger | None]:
        """Around a bulk write (chunks begun with :meth:`prepare_bulk`): index upkeep beside it, then settle
        (:meth:`~contacts.dialect.ReadModelDialect.upkeep`; PostgreSQL yields its merging thread)."""
        with self._dialect_of(engine).upkeep(engine, merge_every) as merger:
            yield merger

    def settle(self, engine: Engine) -> None:
        """After a bulk write, pay its deferred costs now rather than in some agent's next edit; the batch is
        committed by now, so a failure here is only logged."""
        self._dialect_of(engine).settle(engine)

    def apply(
        self,
        conn: Connection,
        stored: Sequence[Envelope],
        before: Mapping[str, ContactState | None] | None = None,
    ) -> None:
        """Fold stored envelopes (decoded by their type names) into the read model."""
        changes = [
            (decode_event(e.type, e.data, e.schema_version), e.stream_version)
            for e in stored
            if e.type.startswith("contacts.")
        ]
        self.apply_events(conn, changes, before)

    def apply_events(
        self,
        conn: Connection,
        changes: Sequence[tuple[ContactEvent, int]],
        before: Mapping[str, ContactState | None] | None = None,
    ) -> None:
        """Fold ``(event, stream version)`` pairs, oldest first, into the rows of their contacts.

        ``before`` gives the state of a stream before these events when the caller knows it (None for
        an empty or deleted stream); the other streams are read from the read model.
        """
        known: dict[str, ContactState | None] = dict(before or {})
        missing = {event.contact_id for event, _ in changes}.difference(known)
        if missing:
            known.update(self.load_states(conn, missing))
        self.write(conn, self.plan(changes, known))

    def plan(
        self, changes: Sequence[tuple[ContactEvent, int]], before: Mapping[str, ContactState | None]
    ) -> ReadModelChanges:
        """What folding ``changes`` does to the rows, worked out without the database.

        ``before`` holds the state of every stream before these events (missing or None: no live contact).
        A bulk batch plans on the thread that decides it, so the thread writing the previous chunk only
        writes.
        """
        by_stream: dict[str, list[tuple[ContactEvent, int]]] = {}
        for event, version in changes:
            found = by_stream.get(event.contact_id)
            if found is None:
                by_stream[event.contact_id] = [(event, version)]
            else:
                found.append((event, version))
        planned = ReadModelChanges()
        counts: Counter[str] = Counter()
        for contact_id, items in by_stream.items():
            prior = before.get(contact_id)
            was_live = prior is not None and not prior.deleted
            if not was_live and len(items) == 1 and type(items[0][0]) is ContactCreated:
                created, version = items[0]
                assert isinstance(created, ContactCreated)
                planned.inserts.append(self._created_values(created, version))
                counts[created.status] += 1
                continue
            state = prior
            for event, version in items:
                if isinstance(event, ContactListed):
                    planned.listings.append(
                        {
                            "contact_id": uuid.UUID(contact_id),
                            "list_name": event.list_name,
                            "listed_at": event.at,
                        }
                    )
                state = evolve(state, event)
                if state.version != version:
                    state = replace(state, version=version)
            assert state is not None
            if was_live and prior is not None:
                counts[prior.status] -= 1
            if not state.deleted:
                counts[state.status] += 1
            if state.deleted:
                if was_live:
                    planned.deletes.append(contact_id)
            elif was_live:
                planned.updates.append(self._update_params(state))
            else:
                planned.inserts.append(self._state_values(state))
            was_locked = was_live and prior is not None and prior.locked_until is not None
            if not state.deleted and state.locked_by is not None and state.locked_until is not None:
                if not was_locked or prior is None or prior.locked_until != state.locked_until:
                    lock = {"id": uuid.UUID(contact_id), "locked_until": utc(state.locked_until)}
                    planned.locks.append(lock)
            elif was_locked:
                planned.unlocks.append(contact_id)
        planned.counts.extend({"status": status, "count": delta} for status, delta in counts.items() if delta)
        return planned

    def write(self, conn: Connection, planned: ReadModelChanges) -> None:
        """Write planned row changes (:meth:`plan`) in the caller's transaction."""
        dialect = self._dialect_of(conn)
        if planned.deletes:
            self._delete(conn, planned.deletes)
        refusals: tuple[type[Exception], ...] = (sa.exc.IntegrityError, *dialect.store.integrity_errors())
        try:
            if planned.inserts:
                dialect.insert_rows(conn, planned.inserts)
            if planned.updates:
                conn.execute(_UPDATE_ROW, planned.updates)
        except refusals as exc:
            phone = _phone_taken(exc)
            if phone is None:
                raise
            raise DuplicatePhone(phone) from exc
        if planned.unlocks:
            conn.execute(contact_locks.delete().where(dialect.ids_match(planned.unlocks, contact_locks.c.id)))
        if planned.counts:
            counting = dialect.store.insert(contact_status_counts)
            conn.execute(
                counting.on_conflict_do_update(
                    index_elements=[contact_status_counts.c.status],
                    set_={"count": contact_status_counts.c.count + counting.excluded.count},
                ),
                planned.counts,
            )
        if planned.listings:
            listing = dialect.store.insert(contact_lists).on_conflict_do_nothing()
            conn.execute(listing, planned.listings)
        if planned.locks:
            insert = dialect.store.insert(contact_locks)
            upsert = insert.on_conflict_do_update(
                index_elements=[contact_locks.c.id], set_={"locked_until": insert.excluded.locked_until}
            )
            conn.execute(upsert, planned.locks)

    def _update_params(self, state: ContactState) -> dict[str, Any]:
        """The bound values of :data:`_UPDATE_ROW` for a live state."""
        row = row_of(state, self._catalogue)
        row["key"] = row.pop("id")
        return row

    def _state_values(self, s: ContactState) -> tuple[Any, ...]:
        """A row in :data:`COLUMNS` order from a live state (ids as text, datetimes aware)."""
        locked = s.locked_by is not None
        return (
            s.contact_id,
            s.phone,
            s.phone_e164,
            s.phone_national,
            s.name,
            s.status,
            min(self._catalogue.priority(s.status), _PRIORITY_MAX),
            s.note,
            s.email,
            dict(s.extra),
            s.list_name,
            s.operator or "",
            s.locked_by,
            s.locked_by_name if locked else None,
            utc(s.locked_until) if locked else None,
            utc(s.last_contacted_at),
            utc_required(s.created_at),
            utc_required(s.updated_at),
            utc_required(s.ageing_since),
            search_text(s.name, s.phone_e164),
            s.version,
        )

    def _created_values(self, e: ContactCreated, version: int) -> tuple[Any, ...]:
        """The row ``evolve(None, e)`` would give, without building the state (bulk creation)."""
        at = utc_required(e.at)
        return (
            e.contact_id,
            e.phone,
            e.phone_e164,
            e.phone_national,
            e.name,
            e.status,
            min(self._catalogue.priority(e.status), _PRIORITY_MAX),
            e.note,
            e.email,
            dict(e.extra),
            e.list_name,
            e.operator or "",
            None,
            None,
            None,
            None,
            at,
            at,
            at,
            search_text(e.name, e.phone_e164),
            version,
        )

    def _delete(self, conn: Connection, contact_ids: Sequence[str]) -> None:
        dialect = self._dialect_of(conn)
        for start in range(0, len(contact_ids), _IDS_CHUNK):
            chunk = contact_ids[start : start + _IDS_CHUNK]
            conn.execute(contacts.delete().where(dialect.ids_match(chunk)))
            conn.execute(contact_lists.delete().where(dialect.ids_match(chunk, contact_lists.c.contact_id)))


def _with_lists(
    conn: Connection, dialect: ReadModelDialect, states: Mapping[str, ContactState]
) -> dict[str, ContactState]:
    """``states`` with the lists each contact joined after its first (``contact_lists``), oldest first."""
    joined: dict[str, list[str]] = {}
    ids = list(states)
    for start in range(0, len(ids), _IDS_CHUNK):
        k = contact_lists.c
        query = (
            sa.select(k.contact_id, k.list_name)
            .where(dialect.ids_match(ids[start : start + _IDS_CHUNK], k.contact_id))
            .order_by(k.listed_at, k.list_name)
        )
        for contact_id, list_name in conn.execute(query):
            joined.setdefault(str(contact_id), []).append(list_name)
    return {cid: replace(states[cid], lists=tuple(names)) for cid, names in joined.items() if cid in states}


# Built once: building it per edit (coercing twenty bind parameters, then its cache key) cost ~0.5 ms.
_TAKEN_PHONE = re.compile(r"\(phone_e164\)=\(([^)]*)\)")


def _phone_taken(error: BaseException) -> str | None:
    """The phone when ``error`` is the refusal of the unique phone index ("" if the database does not
    say which: SQLite), None for any other integrity error."""
    text = str(getattr(error, "orig", None) or error)
    if PHONE_INDEX not in text and "contacts.phone_e164" not in text:
        return None
    found = _TAKEN_PHONE.search(text)
    return found.group(1) if found else ""


_UPDATE_ROW = (
    contacts.update()
    .where(contacts.c.id == sa.bindparam("key"))
    .values({name: sa.bindparam(name) for name in COLUMNS if name != "id"})
)


def rebuild(
    engine: Engine,
    catalogue: Catalogue = DEFAULT_CATALOGUE,
    batch_size: int = 20_000,
    dialect: ReadModelDialect | None = None,
) -> int:
    """Empty the read model (calls included) and replay every stored event into it, in one transaction.

    Returns how many events were read.

    Writers wait meanwhile (the event store's append lock is held), readers see the old rows until
    the commit.
    """
    dialect = dialect or read_model_dialect(engine)
    store = EventStore(engine, dialect.store)
    projection = ContactProjection(catalogue, dialect)
    replayed = 0
    with write_transaction(engine, dialect.store) as conn:
        dialect.clear(conn)
        clear_callbacks(conn)
        conn.execute(contact_lists.delete())
        position = 0
        while True:
            stored = store.read_all(position, batch_size, conn=conn)
            if not stored:
                break
            projection.apply(conn, stored)
            apply_stored_calls(conn, stored, dialect.store)
            apply_stored_callbacks(conn, stored)
            replayed += len(stored)
            position = stored[-1].position
    return replayed
