"""The metrics view: calls, contacts by status and per agent, from ``GET /metrics`` as JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from client.api import ApiError, Gateway
from client.dispatch import Runner
from client.i18n import Translator
from client.viewmodels.catalogue import StatusCatalogue

_SECTION_KEYS = {
    "calls": ("calls", "llamadas"),
    "by_status": ("contacts_by_status", "by_status", "statuses"),
    "per_agent": ("per_agent", "agents", "by_agent"),
}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, name + "."))
        elif isinstance(value, int | float | str | bool) or value is None:
            rows.append((name, _fmt(value)))
    return rows


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _is_family(name: str, value: Any) -> bool:
    """Whether ``value`` is one Prometheus family as the gateway's JSON has it: samples named after it."""
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(str(k).startswith(name) and isinstance(v, int | float) for k, v in value.items())
    )


def _label(sample: str, label: str) -> str:
    """The value of ``label`` in a sample name like ``x_total{method=GET,status=200}``."""
    inside = sample.partition("{")[2].rstrip("}")
    for pair in inside.split(","):
        key, _, value = pair.partition("=")
        if key == label:
            return value
    return ""


def _family_rows(name: str, samples: Mapping[str, float]) -> list[tuple[str, float]]:
    """Readable figures of one family: metric key (for the label) and value."""
    if name == "callmanager_http_requests":
        totals = {k: v for k, v in samples.items() if k.split("{")[0].endswith("_total")}
        return [
            ("http_requests", sum(totals.values())),
            ("http_rejected", sum(v for k, v in totals.items() if _label(k, "status").startswith("4"))),
            ("http_errors", sum(v for k, v in totals.items() if _label(k, "status").startswith("5"))),
        ]
    if name == "callmanager_http_request_seconds":
        count = sum(v for k, v in samples.items() if k.split("{")[0].endswith("_count"))
        seconds = sum(v for k, v in samples.items() if k.split("{")[0].endswith("_sum"))
        return [("http_mean_ms", 1000 * seconds / count)] if count else []
    short = {
        "callmanager_socket_connections": "sockets",
        "callmanager_events_relayed": "events_relayed",
        "callmanager_locks_held": "locked",
    }.get(name, name)
    return [(short, sum(samples.values()))]


def _find(data: Mapping[str, Any], keys: Sequence[str]) -> tuple[str, Any] | None:
    for key in keys:
        if key in data:
            return key, data[key]
    contacts = data.get("contacts")
    if isinstance(contacts, Mapping):
        for key in keys:
            if key in contacts:
                return f"contacts.{key}", contacts[key]
    return None


class MetricsViewModel:
    """Fetches the JSON stats and splits them into the sections the view shows; nothing is invented."""

    def __init__(
        self, api: Gateway, runner: Runner, translate: Translator, catalogue: StatusCatalogue
    ) -> None:
        self._api = api
        self._runner = runner
        self.t = translate
        self.catalogue = catalogue
        self.calls: list[tuple[str, str]] = []
        self.by_status: list[tuple[str, str]] = []
        self.agent_columns: list[str] = []
        self.per_agent: list[list[str]] = []
        self.other: list[tuple[str, str]] = []
        self.error = ""
        self.loading = False
        self.on_change: Callable[[], None] = lambda: None

    def refresh(self) -> None:
        """Fetch the stats again."""
        self.loading = True
        self.on_change()
        self.error = ""
        self._runner.submit(self._api.metrics, self._got, self._failed)
        self._runner.submit(self._api.stats, self._got_stats, self._failed)

    def _failed(self, exc: Exception) -> None:
        self.loading = False
        message = exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
        text = self.t("metrics.failed", message=message)
        self.error = f"{self.error}\n{text}" if self.error and text not in self.error else text
        self.on_change()

    def _got_stats(self, data: Mapping[str, Any]) -> None:
        """Contact totals from ``GET /stats`` (``total``, ``locked``, ``by_status``)."""
        self.loading = False
        by_status = data.get("by_status")
        if isinstance(by_status, Mapping):
            items = sorted(by_status.items(), key=lambda kv: self.catalogue.priority(str(kv[0])))
            self.by_status = [(self.catalogue.label(str(k), self.t.language), _fmt(v)) for k, v in items]
        for key in ("total", "locked"):
            if key in data:
                self.other = [row for row in self.other if row[0] != self._label(key)]
                self.other.insert(0, (self._label(key), _fmt(data[key])))
        self.on_change()

    def _got(self, data: Mapping[str, Any]) -> None:
        self.loading = False
        used: set[str] = set()
        found = _find(data, _SECTION_KEYS["calls"])
        self.calls = []
        if found:
            used.add(found[0])
            value = found[1]
            pairs = _flatten(value) if isinstance(value, Mapping) else [(found[0], _fmt(value))]
            self.calls = [(self._label(key), text) for key, text in pairs]
        found = _find(data, _SECTION_KEYS["by_status"])
        if found and isinstance(found[1], Mapping):
            used.add(found[0])
            items = sorted(found[1].items(), key=lambda kv: self.catalogue.priority(str(kv[0])))
            self.by_status = [(self.catalogue.label(str(k), self.t.language), _fmt(v)) for k, v in items]
        found = _find(data, _SECTION_KEYS["per_agent"])
        self.agent_columns, self.per_agent = [], []
        if found:
            used.add(found[0])
            self._agents(found[1])
        kept = [row for row in self.other if row[0] in {self._label("total"), self._label("locked")}]
        figures: list[tuple[str, str]] = []
        for name, value in data.items():
            if name.startswith("callmanager_") and _is_family(name, value):
                used.add(name)
                for key, number in _family_rows(name, value):
                    label = self._label(key)
                    if not any(row[0] == label for row in kept):
                        figures.append((label, _fmt(int(number) if float(number).is_integer() else number)))
        self.other = (
            kept
            + figures
            + [
                (key, value)
                for key, value in _flatten(data)
                if not any(key == u or key.startswith(u + ".") for u in used)
            ]
        )
        self.on_change()

    def _label(self, key: str) -> str:
        return self.t(f"metric.{key}") if self.t.has(f"metric.{key}") else key

    def _agents(self, value: Any) -> None:
        rows: list[Mapping[str, Any]] = []
        if isinstance(value, Mapping):
            rows = [{"agent": name, **stats} for name, stats in value.items() if isinstance(stats, Mapping)]
        elif isinstance(value, list):
            rows = [row for row in value if isinstance(row, Mapping)]
        columns: list[str] = []
        for row in rows:
            for key in row:
                if key not in columns and not isinstance(row[key], Mapping | list):
                    columns.append(str(key))
        self.agent_columns = columns
        self.per_agent = [[_fmt(row.get(c, "")) for c in columns] for row in rows]
