"""The work queue: hands an agent the next eligible contact, already locked to them, exactly once.

The rules are :mod:`contacts.campaigns`'; here they are one SQL query over the read model (``contacts``,
``contact_lists``, ``contact_calls``, ``contact_callbacks``, ``dnc_numbers``), asked first for due
callbacks, then for never-tried contacts, then for those whose retry delays have passed, each ordered by
status priority, age and id (``ix_contacts_order``). A campaign's calling hours and active flag are
checked before any query: outside them the campaign offers nothing.

Which campaign: with one named, that campaign only (403 ``campaign_not_worked`` when the caller's team
does not work it); without, the active campaigns of the caller's team in the order of their ``priority``
(lower first), then their name — the first one with an eligible contact gives it. An empty answer says,
for each campaign tried, why and until when.

Exactly once: the pick and the lock are one write transaction of the event store. On PostgreSQL the pick
is ``FOR UPDATE OF contacts SKIP LOCKED``, so transactions claiming together pick different rows instead
of queueing behind one; on SQLite the transaction begins ``IMMEDIATE`` and is the only writer. Either way
the lock itself is the existing ``LockContact`` command, decided against the stream under the store's
append lock: a claim counts only when it appended a ``ContactLocked`` for the caller, so two agents can
never both get a contact, and an agent who loses a race (the row changed between pick and lock, a
deadlock with another writer) simply picks again.

Group commit (:mod:`contacts.claims`): the requests that arrive while a claim transaction runs wait for
it, then are served together by the next one: for each, in arrival order, the same pick (leaving out the
contacts already picked in the batch) and the same ``LockContact``, each inside a savepoint so that one
caller's failure leaves the others' claims alone; one commit for all. Appends are serialised by the
store, so fifty agents asking at once would otherwise queue fifty transactions behind its append lock.

The never-tried and retry picks read ``ix_contacts_queue``, the order of ``ix_contacts_order`` for
unlocked contacts only (``contacts_0010``), so contacts claimed and not yet called are not read past.
A contact whose lock lapsed keeps ``locked_until`` until the lock-expiry sweep announces it; while any
such lock exists (``contact_locks``), the pick also looks among them and takes the first in the order.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    Progress,
    Reason,
    eligibility,
    hours_finding,
    zone_label,
)
from contacts.claims import ClaimBatcher
from contacts.commands import Caller, LockContact
from contacts.dnc import DncList
from contacts.errors import CampaignNotWorked, Conflict, Locked, NotFound, QueueEmpty
from contacts.events import ContactLocked
from contacts.handlers import ContactsService
from contacts.projection import utc
from contacts.schema import (
    contact_callbacks,
    contact_calls,
    contact_lists,
    contact_locks,
    contacts,
    dnc_numbers,
)
from kernel.store import EventStore

_DEADLOCK = "40P01"
_SERIALIZATION = "40001"
_LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True, slots=True)
class _Pick:
    contact_id: str
    reason: Reason
    attempts: int
    message: str


class _Lost:
    """A pick another writer got first."""


_LOST = _Lost()


@dataclass(frozen=True, slots=True)
class _Ask:
    """One caller's claim in one campaign, as of ``now`` (``members``: the campaign's condition; asks of
    the same ``group`` have the same campaign and condition, and may share one pick)."""

    campaign: Campaign
    members: list[sa.ColumnElement[bool]]
    caller: Caller
    now: datetime
    group: str = ""


_Answer = Claim | _Lost | None


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
        self._claims: ClaimBatcher[_Ask, _Answer] = ClaimBatcher(self._claim_all)

    @property
    def campaigns(self) -> CampaignBook:
        """The campaigns whose rules the queue applies."""
        return self._campaigns

    @property
    def dnc(self) -> DncList:
        """The do-not-call list the queue respects."""
        return self._dnc

    @property
    def claims(self) -> ClaimBatcher[Any, Any]:
        """The batcher of next-contact requests: how many wait, how many the running batch serves."""
        return self._claims

    def callbacks(self, user_id: str | None = None, due_before: datetime | None = None) -> list[Callback]:
        """Pending callbacks, soonest first (with ``user_id``: theirs and the shared ones)."""
        return pending_callbacks(self._engine, user_id=user_id, due_before=due_before)

    def next_contact(self, caller: Caller, campaign_id: str | None = None) -> Claim:
        """Claim the next eligible contact for ``caller``, locked to them when returned.

        With ``campaign_id``, of that campaign only (CampaignNotWorked when the caller's team does not
        work it); without, of the first of the active campaigns of the caller's team, tried by
        ``priority`` (lower first) then name, that has one. QueueEmpty, with why and until when for each
        campaign tried, when none may be offered."""
        every = self._campaigns.all()  # one read per request: the rules, and the lists General leaves out
        if campaign_id is not None:
            named = next((c for c in every if c.id == campaign_id), None)
            campaign = named or self._campaigns.get(campaign_id)
            if not campaign.worked_by(caller.team):
                raise CampaignNotWorked(campaign.id, caller.team)
            return self._next_in(campaign, caller, every)
        working = [c for c in every if c.working and c.worked_by(caller.team)]
        tried = sorted(working, key=lambda c: (c.priority, c.name))
        if not tried:
            team = f"el equipo {caller.team}" if caller.team else "su equipo (no tiene equipo asignado)"
            raise QueueEmpty(f"No hay ninguna campaña activa para {team}", counts={"campaigns": 0})
        empty: list[QueueEmpty] = []
        for campaign in tried:
            try:
                return self._next_in(campaign, caller, every)
            except QueueEmpty as why:
                empty.append(why)
        return _raise_all(empty)

    def _next_in(self, campaign: Campaign, caller: Caller, every: list[Campaign]) -> Claim:
        """Claim the next eligible contact of one campaign (``every``: the campaigns not archived)."""
        now = self._service.now()
        closed = hours_finding(campaign, now)
        if closed is not None:
            raise QueueEmpty(f"{closed.message}: campaña {campaign.name}", closed.until, counts={})
        scope = self._scope(campaign, every)
        members = _members_of(campaign, scope)
        group = repr((campaign, scope))
        for attempt in range(self._picks):
            now = self._service.now()
            # A claim tried again goes ahead of the others waiting: served first, it may wait for rows.
            claimed = self._claims.submit(_Ask(campaign, members, caller, now, group), first=attempt > 0)
            if claimed is None:
                raise self.why_empty(campaign, caller, now, members)
            if isinstance(claimed, Claim):
                return claimed
        raise Conflict()

    def _members(
        self, campaign: Campaign, every: list[Campaign] | None = None
    ) -> list[sa.ColumnElement[bool]]:
        """The condition on ``contacts`` of being in the campaign: in one of its lists (first or joined
        later); for ``General``, in none of the lists of the other campaigns not archived (``every``,
        read when not given)."""
        return _members_of(campaign, self._scope(campaign, every))

    def _scope(self, campaign: Campaign, every: list[Campaign] | None = None) -> tuple[str, ...]:
        """The lists of the campaign; for ``General``, those of the other campaigns not archived."""
        if not campaign.is_general:
            return campaign.lists
        if every is None:
            return tuple(self._campaigns.lists_of_others(campaign.id))
        return tuple(sorted({name for c in every if c.id != campaign.id for name in c.lists}))

    def _claim_all(self, asks: Sequence[_Ask]) -> list[_Answer | BaseException]:
        """Serve a batch of asks in one write transaction: each its claim, None when nothing is eligible,
        _LOST when it must pick again (a race lost to another writer), or the error it alone met."""
        try:
            return self._claim_together(asks)
        except sa.exc.DBAPIError as error:
            if _lost_race(error):
                return [_LOST] * len(asks)
            raise

    def _claim_together(self, asks: Sequence[_Ask]) -> list[_Answer | BaseException]:
        if len(asks) == 1:
            with self._store.transaction() as conn:
                return self._serve(conn, asks, isolated=False)
        try:
            with self._store.transaction() as conn:
                return self._serve(conn, asks, isolated=False)
        except Exception:
            # One ask met an error that spoils the transaction (a database error, a bug): serve the batch
            # again, each ask in a savepoint of its own, so that the error is that ask's alone.
            with self._store.transaction() as conn:
                return self._serve(conn, asks, isolated=True)

    def _serve(
        self, conn: Connection, asks: Sequence[_Ask], *, isolated: bool
    ) -> list[_Answer | BaseException]:
        """Claim for each ask in order in the caller's transaction (``isolated``: each in a savepoint,
        its errors its answer; otherwise an error ends the batch)."""
        latest = max(ask.now for ask in asks)
        lapsed = _some_lock_lapsed(conn, latest)
        due = _some_callback_due(conn, latest)
        left_out: list[uuid.UUID] = []
        # With no callback due and no lock lapsed, each group's never-tried and retry picks are one query
        # for all its asks (the first rows in order, one per ask); otherwise each ask picks on its own.
        found = {} if lapsed or due else self._pick_groups(conn, asks, left_out)
        answers: dict[int, _Answer | BaseException] = {}
        if found and not isolated and len(asks) > 1:
            # (A lone ask locks through execute_on: fewer statements than the batch's read and append.)
            answers.update(self._lock_found(conn, asks, found))
        for index, ask in enumerate(asks):
            if index in answers:
                continue
            # Once a claim of the batch appended, the transaction holds the store's append lock.
            may_wait = not any(isinstance(answer, Claim) for answer in answers.values())
            picked = found.get(index)
            if not isolated:
                answers[index] = self._claim_on(conn, ask, picked, left_out, lapsed, due, may_wait=may_wait)
                continue
            try:
                with conn.begin_nested():
                    answer: _Answer | BaseException = self._claim_on(
                        conn, ask, picked, left_out, lapsed, due, may_wait=may_wait
                    )
            except sa.exc.DBAPIError as error:
                answer = _LOST if _lost_race(error) else error
            except Exception as error:
                answer = error
            answers[index] = answer
        return [answers[index] for index in range(len(asks))]

    def _lock_found(
        self, conn: Connection, asks: Sequence[_Ask], found: dict[int, _Pick]
    ) -> dict[int, _Answer]:
        """Lock the contacts picked for the asks of ``found`` with one ``LockContact`` each, decided and
        appended together (``ContactsService.execute_many_on``); an error other than a lost race spoils
        the batch (served again, each ask on its own)."""
        indexes = sorted(found)
        commands = [
            LockContact(caller=asks[i].caller, now=asks[i].now, contact_id=found[i].contact_id)
            for i in indexes
        ]
        claimed: dict[int, _Answer] = {}
        for index, outcome in zip(indexes, self._service.execute_many_on(conn, commands), strict=True):
            if isinstance(outcome, Locked | NotFound):
                claimed[index] = _LOST
            elif isinstance(outcome, Exception):
                raise outcome
            elif outcome.contact is None or not any(e.type == ContactLocked.TYPE for e in outcome.events):
                claimed[index] = _LOST
            else:
                pick = found[index]
                claimed[index] = Claim(
                    outcome.contact, asks[index].campaign.name, pick.reason, pick.message, pick.attempts
                )
        return claimed

    def _pick_groups(
        self, conn: Connection, asks: Sequence[_Ask], left_out: list[uuid.UUID]
    ) -> dict[int, _Pick]:
        """For each group of asks (same campaign), the first eligible never-tried then retry-due contacts,
        one per ask in arrival order, picked by one query each (``FOR UPDATE SKIP LOCKED``); the asks
        left without one pick on their own. ``left_out`` gains every contact picked."""
        groups: dict[str, list[int]] = {}
        for index, ask in enumerate(asks):
            groups.setdefault(ask.group, []).append(index)
        found: dict[int, _Pick] = {}
        for indexes in groups.values():
            first = asks[indexes[0]]
            campaign, members = first.campaign, first.members
            now = min(asks[i].now for i in indexes)
            picks = self._first_picks(conn, campaign, members, now, len(indexes), left_out)
            for index, pick in zip(indexes, picks, strict=False):
                found[index] = pick
            left_out.extend(uuid.UUID(pick.contact_id) for pick in picks)
        return found

    def _first_picks(
        self,
        conn: Connection,
        campaign: Campaign,
        members: list[sa.ColumnElement[bool]],
        now: datetime,
        count: int,
        left_out: Sequence[uuid.UUID],
    ) -> list[_Pick]:
        """Up to ``count`` unlocked contacts without a callback, never tried first then those whose retry
        delay passed, in the queue's order (``ix_contacts_queue``), locked ``FOR UPDATE SKIP LOCKED``."""
        c, k, b = contacts.c, contact_calls.c, contact_callbacks.c
        calls_of = sa.select(sa.literal(1)).where(k.contact_id == c.id)
        no_callback = ~sa.exists(sa.select(sa.literal(1)).where(b.contact_id == c.id))
        others = [c.id.not_in(left_out)] if left_out else []
        picks: list[_Pick] = []
        for reason, condition in (
            (Reason.NEVER_TRIED, ~sa.exists(calls_of)),
            (Reason.RETRY_DUE, sa.and_(sa.exists(calls_of), *_retry_conditions(campaign, now))),
        ):
            query = (
                sa.select(c.id)
                .where(c.locked_until.is_(None), *_open_conditions(campaign), *members, *others, no_callback)
                .where(condition)
                .order_by(c.status_priority, c.age_key, c.id)
                .limit(count - len(picks))
                .with_for_update(skip_locked=True, of=contacts)
            )
            for found in conn.execute(query).scalars():
                if reason is Reason.NEVER_TRIED:
                    picks.append(_Pick(str(found), reason, 0, "Nunca se ha llamado"))
                else:
                    attempts = _attempts(conn, found)
                    message = f"Reintento {attempts + 1} de {campaign.max_attempts}: su espera terminó"
                    picks.append(_Pick(str(found), reason, attempts, message))
            if len(picks) == count:
                break
        return picks

    def _claim_on(
        self,
        conn: Connection,
        ask: _Ask,
        found: _Pick | None,
        left_out: list[uuid.UUID],
        lapsed: bool,
        due: bool,
        *,
        may_wait: bool,
    ) -> _Answer:
        """Lock ``found`` (or what this ask picks now) for one ask in the batch's transaction
        (``left_out``: contacts not to pick, which this pick joins; ``lapsed``: some lock lapsed
        unannounced; ``due``: some callback is due)."""
        campaign, members, caller, now = ask.campaign, ask.members, ask.caller, ask.now
        if found is None:
            # Rows other transactions are claiming right now are skipped; when that leaves nothing, look
            # again waiting for them, so that an empty answer is true once their claims commit. Once the
            # batch holds the append lock it must not wait for rows another transaction holds (that one
            # may be waiting for the append lock): NOWAIT, and a row held means pick again.
            # (With neither a callback due nor a lock lapsed, the group's pick was this first look.)
            options: dict[str, Any] = {"left_out": left_out, "lapsed": lapsed, "callbacks": due}
            if lapsed or due:
                found = self._pick(conn, campaign, members, caller, now, skip_locked=True, **options)
            if found is None:
                options["nowait"] = not may_wait
                found = self._pick(conn, campaign, members, caller, now, skip_locked=False, **options)
            if found is None:
                return None
            left_out.append(uuid.UUID(found.contact_id))
        command = LockContact(caller=caller, now=now, contact_id=found.contact_id)
        try:
            outcome = self._service.execute_on(conn, command)
        except (Locked, NotFound):
            return _LOST
        if outcome.contact is None or not any(e.type == ContactLocked.TYPE for e in outcome.events):
            return _LOST
        return Claim(outcome.contact, campaign.name, found.reason, found.message, found.attempts)

    def _pick(
        self,
        conn: Connection,
        campaign: Campaign,
        members: list[sa.ColumnElement[bool]],
        caller: Caller,
        now: datetime,
        *,
        skip_locked: bool,
        nowait: bool = False,
        left_out: Sequence[uuid.UUID] = (),
        lapsed: bool = True,
        callbacks: bool = True,
    ) -> _Pick | None:
        """The first eligible contact and why (``left_out``: contacts not to pick; ``lapsed``: whether
        some lock may have lapsed unannounced, so locked rows must be looked at too; ``callbacks``:
        whether some callback may be due)."""
        c, k, b = contacts.c, contact_calls.c, contact_callbacks.c
        others = [c.id.not_in(left_out)] if left_out else []
        due = (
            sa.select(c.id, b.user_id, b.username, b.scope, b.due_at)
            .join_from(contacts, contact_callbacks, b.contact_id == c.id)
            .where(
                _free_or_lapsed(now),
                *_open_conditions(campaign),
                *members,
                *others,
                b.due_at <= now,
                sa.or_(b.scope == "shared", b.user_id == caller.user_id),
                ~sa.exists(sa.select(sa.literal(1)).where(k.contact_id == c.id, k.ended_at.is_(None))),
            )
            .order_by(sa.case((b.scope == "personal", 0), else_=1), b.due_at, c.id)
            .limit(1)
            .with_for_update(skip_locked=skip_locked, nowait=nowait, of=contacts)
        )
        row = conn.execute(due).first() if callbacks else None
        if row is not None:
            callback = CallbackFact(row.user_id, row.username, row.scope, utc(row.due_at) or now)
            return _Pick(str(row.id), Reason.CALLBACK_DUE, _attempts(conn, row.id), callback.describe())
        calls_of = sa.select(sa.literal(1)).where(k.contact_id == c.id)
        no_callback = ~sa.exists(sa.select(sa.literal(1)).where(b.contact_id == c.id))
        for reason, condition in (
            (Reason.NEVER_TRIED, ~sa.exists(calls_of)),
            (Reason.RETRY_DUE, sa.and_(sa.exists(calls_of), *_retry_conditions(campaign, now))),
        ):
            conditions = [*_open_conditions(campaign), *members, *others, no_callback, condition]
            found = _first_in_order(
                conn, conditions, now, lapsed=lapsed, skip_locked=skip_locked, nowait=nowait
            )
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
        members = self._members(campaign)
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
            member = bool(conn.execute(sa.select(sa.exists().where(c.id == key, *members))).scalar())
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
            in_campaign=member,
        )
        return eligibility(campaign, str(key), facts, caller.user_id, now, team=caller.team)

    def progress(self, campaign_id: str) -> Progress:
        """How far the campaign's contacts are worked, now: total, never tried, in retry, reached (an
        answered call), closed (a closed status), on the do-not-call list, capped (lifetime or today),
        locked. A contact may count under several headings (a reached one may also be in retry)."""
        campaign = self._campaigns.get(campaign_id)
        now = self._service.now()
        c, k = contacts.c, contact_calls.c
        members = self._members(campaign)
        called = sa.exists(sa.select(sa.literal(1)).where(k.contact_id == c.id))
        reached = sa.exists(sa.select(sa.literal(1)).where(k.contact_id == c.id, k.outcome == "answered"))
        dnc = sa.exists(sa.select(sa.literal(1)).where(dnc_numbers.c.phone_e164 == c.phone_e164))
        closed = c.status.in_(campaign.closed_statuses)
        in_delay, capped = _waits(campaign, now)
        locked = sa.and_(c.locked_until.is_not(None), c.locked_until > now)

        def counted(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
            return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

        query = sa.select(
            sa.func.count(),
            counted(~called),
            counted(sa.and_(~closed, in_delay)),
            counted(reached),
            counted(closed),
            counted(dnc),
            counted(capped),
            counted(locked),
        ).where(*members)
        with self._engine.connect() as conn:
            figures = [int(value) for value in conn.execute(query).one()]
        return Progress(campaign.id, *figures)

    def why_empty(
        self,
        campaign: Campaign,
        caller: Caller,
        now: datetime,
        members: list[sa.ColumnElement[bool]] | None = None,
    ) -> QueueEmpty:
        """What keeps every contact of the campaign out of the queue now, and when the first one waiting
        comes back (local time of the campaign)."""
        c, k = contacts.c, contact_calls.c
        members = self._members(campaign) if members is None else members
        with self._engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(contacts).where(*members)
            ).scalar_one()
            if not total:
                return QueueEmpty(
                    f"No hay contactos en la campaña {campaign.name}: importe o cree contactos para empezar",
                    counts={"contacts": 0},
                )
            counts = Counter[str]({"contacts": int(total)})
            counts["locked"] = _count(
                conn, members, sa.and_(c.locked_until.is_not(None), c.locked_until > now)
            )
            counts["closed_status"] = _count(conn, members, c.status.in_(campaign.closed_statuses))
            counts["dnc"] = _count(
                conn,
                members,
                sa.exists(sa.select(sa.literal(1)).where(dnc_numbers.c.phone_e164 == c.phone_e164)),
            )
            capped = (
                sa.select(k.contact_id)
                .join_from(contact_calls, contacts, contacts.c.id == k.contact_id)
                .where(*members)
                .group_by(k.contact_id)
                .having(sa.func.count() >= campaign.max_attempts)
                .subquery()
            )
            counts["attempts_capped"] = int(
                conn.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one()
            )
            tomorrow = campaign.day_start(now) + timedelta(days=1)
            if campaign.max_per_day is not None:
                today = (
                    sa.select(k.contact_id)
                    .join_from(contact_calls, contacts, contacts.c.id == k.contact_id)
                    .where(*members, k.placed_at >= utc_instant(campaign.day_start(now)))
                    .group_by(k.contact_id)
                    .having(sa.func.count() >= campaign.max_per_day)
                    .subquery()
                )
                counts["daily_capped"] = int(
                    conn.execute(sa.select(sa.func.count()).select_from(today)).scalar_one()
                )
            longest = max(
                (campaign.retry_delay(o) for o in [*campaign.retry_minutes, ""]), default=timedelta()
            )
            recent = conn.execute(
                sa.select(k.contact_id, k.outcome, k.ended_at)
                .join_from(contact_calls, contacts, contacts.c.id == k.contact_id)
                .where(*members, sa.or_(k.ended_at.is_(None), k.ended_at > now - longest))
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
                for row in conn.execute(
                    sa.select(b.user_id, b.username, b.scope, b.due_at)
                    .join_from(contact_callbacks, contacts, contacts.c.id == b.contact_id)
                    .where(*members)
                )
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
        if counts["daily_capped"]:
            waiting.append(tomorrow)
        first_back = min(waiting, default=None)
        parts = [
            f"{counts[key]} {label}"
            for key, label in (
                ("locked", "bloqueados por otros usuarios"),
                ("dnc", "en la lista de no llamar"),
                ("closed_status", "en un estado cerrado"),
                ("attempts_capped", f"con el máximo de {campaign.max_attempts} intentos"),
                ("daily_capped", f"con el máximo de {campaign.max_per_day} intentos de hoy"),
                ("call_open", "con una llamada en curso"),
                ("in_retry", "en espera de reintento"),
                ("callback_pending", "reservados para una rellamada"),
            )
            if counts[key]
        ]
        why = f"No hay contactos disponibles en la campaña {campaign.name} ({total} en total"
        why += f": {', '.join(parts)})" if parts else ")"
        if first_back is not None:
            local = campaign.local(first_back)
            day = "" if local.date() == campaign.local(now).date() else f"el {local:%Y-%m-%d} "
            zone = zone_label(campaign.timezone)
            if retrying and first_back in retrying and len(parts) == 1:
                why += f"; todos en espera de reintento hasta {day}las {local:%H:%M} ({zone})"
            else:
                why += f"; el primero en espera vuelve {day}a las {local:%H:%M} ({zone})"
        return QueueEmpty(why, first_back, dict(counts))


def explain_pick(engine: Engine, campaign: Campaign, now: datetime) -> list[str]:
    """The database's plan for the never-tried pick of ``campaign`` (benchmarks check it uses
    ``ix_contacts_order`` and stops at the first row)."""
    c, k, b = contacts.c, contact_calls.c, contact_callbacks.c
    members = _outside_lists([]) if campaign.is_general else [_in_lists(campaign.lists)]
    query = (
        sa.select(c.id)
        .where(
            c.locked_until.is_(None),
            *_open_conditions(campaign),
            *members,
            ~sa.exists(sa.select(sa.literal(1)).where(b.contact_id == c.id)),
            ~sa.exists(sa.select(sa.literal(1)).where(k.contact_id == c.id)),
        )
        .order_by(c.status_priority, c.age_key, c.id)
        .limit(1)
    )
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    prefix = "EXPLAIN ANALYZE" if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
    with engine.connect() as conn:
        return [" ".join(str(v) for v in row) for row in conn.exec_driver_sql(f"{prefix} {compiled}")]


def _raise_all(empty: list[QueueEmpty]) -> Claim:
    """Raise one QueueEmpty for every campaign tried: their reasons joined, the soonest ``until``, the
    counts summed."""
    if len(empty) == 1:
        raise empty[0]
    untils = [why.until for why in empty if why.until is not None]
    counts: Counter[str] = Counter()
    for why in empty:
        counts.update(why.counts)
    raise QueueEmpty(" | ".join(why.message for why in empty), min(untils, default=None), dict(counts))


def _in_lists(lists: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """In one of ``lists``: as its first list (``contacts.list``) or one joined later (``contact_lists``)."""
    c, m = contacts.c, contact_lists.c
    if not lists:
        return sa.false()
    joined = sa.exists(sa.select(sa.literal(1)).where(m.contact_id == c.id, m.list_name.in_(lists)))
    return sa.or_(c.list.in_(lists), joined)


def _outside_lists(lists: list[str]) -> list[sa.ColumnElement[bool]]:
    """In none of ``lists`` (no condition at all when there are none: every contact)."""
    if not lists:
        return []
    c, m = contacts.c, contact_lists.c
    joined = sa.exists(sa.select(sa.literal(1)).where(m.contact_id == c.id, m.list_name.in_(lists)))
    return [c.list.not_in(lists), ~joined]


def _open_conditions(campaign: Campaign) -> list[sa.ColumnElement[bool]]:
    """Not closed, not on the do-not-call list."""
    c = contacts.c
    return [
        c.status.not_in(campaign.closed_statuses),
        ~sa.exists(sa.select(sa.literal(1)).where(dnc_numbers.c.phone_e164 == c.phone_e164)),
    ]


def _free_or_lapsed(now: datetime) -> sa.ColumnElement[bool]:
    """Unlocked, or locked until ``now`` or before."""
    c = contacts.c
    return sa.or_(c.locked_until.is_(None), c.locked_until <= now)


def _first_in_order(
    conn: Connection,
    conditions: list[sa.ColumnElement[bool]],
    now: datetime,
    *,
    lapsed: bool,
    skip_locked: bool,
    nowait: bool,
) -> Any | None:
    """The id of the first contact free at ``now`` meeting ``conditions``, in the order of
    ``ix_contacts_order``: among the unlocked ones (``ix_contacts_queue``, which a held contact is not
    in) and, with ``lapsed``, among those whose lock lapsed unannounced (``contact_locks``, a few rows)."""
    c = contacts.c

    def first(free: sa.ColumnElement[bool]) -> Any:
        query = (
            sa.select(c.id, c.status_priority, c.age_key)
            .where(free, *conditions)
            .order_by(c.status_priority, c.age_key, c.id)
            .limit(1)
            .with_for_update(skip_locked=skip_locked, nowait=nowait, of=contacts)
        )
        return conn.execute(query).first()

    found = [first(c.locked_until.is_(None))]
    if lapsed:
        gone = sa.select(contact_locks.c.id).where(contact_locks.c.locked_until <= now)
        found.append(first(sa.and_(c.id.in_(gone), c.locked_until <= now)))
    rows = [row for row in found if row is not None]
    if not rows:
        return None
    return min(rows, key=lambda row: (row.status_priority, row.age_key, row.id)).id


def _members_of(campaign: Campaign, scope: tuple[str, ...]) -> list[sa.ColumnElement[bool]]:
    """The condition on ``contacts`` of being in the campaign: in one of ``scope``'s lists; for
    ``General``, in none of them."""
    return _outside_lists(list(scope)) if campaign.is_general else [_in_lists(scope)]


def _some_callback_due(conn: Connection, now: datetime) -> bool:
    """Whether any pending callback is due at ``now``."""
    query = sa.select(sa.exists().where(contact_callbacks.c.due_at <= now))
    return bool(conn.execute(query).scalar())


def _some_lock_lapsed(conn: Connection, now: datetime) -> bool:
    """Whether a lock lapsed at ``now`` or before and was not yet announced (its row still locked)."""
    query = sa.select(sa.exists().where(contact_locks.c.locked_until <= now))
    return bool(conn.execute(query).scalar())


def _lost_race(error: sa.exc.DBAPIError) -> bool:
    """A deadlock, a serialization failure, a row held by another (NOWAIT): the claim picks again."""
    return getattr(error.orig, "sqlstate", None) in (_DEADLOCK, _SERIALIZATION, _LOCK_NOT_AVAILABLE)


def _retry_conditions(campaign: Campaign, now: datetime) -> list[sa.ColumnElement[bool]]:
    """No open call, no call inside its retry delay, fewer calls than the cap in all and today."""
    in_delay, capped = _waits(campaign, now)
    return [~in_delay, ~capped]


def _waits(campaign: Campaign, now: datetime) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    """Conditions on ``contacts``: a call still open or inside its retry delay; the calls at the lifetime
    cap or at today's cap (the campaign's local day)."""
    c, k = contacts.c, contact_calls.c
    known = list(campaign.retry_minutes)
    waiting = [
        sa.and_(k.outcome == outcome, k.ended_at > now - campaign.retry_delay(outcome)) for outcome in known
    ]
    waiting.append(sa.and_(k.outcome.not_in(known), k.ended_at > now - campaign.retry_delay("")))
    in_delay = sa.exists(
        sa.select(sa.literal(1)).where(k.contact_id == c.id, sa.or_(k.ended_at.is_(None), *waiting))
    )
    attempts = sa.select(sa.func.count()).where(k.contact_id == c.id).scalar_subquery()
    capped = attempts >= campaign.max_attempts
    if campaign.max_per_day is not None:
        today = (
            sa.select(sa.func.count())
            .where(k.contact_id == c.id, k.placed_at >= utc_instant(campaign.day_start(now)))
            .scalar_subquery()
        )
        capped = sa.or_(capped, today >= campaign.max_per_day)
    return in_delay, capped


def utc_instant(moment: datetime) -> datetime:
    """``moment`` in UTC for a bound parameter: SQLite stores UTC text and would compare a local aware
    time by its wall clock (midnight in Costa Rica read as midnight UTC, six hours early)."""
    return moment.astimezone(UTC)


def _count(conn: Connection, members: list[sa.ColumnElement[bool]], condition: sa.ColumnElement[bool]) -> int:
    query = sa.select(sa.func.count()).select_from(contacts).where(*members, condition)
    return int(conn.execute(query).scalar_one())


def _attempts(conn: Connection, contact_id: Any) -> int:
    k = contact_calls.c
    return int(conn.execute(sa.select(sa.func.count()).where(k.contact_id == contact_id)).scalar_one())


__all__ = ["WorkQueue", "explain_pick"]
