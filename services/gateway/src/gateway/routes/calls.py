"""``GET /metrics/calls``: call figures per agent and per team, as much of them as the caller's role sees.

PRODUCT.md's roles: an Agent sees their own figures, a TeamLead those of their team, a ProjectManager
or TI everyone's. The figures come from the contacts service's calls read model; teams and names from
the gateway's user directory (a call counts for the team its agent belongs to now). Active agents of
the scope with no call in the window are listed with zeros, so a lead sees who has not called yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from contacts.asks import GetCallFigures
from contacts.client import ContactsClient
from contacts.commands import Caller
from contacts.views import AgentCalls, CallFigures
from gateway.auth import ApiError, CanReadContacts, authorize
from gateway.callers import caller_of
from gateway.instant import IsoInstant
from gateway.roles import Capability, Principal
from gateway.users import User, UserDirectory
from kernel.roles import Role


class Scope(StrEnum):
    """Whose calls a caller sees."""

    OWN = "own"
    TEAM = "team"
    ALL = "all"


class FiguresOut(BaseModel):
    """Call figures; ``success_rate`` is successful / (successful + failed), from 0 to 1."""

    made: int
    successful: int
    failed: int
    cancelled: int
    in_progress: int
    average_handling_seconds: float | None
    talk_seconds: int
    success_rate: float | None
    by_outcome: dict[str, int]
    handling_seconds_total: float
    handled_calls: int


class AgentOut(FiguresOut):
    """One agent's figures."""

    user_id: str
    username: str
    display_name: str
    team: str | None


class TeamOut(FiguresOut):
    """The figures of one team's agents together (``team`` null: users without a team)."""

    team: str | None
    agents: int


class CallMetricsOut(BaseModel):
    """Call figures of the window ``[since, until)`` within the caller's scope."""

    scope: Scope
    team: str | None
    since: datetime | None
    until: datetime | None
    agents: list[AgentOut]
    teams: list[TeamOut]
    totals: FiguresOut


@dataclass(frozen=True, slots=True)
class Audience:
    """Whose figures a request gets: everyone (``members`` None) or the listed users."""

    scope: Scope
    team: str | None
    members: frozenset[str] | None


def audience_of(request: Request, principal: Principal, users: Iterable[User], team: str | None) -> Audience:
    """The caller's scope, narrowed to ``team`` when asked; seeing a team not one's own is refused (403).

    The refusal is audited by the gate like any missing capability: a TeamLead asking for another team
    lacks ``metrics.all``, an Agent asking for any team lacks ``metrics.team``.
    """
    if team is not None:
        own_team = principal.team is not None and team == principal.team
        authorize(request, principal, Capability.TEAM_METRICS if own_team else Capability.ALL_METRICS)
        members = frozenset(str(u.id) for u in users if u.team == team)
        return Audience(Scope.ALL if principal.can(Capability.ALL_METRICS) else Scope.TEAM, team, members)
    if principal.can(Capability.ALL_METRICS):
        return Audience(Scope.ALL, None, None)
    me = str(principal.user_id)
    if principal.can(Capability.TEAM_METRICS):
        if principal.team is None:
            return Audience(Scope.TEAM, None, frozenset({me}))
        members = frozenset(str(u.id) for u in users if u.team == principal.team) | {me}
        return Audience(Scope.TEAM, principal.team, members)
    return Audience(Scope.OWN, None, frozenset({me}))


