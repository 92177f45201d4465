"""The relay publishes every stored event to the bus exactly once, across restarts and crashes."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from kernel.bus.memory import InProcessBus
from kernel.bus.port import Bus
from kernel.envelope import Envelope
from kernel.relay import Relay
from kernel.store import EventStore, PositionStore, StreamAppend, create_engine
from system.migrate import upgrade


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    engine = create_engine(database_url)
    upgrade(engine)
    try:
        yield EventStore(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["memory", "redis"])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    if request.param == "memory":
        memory = InProcessBus()
        yield memory
        memory.close()
        return
    import redis

    from kernel.bus.redis import RedisStreamsBus

    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    topic = request.getfixturevalue("unique_name")
    request.node.stash[_TOPIC] = topic
    yield RedisStreamsBus(client, owns_client=False)
    client.delete(topic)
    client.close()


_TOPIC = pytest.StashKey[str]()


@pytest.fixture
def topic(request: pytest.FixtureRequest, bus: Bus) -> str:
    return request.node.stash.get(_TOPIC, "contacts.events")


class CrashAfterPublish(PositionStore):
    """Positions that fail to save once, as if the process died right after publishing."""

    def __init__(self) -> None:
        self.armed = True

    def set(self, conn: Connection, name: str, position: int) -> None:
        if self.armed:
            self.armed = False
            raise RuntimeError("simulated crash between publish and save")
        super().set(conn, name, position)


def _write(store: EventStore, streams: int, per_stream: int = 1, start: int = 0) -> list[Envelope]:
    appends = [
        StreamAppend(
            f"contact-{s}", 0, [Envelope(type="t", stream_id="", data={"i": i}) for i in range(per_stream)]
        )
        for s in range(start, start + streams)
    ]
    with store.transaction() as conn:
        return list(store.append_many(conn, appends))


def _published(bus: Bus, topic: str) -> list[Envelope]:
    raw = bus.read_range(topic, 0, 1_000_000)
    received = [Envelope.from_json(body) for _, body in raw]
    assert [n for n, _ in raw] == [e.position for e in received]
    return received


def test_every_stored_event_reaches_the_bus_in_order_under_its_position(
    store: EventStore, bus: Bus, topic: str
) -> None:
    written = _write(store, 25, per_stream=2)
    relay = Relay(store, PositionStore(), bus, topic, batch=7)

    rounds = [relay.run_once() for _ in range(9)]

    assert rounds == [7, 7, 7, 7, 7, 7, 7, 1, 0]
    assert _published(bus, topic) == written
    assert relay.position == written[-1].position


def test_a_restarted_relay_continues_where_it_stopped(store: EventStore, bus: Bus, topic: str) -> None:
    positions = PositionStore()
    first = _write(store, 10)
    Relay(store, positions, bus, topic).run_once()
    more = _write(store, 5, start=10)

    restarted = Relay(store, positions, bus, topic)

    assert restarted.run_once() == 5
    assert restarted.run_once() == 0
    assert _published(bus, topic) == first + more


def test_a_crash_between_publish_and_save_neither_duplicates_nor_skips(
    store: EventStore, bus: Bus, topic: str
) -> None:
    positions = PositionStore()
    first = _write(store, 10)
    Relay(store, positions, bus, topic, batch=4).run_once()
    crashing = Relay(store, CrashAfterPublish(), bus, topic, batch=4)
    with pytest.raises(RuntimeError):
        crashing.run_once()
    more = _write(store, 3, start=10)

    restarted = Relay(store, positions, bus, topic, batch=4)
    while restarted.run_once():
        pass

    assert _published(bus, topic) == first + more
    with store.engine.connect() as conn:
        assert positions.get(conn, restarted.name) == more[-1].position


def test_a_relay_whose_position_was_lost_does_not_republish(store: EventStore, bus: Bus, topic: str) -> None:
    written = _write(store, 6)
    Relay(store, PositionStore(), bus, topic, name="relay:a").run_once()
    more = _write(store, 2, start=6)

    fresh = Relay(store, PositionStore(), bus, topic, name="relay:new-name")
    fresh.run_once()

    assert _published(bus, topic) == written + more


def test_replaying_republishes_only_what_the_bus_does_not_hold(
    store: EventStore, bus: Bus, topic: str
) -> None:
    written = _write(store, 6)
    Relay(store, PositionStore(), bus, topic).run_once()

    replaying = Relay(store, PositionStore(), bus, topic, replay_after=0)
    assert replaying.run_once() == 6

    assert _published(bus, topic) == written


def test_relay_running_in_the_background_publishes_while_agents_write(
    store: EventStore, bus: Bus, topic: str
) -> None:
    stop = threading.Event()
    relay = Relay(store, PositionStore(), bus, topic, batch=16)
    thread = threading.Thread(target=relay.run_forever, args=(stop,), kwargs={"idle_sleep": 0.005})
    thread.start()
    written: list[Envelope] = []
    try:
        for n in range(20):
            with store.transaction() as conn:
                written += store.append(
                    conn, f"contact-{n % 4}", n // 4, [Envelope(type="t", stream_id="", data={})]
                )
        written += _write(store, 40, start=100)
        while relay.position != written[-1].position and thread.is_alive():
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join(timeout=10)

    assert not thread.is_alive()
    assert _published(bus, topic) == written


def test_the_change_probe_says_whether_anything_was_committed(store: EventStore) -> None:
    probe = store.change_probe()
    assert probe()  # the first question: anything may have been
    if store.engine.dialect.name != "sqlite":
        _write(store, 1)
        assert probe()  # no cheap way to tell: always "maybe"
        assert probe()
        return
    assert not probe()
    _write(store, 1)
    assert probe()
    assert not probe()
    database = store.engine.url.database
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE t (x)'); c.commit()"
    )
    subprocess.run([sys.executable, "-c", script, str(database)], check=True)
    assert probe()  # another process's commit


def test_a_caught_up_relay_reads_only_after_a_commit(store: EventStore) -> None:
    bus, topic = InProcessBus(), "events"
    relay = Relay(store, PositionStore(), bus, topic)
    reads = 0
    read_all_json = store.read_all_json

    def counted(*args: Any, **kwargs: Any) -> list[tuple[int, bytes]]:
        nonlocal reads
        reads += 1
        return read_all_json(*args, **kwargs)

    store.read_all_json = counted  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_forever, args=(stop,), kwargs={"idle_sleep": 0.005})
    thread.start()
    try:
        written = _write(store, 3)
        while relay.position != written[-1].position and thread.is_alive():
            stop.wait(0.01)
        stop.wait(0.1)
        settled = reads
        stop.wait(0.3)  # ~60 rounds of polling
        idle_reads = reads - settled
        written += _write(store, 2, start=10)
        while relay.position != written[-1].position and thread.is_alive():
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert [e.position for e in _published(bus, topic)] == [e.position for e in written]
    if store.engine.dialect.name == "sqlite":
        assert idle_reads == 0
    else:
        assert idle_reads > 10
