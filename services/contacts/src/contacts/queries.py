"""The read side of the contacts service: lists, lookups, history, counts and call figures. Reads never write.

Lists are ordered by status priority, then age (longest untouched first), then id, and paged with an
opaque keyset cursor: the sort key of the last row returned, so a page starts inside the index where
the previous one stopped and a million rows cost the same as a hundred. A lock is shown as held only
while ``locked_until > now``; the scheduler, not a read, records its expiry.
"""

from __future__ import annotations

import base64
import binascii
import functools
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.pool import PoolProxiedConnection

from contacts.calls import call_figures
from contacts.dialect import ReadModelDialect, read_model_dialect
from contacts.dnc import listed
from contacts.domain import contact_id_for_phone
from contacts.errors import InvalidInput, NotFound
from contacts.events import (
    CallEnded,
    CallRequested,
    CallStarted,
    ContactCreated,
    ContactDeleted,
    ContactEvent,
    ContactListed,
    ContactLocked,
    ContactMerged,
    ContactUpdated,
    DispositionRecorded,
    LockExpired,
    LockExtended,
    LockForceReleased,
    LockReleased,
    NoteEdited,
    StatusChanged,
    decode_event,
)
from contacts.projection import search_terms, utc, utc_required
from contacts.schema import SEARCH_TABLE, contact_locks, contact_status_counts, contacts
from contacts.statuses import DEFAULT_CATALOGUE, Catalogue
from contacts.views import (
    AgentCalls,
    Contact,
    ContactFilters,
    ContactRow,
    HistoryEntry,
    Page,
    export_phone,
)
from kernel.envelope import Envelope
from kernel.phone import InvalidPhone
from kernel.phonefast import parse_phone_fast
from kernel.store import EventStore, own_connection, sqlite_data_version
from kernel.store.changes import ChangeSignal

Clock = Callable[[], datetime]

MAX_LIMIT = 1000
# SQLite text search: up to this many matching contacts the FTS5 table's ids are fetched and sorted;
# beyond, the first page is read off the ordered index (see ContactQueries._few_matches).
SEARCH_FEW = 2000
# Shortest term a trigram index can look up.
_TRIGRAM = 3
DEFAULT_LIMIT = 100
_ORDER = (contacts.c.status_priority, contacts.c.age_key, contacts.c.id)
_LIKE_ESCAPE = "\\"


def contact_of_row(row: RowMapping, now: datetime) -> Contact:
    """The user-facing view of a read-model row at ``now`` (a lapsed lock shows as free)."""
    locked_until = utc(row["locked_until"])
    held = row["locked_by"] is not None and locked_until is not None and locked_until > now
    return Contact(
        id=str(row["id"]),
        phone=row["phone"],
        phone_e164=row["phone_e164"],
        phone_national=row["phone_national"],
        name=row["name"],
        status=row["status"],
        note=row["note"],
        email=row["email"],
        extra=dict(row["extra"] or {}),
        list_name=row["list"],
        operator=row["operator"] or None,
        locked_by=row["locked_by"] if held else None,
        locked_by_name=row["locked_by_name"] if held else None,
        locked_until=locked_until if held else None,
        last_contacted_at=utc(row["last_contacted_at"]),
        created_at=utc_required(row["created_at"]),
        updated_at=utc_required(row["updated_at"]),
        version=int(row["version"]),
    )


def status_condition(catalogue: Catalogue, code: str) -> list[sa.ColumnElement[bool]]:
    """Rows with status ``code``: its priority alone when no other status shares that priority."""
    priority = catalogue.priority(code)
    condition = [contacts.c.status_priority == priority]
    if any(s.priority == priority and s.code != code for s in catalogue.statuses):
        condition.append(contacts.c.status == code)
    return condition


