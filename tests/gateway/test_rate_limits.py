"""Per-key rate limits: 429 with Retry-After, a stricter limit for import/generate, shared across replicas."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from limits.storage import MemoryStorage, storage_from_string

from gateway.audit import AuditFilter, AuditLog, Outcome
from gateway.ratelimit import RateLimiter
from gateway.users import UserDirectory
from kernel.roles import Role


def test_past_the_limit_a_key_gets_429_with_retry_after(
    make_client: Callable[..., TestClient], directory: UserDirectory, audit: AuditLog
) -> None:
    _, issued = directory.create_user("ana", Role.AGENT)
    client = make_client(limiter=RateLimiter(MemoryStorage(), rate="3/minute", heavy_rate="1/minute"))
    headers = {"X-API-Key": issued.plaintext}
    assert [client.get("/me", headers=headers).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/me", headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    [entry] = [r.entry for r in audit.list(AuditFilter(outcome=Outcome.DENIED))]
    assert (entry.username, entry.status_code, entry.detail["reason"]) == ("ana", 429, "rate_limit")


def test_each_key_has_its_own_budget(
    make_client: Callable[..., TestClient], directory: UserDirectory
) -> None:
    _, ana = directory.create_user("ana", Role.AGENT)
    _, luis = directory.create_user("luis", Role.AGENT)
    client = make_client(limiter=RateLimiter(MemoryStorage(), rate="2/minute", heavy_rate="1/minute"))
    for _ in range(2):
        client.get("/me", headers={"X-API-Key": ana.plaintext})
    assert client.get("/me", headers={"X-API-Key": ana.plaintext}).status_code == 429
    assert client.get("/me", headers={"X-API-Key": luis.plaintext}).status_code == 200


def test_import_and_generate_pay_the_stricter_heavy_limit(
    make_client: Callable[..., TestClient], directory: UserDirectory
) -> None:
    _, issued = directory.create_user("pm", Role.PROJECT_MANAGER)
    client = make_client(limiter=RateLimiter(MemoryStorage(), rate="100/minute", heavy_rate="2/minute"))
    headers = {"X-API-Key": issued.plaintext}
    imports = [client.get("/probe/contacts.import", headers=headers).status_code for _ in range(3)]
    assert imports == [200, 200, 429]
    assert client.get("/probe/contacts.generate", headers=headers).status_code == 429
    assert client.get("/probe/contacts.export", headers=headers).status_code == 200
    assert client.get("/probe/contacts.read", headers=headers).status_code == 200


def test_limits_change_while_running() -> None:
    limiter = RateLimiter(MemoryStorage(), rate="1/minute", heavy_rate="1/minute")
    assert limiter.hit("k").allowed
    assert not limiter.hit("k").allowed
    limiter.configure(rate="5/minute")
    assert limiter.rate == "5/minute"
    assert limiter.hit("k").allowed
    with pytest.raises(ValueError, match="inválido"):
        limiter.configure(rate="muchas por minuto", heavy_rate="3/minute")
    assert (limiter.rate, limiter.heavy_rate) == ("5/minute", "1/minute")


@pytest.mark.parametrize("window", ["moving", "fixed"])
@pytest.mark.redis
def test_replicas_sharing_redis_share_one_budget_per_key(
    redis_url: str, unique_name: str, window: str
) -> None:
    replicas = [
        RateLimiter(
            storage_from_string(redis_url),
            rate="4/minute",
            heavy_rate="1/minute",
            window=window,  # type: ignore[arg-type]
            namespace=unique_name,
        )
        for _ in range(2)
    ]
    decisions = [replicas[i % 2].hit("key1").allowed for i in range(5)]
    assert decisions == [True, True, True, True, False]
    refused = replicas[0].hit("key1")
    assert refused.retry_after >= 1
    assert replicas[1].hit("key2").allowed


def test_an_unreachable_rate_store_lets_requests_through() -> None:
    limiter = RateLimiter(
        storage_from_string("redis://127.0.0.1:9/0", socket_connect_timeout=0.2),
        rate="1/minute",
        heavy_rate="1/minute",
    )
    assert limiter.hit("k").allowed
    assert limiter.hit("k").allowed


def test_requests_without_a_valid_key_are_limited_per_source_and_audited_a_few_a_window(
    make_client: Callable[..., TestClient], directory: UserDirectory, audit: AuditLog
) -> None:
    _, issued = directory.create_user("ana", Role.AGENT)
    limiter = RateLimiter(
        MemoryStorage(),
        rate="100/minute",
        heavy_rate="10/minute",
        unidentified_rate="3/minute",
        audited_rate="2/minute",
    )
    client = make_client(limiter=limiter)
    answers = [
        client.get("/me").status_code,
        client.get("/me", headers={"X-API-Key": "cm_wrong"}).status_code,
    ]
    answers.append(client.get("/me").status_code)
    refused = client.get("/me", headers={"X-API-Key": "cm_wrong"})

    assert answers == [401, 401, 401]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    rows = [r.entry for r in audit.list(AuditFilter(outcome=Outcome.DENIED))]
    assert sorted(row.detail["failures_in_window"] for row in rows) == [1, 2], "two rows, then the log only"
    assert {row.status_code for row in rows} == {401}
    assert client.get("/me", headers={"X-API-Key": issued.plaintext}).status_code == 200, "a valid key passes"


def test_each_source_address_has_its_own_unidentified_budget_and_the_429_is_audited_with_why(
    make_client: Callable[..., TestClient], audit: AuditLog
) -> None:
    limiter = RateLimiter(
        MemoryStorage(),
        rate="100/minute",
        heavy_rate="10/minute",
        unidentified_rate="2/minute",
        audited_rate="10/minute",
    )
    first = make_client(limiter=limiter, client=("203.0.113.7", 40000))
    second = make_client(limiter=limiter, client=("203.0.113.8", 40000))

    assert [first.get("/me").status_code for _ in range(3)] == [401, 401, 429]
    assert second.get("/me").status_code == 401, "another address keeps its own budget"
    refused = first.get("/me")
    assert refused.status_code == 429
    assert refused.json()["error"]["message"].endswith(f"{refused.headers['Retry-After']} s.")
    rows = [r.entry for r in audit.list(AuditFilter(outcome=Outcome.DENIED))]
    by_source = sorted((row.source, row.status_code, row.detail["reason"]) for row in rows)
    assert by_source[-1] == ("203.0.113.8", 401, by_source[-1][2])
    assert [r for r in by_source if r[1] == 429] == [("203.0.113.7", 429, "unidentified_rate_limit")] * 2
