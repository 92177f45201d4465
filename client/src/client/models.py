"""What the gateway sends, as frozen dataclasses built leniently from its JSON (unknown keys ignored)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

ROLES = ("Agent", "TeamLead", "ProjectManager", "TI")


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 timestamp (``Z`` accepted) as an aware UTC datetime, or None."""
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Contact:
    """One contact as the list and the panel show it."""

    id: str
    phone: str = ""
    phone_e164: str = ""
    phone_national: str = ""
    name: str = ""
    status: str = "SIN_GESTIONAR"
    note: str = ""
    email: str = ""
    list: str = ""
    operator: str = ""
    locked_by: str = ""
    locked_by_name: str = ""
    locked_until: datetime | None = None
    last_contacted_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0
    extra: tuple[tuple[str, str], ...] = ()
    """The file's other columns (``Cédula``, ``Zona``...), in the order the server sent them."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Contact:
        """A contact from the gateway's JSON."""
        version = data.get("version")
        return cls(
            id=str(data["id"]),
            phone=_text(data, "phone"),
            phone_e164=_text(data, "phone_e164"),
            phone_national=_text(data, "phone_national"),
            name=_text(data, "name"),
            status=_text(data, "status") or "SIN_GESTIONAR",
            note=_text(data, "note"),
            email=_text(data, "email"),
            list=_text(data, "list"),
            operator=_text(data, "operator"),
            locked_by=_text(data, "locked_by"),
            locked_by_name=_text(data, "locked_by_name"),
            locked_until=parse_time(data.get("locked_until")),
            last_contacted_at=parse_time(data.get("last_contacted_at")),
            updated_at=parse_time(data.get("updated_at")),
            version=int(version) if isinstance(version, int | str) and str(version).isdigit() else 0,
            extra=_pairs(data.get("extra")),
        )

    @property
    def display_phone(self) -> str:
        """The national form when known (``8812-3456``), else what was typed."""
        return self.phone_national or self.phone or self.phone_e164

    def keeping_lock_name(self, previous: Contact) -> Contact:
        """This contact, keeping ``previous``'s holder name when the same holder comes without one."""
        if self.locked_by and not self.locked_by_name and self.locked_by == previous.locked_by:
            return replace(self, locked_by_name=previous.locked_by_name)
        return self

    def lock_active(self, now: datetime) -> bool:
        """Whether someone holds the lock at ``now`` (an expired lock is free)."""
        return bool(self.locked_by) and (self.locked_until is None or self.locked_until > now)

    def lock_holder(self, now: datetime) -> str:
        """The name of who holds the lock at ``now`` ("" when free or expired)."""
        return (self.locked_by_name or self.locked_by) if self.lock_active(now) else ""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of contacts and the cursor of the next ("" when this is the last)."""

    contacts: Sequence[Contact]
    next_cursor: str = ""
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Me:
    """Who the API key belongs to; ``capabilities`` are the server's names when it sends them."""

    username: str
    role: str
    team: str = ""
    user_id: str = ""
    display_name: str = ""
    capabilities: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Me:
        """The user from ``GET /me``."""
        capabilities = data.get("capabilities")
        return cls(
            username=_text(data, "username"),
            role=_text(data, "role"),
            team=_text(data, "team"),
            user_id=_text(data, "user_id"),
            display_name=_text(data, "display_name"),
            capabilities=tuple(str(c) for c in capabilities) if isinstance(capabilities, list) else None,
        )

    def is_me(self, user: str) -> bool:
        """Whether ``user`` (an id or a user name, as events carry them) is this user."""
        return bool(user) and user in {self.user_id, self.username}


@dataclass(frozen=True, slots=True)
class StatusOption:
    """One status of the catalogue."""

    code: str
    label_es: str
    label_en: str
    priority: int

    def label(self, language: str) -> str:
        """The label in ``language``."""
        return self.label_en if language == "en" else self.label_es

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatusOption:
        """A status from ``GET /statuses`` (``label`` or ``label_es``/``label_en``)."""
        code = _text(data, "code")
        label_es = _text(data, "label_es") or _text(data, "label") or code
        return cls(
            code=code,
            label_es=label_es,
            label_en=_text(data, "label_en") or label_es,
            priority=int(data.get("priority", 1000) or 1000),
        )


