"""The gateway's view of the work queue and the do-not-call list: one protocol, two transports.

No SQLAlchemy here: the gateway imports this module. :class:`LocalQueueClient` calls
:class:`contacts.queue.WorkQueue` in process (embedded mode); :class:`HttpQueueClient` calls the contacts
service's internal API (distributed mode) through an :class:`~contacts.client.HttpContactsClient` and
raises the same typed errors (``QueueEmpty``, ``DoNotCall``, ``NotFound``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from contacts.agenda import CallbackView, visibility
from contacts.campaigns import Campaign, Claim, DncEntry, Eligibility, Progress
from contacts.client import HttpContactsClient
from contacts.commands import Caller

if TYPE_CHECKING:
    from contacts.callbacks import CallbackBook
    from contacts.queue import WorkQueue


class QueueClient(Protocol):
    """Next contact, eligibility and the do-not-call list."""

    def campaigns(self, caller: Caller, *, archived: bool = False) -> list[Campaign]:
        """Every campaign, by name (the archived ones too with ``archived``)."""
        ...

    def progress(self, caller: Caller, campaign_id: str) -> Progress:
        """How far the campaign's contacts are worked."""
        ...

    def save_campaign(
        self, caller: Caller, now: datetime, campaign_id: str | None, fields: Mapping[str, Any]
    ) -> Campaign:
        """Create a campaign (``campaign_id`` None) or change the given rules of one."""
        ...

    def next_contact(self, caller: Caller, campaign: str | None = None) -> Claim:
        """The next eligible contact of the campaign (None: of the active campaigns of the caller's team,
        by priority then name), locked to the caller; QueueEmpty with why when none."""
        ...

    def eligibility(self, caller: Caller, contact_id: str, campaign: str | None = None) -> Eligibility:
        """Whether the contact would be offered to the caller now, and why (or why not)."""
        ...

    def callbacks(
        self,
        caller: Caller,
        *,
        mine: bool = True,
        team: str | None = None,
        due_before: datetime | None = None,
        contact_id: str | None = None,
    ) -> list[CallbackView]:
        """Pending callbacks the caller may see, soonest first (``contacts.agenda.visibility``): with
        ``mine`` their personal ones and the shared, with ``team`` that team's; Forbidden for a team
        they may not see."""
        ...

    def dnc_entries(self, caller: Caller, limit: int = 1000, offset: int = 0) -> list[DncEntry]:
        """Numbers on the do-not-call list, newest first."""
        ...

    def add_dnc(self, caller: Caller, phone: str, reason: str, now: datetime) -> DncEntry:
        """Put a number (typed any way) on the list, or change its reason; audited."""
        ...

    def add_dnc_many(self, caller: Caller, entries: Sequence[tuple[str, str]], now: datetime) -> list[str]:
        """List every ``(phone, reason)`` not listed yet (one transaction, each audited); those added."""
        ...

    def remove_dnc(self, caller: Caller, phone: str, reason: str, now: datetime) -> bool:
        """Take a number off the list; False when it was not on it. Audited."""
        ...

    def check_dnc(self, caller: Caller, phone_e164: str) -> None:
        """Raise DoNotCall when the number is on the list."""
        ...


