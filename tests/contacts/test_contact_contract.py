"""The contacts contract: every single-contact command gives the same result, or the same typed error,
in process (``LocalContactsClient``) and over HTTP (``HttpContactsClient`` → ``POST /commands``).

Each command type has a scenario: a few commands that reach it on its success and its refusals. The
scenario runs once per transport, each on a fresh database with a clock at the same moment, and the
two transcripts must be equal, contact by contact and error by error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from contacts_support import ANA, BETO, LAURA, PABLO, FakeClock
from fastapi.testclient import TestClient

from contacts.api import create_app
from contacts.client import ContactsClient, HttpContactsClient, LocalContactsClient
from contacts.commands import (
    COMMAND_TYPES,
    SYSTEM_CALLER,
    AgeStatus,
    CallbackScope,
    Caller,
    CallOutcome,
    CancelCallback,
    ChangeStatus,
    CloseStaleCall,
    ContactCommand,
    CreateContact,
    DeleteContact,
    EditNote,
    ExpireLock,
    ExtendLock,
    ForceReleaseLock,
    LockContact,
    RecordCallEnded,
    RecordCallRequested,
    RecordCallStarted,
    RecordDisposition,
    ReleaseLock,
    RemindCallback,
    RescheduleCallback,
    ShareStaleCallback,
    UpdateContact,
)
from contacts.domain import LockPolicy, contact_id_for_phone
from contacts.errors import ContactError
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.statuses import DEFAULT_CATALOGUE
from contacts.views import error_to_data
from kernel.store import EventStore, create_engine
from system.migrate import upgrade

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLACEHOLDER = datetime(2000, 1, 1, tzinfo=UTC)  # every transport stamps the command with the service clock
ID = contact_id_for_phone("+50688123456")
MISSING = "6f1d8f3a-2c4b-5e7a-9b0c-1d2e3f4a5b6c"

Step = tuple[Any, ...]
"""One command's outcome: ``("ok", contact data or None)`` or ``("error", error class, error data)``."""


@dataclass
class Run:
    """One transport's run of a scenario: the port, its clock and the outcomes seen so far."""

    port: ContactsClient
    clock: FakeClock
    steps: list[Step] = field(default_factory=list)

    def send(self, command: ContactCommand, expected_version: int | None = None) -> None:
        """Run ``command`` and note what came back."""
        try:
            contact = self.port.execute(command, expected_version)
        except ContactError as error:
            self.steps.append(("error", type(error).__name__, error_to_data(error)))
        else:
            self.steps.append(("ok", contact.to_data() if contact is not None else None))

    def kinds(self) -> list[str]:
        """Each step as ``ok`` or its error's class name."""
        return [step[0] if step[0] == "ok" else step[1] for step in self.steps]


def _create(caller: Caller = ANA, phone: str = "8812-3456", **fields: Any) -> CreateContact:
    return CreateContact(caller=caller, now=PLACEHOLDER, phone=phone, **fields)


def _lock(caller: Caller = ANA, contact_id: str = ID, minutes: int | None = None) -> LockContact:
    return LockContact(caller=caller, now=PLACEHOLDER, contact_id=contact_id, duration_minutes=minutes)


def _call(type_: Callable[..., ContactCommand], caller: Caller = ANA, **fields: Any) -> ContactCommand:
    return type_(caller=caller, now=PLACEHOLDER, contact_id=ID, **fields)


def create_contact(run: Run) -> None:
    run.send(_create(name="José", extra={"ciudad": "Cartago"}, list_name="feria", status="nc"))
    run.send(_create(BETO, "+506 8812 3456"))
    run.send(_create(phone="12"))
    run.send(_create(phone="6012-3456", status="PERDIDO"))


def update_contact(run: Run) -> None:
    run.send(_create())
    run.send(UpdateContact(caller=ANA, now=PLACEHOLDER, contact_id=ID, name="Ana", extra={"a": "1"}), 1)
    run.send(UpdateContact(caller=ANA, now=PLACEHOLDER, contact_id=ID, note="tarde"), 1)
    run.send(UpdateContact(caller=ANA, now=PLACEHOLDER, contact_id=ID, status="PERDIDO"))
    run.send(_lock(BETO))
    run.send(UpdateContact(caller=ANA, now=PLACEHOLDER, contact_id=ID, note="x"))
    run.send(UpdateContact(caller=ANA, now=PLACEHOLDER, contact_id=MISSING, note="x"))


