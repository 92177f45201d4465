"""The contact aggregate, pure: ``decide(state, command) -> events`` and ``evolve(state, event) -> state``.

Rules (PRODUCT.md, Contacts/Locks/Roles):

- Identity of a contact is its phone's E.164 form; ``contact_id_for_phone`` gives the one stream id of
  a phone, so two creations of one number meet on one stream and the store's optimistic concurrency
  lets exactly one win. A deleted contact's stream may be created again.
- A lock is held only while ``now < locked_until``, evaluated on every check. Locking a free (or lapsed)
  contact locks it; the holder locking again or extending renews it to ``now + duration`` (never
  shortening it); anyone else gets :class:`Locked`. Durations default to and are capped by
  :class:`LockPolicy` (10 and 60 minutes unless settings say otherwise).
- Only the holder releases; a TeamLead, ProjectManager or TI releasing someone else's lock force-releases
  it. ``ExpireLock`` marks a lapsed lock expired and does nothing otherwise (idempotent).
- While someone else holds the lock, updates, status and note changes, deletion and call requests
  are refused with :class:`Locked`. Deleting needs ProjectManager or TI. Commands on a deleted or
  missing contact raise :class:`NotFound` (the scheduler's ``ExpireLock``/``AgeStatus`` just do nothing).
- A status set by a person, a call that ended and a batch merge that changed something reset the
  last-contact clock. Ageing moves the status to the highest threshold reached since that clock
  (or creation), never backwards, never for non-ageable statuses, and not while the contact is locked.
- Batch rows merge into existing contacts by the batch's :class:`MergeMode`: ``fill`` (the default) sets
  only empty fields (the status only while it is the default one), ``overwrite`` (ProjectManager and TI)
  lets non-empty incoming fields win, ``skip`` leaves existing contacts alone. An incoming note is
  appended to the contact's note as a line dated in Costa Rica time, never replacing it, and not again
  when the note already holds it. The phone as typed and the list of origin are kept. An incoming default
  status (``SIN_GESTIONAR``) never overwrites a worked status: a file's "sin gestionar" carries no
  information. A row that would change a contact someone else holds locked leaves it alone (outcome
  ``locked``). A row whose phone is on the do-not-call list is not saved at all (outcome ``dnc``), new
  or existing. A row that changes nothing emits nothing and does not reset the clock, so re-importing
  the same file changes nothing (idempotent).
- Every status a person sets (``ChangeStatus``, ``UpdateContact``, ``RecordDisposition``) follows the
  catalogue's state machine (``Catalogue.required_role``: leaving a final status needs TeamLead or above)
  or raises :class:`TransitionRefused`; an import row's status follows it for the batch's caller (else
  the status stays). A wrap-up to a status that ``requires_callback`` needs ``callback_at``.
- A wrap-up with ``callback_at`` leaves the contact's one pending callback, id ``<contact id>.<stream
  version of that wrap-up>``; a later wrap-up replaces or clears it. Its owner reschedules or cancels it,
  a TeamLead also their team's (and reassigns within the team), ProjectManager and TI any. The scheduler
  records its reminder once (``RemindCallback``) and makes a personal one shared after the grace
  (``ShareStaleCallback``); both do nothing when there is nothing to do.
- A command that changes nothing emits no events.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from contacts.commands import (
    AgeStatus,
    BatchResult,
    CallbackScope,
    Caller,
    CallOutcome,
    CancelCallback,
    ChangeStatus,
    CloseStaleCall,
    ContactCommand,
    CreateContact,
    CreateOrMergeContacts,
    DeleteContact,
    EditNote,
    ExpireLock,
    ExtendLock,
    ForceReleaseLock,
    ImportRow,
    LockContact,
    MergeMode,
    Outcome,
    RecordCallEnded,
    RecordCallRequested,
    RecordCallStarted,
    RecordDisposition,
    ReleaseLock,
    RemindCallback,
    RescheduleCallback,
    RowOutcome,
    ShareStaleCallback,
    Source,
    UpdateContact,
)
from contacts.errors import (
    AlreadyExists,
    CallbackNotFound,
    CallbackRequired,
    CallNotOpen,
    ContactError,
    Forbidden,
    InvalidInput,
    LockDurationTooLong,
    Locked,
    NotFound,
    NotLocked,
    NotLockOwner,
    TransitionRefused,
)
from contacts.events import (
    CallbackCancelled,
    CallbackReminded,
    CallbackRescheduled,
    CallbackShared,
    CallEnded,
    CallRequested,
    CallStarted,
    ContactCreated,
    ContactDeleted,
    ContactEvent,
    ContactListed,
    ContactLocked,
    ContactMerged,
    ContactUpdated,
    DispositionRecorded,
    FieldChange,
    LockExpired,
    LockExtended,
    LockForceReleased,
    LockReleased,
    NoteEdited,
    StatusChanged,
    StatusReason,
)
from contacts.statuses import DEFAULT_CATALOGUE, DEFAULT_STATUS, Catalogue
from kernel.roles import Role

CONTACTS_NAMESPACE = uuid.UUID("6f1d8f3a-2c4b-5e7a-9b0c-1d2e3f4a5b6c")
_NAMESPACE_BYTES = CONTACTS_NAMESPACE.bytes

NAME_MAX = 200
EMAIL_MAX = 254
NOTE_MAX = 10_000
EXTRA_FIELDS_MAX = 100
EXTRA_KEY_MAX = 100
EXTRA_VALUE_MAX = 2_000

# Costa Rica keeps UTC-6 all year: the date of a note line appended by an import.
_COSTA_RICA = timezone(timedelta(hours=-6))

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_OUTCOME = re.compile(r"^[a-z0-9_]{1,40}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EXTRA_PREFIX = "extra."
_PLAIN_FIELDS = frozenset({"name", "note", "email", "operator", "phone", "phone_national"})


@functools.lru_cache(maxsize=65_536)
def contact_id_for_phone(e164: str) -> str:
    """The stream id of the contact with this E.164 phone (a name-based UUID, the same everywhere).

    Equal to ``str(uuid.uuid5(CONTACTS_NAMESPACE, e164))``, computed without building UUID objects and
    remembered for recent phones: a batch asks for each row's id several times.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + e164.encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class LockPolicy:
    """Lock durations in minutes: the default when none is asked for, and the maximum."""

    default_minutes: int = 10
    max_minutes: int = 60

    def __post_init__(self) -> None:
        if not 1 <= self.default_minutes <= self.max_minutes:
            raise ValueError("lock durations must satisfy 1 <= default_minutes <= max_minutes")

    def duration(self, requested: int | None) -> int:
        """Minutes for a lock request (default for None); InvalidInput or LockDurationTooLong out of range."""
        if requested is None:
            return self.default_minutes
        if requested < 1:
            raise InvalidInput("duration_minutes", "La duración del bloqueo debe ser de al menos 1 minuto")
        if requested > self.max_minutes:
            raise LockDurationTooLong(requested, self.max_minutes)
        return requested


