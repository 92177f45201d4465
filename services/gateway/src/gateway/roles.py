"""Roles, capabilities and who may do what: PRODUCT.md's Roles table as data, and the caller's identity.

Pure: standard library and the kernel only. :class:`Role` is ``kernel.roles.Role``, the one role enum of
every service (users hold the four of ``USER_ROLES``). A route never asks "is this a TeamLead?"; it asks
for a :class:`Capability` (see :mod:`gateway.auth`), and :data:`MATRIX` says which roles hold it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from kernel.envelope import Actor
from kernel.roles import USER_ROLES, Role


class Capability(StrEnum):
    """Something a route lets its caller do; the value is its stable name (audit log, OpenAPI)."""

    READ_CONTACTS = "contacts.read"
    LOCK_OWN = "contacts.lock_own"
    UPDATE_CONTACT = "contacts.update"
    CREATE_CONTACT = "contacts.create"
    FORCE_RELEASE = "contacts.force_release"
    TEAM_METRICS = "metrics.team"
    IMPORT = "contacts.import"
    IMPORT_OVERWRITE = "contacts.import_overwrite"
    EXPORT = "contacts.export"
    GENERATE = "contacts.generate"
    DELETE_CONTACT = "contacts.delete"
    ALL_METRICS = "metrics.all"
    READ_CONFIG = "config.read"
    MANAGE_USERS = "users.manage"
    CHANGE_CONFIG = "config.change"
    READ_AUDIT = "audit.read"
    BACKUPS = "backups"
    TAKE_NEXT = "queue.next"
    RECORD_DISPOSITION = "contacts.disposition"
    MANAGE_DNC = "dnc.manage"
    MANAGE_CAMPAIGNS = "campaigns.manage"


_EVERYONE = frozenset(USER_ROLES)
_SUPERVISORS = frozenset({Role.TEAM_LEAD, Role.PROJECT_MANAGER, Role.TI})
_MANAGERS = frozenset({Role.PROJECT_MANAGER, Role.TI})
_TI_ONLY = frozenset({Role.TI})

# One entry per row of PRODUCT.md's Roles table, in its order: the row's capabilities and the roles
# ticked on that row.
_TABLE: tuple[tuple[frozenset[Capability], frozenset[Role]], ...] = (
    (
        frozenset(
            {
                Capability.READ_CONTACTS,
                Capability.LOCK_OWN,
                Capability.UPDATE_CONTACT,
                Capability.CREATE_CONTACT,
            }
        ),
        _EVERYONE,
    ),
    (frozenset({Capability.TAKE_NEXT, Capability.RECORD_DISPOSITION}), _EVERYONE),
    (frozenset({Capability.FORCE_RELEASE, Capability.TEAM_METRICS}), _SUPERVISORS),
    (frozenset({Capability.IMPORT, Capability.EXPORT}), _SUPERVISORS),
    (
        frozenset(
            {
                Capability.GENERATE,
                Capability.IMPORT_OVERWRITE,
                Capability.DELETE_CONTACT,
                Capability.ALL_METRICS,
                Capability.READ_CONFIG,
            }
        ),
        _MANAGERS,
    ),
    (frozenset({Capability.MANAGE_DNC, Capability.MANAGE_CAMPAIGNS}), _MANAGERS),
    (
        frozenset(
            {
                Capability.MANAGE_USERS,
                Capability.CHANGE_CONFIG,
                Capability.READ_AUDIT,
                Capability.BACKUPS,
            }
        ),
        _TI_ONLY,
    ),
)

MATRIX: Mapping[Capability, frozenset[Role]] = {
    capability: roles for capabilities, roles in _TABLE for capability in capabilities
}
"""Which roles hold each capability."""

CAPABILITIES: Mapping[Role, frozenset[Capability]] = {
    role: frozenset(c for c, roles in MATRIX.items() if role in roles) for role in USER_ROLES
}
"""The capabilities each role holds."""


def allows(role: Role, capability: Capability) -> bool:
    """Whether ``role`` holds ``capability``."""
    return role in MATRIX[capability]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user behind the presented API key (or the local operator when auth is off)."""

    user_id: uuid.UUID
    username: str
    role: Role
    team: str | None = None
    key_id: str | None = None
    display_name: str = ""

    def can(self, capability: Capability) -> bool:
        """Whether this caller's role holds ``capability``."""
        return allows(self.role, capability)

    def actor(self, desk: str = "") -> Actor:
        """The envelope actor for events and commands caused by this caller."""
        return Actor(user_id=str(self.user_id), role=self.role.value, desk=desk)


LOCAL_PRINCIPAL = Principal(
    user_id=uuid.UUID(int=0),
    username="local",
    role=Role.TI,
    display_name="Operador local (sin autenticación)",
)
"""Who acts when authentication is off (allowed only on a loopback bind)."""
