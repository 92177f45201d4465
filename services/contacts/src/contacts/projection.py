"""The contacts read model: stored events folded into one row per live contact, on the caller's connection.

Handlers call :meth:`ContactProjection.apply_events` inside the transaction that appended the events, so
a write is readable at once and the row's ``version`` is always its stream's version. A row holds the
whole :class:`~contacts.domain.ContactState` (except the ``source`` of creation), so :func:`state_of` can
give batch handlers the state without reading every stream; :func:`rebuild` replays the event store
into an empty table and must produce the same rows.

Bulk writes avoid per-row SQL: PostgreSQL gets binary ``COPY`` for new rows, SQLite one prepared
``INSERT`` through ``executemany``; updates go through ``executemany`` on both. A pipelined batch works
out its row changes with :meth:`ContactProjection.plan` on the thread that decides it and hands them to
the writing thread, which only runs :meth:`ContactProjection.write` in the append's transaction.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
import structlog
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.json import set_json_dumps
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from contacts.calls import apply_stored as apply_stored_calls
from contacts.calls import clear as clear_calls
from contacts.commands import Source
from contacts.domain import ContactState, evolve
from contacts.events import ContactCreated, ContactEvent, decode_event
from contacts.schema import SEARCH_INDEX, SEARCH_TABLE, contact_locks, contact_status_counts, contacts
from contacts.statuses import DEFAULT_CATALOGUE, Catalogue
from kernel.envelope import Envelope
from kernel.store import EventStore, write_transaction

log = structlog.get_logger(__name__)

# Columns in table order: what COPY and the raw SQLite INSERT write.
COLUMNS: tuple[str, ...] = tuple(c.name for c in contacts.columns)
_PG_COPY_TYPES = tuple(
    {
        "id": "uuid",
        "status_priority": "int2",
        "extra": "jsonb",
        "locked_until": "timestamptz",
        "last_contacted_at": "timestamptz",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
        "age_key": "timestamptz",
        "version": "int4",
    }.get(name, "text")
    for name in COLUMNS
)
_COPY_FROM = 200
_IDS_CHUNK = 5000
_PRIORITY_MAX = 32_767
_DIGITS_AND_PHONE_MARKS = frozenset("0123456789+-(). ")
_UUID_LIST = re.compile(r"[0-9A-Fa-f,-]*")

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


def _uuid_array_literal(ids: Sequence[str]) -> str:
    """``{id,id,...}`` for PostgreSQL to cast to ``uuid[]``; anything but uuid characters is refused."""
    joined = ",".join(ids)
    if not _UUID_LIST.fullmatch(joined):
        raise ValueError("contact ids must be uuids")
    return "{" + joined + "}"


def ids_match(
    conn: Connection, ids: Sequence[str], column: sa.Column[Any] = contacts.c.id
) -> sa.ColumnElement[bool]:
    """``column IN ids`` (contact ids) as one bound value: a PostgreSQL array, a JSON array on SQLite."""
    if conn.dialect.name == "postgresql":
        # One array literal, cast by the server: no UUID objects built in Python, and no list dumper
        # (psycopg's took ~7 ms of Python for 5,000 ids, the literal 0.4 ms).
        literal = sa.bindparam("ids", _uuid_array_literal(ids), type_=sa.types.NullType())
        return column == sa.any_(sa.cast(literal, postgresql.ARRAY(postgresql.UUID())))
    # Contact ids are canonical (lower-case, dashed): their SQLite form is the hex digits alone.
    hexes = orjson.dumps([i.replace("-", "").lower() for i in ids]).decode()
    each: sa.Select[Any] = sa.select(sa.column("value")).select_from(
        sa.func.json_each(sa.bindparam("ids", hexes))
    )
    return column.in_(each.scalar_subquery())


@dataclass(slots=True)
class ReadModelChanges:
    """The row changes a batch of events makes (:meth:`ContactProjection.plan`), ready to write."""

    inserts: list[tuple[Any, ...]] = field(default_factory=list)  # rows in COLUMNS order
    updates: list[dict[str, Any]] = field(default_factory=list)  # _UPDATE_ROW's bound values
    deletes: list[str] = field(default_factory=list)
    locks: list[dict[str, Any]] = field(default_factory=list)
    unlocks: list[str] = field(default_factory=list)
    counts: list[dict[str, Any]] = field(default_factory=list)  # status and its change, never 0


class ContactProjection:
    """Folds contact events into the read model on a given connection."""

    def __init__(self, catalogue: Catalogue = DEFAULT_CATALOGUE) -> None:
        self._catalogue = catalogue

    def load_states(self, conn: Connection, contact_ids: Iterable[str]) -> dict[str, ContactState]:
        """The states of the live contacts among ``contact_ids``, read from the read model."""
        ids = list(dict.fromkeys(contact_ids))
        found: dict[str, ContactState] = {}
        for start in range(0, len(ids), _IDS_CHUNK):
            query = sa.select(contacts).where(ids_match(conn, ids[start : start + _IDS_CHUNK]))
            for row in conn.execute(query).mappings():
                state = state_of(row)
                found[state.contact_id] = state
        return found

    def prepare_bulk(self, conn: Connection) -> None:
        """At the start of a bulk chunk's transaction: leave index upkeep to :meth:`bulk_upkeep`.

        PostgreSQL: the chunk's trigram entries go to the index's pending list (searched like the rest of
        the index) with room for 64 MB instead of 4 MB, so the chunk does not merge the list itself; the
        upkeep thread merges it meanwhile on its own connection.

        SQLite: chunks rewrite the same index pages again and again; checkpointing after every chunk
        copied them to the database file each time (a third of the bulk time), and merging the full-text
        segments after every chunk rewrote them as often. The connection gets its WAL setting back when it
        returns to the pool (:func:`restore_wal_checkpoints`); :meth:`settle` merges the segments.
        """
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(_BULK_PENDING_LIST)
            return
        fairy = conn.connection
        if _WAL_HOLD not in fairy.info:
            raw: Any = fairy.dbapi_connection
            fairy.info[_WAL_HOLD] = int(raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
            raw.execute("PRAGMA wal_autocheckpoint=0")
        # The full-text index merges its segments once, at settle(), not after every chunk.
        conn.exec_driver_sql(_FTS_AUTOMERGE_OFF)

    @contextmanager
    def bulk_upkeep(self, engine: Engine, merge_every: float = 1.0) -> Iterator[PendingListMerger | None]:
        """Around a bulk write (chunks begun with :meth:`prepare_bulk`): index upkeep beside it, then settle.

        PostgreSQL: a thread merges the trigram index's pending list into the index every second on a
        connection of its own, in parallel with the chunks' writes. Merged in the writing transaction, the
        list cost a million-contact bulk 10 s of its serial path; merged beside it, 5 s of another
        server process (the merge is physical upkeep, as autovacuum does it: every row is searchable from
        its chunk's commit, in the list or in the index).
        """
        merger = PendingListMerger(engine, merge_every) if engine.dialect.name == "postgresql" else None
        try:
            yield merger
        finally:
            if merger is not None:
                merger.stop()
            self.settle(engine)

    def settle(self, engine: Engine) -> None:
        """After a bulk write, pay its deferred costs now rather than in some agent's next edit.

        PostgreSQL: fold the trigram index's pending list (the write that finds it full merges it, hundreds
        of ms). SQLite: turn the full-text index's automatic merging back on, do the merges it would have
        done meanwhile (:func:`_merge_search_segments`) and checkpoint the write-ahead log the chunks left
        behind. The batch is committed by now, so a failure here is only logged.
        """
        try:
            if engine.dialect.name == "postgresql":
                with engine.connect() as conn:
                    conn.execute(_MERGE_PENDING_LIST)
                    conn.commit()
                return
            with write_transaction(engine) as conn:
                conn.exec_driver_sql(_FTS_AUTOMERGE_ON)
                _merge_search_segments(conn)
            raw = engine.raw_connection()
            try:
                raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                raw.close()
        except (sa.exc.DBAPIError, sqlite3.Error):
            log.warning("contacts.bulk_settle_failed", exc_info=True)

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
        if planned.deletes:
            self._delete(conn, planned.deletes)
        if planned.inserts:
            self._insert(conn, planned.inserts)
        if planned.updates:
            conn.execute(_UPDATE_ROW, planned.updates)
        if planned.unlocks:
            conn.execute(contact_locks.delete().where(ids_match(conn, planned.unlocks, contact_locks.c.id)))
        if planned.counts:
            counting = _upsert(conn, contact_status_counts)
            conn.execute(
                counting.on_conflict_do_update(
                    index_elements=[contact_status_counts.c.status],
                    set_={"count": contact_status_counts.c.count + counting.excluded.count},
                ),
                planned.counts,
            )
        if planned.locks:
            insert = _upsert(conn, contact_locks)
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
        for start in range(0, len(contact_ids), _IDS_CHUNK):
            conn.execute(contacts.delete().where(ids_match(conn, contact_ids[start : start + _IDS_CHUNK])))

    def _insert(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if conn.dialect.name == "postgresql":
            if len(rows) >= _COPY_FROM:
                _copy_postgres(conn, rows)
            else:
                params = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
                for values in params:
                    values["id"] = uuid.UUID(values["id"])
                conn.execute(contacts.insert(), params)
            return
        _executemany_sqlite(conn, rows)


# Built once: building it per edit (coercing twenty bind parameters, then its cache key) cost ~0.5 ms.
_UPDATE_ROW = (
    contacts.update()
    .where(contacts.c.id == sa.bindparam("key"))
    .values({name: sa.bindparam(name) for name in COLUMNS if name != "id"})
)


class _TextUuidDumper(Dumper):
    """Binary ``uuid`` from its text form, so COPY takes contact ids as they are (no UUID objects)."""

    format = Format.BINARY
    oid = postgres.types["uuid"].oid

    def dump(self, obj: Any) -> bytes:
        return bytes.fromhex(obj.replace("-", ""))


def _copy_postgres(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Binary ``COPY``: psycopg packs every field in C, orjson writes ``extra``."""
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    set_json_dumps(orjson.dumps, cursor)
    cursor.adapters.register_dumper(None, _TextUuidDumper)
    names = ", ".join(f'"{name}"' for name in COLUMNS)
    try:
        with cursor.copy(f"COPY contacts ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_PG_COPY_TYPES)
            write_row = copy.write_row
            for row in rows:
                write_row(row)
    finally:
        cursor.close()


def _executemany_sqlite(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """One prepared ``INSERT`` over rows in the storage formats SQLAlchemy's types use on SQLite."""
    dumps = orjson.dumps
    stamp = _SqliteStamps()
    values = (
        (
            r[0].replace("-", ""),
            *r[1:9],
            dumps(r[9]).decode() if r[9] else "{}",
            *r[10:14],
            stamp(r[14]),
            stamp(r[15]),
            stamp(r[16]),
            stamp(r[17]),
            stamp(r[18]),
            r[19],
            r[20],
        )
        for r in rows
    )
    names = ", ".join(f'"{name}"' for name in COLUMNS)
    insert = f"INSERT INTO contacts ({names}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        # New rows take rowids above the largest (the transaction holds the write lock): index them for
        # text search in one statement.
        before = cursor.execute("SELECT coalesce(max(rowid), 0) FROM contacts").fetchone()[0]
        cursor.executemany(insert, values)
        cursor.execute(_FTS_ADD, (before,))
    finally:
        cursor.close()


class _SqliteStamps:
    """The text SQLAlchemy's ``DateTime`` stores on SQLite, remembering the last value (batches share it)."""

    def __init__(self) -> None:
        self._last: datetime | None = None
        self._text = ""

    def __call__(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        if value != self._last:
            self._last = value
            moment = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
            self._text = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
        return self._text


def _upsert(conn: Connection, table: sa.Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the connection's database."""
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


_WAL_HOLD = "contacts.wal_autocheckpoint"
# SQLite full-text index upkeep around bulk writes (FTS5 commands; 4 is FTS5's default automerge).
_FTS_AUTOMERGE_OFF = f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rank) VALUES ('automerge', 0)"  # noqa: S608
_FTS_AUTOMERGE_ON = f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rank) VALUES ('automerge', 4)"  # noqa: S608
_FTS_MERGE = f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rank) VALUES ('merge', 2000)"  # noqa: S608
_FTS_ADD = (
    f"INSERT INTO {SEARCH_TABLE} (rowid, search, id) SELECT rowid, search, id FROM contacts WHERE rowid > ?"  # noqa: S608
)


# What a bulk chunk's transaction lets the trigram index's pending list grow to (kB; 4 MB by default).
_BULK_PENDING_LIST = "SET LOCAL gin_pending_list_limit = 65536"
_MERGE_PENDING_LIST = sa.text("SELECT gin_clean_pending_list(CAST(:index AS regclass))").bindparams(
    index=SEARCH_INDEX
)


class PendingListMerger:
    """A thread merging the trigram index's pending list every ``interval`` seconds until stopped."""

    def __init__(self, engine: Engine, interval: float) -> None:
        self.merged_pages = 0
        """Pending-list pages merged into the index so far."""
        self._engine = engine
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="contacts-gin-merge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the merge under way, if any."""
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            with self._engine.connect() as conn:
                while not self._stopped.wait(self._interval):
                    self.merged_pages += int(conn.execute(_MERGE_PENDING_LIST).scalar_one())
                    conn.commit()
        except sa.exc.DBAPIError:
            # Upkeep only: the writing chunks merge the list themselves past 64 MB, settle() at the end.
            log.warning("contacts.pending_list_merge_failed", exc_info=True)


def restore_wal_checkpoints(dbapi_connection: Any, record: Any) -> None:
    """Pool ``checkin`` listener: give a connection back its WAL auto-checkpoint after a bulk chunk."""
    held = record.info.pop(_WAL_HOLD, None)
    if held is not None:
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={int(held)}")


def _merge_search_segments(conn: Connection) -> None:
    """Merge the full-text segments a bulk write left, as automatic merging would have: levels only.

    FTS5's ``merge`` with a positive page budget merges a level once it holds ``usermerge`` (4) segments
    and reports no change when none does. ``optimize`` instead rewrote the whole index into one segment
    after every batch, at a cost growing with the index: 14.5 s of a 1,000,000-contact bulk in ten batches
    against 5 s for these merges.
    """
    raw: Any = conn.connection.dbapi_connection
    while True:
        before = raw.total_changes
        conn.exec_driver_sql(_FTS_MERGE)
        if raw.total_changes - before < 2:
            return


def rebuild(engine: Engine, catalogue: Catalogue = DEFAULT_CATALOGUE, batch_size: int = 20_000) -> int:
    """Empty the read model (calls included) and replay every stored event into it, in one transaction.

    Returns how many events were read.

    Writers wait meanwhile (the event store's append lock is held), readers see the old rows until
    the commit.
    """
    store = EventStore(engine)
    projection = ContactProjection(catalogue)
    replayed = 0
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE events IN EXCLUSIVE MODE")
            conn.exec_driver_sql("TRUNCATE contacts, contact_locks, contact_status_counts, contact_calls")
        else:
            # The full-text table first, in one go: its per-row delete trigger then finds nothing to do.
            conn.exec_driver_sql(f"DELETE FROM {SEARCH_TABLE}")  # noqa: S608
            conn.execute(contacts.delete())
            conn.execute(contact_locks.delete())
            conn.execute(contact_status_counts.delete())
            clear_calls(conn)
        position = 0
        while True:
            stored = store.read_all(position, batch_size, conn=conn)
            if not stored:
                break
            projection.apply(conn, stored)
            apply_stored_calls(conn, stored)
            replayed += len(stored)
            position = stored[-1].position
    return replayed
