"""Shared pieces of the contacts service tests: the people acting, a clock tests move, the contact commands.

Each step builds its command and runs it through ``handle`` (the service) or ``execute`` (a contacts
client), whichever the port has, as the gateway does."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from contacts.commands import (
    Caller,
    CallOutcome,
    ChangeStatus,
    ContactCommand,
    CreateContact,
    DeleteContact,
    EditNote,
    ExtendLock,
    ForceReleaseLock,
    LockContact,
    RecordCallEnded,
    RecordCallRequested,
    RecordCallStarted,
    ReleaseLock,
    UpdateContact,
)
from contacts.views import Contact
from kernel.roles import Role

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


def _run(port: Any, command: ContactCommand, expected_version: int | None = None) -> Contact | None:
    run = getattr(port, "handle", None) or port.execute
    result: Contact | None = run(command, expected_version)
    return result


def _shown(port: Any, command: ContactCommand, expected_version: int | None = None) -> Contact:
    contact = _run(port, command, expected_version)
    assert contact is not None, f"{command.TYPE} left no contact"
    return contact


def create_contact(
    port: Any,
    caller: Caller,
    phone: str,
    *,
    name: str = "",
    status: str | None = None,
    note: str = "",
    email: str = "",
    extra: Mapping[str, str] | None = None,
    list_name: str = "",
) -> Contact:
    """Create a contact from the phone as typed (the service parses it)."""
    command = CreateContact(
        caller=caller,
        now=_NOW,
        phone=phone,
        name=name,
        status=status,
        note=note,
        email=email,
        extra=dict(extra or {}),
        list_name=list_name,
    )
    return _shown(port, command)


def update_contact(
    port: Any,
    caller: Caller,
    contact_id: str,
    *,
    expected_version: int | None = None,
    **fields: Any,
) -> Contact:
    """Change the given fields (name, status, note, email, extra)."""
    command = UpdateContact(caller=caller, now=_NOW, contact_id=contact_id, **fields)
    return _shown(port, command, expected_version)


def change_status(
    port: Any, caller: Caller, contact_id: str, status: str, *, expected_version: int | None = None
) -> Contact:
    """Set the status."""
    command = ChangeStatus(caller=caller, now=_NOW, contact_id=contact_id, status=status)
    return _shown(port, command, expected_version)


def edit_note(
    port: Any, caller: Caller, contact_id: str, note: str, *, expected_version: int | None = None
) -> Contact:
    """Replace the note."""
    return _shown(port, EditNote(caller=caller, now=_NOW, contact_id=contact_id, note=note), expected_version)


def delete_contact(
    port: Any, caller: Caller, contact_id: str, reason: str = "", *, expected_version: int | None = None
) -> None:
    """Delete the contact."""
    _run(port, DeleteContact(caller=caller, now=_NOW, contact_id=contact_id, reason=reason), expected_version)


def lock_contact(port: Any, caller: Caller, contact_id: str, duration_minutes: int | None = None) -> Contact:
    """Lock the contact (or renew the caller's lock)."""
    command = LockContact(caller=caller, now=_NOW, contact_id=contact_id, duration_minutes=duration_minutes)
    return _shown(port, command)


def extend_lock(port: Any, caller: Caller, contact_id: str, duration_minutes: int | None = None) -> Contact:
    """Renew the caller's lock."""
    command = ExtendLock(caller=caller, now=_NOW, contact_id=contact_id, duration_minutes=duration_minutes)
    return _shown(port, command)


def release_lock(port: Any, caller: Caller, contact_id: str) -> Contact:
    """Release the lock."""
    return _shown(port, ReleaseLock(caller=caller, now=_NOW, contact_id=contact_id))


def force_release_lock(port: Any, caller: Caller, contact_id: str) -> Contact:
    """Release whoever's lock."""
    return _shown(port, ForceReleaseLock(caller=caller, now=_NOW, contact_id=contact_id))


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


def some_agents(count: int) -> list[Caller]:
    """``count`` Agents, ``u-0`` to ``u-{count-1}``."""
    return [Caller(user_id=f"u-{n}", username=f"agente {n}", role=Role.AGENT) for n in range(count)]


def together(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run every worker on its own thread, released at once; their results or exceptions, in order."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def run(index: int, work: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = work()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    return results
