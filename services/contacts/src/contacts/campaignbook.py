"""Campaigns kept in the contacts database: list, read, create, edit and archive their rules.

Rules are checked here before they are stored, with Spanish messages (:class:`InvalidInput`, a 422): a
name (unique), attempts from 1 to 100 in all and per day, retry delays from 0 to 7 days per call outcome,
closed statuses from the catalogue, list and team names, an IANA time zone, calling hours per weekday
(``{"mon": [["08:00", "17:00"]]}``), a priority from 0 to 1000. The campaign ``general`` comes from the
migration and can be edited (even deactivated, or given calling hours) but not created again, archived,
or given lists or teams: it holds every contact not in another campaign's list and every team works it.
An archived campaign is inactive and hidden from :meth:`CampaignBook.all` unless asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from contacts.campaigns import DEFAULT_PRIORITY, DEFAULT_TIMEZONE, GENERAL, CallingHours, Campaign
from contacts.commands import Caller
from contacts.errors import CampaignExists, CampaignNotFound, InvalidInput
from contacts.schema import campaigns
from contacts.statuses import DEFAULT_CATALOGUE, Catalogue
from kernel.store import write_transaction

NAME_MAX = 100
MAX_ATTEMPTS = 100
MAX_RETRY_MINUTES = 7 * 24 * 60
MAX_PRIORITY = 1000
MAX_NAMES = 50
"""At most this many lists, or teams, per campaign."""
FIELDS = frozenset(
    {
        "name",
        "active",
        "archived",
        "priority",
        "max_attempts",
        "max_per_day",
        "retry_minutes",
        "closed_statuses",
        "lists",
        "teams",
        "timezone",
        "calling_hours",
    }
)
"""The rules a campaign has, by the names create and update take."""
_GENERAL_FIXED = frozenset({"lists", "teams", "archived"})
_SLUG = re.compile(r"[^a-z0-9]+")


class CampaignBook:
    """The campaigns of the centre."""

    def __init__(self, engine: Engine, catalogue: Catalogue = DEFAULT_CATALOGUE) -> None:
        self._engine = engine
        self._catalogue = catalogue

    def all(self, *, archived: bool = False) -> list[Campaign]:
        """Every campaign, by name (the archived ones too with ``archived``)."""
        query = sa.select(campaigns).order_by(campaigns.c.name)
        if not archived:
            query = query.where(campaigns.c.archived.is_(False))
        with self._engine.connect() as conn:
            return [_campaign(row) for row in conn.execute(query).mappings()]

    def for_team(self, team: str) -> list[Campaign]:
        """The active campaigns ``team`` works, in the order the queue tries them: priority, then name."""
        working = [c for c in self.all() if c.working and c.worked_by(team)]
        return sorted(working, key=lambda c: (c.priority, c.name))

    def lists_of_others(self, campaign_id: str) -> list[str]:
        """The lists held by the campaigns other than ``campaign_id`` that are not archived (``General``
        holds every contact in none of them)."""
        names = {name for c in self.all() if c.id != campaign_id for name in c.lists}
        return sorted(names)

    def get(self, campaign_id: str | None) -> Campaign:
        """One campaign (``general`` for None); CampaignNotFound when missing."""
        wanted = campaign_id or GENERAL.id
        with self._engine.connect() as conn:
            return _get(conn, wanted)

    def create(
        self,
        caller: Caller,
        now: datetime,
        *,
        name: str,
        active: bool = True,
        max_attempts: int | None = None,
        retry_minutes: Mapping[str, int] | None = None,
        closed_statuses: Sequence[str] | None = None,
        **rules: Any,
    ) -> Campaign:
        """A new campaign (rules not given default to ``General``'s; no lists: it holds no contact until
        it has some); CampaignExists for a name in use, InvalidInput for a rule out of range."""
        clean = _name(name)
        campaign_id = _SLUG.sub("-", clean.lower()).strip("-") or "campana"
        if campaign_id == GENERAL.id:
            raise CampaignExists(clean)
        values: dict[str, Any] = {
            "id": campaign_id,
            "name": clean,
            "active": bool(active),
            "max_attempts": _attempts(max_attempts if max_attempts is not None else GENERAL.max_attempts),
            "retry_minutes": _retries(retry_minutes if retry_minutes is not None else GENERAL.retry_minutes),
            "closed_statuses": self._statuses(closed_statuses or GENERAL.closed_statuses),
            "lists": [],
            "teams": [],
            "timezone": DEFAULT_TIMEZONE,
            "calling_hours": None,
            "max_per_day": None,
            "priority": DEFAULT_PRIORITY,
            "archived": False,
            "updated_by": caller.user_id,
            "created_at": now,
            "updated_at": now,
        }
        for key, value in rules.items():
            if key not in FIELDS:
                raise InvalidInput(key, f"Campo de campaña desconocido: {key}")
            values.update(self._rule(key, value))
        if values["archived"]:
            values["active"] = False
        with write_transaction(self._engine) as conn:
            taken = conn.execute(
                sa.select(campaigns.c.id).where(
                    sa.or_(campaigns.c.name == clean, campaigns.c.id == campaign_id)
                )
            ).first()
            if taken is not None:
                raise CampaignExists(clean)
            conn.execute(campaigns.insert().values(values))
            return _get(conn, campaign_id)

    def update(self, caller: Caller, now: datetime, campaign_id: str, changes: Mapping[str, Any]) -> Campaign:
        """Change the given rules (any of :data:`FIELDS`; ``max_per_day`` and ``calling_hours`` None remove
        the limit, archiving deactivates); CampaignNotFound, CampaignExists or InvalidInput when refused."""
        values: dict[str, Any] = {"updated_by": caller.user_id, "updated_at": now}
        for key, value in changes.items():
            if key not in FIELDS:
                raise InvalidInput(key, f"Campo de campaña desconocido: {key}")
            if value is None and key not in ("max_per_day", "calling_hours"):
                continue
            if campaign_id == GENERAL.id and key in _GENERAL_FIXED and value:
                raise InvalidInput(
                    key,
                    "La campaña General tiene todos los contactos sin otra campaña y todos los equipos: "
                    "no se le asignan listas ni equipos ni se archiva",
                )
            values.update(self._rule(key, value))
        if values.get("archived"):
            values["active"] = False
        with write_transaction(self._engine) as conn:
            current = _get(conn, campaign_id)
            if values.get("active") and current.archived and values.get("archived", True):
                raise InvalidInput("active", "Una campaña archivada no se activa: desarchívela primero")
            if "name" in values:
                clash = conn.execute(
                    sa.select(campaigns.c.id).where(
                        campaigns.c.name == values["name"], campaigns.c.id != campaign_id
                    )
                ).first()
                if clash is not None:
                    raise CampaignExists(values["name"])
            conn.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(values))
            return _get(conn, campaign_id)

    def _rule(self, key: str, value: Any) -> dict[str, Any]:
        """The column value of one rule, checked (InvalidInput with a Spanish message)."""
        match key:
            case "name":
                return {"name": _name(str(value))}
            case "active" | "archived":
                return {key: _flag(key, value)}
            case "priority":
                return {"priority": _bounded(key, value, 0, MAX_PRIORITY, "La prioridad")}
            case "max_attempts":
                return {"max_attempts": _attempts(_bounded(key, value, 1, MAX_ATTEMPTS, "Los intentos"))}
            case "max_per_day":
                if value is None:
                    return {"max_per_day": None}
                return {"max_per_day": _bounded(key, value, 1, MAX_ATTEMPTS, "Los intentos por día")}
            case "retry_minutes":
                if not isinstance(value, Mapping):
                    raise InvalidInput(key, "Las esperas son un objeto {resultado: minutos}")
                return {"retry_minutes": _retries(value)}
            case "closed_statuses":
                return {"closed_statuses": self._statuses(_texts(key, value, "estados"))}
            case "lists":
                return {"lists": _names(key, value, "listas")}
            case "teams":
                return {"teams": _names(key, value, "equipos")}
            case "timezone":
                return {"timezone": _timezone(value)}
            case "calling_hours":
                return {"calling_hours": _hours(value)}
        raise InvalidInput(key, f"Campo de campaña desconocido: {key}")

    def _statuses(self, codes: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(self._catalogue.normalise(code) for code in codes))


def _get(conn: Connection, campaign_id: str) -> Campaign:
    row = conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id)).mappings().first()
    if row is None:
        raise CampaignNotFound(campaign_id)
    return _campaign(row)


def _campaign(row: Any) -> Campaign:
    return Campaign(
        id=row["id"],
        name=row["name"],
        active=bool(row["active"]),
        max_attempts=int(row["max_attempts"]),
        retry_minutes={str(k): int(v) for k, v in row["retry_minutes"].items()},
        closed_statuses=tuple(row["closed_statuses"]),
        lists=tuple(row["lists"] or ()),
        teams=tuple(row["teams"] or ()),
        timezone=row["timezone"] or DEFAULT_TIMEZONE,
        calling_hours=CallingHours.from_data(row["calling_hours"]) if row["calling_hours"] else None,
        max_per_day=row["max_per_day"],
        priority=int(row["priority"]),
        archived=bool(row["archived"]),
    )


def _name(value: str) -> str:
    clean = " ".join(value.split())
    if not clean or len(clean) > NAME_MAX:
        raise InvalidInput("name", f"El nombre de la campaña debe tener de 1 a {NAME_MAX} caracteres")
    return clean


def _attempts(value: int) -> int:
    if not 1 <= value <= MAX_ATTEMPTS:
        raise InvalidInput("max_attempts", f"Los intentos deben estar entre 1 y {MAX_ATTEMPTS}")
    return value


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(key, f"«{key}» es verdadero o falso")
    return value


def _bounded(key: str, value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(key, f"{what} deben estar entre {low} y {high}")
    return value


def _texts(key: str, value: Any, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) > MAX_NAMES:
        raise InvalidInput(key, f"Las {what} son una lista de hasta {MAX_NAMES} nombres")
    return [str(item) for item in value]


def _names(key: str, value: Any, what: str) -> list[str]:
    clean = []
    for item in _texts(key, value, what):
        name = " ".join(item.split())
        if not name or len(name) > NAME_MAX:
            raise InvalidInput(key, f"Cada nombre de {what} debe tener de 1 a {NAME_MAX} caracteres")
        clean.append(name)
    return list(dict.fromkeys(clean))


def _timezone(value: Any) -> str:
    name = str(value).strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            "timezone", f"Zona horaria desconocida: «{name}» (p. ej. America/Costa_Rica)"
        ) from None
    return name


def _hours(value: Any) -> dict[str, list[list[str]]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInput("calling_hours", 'El horario es un objeto {"mon": [["08:00", "17:00"]], ...}')
    try:
        hours = CallingHours.from_data(value)
    except (ValueError, TypeError) as error:
        raise InvalidInput("calling_hours", str(error)) from None
    return hours.to_data()


def _retries(values: Mapping[str, int]) -> dict[str, int]:
    clean: dict[str, int] = {}
    for outcome, minutes in values.items():
        key = str(outcome).strip().lower()
        valid = isinstance(minutes, int) and not isinstance(minutes, bool)
        if not key or len(key) > 40 or not valid or not 0 <= int(minutes) <= MAX_RETRY_MINUTES:
            raise InvalidInput(
                "retry_minutes", f"Espera no válida para «{outcome}»: de 0 a {MAX_RETRY_MINUTES} min"
            )
        clean[key] = int(minutes)
    return clean


__all__ = ["FIELDS", "CampaignBook"]