@dataclass(frozen=True, slots=True)
class OpenCall:
    """A call issued to a desk and not ended yet: whose, which desk, and the server's times."""

    user_id: str
    username: str
    desk: str
    requested_at: datetime
    started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PendingCallback:
    """The contact's pending callback: its stable id, owner (and their team), scope, due time and whether
    its reminder went out."""

    callback_id: str
    user_id: str
    username: str
    team: str
    scope: CallbackScope
    due_at: datetime
    reminded: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactState:
    """A contact as its stream tells it; ``version`` is the number of events folded in."""

    contact_id: str
    phone: str
    phone_e164: str
    phone_national: str = ""
    operator: str | None = None
    name: str = ""
    status: str = DEFAULT_STATUS
    note: str = ""
    email: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    list_name: str = ""
    # The lists the contact joined after its first (``ContactListed``), in order.
    lists: tuple[str, ...] = ()
    source: Source = Source.API
    locked_by: str | None = None
    locked_by_name: str = ""
    locked_until: datetime | None = None
    last_contacted_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    deleted: bool = False
    version: int = 0
    open_calls: Mapping[str, OpenCall] = field(default_factory=dict)
    # Folded from the stream only (the read model's states leave it None: its own table holds callbacks).
    callback: PendingCallback | None = None

    def lock_holder(self, now: datetime) -> str | None:
        """User id holding the lock at ``now``, or None when free or lapsed."""
        if self.locked_by is None or self.locked_until is None or now >= self.locked_until:
            return None
        return self.locked_by

    def is_locked(self, now: datetime) -> bool:
        """True while someone holds the lock at ``now``."""
        return self.lock_holder(now) is not None

    @property
    def ageing_since(self) -> datetime:
        """Start of the ageing clock: the last contact, or the creation."""
        return self.last_contacted_at or self.created_at


def evolve(state: ContactState | None, event: ContactEvent) -> ContactState:
    """The state after ``event``; ValueError for an event other than ContactCreated on an empty stream."""
    if isinstance(event, ContactCreated):
        return ContactState(
            contact_id=event.contact_id,
            phone=event.phone,
            phone_e164=event.phone_e164,
            phone_national=event.phone_national,
            operator=event.operator,
            name=event.name,
            status=event.status,
            note=event.note,
            email=event.email,
            extra=dict(event.extra),
            list_name=event.list_name,
            source=event.source,
            created_at=event.at,
            updated_at=event.at,
            version=(state.version if state is not None else 0) + 1,
        )
    if state is None:
        raise ValueError(f"{event.TYPE} before ContactCreated in stream {event.contact_id}")
    state = replace(state, version=state.version + 1)
    match event:
        case ContactUpdated():
            return replace(_with_changes(state, event.changes), updated_at=event.at)
        case ContactMerged():
            changed = _with_changes(state, event.changes)
            return replace(changed, updated_at=event.at, last_contacted_at=event.at)
        case StatusChanged():
            if event.reason is StatusReason.AGEING:
                return replace(state, status=event.new, updated_at=event.at)
            return replace(state, status=event.new, updated_at=event.at, last_contacted_at=event.at)
        case NoteEdited():
            return replace(state, note=event.new, updated_at=event.at)
        case ContactLocked():
            return replace(
                state,
                locked_by=event.locked_by,
                locked_by_name=event.locked_by_name,
                locked_until=event.locked_until,
            )
        case LockExtended():
            return replace(state, locked_until=event.locked_until)
        case LockReleased() | LockForceReleased() | LockExpired():
            return _unlocked(state)
        case ContactDeleted():
            return replace(_unlocked(state), deleted=True, updated_at=event.at, callback=None)
        case CallRequested():
            call = OpenCall(event.user_id, event.username, event.desk, event.at)
            return replace(state, open_calls={**state.open_calls, event.call_id: call})
        case CallStarted():
            opened = state.open_calls.get(event.call_id)
            if opened is None or opened.started_at is not None:
                return state
            started = replace(opened, started_at=event.at)
            return replace(state, open_calls={**state.open_calls, event.call_id: started})
        case CallEnded():
            still_open = {key: call for key, call in state.open_calls.items() if key != event.call_id}
            return replace(state, last_contacted_at=event.at, open_calls=still_open)
        case DispositionRecorded():
            return replace(state, updated_at=event.at, callback=_callback_set(state, event))
        case CallbackRescheduled():
            if state.callback is None:
                return state
            moved = PendingCallback(
                event.callback_id, event.user_id, event.username, event.team, event.scope, event.due_at
            )
            return replace(state, callback=moved)
        case CallbackCancelled():
            return replace(state, callback=None)
        case CallbackShared():
            if state.callback is None:
                return state
            return replace(state, callback=replace(state.callback, scope=CallbackScope.SHARED))
        case CallbackReminded():
            if state.callback is None:
                return state
            return replace(state, callback=replace(state.callback, reminded=True))
        case ContactListed():
            return replace(state, lists=(*state.lists, event.list_name), updated_at=event.at)
    raise ValueError(f"evolve does not know {type(event).__name__}")


