"""Campaigns and the rules of the work queue, pure: which contacts may be offered now, and why not.

A :class:`Campaign` says which statuses close a contact, how many calls it may have (``max_attempts``)
and how long after a call of each outcome it waits before being offered again (``retry_minutes``). The
default campaign :data:`GENERAL` holds every contact, is worked by every team and has no calling-hours
limit, so the queue works on a fresh install.

:func:`eligibility` is the rule the next-contact query applies in SQL (``contacts.queue``), stated once
over one contact's :class:`Facts`, so that ``GET /contacts/{id}/eligibility`` explains exactly what the
queue does. A contact is offered when it is unlocked (or locked by nobody else), its number is not in the
do-not-call list, its status is not closed, no call of it is still open, it has fewer calls than the cap,
and every call's retry delay (by that call's outcome) has passed. A contact with a pending callback (from
its last wrap-up) is kept for it instead: offered once due, to its agent only when personal, whatever its
attempts and delays. Due callbacks come first (the agent's personal ones, then shared, soonest first), then
never-tried contacts, then those back from a retry, each by status priority then age (longest untouched
first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from contacts.views import Contact

DEFAULT_RETRY_MINUTES: Mapping[str, int] = {
    "answered": 24 * 60,
    "no_answer": 120,
    "busy": 30,
    "failed": 15,
    "cancelled": 5,
}
"""Minutes a contact waits after a call that ended with each outcome (outcomes not listed: ``failed``'s)."""

DEFAULT_CLOSED_STATUSES: tuple[str, ...] = ("COMPLETADA", "SERVICIOS_ACTIVOS", "NO_EXISTE")
"""Statuses in which a contact is worked out: never offered again by the queue."""


@dataclass(frozen=True, slots=True)
class Campaign:
    """How one campaign works its contacts."""

    id: str
    name: str
    active: bool = True
    max_attempts: int = 6
    retry_minutes: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_RETRY_MINUTES))
    closed_statuses: tuple[str, ...] = DEFAULT_CLOSED_STATUSES

    def retry_delay(self, outcome: str) -> timedelta:
        """How long a contact waits after a call that ended with ``outcome``."""
        minutes = self.retry_minutes.get(outcome, self.retry_minutes.get("failed", 15))
        return timedelta(minutes=minutes)

    def to_data(self) -> dict[str, Any]:
        """The campaign as JSON."""
        return {
            "id": self.id,
            "name": self.name,
            "active": self.active,
            "max_attempts": self.max_attempts,
            "retry_minutes": dict(self.retry_minutes),
            "closed_statuses": list(self.closed_statuses),
            "teams": [],
            "lists": [],
            "calling_hours": None,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Campaign:
        """The campaign from :meth:`to_data` output."""
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            active=bool(data.get("active", True)),
            max_attempts=int(data["max_attempts"]),
            retry_minutes={str(k): int(v) for k, v in data["retry_minutes"].items()},
            closed_statuses=tuple(str(code) for code in data["closed_statuses"]),
        )


GENERAL = Campaign(id="general", name="General")
"""The default campaign: every contact, every team, no calling-hours limit."""


class Reason(StrEnum):
    """Why a contact is, or is not, offered now."""

    CALLBACK_DUE = "callback_due"
    NEVER_TRIED = "never_tried"
    RETRY_DUE = "retry_due"
    LOCKED = "locked"
    DNC = "dnc"
    CLOSED_STATUS = "closed_status"
    CALL_OPEN = "call_open"
    ATTEMPTS_CAPPED = "attempts_capped"
    IN_RETRY = "in_retry"
    CALLBACK_PENDING = "callback_pending"


@dataclass(frozen=True, slots=True)
class CallFact:
    """One call of a contact as the calls read model holds it (``ended_at`` None: still open)."""

    outcome: str | None
    placed_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class Facts:
    """What eligibility depends on, for one contact at one moment."""

    status: str
    locked_by: str | None
    locked_by_name: str
    locked_until: datetime | None
    dnc: bool
    dnc_reason: str
    calls: Sequence[CallFact]
    callback: CallbackFact | None = None


