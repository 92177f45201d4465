"""Property tests of the work queue's order and eligibility against a small reference model, on SQLite and
PostgreSQL.

Hypothesis draws a campaign (attempt caps in all and per day, retry delays per outcome, calling hours that
are open, closed or absent) and a handful of contacts (status, age, calls ended or open, a personal or
shared callback due or not, a lock by the agent or another, the do-not-call list). The contacts are made
through the real service with a controlled clock; then the SQL pick must claim exactly the contact the
model puts first (or answer ``queue_empty`` when the model offers none), and the eligibility explanation
must agree with the model for every contact.

Each example works its own campaign and list, so examples share the database without seeing each other.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
from contacts_support import ANA, BETO, PABLO, FakeClock, create_contact, end_call, lock_contact
from contacts_support import request_call as request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from contacts.campaignbook import CampaignBook
from contacts.commands import CallbackScope, CallOutcome, RecordDisposition
from contacts.dnc import DncList
from contacts.errors import QueueEmpty
from contacts.handlers import ContactsService
from contacts.queue import WorkQueue
from contacts.statuses import DEFAULT_CATALOGUE
from kernel.store import EventStore

NOW = datetime(2026, 3, 4, 18, 0, tzinfo=UTC)  # Wednesday 12:00 in Costa Rica
DAY_START = datetime(2026, 3, 4, tzinfo=ZoneInfo("America/Costa_Rica"))
STATUSES = ["SIN_GESTIONAR", "NC", "CUELGA", "INTERESADO", "SIN_GESTIONAR", "NC", "COMPLETADA"]
CLOSED = {"COMPLETADA", "SERVICIOS_ACTIVOS", "NO_EXISTE"}
HOURS = {
    "none": None,
    "open": {"wed": [["11:00", "13:00"]]},
    "closed": {"wed": [["13:00", "17:00"]], "mon": [["08:00", "17:00"]]},
}
_examples = itertools.count()
T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """A call placed ``ago`` minutes before NOW and ended a minute later (``open``: not ended)."""

    ago: int
    outcome: CallOutcome
    open: bool


@dataclass(frozen=True)
class Callback:
    """A wrap-up ``ago`` minutes before NOW by ``user`` setting a callback due ``due_in`` minutes later."""

    ago: int
    due_in: int
    scope: CallbackScope
    by_me: bool


@dataclass(frozen=True)
class Drawn:
    """One contact as drawn: everything the rules depend on, in minutes before NOW."""

    status: str
    created_ago: int
    calls: tuple[Call, ...]
    callback: Callback | None
    lock_ago: int | None
    locked_by_me: bool
    dnc: bool


@dataclass(frozen=True)
class Rules:
    """The campaign as drawn."""

    max_attempts: int
    max_per_day: int | None
    retry_minutes: dict[str, int]
    hours: str


def _sometimes(values: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    """A value of ``values`` one time in four, None otherwise (so most contacts stay simple)."""
    return st.tuples(st.integers(0, 3), values).map(lambda t: t[1] if t[0] == 0 else None)


def _calls() -> st.SearchStrategy[tuple[Call, ...]]:
    agos = st.lists(st.integers(100, 2900), max_size=3, unique=True).map(lambda a: sorted(a, reverse=True))
    outcomes = st.lists(st.sampled_from(list(CallOutcome)), min_size=3, max_size=3)
    return st.tuples(agos, outcomes, _sometimes(st.just(True))).map(
        lambda t: tuple(
            Call(ago, outcome, open=bool(t[2]) and n == len(t[0]) - 1)
            for n, (ago, outcome) in enumerate(zip(t[0], t[1], strict=False))
        )
    )


contacts_drawn = st.builds(
    Drawn,
    status=st.sampled_from(STATUSES),
    created_ago=st.integers(3000, 6000),
    calls=_calls(),
    callback=_sometimes(
        st.builds(
            Callback,
            ago=st.integers(40, 99),
            due_in=st.integers(1, 200),
            scope=st.sampled_from(list(CallbackScope)),
            by_me=st.booleans(),
        )
    ),
    lock_ago=_sometimes(st.integers(0, 30)),
    locked_by_me=st.booleans(),
    dnc=st.sampled_from([False, False, False, True]),
)
rules_drawn = st.builds(
    Rules,
    max_attempts=st.integers(1, 4),
    max_per_day=st.none() | st.integers(1, 2),
    retry_minutes=st.fixed_dictionaries({outcome.value: st.integers(0, 1500) for outcome in CallOutcome}),
    hours=st.sampled_from(["none", "none", "open", "closed"]),
)


@dataclass(frozen=True)
class Made:
    """A drawn contact as made: its id and the lock it ended with."""

    id: str
    drawn: Drawn
    locked_until: datetime | None


def _minutes_ago(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)


def _make(
    service: ContactsService, queue: WorkQueue, clock: FakeClock, drawn: Drawn, phone: str, lst: str
) -> Made:
    clock.now = _minutes_ago(drawn.created_ago)
    contact_id = create_contact(service, PABLO, phone, status=drawn.status, list_name=lst).id
    for n, call in enumerate(drawn.calls):
        clock.now = _minutes_ago(call.ago)
        request(service, ANA, contact_id, f"c{n}")
        if not call.open:
            clock.now = _minutes_ago(call.ago - 1)
            end_call(service, ANA, contact_id, f"c{n}", call.outcome)
    if drawn.callback is not None:
        clock.now = _minutes_ago(drawn.callback.ago)
        wrap_up = RecordDisposition(
            caller=ANA if drawn.callback.by_me else BETO,
            now=clock.now,
            contact_id=contact_id,
            outcome="callback",
            callback_at=clock.now + timedelta(minutes=drawn.callback.due_in),
            callback_scope=drawn.callback.scope,
        )
        service.execute(wrap_up)
    locked_until = None
    if drawn.lock_ago is not None:
        clock.now = _minutes_ago(drawn.lock_ago)
        locked_until = lock_contact(service, ANA if drawn.locked_by_me else BETO, contact_id).locked_until
    if drawn.dnc:
        queue.dnc.add(phone, "propiedad", PABLO, clock.now)
    return Made(contact_id, drawn, locked_until)


def _model(made: list[Made], rules: Rules) -> dict[str, tuple[object, ...]]:
    """The reference: every contact the queue may offer ANA at NOW, with its sort key (lowest first)."""
    if rules.hours == "closed":
        return {}
    offered: dict[str, tuple[object, ...]] = {}
    for contact in made:
        d = contact.drawn
        if contact.locked_until is not None and contact.locked_until > NOW:
            continue
        if d.dnc or d.status in CLOSED or any(call.open for call in d.calls):
            continue
        tie = uuid.UUID(contact.id).hex
        if d.callback is not None:
            due = _minutes_ago(d.callback.ago - d.callback.due_in)
            mine = d.callback.by_me
            if due <= NOW and (d.callback.scope is CallbackScope.SHARED or mine):
                personal = d.callback.scope is CallbackScope.PERSONAL
                offered[contact.id] = (0 if personal else 1, due, tie)
            continue
        priority = DEFAULT_CATALOGUE.priority(d.status)
        if not d.calls:
            offered[contact.id] = (2, priority, _minutes_ago(d.created_ago), tie)
            continue
        if len(d.calls) >= rules.max_attempts:
            continue
        today = sum(1 for call in d.calls if _minutes_ago(call.ago) >= DAY_START)
        if rules.max_per_day is not None and today >= rules.max_per_day:
            continue
        ends = [
            _minutes_ago(call.ago - 1) + timedelta(minutes=rules.retry_minutes[call.outcome.value])
            for call in d.calls
        ]
        if any(end > NOW for end in ends):
            continue
        last_contact = _minutes_ago(min(call.ago for call in d.calls) - 1)
        offered[contact.id] = (3, priority, last_contact, tie)
    return offered


@pytest.fixture
def queue(engine: Engine, store: EventStore, service: ContactsService) -> WorkQueue:
    return WorkQueue(engine, store, service, DncList(engine), CampaignBook(engine))


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rules=rules_drawn, drawn=st.lists(contacts_drawn, min_size=1, max_size=8))
def test_the_sql_pick_claims_what_the_model_puts_first(
    queue: WorkQueue, service: ContactsService, clock: FakeClock, rules: Rules, drawn: list[Drawn]
) -> None:
    example = next(_examples)
    lst = f"propiedad-{example}"
    campaign = queue.campaigns.create(
        PABLO,
        NOW,
        name=f"Propiedad {example}",
        lists=[lst],
        max_attempts=rules.max_attempts,
        max_per_day=rules.max_per_day,
        retry_minutes=rules.retry_minutes,
        calling_hours=HOURS[rules.hours],
    ).id
    made = [
        _make(service, queue, clock, d, f"+506{88000000 + example * 10 + n}", lst)
        for n, d in enumerate(drawn)
    ]
    clock.now = NOW
    offered = _model(made, rules)

    for contact in made:
        explained = queue.eligibility(ANA, contact.id, campaign)
        assert explained.eligible == (contact.id in offered), (contact.drawn, explained.findings)

    if not offered:
        with pytest.raises(QueueEmpty):
            queue.next_contact(ANA, campaign)
        return
    claim = queue.next_contact(ANA, campaign)
    first = min(offered, key=lambda contact_id: offered[contact_id])
    assert claim.contact.id == first, (offered, claim.reason)
    assert claim.contact.locked_by == ANA.user_id
