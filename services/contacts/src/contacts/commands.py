"""Commands the contacts service accepts (its public contract with the gateway, importexport, generator).

Every command carries the acting user (:class:`Caller`, from the API key, never from a payload) and
``now``: time is an input, never read inside the domain. Phones arrive already normalised (E.164,
national form, operator) by ``kernel.phone`` at the edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from contacts.message import FLAG, TEXTS, Message, Request, decode_message, one, optional, registry
from kernel.roles import Role

if TYPE_CHECKING:
    from contacts.campaigns import Campaign, Claim, DncEntry
    from contacts.views import Contact

R_co = TypeVar("R_co", covariant=True)


class Source(StrEnum):
    """Where a contact or a merge came from."""

    API = "api"
    IMPORT = "import"
    GENERATOR = "generator"


class MergeMode(StrEnum):
    """How a batch row meets the contact its phone already has (PRODUCT.md, "People's work is never lost").

    ``fill``: only empty fields are set (the status only while it is the catalogue's default); ``overwrite``:
    non-empty incoming fields win (ProjectManager and TI only); ``skip``: existing contacts are left as they
    are. In every mode an incoming note is appended to the contact's note as a dated line, never replacing
    it (``skip`` appends nothing).
    """

    FILL = "fill"
    OVERWRITE = "overwrite"
    SKIP = "skip"


class CallOutcome(StrEnum):
    """How a call ended."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated user acting: id, user name, role and team."""

    user_id: str
    username: str
    role: Role
    team: str = ""


SYSTEM_CALLER = Caller(user_id="system", username="sistema", role=Role.SYSTEM)


# The result types live in modules that import this one (views, campaigns): decoded on first use.
def _contact(data: Mapping[str, Any]) -> Contact:
    from contacts.views import Contact

    return Contact.from_data(data)


def _claim(data: Mapping[str, Any]) -> Claim:
    from contacts.campaigns import Claim

    return Claim.from_data(data)


def _campaign(data: Mapping[str, Any]) -> Campaign:
    from contacts.campaigns import Campaign

    return Campaign.from_data(data)


def _dnc_entry(data: Mapping[str, Any]) -> DncEntry:
    from contacts.campaigns import DncEntry

    return DncEntry.from_data(data)


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(Request[R_co]):
    """Base of every command: who asks and when; ``RESULT`` says what it answers (``R_co``) and how that
    crosses the wire (``contacts.client.ContactsClient.execute``)."""

    caller: Caller
    now: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactCommand(Command["Contact | None"]):
    """A command on one contact stream; it answers the contact after it (None once deleted)."""

    RESULT = optional(_contact)
    contact_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateContact(ContactCommand):
    """Create one contact from ``phone`` as typed; the service's handler parses it and fills ``contact_id``
    (``domain.contact_id_for_phone``), ``phone_e164``, ``phone_national`` and ``operator``."""

    TYPE = "contacts.CreateContact"
    phone: str
    contact_id: str = ""
    phone_e164: str = ""
    phone_national: str = ""
    operator: str | None = None
    name: str = ""
    status: str | None = None
    note: str = ""
    email: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    list_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateContact(ContactCommand):
    """Change the given fields only (None = not given); an ``extra`` value of ``""`` removes that key."""

    TYPE = "contacts.UpdateContact"
    name: str | None = None
    status: str | None = None
    note: str | None = None
    email: str | None = None
    extra: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeStatus(ContactCommand):
    """Set the status (any accepted spelling)."""

    TYPE = "contacts.ChangeStatus"
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EditNote(ContactCommand):
    """Replace the note."""

    TYPE = "contacts.EditNote"
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LockContact(ContactCommand):
    """Lock for ``duration_minutes`` (policy default when None); renews when the caller already holds it."""

    TYPE = "contacts.LockContact"
    duration_minutes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtendLock(ContactCommand):
    """Renew the caller's lock to ``now + duration_minutes`` (policy default when None)."""

    TYPE = "contacts.ExtendLock"
    duration_minutes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseLock(ContactCommand):
    """Release the lock (a TeamLead and above may release another user's lock)."""

    TYPE = "contacts.ReleaseLock"


@dataclass(frozen=True, slots=True, kw_only=True)
class ForceReleaseLock(ContactCommand):
    """Release whoever's lock (TeamLead, ProjectManager, TI)."""

    TYPE = "contacts.ForceReleaseLock"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpireLock(ContactCommand):
    """Mark a lapsed lock as expired (scheduler); does nothing if the lock is free or still valid."""

    TYPE = "contacts.ExpireLock"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteContact(ContactCommand):
    """Delete the contact (ProjectManager, TI)."""

    TYPE = "contacts.DeleteContact"
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgeStatus(ContactCommand):
    """Apply the ageing thresholds at ``now`` (scheduler)."""

    TYPE = "contacts.AgeStatus"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordCallRequested(ContactCommand):
    """An agent asked their desk to dial the contact."""

    TYPE = "contacts.RecordCallRequested"
    call_id: str
    desk: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordCallStarted(ContactCommand):
    """Desk ``desk`` of the caller reports that its softphone started the call the gateway issued to it."""

    TYPE = "contacts.RecordCallStarted"
    call_id: str
    desk: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordCallEnded(ContactCommand):
    """Desk ``desk`` of the caller reports how the call ended, after ``ring_seconds`` and ``duration_seconds``
    of talk (kept within what the server's clock saw)."""

    TYPE = "contacts.RecordCallEnded"
    call_id: str
    outcome: CallOutcome
    duration_seconds: int = 0
    ring_seconds: int = 0
    reason: str = ""
    desk: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseStaleCall(ContactCommand):
    """Close an open call that no desk reported within its time (scheduler): it ends ``failed``."""

    TYPE = "contacts.CloseStaleCall"
    call_id: str
    reason: str


class CallbackScope(StrEnum):
    """Who may take a callback: only the agent who set it, or anyone working the campaign."""

    PERSONAL = "personal"
    SHARED = "shared"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordDisposition(ContactCommand):
    """Wrap up a call in one step: the ``outcome`` (a short code such as ``no_answer`` or ``sale``), the new
    ``status`` (any accepted spelling; None keeps it), a ``note`` appended to the contact's note and an
    optional callback at ``callback_at``; releases the caller's lock unless ``keep_lock``."""

    TYPE = "contacts.RecordDisposition"
    outcome: str
    status: str | None = None
    note: str = ""
    callback_at: datetime | None = None
    callback_scope: CallbackScope = CallbackScope.PERSONAL
    keep_lock: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RescheduleCallback(ContactCommand):
    """Change the contact's pending callback ``callback_id``: its due time, its scope and/or who owns it
    (``assignee_*``, a TeamLead within their team, ProjectManager and TI anyone; the gateway fills the
    assignee's name and team from the user directory). Fields left None keep their value."""

    TYPE = "contacts.RescheduleCallback"
    callback_id: str
    due_at: datetime | None = None
    scope: CallbackScope | None = None
    assignee_id: str | None = None
    assignee_name: str = ""
    assignee_team: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelCallback(ContactCommand):
    """Cancel the contact's pending callback ``callback_id``."""

    TYPE = "contacts.CancelCallback"
    callback_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RemindCallback(ContactCommand):
    """Record that the reminder of ``callback_id`` is sent, when it is due within ``before_minutes``
    (scheduler); does nothing once reminded."""

    TYPE = "contacts.RemindCallback"
    callback_id: str
    before_minutes: int
    # Who a shared callback's reminder goes to: the teams working the contact's campaigns (None: every
    # team); the scheduler reads them from the campaigns.
    teams: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ShareStaleCallback(ContactCommand):
    """Make the personal callback ``callback_id`` shared when still pending ``grace_minutes`` after its
    due time (scheduler); does nothing otherwise."""

    TYPE = "contacts.ShareStaleCallback"
    callback_id: str
    grace_minutes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportRow:
    """One row of a batch: a normalised phone plus the fields read from the file (empty = not given)."""

    row: int
    e164: str
    national: str = ""
    phone: str = ""
    name: str = ""
    note: str = ""
    status: str = ""
    email: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    operator: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateOrMergeContacts(Command["BatchResult"]):
    """Create or merge many contacts (import, generator); decided per row by ``domain.decide_import_row``,
    existing contacts by ``merge``. One transaction for the whole batch; imports and the generator send
    thousands of rows through ``ContactsClient.create_or_merge_stream`` instead (chunked, pipelined)."""

    TYPE = "contacts.CreateOrMergeContacts"
    RESULT = one(lambda data: BatchResult.from_data(data))
    rows: tuple[ImportRow, ...]
    list_name: str = ""
    source: Source = Source.IMPORT
    job_id: str = ""
    merge: MergeMode = MergeMode.FILL


class Outcome(StrEnum):
    """What a batch did with one row."""

    INSERTED = "inserted"
    UPDATED = "updated"
    LISTED = "listed"
    """The row changed no field of its contact, which joined the import's list (``ContactListed`` only)."""
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    LOCKED = "locked"
    """The row would change a contact someone else holds locked: the contact was left alone."""
    DNC = "dnc"
    """The row's phone is on the do-not-call list: nothing was saved (``contacts.dnc``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RowOutcome:
    """The outcome of one batch row; ``reason`` (Spanish) says why a row was rejected or left alone."""

    row: int
    e164: str
    outcome: Outcome
    contact_id: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult(Message):
    """The reply to :class:`CreateOrMergeContacts`: one outcome per row, in row order."""

    TYPE = "contacts.BatchResult"
    outcomes: tuple[RowOutcome, ...] = ()
    job_id: str = ""

    def count(self, outcome: Outcome) -> int:
        """How many rows had ``outcome``."""
        return sum(1 for row in self.outcomes if row.outcome is outcome)

    def summary(self) -> dict[str, Any]:
        """Counts per outcome plus the rejected rows, as the import report needs them."""
        return {
            "total": len(self.outcomes),
            **{outcome.value: self.count(outcome) for outcome in Outcome},
            "errors": [{"row": r.row, "message": r.reason} for r in self.outcomes if r.reason],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimNextContact(Command["Claim"]):
    """Give the caller the next eligible contact of ``campaign`` (None: of the active campaigns of their
    team, by priority then name), locked to them; QueueEmpty saying why when there is none."""

    TYPE = "contacts.ClaimNextContact"
    RESULT = one(_claim)
    campaign: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveCampaign(Command["Campaign"]):
    """Create a campaign (``campaign_id`` None; ``fields`` must name it) or change the given rules of one
    (``contacts.campaignbook.FIELDS``); answers the campaign as saved."""

    TYPE = "contacts.SaveCampaign"
    RESULT = one(_campaign)
    campaign_id: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddDnc(Command["DncEntry"]):
    """Put a number (typed any way) on the do-not-call list, or change its reason; audited."""

    TYPE = "contacts.AddDnc"
    RESULT = one(_dnc_entry)
    phone: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AddDncMany(Command[list[str]]):
    """List every ``(phone, reason)`` not listed yet, in one transaction, each audited; answers the E.164
    numbers added."""

    TYPE = "contacts.AddDncMany"
    RESULT = TEXTS
    entries: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveDnc(Command[bool]):
    """Take a number off the do-not-call list; answers False when it was not on it. Audited."""

    TYPE = "contacts.RemoveDnc"
    RESULT = FLAG
    phone: str
    reason: str = ""


COMMAND_TYPES: Mapping[str, type[Command[Any]]] = registry(
    CreateContact,
    UpdateContact,
    ChangeStatus,
    EditNote,
    LockContact,
    ExtendLock,
    ReleaseLock,
    ForceReleaseLock,
    ExpireLock,
    DeleteContact,
    AgeStatus,
    RecordCallRequested,
    RecordCallStarted,
    RecordCallEnded,
    CloseStaleCall,
    CreateOrMergeContacts,
    RecordDisposition,
    RescheduleCallback,
    CancelCallback,
    RemindCallback,
    ShareStaleCallback,
    ClaimNextContact,
    SaveCampaign,
    AddDnc,
    AddDncMany,
    RemoveDnc,
)


def decode_command(type_name: str, data: Mapping[str, Any], schema_version: int = 1) -> Command[Any]:
    """The command named ``type_name`` from its data; ValueError for unknown types or newer schemas."""
    return decode_message("command", COMMAND_TYPES, type_name, data, schema_version)
