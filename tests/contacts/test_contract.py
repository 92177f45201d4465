"""The contacts contract: every command and every query gives the same result, or the same typed error,
in process (``LocalContactsClient`` → ``MessageBus``) and over HTTP (``HttpContactsClient`` →
``POST /commands`` and ``POST /queries``), on SQLite and on PostgreSQL.

Each registered message type has a scenario: a few commands and queries that reach it on its success and
its refusals. The scenario runs once per transport, each on a fresh database with a clock at the same
moment, and the two transcripts must be equal, result by result and error by error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from contacts_support import ANA, BETO, LAURA, PABLO, FakeClock
from fastapi.testclient import TestClient

from contacts.api import create_app
from contacts.asks import (
    QUERY_TYPES,
    CheckDnc,
    GetCallFigures,
    GetContact,
    GetContactByPhone,
    GetEligibility,
    GetExistingPhones,
    GetHistory,
    GetListedPhones,
    GetLockedContacts,
    GetProgress,
    GetStats,
    ListCallbacks,
    ListCampaigns,
    ListContacts,
    ListDnc,
    Query,
)
from contacts.campaigns import Reason
from contacts.client import ContactsClient, HttpContactsClient, LocalContactsClient
from contacts.commands import (
    COMMAND_TYPES,
    SYSTEM_CALLER,
    AddDnc,
    AddDncMany,
    AgeStatus,
    CallbackScope,
    Caller,
    CallOutcome,
    CancelCallback,
    ChangeStatus,
    ClaimNextContact,
    CloseStaleCall,
    Command,
    ContactCommand,
    CreateContact,
    CreateOrMergeContacts,
    DeleteContact,
    EditNote,
    ExpireLock,
    ExtendLock,
    ForceReleaseLock,
    ImportRow,
    LockContact,
    MergeMode,
    Outcome,
    RecordCallEnded,
    RecordCallRequested,
    RecordCallStarted,
    RecordDisposition,
    ReleaseLock,
    RemindCallback,
    RemoveDnc,
    RescheduleCallback,
    SaveCampaign,
    ShareStaleCallback,
    Source,
    UpdateContact,
)
from contacts.domain import LockPolicy, contact_id_for_phone
from contacts.errors import ContactError, InvalidInput
from contacts.handlers import ContactsService
from contacts.message import NOTHING, Message, Request
from contacts.messagebus import MessageBus
from contacts.queries import ContactQueries
from contacts.statuses import DEFAULT_CATALOGUE
from contacts.views import ContactFilters, error_to_data
from kernel.store import EventStore, create_engine
from system.migrate import upgrade

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLACEHOLDER = datetime(2000, 1, 1, tzinfo=UTC)  # every transport stamps the command with the service clock
ID = contact_id_for_phone("+50688123456")
MISSING = "6f1d8f3a-2c4b-5e7a-9b0c-1d2e3f4a5b6c"
R = TypeVar("R")

Step = tuple[Any, ...]
"""One message's outcome: ``("ok", result data)`` or ``("error", error class, error data)``."""


@dataclass
class Run:
    """One transport's run of a scenario: the port, its clock and the outcomes seen so far."""

    port: ContactsClient
    clock: FakeClock
    steps: list[Step] = field(default_factory=list)

    def send(self, command: Command[R], expected_version: int | None = None) -> R | None:
        """Run ``command`` and note what came back; its result (None after an error)."""
        return self._note(command, lambda: self.port.execute(command, expected_version))

    def ask(self, query: Query[R], caller: Caller = ANA) -> R | None:
        """Ask ``query`` as ``caller`` and note what came back; its result (None after an error)."""
        return self._note(query, lambda: self.port.ask(query, caller))

    def _note(self, message: Request[R], answer: Callable[[], R]) -> R | None:
        try:
            result = answer()
        except ContactError as error:
            self.steps.append(("error", type(error).__name__, error_to_data(error)))
            return None
        self.steps.append(("ok", message.result_to_data(result)))
        return result

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


