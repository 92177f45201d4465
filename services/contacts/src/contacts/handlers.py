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
event streams of the contacts it does not hold.
"""

from __future__ import annotations

import functools
import itertools
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from contacts.calls import apply_call_events
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
    DeleteContact,
    EditNote,
    ExpireLock,
    ExtendLock,
    ForceReleaseLock,
    ImportRow,
    LockContact,
    RecordCallEnded,
    RecordCallRequested,
    RecordCallStarted,
    ReleaseLock,
    RowOutcome,
    Source,
    UpdateContact,
)
from contacts.dialect import ReadModelDialect, read_model_dialect
from contacts.domain import (
    BatchDecision,
    ContactState,
    LockPolicy,
    authorise_batch,
    contact_id_for_phone,
    decide,
    decide_batch,
    evolve,
)
from contacts.errors import Conflict, InvalidInput, NotFound, VersionMismatch
from contacts.events import ContactCreated, ContactEvent, decode_event
from contacts.projection import ContactProjection, ReadModelChanges, utc
from contacts.statuses import DEFAULT_CATALOGUE, Catalogue
from contacts.views import Contact
from kernel.envelope import Actor, Envelope
from kernel.phone import InvalidPhone, Phone, parse_phone
from kernel.store import ConcurrencyError, EventStore, StreamAppend
from kernel.store.schema import events as events_table

Clock = Callable[[], datetime]
BulkTuning = Callable[[], AbstractContextManager[object]]
"""Process-wide switches held around a pipelined bulk write (given by the composition root)."""

# A batch at least this big is written as a bulk (upkeep deferred to the end), even in one chunk.
_BULK_ROWS = 1_000
_STREAMS_CHUNK = 1_000

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


def event_data(event: ContactEvent) -> dict[str, Any]:
    """``event.to_data()``, with a hand-written fast path for ContactCreated (bulk creation)."""
    if type(event) is ContactCreated:
        return {
            "contact_id": event.contact_id,
            "at": _isoformat(event.at),
            "phone": event.phone,
            "phone_e164": event.phone_e164,
            "phone_national": event.phone_national,
            "operator": event.operator,
            "name": event.name,
            "status": event.status,
            "note": event.note,
            "email": event.email,
            "extra": dict(event.extra),
            "list_name": event.list_name,
            "source": event.source.value,
        }
    return event.to_data()


@dataclass(frozen=True, slots=True)
class _DecidedBatch:
    """A batch chunk decided and ready to write: its states, the decision, the appends and projections."""

    command: CreateOrMergeContacts
    ids: list[str]
    states: dict[str, ContactState]
    decision: BatchDecision
    appends: list[StreamAppend]
    projected: ReadModelChanges


def _small(rows: Sequence[ImportRow], batch_size: int) -> bool:
    """Few enough rows for one transaction without the pipeline (and its upkeep) of a bulk write."""
    return len(rows) < _BULK_ROWS and len(rows) <= batch_size


@dataclass(slots=True)
class _BatchOutcomes:
    """A batch of a stream being written: its chunks not yet committed and the outcomes of those that are."""

    chunks_left: int
    outcomes: list[RowOutcome] = field(default_factory=list)


class _ResultsInOrder:
    """The results of a stream's batches, each given once its last chunk is written, in batch order."""

    def __init__(self, job_id: str) -> None:
        self._job_id = job_id
        self._open: deque[_BatchOutcomes] = deque()

    def expect(self, chunks: int) -> None:
        """A batch of ``chunks`` chunks joins the stream."""
        self._open.append(_BatchOutcomes(chunks))

    def written(self, result: BatchResult) -> None:
        """The next chunk is committed: chunks commit in order, so it is the earliest open batch's."""
        batch = next(batch for batch in self._open if batch.chunks_left)
        batch.outcomes.extend(result.outcomes)
        batch.chunks_left -= 1

    def finished(self) -> Iterator[BatchResult]:
        """The results of the batches now wholly written, in order (an empty batch's when its turn comes)."""
        while self._open and self._open[0].chunks_left == 0:
            yield BatchResult(outcomes=tuple(self._open.popleft().outcomes), job_id=self._job_id)


