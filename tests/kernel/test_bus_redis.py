"""Behaviour particular to the Redis Streams adapter (the shared contract is in test_bus_contract.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from kernel.bus.redis import RedisStreamsBus

pytestmark = pytest.mark.redis


@pytest.fixture
def client(redis_url: str, unique_name: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    keys = list(client.scan_iter(match=f"{unique_name}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_a_read_longer_than_the_socket_timeout_returns_empty_instead_of_failing(
    redis_url: str, unique_name: str, client: redis.Redis
) -> None:
    impatient = redis.Redis.from_url(redis_url, socket_timeout=0.4)
    bus = RedisStreamsBus(impatient, owns_client=True)
    bus.ensure_group(f"{unique_name}:t", "g")

    assert bus.read(f"{unique_name}:t", "g", "c", 10, block_ms=1200) == []
    bus.close()


def test_publish_at_reports_errors_other_than_an_existing_position(
    client: redis.Redis, unique_name: str
) -> None:
    client.set(f"{unique_name}:not-a-stream", b"x")
    bus = RedisStreamsBus(client)

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        bus.publish_at(f"{unique_name}:not-a-stream", [(1, b"e1")])


def test_messages_are_plain_stream_entries_with_the_body_in_one_field(
    client: redis.Redis, unique_name: str
) -> None:
    bus = RedisStreamsBus(client)
    bus.publish_at(f"{unique_name}:t", [(7, b'{"a":1}')])

    assert client.xrange(f"{unique_name}:t") == [(b"7-0", {b"m": b'{"a":1}'})]


def test_a_decoding_client_is_refused(redis_url: str) -> None:
    decoding = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            RedisStreamsBus(decoding)
    finally:
        decoding.close()
