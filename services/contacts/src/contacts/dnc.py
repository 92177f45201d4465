"""The do-not-call list: numbers that must never be called, each change audited.

Numbers are kept in E.164 (parsed at the edge of this module with ``kernel.phone``, so a number typed any
way meets its stored form). Adding a number already listed updates its reason; removing one not listed does
nothing. Every real change writes a ``dnc_changes`` row (who, when, why) in the same transaction, a write
transaction from its start (SQLite's ``BEGIN IMMEDIATE``: it waits for the other writer instead of failing).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from contacts.campaigns import DncEntry
from contacts.commands import Caller
from contacts.errors import DoNotCall, InvalidInput
from contacts.schema import dnc_changes, dnc_numbers
from kernel.phone import InvalidPhone, parse_phone
from kernel.phonefast import parse_phone_fast
from kernel.store import store_dialect, write_transaction

REASON_MAX = 500
_WRITE_CHUNK = 5_000


def e164_of(phone: str) -> str:
    """The E.164 form of a phone typed any way; InvalidInput when it is no phone."""
    try:
        return parse_phone(phone).e164
    except InvalidPhone as error:
        raise InvalidInput("phone", f"Teléfono no válido: «{phone}» ({error.reason})") from None


def _e164_fast(phone: str) -> str:
    """:func:`e164_of` on the import's fast path (a bulk of numbers, most already in E.164)."""
    try:
        return parse_phone_fast(phone).e164
    except InvalidPhone as error:
        raise InvalidInput("phone", f"Teléfono no válido: «{phone}» ({error.reason})") from None