def encode_cursor(priority: int, age_key: datetime, contact_id: str) -> str:
    """The opaque, URL-safe cursor of a row's sort key."""
    raw = orjson.dumps([priority, utc_required(age_key).isoformat(), contact_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[int, datetime, uuid.UUID]:
    """The sort key in a cursor; InvalidInput when it was not made by :func:`encode_cursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        priority, age_key, contact_id = orjson.loads(raw)
        moment = datetime.fromisoformat(age_key)
        return int(priority), utc_required(moment), uuid.UUID(str(contact_id))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidInput("cursor", "El cursor de paginación no es válido") from None


# The sort key of a page's rows as the driver returns it (SQLite: text moments and hex ids; PostgreSQL:
# aware datetimes and UUIDs), for the next cursor.
_SORT_KEY_COLUMNS = tuple(
    sa.type_coerce(contacts.c[name], sa.types.NullType()).label(name)
    for name in ("status_priority", "age_key", "id")
)


def _sqlite_iso(name: str) -> sa.ColumnElement[Any]:
    """SQLite: a moment stored by SQLAlchemy ("YYYY-MM-DD HH:MM:SS.ffffff", UTC) as its ``isoformat()``."""
    c = f"contacts.{name}"
    return sa.literal_column(
        f"CASE WHEN substr({c}, 20) = '.000000' THEN substr({c}, 1, 10) || 'T' || substr({c}, 12, 8) "
        f"ELSE substr({c}, 1, 10) || 'T' || substr({c}, 12) END || '+00:00'"
    )


def _lock_shown() -> sa.ColumnElement[bool]:
    """Whether a row shows its lock: one is recorded and it has not ended at ``:now``."""
    c = contacts.c
    return sa.and_(c.locked_by.is_not(None), c.locked_until > sa.bindparam("now", type_=c.locked_until.type))


def _sqlite_contact_json() -> sa.ColumnElement[Any]:
    """SQLite: one row's ``Contact.to_data()`` built by ``json_object`` (the lock shown only while held)."""
    c = contacts.c
    held = _lock_shown()
    dashed = "substr(contacts.id, 1, 8) || '-' || substr(contacts.id, 9, 4) || '-' || " + (
        "substr(contacts.id, 13, 4) || '-' || substr(contacts.id, 17, 4) || '-' || substr(contacts.id, 21)"
    )
    fields: list[tuple[str, sa.ColumnElement[Any]]] = [
        ("id", sa.literal_column(dashed)),
        ("phone", c.phone),
        ("phone_e164", c.phone_e164),
        ("phone_national", c.phone_national),
        ("name", c.name),
        ("status", c.status),
        ("note", c.note),
        ("email", c.email),
        ("extra", sa.func.json(sa.type_coerce(c.extra, sa.Text()))),
        ("list", c.list),
        ("operator", sa.func.nullif(c.operator, "")),
        ("locked_by", sa.case((held, c.locked_by))),
        ("locked_by_name", sa.case((held, c.locked_by_name))),
        ("locked_until", sa.case((held, _sqlite_iso("locked_until")))),
        ("last_contacted_at", _sqlite_iso("last_contacted_at")),
        ("created_at", _sqlite_iso("created_at")),
        ("updated_at", _sqlite_iso("updated_at")),
        ("version", c.version),
    ]
    pairs = [part for key, value in fields for part in (sa.literal_column(f"'{key}'"), value)]
    return sa.type_coerce(sa.func.json_object(*pairs), sa.types.NullType())


# SQLite builds each contact's JSON itself (one text per row, joined into the page); the sort key
# comes along for the next cursor. About 150 µs less per page of 50 than converting rows in Python.
# When the lock the row shows ends (NULL if it shows none): a kept page is good until then.
_SHOWN_LOCK_ENDS_COLUMN = sa.type_coerce(
    sa.case((_lock_shown(), contacts.c.locked_until)), sa.types.NullType()
).label("shown_lock_ends")
_SQLITE_JSON_COLUMNS = (_sqlite_contact_json().label("contact"), *_SORT_KEY_COLUMNS, _SHOWN_LOCK_ENDS_COLUMN)


def _postgres_iso(name: str) -> str:
    """PostgreSQL: a ``timestamptz`` column as Python's ``isoformat()`` of it in UTC (SQL text)."""
    utc_moment = f"(contacts.{name} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc_moment}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
        f"date_part('microseconds', {utc_moment})::bigint % 1000000 = 0 THEN '' "
        f"ELSE to_char({utc_moment}, '.US') END || '+00:00'"
    )


def _postgres_contact_json() -> sa.ColumnElement[Any]:
    """PostgreSQL: one row's ``Contact.to_data()`` as JSON text built by the server (as on SQLite)."""
    c = contacts.c
    held = _lock_shown()
    fields: list[tuple[str, sa.ColumnElement[Any]]] = [
        ("id", sa.cast(c.id, sa.Text())),
        ("phone", c.phone),
        ("phone_e164", c.phone_e164),
        ("phone_national", c.phone_national),
        ("name", c.name),
        ("status", c.status),
        ("note", c.note),
        ("email", c.email),
        ("extra", sa.literal_column("contacts.extra")),
        ("list", c.list),
        ("operator", sa.func.nullif(c.operator, "")),
        ("locked_by", sa.case((held, c.locked_by))),
        ("locked_by_name", sa.case((held, c.locked_by_name))),
        ("locked_until", sa.case((held, sa.literal_column(_postgres_iso("locked_until"))))),
        ("last_contacted_at", sa.literal_column(_postgres_iso("last_contacted_at"))),
        ("created_at", sa.literal_column(_postgres_iso("created_at"))),
        ("updated_at", sa.literal_column(_postgres_iso("updated_at"))),
        ("version", c.version),
    ]
    pairs = [part for key, value in fields for part in (sa.literal_column(f"'{key}'"), value)]
    # As text: psycopg would parse a json value back into Python objects.
    return sa.type_coerce(sa.cast(sa.func.json_build_object(*pairs), sa.Text()), sa.types.NullType())


# PostgreSQL builds each contact's JSON too: loading twenty typed values a row and dumping them from
# Python cost about 1.4 ms of the contacts process's CPU per page of 50.
_POSTGRES_JSON_COLUMNS = (
    _postgres_contact_json().label("contact"),
    *_SORT_KEY_COLUMNS,
    _SHOWN_LOCK_ENDS_COLUMN,
)
# Where both JSON column sets hold the row's sort key (status_priority, age_key, id), for the next cursor.
_JSON_SORT_KEY = (1, 2, 3)
_SHOWN_LOCK_ENDS = 4
# The export's columns, as the driver returns them (see ``iter_export``).
_EXPORT_COLUMNS = tuple(
    sa.type_coerce(contacts.c[name], sa.types.NullType()).label(name)
    for name in (
        "id", "phone_e164", "phone_national", "name", "status", "note", "locked_by", "locked_by_name",
        "locked_until", "last_contacted_at", "created_at", "updated_at",
    )
)  # fmt: skip


def _export_row(row: Sequence[Any], now: datetime) -> ContactRow:
    """The export row of a row of :data:`_EXPORT_COLUMNS` at ``now`` (a lapsed lock shows no holder)."""
    (contact_id, e164, national, name, status, note, locked_by, locked_by_name, locked_until,
     last_contacted_at, created_at, updated_at) = row  # fmt: skip
    until = _raw_moment(locked_until) if locked_by is not None else None
    holder = (locked_by_name or locked_by) if until is not None and until > now else None
    return ContactRow(
        _raw_uuid(contact_id),
        export_phone(e164, national),
        name,
        status,
        note,
        holder,
        _raw_moment(last_contacted_at),
        _raw_moment(created_at) or now,
        _raw_moment(updated_at) or now,
    )


def _raw_uuid(value: object) -> str:
    """A driver's uuid (SQLite: 32 hex digits; PostgreSQL: ``uuid.UUID``) in its canonical text form."""
    if isinstance(value, str) and len(value) == 32:
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value)


