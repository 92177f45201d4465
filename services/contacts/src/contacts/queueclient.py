"""The gateway's view of the work queue and the do-not-call list: one protocol, two transports.

No SQLAlchemy here: the gateway imports this module. :class:`LocalQueueClient` calls
:class:`contacts.queue.WorkQueue` in process (embedded mode); :class:`HttpQueueClient` calls the contacts
service's internal API (distributed mode) through an :class:`~contacts.client.HttpContactsClient` and
raises the same typed errors (``QueueEmpty``, ``DoNotCall``, ``NotFound``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from contacts.campaigns import Callback, Campaign, Claim, DncEntry, Eligibility
from contacts.client import HttpContactsClient
from contacts.commands import Caller

if TYPE_CHECKING:
    from contacts.queue import WorkQueue


class QueueClient(Protocol):
    """Next contact, eligibility and the do-not-call list."""

    def campaigns(self, caller: Caller) -> list[Campaign]:
        """The campaigns the queue works."""
        ...

    def next_contact(self, caller: Caller) -> Claim:
        """The next eligible contact, locked to the caller; QueueEmpty with why when none."""
        ...

    def eligibility(self, caller: Caller, contact_id: str) -> Eligibility:
        """Whether the contact would be offered to the caller now, and why (or why not)."""
        ...

    def callbacks(
        self, caller: Caller, *, mine: bool = True, due_before: datetime | None = None
    ) -> list[Callback]:
        """Pending callbacks, soonest first; with ``mine``, the caller's personal ones and the shared."""
        ...

    def dnc_entries(self, caller: Caller, limit: int = 1000, offset: int = 0) -> list[DncEntry]:
        """Numbers on the do-not-call list, newest first."""
        ...

    def add_dnc(self, caller: Caller, phone: str, reason: str, now: datetime) -> DncEntry:
        """Put a number (typed any way) on the list, or change its reason; audited."""
        ...

    def remove_dnc(self, caller: Caller, phone: str, reason: str, now: datetime) -> bool:
        """Take a number off the list; False when it was not on it. Audited."""
        ...

    def check_dnc(self, caller: Caller, phone_e164: str) -> None:
        """Raise DoNotCall when the number is on the list."""
        ...


class LocalQueueClient:
    """Direct calls into the work queue (embedded mode)."""

    def __init__(self, queue: WorkQueue) -> None:
        self._queue = queue

    def campaigns(self, caller: Caller) -> list[Campaign]:
        """The one campaign for now."""
        return [self._queue.campaign]

    def next_contact(self, caller: Caller) -> Claim:
        """Claim in process."""
        return self._queue.next_contact(caller)

    def eligibility(self, caller: Caller, contact_id: str) -> Eligibility:
        """Explain in process."""
        return self._queue.eligibility(caller, contact_id)

    def callbacks(
        self, caller: Caller, *, mine: bool = True, due_before: datetime | None = None
    ) -> list[Callback]:
        """Pending callbacks."""
        return self._queue.callbacks(caller.user_id if mine else None, due_before)

    def dnc_entries(self, caller: Caller, limit: int = 1000, offset: int = 0) -> list[DncEntry]:
        """The list."""
        return self._queue.dnc.entries(limit, offset)

    def add_dnc(self, caller: Caller, phone: str, reason: str, now: datetime) -> DncEntry:
        """Add."""
        return self._queue.dnc.add(phone, reason, caller, now)

    def remove_dnc(self, caller: Caller, phone: str, reason: str, now: datetime) -> bool:
        """Remove."""
        return self._queue.dnc.remove(phone, reason, caller, now)

    def check_dnc(self, caller: Caller, phone_e164: str) -> None:
        """Check."""
        self._queue.dnc.check(phone_e164)


class HttpQueueClient:
    """The work queue over the contacts service's internal API (distributed mode)."""

    def __init__(self, contacts: HttpContactsClient) -> None:
        self._http = contacts

    def campaigns(self, caller: Caller) -> list[Campaign]:
        """``GET /campaigns``."""
        return [Campaign.from_data(row) for row in self._http.request("GET", "/campaigns", caller)]

    def next_contact(self, caller: Caller) -> Claim:
        """``POST /queue/next``."""
        return Claim.from_data(self._http.request("POST", "/queue/next", caller))

    def eligibility(self, caller: Caller, contact_id: str) -> Eligibility:
        """``GET /queue/eligibility/{id}``."""
        data = self._http.request("GET", f"/queue/eligibility/{quote(contact_id, safe='')}", caller)
        return Eligibility.from_data(data)

    def callbacks(
        self, caller: Caller, *, mine: bool = True, due_before: datetime | None = None
    ) -> list[Callback]:
        """``GET /callbacks``."""
        params: dict[str, str] = {"mine": "true" if mine else "false"}
        if due_before is not None:
            params["due_before"] = due_before.isoformat()
        return [
            Callback.from_data(row) for row in self._http.request("GET", "/callbacks", caller, params=params)
        ]

    def dnc_entries(self, caller: Caller, limit: int = 1000, offset: int = 0) -> list[DncEntry]:
        """``GET /dnc``."""
        rows = self._http.request("GET", "/dnc", caller, params={"limit": limit, "offset": offset})
        return [DncEntry.from_data(row) for row in rows]

    def add_dnc(self, caller: Caller, phone: str, reason: str, now: datetime) -> DncEntry:
        """``POST /dnc``."""
        body = {"phone": phone, "reason": reason, "now": now.isoformat()}
        return DncEntry.from_data(self._http.request("POST", "/dnc", caller, json=body))

    def remove_dnc(self, caller: Caller, phone: str, reason: str, now: datetime) -> bool:
        """``POST /dnc/remove``."""
        body = {"phone": phone, "reason": reason, "now": now.isoformat()}
        return bool(self._http.request("POST", "/dnc/remove", caller, json=body)["removed"])

    def check_dnc(self, caller: Caller, phone_e164: str) -> None:
        """``GET /dnc/check/{phone}``."""
        self._http.request("GET", f"/dnc/check/{quote(phone_e164, safe='')}", caller)


__all__ = ["HttpQueueClient", "LocalQueueClient", "QueueClient"]
