"""The work queue: hands an agent the next eligible contact, already locked to them, exactly once.

The rules are :mod:`contacts.campaigns`'; here they are one SQL query over the read model (``contacts``,
``contact_calls``, ``dnc_numbers``), asked first for never-tried contacts, then for those whose retry
delays have passed, each ordered by status priority, age and id (``ix_contacts_order``).

Exactly once: the pick and the lock are one write transaction of the event store. On PostgreSQL the pick
is ``FOR UPDATE OF contacts SKIP LOCKED``, so agents asking together pick different rows instead of
queueing behind one; on SQLite the transaction begins ``IMMEDIATE`` and is the only writer. Either way the
lock itself is the existing ``LockContact`` command, decided against the stream under the store's append
lock: a claim counts only when it appended a ``ContactLocked`` for the caller, so two agents can never
both get a contact, and an agent who loses a race (the row changed between pick and lock, a deadlock with
another writer) simply picks again.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from contacts.callbacks import pending_callbacks
from contacts.campaignbook import CampaignBook
from contacts.campaigns import (
    Callback,
    CallbackFact,
    CallFact,
    Campaign,
    Claim,
    Eligibility,
    Facts,
    Reason,
    eligibility,
)
from contacts.commands import Caller, LockContact
from contacts.dnc import DncList
from contacts.errors import Conflict, Locked, NotFound, QueueEmpty
from contacts.events import ContactLocked
from contacts.handlers import ContactsService
from contacts.projection import utc
from contacts.schema import contact_callbacks, contact_calls, contacts, dnc_numbers
from kernel.store import EventStore

_DEADLOCK = "40P01"
_SERIALIZATION = "40001"


@dataclass(frozen=True, slots=True)
class _Pick:
    contact_id: str
    reason: Reason
    attempts: int
    message: str


class _Lost:
    """A pick another writer got first."""


_LOST = _Lost()


class WorkQueue:
    """Next contact, eligibility and the reasons of an empty queue, for one campaign (``General`` for now)."""

    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        service: ContactsService,
        dnc: DncList,
        campaigns: CampaignBook,
        *,
        picks: int = 50,
    ) -> None:
        # picks: how many times one request picks again after losing a race before it gives up (Conflict).
        self._engine = engine
        self._store = store
        self._service = service
        self._dnc = dnc
        self._campaigns = campaigns
        self._picks = picks

    @property
    def campaigns(self) -> CampaignBook:
        """The campaigns whose rules the queue applies."""
        return self._campaigns

    @property
    def dnc(self) -> DncList:
        """The do-not-call list the queue respects."""
        return self._dnc

    def callbacks(self, user_id: str | None = None, due_before: datetime | None = None) -> list[Callback]:
        """Pending callbacks, soonest first (with ``user_id``: theirs and the shared ones)."""
        return pending_callbacks(self._engine, user_id=user_id, due_before=due_before)

    def next_contact(self, caller: Caller, campaign_id: str | None = None) -> Claim:
        """Claim the next eligible contact of the campaign (``general`` by default) for ``caller``: locked
        to them when returned; QueueEmpty (with why and until when) when none may be offered."""
        campaign = self._campaigns.get(campaign_id)
        if not campaign.active:
            raise QueueEmpty(f"La campaña {campaign.name} está inactiva", counts={})
        for _ in range(self._picks):
            now = self._service.now()
            try:
                claimed = self._claim_once(campaign, caller, now)
            except sa.exc.DBAPIError as error:
                if getattr(error.orig, "sqlstate", None) in (_DEADLOCK, _SERIALIZATION):
                    continue
                raise
            if claimed is None:
                raise self.why_empty(campaign, caller, now)
            if isinstance(claimed, Claim):
                return claimed
        raise Conflict()

    def _claim_once(self, campaign: Campaign, caller: Caller, now: datetime) -> Claim | _Lost | None:
        """One pick-and-lock transaction: the claim, None when nothing is eligible, _LOST when the pick was
        lost to another writer (pick again)."""
        with self._store.transaction() as conn:
            # Rows other agents are claiming right now are skipped; when that leaves nothing, look again
            # waiting for them, so that an empty answer is true once their claims commit.
            picked = self._pick(conn, campaign, caller, now, skip_locked=True) or self._pick(
                conn, campaign, caller, now, skip_locked=False
            )
            if picked is None:
                return None
            command = LockContact(caller=caller, now=now, contact_id=picked.contact_id)
            try:
                outcome = self._service.execute_on(conn, command)
            except (Locked, NotFound):
                return _LOST
            if outcome.contact is None or not any(e.type == ContactLocked.TYPE for e in outcome.events):
                return _LOST
            return Claim(outcome.contact, campaign.name, picked.reason, picked.message, picked.attempts)

    def _pick(
        self, conn: Connection, campaign: Campaign, caller: Caller, now: datetime, *, skip_locked: bool
    ) -> _Pick | None:
        c, k, b = contacts.c, contact_calls.c, contact_callbacks.c
        due = (
            sa.select(c.id, b.user_id, b.username, b.scope, b.due_at)
            .join_from(contacts, contact_callbacks, b.contact_id == c.id)
            .where(
                *_open_conditions(campaign, now),
                b.due_at <= now,
                sa.or_(b.scope == "shared", b.user_id == caller.user_id),
            )
            .order_by(sa.case((b.scope == "personal", 0), else_=1), b.due_at, c.id)
            .limit(1)
            .with_for_update(skip_locked=skip_locked, of=contacts)
        )
        row = conn.execute(due).first()
        if row is not None:
            callback = CallbackFact(row.user_id, row.username, row.scope, utc(row.due_at) or now)
            return _Pick(str(row.id), Reason.CALLBACK_DUE, _attempts(conn, row.id), callback.describe())
        calls_of = sa.select(sa.literal(1)).where(k.contact_id == c.id)
        no_callback = ~sa.exists(sa.select(sa.literal(1)).where(b.contact_id == c.id))
        for reason, condition in (
            (Reason.NEVER_TRIED, ~sa.exists(calls_of)),
            (Reason.RETRY_DUE, sa.and_(sa.exists(calls_of), *_retry_conditions(campaign, now))),
        ):
            query = (
                sa.select(c.id)
                .where(*_open_conditions(campaign, now), no_callback, condition)
                .order_by(c.status_priority, c.age_key, c.id)
                .limit(1)
                .with_for_update(skip_locked=skip_locked, of=contacts)
            )
            found = conn.execute(query).scalar()
            if found is not None:
                if reason is Reason.NEVER_TRIED:
                    return _Pick(str(found), reason, 0, "Nunca se ha llamado")
                attempts = _attempts(conn, found)
                message = f"Reintento {attempts + 1} de {campaign.max_attempts}: su espera terminó"
                return _Pick(str(found), reason, attempts, message)
        return None

    def eligibility(self, caller: Caller, contact_id: str, campaign_id: str | None = None) -> Eligibility:
        """Whether ``contact_id`` would be offered to ``caller`` now in the campaign, and why (or why not)."""
        campaign = self._campaigns.get(campaign_id)
        now = self._service.now()
        try:
            key = uuid.UUID(contact_id)
        except ValueError:
            raise NotFound(contact_id) from None
        c, k = contacts.c, contact_calls.c
        with self._engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(c.status, c.phone_e164, c.locked_by, c.locked_by_name, c.locked_until).where(
                        c.id == key
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(contact_id)
            calls = [
                CallFact(outcome, utc(placed) or now, utc(ended))
                for outcome, placed, ended in conn.execute(
                    sa.select(k.outcome, k.placed_at, k.ended_at).where(k.contact_id == key)
                )
            ]
            pending = conn.execute(
                sa.select(contact_callbacks).where(contact_callbacks.c.contact_id == key)
            ).first()
        listed = self._dnc.get(row["phone_e164"])
        callback = (
            CallbackFact(pending.user_id, pending.username, pending.scope, utc(pending.due_at) or now)
            if pending is not None
            else None
        )
        facts = Facts(
            status=row["status"],
            locked_by=row["locked_by"],
            locked_by_name=row["locked_by_name"] or "",
            locked_until=utc(row["locked_until"]),
            dnc=listed is not None,
            dnc_reason=listed.reason if listed is not None else "",
            calls=calls,
            callback=callback,
        )
        return eligibility(campaign, str(key), facts, caller.user_id, now)

    def why_empty(self, campaign: Campaign, caller: Caller, now: datetime) -> QueueEmpty:
        """What keeps every contact out of the queue now, and when the first one waiting comes back."""
        c, k = contacts.c, contact_calls.c
        with self._engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(contacts)).scalar_one()
            if not total:
                return QueueEmpty(
                    f"No hay contactos en la campaña {campaign.name}: importe o cree contactos para empezar",
                    counts={"contacts": 0},
                )
            counts = Counter[str]({"contacts": int(total)})
            counts["locked"] = _count(conn, sa.and_(c.locked_until.is_not(None), c.locked_until > now))
            counts["closed_status"] = _count(conn, c.status.in_(campaign.closed_statuses))
            counts["dnc"] = _count(
                conn, sa.exists(sa.select(sa.literal(1)).where(dnc_numbers.c.phone_e164 == c.phone_e164))
            )
            capped = (
                sa.select(k.contact_id)
                .group_by(k.contact_id)
                .having(sa.func.count() >= campaign.max_attempts)
                .subquery()
            )
            counts["attempts_capped"] = int(
                conn.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one()
            )
            longest = max(
                (campaign.retry_delay(o) for o in [*campaign.retry_minutes, ""]), default=timedelta()
            )
            recent = conn.execute(
                sa.select(k.contact_id, k.outcome, k.ended_at).where(
                    sa.or_(k.ended_at.is_(None), k.ended_at > now - longest)
                )
            )
            until_of: dict[Any, datetime | None] = {}
            for contact_id, outcome, ended in recent:
                ended_at = utc(ended)
                ends = None if ended_at is None else ended_at + campaign.retry_delay(outcome or "")
                known = until_of.get(contact_id, now)
                until_of[contact_id] = None if ends is None or known is None else max(known, ends)
            b = contact_callbacks.c
            callbacks = [
                CallbackFact(row.user_id, row.username, row.scope, utc(row.due_at) or now)
                for row in conn.execute(sa.select(b.user_id, b.username, b.scope, b.due_at))
            ]
        counts["callback_pending"] = sum(1 for cb in callbacks if not cb.offered_to(caller.user_id, now))
        retrying = [until for until in until_of.values() if until is not None and until > now]
        due_later = [
            cb.due_at
            for cb in callbacks
            if cb.due_at > now and (cb.scope == "shared" or cb.user_id == caller.user_id)
        ]
        counts["call_open"] = sum(1 for until in until_of.values() if until is None)
        counts["in_retry"] = len(retrying)
        waiting = retrying + due_later
        first_back = min(waiting, default=None)
        parts = [
            f"{counts[key]} {label}"
            for key, label in (
                ("locked", "bloqueados por otros usuarios"),
                ("dnc", "en la lista de no llamar"),
                ("closed_status", "en un estado cerrado"),
                ("attempts_capped", f"con el máximo de {campaign.max_attempts} intentos"),
                ("call_open", "con una llamada en curso"),
                ("in_retry", "en espera de reintento"),
                ("callback_pending", "reservados para una rellamada"),
            )
            if counts[key]
        ]
        why = f"No hay contactos disponibles en la campaña {campaign.name} ({total} en total"
        why += f": {', '.join(parts)})" if parts else ")"
        if first_back is not None:
            why += f"; el primero en espera vuelve a las {first_back:%H:%M} UTC"
        return QueueEmpty(why, first_back, dict(counts))


def _open_conditions(campaign: Campaign, now: datetime) -> list[sa.ColumnElement[bool]]:
    """Unlocked, not closed, not on the do-not-call list."""
    c = contacts.c
    return [
        sa.or_(c.locked_until.is_(None), c.locked_until <= now),
        c.status.not_in(campaign.closed_statuses),
        ~sa.exists(sa.select(sa.literal(1)).where(dnc_numbers.c.phone_e164 == c.phone_e164)),
    ]


def _retry_conditions(campaign: Campaign, now: datetime) -> list[sa.ColumnElement[bool]]:
    """No open call, no call inside its retry delay, fewer calls than the cap."""
    c, k = contacts.c, contact_calls.c
    known = list(campaign.retry_minutes)
    waiting = [
        sa.and_(k.outcome == outcome, k.ended_at > now - campaign.retry_delay(outcome)) for outcome in known
    ]
    waiting.append(sa.and_(k.outcome.not_in(known), k.ended_at > now - campaign.retry_delay("")))
    in_delay = sa.select(sa.literal(1)).where(k.contact_id == c.id, sa.or_(k.ended_at.is_(None), *waiting))
    attempts = sa.select(sa.func.count()).where(k.contact_id == c.id).scalar_subquery()
    return [~sa.exists(in_delay), attempts < campaign.max_attempts]


def _count(conn: Connection, condition: sa.ColumnElement[bool]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(contacts).where(condition)).scalar_one())


def _attempts(conn: Connection, contact_id: Any) -> int:
    k = contact_calls.c
    return int(conn.execute(sa.select(sa.func.count()).where(k.contact_id == contact_id)).scalar_one())


__all__ = ["WorkQueue"]