# The server's catalogue (contacts.statuses, checked equal by tests/client/test_viewmodels_session.py), used
# only when the server has no GET /statuses (and the user is told).
DEFAULT_STATUSES: tuple[StatusOption, ...] = (
    StatusOption("NC", "No contesta", "No answer", 1),
    StatusOption("CUELGA", "Cuelga", "Hangs up", 2),
    StatusOption("SIN_GESTIONAR", "Sin gestionar", "Not handled", 3),
    StatusOption("INTERESADO", "Interesado", "Interested", 4),
    StatusOption("SERVICIOS_ACTIVOS", "Servicios activos", "Active services", 5),
    StatusOption("PENDIENTE", "Pendiente", "Pending", 6),
    StatusOption("EN_PROGRESO", "En progreso", "In progress", 7),
    StatusOption("COMPLETADA", "Completada", "Completed", 8),
    StatusOption("NO_DISPONIBLE", "No disponible", "Unavailable", 9),
    StatusOption("NO_EXISTE", "No existe", "Does not exist", 10),
    StatusOption("SIN_RED", "Sin red", "No network", 11),
    StatusOption("NO_CONTACTO", "No contacto", "No contact", 12),
    StatusOption("NO_LLAMAR", "No llamar", "Do not call", 13),
)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of a contact: when, who, what field, before and after."""

    when: datetime | None
    who: str
    what: str
    old: str = ""
    new: str = ""


def history_from_json(items: Sequence[Mapping[str, Any]]) -> list[HistoryEntry]:
    """History rows from ``GET /contacts/{id}/history``: events with ``changes`` or one ``field`` each."""
    rows: list[HistoryEntry] = []
    for item in items:
        when = parse_time(item.get("at") or item.get("occurred_at") or item.get("ts") or item.get("when"))
        actor = item.get("actor")
        who = (
            _text(actor, "user") or _text(actor, "username") or _text(actor, "user_id")
            if isinstance(actor, Mapping)
            else _text(item, "user_name")
            or _text(item, "username")
            or _text(item, "user")
            or _text(item, "who")
            or _text(item, "user_id")
        )
        kind = _text(item, "type") or _text(item, "event") or _text(item, "event_type")
        changes = item.get("changes")
        if isinstance(changes, Sequence) and changes and not isinstance(changes, str):
            for change in changes:
                if isinstance(change, Mapping):
                    rows.append(
                        HistoryEntry(
                            when, who, _text(change, "field"), _text(change, "old"), _text(change, "new")
                        )
                    )
            continue
        detail = item.get("detail")
        if item.get("field"):
            field_name, old, new = _text(item, "field"), _text(item, "old"), _text(item, "new")
            # Users appear in values by id: the row's own actor and a lock's holder come with their names.
            names = {_text(item, "user_id"): who} if item.get("user_id") and who else {}
            if field_name == "locked_by" and isinstance(detail, Mapping) and detail.get("name"):
                names[new] = _text(detail, "name")
            rows.append(HistoryEntry(when, who, field_name, names.get(old, old), names.get(new, new)))
            continue
        if isinstance(detail, Mapping) and kind:
            text = ", ".join(f"{k}={v}" for k, v in detail.items())
            rows.append(HistoryEntry(when, who, kind.rsplit(".", 1)[-1], "", text))
            continue
        data = item.get("data")
        detail = ""
        if isinstance(data, Mapping):
            detail = ", ".join(f"{k}={v}" for k, v in data.items() if k not in {"id", "contact_id"})
        rows.append(HistoryEntry(when, who, kind, "", detail))
    return rows


@dataclass(frozen=True, slots=True)
class JobProgress:
    """A background job (import, export) as ``GET /jobs/{id}`` or ``job_progress`` report it."""

    id: str
    kind: str = ""
    state: str = "queued"
    done: int = 0
    total: int = 0
    report: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""

    @property
    def finished(self) -> bool:
        """Whether the job reached an end state."""
        return self.state in {"finished", "failed", "cancelled"}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobProgress:
        """A job from the gateway's JSON (``progress: {done, total}`` or flat ``done``/``total``)."""
        progress = data.get("progress")
        source: Mapping[str, Any] = progress if isinstance(progress, Mapping) else data
        report = data.get("report")
        error = data.get("error")
        if isinstance(error, Mapping):
            message = _text(error, "message")
        else:
            message = error if isinstance(error, str) and error else _text(data, "message")
        return cls(
            id=_text(data, "id") or _text(data, "job_id"),
            kind=_text(data, "kind"),
            state=_text(data, "state") or "queued",
            done=int(source.get("done") or 0),
            total=int(source.get("total") or 0),
            report=report if isinstance(report, Mapping) else {},
            message=message,
        )


@dataclass(frozen=True, slots=True)
class GeneratedPhone:
    """One generated number."""

    number: str
    operator: str
    formatted: str


