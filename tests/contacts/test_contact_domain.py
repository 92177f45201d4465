"""The contact aggregate, given events / when command / then events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given as hgiven
from hypothesis import settings
from hypothesis import strategies as st

from contacts.commands import (
    SYSTEM_CALLER,
    AgeStatus,
    Caller,
    CallOutcome,
    ChangeStatus,
    CloseStaleCall,
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
    ReleaseLock,
    Source,
    UpdateContact,
)
from contacts.domain import (
    DNC_ROW_REASON,
    ContactState,
    LockPolicy,
    contact_id_for_phone,
    decide,
    decide_batch,
    decide_import_row,
    evolve,
)
from contacts.errors import (
    AlreadyExists,
    CallNotOpen,
    Forbidden,
    InvalidInput,
    InvalidStatus,
    LockDurationTooLong,
    Locked,
    NotFound,
    NotLocked,
    NotLockOwner,
)
from contacts.events import (
    CallEnded,
    CallRequested,
    CallStarted,
    ContactCreated,
    ContactDeleted,
    ContactEvent,
    ContactListed,
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
)
from contacts.statuses import add_months
from kernel.roles import Role

T0 = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
E164 = "+50688123456"
CID = contact_id_for_phone(E164)

ANA = Caller(user_id="u-ana", username="ana", role=Role.AGENT, team="norte")
BETO = Caller(user_id="u-beto", username="beto", role=Role.AGENT, team="norte")
LUCIA = Caller(user_id="u-lucia", username="lucia", role=Role.TEAM_LEAD, team="norte")
PABLO = Caller(user_id="u-pablo", username="pablo", role=Role.PROJECT_MANAGER)
TERE = Caller(user_id="u-tere", username="tere", role=Role.TI)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def created(at: datetime = T0, **overrides: object) -> ContactCreated:
    fields: dict[str, object] = {
        "contact_id": CID,
        "at": at,
        "phone": "8812-3456",
        "phone_e164": E164,
        "phone_national": "8812-3456",
        "operator": "kolbi",
        "name": "María Pérez",
        "status": "SIN_GESTIONAR",
        "note": "",
        "email": "",
        "extra": {},
        "list_name": "marzo",
    }
    fields.update(overrides)
    return ContactCreated(**fields)  # type: ignore[arg-type]


def locked_by(caller: Caller, at: datetime = T0, duration: int = 10) -> ContactLocked:
    return ContactLocked(
        contact_id=CID,
        at=at,
        locked_by=caller.user_id,
        locked_by_name=caller.username,
        locked_until=at + minutes(duration),
        duration_minutes=duration,
    )


def given(*events: ContactEvent) -> ContactState | None:
    state: ContactState | None = None
    for event in events:
        state = evolve(state, event)
    return state


def when(
    history: list[ContactEvent], command: ContactCommand, policy: LockPolicy | None = None
) -> list[ContactEvent]:
    return decide(given(*history), command, policy or LockPolicy())


# --- creating --------------------------------------------------------------------------------------


def create_command(**overrides: object) -> CreateContact:
    fields: dict[str, object] = {
        "contact_id": CID,
        "caller": ANA,
        "now": T0,
        "phone": "8812-3456",
        "phone_e164": E164,
        "phone_national": "8812-3456",
        "operator": "kolbi",
        "name": "  María   Pérez ",
    }
    fields.update(overrides)
    return CreateContact(**fields)  # type: ignore[arg-type]


def test_creating_a_new_phone_records_the_contact_with_the_default_status() -> None:
    events = when([], create_command())
    assert events == [
        ContactCreated(
            contact_id=CID,
            at=T0,
            phone="8812-3456",
            phone_e164=E164,
            phone_national="8812-3456",
            operator="kolbi",
            name="María Pérez",
            status="SIN_GESTIONAR",
            source=Source.API,
        )
    ]


def test_creating_a_phone_that_exists_is_refused_naming_the_existing_contact() -> None:
    with pytest.raises(AlreadyExists) as refused:
        when([created()], create_command())
    assert refused.value.existing_id == CID
    assert E164 in refused.value.message


def test_every_spelling_of_one_number_maps_to_one_contact_id() -> None:
    assert contact_id_for_phone("+50688123456") == CID
    assert contact_id_for_phone("+15551234567") != CID


def test_creating_with_a_legacy_status_spelling_stores_the_catalogue_code() -> None:
    [event] = when([], create_command(status="en progreso"))
    assert isinstance(event, ContactCreated)
    assert event.status == "EN_PROGRESO"


def test_creating_with_an_unknown_status_is_refused() -> None:
    with pytest.raises(InvalidStatus, match="Estado desconocido"):
        when([], create_command(status="LLAMAR_MAÑANA"))


def test_creating_with_a_malformed_email_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as refused:
        when([], create_command(email="maria@"))
    assert refused.value.field == "email"


def test_creating_with_a_phone_not_in_e164_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        when([], create_command(phone_e164="88123456"))
    assert refused.value.field == "phone"


def test_a_deleted_contact_can_be_created_again_on_its_stream() -> None:
    deleted = ContactDeleted(contact_id=CID, at=T0 + minutes(1))
    [event] = when([created(), deleted], create_command(now=T0 + minutes(2), name="Nueva"))
    state = given(created(), deleted, event)
    assert state is not None
    assert not state.deleted
    assert state.name == "Nueva"
    assert state.version == 3


def test_a_command_without_a_timezone_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        when([], create_command(now=datetime(2025, 1, 1, 9, 0)))
    assert refused.value.field == "now"


# --- updating --------------------------------------------------------------------------------------


def test_an_update_records_only_the_fields_that_changed_with_old_and_new_values() -> None:
    events = when(
        [created()],
        UpdateContact(contact_id=CID, caller=ANA, now=T0, name="María P. Solís", email="maria@example.cr"),
    )
    assert events == [
        ContactUpdated(
            contact_id=CID,
            at=T0,
            changes=(
                FieldChange("name", "María Pérez", "María P. Solís"),
                FieldChange("email", "", "maria@example.cr"),
            ),
        )
    ]


def test_an_update_that_changes_nothing_emits_nothing() -> None:
    command = UpdateContact(
        contact_id=CID, caller=ANA, now=T0, name=" María Pérez", status="sin gestionar", note=""
    )
    assert when([created()], command) == []


def test_a_status_in_an_update_is_a_status_change_by_an_agent() -> None:
    events = when([created()], UpdateContact(contact_id=CID, caller=ANA, now=T0, status="Interesado"))
    assert events == [
        StatusChanged(contact_id=CID, at=T0, old="SIN_GESTIONAR", new="INTERESADO", reason=StatusReason.AGENT)
    ]


def test_a_blank_status_in_an_update_means_not_given() -> None:
    assert when([created()], UpdateContact(contact_id=CID, caller=ANA, now=T0, status="  ")) == []


def test_a_note_in_an_update_is_recorded_as_an_edited_note() -> None:
    events = when([created()], UpdateContact(contact_id=CID, caller=ANA, now=T0, note=" Llamar el lunes "))
    assert events == [NoteEdited(contact_id=CID, at=T0, old="", new="Llamar el lunes")]


def test_an_update_sets_and_removes_extra_fields() -> None:
    history: list[ContactEvent] = [created(extra={"cedula": "1-1111-1111", "zona": "norte"})]
    command = UpdateContact(contact_id=CID, caller=ANA, now=T0, extra={"zona": "", "plan": "prepago"})
    events = when(history, command)
    assert events == [
        ContactUpdated(
            contact_id=CID,
            at=T0,
            changes=(FieldChange("extra.zona", "norte", None), FieldChange("extra.plan", None, "prepago")),
        )
    ]
    state = given(*history, *events)
    assert state is not None
    assert state.extra == {"cedula": "1-1111-1111", "plan": "prepago"}


def test_an_update_with_an_unknown_status_changes_nothing_at_all() -> None:
    with pytest.raises(InvalidStatus):
        when([created()], UpdateContact(contact_id=CID, caller=ANA, now=T0, name="Otro", status="FOO"))


def test_another_agent_cannot_update_a_contact_locked_by_someone_else() -> None:
    with pytest.raises(Locked) as refused:
        when([created(), locked_by(ANA)], UpdateContact(contact_id=CID, caller=BETO, now=T0, name="X"))
    assert refused.value.locked_by == ANA.user_id
    assert refused.value.locked_by_name == "ana"
    assert refused.value.locked_until == T0 + minutes(10)
    assert "ana" in refused.value.message


def test_the_lock_holder_may_update_the_contact() -> None:
    events = when([created(), locked_by(ANA)], UpdateContact(contact_id=CID, caller=ANA, now=T0, name="X"))
    assert [type(e) for e in events] == [ContactUpdated]


def test_anyone_may_update_once_the_lock_has_lapsed_even_before_it_is_marked_expired() -> None:
    events = when(
        [created(), locked_by(ANA)],
        UpdateContact(contact_id=CID, caller=BETO, now=T0 + minutes(10), name="X"),
    )
    assert [type(e) for e in events] == [ContactUpdated]


def test_updating_a_contact_that_does_not_exist_is_not_found() -> None:
    with pytest.raises(NotFound):
        when([], UpdateContact(contact_id=CID, caller=ANA, now=T0, name="X"))


# --- status and note -------------------------------------------------------------------------------


def test_an_agent_sets_a_status_by_its_legacy_spelling() -> None:
    events = when([created()], ChangeStatus(contact_id=CID, caller=ANA, now=T0, status="NO CONTACTADO"))
    assert events == [
        StatusChanged(
            contact_id=CID, at=T0, old="SIN_GESTIONAR", new="NO_CONTACTO", reason=StatusReason.AGENT
        )
    ]


def test_setting_the_same_status_again_emits_nothing() -> None:
    assert when([created()], ChangeStatus(contact_id=CID, caller=ANA, now=T0, status="sin-gestionar")) == []


@pytest.mark.parametrize("text", ["", "   ", "LLAMAR_LUEGO", "interesada?"])
def test_an_unknown_or_empty_status_is_refused(text: str) -> None:
    with pytest.raises(InvalidStatus):
        when([created()], ChangeStatus(contact_id=CID, caller=ANA, now=T0, status=text))


def test_another_agent_cannot_change_the_status_of_a_locked_contact() -> None:
    with pytest.raises(Locked):
        when([created(), locked_by(ANA)], ChangeStatus(contact_id=CID, caller=BETO, now=T0, status="NC"))


def test_editing_the_note_records_old_and_new_text() -> None:
    history: list[ContactEvent] = [created(note="primera")]
    events = when(history, EditNote(contact_id=CID, caller=ANA, now=T0, note="segunda"))
    assert events == [NoteEdited(contact_id=CID, at=T0, old="primera", new="segunda")]
    assert when([*history, *events], EditNote(contact_id=CID, caller=ANA, now=T0, note="segunda")) == []


def test_another_agent_cannot_edit_the_note_of_a_locked_contact() -> None:
    with pytest.raises(Locked):
        when([created(), locked_by(ANA)], EditNote(contact_id=CID, caller=BETO, now=T0, note="x"))


def test_a_note_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        when([created()], EditNote(contact_id=CID, caller=ANA, now=T0, note="x" * 10_001))
    assert refused.value.field == "note"


# --- locks -----------------------------------------------------------------------------------------


def test_locking_a_free_contact_holds_it_for_the_default_ten_minutes() -> None:
    events = when([created()], LockContact(contact_id=CID, caller=ANA, now=T0))
    assert events == [locked_by(ANA, T0, 10)]


def test_locking_for_a_chosen_duration() -> None:
    events = when([created()], LockContact(contact_id=CID, caller=ANA, now=T0, duration_minutes=30))
    assert events == [locked_by(ANA, T0, 30)]


def test_the_default_and_maximum_come_from_the_policy() -> None:
    policy = LockPolicy(default_minutes=5, max_minutes=90)
    assert when([created()], LockContact(contact_id=CID, caller=ANA, now=T0), policy) == [
        locked_by(ANA, T0, 5)
    ]
    command = LockContact(contact_id=CID, caller=ANA, now=T0, duration_minutes=90)
    assert when([created()], command, policy) == [locked_by(ANA, T0, 90)]


def test_a_lock_longer_than_the_maximum_is_refused() -> None:
    with pytest.raises(LockDurationTooLong) as refused:
        when([created()], LockContact(contact_id=CID, caller=ANA, now=T0, duration_minutes=61))
    assert refused.value.max_minutes == 60
    assert "60 minutos" in refused.value.message


@pytest.mark.parametrize("duration", [0, -5])
def test_a_lock_of_no_time_is_refused(duration: int) -> None:
    with pytest.raises(InvalidInput):
        when([created()], LockContact(contact_id=CID, caller=ANA, now=T0, duration_minutes=duration))


def test_a_policy_whose_default_exceeds_its_maximum_is_refused() -> None:
    with pytest.raises(ValueError, match="default_minutes"):
        LockPolicy(default_minutes=30, max_minutes=20)


def test_second_agent_cannot_lock_a_locked_contact() -> None:
    with pytest.raises(Locked) as refused:
        when([created(), locked_by(ANA)], LockContact(contact_id=CID, caller=BETO, now=T0 + minutes(9)))
    assert refused.value.locked_by == ANA.user_id


def test_the_holder_locking_again_renews_the_lock_from_now() -> None:
    events = when([created(), locked_by(ANA)], LockContact(contact_id=CID, caller=ANA, now=T0 + minutes(8)))
    assert events == [
        LockExtended(
            contact_id=CID,
            at=T0 + minutes(8),
            locked_by=ANA.user_id,
            locked_until=T0 + minutes(18),
            duration_minutes=10,
        )
    ]


def test_renewing_never_shortens_a_lock() -> None:
    history: list[ContactEvent] = [created(), locked_by(ANA, duration=60)]
    assert when(history, LockContact(contact_id=CID, caller=ANA, now=T0 + minutes(1))) == []


def test_a_lock_lapses_exactly_at_its_expiry_and_another_agent_may_take_it() -> None:
    history: list[ContactEvent] = [created(), locked_by(ANA)]
    with pytest.raises(Locked):
        when(history, LockContact(contact_id=CID, caller=BETO, now=T0 + minutes(10) - timedelta(seconds=1)))
    events = when(history, LockContact(contact_id=CID, caller=BETO, now=T0 + minutes(10)))
    assert events == [
        LockExpired(
            contact_id=CID, at=T0 + minutes(10), locked_by=ANA.user_id, locked_until=T0 + minutes(10)
        ),
        locked_by(BETO, T0 + minutes(10)),
    ]
    state = given(*history, *events)
    assert state is not None
    assert state.lock_holder(T0 + minutes(11)) == BETO.user_id


def test_the_holder_extends_the_lock() -> None:
    events = when(
        [created(), locked_by(ANA)],
        ExtendLock(contact_id=CID, caller=ANA, now=T0 + minutes(5), duration_minutes=20),
    )
    assert events == [
        LockExtended(
            contact_id=CID,
            at=T0 + minutes(5),
            locked_by=ANA.user_id,
            locked_until=T0 + minutes(25),
            duration_minutes=20,
        )
    ]


def test_an_extension_beyond_the_maximum_is_refused() -> None:
    with pytest.raises(LockDurationTooLong):
        when(
            [created(), locked_by(ANA)], ExtendLock(contact_id=CID, caller=ANA, now=T0, duration_minutes=120)
        )


def test_only_the_holder_may_extend_a_lock() -> None:
    with pytest.raises(NotLockOwner):
        when([created(), locked_by(ANA)], ExtendLock(contact_id=CID, caller=LUCIA, now=T0))


@pytest.mark.parametrize("at", [T0 + minutes(10), T0 + minutes(30)])
def test_a_lapsed_lock_cannot_be_extended(at: datetime) -> None:
    with pytest.raises(NotLocked):
        when([created(), locked_by(ANA)], ExtendLock(contact_id=CID, caller=ANA, now=at))


def test_extending_a_contact_that_was_never_locked_is_refused() -> None:
    with pytest.raises(NotLocked):
        when([created()], ExtendLock(contact_id=CID, caller=ANA, now=T0))


def test_the_holder_releases_the_lock() -> None:
    history: list[ContactEvent] = [created(), locked_by(ANA)]
    events = when(history, ReleaseLock(contact_id=CID, caller=ANA, now=T0 + minutes(1)))
    assert events == [LockReleased(contact_id=CID, at=T0 + minutes(1), released_by=ANA.user_id)]
    state = given(*history, *events)
    assert state is not None
    assert state.locked_by is None
    assert state.locked_until is None
    assert not state.is_locked(T0 + minutes(1))


def test_releasing_ones_own_lapsed_lock_clears_it_and_others_lapsed_lock_is_left_to_expire() -> None:
    history: list[ContactEvent] = [created(), locked_by(ANA)]
    later = T0 + minutes(15)
    assert when(history, ReleaseLock(contact_id=CID, caller=ANA, now=later)) == [
        LockReleased(contact_id=CID, at=later, released_by=ANA.user_id)
    ]
    assert when(history, ReleaseLock(contact_id=CID, caller=BETO, now=later)) == []


def test_a_phone_with_stray_spaces_in_a_batch_lands_on_its_contact() -> None:
    decision = decide_batch({}, batch(row(e164=f" {E164} ")))
    assert list(decision.events) == [CID]
    assert decision.result.outcomes[0].contact_id == CID


def test_releasing_a_free_contact_does_nothing() -> None:
    assert when([created()], ReleaseLock(contact_id=CID, caller=ANA, now=T0)) == []


def test_an_agent_cannot_release_another_agents_lock() -> None:
    with pytest.raises(NotLockOwner) as refused:
        when([created(), locked_by(ANA)], ReleaseLock(contact_id=CID, caller=BETO, now=T0))
    assert refused.value.locked_by == ANA.user_id


@pytest.mark.parametrize("supervisor", [LUCIA, PABLO, TERE], ids=["TeamLead", "ProjectManager", "TI"])
def test_a_supervisor_releasing_another_users_lock_force_releases_it(supervisor: Caller) -> None:
    events = when([created(), locked_by(ANA)], ReleaseLock(contact_id=CID, caller=supervisor, now=T0))
    assert events == [
        LockForceReleased(
            contact_id=CID,
            at=T0,
            locked_by=ANA.user_id,
            locked_by_name="ana",
            released_by=supervisor.user_id,
            released_by_name=supervisor.username,
        )
    ]


@pytest.mark.parametrize("supervisor", [LUCIA, PABLO, TERE], ids=["TeamLead", "ProjectManager", "TI"])
def test_a_supervisor_force_releases_a_lock(supervisor: Caller) -> None:
    history: list[ContactEvent] = [created(), locked_by(ANA)]
    events = when(history, ForceReleaseLock(contact_id=CID, caller=supervisor, now=T0 + minutes(2)))
    assert [type(e) for e in events] == [LockForceReleased]
    state = given(*history, *events)
    assert state is not None
    assert not state.is_locked(T0 + minutes(2))
    assert when([*history, *events], LockContact(contact_id=CID, caller=BETO, now=T0 + minutes(2)))


def test_an_agent_may_not_force_release() -> None:
    with pytest.raises(Forbidden) as refused:
        when([created(), locked_by(ANA)], ForceReleaseLock(contact_id=CID, caller=BETO, now=T0))
    assert refused.value.role == "Agent"


def test_force_releasing_a_free_contact_does_nothing() -> None:
    assert when([created()], ForceReleaseLock(contact_id=CID, caller=LUCIA, now=T0)) == []


def test_force_releasing_ones_own_lock_is_a_plain_release() -> None:
    events = when([created(), locked_by(LUCIA)], ForceReleaseLock(contact_id=CID, caller=LUCIA, now=T0))
    assert events == [LockReleased(contact_id=CID, at=T0, released_by=LUCIA.user_id)]


def test_expiring_a_lock_that_is_still_valid_does_nothing() -> None:
    history: list[ContactEvent] = [created(), locked_by(ANA)]
    now = T0 + minutes(10) - timedelta(microseconds=1)
    assert when(history, ExpireLock(contact_id=CID, caller=SYSTEM_CALLER, now=now)) == []


def test_a_lapsed_lock_expires_once() -> None:
    history: list[ContactEvent] = [created(), locked_by(ANA)]
    expire = ExpireLock(contact_id=CID, caller=SYSTEM_CALLER, now=T0 + minutes(10))
    events = when(history, expire)
    assert events == [
        LockExpired(contact_id=CID, at=T0 + minutes(10), locked_by=ANA.user_id, locked_until=T0 + minutes(10))
    ]
    assert when([*history, *events], expire) == []


def test_expiring_a_renewed_lock_does_nothing() -> None:
    renewed = LockExtended(
        contact_id=CID,
        at=T0 + minutes(9),
        locked_by=ANA.user_id,
        locked_until=T0 + minutes(19),
        duration_minutes=10,
    )
    expire = ExpireLock(contact_id=CID, caller=SYSTEM_CALLER, now=T0 + minutes(10))
    assert when([created(), locked_by(ANA), renewed], expire) == []


def test_expiring_a_released_missing_or_deleted_contact_does_nothing() -> None:
    expire = ExpireLock(contact_id=CID, caller=SYSTEM_CALLER, now=T0 + minutes(30))
    released = LockReleased(contact_id=CID, at=T0, released_by=ANA.user_id)
    assert when([created(), locked_by(ANA), released], expire) == []
    assert when([], expire) == []
    assert when([created(), ContactDeleted(contact_id=CID, at=T0)], expire) == []


# --- deleting --------------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", [ANA, LUCIA], ids=["Agent", "TeamLead"])
def test_agents_and_team_leads_may_not_delete(caller: Caller) -> None:
    with pytest.raises(Forbidden, match="eliminar"):
        when([created()], DeleteContact(contact_id=CID, caller=caller, now=T0))


@pytest.mark.parametrize("caller", [PABLO, TERE], ids=["ProjectManager", "TI"])
def test_project_managers_and_ti_delete_contacts(caller: Caller) -> None:
    history: list[ContactEvent] = [created(), locked_by(caller)]
    events = when(history, DeleteContact(contact_id=CID, caller=caller, now=T0, reason=" duplicado "))
    assert events == [ContactDeleted(contact_id=CID, at=T0, reason="duplicado")]
    state = given(*history, *events)
    assert state is not None
    assert state.deleted
    assert state.locked_by is None


def test_a_contact_locked_by_someone_else_cannot_be_deleted() -> None:
    with pytest.raises(Locked):
        when([created(), locked_by(ANA)], DeleteContact(contact_id=CID, caller=PABLO, now=T0))


@pytest.mark.parametrize(
    "command",
    [
        UpdateContact(contact_id=CID, caller=ANA, now=T0, name="X"),
        ChangeStatus(contact_id=CID, caller=ANA, now=T0, status="NC"),
        EditNote(contact_id=CID, caller=ANA, now=T0, note="x"),
        LockContact(contact_id=CID, caller=ANA, now=T0),
        ReleaseLock(contact_id=CID, caller=ANA, now=T0),
        DeleteContact(contact_id=CID, caller=TERE, now=T0),
        RecordCallRequested(contact_id=CID, caller=ANA, now=T0, call_id="c1"),
    ],
    ids=lambda c: type(c).__name__,
)
def test_commands_on_a_deleted_contact_are_not_found(command: ContactCommand) -> None:
    with pytest.raises(NotFound):
        when([created(), ContactDeleted(contact_id=CID, at=T0)], command)


# --- ageing ----------------------------------------------------------------------------------------


def age_at(now: datetime) -> AgeStatus:
    return AgeStatus(contact_id=CID, caller=SYSTEM_CALLER, now=now)


def aged(old: str, new: str, at: datetime) -> StatusChanged:
    return StatusChanged(contact_id=CID, at=at, old=old, new=new, reason=StatusReason.AGEING)


def test_a_contact_is_not_aged_one_second_before_three_months() -> None:
    assert when([created()], age_at(add_months(T0, 3) - timedelta(seconds=1))) == []


def test_three_months_without_contact_makes_a_contact_no_existe() -> None:
    at = add_months(T0, 3)
    assert when([created()], age_at(at)) == [aged("SIN_GESTIONAR", "NO_EXISTE", at)]


@pytest.mark.parametrize(
    ("months", "expected"),
    [(5, "NO_EXISTE"), (6, "SIN_RED"), (7, "SIN_RED"), (8, "NO_CONTACTO"), (40, "NO_CONTACTO")],
)
def test_the_highest_threshold_reached_wins(months: int, expected: str) -> None:
    at = add_months(T0, months)
    assert when([created(status="NC")], age_at(at)) == [aged("NC", expected, at)]


def test_an_aged_contact_moves_forward_to_the_next_threshold() -> None:
    at = add_months(T0, 6)
    assert when([created(), aged("SIN_GESTIONAR", "NO_EXISTE", add_months(T0, 3))], age_at(at)) == [
        aged("NO_EXISTE", "SIN_RED", at)
    ]


def test_an_aged_contact_never_moves_backwards() -> None:
    history: list[ContactEvent] = [created(status="NO_CONTACTO")]
    assert when(history, age_at(add_months(T0, 6))) == []
    assert when(history, age_at(add_months(T0, 100))) == []
    assert when([created(status="SIN_RED")], age_at(add_months(T0, 3))) == []


@pytest.mark.parametrize("status", ["INTERESADO", "SERVICIOS_ACTIVOS"])
def test_interested_and_active_customers_never_age(status: str) -> None:
    assert when([created(status=status)], age_at(add_months(T0, 24))) == []


def test_a_status_set_by_an_agent_resets_the_ageing_clock() -> None:
    later = T0 + timedelta(days=60)
    history: list[ContactEvent] = [
        created(),
        StatusChanged(contact_id=CID, at=later, old="SIN_GESTIONAR", new="NC", reason=StatusReason.AGENT),
    ]
    assert when(history, age_at(add_months(T0, 3))) == []
    assert when(history, age_at(add_months(later, 3))) == [aged("NC", "NO_EXISTE", add_months(later, 3))]


def test_a_finished_call_resets_the_ageing_clock() -> None:
    later = T0 + timedelta(days=80)
    call = CallEnded(
        contact_id=CID, at=later, call_id="c1", user_id=ANA.user_id, outcome=CallOutcome.NO_ANSWER
    )
    state = given(created(), call)
    assert state is not None
    assert state.last_contacted_at == later
    assert when([created(), call], age_at(add_months(T0, 3))) == []


def test_ageing_itself_does_not_reset_the_clock() -> None:
    first = aged("SIN_GESTIONAR", "NO_EXISTE", add_months(T0, 3))
    state = given(created(), first)
    assert state is not None
    assert state.last_contacted_at is None
    assert state.ageing_since == T0


def test_ageing_twice_at_the_same_moment_changes_nothing_the_second_time() -> None:
    at = add_months(T0, 7)
    events = when([created()], age_at(at))
    assert len(events) == 1
    assert when([created(), *events], age_at(at)) == []


def test_a_locked_contact_is_not_aged_while_an_agent_handles_it() -> None:
    at = add_months(T0, 4)
    assert when([created(), locked_by(ANA, at=at - minutes(1))], age_at(at)) == []
    assert when([created(), locked_by(ANA, at=at - minutes(20))], age_at(at)) == [
        aged("SIN_GESTIONAR", "NO_EXISTE", at)
    ]


def test_months_are_calendar_months_clamped_to_the_end_of_a_short_month() -> None:
    start = datetime(2024, 11, 30, 12, 0, tzinfo=UTC)
    assert add_months(start, 3) == datetime(2025, 2, 28, 12, 0, tzinfo=UTC)
    assert when([created(at=start)], age_at(datetime(2025, 2, 28, 11, 59, tzinfo=UTC))) == []
    assert when([created(at=start)], age_at(datetime(2025, 2, 28, 12, 0, tzinfo=UTC)))


def test_ageing_a_missing_or_deleted_contact_does_nothing() -> None:
    assert when([], age_at(add_months(T0, 9))) == []
    assert when([created(), ContactDeleted(contact_id=CID, at=T0)], age_at(add_months(T0, 9))) == []


RANK = {"SIN_GESTIONAR": -1, "NO_EXISTE": 0, "SIN_RED": 1, "NO_CONTACTO": 2}


@settings(max_examples=60, deadline=None)
@hgiven(st.lists(st.integers(min_value=0, max_value=400 * 24 * 3600), min_size=1, max_size=12))
def test_ageing_run_at_any_times_only_moves_forward_and_ends_where_one_run_would(offsets: list[int]) -> None:
    history: list[ContactEvent] = [created()]
    ranks = []
    for offset in sorted(offsets):
        history.extend(when(history, age_at(T0 + timedelta(seconds=offset))))
        state = given(*history)
        assert state is not None
        ranks.append(RANK[state.status])
    assert ranks == sorted(ranks)
    single = when([created()], age_at(T0 + timedelta(seconds=max(offsets))))
    final, stepwise = given(created(), *single), given(*history)
    assert final is not None
    assert stepwise is not None
    assert stepwise.status == final.status


# --- calls -----------------------------------------------------------------------------------------


def test_a_call_request_is_recorded_with_the_agent_and_desk() -> None:
    events = when(
        [created()], RecordCallRequested(contact_id=CID, caller=ANA, now=T0, call_id="c1", desk="d7")
    )
    assert events == [
        CallRequested(
            contact_id=CID, at=T0, call_id="c1", user_id=ANA.user_id, username=ANA.username, desk="d7"
        )
    ]


def test_another_agent_cannot_call_a_contact_locked_by_someone_else() -> None:
    with pytest.raises(Locked):
        when(
            [created(), locked_by(ANA)],
            RecordCallRequested(contact_id=CID, caller=BETO, now=T0, call_id="c1"),
        )
    assert when(
        [created(), locked_by(ANA)], RecordCallRequested(contact_id=CID, caller=ANA, now=T0, call_id="c1")
    )


def requested(call_id: str = "c1", desk: str = "d1", at: datetime = T0) -> CallRequested:
    return CallRequested(
        contact_id=CID, at=at, call_id=call_id, user_id=ANA.user_id, username=ANA.username, desk=desk
    )


def test_call_start_and_end_are_recorded_with_outcome_and_duration() -> None:
    start = RecordCallStarted(contact_id=CID, caller=ANA, now=T0 + minutes(1), call_id="c1", desk="d1")
    started = when([created(), requested()], start)
    assert started == [
        CallStarted(
            contact_id=CID, at=T0 + minutes(1), call_id="c1", user_id=ANA.user_id, username=ANA.username
        )
    ]
    end = RecordCallEnded(
        contact_id=CID,
        caller=ANA,
        now=T0 + minutes(4),
        call_id="c1",
        outcome=CallOutcome.ANSWERED,
        duration_seconds=170,
        ring_seconds=50,
        desk="d1",
    )
    ended = when([created(), requested(), *started], end)
    assert ended == [
        CallEnded(
            contact_id=CID,
            at=T0 + minutes(4),
            call_id="c1",
            user_id=ANA.user_id,
            username=ANA.username,
            outcome=CallOutcome.ANSWERED,
            duration_seconds=170,
            ring_seconds=50,
        )
    ]
    state = given(created(), requested(), *started, *ended)
    assert state is not None
    assert state.last_contacted_at == T0 + minutes(4)
    assert state.version == 4
    assert state.open_calls == {}


def test_a_call_with_negative_duration_or_no_id_is_refused() -> None:
    with pytest.raises(InvalidInput):
        when(
            [created(), requested()],
            RecordCallEnded(
                contact_id=CID,
                caller=ANA,
                now=T0,
                call_id="c1",
                outcome=CallOutcome.FAILED,
                duration_seconds=-1,
                desk="d1",
            ),
        )
    with pytest.raises(InvalidInput):
        when([created()], RecordCallRequested(contact_id=CID, caller=ANA, now=T0, call_id=" ", desk="d1"))


def test_a_call_is_open_from_its_request_to_its_end_for_its_user_and_desk_only() -> None:
    state = given(created(), requested())
    assert state is not None
    assert set(state.open_calls) == {"c1"}
    assert (state.open_calls["c1"].user_id, state.open_calls["c1"].desk) == (ANA.user_id, "d1")
    for caller, desk in ((ANA, "d2"), (LUCIA, "d1")):
        with pytest.raises(CallNotOpen):
            when(
                [created(), requested()],
                RecordCallStarted(contact_id=CID, caller=caller, now=T0, call_id="c1", desk=desk),
            )


def test_a_stale_call_closes_as_failed_with_the_reason_and_only_once() -> None:
    close = CloseStaleCall(
        contact_id=CID, caller=SYSTEM_CALLER, now=T0 + minutes(2), call_id="c1", reason="r"
    )
    closed = when([created(), requested()], close)
    assert [(e.outcome, e.reason, e.user_id) for e in closed] == [  # type: ignore[attr-defined]
        (CallOutcome.FAILED, "r", ANA.user_id)
    ]
    assert when([created(), requested(), *closed], close) == []


# --- imports and generated batches ----------------------------------------------------------------


def batch(
    *rows: ImportRow,
    caller: Caller = LUCIA,
    now: datetime = T0,
    source: Source = Source.IMPORT,
    merge: MergeMode = MergeMode.FILL,
    list_name: str = "marzo",
) -> CreateOrMergeContacts:
    # The list of the contacts ``created`` makes: a row of another list also puts the contact in it.
    return CreateOrMergeContacts(
        caller=caller, now=now, rows=rows, list_name=list_name, source=source, job_id="j1", merge=merge
    )


def row(**overrides: object) -> ImportRow:
    fields: dict[str, object] = {"row": 2, "e164": E164, "national": "8812-3456", "phone": "88123456"}
    fields.update(overrides)
    return ImportRow(**fields)  # type: ignore[arg-type]


def test_a_new_phone_in_an_import_is_inserted_into_the_import_list() -> None:
    r = row(
        name="Ana Mora", status="no contesta", extra={"cedula": "1-2222-3333", "vacío": ""}, operator="kolbi"
    )
    outcome, events = decide_import_row(None, r, batch(r, list_name="abril"))
    assert outcome.outcome is Outcome.INSERTED
    assert outcome.contact_id == CID
    assert events == [
        ContactCreated(
            contact_id=CID,
            at=T0,
            phone="88123456",
            phone_e164=E164,
            phone_national="8812-3456",
            operator="kolbi",
            name="Ana Mora",
            status="NC",
            extra={"cedula": "1-2222-3333"},
            list_name="abril",
            source=Source.IMPORT,
        )
    ]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"status": "VOLVER A LLAMAR"}, "Estado desconocido"),
        ({"e164": "8812"}, "Teléfono no válido"),
        ({"email": "no es correo"}, "Correo electrónico no válido"),
    ],
)
def test_an_invalid_row_is_rejected_with_its_reason_and_changes_nothing(
    bad: dict[str, str], reason: str
) -> None:
    r = row(**bad)
    outcome, events = decide_import_row(given(created()), r, batch(r))
    assert outcome.outcome is Outcome.REJECTED
    assert reason in outcome.reason
    assert outcome.row == 2
    assert events == []


def test_filling_sets_only_empty_fields_and_appends_the_note_as_a_dated_line() -> None:
    history: list[ContactEvent] = [created(note="vieja", email="a@b.cr", extra={"zona": "sur"})]
    r = row(name="Otra", note="nueva", email="x@y.cr", extra={"zona": "norte", "plan": "postpago"})
    merged = batch(r, now=T0 + timedelta(days=3), list_name="abril")
    outcome, events = decide_import_row(given(*history), r, merged)
    assert outcome.outcome is Outcome.UPDATED
    assert events == [
        ContactMerged(
            contact_id=CID,
            at=T0 + timedelta(days=3),
            changes=(
                FieldChange("note", "vieja", "vieja\n[2025-01-18] nueva"),
                FieldChange("extra.plan", None, "postpago"),
            ),
            list_name="abril",
            source=Source.IMPORT,
            row=2,
        ),
        ContactListed(
            contact_id=CID, at=T0 + timedelta(days=3), list_name="abril", source=Source.IMPORT, row=2
        ),
    ]
    state = given(*history, *events)
    assert state is not None
    assert state.lists == ("abril",)
    assert (state.name, state.email) == ("María Pérez", "a@b.cr")
    assert state.extra == {"zona": "sur", "plan": "postpago"}
    assert state.list_name == "marzo"
    assert state.phone == "8812-3456"
    assert state.last_contacted_at == T0 + timedelta(days=3)


def test_a_row_that_changes_no_field_of_a_contact_in_another_list_only_lists_it() -> None:
    r = row(name="María Pérez")
    outcome, events = decide_import_row(given(created()), r, batch(r, list_name="abril"))
    assert outcome.outcome is Outcome.LISTED
    assert events == [ContactListed(contact_id=CID, at=T0, list_name="abril", source=Source.IMPORT, row=2)]
    listed = given(created(), *events)
    again = decide_import_row(listed, r, batch(r, list_name="abril"))
    assert (again.outcome.outcome, again.events) == (Outcome.UNCHANGED, [])
    assert (
        decide_import_row(
            given(created()), r, batch(r, caller=PABLO, source=Source.GENERATOR, list_name="abril")
        )[0].outcome
        is Outcome.UNCHANGED
    )
    lock = ContactLocked(
        contact_id=CID,
        at=T0,
        locked_by="u-x",
        locked_by_name="x",
        locked_until=T0 + timedelta(minutes=5),
        duration_minutes=5,
    )
    held = given(created(), lock)
    assert decide_import_row(held, r, batch(r, list_name="abril"))[0].outcome is Outcome.LOCKED


def test_overwriting_lets_non_empty_incoming_fields_win_but_still_appends_the_note() -> None:
    history: list[ContactEvent] = [created(note="vieja", email="a@b.cr", extra={"zona": "sur"})]
    r = row(name="Otra", note="nueva", email="", extra={"zona": "norte"})
    outcome, events = decide_import_row(given(*history), r, batch(r, caller=PABLO, merge=MergeMode.OVERWRITE))
    assert outcome.outcome is Outcome.UPDATED
    state = given(*history, *events)
    assert state is not None
    assert (state.name, state.email, state.extra) == ("Otra", "a@b.cr", {"zona": "norte"})
    assert state.note == "vieja\n[2025-01-15] nueva"


def test_skipping_leaves_an_existing_contact_untouched_and_still_inserts_new_ones() -> None:
    r = row(name="Otra", note="nueva", status="INTERESADO")
    outcome, events = decide_import_row(given(created()), r, batch(r, merge=MergeMode.SKIP))
    assert (outcome.outcome, events) == (Outcome.UNCHANGED, [])
    outcome, events = decide_import_row(None, r, batch(r, merge=MergeMode.SKIP))
    assert outcome.outcome is Outcome.INSERTED


def test_only_project_managers_and_ti_may_import_overwriting() -> None:
    r = row()
    with pytest.raises(Forbidden, match="sobrescribiendo"):
        decide_import_row(None, r, batch(r, caller=LUCIA, merge=MergeMode.OVERWRITE))
    for caller in (PABLO, TERE):
        outcome, _ = decide_import_row(None, r, batch(r, caller=caller, merge=MergeMode.OVERWRITE))
        assert outcome.outcome is Outcome.INSERTED


def test_a_note_already_appended_is_not_appended_again() -> None:
    r = row(note="llamar el lunes")
    history: list[ContactEvent] = [created(note="vieja")]
    _, first = decide_import_row(given(*history), r, batch(r))
    outcome, again = decide_import_row(given(*history, *first), r, batch(r, now=T0 + timedelta(days=1)))
    assert (outcome.outcome, again) == (Outcome.UNCHANGED, [])


def test_a_note_that_would_grow_past_the_limit_rejects_the_row() -> None:
    r = row(note="x" * 100)
    outcome, events = decide_import_row(given(created(note="y" * 9_950)), r, batch(r))
    assert outcome.outcome is Outcome.REJECTED
    assert "superaría" in outcome.reason
    assert events == []


def test_reimporting_the_same_row_changes_nothing_and_does_not_reset_the_clock() -> None:
    r = row(name="Ana Mora", note="nota", status="INTERESADO")
    _, first = decide_import_row(None, r, batch(r))
    state = given(*first)
    outcome, events = decide_import_row(state, r, batch(r, now=T0 + timedelta(days=30)))
    assert outcome.outcome is Outcome.UNCHANGED
    assert events == []


def test_filling_sets_the_status_only_while_it_is_the_default_one() -> None:
    r = row(status="Servicios activos")
    outcome, events = decide_import_row(given(created(status="NC")), r, batch(r))
    assert (outcome.outcome, events) == (Outcome.UNCHANGED, [])
    outcome, events = decide_import_row(given(created()), r, batch(r))
    assert events == [
        StatusChanged(
            contact_id=CID, at=T0, old="SIN_GESTIONAR", new="SERVICIOS_ACTIVOS", reason=StatusReason.IMPORT
        )
    ]


def test_an_incoming_status_overwrites_the_current_one_as_an_import_change() -> None:
    r = row(status="Servicios activos")
    outcome, events = decide_import_row(
        given(created(status="NC")), r, batch(r, caller=PABLO, merge=MergeMode.OVERWRITE)
    )
    assert outcome.outcome is Outcome.UPDATED
    assert events == [
        StatusChanged(contact_id=CID, at=T0, old="NC", new="SERVICIOS_ACTIVOS", reason=StatusReason.IMPORT)
    ]
    state = given(created(status="NC"), *events)
    assert state is not None
    assert state.last_contacted_at == T0


def test_an_incoming_default_status_never_overwrites_a_worked_status() -> None:
    r = row(status="SIN GESTIONAR")
    outcome, events = decide_import_row(given(created(status="INTERESADO")), r, batch(r))
    assert outcome.outcome is Outcome.UNCHANGED
    assert events == []


def test_a_row_that_would_change_a_contact_locked_by_someone_else_leaves_it_alone_and_says_so() -> None:
    history: list[ContactEvent] = [created(), locked_by(ANA)]
    r = row(note="Otra nota")
    outcome, events = decide_import_row(given(*history), r, batch(r))
    assert outcome.outcome is Outcome.LOCKED
    assert "bloqueado por ana" in outcome.reason
    assert "no se modificó" in outcome.reason
    assert events == []
    same = row(name="María Pérez")
    assert decide_import_row(given(*history), same, batch(same)).outcome.outcome is Outcome.UNCHANGED


def test_a_deleted_contact_reimported_is_inserted_again_on_its_stream() -> None:
    r = row(name="Vuelve")
    outcome, events = decide_import_row(given(created(), ContactDeleted(contact_id=CID, at=T0)), r, batch(r))
    assert outcome.outcome is Outcome.INSERTED
    assert [type(e) for e in events] == [ContactCreated]
    assert events[0].contact_id == CID


def test_agents_may_not_import() -> None:
    r = row()
    with pytest.raises(Forbidden, match="importar"):
        decide_import_row(None, r, batch(r, caller=ANA))


def test_only_project_managers_and_ti_save_generated_numbers() -> None:
    r = row()
    with pytest.raises(Forbidden, match="generar"):
        decide_import_row(None, r, batch(r, caller=LUCIA, source=Source.GENERATOR))
    outcome, _ = decide_import_row(None, r, batch(r, caller=PABLO, source=Source.GENERATOR))
    assert outcome.outcome is Outcome.INSERTED


def test_a_generated_number_that_already_exists_is_left_unchanged() -> None:
    r = row(phone="88123456")
    outcome, events = decide_import_row(given(created()), r, batch(r, caller=TERE, source=Source.GENERATOR))
    assert outcome.outcome is Outcome.UNCHANGED
    assert events == []


def test_batch_rows_on_the_do_not_call_list_are_decided_dnc_and_write_nothing() -> None:
    other = "+50661234567"
    other_id = contact_id_for_phone(other)
    rows = (
        row(row=2, name="Ana"),
        row(row=3, e164=other, name="Luis nuevo"),
        row(row=4, e164="+50661234568", name="Eva"),
        row(row=5, e164=other, note="repetida"),
    )
    existing = given(created(contact_id=other_id, phone_e164=other, name="Luis"))
    assert existing is not None

    decision = decide_batch({other_id: existing}, batch(*rows), dnc=frozenset({other, "+50661234568"}))

    assert [(o.row, o.outcome, o.contact_id) for o in decision.result.outcomes] == [
        (2, Outcome.INSERTED, CID),
        (3, Outcome.DNC, other_id),
        (4, Outcome.DNC, ""),
        (5, Outcome.DNC, other_id),
    ]
    assert {o.reason for o in decision.result.outcomes[1:]} == {DNC_ROW_REASON}
    assert set(decision.events) == {CID}
    assert decision.result.summary()["dnc"] == 3


def test_a_batch_merges_repeated_phones_in_order_and_reports_every_row() -> None:
    other = "+50661234567"
    other_id = contact_id_for_phone(other)
    rows = (
        row(row=2, name="Ana"),
        row(row=3, e164=other, name="Luis"),
        row(row=4, note="repetida"),
        row(row=5, e164="123", name="mal"),
        row(row=6, e164=other, name="Luis"),
    )
    existing = given(created(contact_id=other_id, phone_e164=other, name="Luis"))
    assert existing is not None
    decision = decide_batch({other_id: existing}, batch(*rows))
    assert [(o.row, o.outcome) for o in decision.result.outcomes] == [
        (2, Outcome.INSERTED),
        (3, Outcome.UNCHANGED),
        (4, Outcome.UPDATED),
        (5, Outcome.REJECTED),
        (6, Outcome.UNCHANGED),
    ]
    assert [type(e) for e in decision.events[CID]] == [ContactCreated, ContactMerged]
    assert other_id not in decision.events
    assert decision.expected_versions == {CID: 0}
    summary = decision.result.summary()
    assert summary["total"] == 5
    assert summary["inserted"] == 1
    assert summary["updated"] == 1
    assert summary["unchanged"] == 2
    assert summary["rejected"] == 1
    assert summary["errors"][0]["row"] == 5
    state = given(*decision.events[CID])
    assert state is not None
    assert (state.name, state.note) == ("Ana", "repetida")


# --- evolve ----------------------------------------------------------------------------------------


def test_the_state_counts_its_events_and_reflects_them() -> None:
    state = given(
        created(),
        locked_by(ANA),
        NoteEdited(contact_id=CID, at=T0 + minutes(1), old="", new="hola"),
        LockReleased(contact_id=CID, at=T0 + minutes(2), released_by=ANA.user_id),
    )
    assert state is not None
    assert state.version == 4
    assert state.note == "hola"
    assert state.updated_at == T0 + minutes(1)
    assert state.created_at == T0
    assert state.locked_by is None


def test_an_event_before_creation_is_a_corrupt_stream() -> None:
    with pytest.raises(ValueError, match="before ContactCreated"):
        evolve(None, NoteEdited(contact_id=CID, at=T0, old="", new="x"))