def decide(
    state: ContactState | None,
    command: ContactCommand,
    policy: LockPolicy = LockPolicy(),
    catalogue: Catalogue = DEFAULT_CATALOGUE,
) -> list[ContactEvent]:
    """Events ``command`` produces on ``state`` (None for a new stream); a ContactError when refused."""
    _check_command(command)
    match command:
        case CreateContact():
            return _create(state, command, catalogue)
        case ExpireLock():
            return _expire(state, command)
        case AgeStatus():
            return _age(state, command, catalogue)
    contact = _existing(state, command.contact_id)
    match command:
        case UpdateContact():
            return _update(contact, command, catalogue)
        case ChangeStatus():
            _refuse_if_locked_by_other(contact, command)
            status = catalogue.normalise(command.status)
            _check_transition(contact, status, command.caller, catalogue)
            return _status_change(contact, status, StatusReason.AGENT, command.now)
        case EditNote():
            _refuse_if_locked_by_other(contact, command)
            return _note_change(contact, _clean_note(command.note), command.now)
        case LockContact():
            return _lock(contact, command, policy)
        case ExtendLock():
            return _extend(contact, command, policy)
        case ReleaseLock():
            return _release(contact, command)
        case ForceReleaseLock():
            return _force_release(contact, command)
        case DeleteContact():
            return _delete(contact, command)
        case RecordCallRequested():
            return _call_requested(contact, command)
        case RecordCallStarted():
            return _call_started(contact, command)
        case RecordCallEnded():
            return _call_ended(contact, command)
        case CloseStaleCall():
            return _close_stale_call(contact, command)
        case RecordDisposition():
            return _disposition(contact, command, catalogue)
        case RescheduleCallback():
            return _reschedule(contact, command)
        case CancelCallback():
            return _cancel(contact, command)
        case RemindCallback():
            return _remind(contact, command)
        case ShareStaleCallback():
            return _share_stale(contact, command)
    raise TypeError(f"decide does not handle {type(command).__name__}")


class RowDecision(NamedTuple):
    """What one batch row does: its outcome and the events to append to its contact's stream."""

    outcome: RowOutcome
    events: list[ContactEvent]


def authorise_batch(batch: CreateOrMergeContacts) -> None:
    """Raise Forbidden unless the caller may run the batch (import: TeamLead+, generator and ``overwrite``:
    ProjectManager+)."""
    if batch.source is Source.GENERATOR:
        needed, action = Role.PROJECT_MANAGER, "generar contactos"
    else:
        needed, action = Role.TEAM_LEAD, "importar contactos"
    if not batch.caller.role.at_least(needed):
        raise Forbidden(batch.caller.role.value, action)
    if batch.merge is MergeMode.OVERWRITE and not batch.caller.role.at_least(Role.PROJECT_MANAGER):
        raise Forbidden(batch.caller.role.value, "importar sobrescribiendo contactos")


def decide_import_row(
    state: ContactState | None,
    row: ImportRow,
    batch: CreateOrMergeContacts,
    catalogue: Catalogue = DEFAULT_CATALOGUE,
) -> RowDecision:
    """Create or merge one row into its phone's contact (``state`` None when new); bad rows are rejected."""
    authorise_batch(batch)
    _check_command(batch)
    return _decide_row(state, row, batch, catalogue)


def _decide_row(
    state: ContactState | None, row: ImportRow, batch: CreateOrMergeContacts, catalogue: Catalogue
) -> RowDecision:
    """:func:`decide_import_row` once the batch is authorised and checked."""
    live = state if state is not None and not state.deleted else None
    try:
        clean = _clean_row(row, catalogue)
    except ContactError as error:
        return _rejected(row, live.contact_id if live else "", error.message)
    if live is None:
        contact_id = state.contact_id if state is not None else contact_id_for_phone(clean.e164)
        created = ContactCreated(
            contact_id=contact_id,
            at=batch.now,
            phone=clean.phone or clean.national or clean.e164,
            phone_e164=clean.e164,
            phone_national=clean.national,
            operator=clean.operator,
            name=clean.name,
            status=clean.status or catalogue.default,
            note=clean.note,
            email=clean.email,
            extra=clean.extra,
            list_name=batch.list_name.strip(),
            source=batch.source,
        )
        return RowDecision(
            RowOutcome(row=row.row, e164=clean.e164, outcome=Outcome.INSERTED, contact_id=contact_id),
            [created],
        )
    if live.phone_e164 != clean.e164:
        raise ValueError(f"row {row.row} ({clean.e164}) decided against contact {live.phone_e164}")
    if batch.merge is MergeMode.SKIP:
        return RowDecision(
            RowOutcome(row=row.row, e164=clean.e164, outcome=Outcome.UNCHANGED, contact_id=live.contact_id),
            [],
        )
    try:
        events = _merge(live, clean, row.row, batch, catalogue)
    except ContactError as error:
        return _rejected(row, live.contact_id, error.message)
    outcome = _merge_outcome(events)
    holder = live.lock_holder(batch.now)
    if events and holder is not None and holder != batch.caller.user_id:
        return _left_locked(row, live)
    return RowDecision(
        RowOutcome(row=row.row, e164=clean.e164, outcome=outcome, contact_id=live.contact_id), events
    )