def _raw_moment(value: object) -> datetime | None:
    """A driver's timestamp (SQLite text in UTC, or a datetime) as an aware UTC datetime."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return utc_required(moment)


def _raw_iso(value: object) -> str | None:
    """``utc(moment).isoformat()`` of a driver's timestamp; SQLAlchemy's SQLite text is rewritten directly."""
    if isinstance(value, str) and len(value) == 26 and value[10] == " " and value[19] == ".":
        # "YYYY-MM-DD HH:MM:SS.ffffff" (naive UTC) → "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00"
        seconds = value[11:19] if value.endswith(".000000") else value[11:]
        return f"{value[:10]}T{seconds}+00:00"
    moment = _raw_moment(value)
    return moment.isoformat() if moment is not None else None


_UNSUPPORTED = object()


def _sqlite_value(value: object) -> object:
    """A bound value as SQLAlchemy sends it to SQLite (ids as hex, moments as its text), or _UNSUPPORTED."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S.%f}"
    return _UNSUPPORTED


@dataclass(frozen=True, slots=True)
class _FirstPage:
    """A first-page statement and, on SQLite, its SQL and bound values (``now`` filled per request)."""

    statement: sa.Select[Any]
    sql: str | None = None
    bound: tuple[object, ...] = ()
    now_at: tuple[int, ...] = ()

    def params(self, now: datetime) -> tuple[object, ...]:
        """The bound values with ``now`` in place."""
        values = list(self.bound)
        for index in self.now_at:
            values[index] = _sqlite_value(now)
        return tuple(values)


class _ThreadConnections:
    """SQLite: one connection per thread outside the pool (autocommit: each read sees the latest commit)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()

    def fetch(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        """Every row of one statement."""
        cursor = self._connection().cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version`` on this thread's connection: it changes with every commit made
        by any other connection, in this process or another (this one only reads)."""
        return sqlite_data_version(self._connection())

    def pages(self) -> _PageCache:
        """This thread's cache of first pages (valid for this thread's connection's data_version)."""
        cache: _PageCache | None = getattr(self._local, "pages", None)
        if cache is None:
            cache = self._local.pages = _PageCache()
        return cache

    def _connection(self) -> PoolProxiedConnection:
        connection: PoolProxiedConnection = own_connection(self._engine, self._local)
        return connection


@dataclass(frozen=True, slots=True)
class _CachedPage:
    data_version: int
    read_at: datetime
    good_until: datetime | None
    body: bytes
    next_cursor: str | None


