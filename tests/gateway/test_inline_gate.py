"""Embedded mode admits passing requests on the event loop: refusals still answer and audit the same."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from gateway.audit import AuditFilter, AuditLog, Outcome
from gateway.counters import WindowCounters
from gateway.ratelimit import RateLimiter
from gateway.users import UserDirectory
from kernel.roles import Role


@pytest.fixture
def inline_client(make_client: Callable[..., TestClient]) -> Callable[..., TestClient]:
    def make(rate: str = "1000/minute", heavy_rate: str = "1000/minute") -> TestClient:
        limiter = RateLimiter(WindowCounters(), rate=rate, heavy_rate=heavy_rate)
        return make_client(limiter=limiter, inline=True)

    return make


def test_a_revoked_or_deactivated_key_stops_at_once(
    inline_client: Callable[..., TestClient], directory: UserDirectory
) -> None:
    client = inline_client()
    _, ana = directory.create_user("ana", Role.AGENT)
    _, luis = directory.create_user("luis", Role.AGENT)
    for issued in (ana, luis):
        assert client.get("/me", headers={"X-API-Key": issued.plaintext}).status_code == 200
    directory.revoke_key(ana.key_id)
    directory.deactivate("luis")
    for issued in (ana, luis):
        assert client.get("/me", headers={"X-API-Key": issued.plaintext}).status_code == 401


def test_refusals_are_answered_and_audited_once(
    inline_client: Callable[..., TestClient], directory: UserDirectory, audit: AuditLog
) -> None:
    client = inline_client(rate="2/minute")
    _, ana = directory.create_user("ana", Role.AGENT)
    headers = {"X-API-Key": ana.plaintext}
    forbidden = client.get("/probe/users.manage", headers=headers)
    allowed = client.get("/probe/contacts.read", headers=headers)
    limited = client.get("/probe/contacts.read", headers=headers)
    unknown = client.get("/me", headers={"X-API-Key": "cm_0123456789ab_" + "A" * 43})

    assert [r.status_code for r in (forbidden, allowed, limited, unknown)] == [403, 200, 429, 401]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    denied = [r.entry for r in audit.list(AuditFilter(outcome=Outcome.DENIED))]
    assert sorted((e.status_code, e.detail["reason"]) for e in denied) == [
        (401, "unknown_key"),
        (403, "missing_capability"),
        (429, "rate_limit"),
    ]


def test_heavy_capabilities_pay_both_limits(
    inline_client: Callable[..., TestClient], directory: UserDirectory
) -> None:
    client = inline_client(rate="100/minute", heavy_rate="2/minute")
    _, pm = directory.create_user("pm", Role.PROJECT_MANAGER)
    headers = {"X-API-Key": pm.plaintext}
    statuses = [client.get("/probe/contacts.import", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert client.get("/probe/contacts.read", headers=headers).status_code == 200


def test_the_first_use_of_a_key_is_recorded(
    inline_client: Callable[..., TestClient], directory: UserDirectory
) -> None:
    client = inline_client()
    user, ana = directory.create_user("ana", Role.AGENT)
    assert client.get("/me", headers={"X-API-Key": ana.plaintext}).status_code == 200
    assert client.get("/me", headers={"X-API-Key": ana.plaintext}).status_code == 200
    [key] = directory.list_keys("ana")
    assert key.last_used_at is not None
    assert key.last_used_at - user.created_at < timedelta(minutes=1)


def test_window_counters_refuse_past_the_limit_and_say_when_to_retry() -> None:
    limiter = RateLimiter(WindowCounters(), rate="3/minute", heavy_rate="1/minute")
    assert [limiter.hit("k").allowed for _ in range(4)] == [True, True, True, False]
    refused = limiter.hit("k")
    assert not refused.allowed
    assert 55 <= refused.retry_after <= 60
    assert limiter.hit("other").allowed
    assert limiter.hit("k", heavy=True).allowed
    assert not limiter.hit("k", heavy=True).allowed


def test_window_counters_count_fixed_windows_too() -> None:
    limiter = RateLimiter(WindowCounters(), rate="2/minute", heavy_rate="1/minute", window="fixed")
    assert [limiter.hit("k").allowed for _ in range(3)] == [True, True, False]


def test_a_role_without_the_capability_is_refused_on_the_inline_path_too(
    inline_client: Callable[..., TestClient], directory: UserDirectory
) -> None:
    client = inline_client()
    _, agent = directory.create_user("ana", Role.AGENT)
    key = {"X-API-Key": agent.plaintext}
    assert client.get("/probe/contacts.read", headers=key).status_code == 200
    assert client.get("/probe/contacts.read", headers=key).status_code == 200  # use recorded: quick path
    assert client.get("/probe/users.manage", headers=key).status_code == 403
