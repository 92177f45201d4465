"""The one role enum every service shares: the four roles a user can have, and ``System`` for the
service's own scheduled work (lock sweeps, ageing, stale calls), which no user can have."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A caller's role; the values are the stable names stored with users, keys and events."""

    AGENT = "Agent"
    TEAM_LEAD = "TeamLead"
    PROJECT_MANAGER = "ProjectManager"
    TI = "TI"
    SYSTEM = "System"

    @property
    def rank(self) -> int:
        """Position in the capability ladder Agent < TeamLead < ProjectManager < TI < System."""
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        """True when this role has every capability of ``other``."""
        return self.rank >= other.rank

    @classmethod
    def parse(cls, text: str) -> Role:
        """The user role named by ``text``, ignoring case, spaces, ``_`` and ``-`` (``team_lead`` is
        TeamLead); ValueError for anything else, ``System`` included."""
        wanted = _squash(text)
        for role in USER_ROLES:
            if _squash(role.value) == wanted:
                return role
        names = ", ".join(role.value for role in USER_ROLES)
        raise ValueError(f"rol desconocido {text!r}: use uno de {names}")


USER_ROLES: tuple[Role, ...] = (Role.AGENT, Role.TEAM_LEAD, Role.PROJECT_MANAGER, Role.TI)
"""The roles a user can have, lowest first."""

_RANKS = {role: rank for rank, role in enumerate((*USER_ROLES, Role.SYSTEM))}


def _squash(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())
