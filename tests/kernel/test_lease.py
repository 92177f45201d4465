"""A Redis lease is held by one holder at a time and passes on when the holder stops renewing."""

from __future__ import annotations

import time

import redis

from kernel.bus.lease import RedisLease, SoleLease


def test_only_one_holder_at_a_time_and_takeover_after_expiry(redis_url: str, unique_name: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        first = RedisLease(client, unique_name, ttl_ms=300)
        second = RedisLease(client, unique_name, ttl_ms=300)
        assert first.hold() is True
        assert second.hold() is False
        assert first.hold() is True
        time.sleep(0.4)
        assert second.hold() is True
        assert first.hold() is False
    finally:
        client.delete(unique_name)
        client.close()


def test_a_process_alone_always_leads() -> None:
    assert SoleLease().hold() is True
