"""The caller a service sees for an authenticated principal (identity comes from the API key only), and
the one way the gateway runs a contact command."""

from __future__ import annotations

from contacts.client import ContactsClient
from contacts.commands import Caller, ContactCommand
from contacts.views import Contact
from gateway.roles import Principal


def caller_of(principal: Principal) -> Caller:
    """The contacts-service caller acting for ``principal``."""
    return Caller(
        user_id=str(principal.user_id),
        username=principal.username,
        role=principal.role,
        team=principal.team or "",
    )


def run_command(
    client: ContactsClient, command: ContactCommand, expected_version: int | None = None
) -> Contact:
    """Run ``command`` through the client's one door; the contact it leaves (every command but a delete
    leaves one: a missing contact is NotFound before any command runs)."""
    contact = client.execute(command, expected_version)
    if contact is None:
        raise RuntimeError(f"{command.TYPE} left no contact to show")
    return contact
