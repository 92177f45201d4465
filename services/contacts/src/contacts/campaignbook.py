"""Campaigns kept in the contacts database: list, read, create and edit their rules.

Rules are checked here before they are stored: a name (unique), attempts from 1 to 100, retry delays from
0 to 7 days per call outcome, closed statuses from the catalogue. The campaign ``general`` comes from the
migration and can be edited (even deactivated) but not created again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from contacts.campaigns import GENERAL, Campaign
from contacts.commands import Caller
from contacts.errors import CampaignExists, CampaignNotFound, InvalidInput
from contacts.schema import campaigns
from contacts.statuses import DEFAULT_CATALOGUE, Catalogue
from kernel.store import write_transaction

NAME_MAX = 100
MAX_ATTEMPTS = 100
MAX_RETRY_MINUTES = 7 * 24 * 60
_SLUG = re.compile(r"[^a-z0-9]+")


class CampaignBook:
    """The campaigns of the centre."""

    def __init__(self, engine: Engine, catalogue: Catalogue = DEFAULT_CATALOGUE) -> None:
        self._engine = engine
        self._catalogue = catalogue

    def all(self) -> list[Campaign]:
        """Every campaign, by name."""
        with self._engine.connect() as conn:
            return [
                _campaign(row)
                for row in conn.execute(sa.select(campaigns).order_by(campaigns.c.name)).mappings()
            ]

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
    ) -> Campaign:
        """A new campaign (rules default to ``General``'s); CampaignExists for a name in use."""
        clean = _name(name)
        campaign_id = _SLUG.sub("-", clean.lower()).strip("-") or "campana"
        values = {
            "id": campaign_id,
            "name": clean,
            "active": active,
            "max_attempts": _attempts(max_attempts if max_attempts is not None else GENERAL.max_attempts),
            "retry_minutes": _retries(retry_minutes if retry_minutes is not None else GENERAL.retry_minutes),
            "closed_statuses": self._statuses(closed_statuses or GENERAL.closed_statuses),
            "updated_by": caller.user_id,
            "created_at": now,
            "updated_at": now,
        }
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
        """Change the given rules (``name``, ``active``, ``max_attempts``, ``retry_minutes``,
        ``closed_statuses``); CampaignNotFound, CampaignExists or InvalidInput when refused."""
        values: dict[str, Any] = {"updated_by": caller.user_id, "updated_at": now}
        for key, value in changes.items():
            if value is None:
                continue
            match key:
                case "name":
                    values["name"] = _name(str(value))
                case "active":
                    values["active"] = bool(value)
                case "max_attempts":
                    values["max_attempts"] = _attempts(int(value))
                case "retry_minutes":
                    values["retry_minutes"] = _retries(value)
                case "closed_statuses":
                    values["closed_statuses"] = self._statuses(value)
                case _:
                    raise InvalidInput(key, f"Campo de campaña desconocido: {key}")
        with write_transaction(self._engine) as conn:
            _get(conn, campaign_id)
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


def _retries(values: Mapping[str, int]) -> dict[str, int]:
    clean: dict[str, int] = {}
    for outcome, minutes in values.items():
        key = str(outcome).strip().lower()
        if not key or len(key) > 40 or not 0 <= int(minutes) <= MAX_RETRY_MINUTES:
            raise InvalidInput(
                "retry_minutes", f"Espera no válida para «{outcome}»: de 0 a {MAX_RETRY_MINUTES} min"
            )
        clean[key] = int(minutes)
    return clean


__all__ = ["CampaignBook"]