@dataclass(frozen=True, slots=True)
class CallbackFact:
    """A contact's pending callback: by whom, ``personal`` or ``shared``, and when it is due."""

    user_id: str
    username: str
    scope: str
    due_at: datetime

    def offered_to(self, user_id: str, now: datetime) -> bool:
        """Whether the queue offers this callback to ``user_id`` at ``now``."""
        return now >= self.due_at and (self.scope == "shared" or self.user_id == user_id)

    def describe(self) -> str:
        """A Spanish line: whose callback and when."""
        whose = "compartida" if self.scope == "shared" else f"personal de {self.username or self.user_id}"
        return f"Rellamada {whose} para {self.due_at:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason, its Spanish explanation and, for a wait, when it ends."""

    reason: Reason
    message: str
    until: datetime | None = None

    def to_data(self) -> dict[str, Any]:
        """The finding as JSON."""
        return {
            "reason": self.reason.value,
            "message": self.message,
            "until": self.until.isoformat() if self.until is not None else None,
        }


def _moment(value: object) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Whether a contact would be offered now to ``user_id``: the reason it would (first), or every
    reason it would not."""

    contact_id: str
    campaign: str
    eligible: bool
    findings: tuple[Finding, ...]
    attempts: int
    checked_at: datetime

    def to_data(self) -> dict[str, Any]:
        """The explanation as JSON."""
        return {
            "contact_id": self.contact_id,
            "campaign": self.campaign,
            "eligible": self.eligible,
            "reasons": [finding.to_data() for finding in self.findings],
            "attempts": self.attempts,
            "checked_at": self.checked_at.isoformat(),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Eligibility:
        """The explanation from :meth:`to_data` output."""
        findings = tuple(
            Finding(Reason(f["reason"]), str(f["message"]), _moment(f.get("until"))) for f in data["reasons"]
        )
        checked = _moment(data["checked_at"])
        assert checked is not None
        return cls(
            str(data["contact_id"]),
            str(data["campaign"]),
            bool(data["eligible"]),
            findings,
            int(data["attempts"]),
            checked,
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """A contact the queue gave the caller, already locked to them, and why it was chosen."""

    contact: Contact
    campaign: str
    reason: Reason
    message: str
    attempts: int

    def to_data(self) -> dict[str, Any]:
        """The claim as JSON."""
        return {
            "contact": self.contact.to_data(),
            "campaign": self.campaign,
            "reason": self.reason.value,
            "message": self.message,
            "attempts": self.attempts,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Claim:
        """The claim from :meth:`to_data` output."""
        return cls(
            contact=Contact.from_data(data["contact"]),
            campaign=str(data["campaign"]),
            reason=Reason(data["reason"]),
            message=str(data["message"]),
            attempts=int(data["attempts"]),
        )


@dataclass(frozen=True, slots=True)
class DncEntry:
    """One number of the list."""

    phone_e164: str
    reason: str
    added_by: str
    added_by_name: str
    added_at: datetime

    def to_data(self) -> dict[str, Any]:
        """The entry as JSON."""
        return {
            "phone_e164": self.phone_e164,
            "reason": self.reason,
            "added_by": self.added_by,
            "added_by_name": self.added_by_name,
            "added_at": self.added_at.isoformat(),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> DncEntry:
        """The entry from :meth:`to_data` output."""
        return cls(
            phone_e164=str(data["phone_e164"]),
            reason=str(data.get("reason") or ""),
            added_by=str(data.get("added_by") or ""),
            added_by_name=str(data.get("added_by_name") or ""),
            added_at=datetime.fromisoformat(str(data["added_at"])),
        )


@dataclass(frozen=True, slots=True)
class Callback:
    """A contact to call back: when, by whom (``scope`` ``personal``) or by anyone (``shared``)."""

    contact_id: str
    phone_e164: str
    name: str
    user_id: str
    username: str
    scope: str
    due_at: datetime
    set_at: datetime

    def to_data(self) -> dict[str, Any]:
        """The callback as JSON."""
        return {
            "contact_id": self.contact_id,
            "phone_e164": self.phone_e164,
            "name": self.name,
            "user_id": self.user_id,
            "username": self.username,
            "scope": self.scope,
            "due_at": self.due_at.isoformat(),
            "set_at": self.set_at.isoformat(),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Callback:
        """The callback from :meth:`to_data` output."""
        return cls(
            contact_id=str(data["contact_id"]),
            phone_e164=str(data["phone_e164"]),
            name=str(data.get("name") or ""),
            user_id=str(data["user_id"]),
            username=str(data.get("username") or ""),
            scope=str(data["scope"]),
            due_at=datetime.fromisoformat(str(data["due_at"])),
            set_at=datetime.fromisoformat(str(data["set_at"])),
        )


def retry_until(campaign: Campaign, calls: Sequence[CallFact]) -> datetime | None:
    """When the last of the contacts' retry delays ends (None without ended calls)."""
    ends = [call.ended_at + campaign.retry_delay(call.outcome or "failed") for call in calls if call.ended_at]
    return max(ends, default=None)


