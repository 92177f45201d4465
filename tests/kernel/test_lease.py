"""A Redis lease is held by one holder at a time and passes on when the holder stops renewing."""

from __future__ import annotations

import threading
import time

import redis

from kernel.bus.lease import RedisLease, SoleLease, consume_while_leading


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


class Poller:
    """A consumer stand-in whose every poll takes ``seconds`` (a batch handled slowly)."""

    topic = "contacts.events"
    group = "gateway"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.polls = 0

    def poll_once(self) -> int:
        self.polls += 1
        time.sleep(self.seconds)
        return 0


def _leading(consumer: Poller, lease: RedisLease, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=consume_while_leading, args=(consumer, lease, stop), kwargs={"wait_s": 0.05, "renew_s": 0.1}
    )
    thread.start()
    return thread


def test_a_leader_whose_poll_outlasts_the_lease_keeps_it_and_loses_it_only_when_it_stops(
    redis_url: str, unique_name: str
) -> None:
    # A poll slower than the lease (a loaded gateway handling a batch) must not hand the topic to another
    # replica mid-batch: both would emit, and clients would get notices out of order.
    client = redis.Redis.from_url(redis_url)
    slow, other = Poller(1.0), Poller(0.01)
    stop_slow, stop_other = threading.Event(), threading.Event()
    try:
        leader = _leading(slow, RedisLease(client, unique_name, ttl_ms=300), stop_slow)
        deadline = time.monotonic() + 5
        while slow.polls == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        follower = _leading(other, RedisLease(client, unique_name, ttl_ms=300), stop_other)
        time.sleep(2.5)
        polled_while_led = other.polls
        stop_slow.set()
        leader.join(timeout=5)
        deadline = time.monotonic() + 5
        while other.polls == polled_while_led and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop_slow.set()
        stop_other.set()
        client.delete(unique_name)
        client.close()
    follower.join(timeout=5)

    assert slow.polls >= 2
    assert polled_while_led == 0
    assert other.polls > 0, "the follower takes over once the leader stops renewing"