def change_status(run: Run) -> None:
    run.send(_create())
    run.send(ChangeStatus(caller=ANA, now=PLACEHOLDER, contact_id=ID, status="nc"))
    run.send(ChangeStatus(caller=ANA, now=PLACEHOLDER, contact_id=ID, status="PERDIDO"))
    run.send(ChangeStatus(caller=ANA, now=PLACEHOLDER, contact_id=ID, status="CUELGA"), 1)
    run.send(ChangeStatus(caller=ANA, now=PLACEHOLDER, contact_id=ID, status="COMPLETADA"))
    run.send(ChangeStatus(caller=ANA, now=PLACEHOLDER, contact_id=ID, status="NC"))
    run.send(ChangeStatus(caller=LAURA, now=PLACEHOLDER, contact_id=ID, status="NC"))


def edit_note(run: Run) -> None:
    run.send(_create())
    run.send(EditNote(caller=ANA, now=PLACEHOLDER, contact_id=ID, note="llamar\n«tarde»"), 1)
    run.send(EditNote(caller=BETO, now=PLACEHOLDER, contact_id=ID, note="otra"), 1)


def lock_contact(run: Run) -> None:
    run.send(_create())
    run.send(_lock(minutes=15))
    run.send(_lock(BETO))
    run.send(_lock(minutes=120))
    run.send(_lock(contact_id=MISSING))
    run.clock.advance(minutes=16)
    run.send(_lock(BETO))


def extend_lock(run: Run) -> None:
    run.send(_create())
    run.send(_call(ExtendLock))
    run.send(_lock(minutes=5))
    run.clock.advance(minutes=3)
    run.send(_call(ExtendLock, duration_minutes=30))
    run.send(_call(ExtendLock, BETO))


def release_lock(run: Run) -> None:
    run.send(_create())
    run.send(_lock())
    run.send(_call(ReleaseLock, BETO))
    run.send(_call(ReleaseLock))
    run.send(_call(ReleaseLock))
    run.send(_lock(BETO))
    run.send(_call(ReleaseLock, LAURA))


def force_release_lock(run: Run) -> None:
    run.send(_create())
    run.send(_lock())
    run.send(_call(ForceReleaseLock, BETO))
    run.send(_call(ForceReleaseLock, LAURA))


def expire_lock(run: Run) -> None:
    run.send(_create())
    run.send(_lock(minutes=10))
    run.send(_call(ExpireLock, SYSTEM_CALLER))
    run.clock.advance(minutes=11)
    run.send(_call(ExpireLock, SYSTEM_CALLER))


def delete_contact(run: Run) -> None:
    run.send(_create())
    run.send(_call(DeleteContact, ANA))
    run.send(_call(DeleteContact, PABLO, reason="duplicado"), 7)
    run.send(_call(DeleteContact, PABLO, reason="duplicado"), 1)
    run.send(_call(DeleteContact, PABLO))
    run.send(_lock())


def age_status(run: Run) -> None:
    run.send(_create(status="NC"))
    run.send(_call(AgeStatus, SYSTEM_CALLER))
    run.clock.advance(days=400)
    run.send(_call(AgeStatus, SYSTEM_CALLER))


def _call_requested(run: Run) -> None:
    """A contact, locked by ANA, whose call c-1 ANA asked desk-1 to dial (three steps)."""
    run.send(_create())
    run.send(_lock())
    run.send(_call(RecordCallRequested, call_id="c-1", desk="desk-1"))


def record_call_requested(run: Run) -> None:
    run.send(_create())
    run.send(_lock())
    run.send(_call(RecordCallRequested, call_id="c-1", desk="desk-1"))
    run.send(_call(RecordCallRequested, BETO, call_id="c-2", desk="desk-2"))


def record_call_started(run: Run) -> None:
    _call_requested(run)
    run.send(_call(RecordCallStarted, call_id="c-1", desk="desk-2"))
    run.clock.advance(seconds=5)
    run.send(_call(RecordCallStarted, call_id="c-1", desk="desk-1"))
    run.send(_call(RecordCallStarted, call_id="c-9", desk="desk-1"))


