"""The caller a service sees for an authenticated principal: identity comes from the API key only."""

from __future__ import annotations

from contacts.commands import Caller
from contacts.commands import Role as ContactsRole
from gateway.roles import Principal


def caller_of(principal: Principal) -> Caller:
    """The contacts-service caller acting for ``principal``."""
    return Caller(
        user_id=str(principal.user_id),
        username=principal.username,
        role=ContactsRole(principal.role.value),
        team=principal.team or "",
    )