class _PageCache:
    """Recent first pages, as served (JSON body and next cursor): on SQLite one per reading connection,
    on PostgreSQL one per process.

    A page is served again only while the database is unchanged since it was read (SQLite: the
    connection's ``data_version``; PostgreSQL: the version of a change signal that the read model's
    triggers notify, migration ``contacts_0004``; either read before the page) and no lock it shows has
    ended: those are the only ways its JSON can change. The window of every agent asks for the same few
    first pages; any write, from this process or another (an import run from the CLI), makes the next
    request read again.
    """

    ENTRIES = 32
    LARGEST = 200
    """Most contacts on a kept page (the desktop client's pages); bigger ones are always read."""

    def __init__(self) -> None:
        self._pages: dict[tuple[ContactFilters, int], _CachedPage] = {}
        self._lock = threading.Lock()  # the per-process one is shared by every thread

    def get(self, key: tuple[ContactFilters, int], data_version: int, now: datetime) -> _CachedPage | None:
        page = self._pages.get(key)
        if page is None or page.data_version != data_version or now < page.read_at:
            return None
        if page.good_until is not None and now >= page.good_until:
            return None
        return page

    def put(self, key: tuple[ContactFilters, int], page: _CachedPage) -> None:
        if key[1] > self.LARGEST:
            return
        with self._lock:
            self._pages.pop(key, None)
            if len(self._pages) >= self.ENTRIES:
                del self._pages[next(iter(self._pages))]  # the oldest kept
            self._pages[key] = page


def _good_until(rows: Sequence[Sequence[Any]], limit: int) -> datetime | None:
    """When the first lock shown on a page of JSON rows ends (the page changes then), if any."""
    ends = (_raw_moment(row[_SHOWN_LOCK_ENDS]) for row in rows[:limit])
    return min((end for end in ends if end is not None), default=None)