def _merge_outcome(events: list[ContactEvent]) -> Outcome:
    """``unchanged`` without events, ``listed`` when the contact only joins the import's list, else
    ``updated``."""
    if not events:
        return Outcome.UNCHANGED
    if all(isinstance(event, ContactListed) for event in events):
        return Outcome.LISTED
    return Outcome.UPDATED


class BatchDecision(NamedTuple):
    """A whole batch decided: the reply, events per contact id, and each stream's expected version."""

    result: BatchResult
    events: dict[str, list[ContactEvent]]
    expected_versions: dict[str, int]


def decide_batch(
    states: Mapping[str, ContactState],
    batch: CreateOrMergeContacts,
    catalogue: Catalogue = DEFAULT_CATALOGUE,
    dnc: Collection[str] = frozenset(),
) -> BatchDecision:
    """Decide every row against ``states`` (by contact id; absent = new), folding repeated phones in order.

    Rows whose E.164 is in ``dnc`` (the batch's numbers found on the do-not-call list) get the outcome
    ``dnc`` and no events.
    """
    authorise_batch(batch)
    _check_command(batch)
    current: dict[str, ContactState | None] = {}
    events: dict[str, list[ContactEvent]] = {}
    expected: dict[str, int] = {}
    outcomes: list[RowOutcome] = []
    ids = [contact_id_for_phone(row.e164.strip()) for row in batch.rows]
    # Rows still to come per contact: a row's events are folded only when a later row needs the state.
    remaining = Counter(ids)
    for row, contact_id in zip(batch.rows, ids, strict=True):
        remaining[contact_id] -= 1
        if dnc and row.e164.strip() in dnc:
            outcomes.append(_not_callable(row, states.get(contact_id)))
            continue
        if contact_id not in current:
            current[contact_id] = states.get(contact_id)
        state = current[contact_id]
        decision = _decide_row(state, row, batch, catalogue)
        outcomes.append(decision.outcome)
        if decision.events:
            expected.setdefault(contact_id, state.version if state is not None else 0)
            events.setdefault(contact_id, []).extend(decision.events)
            if remaining[contact_id]:
                for event in decision.events:
                    state = evolve(state, event)
                current[contact_id] = state
    return BatchDecision(BatchResult(outcomes=tuple(outcomes), job_id=batch.job_id), events, expected)


DNC_ROW_REASON = "El número está en la lista de no llamar: no se guardó"


def _not_callable(row: ImportRow, state: ContactState | None) -> RowOutcome:
    """The outcome of a row on the do-not-call list: the contact it names (if any) is left alone."""
    contact_id = state.contact_id if state is not None and not state.deleted else ""
    return RowOutcome(
        row=row.row, e164=row.e164.strip(), outcome=Outcome.DNC, contact_id=contact_id, reason=DNC_ROW_REASON
    )


def _check_command(command: ContactCommand | CreateOrMergeContacts) -> None:
    if command.now.tzinfo is None:
        raise InvalidInput("now", "La hora del comando debe incluir zona horaria")
    if isinstance(command, ContactCommand) and not command.contact_id:
        raise InvalidInput("contact_id", "Falta el identificador del contacto")


def _existing(state: ContactState | None, contact_id: str) -> ContactState:
    if state is None or state.deleted:
        raise NotFound(contact_id)
    return state


def _locked(state: ContactState) -> Locked:
    assert state.locked_by is not None
    assert state.locked_until is not None
    return Locked(state.contact_id, state.locked_by, state.locked_by_name, state.locked_until)


def _refuse_if_locked_by_other(state: ContactState, command: ContactCommand) -> None:
    holder = state.lock_holder(command.now)
    if holder is not None and holder != command.caller.user_id:
        raise _locked(state)


def _call_requested(contact: ContactState, command: RecordCallRequested) -> list[ContactEvent]:
    _refuse_if_locked_by_other(contact, command)
    call_id = _required("call_id", command.call_id)
    if call_id in contact.open_calls:
        raise InvalidInput("call_id", "Esa llamada ya fue solicitada")
    caller = command.caller
    requested = CallRequested(
        contact_id=contact.contact_id,
        at=command.now,
        call_id=call_id,
        user_id=caller.user_id,
        username=caller.username,
        desk=command.desk,
    )
    return [requested]


def _open_call(contact: ContactState, command: RecordCallStarted | RecordCallEnded) -> OpenCall:
    """The call a desk reports on, when it was issued to the caller's desk of that name and is still open."""
    call = contact.open_calls.get(command.call_id)
    if call is None or call.user_id != command.caller.user_id or call.desk != command.desk:
        raise CallNotOpen(contact.contact_id, command.call_id)
    return call


def _call_started(contact: ContactState, command: RecordCallStarted) -> list[ContactEvent]:
    call = _open_call(contact, command)
    if call.started_at is not None:
        return []
    started = CallStarted(
        contact_id=contact.contact_id,
        at=command.now,
        call_id=command.call_id,
        user_id=call.user_id,
        username=call.username,
    )
    return [started]


