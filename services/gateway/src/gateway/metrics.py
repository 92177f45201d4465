"""Prometheus metrics of one gateway process, in a registry of its own (built by the composition root)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    """Requests, latencies, connected sockets, events relayed, locks held."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "callmanager_http_requests",
            "HTTP requests answered, by method, route and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "callmanager_http_request_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.sockets = Gauge(
            "callmanager_socket_connections", "Socket.IO clients connected.", registry=self.registry
        )
        self.events_relayed = Counter(
            "callmanager_events_relayed",
            "Events received from the bus and relayed to live clients, by event type.",
            ["type"],
            registry=self.registry,
        )
        self.locks_held = Gauge(
            "callmanager_locks_held", "Contacts locked at the last count.", registry=self.registry
        )
