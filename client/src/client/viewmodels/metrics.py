"""The metrics view: call figures (own, the team's or everyone's), contacts by status, server figures.

Call figures come from ``GET /metrics/calls``, which the gateway scopes by role: an agent gets their own
figures, a team lead a row per agent of their team and the team's totals, a project manager or TI every
agent and every team. Supervisors also get contacts by status (``GET /stats``); those who see every
metric (ProjectManager, TI: ``metrics.all``) also the server's figures (``GET /metrics`` as JSON, which
refuses the other roles). A server without ``/metrics/calls`` (404) leaves the calls section to what
``/metrics`` says, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from client.api import Gateway, NotFound, error_text
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


class Period(StrEnum):
    """The time window of the call figures, counted in the desk's local days."""

    TODAY = "today"
    THIS_WEEK = "this_week"
    WEEK = "week"
    MONTH = "month"
    ALL = "all"


_PERIOD_DAYS = {Period.TODAY: 1, Period.WEEK: 7, Period.MONTH: 30}

CALL_FIGURES = (
    "made",
    "successful",
    "failed",
    "cancelled",
    "in_progress",
    "success_rate",
    "average_handling",
    "talk_time",
)
"""The call figures shown for the caller's scope, in order (``metric.<key>`` labels them)."""

AGENT_COLUMNS = (
    "agent",
    "team",
    "made",
    "successful",
    "failed",
    "success_rate",
    "average_handling",
    "talk_time",
)
TEAM_COLUMNS = (
    "team",
    "agents",
    "made",
    "successful",
    "failed",
    "success_rate",
    "average_handling",
    "talk_time",
)


