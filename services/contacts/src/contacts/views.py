"""What the read side returns (contacts, pages, history rows, counts) and their JSON forms.

Free of SQLAlchemy: the gateway imports these through :mod:`contacts.client`. Datetimes are UTC and
travel as ISO 8601 strings; ``Contact.list_name`` travels as ``list`` (the product's field name).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from contacts.commands import Caller, CallOutcome
from contacts.errors import (
    AlreadyExists,
    CallbackNotFound,
    CallbackRequired,
    CallNotOpen,
    CampaignExists,
    CampaignNotFound,
    CampaignNotWorked,
    Conflict,
    ContactError,
    DoNotCall,
    DuplicatePhone,
    Forbidden,
    InvalidInput,
    InvalidStatus,
    LockDurationTooLong,
    Locked,
    NotFound,
    NotLocked,
    NotLockOwner,
    QueueEmpty,
    TransitionRefused,
    VersionMismatch,
)
from kernel.roles import Role

JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    """One contact as users see it; a lapsed lock shows as free (``locked_by`` None)."""

    id: str
    phone: str
    phone_e164: str
    phone_national: str
    name: str
    status: str
    note: str
    email: str
    extra: Mapping[str, str]
    list_name: str
    operator: str | None
    locked_by: str | None
    locked_by_name: str | None
    locked_until: datetime | None
    last_contacted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def etag(self) -> str:
        """The HTTP entity tag of this version of the contact."""
        return f'"{self.version}"'

    def to_data(self) -> JsonDict:
        """JSON-safe dict with the product's field names."""
        return {
            "id": self.id,
            "phone": self.phone,
            "phone_e164": self.phone_e164,
            "phone_national": self.phone_national,
            "name": self.name,
            "status": self.status,
            "note": self.note,
            "email": self.email,
            "extra": dict(self.extra),
            "list": self.list_name,
            "operator": self.operator,
            "locked_by": self.locked_by,
            "locked_by_name": self.locked_by_name,
            "locked_until": _iso(self.locked_until),
            "last_contacted_at": _iso(self.last_contacted_at),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "version": self.version,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Contact:
        """Rebuild from :meth:`to_data` output."""
        return cls(
            id=str(data["id"]),
            phone=str(data["phone"]),
            phone_e164=str(data["phone_e164"]),
            phone_national=str(data.get("phone_national") or ""),
            name=str(data.get("name") or ""),
            status=str(data["status"]),
            note=str(data.get("note") or ""),
            email=str(data.get("email") or ""),
            extra={str(k): str(v) for k, v in (data.get("extra") or {}).items()},
            list_name=str(data.get("list") or ""),
            operator=data.get("operator") or None,
            locked_by=data.get("locked_by") or None,
            locked_by_name=data.get("locked_by_name") or None,
            locked_until=_moment(data.get("locked_until")),
            last_contacted_at=_moment(data.get("last_contacted_at")),
            created_at=_required_moment(data["created_at"]),
            updated_at=_required_moment(data["updated_at"]),
            version=int(data["version"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactFilters:
    """Filters of the contact list; empty/None means "any". ``q`` searches name and phone digits."""

    statuses: tuple[str, ...] = ()
    list_name: str | None = None
    operator: str | None = None
    locked: bool | None = None
    q: str = ""

    def to_params(self) -> list[tuple[str, str]]:
        """Query-string parameters of these filters."""
        params = [("status", status) for status in self.statuses]
        if self.list_name is not None:
            params.append(("list", self.list_name))
        if self.operator is not None:
            params.append(("operator", self.operator))
        if self.locked is not None:
            params.append(("locked", "true" if self.locked else "false"))
        if self.q:
            params.append(("q", self.q))
        return params


class ContactRow(NamedTuple):
    """One contact as exported, in the export's column order; times are aware UTC.

    ``phone`` is the national form for Costa Rican numbers (``8812-3456``) and E.164 otherwise, so a
    re-import finds the same contact; ``locked_by`` is the name of the lock holder while the lock holds.
    """

    id: str
    phone: str
    name: str
    status: str
    note: str
    locked_by: str | None
    last_contacted_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, contact: Contact) -> ContactRow:
        """The export row of a contact."""
        return cls(
            contact.id,
            export_phone(contact.phone_e164, contact.phone_national),
            contact.name,
            contact.status,
            contact.note,
            (contact.locked_by_name or contact.locked_by) if contact.locked_by else None,
            contact.last_contacted_at,
            contact.created_at,
            contact.updated_at,
        )


def export_phone(e164: str, national: str) -> str:
    """The phone as exported: ``8812-3456`` for Costa Rica, the E.164 form for other countries."""
    return national if e164.startswith("+506") and national else e164


@dataclass(frozen=True, slots=True)
class Page:
    """One page of contacts and the opaque cursor of the next page (None on the last page)."""

    items: tuple[Contact, ...]
    next_cursor: str | None = None

    def to_data(self) -> JsonDict:
        """JSON-safe dict: ``items`` and ``next_cursor``."""
        return {"items": [c.to_data() for c in self.items], "next_cursor": self.next_cursor}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Page:
        """Rebuild from :meth:`to_data` output."""
        return cls(
            tuple(Contact.from_data(item) for item in data["items"]),
            data.get("next_cursor") or None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One change of a contact, from its event stream: field, old and new value, who and when."""

    position: int
    version: int
    event_type: str
    field: str
    old: str | None
    new: str | None
    user_id: str
    role: str
    at: datetime
    detail: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def to_data(self) -> JsonDict:
        """JSON-safe dict."""
        return {
            "position": self.position,
            "version": self.version,
            "event_type": self.event_type,
            "field": self.field,
            "old": self.old,
            "new": self.new,
            "user_id": self.user_id,
            "role": self.role,
            "at": self.at.isoformat(),
            "detail": dict(self.detail),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> HistoryEntry:
        """Rebuild from :meth:`to_data` output."""
        return cls(
            position=int(data["position"]),
            version=int(data["version"]),
            event_type=str(data["event_type"]),
            field=str(data["field"]),
            old=data.get("old"),
            new=data.get("new"),
            user_id=str(data.get("user_id") or ""),
            role=str(data.get("role") or ""),
            at=_required_moment(data["at"]),
            detail={str(k): str(v) for k, v in (data.get("detail") or {}).items()},
        )


SUCCESSFUL_OUTCOMES: frozenset[CallOutcome] = frozenset({CallOutcome.ANSWERED})
"""Outcomes that count as a successful call: someone answered."""

FAILED_OUTCOMES: frozenset[CallOutcome] = frozenset(
    {CallOutcome.NO_ANSWER, CallOutcome.BUSY, CallOutcome.FAILED}
)
"""Outcomes that count as a failed call. ``cancelled`` (the agent stopped it) is neither."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFigures:
    """Call figures of one agent, or summed over several, for the calls placed in a time window.

    ``made`` counts every call placed; ``by_outcome`` those that ended, by outcome. Handling time runs
    from the dial request to the end (calls without both are left out of the average), talk time is the
    sum of the durations the desks reported. The success rate is successful / (successful + failed):
    cancelled calls and calls still going count for neither.
    """

    made: int = 0
    by_outcome: Mapping[str, int] = dataclasses.field(default_factory=dict)
    talk_seconds: int = 0
    handling_seconds_total: float = 0.0
    handled_calls: int = 0

    @property
    def successful(self) -> int:
        """Calls that ended with a successful outcome."""
        return sum(self.by_outcome.get(o.value, 0) for o in SUCCESSFUL_OUTCOMES)

    @property
    def failed(self) -> int:
        """Calls that ended with a failed outcome."""
        return sum(self.by_outcome.get(o.value, 0) for o in FAILED_OUTCOMES)

    @property
    def cancelled(self) -> int:
        """Calls the agent cancelled."""
        return self.by_outcome.get(CallOutcome.CANCELLED.value, 0)

    @property
    def in_progress(self) -> int:
        """Calls placed that have not ended (yet)."""
        return max(self.made - sum(self.by_outcome.values()), 0)

    @property
    def average_handling_seconds(self) -> float | None:
        """Mean time from dial request to end; None without a finished call."""
        return self.handling_seconds_total / self.handled_calls if self.handled_calls else None

    @property
    def success_rate(self) -> float | None:
        """successful / (successful + failed); None when no call reached either."""
        decided = self.successful + self.failed
        return self.successful / decided if decided else None

    def plus(self, other: CallFigures) -> CallFigures:
        """The figures of both together (team and overall totals)."""
        outcomes = dict(self.by_outcome)
        for outcome, count in other.by_outcome.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
        return CallFigures(
            made=self.made + other.made,
            by_outcome=outcomes,
            talk_seconds=self.talk_seconds + other.talk_seconds,
            handling_seconds_total=self.handling_seconds_total + other.handling_seconds_total,
            handled_calls=self.handled_calls + other.handled_calls,
        )

    def to_data(self) -> JsonDict:
        """JSON-safe dict: the counts, the derived figures and the sums they come from."""
        average = self.average_handling_seconds
        rate = self.success_rate
        return {
            "made": self.made,
            "successful": self.successful,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "in_progress": self.in_progress,
            "average_handling_seconds": round(average, 2) if average is not None else None,
            "talk_seconds": self.talk_seconds,
            "success_rate": round(rate, 4) if rate is not None else None,
            "by_outcome": {o.value: self.by_outcome.get(o.value, 0) for o in CallOutcome},
            "handling_seconds_total": self.handling_seconds_total,
            "handled_calls": self.handled_calls,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> CallFigures:
        """Rebuild from :meth:`to_data` output (the derived figures are computed again)."""
        outcomes = data.get("by_outcome") or {}
        return cls(
            made=int(data.get("made") or 0),
            by_outcome={str(k): int(v) for k, v in outcomes.items() if int(v)},
            talk_seconds=int(data.get("talk_seconds") or 0),
            handling_seconds_total=float(data.get("handling_seconds_total") or 0.0),
            handled_calls=int(data.get("handled_calls") or 0),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCalls:
    """One agent's call figures: who (user id, and the user name the events carried) and how many."""

    user_id: str
    username: str
    figures: CallFigures

    def to_data(self) -> JsonDict:
        """JSON-safe dict: ``user_id``, ``username`` and the figures' fields."""
        return {"user_id": self.user_id, "username": self.username, **self.figures.to_data()}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> AgentCalls:
        """Rebuild from :meth:`to_data` output."""
        return cls(
            user_id=str(data["user_id"]),
            username=str(data.get("username") or ""),
            figures=CallFigures.from_data(data),
        )


def caller_to_data(caller: Caller) -> JsonDict:
    """The ``X-Caller`` header value of a caller, as a dict."""
    return {
        "user_id": caller.user_id,
        "username": caller.username,
        "role": caller.role.value,
        "team": caller.team,
    }


def caller_from_data(data: Mapping[str, Any]) -> Caller:
    """A caller from :func:`caller_to_data` output; ValueError when incomplete or the role is unknown."""
    user_id = str(data.get("user_id") or "").strip()
    if not user_id:
        raise ValueError("caller without user_id")
    return Caller(
        user_id=user_id,
        username=str(data.get("username") or user_id),
        role=Role(str(data.get("role") or "")),
        team=str(data.get("team") or ""),
    )


def error_to_data(error: ContactError) -> JsonDict:
    """``{"code", "message", ...details}`` of a domain error, enough for :func:`error_from_data`."""
    details: JsonDict = {}
    for name, value in vars(error).items():
        if name == "message" or name.startswith("_"):
            continue
        details[name] = value.isoformat() if isinstance(value, datetime) else value
    return {"code": error.code, "message": error.message, **details}


def error_from_data(data: Mapping[str, Any]) -> ContactError:
    """The typed domain error described by :func:`error_to_data` output (base class when unknown)."""
    code = str(data.get("code") or "")
    message = str(data.get("message") or "")
    try:
        error = _decode_error(code, data)
    except (KeyError, TypeError, ValueError):
        error = None
    if error is None:
        error = ContactError(message or code)
    error.message = message or error.message
    error.args = (error.message,)
    return error


def _decode_error(code: str, d: Mapping[str, Any]) -> ContactError | None:
    match code:
        case NotFound.code:
            return NotFound(d["contact_id"])
        case AlreadyExists.code:
            return AlreadyExists(d["existing_id"], d["phone_e164"])
        case Locked.code:
            return Locked(
                d["contact_id"], d["locked_by"], d["locked_by_name"], _required_moment(d["locked_until"])
            )
        case NotLockOwner.code:
            return NotLockOwner(d["contact_id"], d["locked_by"], d["locked_by_name"])
        case NotLocked.code:
            return NotLocked(d["contact_id"])
        case Forbidden.code:
            return Forbidden(d["role"], d["action"])
        case InvalidStatus.code:
            return InvalidStatus(d["text"])
        case InvalidInput.code:
            return InvalidInput(d["field"], str(d.get("message") or ""))
        case LockDurationTooLong.code:
            return LockDurationTooLong(int(d["requested_minutes"]), int(d["max_minutes"]))
        case VersionMismatch.code:
            return VersionMismatch(int(d["expected"]), int(d["actual"]), str(d.get("contact_id") or ""))
        case Conflict.code:
            return Conflict(str(d.get("contact_id") or ""))
        case DuplicatePhone.code:
            return DuplicatePhone(str(d.get("phone") or ""))
        case CallNotOpen.code:
            return CallNotOpen(str(d["contact_id"]), str(d["call_id"]))
        case QueueEmpty.code:
            counts = {str(k): int(v) for k, v in (d.get("counts") or {}).items()}
            return QueueEmpty(str(d.get("message") or ""), _moment(d.get("until")), counts)
        case DoNotCall.code:
            return DoNotCall(str(d["phone"]), str(d.get("reason") or ""))
        case CampaignNotFound.code:
            return CampaignNotFound(str(d["campaign_id"]))
        case CampaignNotWorked.code:
            return CampaignNotWorked(str(d["campaign_id"]), str(d.get("team") or ""))
        case CampaignExists.code:
            return CampaignExists(str(d["name"]))
        case TransitionRefused.code:
            return TransitionRefused(
                str(d["contact_id"]), str(d["old"]), str(d["new"]), str(d["role"]), str(d["needed"])
            )
        case CallbackRequired.code:
            return CallbackRequired(str(d["status"]))
        case CallbackNotFound.code:
            return CallbackNotFound(str(d["callback_id"]))
    return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _moment(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    return _required_moment(value)


def _required_moment(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
