"""The outbox relay: tails the event store by global position and publishes every event to the bus.

Each event is published under its position (``bus.publish_at``), which the bus skips when already there,
and the relay saves how far it got in :class:`~kernel.store.PositionStore`. On start it resumes after
``max(saved position, last id on the bus)``: a crash between publishing and saving neither publishes an
event twice nor skips one. Appends are serialised by the store, so positions become visible in order and
tailing by position never misses a late commit.
"""

from __future__ import annotations

import threading

import structlog

from kernel.bus.port import Bus
from kernel.store import EventStore, PositionStore

log = structlog.get_logger(__name__)


class Relay:
    """Publishes the events of ``store`` to ``topic`` on ``bus``, ``batch`` at a time, in position order."""

    def __init__(
        self,
        store: EventStore,
        positions: PositionStore,
        bus: Bus,
        topic: str,
        batch: int = 1000,
        *,
        name: str | None = None,
        replay_after: int | None = None,
    ) -> None:
        """``replay_after`` starts the first round after that position instead of where the relay stopped.

        A bus that keeps nothing across restarts (the in-process bus) loses what consumers had not read
        yet; replaying from the slowest consumer's position republishes it (consumers are idempotent).
        """
        if batch < 1:
            raise ValueError("batch must be positive")
        self.store = store
        self.positions = positions
        self.bus = bus
        self.topic = topic
        self.batch = batch
        self.name = name or f"relay:{topic}"
        self._replay_after = replay_after
        self._position: int | None = None

    @property
    def position(self) -> int | None:
        """The position of the last event published (``None`` before the first round)."""
        return self._position

    def resume_position(self) -> int:
        """Where publishing continues: after the saved position or the bus's newest id, whichever is later."""
        with self.store.engine.connect() as conn:
            saved = self.positions.get(conn, self.name)
            newest_stored = self.store.last_position(conn)
        on_bus = self.bus.last_id(self.topic)
        if on_bus > newest_stored:
            log.warning(
                "relay.bus_ahead_of_store",
                topic=self.topic,
                bus_last_id=on_bus,
                store_last_position=newest_stored,
            )
        return max(saved, on_bus)

    def run_once(self) -> int:
        """Publish the next batch of stored events and save the position; return how many were read."""
        if self._position is None:
            if self._replay_after is not None:
                self._position, self._replay_after = self._replay_after, None
            else:
                self._position = self.resume_position()
        found = self.store.read_all_json(after_position=self._position, limit=self.batch)
        if not found:
            return 0
        self.bus.publish_at(self.topic, found)
        last = found[-1][0]
        with self.store.transaction() as conn:
            self.positions.set(conn, self.name, last)
        self._position = last
        return len(found)

    def run_forever(self, stop: threading.Event, idle_sleep: float = 0.05, error_sleep: float = 1.0) -> None:
        """Publish until ``stop`` is set: full batches back to back, then poll every ``idle_sleep`` seconds.

        A failed round is logged and retried after ``error_sleep`` seconds from the durable position.
        Once caught up, a round runs only when the store's change probe says something was committed.
        """
        log.info("relay.started", topic=self.topic, name=self.name)
        may_have_changed = self.store.change_probe()
        caught_up = False
        while not stop.is_set():
            try:
                # Asked before each read once caught up: a commit after the question is seen by the next.
                if caught_up and not may_have_changed():
                    stop.wait(idle_sleep)
                    continue
                published = self.run_once()
            except Exception:
                log.exception("relay.failed", topic=self.topic)
                self._position = None
                caught_up = False
                stop.wait(error_sleep)
                continue
            caught_up = published < self.batch
            if caught_up:
                stop.wait(idle_sleep)
        log.info("relay.stopped", topic=self.topic, position=self._position)