def record_call_ended(run: Run) -> None:
    _call_requested(run)
    run.send(_call(RecordCallStarted, call_id="c-1", desk="desk-1"))
    run.clock.advance(seconds=40)
    ended = {"call_id": "c-1", "outcome": CallOutcome.ANSWERED, "duration_seconds": 30, "ring_seconds": 5}
    run.send(_call(RecordCallEnded, BETO, desk="desk-1", **ended))
    run.send(_call(RecordCallEnded, desk="desk-1", **ended))
    run.send(_call(RecordCallEnded, desk="desk-1", **ended))


def close_stale_call(run: Run) -> None:
    _call_requested(run)
    run.clock.advance(hours=2)
    run.send(_call(CloseStaleCall, SYSTEM_CALLER, call_id="c-1", reason="sin informe del puesto"))
    run.send(_call(CloseStaleCall, SYSTEM_CALLER, call_id="c-1", reason="sin informe del puesto"))


def record_disposition(run: Run) -> None:
    run.send(_create())
    run.send(_lock())
    run.send(_call(RecordDisposition, BETO, outcome="sale"))
    run.send(_call(RecordDisposition, outcome="no answer"))
    callback = datetime(2100, 1, 1, 10, tzinfo=UTC)
    shared = CallbackScope.SHARED
    run.send(
        _call(RecordDisposition, outcome="callback", status="interesado", note="mañana", callback_at=callback)
    )
    run.send(_call(RecordDisposition, outcome="callback", callback_at=callback, callback_scope=shared))
    run.send(_call(RecordDisposition, outcome="sale", status="PERDIDO"))
    run.send(_call(RecordDisposition, outcome="later", status="PENDIENTE"))


CALLBACK_DUE = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _with_callback(run: Run) -> str:
    """Create, lock and wrap up with Ana's personal callback due at 10:00; the callback's id."""
    run.send(_create())
    run.send(_lock())
    run.send(_call(RecordDisposition, outcome="callback", callback_at=CALLBACK_DUE))
    return f"{ID}.3"


def reschedule_callback(run: Run) -> None:
    callback_id = _with_callback(run)
    later = CALLBACK_DUE.replace(hour=11)
    run.send(_call(RescheduleCallback, BETO, callback_id=callback_id, due_at=later))
    run.send(_call(RescheduleCallback, callback_id=callback_id, due_at=later))
    run.send(_call(RescheduleCallback, callback_id=f"{ID}.99", due_at=later))
    run.send(_call(RescheduleCallback, callback_id=callback_id, due_at=PLACEHOLDER))
    to_beto = {"assignee_id": BETO.user_id, "assignee_name": "beto", "assignee_team": "norte"}
    run.send(_call(RescheduleCallback, LAURA, callback_id=callback_id, scope=CallbackScope.SHARED, **to_beto))
    run.send(_call(RescheduleCallback, callback_id=callback_id, due_at=later.replace(hour=12)))


def cancel_callback(run: Run) -> None:
    callback_id = _with_callback(run)
    run.send(_call(CancelCallback, BETO, callback_id=callback_id))
    run.send(_call(CancelCallback, callback_id=callback_id, reason="ya compró"))
    run.send(_call(CancelCallback, callback_id=callback_id))
    run.send(CancelCallback(caller=ANA, now=PLACEHOLDER, contact_id=MISSING, callback_id=f"{MISSING}.3"))


def remind_callback(run: Run) -> None:
    callback_id = _with_callback(run)
    run.send(_call(RemindCallback, SYSTEM_CALLER, callback_id=callback_id, before_minutes=5))
    run.clock.advance(minutes=56)
    run.send(_call(RemindCallback, SYSTEM_CALLER, callback_id=callback_id, before_minutes=5))
    run.send(_call(RemindCallback, SYSTEM_CALLER, callback_id=callback_id, before_minutes=5))


def share_stale_callback(run: Run) -> None:
    callback_id = _with_callback(run)
    run.clock.advance(minutes=89)
    run.send(_call(ShareStaleCallback, SYSTEM_CALLER, callback_id=callback_id, grace_minutes=30))
    run.clock.advance(minutes=1)
    run.send(_call(ShareStaleCallback, SYSTEM_CALLER, callback_id=callback_id, grace_minutes=30))
    run.send(_call(ShareStaleCallback, SYSTEM_CALLER, callback_id=callback_id, grace_minutes=30))


