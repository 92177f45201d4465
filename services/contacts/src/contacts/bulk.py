"""The bulk path of the contacts service: batch commands (import, generator) decided and written in chunks.

A few rows are one transaction (:meth:`BulkWriter.handle_batch`). More go through a pipeline of chunks,
transactions of the dialect's batch size: while one chunk is written on a writing thread, this thread
decides the next from the read model as committed plus what the chunk in flight does. Around the
pipeline the read model's dialect keeps the text search index (upkeep beside the writes, settled at the
end) and the process runs under the ``tuning`` the composition root gave (``system.tuning.BulkTuning``).
A chunk decided on states that moved meanwhile is caught by the expected versions and decided again
under the append lock (:func:`exact_states`).

Every chunk looks its phones up on the do-not-call list at once (:func:`contacts.dnc.listed`, one query
on the connection that loads its states): rows found are decided ``dnc`` and write nothing.

A dry run (``dry_run=True``, the import's "simulate") is the same decision and the same writes, chunk by
chunk in transactions that are rolled back instead of committed: its row outcomes are the real run's
because they come from the real run's code. It is not pipelined (a chunk is rolled back before the next
is decided); an import sends each phone once (repeats merged), so no chunk depends on one before it.
"""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from contacts.commands import (
    BatchResult,
    Caller,
    CreateOrMergeContacts,
    ImportRow,
    MergeMode,
    RowOutcome,
    Source,
)
from contacts.dialect import ReadModelDialect
from contacts.dnc import listed
from contacts.domain import (
    BatchDecision,
    ContactState,
    authorise_batch,
    contact_id_for_phone,
    decide_batch,
    evolve,
)
from contacts.envelopes import batch_correlation, envelope_of
from contacts.errors import Conflict
from contacts.events import ContactEvent, decode_event
from contacts.projection import ContactProjection, ReadModelChanges
from contacts.statuses import Catalogue
from kernel.envelope import Actor, new_ids
from kernel.store import ConcurrencyError, EventStore, StreamAppend
from kernel.store.schema import events as events_table

BulkTuning = Callable[[], AbstractContextManager[object]]
"""Process-wide switches held around a pipelined bulk write (given by the composition root)."""

# A batch at least this big is written as a bulk (upkeep deferred to the end), even in one chunk.
_BULK_ROWS = 1_000
_STREAMS_CHUNK = 1_000