@functools.lru_cache(maxsize=64)
def _isoformat(moment: datetime) -> str:
    """``moment.isoformat()``, remembered: every event of a batch shares its ``now``."""
    return moment.isoformat()


class ContactsService:
    """Every contacts command, one method each; the clock gives each command its ``now``."""

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
        self._batch_size = batch_size or self._dialect.batch_size
        self._dialect.attach(engine)
        self._tuning = tuning

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

    def create(
        self,
        caller: Caller,
        phone: str,
        *,
        name: str = "",
        status: str | None = None,
        note: str = "",
        email: str = "",
        extra: Mapping[str, str] | None = None,
        list_name: str = "",
    ) -> Contact:
        """Create one contact; the phone is normalised here. AlreadyExists names the existing contact."""
        parsed = _parse_phone(phone)
        command = CreateContact(
            caller=caller,
            now=self._clock(),
            contact_id=contact_id_for_phone(parsed.e164),
            phone=str(phone).strip(),
            phone_e164=parsed.e164,
            phone_national=parsed.national,
            operator=parsed.operator,
            name=name,
            status=status,
            note=note,
            email=email,
            extra=dict(extra or {}),
            list_name=list_name,
        )
        return self._contact(self.execute(command))

    def update(
        self,
        caller: Caller,
        contact_id: str,
        *,
        name: str | None = None,
        status: str | None = None,
        note: str | None = None,
        email: str | None = None,
        extra: Mapping[str, str] | None = None,
        expected_version: int | None = None,
    ) -> Contact:
        """Change the given fields; ``expected_version`` (If-Match) must be the contact's version."""
        command = UpdateContact(
            caller=caller,
            now=self._clock(),
            contact_id=contact_id,
            name=name,
            status=status,
            note=note,
            email=email,
            extra=dict(extra) if extra is not None else None,
        )
        return self._contact(self.execute(command, expected_version))

    def change_status(
        self, caller: Caller, contact_id: str, status: str, *, expected_version: int | None = None
    ) -> Contact:
        """Set the status (any accepted spelling)."""
        command = ChangeStatus(caller=caller, now=self._clock(), contact_id=contact_id, status=status)
        return self._contact(self.execute(command, expected_version))

    def edit_note(
        self, caller: Caller, contact_id: str, note: str, *, expected_version: int | None = None
    ) -> Contact:
        """Replace the note."""
        command = EditNote(caller=caller, now=self._clock(), contact_id=contact_id, note=note)
        return self._contact(self.execute(command, expected_version))

    def lock(self, caller: Caller, contact_id: str, duration_minutes: int | None = None) -> Contact:
        """Lock the contact for the caller (renews the caller's own lock); Locked when someone else has it."""
        command = LockContact(
            caller=caller, now=self._clock(), contact_id=contact_id, duration_minutes=duration_minutes
        )
        return self._contact(self.execute(command))

    def extend_lock(self, caller: Caller, contact_id: str, duration_minutes: int | None = None) -> Contact:
        """Renew the caller's lock to now + duration."""
        command = ExtendLock(
            caller=caller, now=self._clock(), contact_id=contact_id, duration_minutes=duration_minutes
        )
        return self._contact(self.execute(command))

    def release_lock(self, caller: Caller, contact_id: str) -> Contact:
        """Release the caller's lock (a TeamLead and above releases anyone's)."""
        command = ReleaseLock(caller=caller, now=self._clock(), contact_id=contact_id)
        return self._contact(self.execute(command))

    def force_release_lock(self, caller: Caller, contact_id: str) -> Contact:
        """Release whoever's lock (TeamLead, ProjectManager, TI)."""
        command = ForceReleaseLock(caller=caller, now=self._clock(), contact_id=contact_id)
        return self._contact(self.execute(command))

    def delete(
        self, caller: Caller, contact_id: str, reason: str = "", *, expected_version: int | None = None
    ) -> None:
        """Delete the contact (ProjectManager, TI); its history stays."""
        command = DeleteContact(caller=caller, now=self._clock(), contact_id=contact_id, reason=reason)
        self.execute(command, expected_version)

    def handle(self, command: ContactCommand, expected_version: int | None = None) -> Contact | None:
        """Run one command stamped with this service's clock (the same on either transport): the contact
        after it, None when it is gone; domain errors propagate."""
        stamped = replace(command, now=self._clock())
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
        contact_id = command.contact_id
        with self._store.transaction() as conn:
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
                after = state
                for event in new_events:
                    after = evolve(after, event)
                return Outcome(self._view(after, command.now), tuple(stored))
        raise Conflict(contact_id)

    # Batches ---------------------------------------------------------------------------------------

    def create_or_merge(
        self,
        rows: Sequence[ImportRow],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
    ) -> BatchResult:
        """Create or merge every row (import, generator), thousands per transaction; one outcome per row.

        Idempotent: rows that change nothing append nothing, so re-running the same rows changes nothing.
        A few rows are one transaction; more are pipelined as :meth:`create_or_merge_stream` pipelines them.
        """
        if not _small(rows, self._batch_size):
            (result,) = self._pipelined([rows], list_name, caller, source=source, job_id=job_id)
            return result
        command = CreateOrMergeContacts(
            caller=caller,
            now=self._clock(),
            rows=tuple(rows),
            list_name=list_name,
            source=source,
            job_id=job_id,
        )
        if not rows:
            authorise_batch(command)
            return BatchResult(job_id=job_id)
        return self.handle_batch(command)

    def create_or_merge_stream(
        self,
        batches: Iterable[Sequence[ImportRow]],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
    ) -> Generator[BatchResult]:
        """Create or merge the rows of each of ``batches``; one result per batch, in order, once written.

        Every batch goes through one pipeline of chunks (transactions of the service's batch size): while
        one chunk is written (mostly database time, on a writing thread) this thread decides the next, and
        once a batch is decided it asks ``batches`` for the next one, so an import reads and classifies its
        next rows while the last chunk of the batch before is written. A chunk decided on states that moved
        meanwhile is caught by the expected versions and decided again under the append lock.

        While the stream is open the process works as in any large batch, under the service's ``tuning``
        (in the system: collector paused, quick GIL hand-offs). Closing it early, or an error from
        ``batches``, lets the chunk being written commit; every batch before it was committed too, and a
        retry finds those rows unchanged. A stream of one small batch (a short file, a JSON import) is one
        transaction, without the pipeline's threads.
        """
        remaining = iter(batches)
        first = next(remaining, None)
        if first is None:
            return
        taken = [first]
        if _small(first, self._batch_size):
            taken += itertools.islice(remaining, 1)  # is there more to come?
            if len(taken) == 1:
                yield self.create_or_merge(first, list_name, caller, source=source, job_id=job_id)
                return
        yield from self._pipelined(
            itertools.chain(taken, remaining), list_name, caller, source=source, job_id=job_id
        )

    def _pipelined(
        self,
        batches: Iterable[Sequence[ImportRow]],
        list_name: str,
        caller: Caller,
        *,
        source: Source,
        job_id: str,
    ) -> Generator[BatchResult]:
        """:meth:`create_or_merge_stream` through the pipeline of chunks."""
        authorise_batch(
            CreateOrMergeContacts(
                caller=caller, now=self._clock(), rows=(), list_name=list_name, source=source, job_id=job_id
            )
        )

        def chunk(rows: Sequence[ImportRow], start: int) -> CreateOrMergeContacts:
            return CreateOrMergeContacts(
                caller=caller,
                now=self._clock(),
                rows=tuple(rows[start : start + self._batch_size]),
                list_name=list_name,
                source=source,
                job_id=job_id,
            )

        results = _ResultsInOrder(job_id)
        with (
            self._projection.bulk_upkeep(self._engine),
            self._tuning(),
            ThreadPoolExecutor(1, thread_name_prefix="contacts-batch") as writer,
        ):
            pending: Future[BatchResult] | None = None
            previous: _DecidedBatch | None = None
            for rows in batches:
                starts = range(0, len(rows), self._batch_size)
                results.expect(len(starts))
                for start in starts:
                    decided = self._decide_chunk(chunk(rows, start), previous)
                    if pending is not None:
                        results.written(pending.result())
                    pending = writer.submit(self._write_chunk, decided)
                    previous = decided
                    yield from results.finished()
                yield from results.finished()
            if pending is not None:
                results.written(pending.result())
            yield from results.finished()

    def handle_batch(self, command: CreateOrMergeContacts) -> BatchResult:
        """Decide and write one batch command in one transaction (no chunking)."""
        authorise_batch(command)
        ids = list(dict.fromkeys(contact_id_for_phone(row.e164.strip()) for row in command.rows))
        with self._store.transaction() as conn:
            states = self._projection.load_states(conn, ids)
            decided = self._decided(command, ids, states)
            return self._write_decided(conn, decided)

    def _decide_chunk(self, command: CreateOrMergeContacts, previous: _DecidedBatch | None) -> _DecidedBatch:
        """Decide a chunk on the read model as committed, plus what the chunk still being written does."""
        ids = list(dict.fromkeys(contact_id_for_phone(row.e164.strip()) for row in command.rows))
        with self._engine.connect() as conn:
            states = self._projection.load_states(conn, ids)
        if previous is not None:
            for contact_id in ids:
                pending_events = previous.decision.events.get(contact_id)
                if pending_events:
                    state = previous.states.get(contact_id)
                    for event in pending_events:
                        state = evolve(state, event)
                    if state is not None and not state.deleted:
                        states[contact_id] = state
        return self._decided(command, ids, states)

    def _decided(
        self, command: CreateOrMergeContacts, ids: list[str], states: dict[str, ContactState]
    ) -> _DecidedBatch:
        decision = decide_batch(states, command, self._catalogue)
        appends, changes = self._appends(decision, command.caller, batch_correlation(command))
        projected = self._projection.plan(changes, states)
        return _DecidedBatch(command, ids, states, decision, appends, projected)

    def _write_chunk(self, decided: _DecidedBatch) -> BatchResult:
        with self._store.transaction() as conn:
            self._projection.prepare_bulk(conn)
            return self._write_decided(conn, decided)

    def _write_decided(self, conn: Connection, decided: _DecidedBatch) -> BatchResult:
        """Append and project a decided batch; on a concurrency conflict decide it again under the lock."""
        for _ in range(self._retries):
            try:
                self._store.append_many(conn, decided.appends)
            except ConcurrencyError:
                states = self._load_exact(conn, decided.ids)
                decided = self._decided(decided.command, decided.ids, states)
                continue
            self._projection.write(conn, decided.projected)
            return decided.decision.result
        raise Conflict()

    def _appends(
        self, decision: BatchDecision, caller: Caller, correlation: uuid.UUID
    ) -> tuple[list[StreamAppend], list[tuple[ContactEvent, int]]]:
        """The stream appends of a decided batch and the ``(event, version)`` pairs to project."""
        actor = Actor(user_id=caller.user_id, role=caller.role.value)
        appends = []
        changes: list[tuple[ContactEvent, int]] = []
        for contact_id, new_events in decision.events.items():
            expected = decision.expected_versions[contact_id]
            version = expected
            envelopes = []
            for event in new_events:
                version += 1
                envelopes.append(_envelope(event, actor, correlation))
                changes.append((event, version))
            appends.append(StreamAppend(contact_id, expected, envelopes))
        return appends, changes

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
                    self._append_decided(conn, decided, expected, states, commands[0])
                except ConcurrencyError:
                    states = self._load_exact(conn, ids)
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
        command: CreateOrMergeContacts | ContactCommand,
    ) -> None:
        if not decided:
            return
        actor = Actor(user_id=command.caller.user_id, role=command.caller.role.value)
        correlation = uuid.uuid4()  # one pass of the expiry or ageing schedule
        appends = []
        changes: list[tuple[ContactEvent, int]] = []
        for contact_id, new_events in decided.items():
            version = expected[contact_id]
            envelopes = []
            for event in new_events:
                version += 1
                envelopes.append(_envelope(event, actor, correlation))
                changes.append((event, version))
            appends.append(StreamAppend(contact_id, expected[contact_id], envelopes))
        self._store.append_many(conn, appends)
        before: dict[str, ContactState | None] = {cid: states.get(cid) for cid in decided}
        self._projection.apply_events(conn, changes, before)

    def _load(self, conn: Connection, contact_id: str) -> ContactState | None:
        """The contact folded from its whole stream (None for a stream with no events)."""
        state: ContactState | None = None
        for stored in self._store.read_stream(contact_id, conn=conn):
            state = evolve(state, decode_event(stored.type, stored.data, stored.schema_version))
        return state

    def _load_exact(self, conn: Connection, contact_ids: Sequence[str]) -> dict[str, ContactState]:
        """States under the append lock: the read model, plus the streams it has no row for (deleted)."""
        states = self._projection.load_states(conn, contact_ids)
        absent = [cid for cid in contact_ids if cid not in states]
        states.update(_fold_streams(conn, absent, self._dialect))
        return states

    def _view(self, state: ContactState | None, now: datetime) -> Contact | None:
        if state is None or state.deleted:
            return None
        return contact_of_state(state, now)

    @staticmethod
    def _contact(outcome: Outcome) -> Contact:
        if outcome.contact is None:
            raise RuntimeError("the command left no contact to show")
        return outcome.contact


