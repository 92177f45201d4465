"""Commands and events as a public contract: stable names, JSON round trips, decoding errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contacts import asks, commands, events
from contacts.commands import (
    COMMAND_TYPES,
    AgeStatus,
    BatchResult,
    Caller,
    CallOutcome,
    ChangeStatus,
    CloseStaleCall,
    CreateContact,
    CreateOrMergeContacts,
    DeleteContact,
    EditNote,
    ExpireLock,
    ExtendLock,
    ForceReleaseLock,
    ImportRow,
    LockContact,
    Outcome,
    RecordCallEnded,
    RecordCallRequested,
    RecordCallStarted,
    ReleaseLock,
    RowOutcome,
    Source,
    UpdateContact,
    decode_command,
)
from contacts.domain import evolve
from contacts.events import (
    EVENT_TYPES,
    CallEnded,
    CallRequested,
    CallStarted,
    ContactCreated,
    ContactDeleted,
    ContactEvent,
    ContactLocked,
    ContactMerged,
    ContactUpdated,
    FieldChange,
    LockExpired,
    LockExtended,
    LockForceReleased,
    LockReleased,
    NoteEdited,
    StatusChanged,
    StatusReason,
    decode_event,
)
from contacts.message import Message
from contacts.views import ContactFilters
from kernel.roles import Role

AT = datetime(2025, 3, 1, 14, 30, 15, 123456, tzinfo=UTC)
CID = "0b6c1f5e-0000-4000-8000-000000000001"
ANA = Caller(user_id="u-ana", username="ana", role=Role.AGENT, team="norte")

EVENTS: list[ContactEvent] = [
    ContactCreated(
        contact_id=CID,
        at=AT,
        phone="8812-3456",
        phone_e164="+50688123456",
        phone_national="8812-3456",
        operator="kolbi",
        name="María José Núñez",
        status="SIN_GESTIONAR",
        note="línea 1\nlínea 2",
        email="mj@example.cr",
        extra={"cédula": "1-1111-1111"},
        list_name="marzo",
        source=Source.IMPORT,
    ),
    ContactUpdated(
        contact_id=CID, at=AT, changes=(FieldChange("name", "a", "b"), FieldChange("extra.x", "1", None))
    ),
    StatusChanged(contact_id=CID, at=AT, old="NC", new="NO_EXISTE", reason=StatusReason.AGEING),
    NoteEdited(contact_id=CID, at=AT, old="", new="nota"),
    ContactLocked(
        contact_id=CID,
        at=AT,
        locked_by="u-ana",
        locked_by_name="ana",
        locked_until=AT + timedelta(minutes=10),
        duration_minutes=10,
    ),
    LockExtended(
        contact_id=CID, at=AT, locked_by="u-ana", locked_until=AT + timedelta(minutes=20), duration_minutes=20
    ),
    LockReleased(contact_id=CID, at=AT, released_by="u-ana"),
    LockForceReleased(
        contact_id=CID,
        at=AT,
        locked_by="u-ana",
        locked_by_name="ana",
        released_by="u-lu",
        released_by_name="lucía",
    ),
    LockExpired(contact_id=CID, at=AT, locked_by="u-ana", locked_until=AT),
    ContactDeleted(contact_id=CID, at=AT, reason="duplicado"),
    ContactMerged(
        contact_id=CID,
        at=AT,
        changes=(FieldChange("note", "", "x"),),
        list_name="abril",
        source=Source.GENERATOR,
        row=7,
    ),
    events.ContactListed(contact_id=CID, at=AT, list_name="renovaciones", source=Source.IMPORT, row=3),
    CallRequested(contact_id=CID, at=AT, call_id="c1", user_id="u-ana", desk="d1"),
    CallStarted(contact_id=CID, at=AT, call_id="c1", user_id="u-ana"),
    events.DispositionRecorded(
        contact_id=CID,
        at=AT,
        user_id="u-ana",
        username="ana",
        outcome="callback",
        note="Llamar mañana",
        callback_at=AT + timedelta(days=1),
        callback_scope=commands.CallbackScope.SHARED,
        callback_id=f"{CID}.9",
        team="norte",
    ),
    events.CallbackRescheduled(
        contact_id=CID,
        at=AT,
        callback_id=f"{CID}.9",
        due_at=AT + timedelta(days=2),
        scope=commands.CallbackScope.PERSONAL,
        user_id="u-beto",
        username="beto",
        team="norte",
    ),
    events.CallbackReminded(
        contact_id=CID,
        at=AT,
        callback_id=f"{CID}.9",
        user_id="u-beto",
        scope=commands.CallbackScope.PERSONAL,
        due_at=AT + timedelta(days=2),
        contact_name="Ana",
        phone="+50688123456",
    ),
    events.CallbackShared(
        contact_id=CID, at=AT, callback_id=f"{CID}.9", user_id="u-beto", reason="Rellamada compartida"
    ),
    events.CallbackCancelled(contact_id=CID, at=AT, callback_id=f"{CID}.9", reason="ya compró"),
    CallEnded(
        contact_id=CID, at=AT, call_id="c1", user_id="u-ana", outcome=CallOutcome.BUSY, duration_seconds=12
    ),
    CallEnded(
        contact_id=CID,
        at=AT,
        call_id="c2",
        user_id="u-ana",
        outcome=CallOutcome.FAILED,
        ring_seconds=3,
        reason="El puesto no informó el inicio de la llamada a tiempo",
    ),
]

COMMANDS: list[commands.Command] = [
    CreateContact(
        contact_id=CID,
        caller=ANA,
        now=AT,
        phone="88123456",
        phone_e164="+50688123456",
        status="en progreso",
        extra={"zona": "sur"},
    ),
    UpdateContact(contact_id=CID, caller=ANA, now=AT, name="X", extra={"zona": ""}),
    UpdateContact(contact_id=CID, caller=ANA, now=AT),
    ChangeStatus(contact_id=CID, caller=ANA, now=AT, status="NC"),
    EditNote(contact_id=CID, caller=ANA, now=AT, note="n"),
    LockContact(contact_id=CID, caller=ANA, now=AT, duration_minutes=15),
    LockContact(contact_id=CID, caller=ANA, now=AT),
    ExtendLock(contact_id=CID, caller=ANA, now=AT, duration_minutes=5),
    ReleaseLock(contact_id=CID, caller=ANA, now=AT),
    ForceReleaseLock(contact_id=CID, caller=ANA, now=AT),
    ExpireLock(contact_id=CID, caller=commands.SYSTEM_CALLER, now=AT),
    DeleteContact(contact_id=CID, caller=ANA, now=AT, reason="r"),
    AgeStatus(contact_id=CID, caller=commands.SYSTEM_CALLER, now=AT),
    RecordCallRequested(contact_id=CID, caller=ANA, now=AT, call_id="c1", desk="d1"),
    RecordCallStarted(contact_id=CID, caller=ANA, now=AT, call_id="c1"),
    RecordCallEnded(
        contact_id=CID, caller=ANA, now=AT, call_id="c1", outcome=CallOutcome.ANSWERED, duration_seconds=30
    ),
    RecordCallEnded(
        contact_id=CID,
        caller=ANA,
        now=AT,
        call_id="c1",
        outcome=CallOutcome.FAILED,
        ring_seconds=4,
        reason="503 Service Unavailable",
        desk="d1",
    ),
    CloseStaleCall(contact_id=CID, caller=ANA, now=AT, call_id="c1", reason="sin respuesta del puesto"),
    CreateOrMergeContacts(
        caller=ANA,
        now=AT,
        rows=(
            ImportRow(
                row=2, e164="+50688123456", phone="88123456.0", name="A", extra={"k": "v"}, operator="kolbi"
            ),
            ImportRow(row=3, e164="+15551234567"),
        ),
        list_name="lista",
        source=Source.GENERATOR,
        job_id="job-1",
    ),
    commands.RecordDisposition(
        contact_id=CID,
        caller=ANA,
        now=AT,
        outcome="no_answer",
        status="NC",
        note="No contestó",
        callback_at=AT + timedelta(hours=2),
    ),
    commands.RescheduleCallback(
        contact_id=CID,
        caller=ANA,
        now=AT,
        callback_id=f"{CID}.9",
        due_at=AT + timedelta(hours=3),
        scope=commands.CallbackScope.SHARED,
        assignee_id="u-beto",
        assignee_name="beto",
        assignee_team="norte",
    ),
    commands.RescheduleCallback(contact_id=CID, caller=ANA, now=AT, callback_id=f"{CID}.9"),
    commands.CancelCallback(contact_id=CID, caller=ANA, now=AT, callback_id=f"{CID}.9", reason="r"),
    commands.RemindCallback(
        contact_id=CID, caller=commands.SYSTEM_CALLER, now=AT, callback_id=f"{CID}.9", before_minutes=5
    ),
    commands.ShareStaleCallback(
        contact_id=CID, caller=commands.SYSTEM_CALLER, now=AT, callback_id=f"{CID}.9", grace_minutes=30
    ),
    commands.ClaimNextContact(caller=ANA, now=AT, campaign="renovaciones"),
    commands.SaveCampaign(
        caller=ANA, now=AT, campaign_id=None, fields={"name": "Sur", "lists": ["sur"], "max_per_day": None}
    ),
    commands.AddDnc(caller=ANA, now=AT, phone="8812-3456", reason="pidió no ser llamado"),
    commands.AddDncMany(caller=ANA, now=AT, entries=(("+50688123456", "lista"), ("8812 0002", ""))),
    commands.RemoveDnc(caller=ANA, now=AT, phone="+50688123456"),
]

QUERIES: list[asks.Query[Any]] = [
    asks.GetContact(contact_id=CID),
    asks.GetContactByPhone(phone="+506 8812 3456"),
    asks.GetHistory(contact_id=CID),
    asks.ListContacts(
        filters=ContactFilters(statuses=("NC", "PERDIDO"), list_name="feria", locked=False, q="josé"),
        limit=50,
        cursor="abc",
    ),
    asks.GetLockedContacts(),
    asks.GetExistingPhones(phones=("+50688123456", "+50688123457")),
    asks.GetListedPhones(phones=("+50688123456",)),
    asks.GetStats(),
    asks.GetCallFigures(since=AT, until=AT + timedelta(hours=1), user_ids=("u-ana",)),
    asks.ListCampaigns(archived=True),
    asks.GetProgress(campaign_id="general"),
    asks.GetEligibility(contact_id=CID, campaign=None),
    asks.ListCallbacks(mine=False, team="norte", due_before=AT, contact_id=CID),
    asks.ListDnc(limit=10, offset=20),
    asks.CheckDnc(phone_e164="+50688123456"),
]


def test_every_event_command_and_query_type_has_a_sample_here() -> None:
    assert {type(e) for e in EVENTS} == set(EVENT_TYPES.values())
    assert {type(c) for c in COMMANDS} == set(COMMAND_TYPES.values())
    assert {type(q) for q in QUERIES} == set(asks.QUERY_TYPES.values())


def test_type_names_are_stable_logical_names_not_import_paths() -> None:
    for name, cls in [*EVENT_TYPES.items(), *COMMAND_TYPES.items(), *asks.QUERY_TYPES.items()]:
        assert name == f"contacts.{cls.__name__}"
        assert cls.SCHEMA_VERSION == 1


def test_the_registries_hold_every_public_event_and_command_class() -> None:
    def public(module: object, base: type[Message]) -> set[type]:
        found: set[type] = set()
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, base) and value.TYPE:
                found.add(value)
        return found

    assert public(events, ContactEvent) == set(EVENT_TYPES.values())
    assert public(commands, commands.Command) == set(COMMAND_TYPES.values())
    assert public(asks, asks.Query) == set(asks.QUERY_TYPES.values())


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_an_event_survives_json_unchanged(event: ContactEvent) -> None:
    wire = json.loads(json.dumps(event.to_data()))
    assert decode_event(event.TYPE, wire) == event


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_a_command_survives_json_unchanged(command: commands.Command) -> None:
    wire = json.loads(json.dumps(command.to_data()))
    assert decode_command(command.TYPE, wire) == command


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: type(q).__name__)
def test_a_query_survives_json_unchanged(query: asks.Query[Any]) -> None:
    wire = json.loads(json.dumps(query.to_data()))
    assert asks.decode_query(query.TYPE, wire) == query


def test_an_unknown_or_newer_query_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown query type"):
        asks.decode_query("contacts.Nope", {})
    with pytest.raises(ValueError, match="newer"):
        asks.decode_query(asks.GetStats.TYPE, {}, schema_version=2)


def test_datetimes_travel_as_iso_strings_and_enums_as_values() -> None:
    data = EVENTS[-2].to_data()
    assert data["at"] == "2025-03-01T14:30:15.123456+00:00"
    assert data["outcome"] == "busy"
    assert COMMANDS[0].to_data()["caller"] == {
        "user_id": "u-ana",
        "username": "ana",
        "role": "Agent",
        "team": "norte",
    }


def test_a_stream_rebuilt_from_stored_data_gives_the_same_state() -> None:
    history = [e for e in EVENTS if not isinstance(e, ContactDeleted)]
    direct = None
    rebuilt = None
    for event in history:
        direct = evolve(direct, event)
        rebuilt = evolve(rebuilt, decode_event(event.TYPE, json.loads(json.dumps(event.to_data()))))
    assert rebuilt == direct


def test_a_naive_datetime_on_the_wire_is_read_as_utc() -> None:
    data = EVENTS[3].to_data() | {"at": "2025-03-01T14:30:15"}
    assert decode_event(NoteEdited.TYPE, data).at == datetime(2025, 3, 1, 14, 30, 15, tzinfo=UTC)


def test_unknown_keys_are_ignored_and_missing_defaults_are_filled() -> None:
    data = {"contact_id": CID, "at": AT.isoformat(), "reason": "x", "added_in_v2": 1}
    assert decode_event(ContactDeleted.TYPE, data) == ContactDeleted(contact_id=CID, at=AT, reason="x")
    assert decode_event(ContactDeleted.TYPE, {"contact_id": CID, "at": AT.isoformat()}) == ContactDeleted(
        contact_id=CID, at=AT
    )


@pytest.mark.parametrize(
    ("type_name", "data", "version", "match"),
    [
        ("contacts.Nope", {}, 1, "unknown event type"),
        (NoteEdited.TYPE, {"contact_id": CID, "at": AT.isoformat(), "old": ""}, 1, "missing field new"),
        (NoteEdited.TYPE, {"contact_id": CID, "at": "ayer", "old": "", "new": ""}, 1, "ISO 8601"),
        (
            NoteEdited.TYPE,
            {"contact_id": CID, "at": AT.isoformat(), "old": 3, "new": ""},
            1,
            "expected a string",
        ),
        (CallEnded.TYPE, EVENTS[-1].to_data() | {"outcome": "exploded"}, 1, "not a valid CallOutcome"),
        (CallEnded.TYPE, EVENTS[-1].to_data() | {"duration_seconds": True}, 1, "expected an integer"),
        (
            ContactUpdated.TYPE,
            {"contact_id": CID, "at": AT.isoformat(), "changes": "x"},
            1,
            "expected an array",
        ),
        (NoteEdited.TYPE, EVENTS[3].to_data(), 2, "newer"),
    ],
)
def test_data_that_does_not_fit_is_refused_with_a_reason(
    type_name: str, data: dict[str, object], version: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        decode_event(type_name, data, version)


def test_an_unknown_command_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown command"):
        decode_command("contacts.Nope", {})


def test_a_caller_role_must_be_one_of_the_known_roles() -> None:
    data = COMMANDS[3].to_data()
    data["caller"]["role"] = "Jefe"
    with pytest.raises(ValueError, match="Role"):
        decode_command(ChangeStatus.TYPE, data)


def test_roles_form_a_capability_ladder() -> None:
    assert Role.TI.at_least(Role.PROJECT_MANAGER)
    assert Role.TEAM_LEAD.at_least(Role.AGENT)
    assert not Role.AGENT.at_least(Role.TEAM_LEAD)
    assert not Role.PROJECT_MANAGER.at_least(Role.TI)


def test_a_batch_result_travels_and_summarises_its_rows() -> None:
    result = BatchResult(
        outcomes=(
            RowOutcome(row=2, e164="+50688123456", outcome=Outcome.INSERTED, contact_id=CID),
            RowOutcome(row=3, e164="", outcome=Outcome.REJECTED, reason="teléfono vacío"),
            RowOutcome(row=4, e164="+50688123457", outcome=Outcome.LISTED, contact_id=CID),
        ),
        job_id="job-1",
    )
    assert BatchResult.from_data(json.loads(json.dumps(result.to_data()))) == result
    assert result.summary() == {
        "total": 3,
        "inserted": 1,
        "updated": 0,
        "listed": 1,
        "unchanged": 0,
        "locked": 0,
        "rejected": 1,
        "dnc": 0,
        "errors": [{"row": 3, "message": "teléfono vacío"}],
    }


def test_messages_are_immutable() -> None:
    event: Message = EVENTS[3]
    with pytest.raises(AttributeError):
        event.new = "otro"  # type: ignore[attr-defined]