def _call_ended(contact: ContactState, command: RecordCallEnded) -> list[ContactEvent]:
    """The end as the desk reports it, its seconds kept within what the server's clock saw."""
    if command.duration_seconds < 0 or command.ring_seconds < 0:
        raise InvalidInput("duration_seconds", "La duración de la llamada no puede ser negativa")
    call = _open_call(contact, command)
    since_request = _whole_seconds(command.now - call.requested_at)
    in_call = _whole_seconds(command.now - call.started_at) if call.started_at is not None else 0
    talk = min(command.duration_seconds, in_call)
    ended = CallEnded(
        contact_id=contact.contact_id,
        at=command.now,
        call_id=command.call_id,
        user_id=call.user_id,
        username=call.username,
        outcome=command.outcome,
        duration_seconds=talk,
        ring_seconds=min(command.ring_seconds, since_request - talk),
        reason=command.reason.strip()[:200],
    )
    return [ended]


def _close_stale_call(contact: ContactState, command: CloseStaleCall) -> list[ContactEvent]:
    call = contact.open_calls.get(command.call_id)
    if call is None:
        return []
    closed = CallEnded(
        contact_id=contact.contact_id,
        at=command.now,
        call_id=command.call_id,
        user_id=call.user_id,
        username=call.username,
        outcome=CallOutcome.FAILED,
        reason=_required("reason", command.reason)[:200],
    )
    return [closed]


def _disposition(
    contact: ContactState, command: RecordDisposition, catalogue: Catalogue
) -> list[ContactEvent]:
    """The wrap-up: its record, the status and the note it changes, and the caller's lock released.

    The status follows the state machine (:func:`_check_transition`); one that ``requires_callback``
    needs ``callback_at``. A callback set here gets the id ``<contact id>.<stream version of this
    wrap-up>``, stable through its reschedules until it is taken, replaced or cancelled.
    """
    _refuse_if_locked_by_other(contact, command)
    outcome = _required("outcome", command.outcome).lower()
    if not _OUTCOME.match(outcome):
        raise InvalidInput("outcome", f"Resultado no válido: «{command.outcome}» (letras, cifras y _)")
    status = catalogue.normalise(command.status) if command.status and command.status.strip() else None
    caller = command.caller
    if status is not None:
        _check_transition(contact, status, caller, catalogue)
    note = _clean_note(command.note)
    callback_at = command.callback_at
    if callback_at is not None:
        _check_due(callback_at, command.now)
    elif status is not None and catalogue.get(status).requires_callback:
        raise CallbackRequired(status)
    events: list[ContactEvent] = [
        DispositionRecorded(
            contact_id=contact.contact_id,
            at=command.now,
            user_id=caller.user_id,
            username=caller.username,
            outcome=outcome,
            note=note,
            callback_at=callback_at,
            callback_scope=command.callback_scope,
            callback_id=_callback_id(contact.contact_id, contact.version + 1) if callback_at else "",
            team=caller.team if callback_at else "",
        )
    ]
    if status is not None:
        events.extend(_status_change(contact, status, StatusReason.AGENT, command.now))
    if note:
        appended = f"{contact.note}\n{note}" if contact.note else note
        events.extend(_note_change(contact, _clean_note(appended), command.now))
    if not command.keep_lock and contact.lock_holder(command.now) == caller.user_id:
        events.append(LockReleased(contact_id=contact.contact_id, at=command.now, released_by=caller.user_id))
    return events


def _check_transition(state: ContactState, status: str, caller: Caller, catalogue: Catalogue) -> None:
    """Raise TransitionRefused unless the caller's role may move the contact to ``status``."""
    needed = catalogue.required_role(state.status, status)
    if not caller.role.at_least(needed):
        raise TransitionRefused(state.contact_id, state.status, status, caller.role.value, needed.value)


def _check_due(due_at: datetime, now: datetime) -> None:
    if due_at.tzinfo is None:
        raise InvalidInput("callback_at", "La hora de la rellamada debe incluir zona horaria")
    if due_at <= now:
        raise InvalidInput("callback_at", "La rellamada debe quedar en el futuro")


def _callback_id(contact_id: str, stream_version: int) -> str:
    """The stable id of a callback: its contact and the stream version of the wrap-up that set it."""
    return f"{contact_id}.{stream_version}"


def _callback_set(state: ContactState, event: DispositionRecorded) -> PendingCallback | None:
    """The callback a wrap-up leaves pending (None: a wrap-up without one clears it); ``state`` has the
    version of ``event`` already, which names callbacks stored before they carried their id."""
    if event.callback_at is None:
        return None
    return PendingCallback(
        callback_id=event.callback_id or _callback_id(state.contact_id, state.version),
        user_id=event.user_id,
        username=event.username,
        team=event.team,
        scope=event.callback_scope,
        due_at=event.callback_at,
    )


def _pending(contact: ContactState, callback_id: str) -> PendingCallback:
    callback = contact.callback
    if callback is None or callback.callback_id != callback_id:
        raise CallbackNotFound(callback_id)
    return callback


def _may_manage(callback: PendingCallback, caller: Caller) -> bool:
    """Agents manage their own callbacks, TeamLeads also their team's, ProjectManager and TI every one."""
    if callback.user_id == caller.user_id or caller.role.at_least(Role.PROJECT_MANAGER):
        return True
    return caller.role.at_least(Role.TEAM_LEAD) and bool(caller.team) and callback.team == caller.team


