"""A consumer process for the kill test: records each message's effect in SQLite, slowly, until killed.

Usage: ``python bus_kill_worker.py REDIS_URL TOPIC GROUP CONSUMER SQLITE_PATH SECONDS_PER_MESSAGE``.
Each effect is one row keyed by message id, committed before the next message; the batch is acked only
after the handler returns, so a kill mid-batch leaves the whole batch pending.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time

import redis

from kernel.bus import Consumer, Delivery
from kernel.bus.redis import RedisStreamsBus


def main(argv: list[str]) -> int:
    url, topic, group, name, path, pause = argv
    db = sqlite3.connect(path, timeout=30)

    def record(batch: list[Delivery]) -> None:
        for delivery in batch:
            time.sleep(float(pause))
            with db:
                db.execute(
                    "INSERT OR IGNORE INTO effects (message_id, body, consumer) VALUES (?, ?, ?)",
                    (delivery.id, delivery.body, name),
                )

    bus = RedisStreamsBus(redis.Redis.from_url(url), owns_client=True)
    consumer = Consumer(bus, topic, group, name, record, batch_size=1000, block_ms=500, claim_idle_ms=60_000)
    consumer.run_forever(threading.Event())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