def create_or_merge_contacts(run: Run) -> None:
    rows = (
        ImportRow(row=1, e164="+50688120001", national="8812-0001", name="Ana", status="nc"),
        ImportRow(row=2, e164="+50688120002", national="8812-0002", note="primera"),
        ImportRow(row=3, e164="+50688120001", national="8812-0001", name="Repetida"),
    )
    batch = CreateOrMergeContacts(caller=PABLO, now=PLACEHOLDER, rows=rows, list_name="feria", job_id="j-1")
    first = run.send(batch)
    assert first is not None
    assert [row.outcome for row in first.outcomes] == [Outcome.INSERTED, Outcome.INSERTED, Outcome.UNCHANGED]
    again = (ImportRow(row=1, e164="+50688120002", national="8812-0002", name="Beto", note="otra"),)
    merged = run.send(CreateOrMergeContacts(caller=PABLO, now=PLACEHOLDER, rows=again, merge=MergeMode.FILL))
    assert merged is not None
    assert [row.outcome for row in merged.outcomes] == [Outcome.UPDATED]
    run.send(_lock(BETO, contact_id=contact_id_for_phone("+50688120002")))
    renamed = (ImportRow(row=1, e164="+50688120002", national="8812-0002", name="Carla"),)
    overwrite = MergeMode.OVERWRITE
    kept = run.send(
        CreateOrMergeContacts(
            caller=PABLO, now=PLACEHOLDER, rows=renamed, source=Source.GENERATOR, merge=overwrite
        )
    )
    assert kept is not None
    assert [row.outcome for row in kept.outcomes] == [Outcome.LOCKED]
    run.send(CreateOrMergeContacts(caller=BETO, now=PLACEHOLDER, rows=again))


def claim_next_contact(run: Run) -> None:
    run.send(ClaimNextContact(caller=ANA, now=PLACEHOLDER))
    run.send(_create(PABLO, "8812-0001"))
    run.send(_create(PABLO, "8812-0002"))
    run.send(AddDnc(caller=PABLO, now=PLACEHOLDER, phone="8812-0002", reason="pidió no ser llamado"))
    claim = run.send(ClaimNextContact(caller=ANA, now=PLACEHOLDER))
    assert claim is not None
    assert claim.reason is Reason.NEVER_TRIED
    assert claim.contact.locked_by == ANA.user_id
    run.send(ClaimNextContact(caller=BETO, now=PLACEHOLDER))
    run.send(ClaimNextContact(caller=ANA, now=PLACEHOLDER, campaign="otra"))


def save_campaign(run: Run) -> None:
    rules = {"name": "Renovaciones", "max_attempts": 2, "closed_statuses": ["interesado"]}
    made = run.send(SaveCampaign(caller=PABLO, now=PLACEHOLDER, fields=rules))
    assert made is not None
    assert (made.id, made.max_attempts, made.closed_statuses) == (
        "renovaciones",
        2,
        ("INTERESADO",),
    )
    run.send(SaveCampaign(caller=PABLO, now=PLACEHOLDER, fields={"name": "Renovaciones"}))
    run.send(SaveCampaign(caller=PABLO, now=PLACEHOLDER, campaign_id="general", fields={"max_attempts": 0}))
    run.send(SaveCampaign(caller=PABLO, now=PLACEHOLDER, campaign_id="general", fields={"color": "rojo"}))
    run.send(SaveCampaign(caller=PABLO, now=PLACEHOLDER, fields={"max_attempts": 3}))
    run.send(SaveCampaign(caller=PABLO, now=PLACEHOLDER, campaign_id="nada", fields={"active": False}))
    hours = {"mon": [["08:00", "17:00"]]}
    south = {"name": "Sur", "lists": ["sur"], "teams": ["sur"], "calling_hours": hours, "max_per_day": 1}
    made = run.send(SaveCampaign(caller=PABLO, now=PLACEHOLDER, fields=south))
    assert made is not None
    assert made.to_data()["calling_hours"] == hours
    run.send(SaveCampaign(caller=PABLO, now=PLACEHOLDER, campaign_id="sur", fields={"archived": True}))
    run.send(
        SaveCampaign(caller=PABLO, now=PLACEHOLDER, campaign_id="renovaciones", fields={"active": False})
    )
    run.send(_create(PABLO, status="INTERESADO"))
    run.send(ClaimNextContact(caller=ANA, now=PLACEHOLDER, campaign="renovaciones"))


