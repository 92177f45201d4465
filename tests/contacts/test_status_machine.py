"""The status state machine: every (from, to) cell for every role, on each command that sets a status,
and the flags a wrap-up obeys (requires a callback; do-not-call is the gateway's, see test_callbacks_e2e)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contacts.commands import (
    Caller,
    ChangeStatus,
    CreateContact,
    CreateOrMergeContacts,
    ImportRow,
    MergeMode,
    RecordDisposition,
    UpdateContact,
)
from contacts.domain import ContactState, contact_id_for_phone, decide, decide_import_row, evolve
from contacts.errors import CallbackRequired, TransitionRefused
from contacts.events import StatusChanged, StatusReason
from contacts.statuses import DEFAULT_CATALOGUE, STATUSES, Catalogue
from contacts.views import error_from_data, error_to_data
from kernel.roles import USER_ROLES, Role

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
E164 = "+50688123456"
CID = contact_id_for_phone(E164)
CODES = [status.code for status in STATUSES]
FINAL = {"COMPLETADA", "SERVICIOS_ACTIVOS", "NO_LLAMAR"}

# The product's table (docs/QUEUE.md): the least role that may move a contact out of each status.
EXPECTED_LEAVE_ROLE = dict.fromkeys(CODES, Role.AGENT) | {
    "COMPLETADA": Role.TEAM_LEAD,
    "SERVICIOS_ACTIVOS": Role.TEAM_LEAD,
    "NO_LLAMAR": Role.PROJECT_MANAGER,
}
CELLS = [(old, new, role) for old in CODES for new in CODES if old != new for role in USER_ROLES]


def _caller(role: Role) -> Caller:
    return Caller(user_id=f"u-{role.value.lower()}", username=role.value.lower(), role=role, team="norte")


def _contact(status: str) -> ContactState:
    created = decide(
        None,
        CreateContact(
            caller=_caller(Role.TI), now=T0, contact_id=CID, phone="8812-3456", phone_e164=E164, status=status
        ),
    )
    state: ContactState | None = None
    for event in created:
        state = evolve(state, event)
    assert state is not None
    return state


def test_the_catalogue_states_each_status_flags_and_who_may_leave_it() -> None:
    flags = {s.code: (s.reached, s.final, s.requires_callback, s.dnc) for s in STATUSES}
    assert {code for code, (_, final, _, _) in flags.items() if final} == FINAL
    assert [code for code, (_, _, callback, _) in flags.items() if callback] == ["PENDIENTE"]
    assert [code for code, (_, _, _, dnc) in flags.items() if dnc] == ["NO_LLAMAR"]
    assert {code for code, (reached, *_) in flags.items() if reached} == {
        "CUELGA",
        "INTERESADO",
        "SERVICIOS_ACTIVOS",
        "PENDIENTE",
        "EN_PROGRESO",
        "COMPLETADA",
        "NO_LLAMAR",
    }
    assert {s.code: s.leaving_role for s in STATUSES} == EXPECTED_LEAVE_ROLE


@pytest.mark.parametrize(("old", "new", "role"), CELLS, ids=lambda v: str(getattr(v, "value", v)))
def test_each_role_moves_a_contact_exactly_where_the_machine_allows(old: str, new: str, role: Role) -> None:
    state = _contact(old)
    command = ChangeStatus(caller=_caller(role), now=T0, contact_id=CID, status=new)
    allowed = role.at_least(EXPECTED_LEAVE_ROLE[old])

    if allowed:
        assert decide(state, command) == [
            StatusChanged(contact_id=CID, at=T0, old=old, new=new, reason=StatusReason.AGENT)
        ]
    else:
        with pytest.raises(TransitionRefused) as refused:
            decide(state, command)
        error = refused.value
        assert (error.old, error.new, error.role, error.needed) == (
            old,
            new,
            role.value,
            EXPECTED_LEAVE_ROLE[old].value,
        )
        assert f"de {old} a {new}" in error.message
        assert f"solo {EXPECTED_LEAVE_ROLE[old].value} o superior" in error.message


@pytest.mark.parametrize("role", USER_ROLES, ids=lambda r: r.value)
def test_update_and_wrap_up_follow_the_same_machine(role: Role) -> None:
    closed = _contact("COMPLETADA")
    update = UpdateContact(caller=_caller(role), now=T0, contact_id=CID, status="SIN_GESTIONAR", name="Ana")
    wrap_up = RecordDisposition(caller=_caller(role), now=T0, contact_id=CID, outcome="reopen", status="NC")
    for command in (update, wrap_up):
        if role.at_least(Role.TEAM_LEAD):
            assert any(isinstance(e, StatusChanged) for e in decide(closed, command))
        else:
            with pytest.raises(TransitionRefused):
                decide(closed, command)


def test_setting_the_status_a_contact_already_has_is_never_refused() -> None:
    closed = _contact("COMPLETADA")
    agent = _caller(Role.AGENT)
    assert decide(closed, ChangeStatus(caller=agent, now=T0, contact_id=CID, status="COMPLETADA")) == []


def test_ageing_by_the_system_is_not_held_by_the_machine() -> None:
    assert DEFAULT_CATALOGUE.allows("COMPLETADA", "NO_EXISTE", Role.SYSTEM)
    assert DEFAULT_CATALOGUE.allows("NO_LLAMAR", "NC", Role.SYSTEM)


def test_an_explicit_transition_overrides_the_status_rule() -> None:
    catalogue = Catalogue(transitions={("NC", "COMPLETADA"): Role.TEAM_LEAD})
    assert catalogue.required_role("NC", "COMPLETADA") is Role.TEAM_LEAD
    assert catalogue.required_role("NC", "INTERESADO") is Role.AGENT
    state = _contact("NC")
    command = ChangeStatus(caller=_caller(Role.AGENT), now=T0, contact_id=CID, status="COMPLETADA")
    with pytest.raises(TransitionRefused):
        decide(state, command, catalogue=catalogue)
    with pytest.raises(ValueError, match="unknown status"):
        Catalogue(transitions={("NC", "NADA"): Role.AGENT})


def test_a_refusal_travels_as_the_same_typed_error() -> None:
    state = _contact("SERVICIOS_ACTIVOS")
    with pytest.raises(TransitionRefused) as refused:
        decide(state, ChangeStatus(caller=_caller(Role.AGENT), now=T0, contact_id=CID, status="NC"))
    again = error_from_data(error_to_data(refused.value))
    assert isinstance(again, TransitionRefused)
    assert (again.old, again.new, again.needed, again.message) == (
        "SERVICIOS_ACTIVOS",
        "NC",
        "TeamLead",
        refused.value.message,
    )


def test_a_status_that_requires_a_callback_refuses_a_wrap_up_without_one() -> None:
    state = _contact("NC")
    agent = _caller(Role.AGENT)
    bare = RecordDisposition(caller=agent, now=T0, contact_id=CID, outcome="later", status="pendiente")
    with pytest.raises(CallbackRequired) as refused:
        decide(state, bare)
    assert refused.value.field == "callback_at"
    assert "PENDIENTE" in refused.value.message

    later = RecordDisposition(
        caller=agent,
        now=T0,
        contact_id=CID,
        outcome="later",
        status="PENDIENTE",
        callback_at=T0 + timedelta(hours=2),
    )
    assert [type(e).__name__ for e in decide(state, later)] == ["DispositionRecorded", "StatusChanged"]


@pytest.mark.parametrize(
    ("role", "merge", "moves"),
    [
        (Role.TEAM_LEAD, MergeMode.FILL, False),
        (Role.PROJECT_MANAGER, MergeMode.OVERWRITE, True),
        (Role.TI, MergeMode.OVERWRITE, True),
    ],
)
def test_an_import_follows_the_machine_for_the_one_who_runs_it(
    role: Role, merge: MergeMode, moves: bool
) -> None:
    closed = _contact("NO_LLAMAR")
    batch = CreateOrMergeContacts(
        caller=_caller(role), now=T0, rows=(ImportRow(row=1, e164=E164, status="NC"),), merge=merge
    )
    decision = decide_import_row(closed, batch.rows[0], batch)
    assert any(isinstance(e, StatusChanged) for e in decision.events) is moves