@dataclass(frozen=True, slots=True)
class Generation:
    """The answer of ``POST /api/generate_contacts``."""

    success: bool
    count: int
    saved: int
    phones: Sequence[GeneratedPhone]
    weights: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Generation:
        """The generation result from the gateway's JSON."""
        phones = [
            GeneratedPhone(_text(p, "number"), _text(p, "operator"), _text(p, "formatted"))
            for p in data.get("phones") or []
            if isinstance(p, Mapping)
        ]
        raw_weights = data.get("weights")
        weights = (
            {str(k): float(v) for k, v in raw_weights.items() if isinstance(v, int | float)}
            if isinstance(raw_weights, Mapping)
            else {}
        )
        return cls(
            success=bool(data.get("success")),
            count=int(data.get("count") or len(phones)),
            saved=int(data.get("saved") or 0),
            phones=phones,
            weights=weights,
        )


@dataclass(frozen=True, slots=True)
class CallRequest:
    """The gateway's answer to a dial request (``POST /contacts/{id}/call`` → 202)."""

    call_id: str
    desk_connected: bool
    desk: str = ""
    contact_id: str = ""
    dial: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallRequest:
        """The request from the 202 body ``{call_id, contact_id, dial, desk, desk_connected}``."""
        return cls(
            call_id=_text(data, "call_id"),
            desk_connected=bool(data.get("desk_connected")),
            desk=_text(data, "desk"),
            contact_id=_text(data, "contact_id"),
            dial=_text(data, "dial"),
        )


DESK_STATES = ("ready", "dialling", "ringing", "in_call", "softphone_missing", "offline")
"""What a desk reports (``desk_state``); ``offline`` is the gateway's word for a desk that disconnected."""

BUSY_DESK_STATES = frozenset({"dialling", "ringing", "in_call"})


@dataclass(frozen=True, slots=True)
class DeskState:
    """One desk (``callmanager-dialer`` connection) as ``GET /desks`` and ``desk_state`` describe it."""

    user_id: str
    username: str
    desk: str
    state: str
    call_id: str = ""
    contact_id: str = ""
    since: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        """A desk is one user's desk name."""
        return (self.user_id or self.username, self.desk)

    @property
    def busy(self) -> bool:
        """Whether the desk is placing or holding a call."""
        return self.state in BUSY_DESK_STATES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeskState:
        """A desk from ``GET /desks`` or a ``desk_state`` notice (``user`` accepted for ``user_id``)."""
        return cls(
            user_id=_text(data, "user_id") or _text(data, "user"),
            username=_text(data, "username") or _text(data, "display_name"),
            desk=_text(data, "desk"),
            state=_text(data, "state") or "ready",
            call_id=_text(data, "call_id"),
            contact_id=_text(data, "contact_id"),
            since=parse_time(data.get("since")),
        )


def _pairs(value: object) -> tuple[tuple[str, str], ...]:
    """The non-empty entries of a JSON object as (key, value) text pairs."""
    if not isinstance(value, Mapping):
        return ()
    return tuple((str(key), str(item)) for key, item in value.items() if item not in (None, ""))


@dataclass(frozen=True, slots=True)
class Claim:
    """The next contact the work queue gave me (already locked to me) and why it was chosen."""

    contact: Contact
    campaign: str = ""
    reason: str = ""
    message: str = ""
    attempts: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Claim:
        """The claim from ``POST /queue/next`` (or the ``queue_next`` ack)."""
        contact = data.get("contact")
        if not isinstance(contact, Mapping) or not contact.get("id"):
            raise ValueError("claim without a contact")
        attempts = data.get("attempts")
        return cls(
            contact=Contact.from_json(contact),
            campaign=_text(data, "campaign"),
            reason=_text(data, "reason"),
            message=_text(data, "message"),
            attempts=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 0,
        )