def _fold_streams(
    conn: Connection, stream_ids: Sequence[str], dialect: ReadModelDialect
) -> dict[str, ContactState]:
    """Fold the event streams of ``stream_ids`` (those with events) from the event store."""
    states: dict[str, ContactState] = {}
    columns = (
        events_table.c.stream_id,
        events_table.c.type,
        events_table.c.data,
        events_table.c.schema_version,
    )
    for start in range(0, len(stream_ids), _STREAMS_CHUNK):
        chunk = list(stream_ids[start : start + _STREAMS_CHUNK])
        match = dialect.streams_match(events_table.c.stream_id, chunk)
        query = sa.select(*columns).where(match).order_by(events_table.c.stream_id, events_table.c.version)
        for stream_id, type_name, data, schema_version in conn.execute(query):
            event = decode_event(type_name, data, schema_version)
            states[stream_id] = evolve(states.get(stream_id), event)
    return states


def _check_version(state: ContactState | None, contact_id: str, expected: int) -> None:
    if state is None or state.deleted:
        raise NotFound(contact_id)
    if state.version != expected:
        raise VersionMismatch(expected, state.version, contact_id)


def _version(state: ContactState | None) -> int:
    return state.version if state is not None else 0


def _envelopes(new_events: Iterable[ContactEvent], caller: Caller, desk: str = "") -> list[Envelope]:
    actor = Actor(user_id=caller.user_id, role=caller.role.value, desk=desk)
    return [_envelope(event, actor) for event in new_events]


