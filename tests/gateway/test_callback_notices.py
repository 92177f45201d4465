"""What live clients are told when a callback changes: a wrap-up that sets one, a reschedule, a cancel and
the schedule making a personal one shared each become ``callback_changed`` (the desk's «Rellamadas» window
reads its list again on it); a wrap-up without a callback says nothing of the sort."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from contacts.commands import CallbackScope
from contacts.envelopes import envelope_of
from contacts.events import (
    CallbackCancelled,
    CallbackRescheduled,
    CallbackShared,
    ContactEvent,
    DispositionRecorded,
)
from gateway.notices import notices_for
from kernel.envelope import Actor, Envelope

AT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
DUE = AT + timedelta(hours=2)
CONTACT = "0b8e3a52-9c1d-4f6e-8a7b-3c2d1e0f9a8b"
CALLBACK = f"{CONTACT}.4"
LUCIA = Actor("u-lucia", "TeamLead")


def stored(event: ContactEvent, position: int, version: int = 5, actor: Actor = LUCIA) -> Envelope:
    return dataclasses.replace(envelope_of(event, actor), position=position, stream_version=version)


def test_each_change_of_a_callback_is_a_callback_changed_notice() -> None:
    events = [
        stored(
            DispositionRecorded(
                contact_id=CONTACT,
                at=AT,
                user_id="u-ana",
                outcome="callback",
                callback_at=DUE,
                callback_scope=CallbackScope.SHARED,
                callback_id=CALLBACK,
            ),
            10,
            actor=Actor("u-ana", "Agent"),
        ),
        stored(
            CallbackRescheduled(
                contact_id=CONTACT,
                at=AT,
                callback_id=CALLBACK,
                due_at=DUE + timedelta(hours=1),
                scope=CallbackScope.PERSONAL,
                user_id="u-beto",
                username="beto",
            ),
            11,
        ),
        stored(CallbackShared(contact_id=CONTACT, at=AT, callback_id=CALLBACK, user_id="u-beto"), 12),
        stored(CallbackCancelled(contact_id=CONTACT, at=AT, callback_id=CALLBACK, reason="ya compró"), 13),
    ]

    notices = notices_for(events)

    assert [n.name for n in notices] == ["callback_changed"] * 4
    assert all(n.contact_id == CONTACT for n in notices)
    picked = [
        {k: n.payload[k] for k in ("position", "user", "callback_id", "change", "due_at", "scope", "user_id")}
        for n in notices
    ]
    assert picked == [
        {
            "position": 10,
            "user": "u-ana",
            "callback_id": CALLBACK,
            "change": "scheduled",
            "due_at": DUE.isoformat(),
            "scope": "shared",
            "user_id": "u-ana",
        },
        {
            "position": 11,
            "user": "u-lucia",
            "callback_id": CALLBACK,
            "change": "rescheduled",
            "due_at": (DUE + timedelta(hours=1)).isoformat(),
            "scope": "personal",
            "user_id": "u-beto",
        },
        {
            "position": 12,
            "user": "u-lucia",
            "callback_id": CALLBACK,
            "change": "shared",
            "due_at": None,
            "scope": "shared",
            "user_id": "u-beto",
        },
        {
            "position": 13,
            "user": "u-lucia",
            "callback_id": CALLBACK,
            "change": "cancelled",
            "due_at": None,
            "scope": None,
            "user_id": None,
        },
    ]


def test_a_wrap_up_without_a_callback_is_no_callback_notice_and_an_old_one_gets_the_derived_id() -> None:
    plain = DispositionRecorded(contact_id=CONTACT, at=AT, user_id="u-ana", outcome="no_answer")
    assert notices_for([stored(plain, 20)]) == []

    before_ids = DispositionRecorded(
        contact_id=CONTACT, at=AT, user_id="u-ana", outcome="callback", callback_at=DUE
    )
    [notice] = notices_for([stored(before_ids, 21, version=9)])
    assert notice.payload["callback_id"] == f"{CONTACT}.9"
    assert notice.payload["scope"] == "personal"