def _reschedule(contact: ContactState, command: RescheduleCallback) -> list[ContactEvent]:
    callback = _pending(contact, command.callback_id)
    caller = command.caller
    if not _may_manage(callback, caller):
        raise Forbidden(caller.role.value, "cambiar la rellamada de otro agente")
    due_at = callback.due_at
    if command.due_at is not None:
        _check_due(command.due_at, command.now)
        due_at = command.due_at
    user_id, username, team = callback.user_id, callback.username, callback.team
    if command.assignee_id is not None and command.assignee_id != callback.user_id:
        if not caller.role.at_least(Role.TEAM_LEAD):
            raise Forbidden(caller.role.value, "reasignar rellamadas")
        if not caller.role.at_least(Role.PROJECT_MANAGER) and command.assignee_team != caller.team:
            raise Forbidden(caller.role.value, "reasignar una rellamada fuera de su equipo")
        user_id = _required("assignee_id", command.assignee_id)
        username, team = command.assignee_name.strip(), command.assignee_team.strip()
    scope = command.scope or callback.scope
    if (due_at, scope, user_id) == (callback.due_at, callback.scope, callback.user_id):
        return []
    moved = CallbackRescheduled(
        contact_id=contact.contact_id,
        at=command.now,
        callback_id=callback.callback_id,
        due_at=due_at,
        scope=scope,
        user_id=user_id,
        username=username,
        team=team,
    )
    return [moved]


def _cancel(contact: ContactState, command: CancelCallback) -> list[ContactEvent]:
    callback = _pending(contact, command.callback_id)
    if not _may_manage(callback, command.caller):
        raise Forbidden(command.caller.role.value, "cancelar la rellamada de otro agente")
    reason = command.reason.strip()
    if len(reason) > 500:
        raise InvalidInput("reason", "El motivo no puede superar 500 caracteres")
    return [
        CallbackCancelled(
            contact_id=contact.contact_id, at=command.now, callback_id=callback.callback_id, reason=reason
        )
    ]


def _remind(contact: ContactState, command: RemindCallback) -> list[ContactEvent]:
    callback = contact.callback
    if callback is None or callback.callback_id != command.callback_id or callback.reminded:
        return []
    if command.now < callback.due_at - timedelta(minutes=command.before_minutes):
        return []
    reminded = CallbackReminded(
        contact_id=contact.contact_id,
        at=command.now,
        callback_id=callback.callback_id,
        user_id=callback.user_id,
        scope=callback.scope,
        due_at=callback.due_at,
        contact_name=contact.name,
        phone=contact.phone_e164,
        teams=command.teams if callback.scope is CallbackScope.SHARED else None,
    )
    return [reminded]


SHARED_REASON = "Rellamada compartida: el agente no la atendió"


def _share_stale(contact: ContactState, command: ShareStaleCallback) -> list[ContactEvent]:
    callback = contact.callback
    if callback is None or callback.callback_id != command.callback_id:
        return []
    if callback.scope is CallbackScope.SHARED:
        return []
    if command.now < callback.due_at + timedelta(minutes=command.grace_minutes):
        return []
    shared = CallbackShared(
        contact_id=contact.contact_id,
        at=command.now,
        callback_id=callback.callback_id,
        user_id=callback.user_id,
        reason=SHARED_REASON,
    )
    return [shared]


def _whole_seconds(span: timedelta) -> int:
    """Whole seconds of ``span``, never below zero."""
    return max(int(span.total_seconds()), 0)


def _unlocked(state: ContactState) -> ContactState:
    return replace(state, locked_by=None, locked_by_name="", locked_until=None)


def _create(state: ContactState | None, command: CreateContact, catalogue: Catalogue) -> list[ContactEvent]:
    if state is not None and not state.deleted:
        raise AlreadyExists(state.contact_id, state.phone_e164)
    e164 = _valid_e164(command.phone_e164)
    status = catalogue.normalise(command.status) if command.status and command.status.strip() else None
    return [
        ContactCreated(
            contact_id=command.contact_id,
            at=command.now,
            phone=command.phone.strip() or e164,
            phone_e164=e164,
            phone_national=command.phone_national.strip(),
            operator=command.operator or None,
            name=_clean_name(command.name),
            status=status or catalogue.default,
            note=_clean_note(command.note),
            email=_clean_email(command.email),
            extra={key: value for key, value in _clean_extra(command.extra).items() if value},
            list_name=command.list_name.strip(),
            source=Source.API,
        )
    ]


def _update(state: ContactState, command: UpdateContact, catalogue: Catalogue) -> list[ContactEvent]:
    _refuse_if_locked_by_other(state, command)
    changes: list[FieldChange] = []
    if command.name is not None:
        changes.extend(_change("name", state.name, _clean_name(command.name)))
    if command.email is not None:
        changes.extend(_change("email", state.email, _clean_email(command.email)))
    if command.extra is not None:
        for key, value in _clean_extra(command.extra).items():
            changes.extend(_change(_EXTRA_PREFIX + key, state.extra.get(key), value or None))
    status = catalogue.normalise(command.status) if command.status and command.status.strip() else None
    if status is not None:
        _check_transition(state, status, command.caller, catalogue)
    note = _clean_note(command.note) if command.note is not None else None
    events: list[ContactEvent] = []
    if changes:
        events.append(ContactUpdated(contact_id=state.contact_id, at=command.now, changes=tuple(changes)))
    if status is not None:
        events.extend(_status_change(state, status, StatusReason.AGENT, command.now))
    if note is not None:
        events.extend(_note_change(state, note, command.now))
    return events


def _change(name: str, old: str | None, new: str | None) -> list[FieldChange]:
    return [] if old == new else [FieldChange(name, old, new)]


def _status_change(
    state: ContactState, status: str, reason: StatusReason, now: datetime
) -> list[ContactEvent]:
    if status == state.status:
        return []
    return [StatusChanged(contact_id=state.contact_id, at=now, old=state.status, new=status, reason=reason)]


def _note_change(state: ContactState, note: str, now: datetime) -> list[ContactEvent]:
    if note == state.note:
        return []
    return [NoteEdited(contact_id=state.contact_id, at=now, old=state.note, new=note)]


