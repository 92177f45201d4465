"""TI administers users over HTTP; every mutation and every denial lands in the audit log TI can read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from gateway.audit import AuditEntry, AuditFilter, AuditLog, Outcome
from gateway.users import UserDirectory
from kernel.roles import Role


def ti_headers(directory: UserDirectory) -> dict[str, str]:
    return {"X-API-Key": directory.create_user("admin", Role.TI)[1].plaintext}


def test_ti_creates_a_user_whose_key_works_at_once_and_is_never_shown_again(
    client: TestClient, directory: UserDirectory
) -> None:
    admin = ti_headers(directory)
    created = client.post(
        "/admin/users", json={"username": "ana", "role": "Agent", "team": "Norte"}, headers=admin
    )
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    body = created.json()
    assert (body["username"], body["role"], body["team"], body["active"]) == ("ana", "Agent", "Norte", True)
    key = body["api_key"]
    assert client.get("/me", headers={"X-API-Key": key}).json()["username"] == "ana"
    listing = client.get("/admin/users", headers=admin)
    one = client.get("/admin/users/ana", headers=admin)
    assert [u["username"] for u in listing.json()] == ["admin", "ana"]
    assert key not in listing.text
    assert key not in one.text
    assert [k["id"] for k in one.json()["keys"]] == [body["key_id"]]


def test_admin_refusals_use_the_error_format(client: TestClient, directory: UserDirectory) -> None:
    admin = ti_headers(directory)
    client.post("/admin/users", json={"username": "ana", "role": "Agent"}, headers=admin)
    duplicate = client.post("/admin/users", json={"username": "ANA", "role": "TI"}, headers=admin)
    bad_role = client.post("/admin/users", json={"username": "luis", "role": "Jefe"}, headers=admin)
    missing = client.post("/admin/users/nadie/deactivate", headers=admin)
    myself = client.post("/admin/users/admin/deactivate", headers=admin)
    assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (409, "conflict")
    assert (bad_role.status_code, bad_role.json()["error"]["code"]) == (422, "invalid")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (myself.status_code, myself.json()["error"]["code"]) == (409, "conflict")


def test_ti_deactivates_rotates_and_revokes(client: TestClient, directory: UserDirectory) -> None:
    admin = ti_headers(directory)
    _, ana = directory.create_user("ana", Role.AGENT)
    _, luis = directory.create_user("luis", Role.TEAM_LEAD)

    rotated = client.post("/admin/users/ana/rotate-key", headers=admin)
    assert rotated.status_code == 201
    assert client.get("/me", headers={"X-API-Key": ana.plaintext}).status_code == 401
    new_key = rotated.json()["api_key"]
    assert client.get("/me", headers={"X-API-Key": new_key}).status_code == 200

    extra = client.post("/admin/users/luis/keys", headers=admin).json()
    revoked = client.delete(f"/admin/keys/{extra['key_id']}", headers=admin)
    assert revoked.json()["active"] is False
    assert client.get("/me", headers={"X-API-Key": extra["api_key"]}).status_code == 401
    assert client.get("/me", headers={"X-API-Key": luis.plaintext}).status_code == 200

    deactivated = client.post("/admin/users/luis/deactivate", headers=admin)
    assert deactivated.json()["active"] is False
    assert client.get("/me", headers={"X-API-Key": luis.plaintext}).status_code == 401


def test_only_ti_manages_users_and_reads_the_audit(client: TestClient, directory: UserDirectory) -> None:
    for role in (Role.AGENT, Role.TEAM_LEAD, Role.PROJECT_MANAGER):
        key = directory.create_user(f"u-{role.value.lower()}", role)[1].plaintext
        headers = {"X-API-Key": key}
        assert client.get("/admin/users", headers=headers).status_code == 403
        assert client.get("/admin/audit", headers=headers).status_code == 403
        denied = client.post("/admin/users", json={"username": "intruso", "role": "TI"}, headers=headers)
        assert denied.status_code == 403
    assert [u.username for u in directory.list_users() if u.username == "intruso"] == []


def test_every_mutation_is_audited_with_who_what_outcome_and_target(
    client: TestClient, directory: UserDirectory
) -> None:
    admin = ti_headers(directory)
    _, agent = directory.create_user("ana", Role.AGENT)
    created = client.post("/admin/users", json={"username": "luis", "role": "TeamLead"}, headers=admin)
    client.post("/notes", headers={"X-API-Key": agent.plaintext})
    client.post("/broken", headers={"X-API-Key": agent.plaintext})
    client.post("/admin/users", json={"username": "x", "role": "TI"}, headers={"X-API-Key": agent.plaintext})

    entries = client.get("/admin/audit", headers=admin).json()
    summary = [(e["username"], e["method"], e["path"], e["outcome"], e["status_code"]) for e in entries]
    assert summary == [
        ("ana", "POST", "/admin/users", "denied", 403),
        ("ana", "POST", "/broken", "error", 500),
        ("ana", "POST", "/notes", "allowed", 201),
        ("admin", "POST", "/admin/users", "allowed", 201),
    ]
    creation = entries[-1]
    assert creation["action"] == "users.manage"
    assert creation["detail"] == {"target": "luis", "role": "TeamLead"}
    assert creation["key_id"] is not None
    assert creation["source"] == "127.0.0.1"
    assert created.json()["api_key"] not in str(entries)
    assert entries[2]["action"] == "contacts.create"


def test_the_audit_can_be_filtered_and_paged(client: TestClient, directory: UserDirectory) -> None:
    admin = ti_headers(directory)
    for _ in range(3):
        client.post("/notes")
    client.post("/notes", headers=admin)
    denied = client.get("/admin/audit", params={"outcome": "denied"}, headers=admin).json()
    assert len(denied) == 3
    mine = client.get("/admin/audit", params={"username": "admin"}, headers=admin).json()
    assert [e["path"] for e in mine] == ["/notes"]
    first = client.get("/admin/audit", params={"limit": 2}, headers=admin)
    assert len(first.json()) == 2
    following = first.headers["Link"].split(";")[0].strip("<>")
    rest = client.get(following, headers=admin).json()
    assert [e["id"] for e in first.json() + rest] == sorted(
        (e["id"] for e in first.json() + rest), reverse=True
    )
    assert len(first.json() + rest) == 4
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert client.get("/admin/audit", params={"since": future}, headers=admin).json() == []


def test_audit_log_records_and_filters_on_both_databases(any_engine: sa.Engine) -> None:
    audit = AuditLog(any_engine)
    audit.record(
        AuditEntry(
            method="DELETE",
            path="/contacts/1",
            outcome=Outcome.ALLOWED,
            status_code=200,
            username="pm",
            action="contacts.delete",
            source="10.0.0.5",
            detail={"contact": "1"},
        )
    )
    audit.record(AuditEntry(method="GET", path="/config", outcome=Outcome.DENIED, status_code=401))
    assert [r.entry.path for r in audit.list()] == ["/config", "/contacts/1"]
    [deleted] = audit.list(AuditFilter(username="PM", outcome=Outcome.ALLOWED))
    assert deleted.entry.detail == {"contact": "1"}
    assert deleted.entry.source == "10.0.0.5"
    assert deleted.at.tzinfo is not None
    assert audit.list(AuditFilter(since=datetime.now(UTC) + timedelta(minutes=5))) == []
    assert len(audit.list(AuditFilter(until=datetime.now(UTC) + timedelta(minutes=5)))) == 2


def test_a_failing_audit_store_does_not_break_the_request(
    make_client: Callable[..., TestClient], engine: sa.Engine, directory: UserDirectory
) -> None:
    _, agent = directory.create_user("ana", Role.AGENT)
    client = make_client()
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE audit_log"))
    assert client.post("/notes", headers={"X-API-Key": agent.plaintext}).status_code == 201
    assert client.post("/notes").status_code == 401
