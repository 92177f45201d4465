"""Callbacks as people list them, pure: one pending callback (:class:`CallbackView`) and who sees which
(:func:`visibility`).

An Agent sees their own personal callbacks and every shared one; a TeamLead also their team's (the
callbacks whose owner is in their team), ProjectManager and TI every one. ``GET /callbacks`` asks with
``mine`` (the caller's own and the shared, the default) or ``team``; asking for a team one may not see
is refused. No SQLAlchemy here: the gateway imports this module through ``contacts.asks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contacts.commands import Caller
from contacts.errors import Forbidden
from kernel.roles import Role


@dataclass(frozen=True, slots=True)
class CallbackView:
    """A pending callback: its stable id (``<contact id>.<stream version of the wrap-up that set it>``),
    the contact, its owner and their team, ``personal`` or ``shared``, when due, set, and reminded."""

    callback_id: str
    contact_id: str
    phone_e164: str
    name: str
    user_id: str
    username: str
    team: str
    scope: str
    due_at: datetime
    set_at: datetime
    reminded_at: datetime | None = None

    def to_data(self) -> dict[str, Any]:
        """The callback as JSON."""
        return {
            "callback_id": self.callback_id,
            "contact_id": self.contact_id,
            "phone_e164": self.phone_e164,
            "name": self.name,
            "user_id": self.user_id,
            "username": self.username,
            "team": self.team,
            "scope": self.scope,
            "due_at": self.due_at.isoformat(),
            "set_at": self.set_at.isoformat(),
            "reminded_at": self.reminded_at.isoformat() if self.reminded_at is not None else None,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> CallbackView:
        """The callback from :meth:`to_data` output."""
        reminded = data.get("reminded_at")
        return cls(
            callback_id=str(data["callback_id"]),
            contact_id=str(data["contact_id"]),
            phone_e164=str(data["phone_e164"]),
            name=str(data.get("name") or ""),
            user_id=str(data["user_id"]),
            username=str(data.get("username") or ""),
            team=str(data.get("team") or ""),
            scope=str(data["scope"]),
            due_at=datetime.fromisoformat(str(data["due_at"])),
            set_at=datetime.fromisoformat(str(data["set_at"])),
            reminded_at=datetime.fromisoformat(str(reminded)) if reminded else None,
        )


@dataclass(frozen=True, slots=True)
class Visibility:
    """Which callbacks a listing holds: ``user_id``'s personal ones and every shared one, or those of
    ``team``, or (both None) every one."""

    user_id: str | None = None
    team: str | None = None


def visibility(caller: Caller, *, mine: bool = True, team: str | None = None) -> Visibility:
    """What ``caller`` asked to see, within what their role lets them; Forbidden for a team they may not
    see (an Agent any team, a TeamLead another team)."""
    wanted = (team or "").strip()
    role = caller.role
    if wanted:
        if role.at_least(Role.PROJECT_MANAGER):
            return Visibility(team=wanted)
        if role.at_least(Role.TEAM_LEAD) and wanted == caller.team:
            return Visibility(team=wanted)
        raise Forbidden(role.value, f"ver las rellamadas del equipo {wanted}")
    if mine or not role.at_least(Role.TEAM_LEAD):
        return Visibility(user_id=caller.user_id)
    if role.at_least(Role.PROJECT_MANAGER):
        return Visibility()
    if not caller.team:
        return Visibility(user_id=caller.user_id)
    return Visibility(team=caller.team)


__all__ = ["CallbackView", "Visibility", "visibility"]