class ContactQueries:
    """Queries over the read model (and the event store for history)."""

    def __init__(
        self,
        engine: Engine,
        store: EventStore | None = None,
        catalogue: Catalogue = DEFAULT_CATALOGUE,
        clock: Clock = lambda: datetime.now(UTC),
        changes: ChangeSignal | None = None,
        dialect: ReadModelDialect | None = None,
    ) -> None:
        # changes (PostgreSQL): first pages are kept while it announces no change to the read model
        # (CONTACTS_CHANNEL); its listening loop is run by whoever built it.
        # dialect: the read model's, chosen by the composition root (else the one beside the store's).
        self._engine = engine
        self._store = store or EventStore(engine)
        self._dialect = dialect or read_model_dialect(self._store.dialect)
        self._catalogue = catalogue
        self._clock = clock
        self._first_page = functools.lru_cache(maxsize=256)(self._first_page_query)
        self._per_connection = self._dialect.keeps_pages_per_connection
        self._json_columns = _SQLITE_JSON_COLUMNS if self._per_connection else _POSTGRES_JSON_COLUMNS
        self._own_connections = _ThreadConnections(engine)
        self._changes = None if self._per_connection else changes
        self._kept_pages = _PageCache()

    @property
    def engine(self) -> Engine:
        """The read model's database."""
        return self._engine

    @property
    def store(self) -> EventStore:
        """The event store the history is read from."""
        return self._store

    @property
    def catalogue(self) -> Catalogue:
        """The statuses the read model orders and counts by."""
        return self._catalogue

    def list_contacts(
        self,
        filters: ContactFilters = ContactFilters(),
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page:
        """One page of contacts matching ``filters`` in the default order, starting after ``cursor``."""
        now = self._now()
        query = self._page_query(filters, limit, cursor, now, contacts.c)
        with self._engine.connect() as conn:
            rows = list(conn.execute(query).mappings())
        items = tuple(contact_of_row(row, now) for row in rows[:limit])
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(last["status_priority"], last["age_key"], str(last["id"]))
        return Page(items, next_cursor)

    def list_contacts_json(
        self,
        filters: ContactFilters = ContactFilters(),
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> tuple[bytes, str | None]:
        """:meth:`list_contacts` serialised once: the JSON array of its contacts' data, and the next cursor.

        No Contact objects, no datetime round trip: SQLite builds each row's JSON; on PostgreSQL the rows go
        to JSON as the driver returns them. A third (PostgreSQL) to a fifth (SQLite) of the time of
        building the page and dumping ``Contact.to_data()`` of each item.
        """
        now = self._now()
        # A text search on SQLite depends on the data (how many contacts match): never a cached statement.
        cacheable = (
            cursor is None
            and filters.locked is None
            and not (self._dialect.probes_search_index and filters.q.strip())
        )
        first = self._first_page(filters, limit) if cacheable else None
        if first is not None and first.sql is not None:
            return self._sqlite_first_page(first, filters, limit, now)
        if first is not None:
            return self._postgres_first_page(first.statement, filters, limit, now)
        query = self._page_query(filters, limit, cursor, now, self._json_columns)
        return self._page_json(self._json_rows(query, now), limit, now)

    def kept_page_json(
        self, filters: ContactFilters, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> tuple[bytes, str | None] | None:
        """:meth:`list_contacts_json` if the page is kept and still true (PostgreSQL), else None; no I/O.

        For the event loop: a page that is not kept is read by :meth:`list_contacts_json` on a thread.
        """
        version = self._signal_version()
        if version is None or cursor is not None or filters.locked is not None:
            return None
        kept = self._kept_pages.get((filters, limit), version, self._now())
        return (kept.body, kept.next_cursor) if kept is not None else None

    def _postgres_first_page(
        self, statement: sa.Select[Any], filters: ContactFilters, limit: int, now: datetime
    ) -> tuple[bytes, str | None]:
        """A PostgreSQL first page, kept for the process while the change signal stays at its version."""
        version = self._signal_version()  # before reading
        if version is not None:
            kept = self._kept_pages.get((filters, limit), version, now)
            if kept is not None:
                return kept.body, kept.next_cursor
        rows = self._json_rows(statement, now)
        body, next_cursor = self._page_json(rows, limit, now)
        if version is not None:
            page = _CachedPage(version, now, _good_until(rows, limit), body, next_cursor)
            self._kept_pages.put((filters, limit), page)
        return body, next_cursor

    def _signal_version(self) -> int | None:
        """The change signal's version; None without one or while it does not listen (keep nothing)."""
        return self._changes.version if self._changes is not None else None

    def _json_rows(self, statement: sa.Select[Any], now: datetime) -> Sequence[sa.Row[Any]]:
        with self._engine.connect() as conn:
            if self._dialect.reads_in_autocommit:
                # One statement: no BEGIN/ROLLBACK round trips around it.
                conn.execution_options(isolation_level="AUTOCOMMIT")
            return conn.execute(statement, {"now": now}).all()

    def _sqlite_first_page(
        self, first: _FirstPage, filters: ContactFilters, limit: int, now: datetime
    ) -> tuple[bytes, str | None]:
        """A compiled SQLite first page, served from this thread's :class:`_PageCache` while still true."""
        pages = self._own_connections.pages()
        data_version = self._own_connections.data_version()  # before reading: a commit after it misses
        kept = pages.get((filters, limit), data_version, now)
        if kept is not None:
            return kept.body, kept.next_cursor
        rows = self._own_connections.fetch(first.sql or "", first.params(now))
        body, next_cursor = self._page_json(rows, limit, now)
        page = _CachedPage(data_version, now, _good_until(rows, limit), body, next_cursor)
        pages.put((filters, limit), page)
        return body, next_cursor

    def _page_json(
        self, rows: Sequence[Sequence[Any]], limit: int, now: datetime
    ) -> tuple[bytes, str | None]:
        """The JSON array of a page's first ``limit`` rows and, if a row follows them, the next cursor."""
        body = ("[" + ",".join(row[0] for row in rows[:limit]) + "]").encode()
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            priority, raw_age_key, raw_id = (last[i] for i in _JSON_SORT_KEY)
            age_key = _raw_moment(raw_age_key)
            assert age_key is not None
            next_cursor = encode_cursor(int(priority), age_key, _raw_uuid(raw_id))
        return body, next_cursor

    def _first_page_query(self, filters: ContactFilters, limit: int) -> _FirstPage:
        """The first page's statement, built once per filters and limit (kept in ``_first_page``).

        Without a cursor or a lock filter it holds no value that changes with time, and a statement
        object used again skips SQLAlchemy's cache-key walk (~100 µs of each request). On SQLite it is
        also compiled once and sent straight to the driver (another ~150 µs: pool, BEGIN, ROLLBACK).
        """
        statement = self._page_query(filters, limit, None, self._now(), self._json_columns)
        if not self._per_connection:
            return _FirstPage(statement)
        compiled = statement.compile(dialect=self._engine.dialect)
        values = compiled.construct_params({"now": None})
        names = compiled.positiontup or []
        bound = [None if name == "now" else _sqlite_value(values[name]) for name in names]
        if any(value is _UNSUPPORTED for value in bound):
            return _FirstPage(statement)
        now_at = tuple(i for i, name in enumerate(names) if name == "now")
        return _FirstPage(statement, str(compiled), tuple(bound), now_at)

    def _page_query(
        self,
        filters: ContactFilters,
        limit: int,
        cursor: str | None,
        now: datetime,
        columns: Iterable[sa.ColumnElement[Any]],
    ) -> sa.Select[Any]:
        """The query of one page selecting ``columns``: ``limit + 1`` rows, to tell whether more follow."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput("limit", f"El límite debe estar entre 1 y {MAX_LIMIT}")
        after = decode_cursor(cursor) if cursor else None
        statuses = tuple(dict.fromkeys(self._catalogue.normalise(s) for s in filters.statuses))
        conditions = self._conditions(filters, now)
        if after is not None:
            bound = [
                sa.bindparam(None, value, type_=column.type)
                for column, value in zip(_ORDER, after, strict=True)
            ]
            conditions.append(sa.tuple_(*_ORDER) > sa.tuple_(*bound))
        if len(statuses) <= 1:
            if statuses:
                conditions.extend(self._status_is(statuses[0]))
            order: tuple[sa.ColumnElement[Any], ...] = _ORDER
            if filters.locked is True:
                # Held locks are few: fetch them by id and sort them. An expression as first sort key
                # keeps SQLite's planner from walking the whole ordered index instead.
                order = (contacts.c.status_priority + 0, *_ORDER[1:])
            return sa.select(*columns).where(*conditions).order_by(*order).limit(limit + 1)
        branches = [[*conditions, *self._status_is(status)] for status in statuses]
        return _union(branches, limit + 1, columns)

    def iter_contacts(
        self, filters: ContactFilters = ContactFilters(), page_size: int = 500
    ) -> Iterator[Contact]:
        """Every contact matching ``filters``, in the default order, fetched page by page."""
        cursor: str | None = None
        while True:
            page = self.list_contacts(filters, page_size, cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def iter_export(
        self, filters: ContactFilters = ContactFilters(), batch_size: int = 5000
    ) -> Iterator[ContactRow]:
        """Every contact matching ``filters`` as an export row, in the default order (importexport).

        One query streamed ``batch_size`` rows at a time (a server-side cursor on PostgreSQL), so memory
        stays flat and the export is one consistent snapshot on PostgreSQL. Columns come as the driver
        returns them (no SQLAlchemy type processing per value: a third of the cost at a million rows).
        """
        now = self._now()
        statuses = tuple(dict.fromkeys(self._catalogue.normalise(s) for s in filters.statuses))
        conditions = self._conditions(filters, now)
        if statuses:
            conditions.append(sa.or_(*(sa.and_(*self._status_is(status)) for status in statuses)))
        query = sa.select(*_EXPORT_COLUMNS).where(*conditions).order_by(*_ORDER)
        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(query)
            for rows in result.partitions():
                for row in rows:
                    yield _export_row(row, now)

    def get(self, contact_id: str) -> Contact:
        """The contact with this id; NotFound when missing or deleted."""
        key = _uuid_or_none(contact_id)
        if key is None:
            raise NotFound(contact_id)
        return self._one(contacts.c.id == key, contact_id)

    def get_by_phone(self, phone: str) -> Contact:
        """The contact with this phone typed any way (``8812-3456``, ``+506 8812 3456``); NotFound if none."""
        try:
            e164 = parse_phone_fast(phone).e164
        except InvalidPhone as error:
            raise InvalidInput("phone", f"Teléfono no válido: «{phone}» ({error.reason})") from None
        return self._one(contacts.c.id == uuid.UUID(contact_id_for_phone(e164)), e164)

    def dnc_listed(self, phones_e164: Iterable[str]) -> set[str]:
        """Those of the given E.164 numbers on the do-not-call list (the generator's lookup)."""
        with self._engine.connect() as conn:
            return set(listed(conn, phones_e164))

    def existing_phones(self, phones_e164: Iterable[str]) -> set[str]:
        """Those of the given E.164 numbers that belong to a contact (the generator's lookup)."""
        wanted = list(dict.fromkeys(phones_e164))
        found: set[str] = set()
        with self._engine.connect() as conn:
            for start in range(0, len(wanted), 5000):
                ids = [contact_id_for_phone(e164) for e164 in wanted[start : start + 5000]]
                query = sa.select(contacts.c.phone_e164).where(self._dialect.ids_match(ids))
                found.update(conn.execute(query).scalars())
        return found

    def history(self, contact_id: str) -> list[HistoryEntry]:
        """Every change of the contact from its event stream, oldest first; NotFound when it has none."""
        stored = self._store.read_stream(contact_id)
        if not stored:
            raise NotFound(contact_id)
        entries: list[HistoryEntry] = []
        for envelope in stored:
            event = decode_event(envelope.type, envelope.data, envelope.schema_version)
            entries.extend(_history_rows(envelope, event))
        return entries

    def counts_by_status(self) -> dict[str, int]:
        """How many contacts have each status (every catalogue status listed, zeros included)."""
        counts = dict.fromkeys(self._catalogue.codes, 0)
        query = sa.select(contact_status_counts.c.status, contact_status_counts.c.count)
        with self._engine.connect() as conn:
            for status, count in conn.execute(query):
                if count or status in counts:
                    counts[status] = int(count)
        return counts

    def locked_contacts(self) -> list[Contact]:
        """The contacts whose lock is held now, soonest expiry first."""
        now = self._now()
        query = (
            sa.select(contacts)
            .join(contact_locks, contact_locks.c.id == contacts.c.id)
            .where(contact_locks.c.locked_until > now)
            .order_by(contact_locks.c.locked_until, contacts.c.id)
        )
        with self._engine.connect() as conn:
            return [contact_of_row(row, now) for row in conn.execute(query).mappings()]

    def stats(self) -> dict[str, Any]:
        """Totals for dashboards: contacts, held locks and counts by status."""
        by_status = self.counts_by_status()
        now = self._now()
        locked = sa.select(sa.func.count()).where(contact_locks.c.locked_until > now)
        with self._engine.connect() as conn:
            held = int(conn.execute(locked).scalar_one())
        return {"total": sum(by_status.values()), "locked": held, "by_status": by_status}

    def call_figures(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        user_ids: Sequence[str] | None = None,
    ) -> list[AgentCalls]:
        """Per-agent call figures for calls placed in ``[since, until)`` (see :func:`calls.call_figures`)."""
        if since is not None and until is not None and since >= until:
            raise InvalidInput("since", "El inicio del periodo debe ser anterior a su fin")
        return call_figures(self._engine, since=since, until=until, user_ids=user_ids)

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def _one(self, condition: sa.ColumnElement[bool], label: str) -> Contact:
        now = self._now()
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(contacts).where(condition)).mappings().first()
        if row is None:
            raise NotFound(label)
        return contact_of_row(row, now)

    def _status_is(self, code: str) -> list[sa.ColumnElement[bool]]:
        """A status as a range of the ordered index: its priority (and the code, if the priority is shared).

        The planner cannot know a status implies its priority; given both it underestimates the rows
        and sorts them all instead of reading the first page off the index.
        """
        return status_condition(self._catalogue, code)

    def _conditions(self, filters: ContactFilters, now: datetime) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = []
        if filters.list_name is not None:
            conditions.append(contacts.c.list == filters.list_name)
        if filters.operator is not None:
            conditions.append(contacts.c.operator == filters.operator)
        if filters.locked is True:
            held = sa.select(contact_locks.c.id).where(contact_locks.c.locked_until > now)
            conditions.append(contacts.c.id.in_(held.scalar_subquery()))
        elif filters.locked is False:
            conditions.append(sa.or_(contacts.c.locked_until.is_(None), contacts.c.locked_until <= now))
        terms = search_terms(filters.q)
        whole = _whole_phone(filters.q) if len(terms) == 1 and terms[0].isdigit() else None
        if whole is not None:
            # A complete number is that contact (its id is the phone's uuid5): no text scan.
            conditions.append(contacts.c.id == uuid.UUID(contact_id_for_phone(whole)))
            return conditions
        if self._dialect.probes_search_index:
            found = self._few_matches([term for term in terms if len(term) >= _TRIGRAM])
            if found is not None:
                # The candidates; every term is still checked on them (the probe may over-match).
                conditions.append(_ROWID.in_(_json_values(found)))
        for term in terms:
            conditions.append(contacts.c.search.like(f"%{_escape_like(term)}%", escape=_LIKE_ESCAPE))
        return conditions

    def _few_matches(self, terms: Sequence[str]) -> list[int] | None:
        """SQLite: the rowids of the contacts whose text may hold every term, when they are few.

        The FTS5 trigram table answers a rare ``q`` at once; for a common one (more than
        :data:`SEARCH_FEW` contacts) None, and the first page is read off the ordered index with ``LIKE``,
        which finds it in the first rows (looking up thousands of ids and sorting them would not).

        The probe asks first for each term's trigrams that tile it (``rod rig uez`` for ``rodriguez``)
        instead of the exact phrase: a phrase query reads the positions of all of its trigrams, and the
        common ones (``mar``, ``ria``) make it 2–4× slower (`maria rodriguez` over 1,000,000 contacts:
        6.4 against 12.7 ms). Tiles may over-match (a contact holding every tile elsewhere), so the caller
        still checks every term with ``LIKE``; only when tiles find too many is the exact phrase asked.
        Rowids, not the ``id`` column: the full-text table shares the contacts' rowids (migration
        ``contacts_0002``), and reading ``id`` meant a lookup in its content table per match (~3 ms for
        2,000).
        """
        if not terms:
            return None
        probe = sa.text(f"SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH :phrase LIMIT :cap")  # noqa: S608
        with self._engine.connect() as conn:
            for phrase in (_fts_tiles(terms), _fts_phrases(terms)):
                found = list(conn.execute(probe, {"phrase": phrase, "cap": SEARCH_FEW + 1}).scalars())
                if len(found) <= SEARCH_FEW:
                    return found
        return None


def _fts_phrases(terms: Sequence[str]) -> str:
    """An FTS5 query for rows holding every term (each a phrase of its trigrams)."""
    return " AND ".join(_fts_string(term) for term in terms)


def _fts_tiles(terms: Sequence[str]) -> str:
    """An FTS5 query for rows holding, for every term, the trigrams that tile it (each once, anywhere)."""
    tiles: dict[str, None] = {}
    for term in terms:
        for start in range(0, len(term) - _TRIGRAM + 1, _TRIGRAM):
            tiles[term[start : start + _TRIGRAM]] = None
        tiles[term[-_TRIGRAM:]] = None
    return " AND ".join(_fts_string(tile) for tile in tiles)


def _fts_string(text: str) -> str:
    """``text`` as an FTS5 string (a phrase of its trigrams)."""
    return '"' + text.replace('"', '""') + '"'


def _union(
    branches: Sequence[Sequence[sa.ColumnElement[bool]]],
    limit: int,
    columns: Iterable[sa.ColumnElement[Any]],
) -> sa.Select[Any]:
    """The first ``limit`` rows of each branch (one index range each), merged in order and cut."""
    chosen = list(columns)
    parts = [sa.select(*chosen).where(*where).order_by(*_ORDER).limit(limit).subquery() for where in branches]
    union = sa.union_all(*(sa.select(part) for part in parts)).subquery()
    return sa.select(union).order_by(union.c.status_priority, union.c.age_key, union.c.id).limit(limit)


def _history_rows(envelope: Envelope, event: ContactEvent) -> list[HistoryEntry]:
    """The history rows of one event: one per field it changed."""

    def entry(field: str, old: str | None, new: str | None, **detail: str) -> HistoryEntry:
        return HistoryEntry(
            position=envelope.position,
            version=envelope.stream_version,
            event_type=envelope.type,
            field=field,
            old=old,
            new=new,
            user_id=envelope.actor.user_id,
            role=envelope.actor.role,
            at=event.at,
            detail=detail,
        )

    match event:
        case ContactCreated():
            rows = [entry("phone", None, event.phone_e164, source=event.source.value)]
            for name, value in (
                ("name", event.name),
                ("status", event.status),
                ("note", event.note),
                ("email", event.email),
                ("list", event.list_name),
                ("operator", event.operator or ""),
            ):
                if value:
                    rows.append(entry(name, None, value))
            rows.extend(entry(f"extra.{key}", None, value) for key, value in event.extra.items())
            return rows
        case ContactUpdated():
            return [entry(c.field, c.old, c.new) for c in event.changes]
        case ContactMerged():
            detail = {"source": event.source.value, "list": event.list_name, "row": str(event.row)}
            return [entry(c.field, c.old, c.new, **detail) for c in event.changes]
        case StatusChanged():
            return [entry("status", event.old, event.new, reason=event.reason.value)]
        case NoteEdited():
            return [entry("note", event.old, event.new)]
        case ContactLocked():
            until = event.locked_until.isoformat()
            return [entry("locked_by", None, event.locked_by, locked_until=until, name=event.locked_by_name)]
        case LockExtended():
            return [entry("locked_until", None, event.locked_until.isoformat(), locked_by=event.locked_by)]
        case LockReleased():
            return [entry("locked_by", event.released_by, None)]
        case LockForceReleased():
            return [entry("locked_by", event.locked_by, None, released_by=event.released_by)]
        case LockExpired():
            return [entry("locked_by", event.locked_by, None, locked_until=event.locked_until.isoformat())]
        case ContactDeleted():
            return [entry("deleted", None, "true", reason=event.reason)]
        case CallRequested():
            return [entry("call", None, "requested", call_id=event.call_id, desk=event.desk)]
        case CallStarted():
            return [entry("call", None, "started", call_id=event.call_id)]
        case CallEnded():
            return [
                entry(
                    "call",
                    None,
                    event.outcome.value,
                    call_id=event.call_id,
                    duration_seconds=str(event.duration_seconds),
                    ring_seconds=str(event.ring_seconds),
                    reason=event.reason,
                )
            ]
        case ContactListed():
            return [entry("list", None, event.list_name, source=event.source.value, row=str(event.row))]
        case DispositionRecorded():
            detail = {"note": event.note, "callback_scope": event.callback_scope.value}
            if event.callback_at is not None:
                detail["callback_at"] = event.callback_at.isoformat()
            return [entry("disposition", None, event.outcome, **detail)]
    return [entry("", None, None)]


def _whole_phone(q: str) -> str | None:
    """The E.164 form of ``q`` when it is a complete, valid phone number (eight digits or more)."""
    if sum(ch.isdigit() for ch in q) < 8:
        return None
    try:
        return parse_phone_fast(q).e164
    except InvalidPhone:
        return None


_ROWID: sa.ColumnClause[Any] = sa.literal_column("contacts.rowid")


def _json_values(values: Sequence[int]) -> sa.ScalarSelect[Any]:
    """SQLite: ``values`` as one bound JSON array, for ``... IN (...)`` with any number of them."""
    each: sa.Select[Any] = sa.select(sa.column("value")).select_from(
        sa.func.json_each(sa.bindparam("found", orjson.dumps(list(values)).decode()))
    )
    return each.scalar_subquery()


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None
