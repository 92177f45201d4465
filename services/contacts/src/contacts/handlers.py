"""Command handlers of the contacts service: load → decide → append with the expected version → project.

One transaction per command: the stream is read and folded, :func:`contacts.domain.decide` gives the
events, the event store appends them after the version that was read, and the read model (the calls
table too, :mod:`contacts.calls`) is updated on the same connection before the commit.

Concurrency: a :class:`~kernel.store.ConcurrencyError` means another writer appended to the stream
after it was read. The event store holds its append lock from then on, so the handler reads the stream
again in the same transaction and decides again; the second decision sees every committed event, so
one of a hundred simultaneous lock attempts wins and the others get :class:`~contacts.errors.Locked`.
An ``expected_version`` given by the caller (HTTP ``If-Match``) is checked against the stream, and a
mismatch is :class:`~contacts.errors.VersionMismatch`, never retried.

Batches (import, generator, scheduler) take their states from the read model, which is exact because
it is written in the append's transaction, and append thousands of events with one ``append_many``.
A stream missing from the read model is taken as new; if it exists (a deleted contact) or another
writer got in first, the batch is decided again under the append lock from the read model plus the
event streams of the contacts it does not hold. The import and generator batches (chunks, the writing
pipeline, bulk upkeep and tuning) are :mod:`contacts.bulk`'s; the service hands them over.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.engine import Connection, Engine

from contacts.bulk import BulkTuning, BulkWriter, exact_states
from contacts.callbacks import apply_callback_events, pending_of
from contacts.calls import apply_call_events
from contacts.campaigns import Campaign, teams_working
from contacts.commands import (
    SYSTEM_CALLER,
    AgeStatus,
    BatchResult,
    Caller,
    ChangeStatus,
    CloseStaleCall,
    ContactCommand,
    CreateContact,
    CreateOrMergeContacts,
    ExpireLock,
    ImportRow,
    MergeMode,
    RecordCallEnded,
    RecordCallRequested,
    RecordCallStarted,
    RemindCallback,
    ShareStaleCallback,
    Source,
    UpdateContact,
)
from contacts.dialect import ReadModelDialect, read_model_dialect
from contacts.dnc import list_number
from contacts.domain import (
    ContactState,
    LockPolicy,
    contact_id_for_phone,
    decide,
    evolve,
)
from contacts.envelopes import envelope_of, event_data
from contacts.errors import Conflict, ContactError, InvalidInput, NotFound, VersionMismatch
from contacts.events import ContactEvent, StatusChanged, decode_event
from contacts.projection import ContactProjection, utc
from contacts.statuses import DEFAULT_CATALOGUE, Catalogue
from contacts.views import Contact
from kernel.envelope import Actor, Envelope
from kernel.phone import InvalidPhone, Phone, parse_phone
from kernel.store import ConcurrencyError, EventStore, StreamAppend

Clock = Callable[[], datetime]

_EDITS = (UpdateContact, ChangeStatus)
"""Commands that edit a contact's fields (a ``dnc`` status set by one lists the number)."""
_DESK_COMMANDS = (RecordCallRequested, RecordCallStarted, RecordCallEnded)
"""Commands that name the desk they come from (it goes into the events' actor)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one command did: the contact after it (None once deleted) and the events stored."""

    contact: Contact | None
    events: tuple[Envelope, ...]


def contact_of_state(state: ContactState, now: datetime) -> Contact:
    """The user-facing view of a contact state at ``now`` (a lapsed lock shows as free)."""
    held = state.lock_holder(now) is not None
    return Contact(
        id=state.contact_id,
        phone=state.phone,
        phone_e164=state.phone_e164,
        phone_national=state.phone_national,
        name=state.name,
        status=state.status,
        note=state.note,
        email=state.email,
        extra=dict(state.extra),
        list_name=state.list_name,
        operator=state.operator,
        locked_by=state.locked_by if held else None,
        locked_by_name=(state.locked_by_name or None) if held else None,
        locked_until=utc(state.locked_until) if held else None,
        last_contacted_at=utc(state.last_contacted_at),
        created_at=state.created_at.astimezone(UTC),
        updated_at=state.updated_at.astimezone(UTC),
        version=state.version,
    )


