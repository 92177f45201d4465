"""One contract for the bus port, run against the in-process bus and Redis Streams alike."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from kernel.bus import Bus, Consumer, Delivery, InProcessBus
from kernel.bus.redis import RedisStreamsBus

BusFactory = Callable[..., Bus]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def make_bus(request: pytest.FixtureRequest, unique_name: str) -> Iterator[BusFactory]:
    """Build buses of one kind (optional ``maxlen``); the test's Redis keys are deleted afterwards."""
    buses: list[Bus] = []
    client: redis.Redis | None = None
    if request.param == "redis":
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))

    def make(maxlen: int = 1_000_000) -> Bus:
        bus: Bus = InProcessBus(maxlen) if client is None else RedisStreamsBus(client, maxlen)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()
    if client is not None:
        keys = list(client.scan_iter(match=f"{unique_name}*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def bus(make_bus: BusFactory) -> Bus:
    return make_bus()


@pytest.fixture
def topic(unique_name: str) -> str:
    return f"{unique_name}:events"


def bodies_of(deliveries: list[Delivery]) -> list[bytes]:
    return [d.body for d in deliveries]


def test_a_group_reads_messages_in_publish_order(bus: Bus, topic: str) -> None:
    bus.ensure_group(topic, "projector")
    ids = bus.publish(topic, [b"uno", b"dos", b"tres"])

    got = bus.read(topic, "projector", "c1", count=10, block_ms=0)

    assert bodies_of(got) == [b"uno", b"dos", b"tres"]
    assert [d.id for d in got] == ids
    assert all(d.deliveries == 1 for d in got)
    assert bus.read(topic, "projector", "c1", count=10, block_ms=0) == []


def test_message_ids_increase_within_a_topic(bus: Bus, topic: str) -> None:
    first = bus.publish(topic, [b"a", b"b"])
    second = bus.publish(topic, [b"c"])

    numbers = [tuple(int(part) for part in i.split("-")) for i in first + second]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 3


def test_read_honours_count(bus: Bus, topic: str) -> None:
    bus.ensure_group(topic, "g")
    bus.publish(topic, [b"%d" % i for i in range(5)])

    assert bodies_of(bus.read(topic, "g", "c", count=2, block_ms=0)) == [b"0", b"1"]
    assert bodies_of(bus.read(topic, "g", "c", count=2, block_ms=0)) == [b"2", b"3"]
    assert bodies_of(bus.read(topic, "g", "c", count=2, block_ms=0)) == [b"4"]


def test_each_group_gets_every_message(bus: Bus, topic: str) -> None:
    bus.ensure_group(topic, "gateway")
    bus.ensure_group(topic, "history")
    bus.publish(topic, [b"a", b"b", b"c"])

    assert bodies_of(bus.read(topic, "gateway", "g1", 10, 0)) == [b"a", b"b", b"c"]
    assert bodies_of(bus.read(topic, "history", "h1", 10, 0)) == [b"a", b"b", b"c"]


def test_consumers_of_one_group_split_the_messages_without_overlap(bus: Bus, topic: str) -> None:
    bus.ensure_group(topic, "workers")
    bus.publish(topic, [b"%d" % i for i in range(7)])

    first = bus.read(topic, "workers", "w1", count=3, block_ms=0)
    second = bus.read(topic, "workers", "w2", count=10, block_ms=0)

    assert len(first) == 3
    assert len(second) == 4
    assert {d.id for d in first}.isdisjoint({d.id for d in second})
    assert sorted(bodies_of(first + second)) == sorted(b"%d" % i for i in range(7))


def test_a_group_created_at_the_end_sees_only_later_messages(bus: Bus, topic: str) -> None:
    bus.publish(topic, [b"antes"])
    bus.ensure_group(topic, "late", start="$")
    bus.publish(topic, [b"despues"])

    assert bodies_of(bus.read(topic, "late", "c", 10, 0)) == [b"despues"]


def test_ensuring_an_existing_group_keeps_its_position(bus: Bus, topic: str) -> None:
    bus.ensure_group(topic, "g")
    bus.publish(topic, [b"a", b"b"])
    assert bodies_of(bus.read(topic, "g", "c", 1, 0)) == [b"a"]

    bus.ensure_group(topic, "g")

    assert bodies_of(bus.read(topic, "g", "c", 10, 0)) == [b"b"]


def test_unacked_messages_stay_pending_and_ack_removes_them(bus: Bus, topic: str) -> None:
    bus.ensure_group(topic, "g")
    bus.publish(topic, [b"a", b"b", b"c"])
    got = bus.read(topic, "g", "c", 10, 0)
    assert bus.pending_count(topic, "g") == 3

    bus.ack(topic, "g", [got[0].id, got[2].id])
    assert bus.pending_count(topic, "g") == 1

    bus.ack(topic, "g", [got[1].id])
    assert bus.pending_count(topic, "g") == 0


def test_recently_read_messages_are_not_claimed(bus: Bus, topic: str) -> None:
    bus.ensure_group(topic, "g")
    bus.publish(topic, [b"a"])
    bus.read(topic, "g", "alive", 10, 0)

    assert bus.claim_stale(topic, "g", "other", min_idle_ms=60_000, count=10) == []


def test_a_dead_consumers_messages_are_claimed_by_another_with_delivery_count_two(
    bus: Bus, topic: str
) -> None:
    bus.ensure_group(topic, "g")
    bus.publish(topic, [b"a", b"b", b"c"])
    read = bus.read(topic, "g", "dead", 10, 0)
    time.sleep(0.05)

    claimed = bus.claim_stale(topic, "g", "rescuer", min_idle_ms=20, count=10)

    assert [(d.id, d.body, d.deliveries) for d in claimed] == [(d.id, d.body, 2) for d in read]
    assert bus.pending_count(topic, "g") == 3
    assert bus.claim_stale(topic, "g", "third", min_idle_ms=60_000, count=10) == []
    bus.ack(topic, "g", [d.id for d in claimed])
    assert bus.pending_count(topic, "g") == 0


def test_claim_takes_at_most_count_oldest_first(bus: Bus, topic: str) -> None:
    bus.ensure_group(topic, "g")
    bus.publish(topic, [b"%d" % i for i in range(5)])
    bus.read(topic, "g", "dead", 10, 0)
    time.sleep(0.05)

    first = bus.claim_stale(topic, "g", "r", min_idle_ms=20, count=2)
    rest = bus.claim_stale(topic, "g", "r2", min_idle_ms=20, count=10)

    assert bodies_of(first) == [b"0", b"1"]
    assert bodies_of(rest) == [b"2", b"3", b"4"]


def test_read_without_waiting_returns_nothing_on_an_empty_topic(bus: Bus, topic: str) -> None:
    bus.ensure_group(topic, "g")

    assert bus.read(topic, "g", "c", 10, block_ms=0) == []


def test_blocking_read_returns_when_a_message_arrives(bus: Bus, topic: str) -> None:
    bus.ensure_group(topic, "g")
    publisher = threading.Timer(0.2, bus.publish, args=(topic, [b"llego"]))
    publisher.start()
    try:
        got = bus.read(topic, "g", "c", 10, block_ms=10_000)
    finally:
        publisher.join()

    assert bodies_of(got) == [b"llego"]


def test_publish_at_twice_appends_once(bus: Bus, topic: str) -> None:
    assert bus.last_id(topic) == 0
    assert bus.publish_at(topic, [(1, b"e1"), (2, b"e2"), (3, b"e3")]) == 3

    assert bus.publish_at(topic, [(2, b"e2"), (3, b"e3"), (4, b"e4")]) == 1
    assert bus.publish_at(topic, [(4, b"e4")]) == 0

    assert bus.last_id(topic) == 4
    assert bus.read_range(topic, after=0, count=100) == [(1, b"e1"), (2, b"e2"), (3, b"e3"), (4, b"e4")]


def test_publish_at_keeps_gaps_in_positions(bus: Bus, topic: str) -> None:
    assert bus.publish_at(topic, [(5, b"e5"), (9, b"e9")]) == 2

    assert bus.last_id(topic) == 9
    assert bus.read_range(topic, after=5, count=10) == [(9, b"e9")]


def test_read_range_pages_after_a_position(bus: Bus, topic: str) -> None:
    bus.publish_at(topic, [(n, b"e%d" % n) for n in range(1, 8)])

    assert bus.read_range(topic, after=2, count=3) == [(3, b"e3"), (4, b"e4"), (5, b"e5")]
    assert bus.read_range(topic, after=5, count=10) == [(6, b"e6"), (7, b"e7")]
    assert bus.read_range(topic, after=7, count=10) == []
    assert bus.read_range(f"{topic}-missing", after=0, count=10) == []


def test_published_messages_are_readable_by_range(bus: Bus, topic: str) -> None:
    ids = bus.publish(topic, [b"a", b"b"])

    got = bus.read_range(topic, after=0, count=10)

    assert [body for _, body in got] == [b"a", b"b"]
    assert bus.last_id(topic) == int(ids[-1].split("-")[0])


def test_maxlen_keeps_roughly_the_newest_messages(make_bus: BusFactory, topic: str) -> None:
    bus = make_bus(maxlen=100)
    for start in range(0, 1000, 50):
        bus.publish(topic, [b"%d" % i for i in range(start, start + 50)])

    kept = [body for _, body in bus.read_range(topic, after=0, count=10_000)]

    assert 100 <= len(kept) <= 300
    assert kept == [b"%d" % i for i in range(1000 - len(kept), 1000)]


class EffectStore:
    """An idempotent effect: one row per message id, written and committed before the handler returns."""

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("CREATE TABLE effects (message_id TEXT PRIMARY KEY, body BLOB, consumer TEXT)")
        self.attempts: list[str] = []

    def apply(self, delivery: Delivery, consumer: str) -> None:
        self.attempts.append(delivery.id)
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO effects VALUES (?, ?, ?)", (delivery.id, delivery.body, consumer)
            )

    def rows(self) -> list[tuple[str, bytes, str]]:
        return self.db.execute("SELECT message_id, body, consumer FROM effects").fetchall()


def test_a_consumer_dying_mid_batch_loses_nothing_and_repeats_no_effect(bus: Bus, topic: str) -> None:
    ids = bus.publish(topic, [b"msg-%d" % i for i in range(20)])
    effects = EffectStore()

    def dies_after_four(batch: list[Delivery]) -> None:
        for delivery in batch[:4]:
            effects.apply(delivery, "a")
        raise RuntimeError("el proceso murió a mitad del lote")

    def works(batch: list[Delivery]) -> None:
        for delivery in batch:
            effects.apply(delivery, "b")

    a = Consumer(bus, topic, "g", "a", dies_after_four, batch_size=10, block_ms=0, claim_idle_ms=50)
    b = Consumer(bus, topic, "g", "b", works, batch_size=100, block_ms=0, claim_idle_ms=50)

    assert a.poll_once() == 0
    assert bus.pending_count(topic, "g") == 10
    time.sleep(0.1)
    assert b.poll_once() == 20
    assert b.poll_once() == 0

    rows = effects.rows()
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert {r[0]: r[1] for r in rows} == {i: b"msg-%d" % n for n, i in enumerate(ids)}
    assert [r[2] for r in rows].count("a") == 4
    assert len(effects.attempts) == 24
    assert bus.pending_count(topic, "g") == 0


def test_consumer_in_a_thread_handles_messages_published_later(bus: Bus, topic: str) -> None:
    seen: list[bytes] = []
    done = threading.Event()

    def handle(batch: list[Delivery]) -> None:
        seen.extend(bodies_of(batch))
        if len(seen) >= 5:
            done.set()

    consumer = Consumer(bus, topic, "g", "t", handle, batch_size=2, block_ms=100, start="0")
    running = consumer.start_in_thread()
    try:
        bus.publish(topic, [b"%d" % i for i in range(5)])
        assert done.wait(10)
    finally:
        running.stop()

    assert not running.thread.is_alive()
    assert seen == [b"%d" % i for i in range(5)]
    assert bus.pending_count(topic, "g") == 0


def test_a_failing_handler_is_retried_after_the_claim_interval(bus: Bus, topic: str) -> None:
    failures = [1]
    handled: list[tuple[bytes, int]] = []

    def flaky(batch: list[Delivery]) -> None:
        if failures:
            failures.pop()
            raise RuntimeError("base de datos no disponible")
        handled.extend((d.body, d.deliveries) for d in batch)

    consumer = Consumer(bus, topic, "g", "c", flaky, block_ms=0, claim_idle_ms=30, backoff_s=0.01)
    bus.ensure_group(topic, "g")
    bus.publish(topic, [b"x"])

    assert consumer.poll_once() == 0
    time.sleep(0.06)
    assert consumer.poll_once() == 1

    assert handled == [(b"x", 2)]
    assert bus.pending_count(topic, "g") == 0


def test_closing_the_bus_wakes_a_blocked_reader(bus: Bus, topic: str) -> None:
    bus.ensure_group(topic, "g")
    results: list[list[Delivery]] = []
    reader = threading.Thread(target=lambda: results.append(bus.read(topic, "g", "c", 10, block_ms=30_000)))
    reader.start()
    time.sleep(0.2)

    bus.close()
    reader.join(10)

    assert not reader.is_alive()
    assert results == [[]]