class DncList:
    """The list in the contacts database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, phone: str, reason: str, caller: Caller, now: datetime) -> DncEntry:
        """List ``phone`` (or change its reason); audited."""
        e164 = e164_of(phone)
        with write_transaction(self._engine) as conn:
            return list_number(conn, e164, reason, caller, now)

    def add_many(self, entries: Iterable[tuple[str, str]], caller: Caller, now: datetime) -> list[str]:
        """List every ``(E.164, reason)`` not listed yet, in one transaction, each audited; the numbers
        added, in the order given. Numbers already listed keep their reason; a number given twice is
        added once, with its first reason."""
        wanted: dict[str, str] = {}
        for phone_e164, reason in entries:
            wanted.setdefault(_e164_fast(phone_e164), reason.strip()[:REASON_MAX])
        with write_transaction(self._engine) as conn:
            found = listed(conn, wanted)
            fresh = [(e164, reason) for e164, reason in wanted.items() if e164 not in found]
            for start in range(0, len(fresh), _WRITE_CHUNK):
                chunk = fresh[start : start + _WRITE_CHUNK]
                conn.execute(
                    store_dialect(conn)
                    .insert(dnc_numbers)
                    .on_conflict_do_nothing(index_elements=[dnc_numbers.c.phone_e164]),
                    [
                        {
                            "phone_e164": e164,
                            "reason": reason,
                            "added_by": caller.user_id,
                            "added_by_name": caller.username,
                            "added_at": now,
                        }
                        for e164, reason in chunk
                    ],
                )
                conn.execute(
                    dnc_changes.insert(),
                    [
                        {
                            "phone_e164": e164,
                            "action": "added",
                            "reason": reason,
                            "user_id": caller.user_id,
                            "username": caller.username,
                            "at": now,
                        }
                        for e164, reason in chunk
                    ],
                )
        return [e164 for e164, _ in fresh]

    def remove(self, phone: str, reason: str, caller: Caller, now: datetime) -> bool:
        """Take ``phone`` off the list; False when it was not listed. Audited."""
        e164 = e164_of(phone)
        with write_transaction(self._engine) as conn:
            removed = conn.execute(dnc_numbers.delete().where(dnc_numbers.c.phone_e164 == e164)).rowcount
            if removed:
                _audit(conn, e164, "removed", reason.strip()[:REASON_MAX], caller, now)
        return bool(removed)

    def get(self, phone_e164: str) -> DncEntry | None:
        """The entry of a number already in E.164, or None."""
        with self._engine.connect() as conn:
            return _entry(conn, phone_e164)

    def check(self, phone_e164: str) -> None:
        """Raise :class:`DoNotCall` when the number is listed."""
        found = self.get(phone_e164)
        if found is not None:
            raise DoNotCall(phone_e164, found.reason)

    def entries(self, limit: int = 1000, offset: int = 0) -> list[DncEntry]:
        """Listed numbers, newest first."""
        query = (
            sa.select(dnc_numbers)
            .order_by(dnc_numbers.c.added_at.desc(), dnc_numbers.c.phone_e164)
            .limit(limit)
            .offset(offset)
        )
        with self._engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(query).mappings()]

    def changes(self, phone_e164: str) -> list[dict[str, Any]]:
        """The audit rows of one number, oldest first."""
        c = dnc_changes.c
        query = sa.select(c.action, c.reason, c.user_id, c.username, c.at).where(c.phone_e164 == phone_e164)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(c.at, c.id)).mappings()
            return [{**row, "at": _utc(row["at"]).isoformat()} for row in rows]


def list_number(conn: Connection, phone_e164: str, reason: str, caller: Caller, now: datetime) -> DncEntry:
    """List a number already in E.164 (or change its reason) in the caller's write transaction, audited;
    a number listed with this reason already is left as it is."""
    reason = reason.strip()[:REASON_MAX]
    found = _entry(conn, phone_e164)
    if found is not None and found.reason == reason:
        return found
    values = {
        "phone_e164": phone_e164,
        "reason": reason,
        "added_by": caller.user_id,
        "added_by_name": caller.username,
        "added_at": now,
    }
    # An upsert: two people listing one number at once both succeed, the later reason stays.
    insert = store_dialect(conn).insert(dnc_numbers).values(values)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[dnc_numbers.c.phone_e164],
            set_={key: insert.excluded[key] for key in values if key != "phone_e164"},
        )
    )
    _audit(conn, phone_e164, "added", reason, caller, now)
    return DncEntry(phone_e164, reason, caller.user_id, caller.username, now)


def listed(conn: Connection, phones_e164: Iterable[str]) -> frozenset[str]:
    """Those of ``phones_e164`` that are on the list: one query however many are asked.

    The numbers travel as one bound value (a JSON array walked by ``json_each`` on SQLite, a text array on
    PostgreSQL), so a bulk chunk of 5,000 phones is one short statement, not 5,000 parameters.
    """
    wanted = list(dict.fromkeys(phones_e164))
    if not wanted:
        return frozenset()
    column = dnc_numbers.c.phone_e164
    if conn.dialect.name == "postgresql":
        match = column == sa.any_(sa.bindparam("phones", wanted, type_=postgresql.ARRAY(sa.String())))
    else:
        each: sa.Select[Any] = sa.select(sa.column("value")).select_from(
            sa.func.json_each(sa.bindparam("phones", json.dumps(wanted)))
        )
        match = column.in_(each.scalar_subquery())
    return frozenset(row[0] for row in conn.execute(sa.select(column).where(match)))


def _entry(conn: Connection, e164: str) -> DncEntry | None:
    row = conn.execute(sa.select(dnc_numbers).where(dnc_numbers.c.phone_e164 == e164)).mappings().first()
    return _from_row(row) if row is not None else None


def _from_row(row: Any) -> DncEntry:
    return DncEntry(
        row["phone_e164"], row["reason"], row["added_by"], row["added_by_name"], _utc(row["added_at"])
    )


def _audit(conn: Connection, e164: str, action: str, reason: str, caller: Caller, now: datetime) -> None:
    conn.execute(
        dnc_changes.insert().values(
            phone_e164=e164,
            action=action,
            reason=reason,
            user_id=caller.user_id,
            username=caller.username,
            at=now,
        )
    )


def _utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back: they are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


__all__ = ["DncEntry", "DncList", "e164_of", "list_number", "listed"]