class ContactsService:
    """Runs every contacts command: one contact's through :meth:`handle`, batches and the scheduler's sweeps
    through methods of their own; the clock gives each command its ``now``."""

    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        policy: LockPolicy,
        catalogue: Catalogue = DEFAULT_CATALOGUE,
        clock: Clock = lambda: datetime.now(UTC),
        *,
        projection: ContactProjection | None = None,
        retries: int = 5,
        batch_size: int | None = None,
        dialect: ReadModelDialect | None = None,
        tuning: BulkTuning = nullcontext,
    ) -> None:
        # dialect: the read model's, chosen by the composition root (else the one beside the store's).
        # tuning: process-wide switches a pipelined bulk write runs under, the composition root's to give
        # (system.tuning.BulkTuning: collector paused, quick GIL hand-offs); none by default.
        self._engine = engine
        self._store = store
        self._policy = policy
        self._catalogue = catalogue
        self._clock = clock
        self._dialect = dialect or read_model_dialect(store.dialect)
        self._projection = projection or ContactProjection(catalogue, self._dialect)
        self._retries = retries
        self._dialect.attach(engine)
        self._bulk = BulkWriter(
            engine,
            store,
            self._projection,
            catalogue,
            clock,
            tuning=tuning,
            retries=retries,
            batch_size=batch_size or self._dialect.batch_size,
            dialect=self._dialect,
        )

    @property
    def policy(self) -> LockPolicy:
        """The lock durations in force."""
        return self._policy

    def set_policy(self, policy: LockPolicy) -> None:
        """Use ``policy`` for lock durations from now on (TI changed them at run time)."""
        self._policy = policy

    def now(self) -> datetime:
        """The service clock's current time."""
        return self._clock()

    # Commands on one contact -----------------------------------------------------------------------

    def handle(self, command: ContactCommand, expected_version: int | None = None) -> Contact | None:
        """Run one command stamped with this service's clock (the same on either transport): the contact
        after it, None when it is gone; domain errors propagate."""
        stamped = _parsed(replace(command, now=self._clock()))
        desk = stamped.desk if isinstance(stamped, _DESK_COMMANDS) else ""
        return self.execute(stamped, expected_version, desk).contact

    def close_stale_calls(self, calls: Sequence[tuple[str, str]], reason: str) -> int:
        """Close the given open calls (contact id, call id) as failed with ``reason``; returns how many."""
        closed = 0
        for contact_id, call_id in calls:
            command = CloseStaleCall(
                caller=SYSTEM_CALLER, now=self._clock(), contact_id=contact_id, call_id=call_id, reason=reason
            )
            try:
                closed += bool(self.execute(command).events)
            except NotFound:
                continue
        return closed

    def remind_callbacks(
        self,
        callbacks: Sequence[tuple[str, str]],
        before_minutes: int,
        now: datetime | None = None,
        campaigns: Sequence[Campaign] = (),
    ) -> int:
        """Record, in one transaction, the reminder of each ``(contact id, callback id)`` due within
        ``before_minutes`` and not reminded yet (``CallbackReminded``, which the gateway relays live: a
        shared one to the teams working the contact's ``campaigns``, every team without them); returns
        how many."""
        moment = now or self._clock()

        def remind(state: ContactState, callback_id: str) -> RemindCallback:
            teams = teams_working(campaigns, (state.list_name, *state.lists)) if campaigns else None
            return RemindCallback(
                caller=SYSTEM_CALLER,
                now=moment,
                contact_id=state.contact_id,
                callback_id=callback_id,
                before_minutes=before_minutes,
                teams=teams,
            )

        return self._sweep_callbacks(callbacks, remind)

    def share_stale_callbacks(
        self, callbacks: Sequence[tuple[str, str]], grace_minutes: int, now: datetime | None = None
    ) -> int:
        """Make shared, in one transaction, each personal ``(contact id, callback id)`` still pending
        ``grace_minutes`` after its due time (``CallbackShared``); returns how many."""
        moment = now or self._clock()

        def share(state: ContactState, callback_id: str) -> ShareStaleCallback:
            return ShareStaleCallback(
                caller=SYSTEM_CALLER,
                now=moment,
                contact_id=state.contact_id,
                callback_id=callback_id,
                grace_minutes=grace_minutes,
            )

        return self._sweep_callbacks(callbacks, share)

    def expire_lock(self, contact_id: str, now: datetime | None = None) -> bool:
        """Mark a lapsed lock expired (scheduler); False when there was nothing to expire."""
        command = ExpireLock(caller=SYSTEM_CALLER, now=now or self._clock(), contact_id=contact_id)
        return bool(self.execute(command).events)

    def age(self, contact_id: str, now: datetime | None = None) -> bool:
        """Apply the ageing thresholds to one contact (scheduler); False when its status stays."""
        command = AgeStatus(caller=SYSTEM_CALLER, now=now or self._clock(), contact_id=contact_id)
        return bool(self.execute(command).events)

    def execute(
        self, command: ContactCommand, expected_version: int | None = None, desk: str = ""
    ) -> Outcome:
        """Run one command in one transaction, retrying on concurrent appends; domain errors propagate."""
        with self._store.transaction() as conn:
            return self.execute_on(conn, command, expected_version, desk)

    def execute_on(
        self, conn: Connection, command: ContactCommand, expected_version: int | None = None, desk: str = ""
    ) -> Outcome:
        """:meth:`execute` inside the caller's write transaction (``EventStore.transaction``): the work
        queue picks a contact and locks it in one transaction."""
        contact_id = command.contact_id
        for _ in range(self._retries):
            state = self._load(conn, contact_id)
            if expected_version is not None:
                _check_version(state, contact_id, expected_version)
            new_events = decide(state, command, self._policy, self._catalogue)
            if not new_events:
                return Outcome(self._view(state, command.now), ())
            envelopes = _envelopes(new_events, command.caller, desk)
            try:
                stored = self._store.append(conn, contact_id, _version(state), envelopes)
            except ConcurrencyError:
                continue
            changes = [(e, s.stream_version) for e, s in zip(new_events, stored, strict=True)]
            self._projection.apply_events(conn, changes, {contact_id: state})
            apply_call_events(conn, new_events, self._store.dialect)
            apply_callback_events(conn, changes)
            after = state
            for event in new_events:
                after = evolve(after, event)
            self._list_if_do_not_call(conn, command, after, new_events)
            return Outcome(self._view(after, command.now), tuple(stored))
        raise Conflict(contact_id)

    def execute_many_on(
        self, conn: Connection, commands: Sequence[ContactCommand]
    ) -> list[Outcome | ContactError]:
        """:meth:`execute_on` for commands on distinct contacts, with one read of their states and one
        append for all (the work queue's batch of claims): each command's outcome, or the domain error
        it alone met (nothing of it written). Other errors spoil the caller's transaction."""
        ids = [command.contact_id for command in commands]
        if len(set(ids)) != len(ids):
            raise ValueError("execute_many_on takes one command per contact")
        # The read model is what the streams fold to once the append lock is held; should a stream have
        # moved before it is taken, the append refuses the batch and the exact states are read under it.
        states: Mapping[str, ContactState | None] = self._projection.load_states(conn, ids)
        for _ in range(self._retries):
            answers: list[Outcome | ContactError | None] = []
            appends: list[StreamAppend] = []
            decided: list[tuple[int, ContactState | None, list[ContactEvent]]] = []
            for index, command in enumerate(commands):
                state = states.get(command.contact_id)
                try:
                    new_events = decide(state, command, self._policy, self._catalogue)
                except ContactError as error:
                    answers.append(error)
                    continue
                answers.append(None)
                if not new_events:
                    answers[index] = Outcome(self._view(state, command.now), ())
                    continue
                envelopes = _envelopes(new_events, command.caller)
                appends.append(StreamAppend(command.contact_id, _version(state), envelopes))
                decided.append((index, state, new_events))
            try:
                stored = self._store.append_many(conn, appends)
            except ConcurrencyError:
                states = exact_states(conn, self._projection, self._dialect, ids)
                continue
            changes: list[tuple[ContactEvent, int]] = []
            offset = 0
            for index, state, new_events in decided:
                mine = stored[offset : offset + len(new_events)]
                offset += len(new_events)
                changes.extend((e, s.stream_version) for e, s in zip(new_events, mine, strict=True))
                after = state
                for event in new_events:
                    after = evolve(after, event)
                answers[index] = Outcome(self._view(after, commands[index].now), tuple(mine))
            before = {append.stream_id: states.get(append.stream_id) for append in appends}
            self._projection.apply_events(conn, changes, before)
            every = [event for _, _, new_events in decided for event in new_events]
            apply_call_events(conn, every, self._store.dialect)
            apply_callback_events(conn, changes)
            done = [answer for answer in answers if answer is not None]
            assert len(done) == len(commands)
            return done
        raise Conflict()

    # Batches (contacts.bulk) -------------------------------------------------------------------------

    def create_or_merge(
        self,
        rows: Sequence[ImportRow],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
        merge: MergeMode = MergeMode.FILL,
        dry_run: bool = False,
    ) -> BatchResult:
        """Create or merge every row (import, generator), thousands per transaction; one outcome per row
        (:meth:`contacts.bulk.BulkWriter.create_or_merge`)."""
        return self._bulk.create_or_merge(
            rows, list_name, caller, source=source, job_id=job_id, merge=merge, dry_run=dry_run
        )

    def create_or_merge_stream(
        self,
        batches: Iterable[Sequence[ImportRow]],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
        merge: MergeMode = MergeMode.FILL,
        dry_run: bool = False,
    ) -> Generator[BatchResult]:
        """Create or merge the rows of each of ``batches``; one result per batch, in order, once written
        (:meth:`contacts.bulk.BulkWriter.create_or_merge_stream`)."""
        return self._bulk.create_or_merge_stream(
            batches, list_name, caller, source=source, job_id=job_id, merge=merge, dry_run=dry_run
        )

    def handle_batch(self, command: CreateOrMergeContacts) -> BatchResult:
        """Decide and write one batch command in one transaction (no chunking)."""
        return self._bulk.handle_batch(command)

    def expire_locks(self, contact_ids: Sequence[str], now: datetime | None = None) -> int:
        """Expire the lapsed locks among ``contact_ids`` in one transaction; returns how many expired."""
        moment = now or self._clock()
        commands = [ExpireLock(caller=SYSTEM_CALLER, now=moment, contact_id=cid) for cid in contact_ids]
        return self._run_many(commands)

    def age_contacts(self, contact_ids: Sequence[str], now: datetime | None = None) -> int:
        """Age the given contacts in one transaction; returns how many changed status."""
        moment = now or self._clock()
        commands = [AgeStatus(caller=SYSTEM_CALLER, now=moment, contact_id=cid) for cid in contact_ids]
        return self._run_many(commands)

    def _run_many(self, commands: Sequence[ExpireLock | AgeStatus]) -> int:
        if not commands:
            return 0
        ids = list(dict.fromkeys(c.contact_id for c in commands))
        with self._store.transaction() as conn:
            states: Mapping[str, ContactState] = self._projection.load_states(conn, ids)
            for _ in range(self._retries):
                decided: dict[str, list[ContactEvent]] = {}
                for command in commands:
                    found = decide(states.get(command.contact_id), command, self._policy, self._catalogue)
                    if found:
                        decided.setdefault(command.contact_id, []).extend(found)
                expected = {cid: _version(states.get(cid)) for cid in decided}
                try:
                    self._append_decided(conn, decided, expected, states, commands[0].caller)
                except ConcurrencyError:
                    states = exact_states(conn, self._projection, self._dialect, ids)
                    continue
                return len(decided)
        raise Conflict()

    def _sweep_callbacks(
        self,
        callbacks: Sequence[tuple[str, str]],
        command_for: Callable[[ContactState, str], RemindCallback | ShareStaleCallback],
    ) -> int:
        """Decide one scheduler command per ``(contact id, callback id)`` on the contacts' read-model
        states with their pending callbacks, and append every event in one transaction; returns how many
        contacts got one. Exactly once: a sweep running beside this one (another process) that appends
        first makes this append a ConcurrencyError, and the states read again under the append lock
        show the callbacks done, so nothing is appended twice. A contact gone since is skipped."""
        wanted = dict(callbacks)  # one pending callback per contact
        if not wanted:
            return 0
        ids = list(wanted)
        with self._store.transaction() as conn:
            for _ in range(self._retries):
                states = self._projection.load_states(conn, ids)
                pending = pending_of(conn, list(states))
                decided: dict[str, list[ContactEvent]] = {}
                for contact_id, callback_id in wanted.items():
                    state = states.get(contact_id)
                    if state is None:
                        continue
                    state = replace(state, callback=pending.get(contact_id))
                    states[contact_id] = state
                    found = decide(state, command_for(state, callback_id), self._policy, self._catalogue)
                    if found:
                        decided[contact_id] = found
                expected = {cid: _version(states.get(cid)) for cid in decided}
                try:
                    self._append_decided(conn, decided, expected, states, SYSTEM_CALLER, correlated=False)
                except ConcurrencyError:
                    continue
                return len(decided)
        raise Conflict()

    # Internals -------------------------------------------------------------------------------------

    def _append_decided(
        self,
        conn: Connection,
        decided: Mapping[str, list[ContactEvent]],
        expected: Mapping[str, int],
        states: Mapping[str, ContactState],
        caller: Caller,
        *,
        correlated: bool = True,
    ) -> None:
        """Append the decided events of many contacts and fold them into the read models. ``correlated``:
        the events share one correlation id (one pass of the expiry or ageing schedule, which live
        clients see as one ``bulk_update``); without, each stands alone as a single command's would."""
        if not decided:
            return
        actor = Actor(user_id=caller.user_id, role=caller.role.value)
        correlation = uuid.uuid4() if correlated else None
        appends = []
        changes: list[tuple[ContactEvent, int]] = []
        for contact_id, new_events in decided.items():
            version = expected[contact_id]
            envelopes = []
            for event in new_events:
                version += 1
                envelopes.append(envelope_of(event, actor, correlation))
                changes.append((event, version))
            appends.append(StreamAppend(contact_id, expected[contact_id], envelopes))
        self._store.append_many(conn, appends)
        before: dict[str, ContactState | None] = {cid: states.get(cid) for cid in decided}
        self._projection.apply_events(conn, changes, before)
        apply_callback_events(conn, changes)

    def _list_if_do_not_call(
        self,
        conn: Connection,
        command: ContactCommand,
        after: ContactState | None,
        new_events: Sequence[ContactEvent],
    ) -> None:
        """A status flagged ``dnc`` set by editing the contact (``PUT``/``PATCH /contacts/{id}``, the
        socket's ``update_contact``) lists its number on the do-not-call list in the same transaction,
        audited as the caller's, as a wrap-up to it does (the gateway's disposition route)."""
        if after is None or not isinstance(command, _EDITS):
            return
        for event in new_events:
            if (
                isinstance(event, StatusChanged)
                and event.new in self._catalogue
                and self._catalogue.get(event.new).dnc
            ):
                reason = f"Estado {event.new} puesto al editar el contacto"
                list_number(conn, after.phone_e164, reason, command.caller, command.now)

    def _load(self, conn: Connection, contact_id: str) -> ContactState | None:
        """The contact folded from its whole stream (None for a stream with no events)."""
        state: ContactState | None = None
        for stored in self._store.read_stream(contact_id, conn=conn):
            state = evolve(state, decode_event(stored.type, stored.data, stored.schema_version))
        return state

    def _view(self, state: ContactState | None, now: datetime) -> Contact | None:
        if state is None or state.deleted:
            return None
        return contact_of_state(state, now)


