"""401 for every way a key can be bad, identity from the key only, auth off only on loopback."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from limits.storage import MemoryStorage

from gateway.audit import AuditFilter, AuditLog, Outcome
from gateway.auth import (
    ApiError,
    Authenticated,
    Call,
    Gate,
    audit_read,
    authorize,
    note_audit,
    presented_key,
)
from gateway.ratelimit import RateLimiter
from gateway.roles import LOCAL_PRINCIPAL, Capability
from gateway.users import UserDirectory
from kernel.roles import Role

REMOTE_CLIENT = ("192.0.2.10", 50000)


def assert_unauthorized(response: object) -> None:
    assert getattr(response, "status_code", None) == 401
    assert response.json()["error"]["code"] == "unauthorized"  # type: ignore[attr-defined]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")  # type: ignore[attr-defined]


def test_a_valid_key_in_either_header_identifies_its_user(
    client: TestClient, directory: UserDirectory
) -> None:
    _, issued = directory.create_user("Maria.Vargas", "teamlead", team="Norte")
    by_header = client.get("/me", headers={"X-API-Key": issued.plaintext})
    by_bearer = client.get("/me", headers={"Authorization": f"Bearer {issued.plaintext}"})
    expected = {"username": "maria.vargas", "role": "TeamLead", "key_id": issued.key_id}
    assert by_header.json() == expected
    assert by_bearer.json() == expected


def test_no_key_is_refused(client: TestClient) -> None:
    assert_unauthorized(client.get("/me"))
    assert_unauthorized(client.get("/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}))


@pytest.mark.parametrize(
    "presented",
    [
        "not-a-key",
        "cm_0123456789ab_" + "A" * 43,
        "cm_" + "z" * 200,
        "x" * 10_000,
    ],
)
def test_a_malformed_or_unknown_key_is_refused(client: TestClient, presented: str) -> None:
    assert_unauthorized(client.get("/me", headers={"X-API-Key": presented}))


def test_a_key_with_a_wrong_secret_is_refused(client: TestClient, directory: UserDirectory) -> None:
    _, issued = directory.create_user("ana", Role.AGENT)
    forged = issued.plaintext[:-4] + ("AAAA" if not issued.plaintext.endswith("AAAA") else "BBBB")
    assert_unauthorized(client.get("/me", headers={"X-API-Key": forged}))


def test_a_revoked_key_stops_working_at_once(client: TestClient, directory: UserDirectory) -> None:
    _, issued = directory.create_user("ana", Role.AGENT)
    assert client.get("/me", headers={"X-API-Key": issued.plaintext}).status_code == 200
    directory.revoke_key(issued.key_id)
    assert_unauthorized(client.get("/me", headers={"X-API-Key": issued.plaintext}))


def test_a_deactivated_users_key_stops_working_at_once(client: TestClient, directory: UserDirectory) -> None:
    _, issued = directory.create_user("ana", Role.AGENT)
    assert client.get("/me", headers={"X-API-Key": issued.plaintext}).status_code == 200
    directory.deactivate("ana")
    assert_unauthorized(client.get("/me", headers={"X-API-Key": issued.plaintext}))


def test_a_rotated_key_replaces_the_old_one(client: TestClient, directory: UserDirectory) -> None:
    _, old = directory.create_user("ana", Role.AGENT)
    new = directory.rotate_key("ana")
    assert_unauthorized(client.get("/me", headers={"X-API-Key": old.plaintext}))
    assert client.get("/me", headers={"X-API-Key": new.plaintext}).json()["key_id"] == new.key_id


def test_refusals_are_audited_with_reason_source_and_key_id_never_the_key(
    make_client: Callable[..., TestClient], engine: sa.Engine, directory: UserDirectory, audit: AuditLog
) -> None:
    _, issued = directory.create_user("ana", Role.AGENT)
    directory.revoke_key(issued.key_id)
    client = make_client(client=REMOTE_CLIENT)
    client.get("/me")
    client.post("/notes", headers={"X-API-Key": issued.plaintext})
    client.get("/me", headers={"X-API-Key": "garbage-key-value"})

    entries = [r.entry for r in audit.list(AuditFilter(outcome=Outcome.DENIED))]
    assert [(e.method, e.path, e.status_code, e.detail["reason"]) for e in entries] == [
        ("GET", "/me", 401, "malformed"),
        ("POST", "/notes", 401, "revoked"),
        ("GET", "/me", 401, "missing"),
    ]
    assert entries[1].key_id == issued.key_id
    assert {e.source for e in entries} == {REMOTE_CLIENT[0]}
    assert all(e.username is None for e in entries)
    with engine.connect() as conn:
        dump = repr(conn.execute(sa.text("SELECT * FROM audit_log")).all())
    assert issued.plaintext not in dump
    assert issued.plaintext.split("_", 2)[2] not in dump
    assert "garbage-key-value" not in dump


def test_a_denied_mutation_is_audited_once(
    client: TestClient, directory: UserDirectory, audit: AuditLog
) -> None:
    client.post("/notes")
    assert len(audit.list()) == 1


def test_error_bodies_never_leak_internals(client: TestClient, directory: UserDirectory) -> None:
    _, issued = directory.create_user("ana", Role.AGENT)
    response = client.post("/broken", headers={"X-API-Key": issued.plaintext})
    assert response.status_code == 500
    assert "boom" not in response.text
    assert "Traceback" not in response.text


def test_with_auth_off_local_requests_act_as_the_local_ti(make_client: Callable[..., TestClient]) -> None:
    client = make_client(enable_auth=False, loopback=True)
    assert client.get("/me").json() == {"username": "local", "role": "TI", "key_id": None}
    assert client.get("/probe/users.manage").status_code == 200


def test_with_auth_off_a_request_from_another_machine_is_still_refused(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(enable_auth=False, loopback=True, client=REMOTE_CLIENT)
    assert_unauthorized(client.get("/me"))


def test_auth_cannot_be_turned_off_on_a_public_bind(directory: UserDirectory, audit: AuditLog) -> None:
    with pytest.raises(ValueError, match="loopback"):
        Gate(
            directory=directory,
            audit=audit,
            limiter=RateLimiter(MemoryStorage(), rate="10/second", heavy_rate="1/second"),
            enable_auth=False,
            loopback=False,
        )


def test_the_openapi_document_says_how_to_authenticate(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} == {"apiKey", "http"}
    assert any(scheme.get("name") == "X-API-Key" for scheme in schemes.values())
    assert document["paths"]["/admin/users"]["post"]["security"]


def test_socket_handshakes_find_the_key_in_plain_header_mappings() -> None:
    assert presented_key({"x-api-key": "cm_a"}) == "cm_a"
    assert presented_key({"authorization": "Bearer cm_b"}) == "cm_b"
    assert presented_key({"authorization": "bearer  cm_c "}) == "cm_c"
    assert presented_key({"authorization": "Basic abc"}) is None
    assert presented_key({}) is None


def test_a_routes_own_check_refuses_with_403_audited_once_and_a_bulk_read_is_audited(
    app_over: Callable[..., FastAPI], engine: sa.Engine, directory: UserDirectory, audit: AuditLog
) -> None:
    app = app_over(engine)

    @app.get("/metrics/calls")
    def calls(request: Request, principal: Authenticated, team: str) -> dict[str, str]:
        own_team = team == principal.team
        authorize(request, principal, Capability.TEAM_METRICS if own_team else Capability.ALL_METRICS)
        return {"team": team}

    @app.get("/contacts")
    def contacts(request: Request, principal: Authenticated) -> list[str]:
        audit_read(request, filters=["status=new"], limit=2)
        note_audit(request, rows=2)
        return ["a", "b"]

    _, lead = directory.create_user("lucia", Role.TEAM_LEAD, team="Norte")
    key = {"X-API-Key": lead.plaintext}
    with TestClient(app, client=REMOTE_CLIENT) as client:
        assert client.get("/metrics/calls?team=Norte", headers=key).json() == {"team": "Norte"}
        refused = client.get("/metrics/calls?team=Sur", headers=key)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        assert client.get("/contacts", headers=key).json() == ["a", "b"]

    rows = [(r.entry.path, r.entry.outcome, r.entry.action, r.entry.detail) for r in audit.list()]
    assert sorted(rows, key=lambda row: row[0]) == [
        ("/contacts", Outcome.ALLOWED, None, {"filters": ["status=new"], "limit": 2, "rows": 2}),
        ("/metrics/calls", Outcome.DENIED, "metrics.all", {"reason": "missing_capability"}),
    ]


@pytest.mark.parametrize(
    ("source", "local"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("192.0.2.10", False),
        ("equipo-7", False),
        (None, False),
    ],
)
def test_with_auth_off_only_a_loopback_source_acts_as_the_local_ti(
    directory: UserDirectory, audit: AuditLog, source: str | None, local: bool
) -> None:
    gate = Gate(
        directory=directory,
        audit=audit,
        limiter=RateLimiter(MemoryStorage(), rate="10/second", heavy_rate="1/second"),
        enable_auth=False,
        loopback=True,
    )
    call = Call("GET", "/me", source)
    if local:
        assert gate.identify(None, call) is LOCAL_PRINCIPAL
    else:
        with pytest.raises(ApiError) as refused:
            gate.identify(None, call)
        assert refused.value.status_code == 401
        [entry] = [r.entry for r in audit.list()]
        assert (entry.source, entry.detail["reason"]) == (source, "auth_disabled_remote")


def test_the_audit_tells_a_refused_request_from_a_failed_one(
    app_over: Callable[..., FastAPI], engine: sa.Engine, directory: UserDirectory, audit: AuditLog
) -> None:
    app = app_over(engine)

    @app.post("/invalid")
    def invalid(principal: Authenticated) -> None:
        raise ApiError(400, "invalid", "Datos inválidos.")

    @app.post("/locked")
    def locked(principal: Authenticated) -> None:
        raise ApiError(403, "forbidden", "No es su contacto.")

    _, lead = directory.create_user("lucia", Role.TEAM_LEAD)
    with TestClient(app) as client:
        assert client.post("/invalid", headers={"X-API-Key": lead.plaintext}).status_code == 400
        assert client.post("/locked", headers={"X-API-Key": lead.plaintext}).status_code == 403
    outcomes = {r.entry.path: (r.entry.status_code, r.entry.outcome) for r in audit.list()}
    assert outcomes == {"/invalid": (400, Outcome.ERROR), "/locked": (403, Outcome.DENIED)}
