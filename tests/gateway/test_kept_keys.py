"""A gateway on PostgreSQL keeps key rows while PostgreSQL announces no change, and admits on the loop.

The change signal listens on the ``callmanager_keys`` channel; the triggers of migration
``gateway_0002`` notify it whoever changes users or keys. These tests change them from a second
directory (as the CLI does, in another process) and by hand in SQL, and wait for the announcement the
way a running gateway hears it: never more than a few milliseconds here, waited for up to 5 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.storage import MemoryStorage, storage_from_string

from gateway.audit import AuditFilter, AuditLog, Outcome
from gateway.metrics import GatewayMetrics
from gateway.ratelimit import RateLimiter
from gateway.users import KEYS_CHANNEL, DenialReason, UserDirectory
from kernel.roles import Role
from kernel.store import create_engine
from kernel.store.changes import ChangeSignal
from system.migrate import upgrade
from tests.support.changes import Listening, settle, wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(postgres_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def changes(pg_engine: sa.Engine) -> Iterator[ChangeSignal]:
    """A listening change signal on the keys channel, stopped afterwards."""
    signal = ChangeSignal(pg_engine, KEYS_CHANNEL, check_every=0.2, retry_every=0.2)
    listening = Listening(signal)
    wait_until(lambda: signal.version is not None)
    yield signal
    listening.stop()
    assert signal.version is None


def _moved_from(signal: ChangeSignal, version: int | None) -> Callable[[], bool]:
    return lambda: signal.version is not None and signal.version != version


def test_keys_are_kept_until_another_process_revokes_or_deactivates(
    pg_engine: sa.Engine, changes: ChangeSignal
) -> None:
    gateway = UserDirectory(pg_engine, changes=changes)
    cli = UserDirectory(pg_engine)  # no signal: like the CLI, it only writes
    _, ana = cli.create_user("ana", Role.AGENT)
    _, luis = cli.create_user("luis", Role.TEAM_LEAD)
    settle(changes)
    assert gateway.verify_kept(ana.plaintext) is None  # nothing kept before a first read
    for issued in (ana, luis):
        assert gateway.verify(issued.plaintext).principal is not None
        kept = gateway.verify_kept(issued.plaintext)
        assert kept is not None
        assert kept.key_id == issued.key_id

    version = changes.version
    cli.revoke_key(ana.key_id)
    wait_until(_moved_from(changes, version))
    assert gateway.verify_kept(ana.plaintext) is None
    assert gateway.verify(ana.plaintext).reason == DenialReason.REVOKED

    version = changes.version
    cli.deactivate("luis")
    wait_until(_moved_from(changes, version))
    assert gateway.verify_kept(luis.plaintext) is None
    assert gateway.verify(luis.plaintext).principal is None


def test_a_change_by_hand_in_sql_is_heard_too_but_a_recorded_use_is_not(
    pg_engine: sa.Engine, changes: ChangeSignal
) -> None:
    gateway = UserDirectory(pg_engine, changes=changes)
    _, ana = gateway.create_user("ana", Role.AGENT)
    settle(changes)
    assert gateway.verify(ana.plaintext).principal is not None
    with pg_engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_keys SET last_used_at = now()"))
    # A marker notification after it: when it is heard, the last-use update (if it notified) was too.
    version = changes.version
    with pg_engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_notify(:channel, 'marker')"), {"channel": KEYS_CHANNEL})
    wait_until(_moved_from(changes, version))
    assert changes.version == (version or 0) + 1  # the marker alone moved it
    assert gateway.verify(ana.plaintext).principal is not None
    assert gateway.verify_kept(ana.plaintext) is not None

    version = changes.version
    with pg_engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET role = 'TI'"))
    wait_until(_moved_from(changes, version))
    assert gateway.verify_kept(ana.plaintext) is None
    principal = gateway.verify(ana.plaintext).principal
    assert principal is not None
    assert principal.role is Role.TI


def test_this_process_own_changes_count_before_the_announcement(
    pg_engine: sa.Engine, changes: ChangeSignal
) -> None:
    gateway = UserDirectory(pg_engine, changes=changes)
    _, ana = gateway.create_user("ana", Role.AGENT)
    assert gateway.verify(ana.plaintext).principal is not None
    gateway.revoke_key(ana.key_id)
    assert gateway.verify_kept(ana.plaintext) is None  # at once, not a few milliseconds later
    assert gateway.verify(ana.plaintext).principal is None


def test_without_a_listening_connection_nothing_is_kept(pg_engine: sa.Engine) -> None:
    signal = ChangeSignal(pg_engine, KEYS_CHANNEL)  # never started
    gateway = UserDirectory(pg_engine, changes=signal)
    _, ana = gateway.create_user("ana", Role.AGENT)
    assert gateway.verify(ana.plaintext).principal is not None
    assert gateway.verify_kept(ana.plaintext) is None


def test_a_lost_listening_connection_keeps_nothing_until_it_listens_again(
    pg_engine: sa.Engine, changes: ChangeSignal
) -> None:
    gateway = UserDirectory(pg_engine, changes=changes)
    _, ana = gateway.create_user("ana", Role.AGENT)
    assert gateway.verify(ana.plaintext).principal is not None
    version = changes.version
    with pg_engine.begin() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND (query LIKE 'LISTEN%' OR query LIKE '%pg_listening_channels%')"
            )
        )
    wait_until(lambda: changes.version is None or changes.version != version)
    assert gateway.verify_kept(ana.plaintext) is None  # what was kept before the loss is stale
    wait_until(lambda: changes.version is not None)
    assert gateway.verify(ana.plaintext).principal is not None
    assert gateway.verify_kept(ana.plaintext) is not None


@pytest.mark.redis
def test_requests_with_kept_keys_are_admitted_on_the_loop_counted_once_and_refusals_audited(
    pg_engine: sa.Engine,
    changes: ChangeSignal,
    app_over: Callable[..., Any],
    redis_url: str,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limiter = RateLimiter(
        storage_from_string(redis_url),
        rate="4/minute",
        heavy_rate="100/minute",
        namespace=unique_name,
        async_storage=AsyncRedisStorage(f"async+{redis_url}", implementation="redispy"),
    )
    full_checks = []
    verify = UserDirectory.verify

    def counted(self: UserDirectory, presented: str | None) -> Any:
        full_checks.append(presented)
        return verify(self, presented)

    monkeypatch.setattr(UserDirectory, "verify", counted)
    _, ana = UserDirectory(pg_engine).create_user("ana", Role.AGENT)
    headers = {"X-API-Key": ana.plaintext}
    with _loop_client(app_over, pg_engine, changes, limiter) as client:
        forbidden = client.get("/probe/users.manage", headers=headers)
        codes = [client.get("/probe/contacts.read", headers=headers).status_code for _ in range(4)]

    # The 403: full checks on a thread (the key read and kept, its first use recorded, the request
    # counted); the next three are admitted on the loop from the kept row; the 4th is refused there (the
    # 403 counted too), so the full checks answer it: 429.
    assert forbidden.status_code == 403
    assert codes == [200, 200, 200, 429]
    assert len(full_checks) == 2
    denied = [r.entry for r in AuditLog(pg_engine).list(AuditFilter(outcome=Outcome.DENIED))]
    assert sorted((e.status_code, e.detail["reason"]) for e in denied) == [
        (403, "missing_capability"),
        (429, "rate_limit"),
    ]


def _loop_client(
    app_over: Callable[..., Any], engine: sa.Engine, changes: ChangeSignal, limiter: RateLimiter
) -> TestClient:
    app = app_over(engine, limiter=limiter, changes=changes)
    return TestClient(app, client=("127.0.0.1", 50000), raise_server_exceptions=False)


@pytest.mark.redis
def test_the_loop_and_the_threads_count_against_one_budget_on_redis(redis_url: str, unique_name: str) -> None:
    limiter = RateLimiter(
        storage_from_string(redis_url),
        rate="4/minute",
        heavy_rate="1/minute",
        namespace=unique_name,
        async_storage=AsyncRedisStorage(f"async+{redis_url}", implementation="redispy"),
    )

    async def on_the_loop() -> list[bool]:
        return [await limiter.passes("key1") for _ in range(2)]

    assert asyncio.run(on_the_loop()) == [True, True]
    assert [limiter.hit("key1").allowed for _ in range(3)] == [True, True, False]
    assert asyncio.run(on_the_loop()) == [False, False]
    assert limiter.hit("key2").allowed


def test_an_unreachable_asyncio_rate_store_sends_requests_to_the_full_checks() -> None:
    limiter = RateLimiter(
        MemoryStorage(),
        rate="10/minute",
        heavy_rate="1/minute",
        async_storage=AsyncRedisStorage(
            "async+redis://127.0.0.1:9/0", implementation="redispy", socket_connect_timeout=0.2
        ),
    )
    assert asyncio.run(limiter.passes("k")) is False
    assert limiter.hit("k").allowed


def test_the_metrics_tell_whether_key_changes_are_heard(pg_engine: sa.Engine) -> None:
    signal = ChangeSignal(pg_engine, KEYS_CHANNEL, check_every=0.2, retry_every=0.2)
    metrics = GatewayMetrics()
    metrics.watch_key_changes(signal)

    def listening() -> float | None:
        return metrics.registry.get_sample_value("callmanager_key_changes_listening")

    assert listening() == 0.0
    running = Listening(signal)
    try:
        wait_until(lambda: listening() == 1.0)
    finally:
        running.stop()
    assert listening() == 0.0
