"""Events of the contact stream (its public contract): immutable facts, past tense, with stable type names.

Every event names its contact and the moment it happened (``at``, UTC); who caused it travels in the
envelope's actor. Field changes are :class:`FieldChange` rows (``name``, ``note``, ``email``,
``operator`` or ``extra.<key>``; ``new=None`` means the extra key was removed). Call events also carry
the agent's ``user_id`` and ``username`` (empty in events stored before it was added), so the calls
read model can be rebuilt from the stream alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from contacts.commands import CallbackScope, CallOutcome, Source
from contacts.message import Message, registry


class StatusReason(StrEnum):
    """Why a status changed: set by a person, by the ageing schedule, or by an import."""

    AGENT = "agent"
    AGEING = "ageing"
    IMPORT = "import"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field's old and new value."""

    field: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactEvent(Message):
    """Base of every contact event."""

    contact_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactCreated(ContactEvent):
    """A contact came to exist (or came back after a deletion)."""

    TYPE = "contacts.ContactCreated"
    phone: str
    phone_e164: str
    phone_national: str = ""
    operator: str | None = None
    name: str = ""
    status: str
    note: str = ""
    email: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    list_name: str = ""
    source: Source = Source.API


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactUpdated(ContactEvent):
    """A user changed name, email or extra fields."""

    TYPE = "contacts.ContactUpdated"
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChanged(ContactEvent):
    """The status changed; reasons ``agent`` and ``import`` reset the last-contact clock, ``ageing`` not."""

    TYPE = "contacts.StatusChanged"
    old: str
    new: str
    reason: StatusReason


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteEdited(ContactEvent):
    """A user replaced the note."""

    TYPE = "contacts.NoteEdited"
    old: str
    new: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactLocked(ContactEvent):
    """A user took the lock until ``locked_until``."""

    TYPE = "contacts.ContactLocked"
    locked_by: str
    locked_by_name: str
    locked_until: datetime
    duration_minutes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LockExtended(ContactEvent):
    """The holder renewed the lock to ``locked_until``."""

    TYPE = "contacts.LockExtended"
    locked_by: str
    locked_until: datetime
    duration_minutes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LockReleased(ContactEvent):
    """The holder released the lock."""

    TYPE = "contacts.LockReleased"
    released_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LockForceReleased(ContactEvent):
    """A TeamLead or above released another user's lock."""

    TYPE = "contacts.LockForceReleased"
    locked_by: str
    locked_by_name: str
    released_by: str
    released_by_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LockExpired(ContactEvent):
    """The lock lapsed at ``locked_until`` without being renewed."""

    TYPE = "contacts.LockExpired"
    locked_by: str
    locked_until: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactDeleted(ContactEvent):
    """The contact was deleted; its history stays in the stream."""

    TYPE = "contacts.ContactDeleted"
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactMerged(ContactEvent):
    """A batch row (import, generator) changed an existing contact; resets the last-contact clock."""

    TYPE = "contacts.ContactMerged"
    changes: tuple[FieldChange, ...]
    list_name: str = ""
    source: Source = Source.IMPORT
    row: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactListed(ContactEvent):
    """A batch row (import, generator) put an existing contact in one more list (its first list stays
    ``ContactCreated.list_name``): the contact is now in every campaign holding that list too."""

    TYPE = "contacts.ContactListed"
    list_name: str
    source: Source = Source.IMPORT
    row: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRequested(ContactEvent):
    """An agent asked their desk to dial the contact."""

    TYPE = "contacts.CallRequested"
    call_id: str
    user_id: str
    desk: str = ""
    username: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(ContactEvent):
    """The desk softphone started the call."""

    TYPE = "contacts.CallStarted"
    call_id: str
    user_id: str
    username: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(ContactEvent):
    """The call ended; resets the last-contact clock."""

    TYPE = "contacts.CallEnded"
    call_id: str
    user_id: str
    outcome: CallOutcome
    duration_seconds: int = 0
    username: str = ""
    ring_seconds: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DispositionRecorded(ContactEvent):
    """An agent wrapped up a call: outcome, note and, when set, a callback due at ``callback_at``."""

    TYPE = "contacts.DispositionRecorded"
    user_id: str
    username: str = ""
    outcome: str
    note: str = ""
    callback_at: datetime | None = None
    callback_scope: CallbackScope = CallbackScope.PERSONAL
    # Set with callback_at: "<contact id>.<stream version of this event>" (empty in events stored before
    # it existed: the same value is then derived when folding), and the agent's team.
    callback_id: str = ""
    team: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRescheduled(ContactEvent):
    """The pending callback ``callback_id`` now falls due at ``due_at``, with this scope and owner."""

    TYPE = "contacts.CallbackRescheduled"
    callback_id: str
    due_at: datetime
    scope: CallbackScope
    user_id: str
    username: str = ""
    team: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackCancelled(ContactEvent):
    """The pending callback ``callback_id`` was cancelled."""

    TYPE = "contacts.CallbackCancelled"
    callback_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackShared(ContactEvent):
    """A personal callback became shared (its agent did not take it within the grace after its due time)."""

    TYPE = "contacts.CallbackShared"
    callback_id: str
    user_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackReminded(ContactEvent):
    """The reminder of ``callback_id`` went out (once per callback): what the live ``callback_reminder``
    carries, as it was at that moment."""

    TYPE = "contacts.CallbackReminded"
    callback_id: str
    user_id: str
    scope: CallbackScope
    due_at: datetime
    contact_name: str = ""
    phone: str = ""
    # A shared callback's reminder goes to these teams' agents (those working the contact's campaigns);
    # None: to every team (a campaign worked by every team, or an event stored before this was kept).
    teams: tuple[str, ...] | None = None


EVENT_TYPES: Mapping[str, type[ContactEvent]] = registry(
    ContactCreated,
    ContactUpdated,
    StatusChanged,
    NoteEdited,
    ContactLocked,
    LockExtended,
    LockReleased,
    LockForceReleased,
    LockExpired,
    ContactDeleted,
    ContactMerged,
    CallRequested,
    CallStarted,
    CallEnded,
    DispositionRecorded,
    CallbackRescheduled,
    CallbackCancelled,
    CallbackShared,
    CallbackReminded,
    ContactListed,
)


def decode_event(type_name: str, data: Mapping[str, Any], schema_version: int = 1) -> ContactEvent:
    """The event named ``type_name`` from its data; ValueError for unknown types or newer schemas."""
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise ValueError(f"unknown event type {type_name!r}")
    if schema_version > cls.SCHEMA_VERSION:
        raise ValueError(f"{type_name} schema {schema_version} is newer than {cls.SCHEMA_VERSION}")
    return cls.from_data(data)
