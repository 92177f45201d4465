"""Every capability × every role, through HTTP: exactly PRODUCT.md's Roles table, allowed and denied."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gateway.audit import AuditFilter, AuditLog, Outcome
from gateway.roles import MATRIX, Capability, Principal
from gateway.users import UserDirectory
from kernel.envelope import Actor
from kernel.roles import USER_ROLES, Role

# PRODUCT.md, "Roles": each row's capabilities and the roles ticked on it, written out independently of
# gateway.roles so a change to either shows up here.
ROWS: list[tuple[list[str], set[str]]] = [
    (
        ["contacts.read", "contacts.lock_own", "contacts.update", "contacts.create"],
        {"Agent", "TeamLead", "ProjectManager", "TI"},
    ),
    (["queue.next", "contacts.disposition"], {"Agent", "TeamLead", "ProjectManager", "TI"}),
    (["contacts.force_release", "metrics.team"], {"TeamLead", "ProjectManager", "TI"}),
    (["contacts.import", "contacts.export"], {"TeamLead", "ProjectManager", "TI"}),
    (
        ["contacts.generate", "contacts.import_overwrite", "contacts.delete", "metrics.all", "config.read"],
        {"ProjectManager", "TI"},
    ),
    (["dnc.manage", "campaigns.manage"], {"ProjectManager", "TI"}),
    (["users.manage", "config.change", "audit.read", "backups"], {"TI"}),
]
EXPECTED = {
    (capability, role) for capabilities, roles in ROWS for capability in capabilities for role in roles
}
CELLS = [(capability, role) for capabilities, _ in ROWS for capability in capabilities for role in USER_ROLES]


def test_the_table_names_every_capability_once() -> None:
    named = [capability for capabilities, _ in ROWS for capability in capabilities]
    assert sorted(named) == sorted(c.value for c in Capability)
    assert {(c.value, r.value) for c, roles in MATRIX.items() for r in roles} == EXPECTED


@pytest.fixture
def keys(directory: UserDirectory) -> dict[Role, str]:
    return {
        role: directory.create_user(f"user-{role.value.lower()}", role, team="Norte")[1].plaintext
        for role in USER_ROLES
    }


@pytest.mark.parametrize(("capability", "role"), CELLS)
def test_role_gets_exactly_the_capabilities_of_the_roles_table(
    client: TestClient, keys: dict[Role, str], capability: str, role: Role
) -> None:
    response = client.get(f"/probe/{capability}", headers={"X-API-Key": keys[role]})
    if (capability, role.value) in EXPECTED:
        assert response.status_code == 200, response.text
        assert response.json() == {"capability": capability, "username": f"user-{role.value.lower()}"}
    else:
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "forbidden"
        assert role.value in error["message"]


def test_an_agent_denied_a_capability_is_audited_with_its_key_id_but_never_its_key(
    make_client: Callable[..., TestClient], engine: sa.Engine, directory: UserDirectory, audit: AuditLog
) -> None:
    _, issued = directory.create_user("ana", Role.AGENT)
    client = make_client()
    assert client.get("/probe/contacts.import", headers={"X-API-Key": issued.plaintext}).status_code == 403
    [entry] = [r.entry for r in audit.list(AuditFilter(outcome=Outcome.DENIED))]
    assert (entry.username, entry.role, entry.key_id) == ("ana", "Agent", issued.key_id)
    assert (entry.method, entry.path, entry.action, entry.status_code) == (
        "GET",
        "/probe/contacts.import",
        Capability.IMPORT.value,
        403,
    )
    assert entry.source == "127.0.0.1"
    with engine.connect() as conn:
        dump = repr(conn.execute(sa.text("SELECT * FROM audit_log")).all())
    assert issued.plaintext not in dump
    assert issued.plaintext.split("_", 2)[2] not in dump


def test_the_role_ladder_orders_every_role_and_a_principal_acts_as_its_user() -> None:
    ladder = [*USER_ROLES, Role.SYSTEM]
    for i, role in enumerate(ladder):
        assert [role.at_least(other) for other in ladder] == [j <= i for j in range(len(ladder))]
    principal = Principal(user_id=uuid.UUID(int=7), username="ana", role=Role.TEAM_LEAD)
    assert principal.actor("mesa-3") == Actor(user_id=str(uuid.UUID(int=7)), role="TeamLead", desk="mesa-3")
    assert principal.actor() == Actor(user_id=str(uuid.UUID(int=7)), role="TeamLead", desk="")


def test_an_unknown_role_name_is_refused_naming_the_four_roles() -> None:
    with pytest.raises(ValueError, match=r"use uno de Agent, TeamLead, ProjectManager, TI$"):
        Role.parse("Supervisor")
