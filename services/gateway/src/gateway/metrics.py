"""Prometheus metrics of one gateway process, in a registry of its own (built by the composition root)."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from contacts.commands import CallOutcome
from contacts.views import CallFigures
from kernel.store.changes import ChangeSignal


class CallCounters(Collector):
    """The center's call totals as counters, as last read from the calls read model (at each scrape).

    They count every call ever placed, so they only grow, and every gateway replica reports the same
    figures: aggregate them with ``max``, not ``sum``. Nothing is reported before the first reading.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._figures: CallFigures | None = None

    def update(self, figures: CallFigures) -> None:
        """Report ``figures`` from now on."""
        with self._lock:
            self._figures = figures

    @property
    def figures(self) -> CallFigures | None:
        """The figures last read (None before the first reading)."""
        with self._lock:
            return self._figures

    def describe(self) -> Iterable[Metric]:
        return self._families(CallFigures())

    def collect(self) -> Iterable[Metric]:
        figures = self.figures
        return self._families(figures) if figures is not None else []

    @staticmethod
    def _families(figures: CallFigures) -> list[Metric]:
        placed = CounterMetricFamily("callmanager_calls_placed", "Calls placed (dial requests).")
        placed.add_metric([], figures.made)
        ended = CounterMetricFamily("callmanager_calls_ended", "Calls ended, by outcome.", labels=["outcome"])
        for outcome in CallOutcome:
            ended.add_metric([outcome.value], figures.by_outcome.get(outcome.value, 0))
        talk = CounterMetricFamily("callmanager_call_talk_seconds", "Seconds in call, as the desks reported.")
        talk.add_metric([], figures.talk_seconds)
        handling = SummaryMetricFamily(
            "callmanager_call_handling_seconds",
            "Time from dial request to the end of the call.",
            count_value=figures.handled_calls,
            sum_value=figures.handling_seconds_total,
        )
        return [placed, ended, talk, handling]


class GatewayMetrics:
    """Requests, latencies, connected sockets, events relayed, locks held, calls."""

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
        self.calls = CallCounters()
        self.registry.register(self.calls)
        self.key_changes_heard = Gauge(
            "callmanager_key_changes_listening",
            "1 while the gateway hears PostgreSQL's announcements of key changes and keeps key rows; 0 while "
            "it does not (every request then reads its key: correct, slower).",
            registry=self.registry,
        )

    def watch_key_changes(self, changes: ChangeSignal) -> None:
        """Report whether ``changes`` listens (read at each scrape)."""
        self.key_changes_heard.set_function(lambda: float(changes.version is not None))