SCENARIOS: dict[type[ContactCommand], tuple[Callable[[Run], None], list[str]]] = {
    CreateContact: (create_contact, ["ok", "AlreadyExists", "InvalidInput", "InvalidStatus"]),
    UpdateContact: (
        update_contact,
        ["ok", "ok", "VersionMismatch", "InvalidStatus", "ok", "Locked", "NotFound"],
    ),
    ChangeStatus: (
        change_status,
        ["ok", "ok", "InvalidStatus", "VersionMismatch", "ok", "TransitionRefused", "ok"],
    ),
    EditNote: (edit_note, ["ok", "ok", "VersionMismatch"]),
    LockContact: (lock_contact, ["ok", "ok", "Locked", "LockDurationTooLong", "NotFound", "ok"]),
    ExtendLock: (extend_lock, ["ok", "NotLocked", "ok", "ok", "NotLockOwner"]),
    ReleaseLock: (release_lock, ["ok", "ok", "NotLockOwner", "ok", "ok", "ok", "ok"]),
    ForceReleaseLock: (force_release_lock, ["ok", "ok", "Forbidden", "ok"]),
    ExpireLock: (expire_lock, ["ok", "ok", "ok", "ok"]),
    DeleteContact: (delete_contact, ["ok", "Forbidden", "VersionMismatch", "ok", "NotFound", "NotFound"]),
    AgeStatus: (age_status, ["ok", "ok", "ok"]),
    RecordCallRequested: (record_call_requested, ["ok", "ok", "ok", "Locked"]),
    RecordCallStarted: (record_call_started, ["ok", "ok", "ok", "CallNotOpen", "ok", "CallNotOpen"]),
    RecordCallEnded: (record_call_ended, ["ok", "ok", "ok", "ok", "CallNotOpen", "ok", "CallNotOpen"]),
    CloseStaleCall: (close_stale_call, ["ok", "ok", "ok", "ok", "ok"]),
    RecordDisposition: (
        record_disposition,
        ["ok", "ok", "Locked", "InvalidInput", "ok", "ok", "InvalidStatus", "CallbackRequired"],
    ),
    RescheduleCallback: (
        reschedule_callback,
        ["ok", "ok", "ok", "Forbidden", "ok", "CallbackNotFound", "InvalidInput", "ok", "Forbidden"],
    ),
    CancelCallback: (cancel_callback, ["ok", "ok", "ok", "Forbidden", "ok", "CallbackNotFound", "NotFound"]),
    RemindCallback: (remind_callback, ["ok", "ok", "ok", "ok", "ok", "ok"]),
    ShareStaleCallback: (share_stale_callback, ["ok", "ok", "ok", "ok", "ok", "ok"]),
}


@contextmanager
def _system(path: Path, transport: str) -> Iterator[tuple[ContactsClient, FakeClock]]:
    """A fresh contacts service on its own database, reached through ``transport``."""
    engine = create_engine(f"sqlite:///{path / f'{transport}.db'}")
    upgrade(engine)
    clock = FakeClock(START)
    store = EventStore(engine)
    service = ContactsService(engine, store, LockPolicy(10, 60), DEFAULT_CATALOGUE, clock)
    queries = ContactQueries(engine, store, DEFAULT_CATALOGUE, clock)
    try:
        if transport == "local":
            yield LocalContactsClient(service, queries), clock
        else:
            with TestClient(create_app(service, queries)) as http:
                yield HttpContactsClient(client=http), clock
    finally:
        engine.dispose()


def test_every_single_contact_command_has_a_scenario() -> None:
    single = {cls for cls in COMMAND_TYPES.values() if issubclass(cls, ContactCommand)}

    assert single == set(SCENARIOS)


@pytest.mark.parametrize("command_type", list(SCENARIOS), ids=lambda cls: cls.__name__)
def test_a_command_gives_the_same_results_and_typed_errors_on_both_transports(
    command_type: type[ContactCommand], tmp_path: Path
) -> None:
    scenario, expected_kinds = SCENARIOS[command_type]
    runs: dict[str, Run] = {}
    for transport in ("local", "http"):
        with _system(tmp_path, transport) as (port, clock):
            runs[transport] = Run(port, clock)
            scenario(runs[transport])

    assert runs["local"].kinds() == expected_kinds
    assert runs["http"].steps == runs["local"].steps
