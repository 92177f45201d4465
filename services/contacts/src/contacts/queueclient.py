"""The gateway's view of the work queue and the do-not-call list (one protocol; in-process for now).

No SQLAlchemy here: the gateway imports this module. :class:`LocalQueueClient` calls
:class:`contacts.queue.WorkQueue` in process (embedded mode).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from contacts.campaigns import Campaign, Claim, Eligibility
from contacts.commands import Caller

if TYPE_CHECKING:
    from contacts.dnc import DncEntry
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


__all__ = ["LocalQueueClient", "QueueClient"]
