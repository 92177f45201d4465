"""The in-process bus for embedded mode: Redis Streams semantics (groups, pending lists, claims) in memory.

One lock guards every topic; each topic has a condition on that lock so a blocked ``read`` wakes when its
topic gets a message (or the bus closes). Ids are ``<n>-0`` with ``n`` increasing per topic.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections.abc import Sequence

from kernel.bus.port import Delivery


class _Pending:
    """One read-but-unacknowledged message of a group: who holds it, since when, how often delivered."""

    __slots__ = ("consumer", "delivered_at", "deliveries")

    def __init__(self, consumer: str, delivered_at: float, deliveries: int) -> None:
        self.consumer = consumer
        self.delivered_at = delivered_at
        self.deliveries = deliveries


class _Group:
    """A consumer group: the last id handed out and its pending entries (dict order is id order)."""

    __slots__ = ("last_delivered", "pending")

    def __init__(self, last_delivered: int) -> None:
        self.last_delivered = last_delivered
        self.pending: dict[int, _Pending] = {}


class _Topic:
    """An append-only log: parallel lists of ids and bodies, the top id ever appended, its groups."""

    __slots__ = ("bodies", "changed", "groups", "ids", "last")

    def __init__(self, lock: threading.Lock) -> None:
        self.ids: list[int] = []
        self.bodies: list[bytes] = []
        self.last = 0
        self.groups: dict[str, _Group] = {}
        self.changed = threading.Condition(lock)

    def body_of(self, n: int) -> bytes | None:
        i = bisect_right(self.ids, n) - 1
        if i >= 0 and self.ids[i] == n:
            return self.bodies[i]
        return None


def _number(message_id: str) -> int:
    return int(message_id.partition("-")[0])


class InProcessBus:
    """A thread-safe :class:`~kernel.bus.port.Bus` held in memory; ``maxlen`` trims topics approximately."""

    def __init__(self, maxlen: int | None = 1_000_000) -> None:
        if maxlen is not None and maxlen < 1:
            raise ValueError("maxlen must be positive")
        self._maxlen = maxlen
        self._slack = 0 if maxlen is None else max(1, maxlen // 10)
        self._lock = threading.Lock()
        self._topics: dict[str, _Topic] = {}
        self._closed = False

    def _topic(self, name: str) -> _Topic:
        if self._closed:
            raise RuntimeError("the bus is closed")
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = _Topic(self._lock)
        return topic

    def _group(self, topic: str, group: str) -> tuple[_Topic, _Group]:
        t = self._topic(topic)
        g = t.groups.get(group)
        if g is None:
            raise LookupError(f"no consumer group {group!r} on topic {topic!r}")
        return t, g

    def _trim(self, topic: _Topic) -> None:
        if self._maxlen is not None and len(topic.ids) >= self._maxlen + self._slack:
            cut = len(topic.ids) - self._maxlen
            del topic.ids[:cut]
            del topic.bodies[:cut]

    def publish(self, topic: str, bodies: Sequence[bytes]) -> list[str]:
        """Append ``bodies`` to ``topic`` in order; return their ids."""
        with self._lock:
            t = self._topic(topic)
            first = t.last + 1
            numbers = range(first, first + len(bodies))
            t.ids.extend(numbers)
            t.bodies.extend(bodies)
            t.last += len(bodies)
            self._trim(t)
            if bodies:
                t.changed.notify_all()
        return [f"{n}-0" for n in numbers]

    def publish_at(self, topic: str, items: Sequence[tuple[int, bytes]]) -> int:
        """Append bodies under explicit ids, skipping ids not above the topic's last; count appended."""
        with self._lock:
            t = self._topic(topic)
            appended = 0
            for n, body in items:
                if n <= t.last:
                    continue
                t.ids.append(n)
                t.bodies.append(body)
                t.last = n
                appended += 1
            if appended:
                self._trim(t)
                t.changed.notify_all()
        return appended

    def last_id(self, topic: str) -> int:
        """The numeric part of the newest id ever appended to ``topic`` (0 when none)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the bus is closed")
            t = self._topics.get(topic)
            return 0 if t is None else t.last

    def ensure_group(self, topic: str, group: str, start: str = "0") -> None:
        """Create ``group`` (and the topic) if missing; ``start`` is ``"0"``, ``"$"`` or an id."""
        with self._lock:
            t = self._topic(topic)
            if group not in t.groups:
                t.groups[group] = _Group(t.last if start == "$" else _number(start))

    def read(self, topic: str, group: str, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """Up to ``count`` new messages for ``consumer``, waiting at most ``block_ms`` (0: not at all)."""
        deadline = time.monotonic() + block_ms / 1000
        with self._lock:
            t, g = self._group(topic, group)
            while True:
                start = bisect_right(t.ids, g.last_delivered)
                if start < len(t.ids):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                t.changed.wait(remaining)
                if self._closed:
                    return []
            ids = t.ids[start : start + count]
            bodies = t.bodies[start : start + count]
            now = time.monotonic()
            pending = g.pending
            for n in ids:
                pending[n] = _Pending(consumer, now, 1)
            g.last_delivered = ids[-1]
        return [Delivery(f"{n}-0", body) for n, body in zip(ids, bodies, strict=True)]

    def claim_stale(
        self, topic: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        """Reassign to ``consumer`` up to ``count`` pending messages idle ≥ ``min_idle_ms``, oldest id first.

        Pending entries whose message was trimmed away are dropped, as XAUTOCLAIM does.
        """
        claimed: list[Delivery] = []
        with self._lock:
            t, g = self._group(topic, group)
            now = time.monotonic()
            oldest = now - min_idle_ms / 1000
            trimmed: list[int] = []
            for n, entry in g.pending.items():
                if len(claimed) >= count:
                    break
                if entry.delivered_at > oldest:
                    continue
                body = t.body_of(n)
                if body is None:
                    trimmed.append(n)
                    continue
                entry.consumer = consumer
                entry.delivered_at = now
                entry.deliveries += 1
                claimed.append(Delivery(f"{n}-0", body, entry.deliveries))
            for n in trimmed:
                del g.pending[n]
        return claimed

    def ack(self, topic: str, group: str, ids: Sequence[str]) -> None:
        """Remove ``ids`` from the group's pending entries (unknown ids are ignored)."""
        with self._lock:
            _, g = self._group(topic, group)
            pending = g.pending
            for message_id in ids:
                pending.pop(_number(message_id), None)

    def pending_count(self, topic: str, group: str) -> int:
        """How many messages of ``group`` are read but not acknowledged."""
        with self._lock:
            _, g = self._group(topic, group)
            return len(g.pending)

    def read_range(self, topic: str, after: int, count: int) -> list[tuple[int, bytes]]:
        """Up to ``count`` messages with numeric id above ``after``, oldest first, outside any group."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the bus is closed")
            t = self._topics.get(topic)
            if t is None:
                return []
            start = bisect_right(t.ids, after)
            return list(zip(t.ids[start : start + count], t.bodies[start : start + count], strict=True))

    def close(self) -> None:
        """Wake blocked readers (they return nothing); later calls raise ``RuntimeError``."""
        with self._lock:
            self._closed = True
            for t in self._topics.values():
                t.changed.notify_all()