def add_dnc(run: Run) -> None:
    entry = run.send(AddDnc(caller=PABLO, now=PLACEHOLDER, phone="8812-0002", reason="pidió no ser llamado"))
    assert entry is not None
    assert entry.phone_e164 == "+50688120002"
    run.send(AddDnc(caller=PABLO, now=PLACEHOLDER, phone="+506 8812 0002", reason="otra vez"))
    run.send(AddDnc(caller=PABLO, now=PLACEHOLDER, phone="12"))


def add_dnc_many(run: Run) -> None:
    run.send(AddDnc(caller=PABLO, now=PLACEHOLDER, phone="8812-0003", reason="ya estaba"))
    pairs = (("+50688120001", "lista"), ("8812 0002", ""), ("+50688120003", "otra"), ("88120001", "x"))
    added = run.send(AddDncMany(caller=PABLO, now=PLACEHOLDER, entries=pairs))
    assert added == ["+50688120001", "+50688120002"]
    run.send(AddDncMany(caller=PABLO, now=PLACEHOLDER, entries=(("123", "corto"),)))
    run.ask(ListDnc(), PABLO)


def remove_dnc(run: Run) -> None:
    run.send(AddDnc(caller=PABLO, now=PLACEHOLDER, phone="8812-0002"))
    run.clock.advance(minutes=1)
    assert run.send(RemoveDnc(caller=PABLO, now=PLACEHOLDER, phone="+50688120002")) is True
    assert run.send(RemoveDnc(caller=PABLO, now=PLACEHOLDER, phone="8812-0002", reason="no estaba")) is False
    run.send(RemoveDnc(caller=PABLO, now=PLACEHOLDER, phone="12"))


def get_contact(run: Run) -> None:
    run.send(_create(name="José"))
    run.ask(GetContact(contact_id=ID))
    run.ask(GetContact(contact_id=MISSING))
    run.ask(GetContact(contact_id="no-es-un-id"))
    run.send(_call(DeleteContact, PABLO))
    run.ask(GetContact(contact_id=ID))


def get_contact_by_phone(run: Run) -> None:
    run.send(_create(name="José"))
    run.ask(GetContactByPhone(phone="+506 8812 3456"))
    run.ask(GetContactByPhone(phone="8812-0000"))
    run.ask(GetContactByPhone(phone="12"))


def get_history(run: Run) -> None:
    run.send(_create())
    run.send(_call(EditNote, note="llamar tarde"))
    run.send(_lock())
    history = run.ask(GetHistory(contact_id=ID))
    assert history is not None
    assert [entry.version for entry in history][-1] == 3
    run.ask(GetHistory(contact_id=MISSING))


def list_contacts(run: Run) -> None:
    run.send(_create(name="José", status="NC"))
    run.send(_create(phone="8812-0001", name="Ana", list_name="feria"))
    run.send(_create(phone="8812-0002", name="Beto", list_name="feria"))
    page = run.ask(ListContacts(limit=2))
    assert page is not None
    assert page.next_cursor is not None
    run.ask(ListContacts(limit=2, cursor=page.next_cursor))
    run.ask(ListContacts(filters=ContactFilters(q="jose")))
    run.ask(ListContacts(filters=ContactFilters(statuses=("NC",), locked=False)))
    run.ask(ListContacts(filters=ContactFilters(list_name="feria", operator="kolbi")))
    run.ask(ListContacts(limit=0))
    run.ask(ListContacts(limit=2, cursor="no-es-un-cursor"))


def get_locked_contacts(run: Run) -> None:
    run.send(_create())
    run.send(_create(phone="8812-0001"))
    run.ask(GetLockedContacts())
    run.send(_lock(minutes=10))
    locked = run.ask(GetLockedContacts())
    assert locked is not None
    assert [contact.id for contact in locked] == [ID]
    run.clock.advance(minutes=11)
    run.ask(GetLockedContacts())


