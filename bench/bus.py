"""Bus throughput: RedisStreamsBus against raw redis-py (pipelined XADD, XREADGROUP + XACK), and InProcessBus.

``python -m bench bus [--n 200000] [--batch 1000] [--size 300] [--rounds 3] [--redis-url URL]``
prints messages/s each way (publish, consume) and the adapter/raw ratio; the best of ``--rounds`` counts.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from bench.machine import describe
from kernel.bus import Bus, InProcessBus
from kernel.bus.redis import RedisStreamsBus

MAXLEN = 1_000_000


def make_bodies(n: int, size: int) -> list[bytes]:
    """``n`` distinct bodies of ``size`` bytes shaped like a small JSON envelope."""
    pad = b"x" * size
    return [
        (b'{"position":%d,"type":"ContactUpdated","data":"' % i + pad)[: size - 2] + b'"}' for i in range(n)
    ]


def timed(step: Callable[[], int]) -> float:
    """Messages per second of one run of ``step`` (which returns how many it moved)."""
    start = time.perf_counter()
    moved = step()
    return moved / (time.perf_counter() - start)


def bus_round(bus: Bus, topic: str, bodies: list[bytes], batch: int) -> tuple[float, float]:
    """Publish every body in batches, then consume them in batches with ack; messages/s each way."""
    bus.ensure_group(topic, "bench")

    def publish() -> int:
        for start in range(0, len(bodies), batch):
            bus.publish(topic, bodies[start : start + batch])
        return len(bodies)

    def consume() -> int:
        total = 0
        while total < len(bodies):
            got = bus.read(topic, "bench", "c1", batch, 0)
            if not got:
                break
            bus.ack(topic, "bench", [d.id for d in got])
            total += len(got)
        return total

    return timed(publish), timed(consume)


def raw_round(client: redis.Redis, topic: str, bodies: list[bytes], batch: int) -> tuple[float, float]:
    """The same work with redis-py's own stream commands."""
    client.xgroup_create(topic, "bench", id="0", mkstream=True)

    def publish() -> int:
        for start in range(0, len(bodies), batch):
            with client.pipeline(transaction=False) as pipe:
                for body in bodies[start : start + batch]:
                    pipe.xadd(topic, {b"m": body}, maxlen=MAXLEN, approximate=True)
                pipe.execute()
        return len(bodies)

    def consume() -> int:
        total = 0
        while total < len(bodies):
            response: Any = client.xreadgroup("bench", "c1", {topic: ">"}, count=batch)
            if not response:
                break
            ids = [message_id for message_id, _ in response[0][1]]
            client.xack(topic, "bench", *ids)
            total += len(ids)
        return total

    return timed(publish), timed(consume)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench bus", description=__doc__)
    parser.add_argument("--n", type=int, default=200_000, help="messages per run")
    parser.add_argument("--batch", type=int, default=1000, help="messages per publish pipeline and per read")
    parser.add_argument("--size", type=int, default=300, help="body size in bytes")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument(
        "--redis-url", default=os.environ.get("CALLMANAGER_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args(argv)

    print(describe())
    print(f"bus: {args.n:,} messages of {args.size} bytes, batches of {args.batch}, best of {args.rounds}")
    bodies = make_bodies(args.n, args.size)
    client = redis.Redis.from_url(args.redis_url)
    prefix = f"bench:bus:{uuid.uuid4().hex[:8]}"
    best: dict[str, tuple[float, float]] = {}
    try:
        for round_ in range(args.rounds):
            runs: dict[str, Callable[[str], tuple[float, float]]] = {
                "raw redis-py": lambda key: raw_round(client, key, bodies, args.batch),
                "RedisStreamsBus": lambda key: bus_round(
                    RedisStreamsBus(client, MAXLEN), key, bodies, args.batch
                ),
                "InProcessBus": lambda key: bus_round(InProcessBus(MAXLEN), key, bodies, args.batch),
            }
            for name, run in runs.items():
                key = f"{prefix}:{round_}:{name.split()[0]}"
                try:
                    pub, con = run(key)
                finally:
                    client.delete(key)
                old = best.get(name, (0.0, 0.0))
                best[name] = (max(old[0], pub), max(old[1], con))
    finally:
        client.close()

    print(f"{'':<18}{'publish msg/s':>16}{'consume msg/s':>16}")
    for name, (pub, con) in best.items():
        print(f"{name:<18}{pub:>16,.0f}{con:>16,.0f}")
    raw_pub, raw_con = best["raw redis-py"]
    pub, con = best["RedisStreamsBus"]
    print(f"{'adapter / raw':<18}{pub / raw_pub:>16.0%}{con / raw_con:>16.0%}")
    met = min(pub, con) >= 50_000 and min(pub / raw_pub, con / raw_con) >= 0.70
    print(f"target (≥ 50,000 msg/s each way and ≥ 70 % of raw): {'met' if met else 'NOT met'}")
    return 0
