"""Leases: at most one process at a time does a job (e.g. consumes a topic to keep its order).

A consumer group spreads messages over its consumers, so two processes of one group may handle
neighbouring messages at the same time and their effects may land out of order. Where order matters
(the gateways' live fan-out: a lock must not reach clients after its release), the group is consumed
by whichever process holds a lease; the others wait and take over when it lapses, claiming what the
previous holder left pending.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Protocol

import structlog

from kernel.bus.consumer import Consumer

log = structlog.get_logger(__name__)

# Renew only if we still hold it; answers 1 when held.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""


class Lease(Protocol):
    """Held by one holder at a time until it stops renewing."""

    def hold(self) -> bool:
        """Acquire or renew; whether this holder has the lease now."""
        ...


class SoleLease:
    """The lease of a process that is alone (embedded mode): always held."""

    def hold(self) -> bool:
        return True


class RedisLease:
    """A lease in one Redis key with an expiry, renewed by its holder (``SET NX PX`` + owner check)."""

    def __init__(self, client: Any, key: str, ttl_ms: int = 5000, holder: str | None = None) -> None:
        self._client = client
        self._key = key
        self._ttl_ms = ttl_ms
        self._holder = holder or uuid.uuid4().hex
        self._renew = client.register_script(_RENEW)

    def hold(self) -> bool:
        return bool(self._renew(keys=[self._key], args=[self._holder, self._ttl_ms]))


def consume_while_leading(
    consumer: Consumer, lease: Lease, stop: threading.Event, wait_s: float = 1.0, renew_s: float = 0.5
) -> None:
    """Run ``consumer`` only while holding ``lease``; otherwise wait, ready to take over.

    The lease is renewed every ``renew_s`` from a thread of its own, also while a poll runs: a poll
    slower than the lease (a batch handled on a loaded machine) must not let another process take the
    topic mid-batch, or both would handle neighbouring messages and their effects land out of order.
    """
    held = threading.Event()
    keeper = threading.Thread(
        target=_keep_lease, args=(consumer, lease, stop, held, wait_s, renew_s), name="lease", daemon=True
    )
    keeper.start()
    try:
        while not stop.is_set():
            if not held.wait(timeout=wait_s):
                continue
            try:
                consumer.poll_once()
            except Exception:
                log.exception("bus_poll_failed", topic=consumer.topic, group=consumer.group)
                stop.wait(wait_s)
    finally:
        keeper.join(timeout=wait_s + renew_s + 5)


def _keep_lease(
    consumer: Consumer,
    lease: Lease,
    stop: threading.Event,
    held: threading.Event,
    wait_s: float,
    renew_s: float,
) -> None:
    """Acquire or renew ``lease`` until ``stop``; ``held`` says whether this process has it."""
    while not stop.is_set():
        try:
            now = lease.hold()
        except Exception:
            log.exception("lease.unavailable")
            now = False
        if now != held.is_set():
            log.info("lease.changed", topic=consumer.topic, group=consumer.group, leading=now)
            held.set() if now else held.clear()
        stop.wait(renew_s if now else wait_s)