def call_metrics_body(
    audience: Audience,
    principal: Principal,
    users: Sequence[User],
    found: Sequence[AgentCalls],
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    """The JSON answer: a row per agent (zeros for idle agents of the scope), team totals, overall totals."""
    by_id = {str(u.id): u for u in users}
    figures = {agent.user_id: agent for agent in found}
    listed = dict.fromkeys(figures)
    for user in users:
        user_id = str(user.id)
        in_scope = audience.members is None or user_id in audience.members
        if in_scope and user.active and user.role is Role.AGENT:
            listed.setdefault(user_id)
    if audience.scope is Scope.OWN:
        listed.setdefault(str(principal.user_id))
    rows = []
    for user_id in listed:
        known = by_id.get(user_id)
        agent = figures.get(user_id)
        username = known.username if known else (agent.username if agent and agent.username else user_id)
        rows.append(
            {
                "user_id": user_id,
                "username": username,
                "display_name": known.display_name if known else "",
                "team": known.team if known else None,
                **(agent.figures if agent else CallFigures()).to_data(),
            }
        )
    rows.sort(key=lambda row: (row["team"] is None, row["team"] or "", row["username"]))
    teams: list[dict[str, Any]] = []
    if audience.scope is not Scope.OWN:
        teams = [
            {"team": name, "agents": len(members), **_sum(figures, members).to_data()}
            for name, members in _by_team(rows).items()
        ]
    return {
        "scope": audience.scope.value,
        "team": audience.team,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "agents": rows,
        "teams": teams,
        "totals": _sum(figures, [row["user_id"] for row in rows]).to_data(),
    }


def calls_router(contacts: ContactsClient, directory: UserDirectory) -> APIRouter:
    """``GET /metrics/calls`` over the contacts client and the user directory."""
    router = APIRouter(tags=["metrics"])

    @router.get(
        "/metrics/calls",
        response_model=CallMetricsOut,
        summary="Métricas de llamadas por agente y por equipo",
        description=(
            "Llamadas realizadas, exitosas, fallidas, tiempo promedio de atención (de la solicitud al "
            "final), tiempo en llamada y tasa de éxito, de las llamadas hechas en `[since, until)` "
            "(ISO 8601; sin zona horaria se entiende UTC). Un agente ve sus propias cifras, un líder de "
            "equipo las de su equipo y ProjectManager o TI las de todos; `team` limita a un equipo."
        ),
    )
    def call_metrics(
        request: Request,
        principal: CanReadContacts,
        since: Annotated[IsoInstant | None, Query(description="Desde (incluido), ISO 8601.")] = None,
        until: Annotated[IsoInstant | None, Query(description="Hasta (excluido), ISO 8601.")] = None,
        team: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    ) -> dict[str, Any]:
        start, end = _utc(since, "since"), _utc(until, "until")
        if start is not None and end is not None and start >= end:
            raise ApiError(422, "invalid_input", "`since` debe ser anterior a `until`.")
        users = directory.list_users()
        audience = audience_of(request, principal, users, team)
        members = sorted(audience.members) if audience.members is not None else None
        query = GetCallFigures(
            since=start, until=end, user_ids=tuple(members) if members is not None else None
        )
        found = contacts.ask(query, caller_of(principal))
        return call_metrics_body(audience, principal, users, found, start, end)

    return router


def call_totals(contacts: ContactsClient, caller: Caller) -> CallFigures:
    """Every agent's figures since the first call, summed (``/metrics``)."""
    total = CallFigures()
    for agent in contacts.ask(GetCallFigures(), caller):
        total = total.plus(agent.figures)
    return total


def _utc(moment: datetime | None, name: str) -> datetime | None:
    """``moment`` in UTC (a naive one is taken as UTC); 422 when it cannot be (year 1 at UTC+5)."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ApiError(422, "invalid_input", f"`{name}` está fuera del rango de fechas.") from None


def _by_team(rows: Iterable[Mapping[str, Any]]) -> dict[str | None, list[str]]:
    """User ids of the rows by team, teams in name order (no team last)."""
    teams: dict[str | None, list[str]] = {}
    for row in rows:
        teams.setdefault(row["team"], []).append(row["user_id"])
    return dict(sorted(teams.items(), key=lambda item: (item[0] is None, item[0] or "")))


def _sum(figures: Mapping[str, AgentCalls], user_ids: Iterable[str]) -> CallFigures:
    total = CallFigures()
    for user_id in user_ids:
        agent = figures.get(user_id)
        if agent is not None:
            total = total.plus(agent.figures)
    return total