class BulkWriter:
    """Batch commands of the contacts service, decided on the read model and written in chunks."""

    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        projection: ContactProjection,
        catalogue: Catalogue,
        clock: Callable[[], datetime],
        *,
        dialect: ReadModelDialect,
        tuning: BulkTuning = nullcontext,
        retries: int = 5,
        batch_size: int,
    ) -> None:
        self._engine = engine
        self._store = store
        self._projection = projection
        self._catalogue = catalogue
        self._clock = clock
        self._dialect = dialect
        self._tuning = tuning
        self._retries = retries
        self._batch_size = batch_size

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
        """Create or merge every row (import, generator), thousands per transaction; one outcome per row.

        Idempotent: rows that change nothing append nothing, so re-running the same rows changes nothing.
        A few rows are one transaction; more are pipelined as :meth:`create_or_merge_stream` pipelines them.
        ``dry_run``: the same, every transaction rolled back (see the module's docstring).
        """
        if dry_run:
            return self._rolled_back(rows, list_name, caller, source=source, job_id=job_id, merge=merge)
        if not _small(rows, self._batch_size):
            (result,) = self._pipelined([rows], list_name, caller, source=source, job_id=job_id, merge=merge)
            return result
        command = CreateOrMergeContacts(
            caller=caller,
            now=self._clock(),
            rows=tuple(rows),
            list_name=list_name,
            source=source,
            job_id=job_id,
            merge=merge,
        )
        if not rows:
            authorise_batch(command)
            return BatchResult(job_id=job_id)
        return self.handle_batch(command)

    def _rolled_back(
        self,
        rows: Sequence[ImportRow],
        list_name: str,
        caller: Caller,
        *,
        source: Source,
        job_id: str,
        merge: MergeMode,
    ) -> BatchResult:
        """:meth:`handle_batch` of each chunk of ``rows``, rolled back: what the real run would answer."""

        def command(chunk: Sequence[ImportRow]) -> CreateOrMergeContacts:
            return CreateOrMergeContacts(
                caller=caller,
                now=self._clock(),
                rows=tuple(chunk),
                list_name=list_name,
                source=source,
                job_id=job_id,
                merge=merge,
            )

        authorise_batch(command(()))
        outcomes: list[RowOutcome] = []
        for start in range(0, len(rows), self._batch_size):
            chunk = command(rows[start : start + self._batch_size])
            outcomes.extend(self.handle_batch(chunk, commit=False).outcomes)
        return BatchResult(outcomes=tuple(outcomes), job_id=job_id)

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
        transaction, without the pipeline's threads. ``dry_run``: each batch as :meth:`create_or_merge`
        does it in a dry run, rolled back.
        """
        if dry_run:
            for rows in batches:
                yield self._rolled_back(rows, list_name, caller, source=source, job_id=job_id, merge=merge)
            return
        remaining = iter(batches)
        first = next(remaining, None)
        if first is None:
            return
        taken = [first]
        if _small(first, self._batch_size):
            taken += itertools.islice(remaining, 1)  # is there more to come?
            if len(taken) == 1:
                yield self.create_or_merge(
                    first, list_name, caller, source=source, job_id=job_id, merge=merge
                )
                return
        yield from self._pipelined(
            itertools.chain(taken, remaining), list_name, caller, source=source, job_id=job_id, merge=merge
        )

    def _pipelined(
        self,
        batches: Iterable[Sequence[ImportRow]],
        list_name: str,
        caller: Caller,
        *,
        source: Source,
        job_id: str,
        merge: MergeMode,
    ) -> Generator[BatchResult]:
        """:meth:`create_or_merge_stream` through the pipeline of chunks."""
        authorise_batch(
            CreateOrMergeContacts(
                caller=caller,
                now=self._clock(),
                rows=(),
                list_name=list_name,
                source=source,
                job_id=job_id,
                merge=merge,
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
                merge=merge,
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

    def handle_batch(self, command: CreateOrMergeContacts, *, commit: bool = True) -> BatchResult:
        """Decide and write one batch command in one transaction (no chunking); rolled back unless
        ``commit``."""
        authorise_batch(command)
        ids = list(dict.fromkeys(contact_id_for_phone(row.e164.strip()) for row in command.rows))
        try:
            with self._store.transaction() as conn:
                states = self._projection.load_states(conn, ids)
                dnc = listed(conn, (row.e164.strip() for row in command.rows))
                decided = self._decided(command, ids, states, dnc)
                result = self._write_decided(conn, decided)
                if not commit:
                    raise _RolledBack(result)
                return result
        except _RolledBack as rolled:
            return rolled.result

    def _decide_chunk(self, command: CreateOrMergeContacts, previous: _DecidedBatch | None) -> _DecidedBatch:
        """Decide a chunk on the read model as committed, plus what the chunk still being written does."""
        ids = list(dict.fromkeys(contact_id_for_phone(row.e164.strip()) for row in command.rows))
        with self._engine.connect() as conn:
            states = self._projection.load_states(conn, ids)
            dnc = listed(conn, (row.e164.strip() for row in command.rows))
        if previous is not None:
            for contact_id in ids:
                pending_events = previous.decision.events.get(contact_id)
                if pending_events:
                    state = previous.states.get(contact_id)
                    for event in pending_events:
                        state = evolve(state, event)
                    if state is not None and not state.deleted:
                        states[contact_id] = state
        return self._decided(command, ids, states, dnc)

    def _decided(
        self,
        command: CreateOrMergeContacts,
        ids: list[str],
        states: dict[str, ContactState],
        dnc: frozenset[str],
    ) -> _DecidedBatch:
        decision = decide_batch(states, command, self._catalogue, dnc)
        appends, changes = self._appends(decision, command.caller, batch_correlation(command))
        projected = self._projection.plan(changes, states)
        return _DecidedBatch(command, ids, states, dnc, decision, appends, projected)

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
                states = exact_states(conn, self._projection, self._dialect, decided.ids)
                decided = self._decided(decided.command, decided.ids, states, decided.dnc)
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
        ids = iter(new_ids(sum(len(new_events) for new_events in decision.events.values())))
        for contact_id, new_events in decision.events.items():
            expected = decision.expected_versions[contact_id]
            version = expected
            envelopes = []
            for event in new_events:
                version += 1
                envelopes.append(envelope_of(event, actor, correlation, next(ids)))
                changes.append((event, version))
            appends.append(StreamAppend(contact_id, expected, envelopes))
        return appends, changes


class _RolledBack(Exception):  # not an error: the way out of a transaction that must not commit
    """Raised inside a transaction to roll it back (and skip the store's after-commit callbacks)."""

    def __init__(self, result: BatchResult) -> None:
        super().__init__("rolled back")
        self.result = result


@dataclass(frozen=True, slots=True)
class _DecidedBatch:
    """A batch chunk decided and ready to write: its states, the decision, the appends and projections."""

    command: CreateOrMergeContacts
    ids: list[str]
    states: dict[str, ContactState]
    dnc: frozenset[str]
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


def exact_states(
    conn: Connection, projection: ContactProjection, dialect: ReadModelDialect, contact_ids: Sequence[str]
) -> dict[str, ContactState]:
    """States under the append lock: the read model, plus the streams it has no row for (deleted)."""
    states = projection.load_states(conn, contact_ids)
    absent = [cid for cid in contact_ids if cid not in states]
    states.update(_fold_streams(conn, absent, dialect))
    return states


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


__all__ = ["BulkTuning", "BulkWriter", "exact_states"]
