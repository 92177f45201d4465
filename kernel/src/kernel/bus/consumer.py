"""A consumer loop for any bus: take over a dead consumer's messages, read new ones, ack after the handler.

The handler commits its effect (idempotently, e.g. keyed by message id or with its position in the same
transaction) before it returns; only then are the messages acknowledged. If it raises, nothing is acked:
the messages stay pending and are claimed again once idle for ``claim_idle_ms``, so delivery is at least
once and an idempotent handler makes every effect happen once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from kernel.bus.port import Bus, Delivery

Handler = Callable[[list[Delivery]], None]


@dataclass(frozen=True, slots=True)
class RunningConsumer:
    """A consumer running in a thread of its own; ``stop`` ends it."""

    thread: threading.Thread
    stopping: threading.Event

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the loop to end and wait up to ``timeout`` seconds for it (one read's block at most)."""
        self.stopping.set()
        self.thread.join(timeout)


class Consumer:
    """One named consumer of ``group`` on ``topic``, feeding batches to ``handler``."""

    def __init__(
        self,
        bus: Bus,
        topic: str,
        group: str,
        name: str,
        handler: Handler,
        *,
        batch_size: int = 100,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        start: str = "0",
        backoff_s: float = 1.0,
        log: Any = None,
    ) -> None:
        self.bus = bus
        self.topic = topic
        self.group = group
        self.name = name
        self._handler = handler
        self._batch_size = batch_size
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._start = start
        self._backoff_s = backoff_s
        self._log = log if log is not None else structlog.get_logger("kernel.bus.consumer")
        self._group_ready = False
        self._failed = False

    def poll_once(self) -> int:
        """Handle stale pending messages, then new ones (waiting up to ``block_ms``); return how many acked.

        A handler failure is logged and leaves its batch pending; bus errors propagate.
        """
        self._failed = False
        if not self._group_ready:
            self.bus.ensure_group(self.topic, self.group, self._start)
            self._group_ready = True
        stale = self.bus.claim_stale(self.topic, self.group, self.name, self._claim_idle_ms, self._batch_size)
        done = self._handle(stale) if stale else 0
        if self._failed:
            return done
        fresh = self.bus.read(
            self.topic, self.group, self.name, self._batch_size, 0 if stale else self._block_ms
        )
        if fresh:
            done += self._handle(fresh)
        return done

    def run_forever(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; after a handler or bus failure wait ``backoff_s`` and go on."""
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                self._failed = True
                self._log.exception("bus_poll_failed", topic=self.topic, group=self.group, consumer=self.name)
            if self._failed:
                stop.wait(self._backoff_s)

    def start_in_thread(self) -> RunningConsumer:
        """Run :meth:`run_forever` in a daemon thread; stop it with the returned handle."""
        stopping = threading.Event()
        thread = threading.Thread(
            target=self.run_forever, args=(stopping,), name=f"consumer-{self.topic}-{self.name}", daemon=True
        )
        thread.start()
        return RunningConsumer(thread, stopping)

    def _handle(self, deliveries: list[Delivery]) -> int:
        try:
            self._handler(deliveries)
        except Exception:
            self._failed = True
            self._log.exception(
                "bus_handler_failed",
                topic=self.topic,
                group=self.group,
                consumer=self.name,
                messages=len(deliveries),
                first_id=deliveries[0].id,
                most_deliveries=max(d.deliveries for d in deliveries),
            )
            return 0
        self.bus.ack(self.topic, self.group, [d.id for d in deliveries])
        return len(deliveries)
