"""The live feed: contact events from the bus, relayed to whoever listens (Socket.IO, metrics)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence

import structlog

from gateway.metrics import GatewayMetrics
from kernel.bus.consumer import Consumer
from kernel.bus.port import Bus, Delivery
from kernel.envelope import Envelope

log = structlog.get_logger(__name__)

Listener = Callable[[Sequence[Envelope]], None]


class EventFeed:
    """Consumes one topic in the ``gateway`` group; every event reaches each listener once per process."""

    def __init__(
        self,
        bus: Bus,
        topic: str,
        metrics: GatewayMetrics,
        *,
        group: str = "gateway",
        consumer_name: str | None = None,
        block_ms: int = 500,
    ) -> None:
        self._metrics = metrics
        self._listeners: list[Listener] = []
        self.consumer = Consumer(
            bus,
            topic,
            group,
            consumer_name or f"{socket.gethostname()}-{os.getpid()}",
            self._handle,
            batch_size=500,
            block_ms=block_ms,
            claim_idle_ms=10_000,
            start="$",
        )

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every batch of events from now on."""
        self._listeners.append(listener)

    def _handle(self, deliveries: list[Delivery]) -> None:
        events = [Envelope.from_json(d.body) for d in deliveries]
        for listener in self._listeners:
            listener(events)
        for event in events:
            self._metrics.events_relayed.labels(type=event.type).inc()