def get_existing_phones(run: Run) -> None:
    run.ask(GetExistingPhones(phones=("+50688123456",)))
    run.send(_create())
    found = run.ask(GetExistingPhones(phones=("+50688123456", "+50688123457", "+50688123456")))
    assert found == {"+50688123456"}
    run.ask(GetExistingPhones(phones=()))


def get_listed_phones(run: Run) -> None:
    pairs = (("+50688120001", "lista"), ("+50688120003", ""))
    run.send(AddDncMany(caller=PABLO, now=PLACEHOLDER, entries=pairs))
    listed = run.ask(GetListedPhones(phones=("+50688120001", "+50688120003", "+50688120009")))
    assert listed == {"+50688120001", "+50688120003"}
    run.ask(GetListedPhones(phones=()))


def get_stats(run: Run) -> None:
    run.ask(GetStats())
    run.send(_create(status="NC"))
    run.send(_create(phone="8812-0001"))
    run.send(_lock())
    stats = run.ask(GetStats())
    assert stats is not None
    assert (stats["total"], stats["locked"], stats["by_status"]["NC"]) == (2, 1, 1)


def get_call_figures(run: Run) -> None:
    _call_requested(run)
    run.send(_call(RecordCallStarted, call_id="c-1", desk="desk-1"))
    run.clock.advance(seconds=40)
    ended = {"call_id": "c-1", "outcome": CallOutcome.ANSWERED, "duration_seconds": 30, "ring_seconds": 5}
    run.send(_call(RecordCallEnded, desk="desk-1", **ended))
    everyone = run.ask(GetCallFigures(), PABLO)
    assert everyone is not None
    assert [(a.user_id, a.figures.made) for a in everyone] == [(ANA.user_id, 1)]
    run.ask(GetCallFigures(user_ids=(BETO.user_id,)), PABLO)
    run.ask(GetCallFigures(user_ids=()), PABLO)
    run.ask(GetCallFigures(since=START, until=START + timedelta(hours=1)), PABLO)
    run.ask(GetCallFigures(since=START + timedelta(hours=1), until=START), PABLO)


def list_campaigns(run: Run) -> None:
    run.ask(ListCampaigns())
    run.send(SaveCampaign(caller=PABLO, now=PLACEHOLDER, fields={"name": "Sur", "lists": ["sur"]}))
    run.send(SaveCampaign(caller=PABLO, now=PLACEHOLDER, campaign_id="sur", fields={"archived": True}))
    shown = run.ask(ListCampaigns())
    assert shown is not None
    assert [campaign.id for campaign in shown] == ["general"]
    everything = run.ask(ListCampaigns(archived=True), PABLO)
    assert everything is not None
    assert [campaign.id for campaign in everything] == ["general", "sur"]


def get_progress(run: Run) -> None:
    run.ask(GetProgress(campaign_id="general"), PABLO)
    run.send(_create(PABLO))
    run.send(_create(PABLO, "8812-0001", status="COMPLETADA"))
    run.send(AddDnc(caller=PABLO, now=PLACEHOLDER, phone="8812-0001"))
    run.ask(GetProgress(campaign_id="general"), PABLO)
    run.ask(GetProgress(campaign_id="nada"), PABLO)


def get_eligibility(run: Run) -> None:
    run.send(_create(PABLO))
    run.send(_create(PABLO, "8812-0002"))
    run.send(AddDnc(caller=PABLO, now=PLACEHOLDER, phone="8812-0002"))
    run.ask(GetEligibility(contact_id=ID))
    why = run.ask(GetEligibility(contact_id=contact_id_for_phone("+50688120002")), BETO)
    assert why is not None
    assert [finding.reason for finding in why.findings] == [Reason.DNC]
    run.ask(GetEligibility(contact_id=MISSING))
    run.ask(GetEligibility(contact_id=ID, campaign="otra"))
    south = {
        "name": "Sur",
        "lists": ["sur"],
        "teams": ["sur"],
        "calling_hours": {"sun": [["08:00", "09:00"]]},
    }
    run.send(SaveCampaign(caller=PABLO, now=PLACEHOLDER, fields=south))
    run.send(_create(PABLO, "8812-0101", list_name="sur"))
    why = run.ask(GetEligibility(contact_id=contact_id_for_phone("+50688120101"), campaign="sur"))
    assert why is not None
    assert [f.reason for f in why.findings] == [
        Reason.NOT_YOUR_TEAM,
        Reason.OUTSIDE_HOURS,
    ]


