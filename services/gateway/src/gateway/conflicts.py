"""A stale write, told so the writer can decide: the contact as it is now and every change made since the
version she read (PRODUCT.md: "a stale write is refused with what changed, never applied").

HTTP answers 412 with this body; the Socket.IO ``update_contact`` answers it to the sender.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from contacts.asks import GetContact, GetHistory
from contacts.client import ContactsClient
from contacts.commands import Caller
from contacts.errors import ContactError, VersionMismatch
from contacts.views import HistoryEntry
from gateway.errors import error_body
from gateway.users import UserNames

USER_FIELDS = frozenset({"locked_by"})
"""History fields whose values are user ids; their rows also carry the users' names."""

STALE_MESSAGE = (
    "Otra persona cambió este contacto mientras usted lo editaba. Sus cambios no se guardaron: revíselos "
    "junto a los de ella y elija qué conservar."
)


def history_rows(entries: Iterable[HistoryEntry], names: UserNames | None) -> list[dict[str, Any]]:
    """History entries as JSON rows with the acting user's name (and the lock owners' names)."""
    entries = list(entries)
    people = {e.user_id for e in entries}
    people |= {v for e in entries if e.field in USER_FIELDS for v in (e.old, e.new) if v}
    known = names.lookup(people) if names is not None else {}
    return [
        {
            **e.to_data(),
            "username": known.get(e.user_id),
            "old_name": known.get(e.old or "") if e.field in USER_FIELDS else None,
            "new_name": known.get(e.new or "") if e.field in USER_FIELDS else None,
        }
        for e in entries
    ]


def stale_write_body(
    client: ContactsClient, names: UserNames | None, caller: Caller, error: VersionMismatch
) -> tuple[dict[str, Any], str | None]:
    """The error body of a stale write (``current`` contact and ``changes`` after the version the writer
    read, oldest first) and the current ETag; without them when the contact can no longer be read."""
    details: dict[str, Any] = {
        "contact_id": error.contact_id,
        "expected": error.expected,
        "actual": error.actual,
    }
    etag = None
    try:
        current = client.ask(GetContact(contact_id=error.contact_id), caller)
        history = client.ask(GetHistory(contact_id=error.contact_id), caller)
        since = [e for e in history if e.version > error.expected]
    except ContactError:
        return error_body(error.code, STALE_MESSAGE, **details), None
    details["current"] = current.to_data()
    details["changes"] = history_rows(since, names)
    etag = current.etag
    return error_body(error.code, STALE_MESSAGE, **details), etag