def _envelope(event: ContactEvent, actor: Actor, correlation: uuid.UUID | None = None) -> Envelope:
    # The id is the envelope's own: time-ordered (UUIDv7), so the store's id index appends.
    return Envelope(
        type=event.TYPE,
        stream_id=event.contact_id,
        data=event_data(event),
        schema_version=event.SCHEMA_VERSION,
        occurred_at=event.at,
        actor=actor,
        correlation_id=correlation,
    )


_JOB_CORRELATIONS = uuid.UUID("5b0e6f5c-57a4-4d0c-9a39-2f6c3c1e8b21")


def batch_correlation(command: CreateOrMergeContacts) -> uuid.UUID:
    """The correlation id every event of a batch carries: the job's (every message of one import or
    generation shares it), else the command's own. Live clients are told of a large group of one
    correlation with one ``bulk_update`` instead of a notice per contact."""
    if command.job_id:
        return uuid.uuid5(_JOB_CORRELATIONS, command.job_id)
    return uuid.uuid4()


def _parse_phone(raw: str) -> Phone:
    try:
        return parse_phone(raw)
    except InvalidPhone as error:
        raise InvalidInput("phone", f"Teléfono no válido: «{raw}» ({error.reason})") from None


__all__ = ["ContactsService", "Outcome", "contact_of_state", "event_data"]
