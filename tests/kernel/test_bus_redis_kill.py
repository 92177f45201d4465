"""A consumer process killed with SIGKILL mid-batch loses no message and no effect happens twice."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from kernel.bus import Consumer, Delivery
from kernel.bus.redis import RedisStreamsBus

pytestmark = pytest.mark.redis

WORKER = Path(__file__).with_name("bus_kill_worker.py")
N = 60


@pytest.fixture
def client(redis_url: str, unique_name: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    keys = list(client.scan_iter(match=f"{unique_name}*"))
    if keys:
        client.delete(*keys)
    client.close()


def effect_rows(path: Path) -> list[tuple[str, bytes, str]]:
    with sqlite3.connect(path, timeout=30) as db:
        return db.execute("SELECT message_id, body, consumer FROM effects").fetchall()


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_killed_consumer_process_loses_nothing_and_repeats_no_effect(
    client: redis.Redis, redis_url: str, unique_name: str, tmp_path: Path
) -> None:
    topic, group = f"{unique_name}:commands", "contacts"
    effects_path = tmp_path / "effects.db"
    with sqlite3.connect(effects_path) as db:
        db.execute("CREATE TABLE effects (message_id TEXT PRIMARY KEY, body BLOB, consumer TEXT)")
    bus = RedisStreamsBus(client)
    bus.ensure_group(topic, group)
    ids = bus.publish(topic, [b"cmd-%d" % i for i in range(N)])

    worker = subprocess.Popen(
        [sys.executable, str(WORKER), redis_url, topic, group, "doomed", str(effects_path), "0.05"]
    )
    try:
        assert wait_until(lambda: len(effect_rows(effects_path)) >= 5, timeout=60), "the worker never started"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    done_by_dead = len(effect_rows(effects_path))
    assert 5 <= done_by_dead < N
    assert bus.pending_count(topic, group) == N

    attempts: list[str] = []

    def record(batch: list[Delivery]) -> None:
        with sqlite3.connect(effects_path, timeout=30) as db:
            for delivery in batch:
                attempts.append(delivery.id)
                db.execute(
                    "INSERT OR IGNORE INTO effects (message_id, body, consumer) VALUES (?, ?, ?)",
                    (delivery.id, delivery.body, "rescuer"),
                )

    rescuer = Consumer(bus, topic, group, "rescuer", record, batch_size=25, block_ms=0, claim_idle_ms=100)
    time.sleep(0.15)
    assert wait_until(lambda: rescuer.poll_once() == 0 and bus.pending_count(topic, group) == 0, timeout=30)

    rows = effect_rows(effects_path)
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert {r[0]: r[1] for r in rows} == {i: b"cmd-%d" % n for n, i in enumerate(ids)}
    assert [r[2] for r in rows].count("doomed") == done_by_dead
    assert sorted(attempts) == sorted(ids)
