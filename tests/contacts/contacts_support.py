"""Shared pieces of the contacts service tests: the people acting, a clock tests move, the call steps.

The call steps run through ``handle`` (the service) or ``execute`` (a contacts client), whichever the
port has, as the gateway does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from contacts.commands import (
    Caller,
    CallOutcome,
    ContactCommand,
    RecordCallEnded,
    RecordCallRequested,
    RecordCallStarted,
    Role,
)
from contacts.views import Contact

ANA = Caller(user_id="u-ana", username="ana", role=Role.AGENT, team="norte")
BETO = Caller(user_id="u-beto", username="beto", role=Role.AGENT, team="norte")
LAURA = Caller(user_id="u-laura", username="laura", role=Role.TEAM_LEAD, team="norte")
PABLO = Caller(user_id="u-pablo", username="pablo", role=Role.PROJECT_MANAGER)


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def _run(port: Any, command: ContactCommand) -> Contact | None:
    run = getattr(port, "handle", None) or port.execute
    result: Contact | None = run(command)
    return result


def request_call(
    port: Any, caller: Caller, contact_id: str, call_id: str, desk: str = "desk-1"
) -> Contact | None:
    """Record that ``caller`` asked desk ``desk`` to dial the contact (the gateway's part)."""
    return _run(
        port, RecordCallRequested(caller=caller, now=_NOW, contact_id=contact_id, call_id=call_id, desk=desk)
    )


def start_call(
    port: Any, caller: Caller, contact_id: str, call_id: str, desk: str = "desk-1"
) -> Contact | None:
    """The desk reports that its softphone started the call."""
    return _run(
        port, RecordCallStarted(caller=caller, now=_NOW, contact_id=contact_id, call_id=call_id, desk=desk)
    )


def end_call(
    port: Any,
    caller: Caller,
    contact_id: str,
    call_id: str,
    outcome: CallOutcome,
    talk_seconds: int = 0,
    *,
    ring_seconds: int = 0,
    desk: str = "desk-1",
) -> Contact | None:
    """The desk reports how the call ended."""
    command = RecordCallEnded(
        caller=caller,
        now=_NOW,
        contact_id=contact_id,
        call_id=call_id,
        outcome=outcome,
        duration_seconds=talk_seconds,
        ring_seconds=ring_seconds,
        desk=desk,
    )
    return _run(port, command)


_NOW = datetime(2000, 1, 1, tzinfo=UTC)
"""Placeholder: the service stamps every command with its own clock."""