@dataclass(frozen=True, slots=True)
class Callback:
    """A pending callback (``GET /callbacks`` row or a ``callback_reminder``)."""

    contact_id: str
    due_at: datetime | None
    scope: str = "personal"
    name: str = ""
    phone: str = ""
    user_id: str = ""
    username: str = ""
    callback_id: str = ""

    @property
    def id(self) -> str:
        """What ``PATCH``/``DELETE /callbacks/{id}`` take: the callback's id, else its contact's."""
        return self.callback_id or self.contact_id

    @property
    def display_phone(self) -> str:
        """A Costa Rican number as ``8812-3456``; any other as the server sent it."""
        digits = self.phone.removeprefix("+506")
        if self.phone.startswith("+506") and len(digits) == 8 and digits.isdigit():
            return f"{digits[:4]}-{digits[4:]}"
        return self.phone

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Callback:
        """A callback from the gateway's JSON (``phone_e164`` or ``phone``, ``name`` or ``contact_name``)."""
        return cls(
            contact_id=_text(data, "contact_id"),
            due_at=parse_time(data.get("due_at")),
            scope=_text(data, "scope") or "personal",
            name=_text(data, "name") or _text(data, "contact_name"),
            phone=_text(data, "phone") or _text(data, "phone_e164"),
            user_id=_text(data, "user_id"),
            username=_text(data, "username"),
            callback_id=_text(data, "callback_id") or _text(data, "id"),
        )


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason the queue would (or would not) offer a contact now."""

    reason: str
    message: str
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Eligibility:
    """``GET /contacts/{id}/eligibility``: whether the contact would be offered now, and why."""

    contact_id: str
    eligible: bool
    reasons: tuple[Finding, ...] = ()
    campaign: str = ""

    @property
    def dnc(self) -> Finding | None:
        """The do-not-call finding, when the number is on the list."""
        return next((f for f in self.reasons if f.reason == "dnc"), None)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Eligibility:
        """The eligibility from the gateway's JSON."""
        reasons = data.get("reasons")
        return cls(
            contact_id=_text(data, "contact_id"),
            eligible=bool(data.get("eligible")),
            reasons=tuple(
                Finding(_text(r, "reason"), _text(r, "message"), parse_time(r.get("until")))
                for r in (reasons if isinstance(reasons, list) else [])
                if isinstance(r, Mapping)
            ),
            campaign=_text(data, "campaign"),
        )


RETRY_OUTCOMES = ("busy", "no_answer", "failed")
"""The outcomes whose retry delay the campaign window edits."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Calling-hours days as the gateway names them, Monday first."""

DEFAULT_TIMEZONE = "America/Costa_Rica"

Hours = Mapping[str, tuple[tuple[str, str], ...]]
"""Calling hours: weekday → its windows ``(start, end)`` in ``HH:MM`` local time; a day absent is closed."""


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _names(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def hours_from_json(value: object) -> Hours | None:
    """``{"mon": [["08:00", "17:00"]]}`` as :data:`Hours` (None: no limit, or not a mapping)."""
    if not isinstance(value, Mapping):
        return None
    return {
        str(day): tuple(
            (str(w[0]), str(w[1])) for w in windows if isinstance(w, list | tuple) and len(w) == 2
        )
        for day, windows in value.items()
        if str(day) in WEEKDAYS and isinstance(windows, list)
    }


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign and its rules (``GET /campaigns``)."""

    id: str
    name: str
    active: bool = True
    max_attempts: int = 6
    retry_minutes: Mapping[str, int] = field(default_factory=dict)
    closed_statuses: tuple[str, ...] = ()
    archived: bool = False
    priority: int = 100
    max_per_day: int | None = None
    lists: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    timezone: str = DEFAULT_TIMEZONE
    calling_hours: Hours | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Campaign:
        """A campaign from the gateway's JSON."""
        retry = data.get("retry_minutes")
        priority = _int_or_none(data.get("priority"))
        return cls(
            id=_text(data, "id"),
            name=_text(data, "name"),
            active=bool(data.get("active", True)),
            max_attempts=_int_or_none(data.get("max_attempts")) or 6,
            retry_minutes={str(k): int(v) for k, v in retry.items() if isinstance(v, int)}
            if isinstance(retry, Mapping)
            else {},
            closed_statuses=_names(data.get("closed_statuses")),
            archived=bool(data.get("archived", False)),
            priority=priority if priority is not None else 100,
            max_per_day=_int_or_none(data.get("max_per_day")),
            lists=_names(data.get("lists")),
            teams=_names(data.get("teams")),
            timezone=_text(data, "timezone") or DEFAULT_TIMEZONE,
            calling_hours=hours_from_json(data.get("calling_hours")),
        )


PROGRESS_FIELDS = ("total", "never_tried", "in_retry", "reached", "closed", "dnc", "capped", "locked")


@dataclass(frozen=True, slots=True)
class CampaignProgress:
    """``GET /campaigns/{id}/progress``: how far the campaign's contacts have been worked."""

    campaign: str
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        """Contacts in the campaign."""
        return self.counts.get("total", 0)

    @property
    def worked_share(self) -> float:
        """The share (0..1) of contacts tried at least once."""
        total = self.total
        return 0.0 if total <= 0 else max(0.0, min(1.0, (total - self.counts.get("never_tried", 0)) / total))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CampaignProgress:
        """The progress from the gateway's JSON (missing figures count as 0)."""
        counts = {
            name: value if isinstance(value, int) and not isinstance(value, bool) else 0
            for name in PROGRESS_FIELDS
            for value in [data.get(name)]
        }
        return cls(campaign=_text(data, "campaign"), counts=counts)
