"""The message bus port: topics of JSON messages read by consumer groups, at least once.

The semantics are those of Redis Streams, which both adapters implement:

* ``publish`` appends messages to a topic and returns their ids, which increase within a topic.
* A consumer group reads every message of a topic once across its consumers; a message read but not
  acknowledged stays *pending* for the consumer that read it.
* ``claim_stale`` hands pending messages idle for longer than ``min_idle_ms`` to another consumer, so a
  consumer that died mid-batch does not lose them.
* ``ack`` ends a message's life in the group; consumers ack only after their effect is committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message handed to a consumer: the bus id (for ``ack``), its body, and how often delivered."""

    id: str
    body: bytes
    deliveries: int = 1


class Bus(Protocol):
    """A log of messages per topic, read by consumer groups (see module docstring)."""

    def publish(self, topic: str, bodies: Sequence[bytes]) -> list[str]:
        """Append ``bodies`` to ``topic`` in order; return their ids."""
        ...

    def publish_at(self, topic: str, items: Sequence[tuple[int, bytes]]) -> int:
        """Append bodies under explicit increasing numeric ids (``<n>-0``), skipping ids already there.

        The relay publishes each stored event under its global position, so publishing the same
        position twice is a no-op. Returns how many were appended.
        """
        ...

    def last_id(self, topic: str) -> int:
        """The numeric part of the newest id in ``topic`` (0 when empty)."""
        ...

    def ensure_group(self, topic: str, group: str, start: str = "0") -> None:
        """Create ``group`` on ``topic`` if missing; ``start`` is ``"0"`` (from the beginning) or ``"$"``."""
        ...

    def read(self, topic: str, group: str, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """Up to ``count`` new messages for ``consumer``, waiting at most ``block_ms`` for the first."""
        ...

    def claim_stale(
        self, topic: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        """Take over up to ``count`` messages pending in ``group`` for longer than ``min_idle_ms``."""
        ...

    def ack(self, topic: str, group: str, ids: Sequence[str]) -> None:
        """Mark messages as done for ``group``."""
        ...

    def pending_count(self, topic: str, group: str) -> int:
        """How many messages of ``group`` are read but not acknowledged."""
        ...

    def read_range(self, topic: str, after: int, count: int) -> list[tuple[int, bytes]]:
        """Messages with numeric id greater than ``after``, oldest first, outside any group."""
        ...

    def close(self) -> None:
        """Release connections and wake blocked readers."""
        ...