def _check_version(state: ContactState | None, contact_id: str, expected: int) -> None:
    if state is None or state.deleted:
        raise NotFound(contact_id)
    if state.version != expected:
        raise VersionMismatch(expected, state.version, contact_id)


def _version(state: ContactState | None) -> int:
    return state.version if state is not None else 0


def _envelopes(new_events: Iterable[ContactEvent], caller: Caller, desk: str = "") -> list[Envelope]:
    actor = Actor(user_id=caller.user_id, role=caller.role.value, desk=desk)
    return [envelope_of(event, actor) for event in new_events]


def _parsed(command: ContactCommand) -> ContactCommand:
    """A CreateContact with its phone as typed parsed here (InvalidInput when it is no phone) and its
    stream id derived from it, whatever the sender filled in; any other command as it came."""
    if not isinstance(command, CreateContact):
        return command
    parsed = _parse_phone(command.phone)
    return replace(
        command,
        contact_id=contact_id_for_phone(parsed.e164),
        phone=str(command.phone).strip(),
        phone_e164=parsed.e164,
        phone_national=parsed.national,
        operator=parsed.operator,
        extra=dict(command.extra),
    )


def _parse_phone(raw: str) -> Phone:
    try:
        return parse_phone(raw)
    except InvalidPhone as error:
        raise InvalidInput("phone", f"Teléfono no válido: «{raw}» ({error.reason})") from None


__all__ = ["ContactsService", "Outcome", "contact_of_state", "event_data"]
