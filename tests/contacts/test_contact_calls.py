"""The calls read model: a call's events give one row, and the rows give each agent's figures."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from contacts_support import (
    ANA,
    BETO,
    FakeClock,
    create_contact,
    end_call,
    lock_contact,
    request_call,
    start_call,
)
from sqlalchemy.engine import Engine

from contacts.commands import Caller, CallOutcome
from contacts.errors import CallNotOpen, InvalidInput, Locked
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.scheduler import CallTimeouts
from contacts.schema import contact_calls


def _row(engine: Engine, call_id: str) -> dict[str, object]:
    with engine.connect() as conn:
        query = sa.select(contact_calls).where(contact_calls.c.call_id == call_id)
        return dict(conn.execute(query).mappings().one())


def test_requested_started_ended_gives_one_row_with_times_outcome_and_duration(
    service: ContactsService, engine: Engine, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-3456", name="José")
    requested_at = clock.now
    request_call(service, ANA, contact.id, "c-1", "desk-7")
    clock.advance(seconds=5)
    start_call(service, ANA, contact.id, "c-1", "desk-7")
    clock.advance(seconds=95)
    end_call(service, ANA, contact.id, "c-1", CallOutcome.ANSWERED, 90, desk="desk-7")

    row = _row(engine, "c-1")
    assert uuid.UUID(str(row["contact_id"])) == uuid.UUID(contact.id)
    assert (row["user_id"], row["username"], row["desk"]) == (ANA.user_id, "ana", "desk-7")
    assert (row["outcome"], row["duration_seconds"], row["handling_seconds"]) == ("answered", 90, 100.0)
    moments = [row[name] for name in ("placed_at", "requested_at", "started_at", "ended_at")]
    naive = [moment.replace(tzinfo=None) for moment in moments]  # type: ignore[attr-defined]
    base = requested_at.replace(tzinfo=None)
    assert naive == [base, base, base + timedelta(seconds=5), base + timedelta(seconds=100)]


def test_figures_count_made_successful_failed_talk_and_handling_per_agent(
    service: ContactsService, queries: ContactQueries, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    other = create_contact(service, BETO, "6012-3456")
    plan = [
        ("a1", CallOutcome.ANSWERED, 120, 130),
        ("a2", CallOutcome.ANSWERED, 60, 70),
        ("a3", CallOutcome.BUSY, 0, 10),
        ("a4", CallOutcome.NO_ANSWER, 0, 30),
        ("a5", CallOutcome.CANCELLED, 0, 5),
    ]
    for call_id, outcome, talk, handling in plan:
        request_call(service, ANA, contact.id, call_id)
        start_call(service, ANA, contact.id, call_id)
        clock.advance(seconds=handling)
        end_call(service, ANA, contact.id, call_id, outcome, talk)
    request_call(service, ANA, contact.id, "a6")  # still ringing
    request_call(service, BETO, other.id, "b1")
    clock.advance(seconds=40)
    end_call(service, BETO, other.id, "b1", CallOutcome.FAILED, 0)

    ana, beto = queries.call_figures()

    assert (ana.user_id, ana.username, beto.username) == (ANA.user_id, "ana", "beto")
    figures = ana.figures
    assert (figures.made, figures.successful, figures.failed, figures.cancelled, figures.in_progress) == (
        6,
        2,
        2,
        1,
        1,
    )
    assert figures.talk_seconds == 180
    assert figures.average_handling_seconds == pytest.approx((130 + 70 + 10 + 30 + 5) / 5)
    assert figures.success_rate == pytest.approx(0.5)
    data = ana.to_data()
    assert data["by_outcome"] == {"answered": 2, "no_answer": 1, "busy": 1, "failed": 0, "cancelled": 1}
    assert (data["made"], data["success_rate"], data["average_handling_seconds"]) == (6, 0.5, 49.0)
    assert (beto.figures.made, beto.figures.failed, beto.figures.success_rate) == (1, 1, 0.0)
    both = ana.figures.plus(beto.figures)
    assert (both.made, both.successful, both.failed, both.talk_seconds) == (7, 2, 3, 180)


def test_figures_keep_the_calls_placed_in_the_window_and_the_agents_asked_for(
    service: ContactsService, queries: ContactQueries, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    start = clock.now
    request_call(service, ANA, contact.id, "early")
    clock.advance(hours=2)
    middle = clock.now
    request_call(service, ANA, contact.id, "late")
    request_call(service, BETO, contact.id, "beto")
    start_call(service, ANA, contact.id, "late")
    clock.advance(minutes=1)
    end_call(service, ANA, contact.id, "late", CallOutcome.ANSWERED, 30)

    assert [a.figures.made for a in queries.call_figures(until=middle)] == [1]
    late = queries.call_figures(since=middle)
    assert [(a.username, a.figures.made, a.figures.successful) for a in late] == [
        ("ana", 1, 1),
        ("beto", 1, 0),
    ]
    assert [a.username for a in queries.call_figures(start, middle, [BETO.user_id])] == []
    assert [a.username for a in queries.call_figures(user_ids=[BETO.user_id])] == ["beto"]
    assert queries.call_figures(user_ids=[]) == []
    with pytest.raises(InvalidInput):
        queries.call_figures(since=middle, until=start)


@pytest.mark.parametrize(
    ("who", "call_id", "desk"),
    [
        pytest.param(ANA, "never-asked", "desk-1", id="unknown call"),
        pytest.param(BETO, "c-1", "desk-1", id="another user's call"),
        pytest.param(ANA, "c-1", "desk-9", id="another desk of the same user"),
    ],
)
def test_a_desk_cannot_report_a_call_not_issued_to_it(
    service: ContactsService, queries: ContactQueries, who: Caller, call_id: str, desk: str
) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    request_call(service, ANA, contact.id, "c-1", "desk-1")

    with pytest.raises(CallNotOpen):
        start_call(service, who, contact.id, call_id, desk)
    with pytest.raises(CallNotOpen):
        end_call(service, who, contact.id, call_id, CallOutcome.ANSWERED, 3600, desk=desk)

    (ana,) = queries.call_figures()
    assert (ana.username, ana.figures.made, ana.figures.in_progress, ana.figures.talk_seconds) == (
        "ana",
        1,
        1,
        0,
    )


def test_an_ended_call_takes_no_second_end_and_a_repeated_start_changes_nothing(
    service: ContactsService, queries: ContactQueries, engine: Engine, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    request_call(service, ANA, contact.id, "c-1")
    start_call(service, ANA, contact.id, "c-1")
    version = queries.get(contact.id).version
    start_call(service, ANA, contact.id, "c-1")
    clock.advance(seconds=20)
    end_call(service, ANA, contact.id, "c-1", CallOutcome.ANSWERED, 15)

    with pytest.raises(CallNotOpen):
        end_call(service, ANA, contact.id, "c-1", CallOutcome.BUSY, 0)

    row = _row(engine, "c-1")
    assert (row["outcome"], row["duration_seconds"]) == ("answered", 15)
    assert queries.get(contact.id).version == version + 1


def test_the_desks_seconds_are_kept_within_the_servers_clock(
    service: ContactsService, queries: ContactQueries, engine: Engine, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    request_call(service, ANA, contact.id, "c-1")
    clock.advance(seconds=4)
    start_call(service, ANA, contact.id, "c-1")
    clock.advance(seconds=30)
    end_call(service, ANA, contact.id, "c-1", CallOutcome.ANSWERED, 3600, ring_seconds=600)

    row = _row(engine, "c-1")
    assert row["duration_seconds"] == 30
    ended = [e for e in queries.history(contact.id) if e.event_type == "contacts.CallEnded"][-1]
    assert (ended.new, ended.detail["duration_seconds"], ended.detail["ring_seconds"]) == (
        "answered",
        "30",
        "4",
    )


def test_calls_no_desk_finished_are_closed_as_failed_with_the_reason(
    service: ContactsService, engine: Engine, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    request_call(service, ANA, contact.id, "silent")
    request_call(service, ANA, contact.id, "talking")
    start_call(service, ANA, contact.id, "talking")
    timeouts = CallTimeouts(service, engine, start_timeout_seconds=60, max_seconds=600, clock=clock)

    clock.advance(seconds=59)
    assert timeouts.close_stale_calls() == 0
    clock.advance(seconds=2)
    assert timeouts.close_stale_calls() == 1
    assert _row(engine, "silent")["outcome"] == "failed"
    assert _row(engine, "talking")["outcome"] is None
    clock.advance(seconds=600)
    assert timeouts.close_stale_calls() == 1
    assert timeouts.close_stale_calls() == 0
    assert _row(engine, "talking")["outcome"] == "failed"
    with pytest.raises(CallNotOpen):
        end_call(service, ANA, contact.id, "silent", CallOutcome.ANSWERED, 10)


def test_a_failed_command_leaves_no_call_row(
    service: ContactsService, queries: ContactQueries, engine: Engine
) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    lock_contact(service, BETO, contact.id, 5)

    with pytest.raises(Locked):
        request_call(service, ANA, contact.id, "refused")

    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(contact_calls)).scalar_one() == 0
    assert queries.call_figures() == []