def _lock(state: ContactState, command: LockContact, policy: LockPolicy) -> list[ContactEvent]:
    minutes = policy.duration(command.duration_minutes)
    holder = state.lock_holder(command.now)
    if holder == command.caller.user_id:
        return _renewed(state, command, minutes)
    if holder is not None:
        raise _locked(state)
    events: list[ContactEvent] = []
    if state.locked_by is not None and state.locked_until is not None:
        events.append(
            LockExpired(
                contact_id=state.contact_id,
                at=command.now,
                locked_by=state.locked_by,
                locked_until=state.locked_until,
            )
        )
    events.append(
        ContactLocked(
            contact_id=state.contact_id,
            at=command.now,
            locked_by=command.caller.user_id,
            locked_by_name=command.caller.username,
            locked_until=command.now + timedelta(minutes=minutes),
            duration_minutes=minutes,
        )
    )
    return events


def _extend(state: ContactState, command: ExtendLock, policy: LockPolicy) -> list[ContactEvent]:
    minutes = policy.duration(command.duration_minutes)
    holder = state.lock_holder(command.now)
    if holder is None:
        raise NotLocked(state.contact_id)
    if holder != command.caller.user_id:
        raise NotLockOwner(state.contact_id, holder, state.locked_by_name)
    return _renewed(state, command, minutes)


def _renewed(state: ContactState, command: ContactCommand, minutes: int) -> list[ContactEvent]:
    until = command.now + timedelta(minutes=minutes)
    if state.locked_until is not None and until <= state.locked_until:
        return []
    return [
        LockExtended(
            contact_id=state.contact_id,
            at=command.now,
            locked_by=command.caller.user_id,
            locked_until=until,
            duration_minutes=minutes,
        )
    ]


def _release(state: ContactState, command: ReleaseLock) -> list[ContactEvent]:
    caller = command.caller
    holder = state.lock_holder(command.now)
    if holder is None:
        if state.locked_by == caller.user_id:
            return [LockReleased(contact_id=state.contact_id, at=command.now, released_by=caller.user_id)]
        return []
    if holder == caller.user_id:
        return [LockReleased(contact_id=state.contact_id, at=command.now, released_by=caller.user_id)]
    if caller.role.at_least(Role.TEAM_LEAD):
        return [_force_released(state, holder, caller, command.now)]
    raise NotLockOwner(state.contact_id, holder, state.locked_by_name)


def _force_release(state: ContactState, command: ForceReleaseLock) -> list[ContactEvent]:
    caller = command.caller
    if not caller.role.at_least(Role.TEAM_LEAD):
        raise Forbidden(caller.role.value, "forzar la liberación de un bloqueo")
    holder = state.lock_holder(command.now)
    if holder is None:
        return []
    if holder == caller.user_id:
        return [LockReleased(contact_id=state.contact_id, at=command.now, released_by=caller.user_id)]
    return [_force_released(state, holder, caller, command.now)]


def _force_released(state: ContactState, holder: str, caller: Caller, now: datetime) -> LockForceReleased:
    return LockForceReleased(
        contact_id=state.contact_id,
        at=now,
        locked_by=holder,
        locked_by_name=state.locked_by_name,
        released_by=caller.user_id,
        released_by_name=caller.username,
    )


def _expire(state: ContactState | None, command: ExpireLock) -> list[ContactEvent]:
    if state is None or state.deleted or state.locked_by is None or state.locked_until is None:
        return []
    if command.now < state.locked_until:
        return []
    return [
        LockExpired(
            contact_id=state.contact_id,
            at=command.now,
            locked_by=state.locked_by,
            locked_until=state.locked_until,
        )
    ]


def _delete(state: ContactState, command: DeleteContact) -> list[ContactEvent]:
    if not command.caller.role.at_least(Role.PROJECT_MANAGER):
        raise Forbidden(command.caller.role.value, "eliminar contactos")
    _refuse_if_locked_by_other(state, command)
    return [ContactDeleted(contact_id=state.contact_id, at=command.now, reason=command.reason.strip())]


def _age(state: ContactState | None, command: AgeStatus, catalogue: Catalogue) -> list[ContactEvent]:
    if state is None or state.deleted or state.is_locked(command.now):
        return []
    target = catalogue.aged_status(state.status, state.ageing_since, command.now)
    if target is None:
        return []
    return _status_change(state, target, StatusReason.AGEING, command.now)


class _CleanRow(NamedTuple):
    """A row's fields as the domain accepts them (a tuple: built for every imported row)."""

    e164: str
    national: str
    phone: str
    name: str
    note: str
    status: str
    email: str
    extra: dict[str, str]
    operator: str | None


def _clean_row(row: ImportRow, catalogue: Catalogue) -> _CleanRow:
    status = catalogue.normalise(row.status) if row.status.strip() else ""
    return _CleanRow(
        e164=_valid_e164(row.e164),
        national=row.national.strip(),
        phone=row.phone.strip(),
        name=_clean_name(row.name),
        note=_clean_note(row.note),
        status=status,
        email=_clean_email(row.email),
        extra={key: value for key, value in _clean_extra(row.extra).items() if value},
        operator=row.operator or None,
    )