def list_callbacks(run: Run) -> None:
    run.send(_create(name="Rosa"))
    run.send(_lock())
    due = START + timedelta(hours=2)
    run.send(_call(RecordDisposition, outcome="later", status="PENDIENTE", callback_at=due))
    mine = run.ask(ListCallbacks())
    assert mine is not None
    assert [(c.contact_id, c.name, c.scope, c.due_at) for c in mine] == [(ID, "Rosa", "personal", due)]
    callback_id = mine[0].callback_id
    run.ask(ListCallbacks(), BETO)
    run.ask(ListCallbacks(mine=False), LAURA)
    run.ask(ListCallbacks(team="norte"), PABLO)
    run.ask(ListCallbacks(team="sur"), PABLO)
    run.ask(ListCallbacks(due_before=START))
    run.ask(ListCallbacks(team="sur"), LAURA)
    to_beto = {"assignee_id": BETO.user_id, "assignee_name": "beto", "assignee_team": "norte"}
    run.send(_call(RescheduleCallback, LAURA, callback_id=callback_id, scope=CallbackScope.SHARED, **to_beto))
    run.ask(ListCallbacks())
    run.ask(ListCallbacks(mine=False, contact_id=ID), PABLO)
    run.ask(ListCallbacks(mine=False, contact_id=MISSING), PABLO)
    run.send(_call(CancelCallback, BETO, callback_id=callback_id))
    run.ask(ListCallbacks(mine=False), PABLO)


def list_dnc(run: Run) -> None:
    run.ask(ListDnc(), PABLO)
    run.send(AddDnc(caller=PABLO, now=PLACEHOLDER, phone="8812-0001", reason="uno"))
    run.clock.advance(minutes=1)
    run.send(AddDnc(caller=PABLO, now=PLACEHOLDER, phone="8812-0002", reason="dos"))
    newest = run.ask(ListDnc(), PABLO)
    assert newest is not None
    assert [entry.reason for entry in newest] == ["dos", "uno"]
    run.ask(ListDnc(limit=1, offset=1), PABLO)
    run.ask(ListDnc(limit=0), PABLO)
    run.ask(ListDnc(offset=-1), PABLO)


def check_dnc(run: Run) -> None:
    run.ask(CheckDnc(phone_e164="+50688120002"))
    run.send(AddDnc(caller=PABLO, now=PLACEHOLDER, phone="8812-0002", reason="pidió no ser llamado"))
    run.ask(CheckDnc(phone_e164="+50688120002"))
    run.ask(CheckDnc(phone_e164="+50688120003"))


SCENARIOS: dict[type[Message], tuple[Callable[[Run], None], list[str]]] = {
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
    CreateOrMergeContacts: (create_or_merge_contacts, ["ok", "ok", "ok", "ok", "Forbidden"]),
    ClaimNextContact: (
        claim_next_contact,
        ["QueueEmpty", "ok", "ok", "ok", "ok", "QueueEmpty", "CampaignNotFound"],
    ),
    SaveCampaign: (
        save_campaign,
        [
            "ok",
            "CampaignExists",
            "InvalidInput",
            "InvalidInput",
            "InvalidInput",
            "CampaignNotFound",
            "ok",
            "ok",
            "ok",
            "ok",
            "QueueEmpty",
        ],
    ),
    AddDnc: (add_dnc, ["ok", "ok", "InvalidInput"]),
    AddDncMany: (add_dnc_many, ["ok", "ok", "InvalidInput", "ok"]),
    RemoveDnc: (remove_dnc, ["ok", "ok", "ok", "InvalidInput"]),
    GetContact: (get_contact, ["ok", "ok", "NotFound", "NotFound", "ok", "NotFound"]),
    GetContactByPhone: (get_contact_by_phone, ["ok", "ok", "NotFound", "InvalidInput"]),
    GetHistory: (get_history, ["ok", "ok", "ok", "ok", "NotFound"]),
    ListContacts: (
        list_contacts,
        ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "InvalidInput", "InvalidInput"],
    ),
    GetLockedContacts: (get_locked_contacts, ["ok", "ok", "ok", "ok", "ok", "ok"]),
    GetExistingPhones: (get_existing_phones, ["ok", "ok", "ok", "ok"]),
    GetListedPhones: (get_listed_phones, ["ok", "ok", "ok"]),
    GetStats: (get_stats, ["ok", "ok", "ok", "ok", "ok"]),
    GetCallFigures: (
        get_call_figures,
        ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "InvalidInput"],
    ),
    ListCampaigns: (list_campaigns, ["ok", "ok", "ok", "ok", "ok"]),
    GetProgress: (get_progress, ["ok", "ok", "ok", "ok", "ok", "CampaignNotFound"]),
    GetEligibility: (
        get_eligibility,
        ["ok", "ok", "ok", "ok", "ok", "NotFound", "CampaignNotFound", "ok", "ok", "ok"],
    ),
    ListCallbacks: (
        list_callbacks,
        [
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "Forbidden",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
        ],
    ),
    ListDnc: (list_dnc, ["ok", "ok", "ok", "ok", "ok", "InvalidInput", "InvalidInput"]),
    CheckDnc: (check_dnc, ["ok", "ok", "DoNotCall", "ok"]),
}


