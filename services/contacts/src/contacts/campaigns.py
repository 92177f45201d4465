"""Campaigns and the rules of the work queue, pure: which contacts may be offered now, and why not.

A :class:`Campaign` says which contacts it holds (its ``lists``; none for ``General``, which holds every
contact not in another campaign's list), which teams work it (none: every team), when it may call
(:class:`CallingHours` in its time zone, ``America/Costa_Rica`` by default; None: any time), which statuses
close a contact, how many calls a contact may have in all (``max_attempts``) and per local day
(``max_per_day``), and how long after a call of each outcome it waits before being offered again
(``retry_minutes``). An archived campaign is inactive and hidden from the default list. The default
campaign :data:`GENERAL` is worked by every team and has no calling-hours limit, so the queue works on a
fresh install at any hour.

:func:`eligibility` is the rule the next-contact query applies in SQL (``contacts.queue``), stated once
over one contact's :class:`Facts`, so that ``GET /contacts/{id}/eligibility`` explains exactly what the
queue does. A contact is offered when it is in the campaign, the campaign is inside its calling hours, the
contact is unlocked (or locked by nobody else), its number is not in the do-not-call list, its status is
not closed, no call of it is still open, it has fewer calls than the lifetime cap and than the daily cap
today (the campaign's local day), and every call's retry delay (by that call's outcome) has passed. A
contact with a pending callback (from its last wrap-up) is kept for it instead: offered once due, to its
agent only when personal, whatever its attempts and delays (the callback was agreed with the customer).
Due callbacks come first (the agent's personal ones, then shared, soonest first), then never-tried
contacts, then those back from a retry, each by status priority then age (longest untouched first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

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

DEFAULT_TIMEZONE = "America/Costa_Rica"
"""The time zone of calling hours and of the daily cap's day, unless a campaign says otherwise."""