class LocalQueueClient:
    """Direct calls into the work queue (embedded mode)."""

    def __init__(self, queue: WorkQueue, callbacks: CallbackBook | None = None) -> None:
        self._queue = queue
        self._callbacks = callbacks

    def campaigns(self, caller: Caller, *, archived: bool = False) -> list[Campaign]:
        """Every campaign."""
        return self._queue.campaigns.all(archived=archived)

    def progress(self, caller: Caller, campaign_id: str) -> Progress:
        """Count in process."""
        return self._queue.progress(campaign_id)

    def save_campaign(
        self, caller: Caller, now: datetime, campaign_id: str | None, fields: Mapping[str, Any]
    ) -> Campaign:
        """Create or edit in process."""
        if campaign_id is None:
            return self._queue.campaigns.create(caller, now, **fields)
        return self._queue.campaigns.update(caller, now, campaign_id, fields)

    def next_contact(self, caller: Caller, campaign: str | None = None) -> Claim:
        """Claim in process."""
        return self._queue.next_contact(caller, campaign)

    def eligibility(self, caller: Caller, contact_id: str, campaign: str | None = None) -> Eligibility:
        """Explain in process."""
        return self._queue.eligibility(caller, contact_id, campaign)

    def callbacks(
        self,
        caller: Caller,
        *,
        mine: bool = True,
        team: str | None = None,
        due_before: datetime | None = None,
        contact_id: str | None = None,
    ) -> list[CallbackView]:
        """Pending callbacks the caller may see."""
        if self._callbacks is None:
            raise RuntimeError("LocalQueueClient was built without a CallbackBook")
        seen = visibility(caller, mine=mine, team=team)
        return self._callbacks.listed(seen, due_before, contact_id=contact_id)

    def dnc_entries(self, caller: Caller, limit: int = 1000, offset: int = 0) -> list[DncEntry]:
        """The list."""
        return self._queue.dnc.entries(limit, offset)

    def add_dnc(self, caller: Caller, phone: str, reason: str, now: datetime) -> DncEntry:
        """Add."""
        return self._queue.dnc.add(phone, reason, caller, now)

    def add_dnc_many(self, caller: Caller, entries: Sequence[tuple[str, str]], now: datetime) -> list[str]:
        """Add in bulk."""
        return self._queue.dnc.add_many(entries, caller, now)

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

    def campaigns(self, caller: Caller, *, archived: bool = False) -> list[Campaign]:
        """``GET /campaigns``."""
        params = {"archived": "true"} if archived else None
        rows = self._http.request("GET", "/campaigns", caller, params=params)
        return [Campaign.from_data(row) for row in rows]

    def progress(self, caller: Caller, campaign_id: str) -> Progress:
        """``GET /campaigns/{id}/progress``."""
        path = f"/campaigns/{quote(campaign_id, safe='')}/progress"
        return Progress.from_data(self._http.request("GET", path, caller))

    def save_campaign(
        self, caller: Caller, now: datetime, campaign_id: str | None, fields: Mapping[str, Any]
    ) -> Campaign:
        """``POST /campaigns`` or ``PATCH /campaigns/{id}``."""
        body = {"now": now.isoformat(), "fields": dict(fields)}
        if campaign_id is None:
            return Campaign.from_data(self._http.request("POST", "/campaigns", caller, json=body))
        path = f"/campaigns/{quote(campaign_id, safe='')}"
        return Campaign.from_data(self._http.request("PATCH", path, caller, json=body))

    def next_contact(self, caller: Caller, campaign: str | None = None) -> Claim:
        """``POST /queue/next``."""
        params = {"campaign": campaign} if campaign else None
        return Claim.from_data(self._http.request("POST", "/queue/next", caller, params=params))

    def eligibility(self, caller: Caller, contact_id: str, campaign: str | None = None) -> Eligibility:
        """``GET /queue/eligibility/{id}``."""
        params = {"campaign": campaign} if campaign else None
        path = f"/queue/eligibility/{quote(contact_id, safe='')}"
        return Eligibility.from_data(self._http.request("GET", path, caller, params=params))

    def callbacks(
        self,
        caller: Caller,
        *,
        mine: bool = True,
        team: str | None = None,
        due_before: datetime | None = None,
        contact_id: str | None = None,
    ) -> list[CallbackView]:
        """``GET /callbacks``."""
        params: dict[str, str] = {"mine": "true" if mine else "false"}
        if team:
            params["team"] = team
        if due_before is not None:
            params["due_before"] = due_before.isoformat()
        if contact_id is not None:
            params["contact_id"] = contact_id
        rows = self._http.request("GET", "/callbacks", caller, params=params)
        return [CallbackView.from_data(row) for row in rows]

    def dnc_entries(self, caller: Caller, limit: int = 1000, offset: int = 0) -> list[DncEntry]:
        """``GET /dnc``."""
        rows = self._http.request("GET", "/dnc", caller, params={"limit": limit, "offset": offset})
        return [DncEntry.from_data(row) for row in rows]

    def add_dnc(self, caller: Caller, phone: str, reason: str, now: datetime) -> DncEntry:
        """``POST /dnc``."""
        body = {"phone": phone, "reason": reason, "now": now.isoformat()}
        return DncEntry.from_data(self._http.request("POST", "/dnc", caller, json=body))

    def add_dnc_many(self, caller: Caller, entries: Sequence[tuple[str, str]], now: datetime) -> list[str]:
        """``POST /dnc/many``."""
        body = {"entries": [list(entry) for entry in entries], "now": now.isoformat()}
        return [str(e164) for e164 in self._http.request("POST", "/dnc/many", caller, json=body)["added"]]

    def remove_dnc(self, caller: Caller, phone: str, reason: str, now: datetime) -> bool:
        """``POST /dnc/remove``."""
        body = {"phone": phone, "reason": reason, "now": now.isoformat()}
        return bool(self._http.request("POST", "/dnc/remove", caller, json=body)["removed"])

    def check_dnc(self, caller: Caller, phone_e164: str) -> None:
        """``GET /dnc/check/{phone}``."""
        self._http.request("GET", f"/dnc/check/{quote(phone_e164, safe='')}", caller)


__all__ = ["HttpQueueClient", "LocalQueueClient", "QueueClient"]