def eligibility(
    campaign: Campaign, contact_id: str, facts: Facts, user_id: str, now: datetime
) -> Eligibility:
    """Whether the queue would offer the contact to ``user_id`` at ``now``, and why (or why not)."""
    findings: list[Finding] = []
    held = facts.locked_until is not None and facts.locked_by is not None and now < facts.locked_until
    if held and facts.locked_by != user_id:
        who = facts.locked_by_name or facts.locked_by
        findings.append(Finding(Reason.LOCKED, f"Bloqueado por {who}", facts.locked_until))
    elif held:
        findings.append(Finding(Reason.LOCKED, "Ya lo tiene bloqueado usted", facts.locked_until))
    if facts.dnc:
        because = f": {facts.dnc_reason}" if facts.dnc_reason else ""
        findings.append(Finding(Reason.DNC, f"El número está en la lista de no llamar{because}"))
    if facts.status in campaign.closed_statuses:
        findings.append(Finding(Reason.CLOSED_STATUS, f"El estado {facts.status} cierra el contacto"))
    if any(call.ended_at is None for call in facts.calls):
        findings.append(Finding(Reason.CALL_OPEN, "Tiene una llamada en curso"))
    attempts = len(facts.calls)
    callback = facts.callback
    if callback is not None:
        # A pending callback replaces the attempt cap and the retry delays: it is offered when due.
        if not callback.offered_to(user_id, now):
            until = callback.due_at if now < callback.due_at else None
            findings.append(Finding(Reason.CALLBACK_PENDING, callback.describe(), until))
        if findings:
            return Eligibility(contact_id, campaign.name, False, tuple(findings), attempts, now)
        offered = Finding(Reason.CALLBACK_DUE, callback.describe())
        return Eligibility(contact_id, campaign.name, True, (offered,), attempts, now)
    if attempts >= campaign.max_attempts:
        findings.append(
            Finding(
                Reason.ATTEMPTS_CAPPED, f"Alcanzó el máximo de {campaign.max_attempts} intentos ({attempts})"
            )
        )
    until = retry_until(campaign, facts.calls)
    if until is not None and now < until:
        findings.append(
            Finding(Reason.IN_RETRY, f"En espera de reintento hasta {until:%Y-%m-%d %H:%M} UTC", until)
        )
    if findings:
        return Eligibility(contact_id, campaign.name, False, tuple(findings), attempts, now)
    offered = (
        Finding(Reason.NEVER_TRIED, "Nunca se ha llamado")
        if attempts == 0
        else Finding(
            Reason.RETRY_DUE, f"Reintento {attempts + 1} de {campaign.max_attempts}: su espera terminó"
        )
    )
    return Eligibility(contact_id, campaign.name, True, (offered,), attempts, now)


__all__ = [
    "DEFAULT_CLOSED_STATUSES",
    "DEFAULT_RETRY_MINUTES",
    "GENERAL",
    "CallFact",
    "Callback",
    "CallbackFact",
    "Campaign",
    "Claim",
    "DncEntry",
    "Eligibility",
    "Facts",
    "Finding",
    "Reason",
    "eligibility",
    "retry_until",
]