@pytest.fixture(params=["sqlite", "postgres"])
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A maker of fresh, empty databases on one backend by name: a SQLite file, or a PostgreSQL schema of
    its own (dropped afterwards, as ``postgres_url`` does)."""
    if request.param == "sqlite":
        yield lambda name: f"sqlite:///{tmp_path / f'{name}.db'}"
        return
    server = str(request.getfixturevalue("postgres_server_url"))
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    schemas: list[str] = []

    def make(_: str) -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        url = sa.make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    try:
        yield make
    finally:
        with admin.connect() as conn:
            for schema in schemas:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def _system(url: str, transport: str) -> Iterator[tuple[ContactsClient, FakeClock]]:
    """A fresh contacts service on the database at ``url``, reached through ``transport``."""
    engine = create_engine(url)
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


def test_every_command_and_query_has_a_scenario() -> None:
    registered: set[type[Message]] = {*COMMAND_TYPES.values(), *QUERY_TYPES.values()}

    assert registered == set(SCENARIOS)


def test_every_registered_message_has_a_handler_and_every_handler_a_registry_entry(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'bus.db'}")
    try:
        store = EventStore(engine)
        service = ContactsService(engine, store, LockPolicy(10, 60), DEFAULT_CATALOGUE)
        bus = MessageBus(service, ContactQueries(engine, store, DEFAULT_CATALOGUE))
    finally:
        engine.dispose()

    assert set(bus.command_handlers) == set(COMMAND_TYPES.values())
    assert set(bus.query_handlers) == set(QUERY_TYPES.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownQuery(Query[None]):
    """A query the service has no entry for."""

    TYPE = "contacts.UnknownQuery"
    RESULT = NOTHING


@pytest.mark.parametrize("transport", ["local", "http"])
def test_a_query_the_service_does_not_know_is_refused_as_invalid_input(
    tmp_path: Path, transport: str
) -> None:
    system = _system(f"sqlite:///{tmp_path / 'unknown.db'}", transport)
    with system as (port, _), pytest.raises(InvalidInput) as refused:
        port.ask(UnknownQuery(), ANA)

    assert refused.value.field == "query"
    assert "UnknownQuery" in refused.value.message


@pytest.mark.parametrize("message_type", list(SCENARIOS), ids=lambda cls: cls.__name__)
def test_a_message_gives_the_same_results_and_typed_errors_on_both_transports(
    message_type: type[Message], new_database: Callable[[str], str]
) -> None:
    scenario, expected_kinds = SCENARIOS[message_type]
    runs: dict[str, Run] = {}
    for transport in ("local", "http"):
        with _system(new_database(transport), transport) as (port, clock):
            runs[transport] = Run(port, clock)
            scenario(runs[transport])

    assert runs["local"].kinds() == expected_kinds
    assert runs["http"].steps == runs["local"].steps