def _merge(
    state: ContactState, row: _CleanRow, row_number: int, batch: CreateOrMergeContacts, catalogue: Catalogue
) -> list[ContactEvent]:
    overwrite = batch.merge is MergeMode.OVERWRITE
    changes: list[FieldChange] = []
    for name, incoming, current in (
        ("name", row.name, state.name),
        ("email", row.email, state.email),
        ("operator", row.operator, state.operator),
    ):
        if incoming and (overwrite or not current):
            changes.extend(_change(name, current, incoming))
    changes.extend(_change("note", state.note, _appended_note(state.note, row.note, batch.now)))
    for key, value in row.extra.items():
        current_value = state.extra.get(key)
        if overwrite or not current_value:
            changes.extend(_change(_EXTRA_PREFIX + key, current_value, value))
    events: list[ContactEvent] = []
    if changes:
        events.append(
            ContactMerged(
                contact_id=state.contact_id,
                at=batch.now,
                changes=tuple(changes),
                list_name=batch.list_name.strip(),
                source=batch.source,
                row=row_number,
            )
        )
    if (
        row.status
        and row.status != catalogue.default
        and (overwrite or state.status == catalogue.default)
        and catalogue.allows(state.status, row.status, batch.caller.role)
    ):
        events.extend(_status_change(state, row.status, StatusReason.IMPORT, batch.now))
    # An import puts the contact in its list too (the first list stays); the generator only skips
    # numbers that exist.
    listed = batch.list_name.strip() if batch.source is Source.IMPORT else ""
    if listed and listed != state.list_name and listed not in state.lists:
        events.append(
            ContactListed(
                contact_id=state.contact_id,
                at=batch.now,
                list_name=listed,
                source=batch.source,
                row=row_number,
            )
        )
    return events


def _appended_note(current: str, incoming: str, now: datetime) -> str:
    """``current`` with ``incoming`` added as a line dated ``[YYYY-MM-DD]`` (Costa Rica); unchanged when
    there is nothing to add or the note holds it already (a re-import)."""
    if not incoming or incoming in current:
        return current
    if not current:
        return incoming
    note = f"{current}\n[{now.astimezone(_COSTA_RICA):%Y-%m-%d}] {incoming}"
    if len(note) > NOTE_MAX:
        raise InvalidInput("note", f"Con la nota de la fila, la nota superaría {NOTE_MAX} caracteres")
    return note


def _left_locked(row: ImportRow, state: ContactState) -> RowDecision:
    """The row would change a contact someone else holds: left alone, and the row says who holds it."""
    holder = state.locked_by_name or state.locked_by or "otra persona"
    until = f" hasta las {state.locked_until.astimezone(_COSTA_RICA):%H:%M}" if state.locked_until else ""
    reason = f"Contacto bloqueado por {holder}{until}: no se modificó; vuelva a importar cuando se libere"
    outcome = RowOutcome(
        row=row.row, e164=state.phone_e164, outcome=Outcome.LOCKED, contact_id=state.contact_id, reason=reason
    )
    return RowDecision(outcome, [])


def _rejected(row: ImportRow, contact_id: str, reason: str) -> RowDecision:
    outcome = RowOutcome(
        row=row.row, e164=row.e164, outcome=Outcome.REJECTED, contact_id=contact_id, reason=reason
    )
    return RowDecision(outcome, [])


def _with_changes(state: ContactState, changes: tuple[FieldChange, ...]) -> ContactState:
    plain: dict[str, Any] = {}
    extra = dict(state.extra)
    for change in changes:
        if change.field.startswith(_EXTRA_PREFIX):
            key = change.field[len(_EXTRA_PREFIX) :]
            if change.new is None:
                extra.pop(key, None)
            else:
                extra[key] = change.new
        elif change.field == "operator":
            plain["operator"] = change.new or None
        elif change.field in _PLAIN_FIELDS:
            plain[change.field] = change.new or ""
    return replace(state, extra=extra, **plain)


def _required(name: str, value: str) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise InvalidInput(name, f"Falta el campo {name}")
    return cleaned


def _valid_e164(value: str) -> str:
    cleaned = value.strip()
    if not _E164.match(cleaned):
        raise InvalidInput("phone", f"Teléfono no válido: «{value}» (se esperaba E.164, p. ej. +50688123456)")
    return cleaned


def _clean_name(value: str) -> str:
    cleaned = " ".join(value.split())
    if len(cleaned) > NAME_MAX:
        raise InvalidInput("name", f"El nombre no puede superar {NAME_MAX} caracteres")
    return cleaned


def _clean_email(value: str) -> str:
    cleaned = value.strip()
    if cleaned and (len(cleaned) > EMAIL_MAX or not _EMAIL.match(cleaned)):
        raise InvalidInput("email", f"Correo electrónico no válido: «{cleaned}»")
    return cleaned


def _clean_note(value: str) -> str:
    cleaned = value.strip()
    if len(cleaned) > NOTE_MAX:
        raise InvalidInput("note", f"La nota no puede superar {NOTE_MAX} caracteres")
    return cleaned


def _clean_extra(values: Mapping[str, str]) -> dict[str, str]:
    if len(values) > EXTRA_FIELDS_MAX:
        raise InvalidInput("extra", f"Como máximo {EXTRA_FIELDS_MAX} campos adicionales")
    cleaned: dict[str, str] = {}
    for raw_key, raw_value in values.items():
        key = " ".join(str(raw_key).split())
        if not key or len(key) > EXTRA_KEY_MAX:
            raise InvalidInput("extra", f"Nombre de campo adicional no válido: «{raw_key}»")
        value = str(raw_value).strip()
        if len(value) > EXTRA_VALUE_MAX:
            raise InvalidInput("extra", f"El campo «{key}» no puede superar {EXTRA_VALUE_MAX} caracteres")
        cleaned[key] = value
    return cleaned


__all__ = [
    "CONTACTS_NAMESPACE",
    "DNC_ROW_REASON",
    "SHARED_REASON",
    "BatchDecision",
    "ContactState",
    "LockPolicy",
    "PendingCallback",
    "RowDecision",
    "authorise_batch",
    "contact_id_for_phone",
    "decide",
    "decide_batch",
    "decide_import_row",
    "evolve",
]