def period_window(period: Period, now: datetime) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` of ``period`` at ``now`` (aware): from local midnight, whole days back; this
    week starts on Monday."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.THIS_WEEK:
        return midnight - timedelta(days=now.weekday()), None
    days = _PERIOD_DAYS.get(period)
    if days is None:
        return None, None
    return midnight - timedelta(days=days - 1), None


def duration_text(seconds: object) -> str:
    """Seconds as ``m:ss`` or ``h:mm:ss``; a dash when unknown."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "—"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def rate_text(rate: object) -> str:
    """A 0–1 ratio as a percentage with one decimal; a dash when unknown."""
    if not isinstance(rate, int | float) or isinstance(rate, bool):
        return "—"
    return f"{100 * rate:.1f} %"


def figure_text(key: str, figures: Mapping[str, Any]) -> str:
    """One call figure of a row as shown: counts, a percentage or a duration."""
    if key == "success_rate":
        return rate_text(figures.get("success_rate"))
    if key == "average_handling":
        return duration_text(figures.get("average_handling_seconds"))
    if key == "talk_time":
        return duration_text(figures.get("talk_seconds"))
    return _fmt(figures.get(key, 0))


class MetricsViewModel:
    """Fetches the figures the caller's role may see and splits them into the view's sections.

    ``supervisor`` (TeamLead and above) also fetches contacts by status, and ``server_figures``
    (``metrics.all``: ProjectManager, TI) the server's figures; an agent's window shows only their own
    calls. Nothing is invented: a figure the server does not send is not shown.
    """

    def __init__(
        self,
        api: Gateway,
        runner: Runner,
        translate: Translator,
        catalogue: StatusCatalogue,
        *,
        supervisor: bool = True,
        server_figures: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    ) -> None:
        self._api = api
        self._runner = runner
        self.t = translate
        self.catalogue = catalogue
        self.supervisor = supervisor
        self.server_figures = supervisor and server_figures
        self._clock = clock
        self.period = Period.TODAY
        self.call_scope = ""
        self.calls_title = translate("metrics.calls")
        self.calls: list[tuple[str, str]] = []
        self.by_status: list[tuple[str, str]] = []
        self.agent_columns: list[str] = []
        self.per_agent: list[list[str]] = []
        self.team_columns: list[str] = []
        self.per_team: list[list[str]] = []
        self.other: list[tuple[str, str]] = []
        self.error = ""
        self.loading = False
        self.on_change: Callable[[], None] = lambda: None
        self._pending = 0

    def periods(self) -> list[tuple[Period, str]]:
        """The windows one can choose, with their labels."""
        return [(period, self.t(f"period.{period.value}")) for period in Period]

    def refresh(self) -> None:
        """Fetch every figure again."""
        self.error = ""
        self._fetch_calls()
        if self.server_figures:
            self._submit(self._api.metrics, self._got)
        if self.supervisor:
            self._submit(self._api.stats, self._got_stats)

    def set_period(self, period: Period) -> None:
        """Show the call figures of ``period``."""
        self.period = period
        self.error = ""
        self._fetch_calls()

    def _fetch_calls(self) -> None:
        since, until = period_window(self.period, self._clock())
        self._submit(partial(self._api.call_metrics, since, until), self._got_calls, self._calls_failed)

    def _submit(
        self,
        call: Callable[[], Mapping[str, Any]],
        on_done: Callable[[Mapping[str, Any]], None],
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._pending += 1
        self.loading = True
        self.on_change()

        def done(data: Mapping[str, Any]) -> None:
            self._settled()
            on_done(data)

        def failed(exc: Exception) -> None:
            self._settled()
            (on_error or self._failed)(exc)

        self._runner.submit(call, done, failed)

    def _settled(self) -> None:
        self._pending = max(self._pending - 1, 0)
        self.loading = self._pending > 0

    def _failed(self, exc: Exception) -> None:
        message = error_text(exc)
        text = self.t("metrics.failed", message=message)
        self.error = f"{self.error}\n{text}" if self.error and text not in self.error else text
        self.on_change()

    def _calls_failed(self, exc: Exception) -> None:
        if isinstance(exc, NotFound):  # a gateway without /metrics/calls: /metrics may still say something
            self.on_change()
            return
        self._failed(exc)

    def _got_calls(self, data: Mapping[str, Any]) -> None:
        """Figures from ``GET /metrics/calls``: the scope's totals, then rows per agent and per team."""
        scope = str(data.get("scope") or "own")
        self.call_scope = scope
        if scope == "team":
            self.calls_title = self.t(
                "metrics.calls_team", team=data.get("team") or self.t("metrics.no_team")
            )
        elif scope == "all":
            self.calls_title = self.t("metrics.calls_all")
        else:
            self.calls_title = self.t("metrics.calls_own")
        totals = data.get("totals")
        if not isinstance(totals, Mapping) and scope == "own":
            agents = data.get("agents")
            totals = agents[0] if isinstance(agents, list) and agents else None
        self.calls = (
            [(self._label(key), figure_text(key, totals)) for key in CALL_FIGURES]
            if isinstance(totals, Mapping)
            else []
        )
        self.agent_columns, self.per_agent = [], []
        self.team_columns, self.per_team = [], []
        if scope != "own":
            agents = [row for row in data.get("agents") or [] if isinstance(row, Mapping)]
            self.agent_columns = list(AGENT_COLUMNS)
            self.per_agent = [[self._cell(column, row) for column in AGENT_COLUMNS] for row in agents]
            teams = [row for row in data.get("teams") or [] if isinstance(row, Mapping)]
            self.team_columns = list(TEAM_COLUMNS) if teams else []
            self.per_team = [[self._cell(column, row) for column in TEAM_COLUMNS] for row in teams]
        self.on_change()

    def _cell(self, column: str, row: Mapping[str, Any]) -> str:
        if column == "agent":
            return str(row.get("display_name") or row.get("username") or row.get("user_id") or "")
        if column == "team":
            return str(row.get("team") or self.t("metrics.no_team"))
        return figure_text(column, row)

    def _got_stats(self, data: Mapping[str, Any]) -> None:
        """Contact totals from ``GET /stats`` (``total``, ``locked``, ``by_status``)."""
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
        """The server's JSON stats; its calls and per-agent sections only stand in for /metrics/calls."""
        used: set[str] = set()
        from_route = bool(self.call_scope)
        found = _find(data, _SECTION_KEYS["calls"])
        if found:
            used.add(found[0])
            if not from_route:
                value = found[1]
                pairs = _flatten(value) if isinstance(value, Mapping) else [(found[0], _fmt(value))]
                self.calls = [(self._label(key), text) for key, text in pairs]
        found = _find(data, _SECTION_KEYS["by_status"])
        if found and isinstance(found[1], Mapping):
            used.add(found[0])
            items = sorted(found[1].items(), key=lambda kv: self.catalogue.priority(str(kv[0])))
            self.by_status = [(self.catalogue.label(str(k), self.t.language), _fmt(v)) for k, v in items]
        found = _find(data, _SECTION_KEYS["per_agent"])
        if found:
            used.add(found[0])
            if not from_route:
                self._agents(found[1])
        kept = [row for row in self.other if row[0] in {self._label("total"), self._label("locked")}]
        figures: list[tuple[str, str]] = []
        for name, value in data.items():
            if name.startswith("callmanager_") and _is_family(name, value):
                used.add(name)
                if name.startswith(_CALL_FAMILIES):
                    continue  # the same totals as the calls section
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


_CALL_FAMILIES = ("callmanager_calls_", "callmanager_call_")