DEFAULT_PRIORITY = 100
"""A campaign's place when the queue picks among a team's campaigns (lower first, then by name)."""

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day keys of :class:`CallingHours` (``datetime.weekday()`` order)."""

_ZONE_LABELS: Mapping[str, str] = {DEFAULT_TIMEZONE: "hora de Costa Rica"}


def zone_label(timezone: str) -> str:
    """How a Spanish message names a local time of ``timezone`` (``hora de Costa Rica``)."""
    return _ZONE_LABELS.get(timezone, f"hora de {timezone}")


@dataclass(frozen=True, slots=True)
class Window:
    """One calling window of a weekday: from ``start`` to ``end`` local time (``end`` None: midnight)."""

    start: time
    end: time | None

    def holds(self, moment: time) -> bool:
        """Whether the local ``moment`` is inside the window."""
        return self.start <= moment and (self.end is None or moment < self.end)

    def to_data(self) -> list[str]:
        """``["08:00", "17:00"]`` (``"24:00"`` for midnight)."""
        return [f"{self.start:%H:%M}", "24:00" if self.end is None else f"{self.end:%H:%M}"]


@dataclass(frozen=True, slots=True)
class CallingHours:
    """When a campaign may call, per weekday, in local time: a day not listed is closed."""

    days: Mapping[int, tuple[Window, ...]]

    def is_open(self, local: datetime) -> bool:
        """Whether the local moment is inside a window of its weekday."""
        return any(w.holds(local.time()) for w in self.days.get(local.weekday(), ()))

    def next_open(self, local: datetime) -> datetime | None:
        """The first local moment from ``local`` on that is inside a window (None: no window at all)."""
        if self.is_open(local):
            return local
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            for window in sorted(self.days.get(day.weekday(), ()), key=lambda w: w.start):
                start = datetime.combine(day, window.start, local.tzinfo)
                if start > local:
                    return start
        return None

    def to_data(self) -> dict[str, list[list[str]]]:
        """``{"mon": [["08:00", "17:00"]], ...}`` (open days only, Monday first)."""
        return {
            WEEKDAYS[day]: [w.to_data() for w in windows]
            for day, windows in sorted(self.days.items())
            if windows
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Sequence[Sequence[str]]]) -> CallingHours:
        """The hours from :meth:`to_data` output; ValueError (Spanish) for a bad day or window."""
        days: dict[int, tuple[Window, ...]] = {}
        for key, windows in data.items():
            day = str(key).strip().lower()[:3]
            if day not in WEEKDAYS:
                raise ValueError(f"Día no válido: «{key}» (use {', '.join(WEEKDAYS)})")
            parsed = []
            for window in windows:
                if len(window) != 2:
                    raise ValueError(f'Cada franja de «{key}» es [inicio, fin], p. ej. ["08:00", "17:00"]')
                start, end = _clock(str(window[0]), allow_midnight=False), _clock(str(window[1]))
                if end is not None and (start is None or end <= start):
                    raise ValueError(f"La franja {window[0]}-{window[1]} de «{key}» termina antes de empezar")
                assert start is not None
                parsed.append(Window(start, end))
            days[WEEKDAYS.index(day)] = tuple(sorted(parsed, key=lambda w: w.start))
        return cls(days)


def _clock(text: str, *, allow_midnight: bool = True) -> time | None:
    """``HH:MM`` as a time; ``24:00`` as None (midnight at the end of the day)."""
    if allow_midnight and text.strip() == "24:00":
        return None
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"Hora no válida: «{text}» (use HH:MM)") from None


@dataclass(frozen=True, slots=True)
class Campaign:
    """How one campaign works its contacts."""

    id: str
    name: str
    active: bool = True
    max_attempts: int = 6
    retry_minutes: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_RETRY_MINUTES))
    closed_statuses: tuple[str, ...] = DEFAULT_CLOSED_STATUSES
    lists: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    timezone: str = DEFAULT_TIMEZONE
    calling_hours: CallingHours | None = None
    max_per_day: int | None = None
    priority: int = DEFAULT_PRIORITY
    archived: bool = False

    @property
    def is_general(self) -> bool:
        """Whether this is the default campaign (every contact not in another campaign's list)."""
        return self.id == GENERAL_ID

    @property
    def working(self) -> bool:
        """Active and not archived: the queue offers its contacts."""
        return self.active and not self.archived

    def worked_by(self, team: str) -> bool:
        """Whether agents of ``team`` work this campaign (every team when it names none)."""
        return not self.teams or team in self.teams

    def retry_delay(self, outcome: str) -> timedelta:
        """How long a contact waits after a call that ended with ``outcome``."""
        minutes = self.retry_minutes.get(outcome, self.retry_minutes.get("failed", 15))
        return timedelta(minutes=minutes)

    def local(self, now: datetime) -> datetime:
        """``now`` in the campaign's time zone."""
        return now.astimezone(ZoneInfo(self.timezone))

    def day_start(self, now: datetime) -> datetime:
        """The start of ``now``'s day in the campaign's time zone (the daily cap counts calls since)."""
        local = self.local(now)
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    def is_open(self, now: datetime) -> bool:
        """Whether ``now`` is inside the calling hours (always, without hours)."""
        return self.calling_hours is None or self.calling_hours.is_open(self.local(now))

    def opens_at(self, now: datetime) -> datetime | None:
        """When the calling hours open next, local time (``now`` when open; None: never)."""
        local = self.local(now)
        return local if self.calling_hours is None else self.calling_hours.next_open(local)

    def to_data(self) -> dict[str, Any]:
        """The campaign as JSON."""
        return {
            "id": self.id,
            "name": self.name,
            "active": self.active,
            "archived": self.archived,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            "max_per_day": self.max_per_day,
            "retry_minutes": dict(self.retry_minutes),
            "closed_statuses": list(self.closed_statuses),
            "teams": list(self.teams),
            "lists": list(self.lists),
            "timezone": self.timezone,
            "calling_hours": self.calling_hours.to_data() if self.calling_hours is not None else None,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Campaign:
        """The campaign from :meth:`to_data` output."""
        hours = data.get("calling_hours")
        per_day = data.get("max_per_day")
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            active=bool(data.get("active", True)),
            max_attempts=int(data["max_attempts"]),
            retry_minutes={str(k): int(v) for k, v in data["retry_minutes"].items()},
            closed_statuses=tuple(str(code) for code in data["closed_statuses"]),
            lists=tuple(str(name) for name in data.get("lists") or ()),
            teams=tuple(str(team) for team in data.get("teams") or ()),
            timezone=str(data.get("timezone") or DEFAULT_TIMEZONE),
            calling_hours=CallingHours.from_data(hours) if hours is not None else None,
            max_per_day=int(per_day) if per_day is not None else None,
            priority=int(data.get("priority", DEFAULT_PRIORITY)),
            archived=bool(data.get("archived", False)),
        )


GENERAL_ID = "general"
GENERAL = Campaign(id=GENERAL_ID, name="General")
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
    DAILY_CAPPED = "daily_capped"
    OUTSIDE_HOURS = "outside_hours"
    NOT_IN_CAMPAIGN = "not_in_campaign"
    NOT_YOUR_TEAM = "not_your_team"
    INACTIVE = "inactive"


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
    in_campaign: bool = True


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


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a campaign's contacts are worked (a contact may count under several headings)."""

    campaign: str
    total: int
    never_tried: int
    in_retry: int
    reached: int
    closed: int
    dnc: int
    capped: int
    locked: int

    def to_data(self) -> dict[str, Any]:
        """``{"campaign", "total", "never_tried", "in_retry", "reached", "closed", "dnc", "capped",
        "locked"}``."""
        return {
            "campaign": self.campaign,
            "total": self.total,
            "never_tried": self.never_tried,
            "in_retry": self.in_retry,
            "reached": self.reached,
            "closed": self.closed,
            "dnc": self.dnc,
            "capped": self.capped,
            "locked": self.locked,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Progress:
        """The progress from :meth:`to_data` output."""
        return cls(str(data["campaign"]), *(int(data[key]) for key in _PROGRESS_KEYS))


_PROGRESS_KEYS = ("total", "never_tried", "in_retry", "reached", "closed", "dnc", "capped", "locked")


def retry_until(campaign: Campaign, calls: Sequence[CallFact]) -> datetime | None:
    """When the last of the contacts' retry delays ends (None without ended calls)."""
    ends = [call.ended_at + campaign.retry_delay(call.outcome or "failed") for call in calls if call.ended_at]
    return max(ends, default=None)


def calls_today(campaign: Campaign, calls: Sequence[CallFact], now: datetime) -> int:
    """How many of ``calls`` were placed since the start of ``now``'s day in the campaign's time zone."""
    start = campaign.day_start(now)
    return sum(1 for call in calls if call.placed_at >= start)


def local_clock(campaign: Campaign, moment: datetime) -> str:
    """``HH:MM (hora de Costa Rica)``, with the date first when ``moment`` is not today."""
    return f"{campaign.local(moment):%H:%M} ({zone_label(campaign.timezone)})"


def _local_when(campaign: Campaign, moment: datetime, now: datetime) -> str:
    local, today = campaign.local(moment), campaign.local(now)
    day = "" if local.date() == today.date() else f"el {local:%Y-%m-%d} a "
    return f"{day}las {local:%H:%M} ({zone_label(campaign.timezone)})"


def hours_finding(campaign: Campaign, now: datetime) -> Finding | None:
    """Why the campaign offers nothing now whatever the contact (inactive, outside its calling hours), or
    None when it may call."""
    if not campaign.working:
        state = "archivada" if campaign.archived else "inactiva"
        return Finding(Reason.INACTIVE, f"La campaña {campaign.name} está {state}")
    if campaign.is_open(now):
        return None
    opens = campaign.opens_at(now)
    if opens is None:
        return Finding(Reason.OUTSIDE_HOURS, f"La campaña {campaign.name} no tiene horario de llamadas")
    when = _local_when(campaign, opens, now)
    return Finding(Reason.OUTSIDE_HOURS, f"Fuera del horario de llamadas hasta {when}", opens)


def eligibility(
    campaign: Campaign,
    contact_id: str,
    facts: Facts,
    user_id: str,
    now: datetime,
    *,
    team: str | None = None,
) -> Eligibility:
    """Whether the queue would offer the contact to ``user_id`` (of ``team``, when given) at ``now``, and
    why (or why not)."""
    findings: list[Finding] = []
    if team is not None and not campaign.worked_by(team):
        findings.append(Finding(Reason.NOT_YOUR_TEAM, f"Su equipo no trabaja la campaña {campaign.name}"))
    if not facts.in_campaign:
        findings.append(
            Finding(Reason.NOT_IN_CAMPAIGN, f"No está en las listas de la campaña {campaign.name}")
        )
    closed = hours_finding(campaign, now)
    if closed is not None:
        findings.append(closed)
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
        # A pending callback replaces the attempt caps and the retry delays: it is offered when due.
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
    today = calls_today(campaign, facts.calls, now)
    if campaign.max_per_day is not None and today >= campaign.max_per_day:
        tomorrow = campaign.day_start(now) + timedelta(days=1)
        findings.append(
            Finding(
                Reason.DAILY_CAPPED,
                f"Alcanzó el máximo de {campaign.max_per_day} intentos por día (hoy {today})",
                tomorrow,
            )
        )
    until = retry_until(campaign, facts.calls)
    if until is not None and now < until:
        when = _local_when(campaign, until, now)
        findings.append(Finding(Reason.IN_RETRY, f"En espera de reintento hasta {when}", until))
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


def teams_working(campaigns: Sequence[Campaign], lists: Sequence[str]) -> tuple[str, ...] | None:
    """The teams working the campaigns that hold a contact in ``lists`` (its first list and the ones it
    joined), by name; None when one of those campaigns is worked by every team (``General``) or none
    holds it. Archived campaigns hold nothing; a paused one still does (its teams keep its callbacks)."""
    mine = {name for name in lists if name}
    kept = [c for c in campaigns if not c.archived]
    listed = {name for c in kept if not c.is_general for name in c.lists}
    holders = [c for c in kept if (c.is_general and not mine & listed) or mine & set(c.lists)]
    if not holders or any(not c.teams for c in holders):
        return None
    return tuple(sorted({team for c in holders for team in c.teams}))


__all__ = [
    "DEFAULT_CLOSED_STATUSES",
    "DEFAULT_PRIORITY",
    "DEFAULT_RETRY_MINUTES",
    "DEFAULT_TIMEZONE",
    "GENERAL",
    "GENERAL_ID",
    "WEEKDAYS",
    "CallFact",
    "Callback",
    "CallbackFact",
    "CallingHours",
    "Campaign",
    "Claim",
    "DncEntry",
    "Eligibility",
    "Facts",
    "Finding",
    "Progress",
    "Reason",
    "Window",
    "calls_today",
    "eligibility",
    "hours_finding",
    "local_clock",
    "retry_until",
    "teams_working",
    "zone_label",
]
