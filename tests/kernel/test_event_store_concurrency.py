"""Concurrent writers and a tailing reader, with real threads each holding its own connection."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from kernel.envelope import Envelope
from kernel.store import ConcurrencyError, EventStore, StreamAppend, create_engine
from system.migrate import upgrade

WRITERS_ON_ONE_STREAM = 50
EVENTS_PER_WRITER = 4
TAILED_WRITERS = 20
TRANSACTIONS_PER_TAILED_WRITER = 15


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    engine = create_engine(database_url, pool_size=WRITERS_ON_ONE_STREAM + 2, max_overflow=0, pool_timeout=60)
    upgrade(engine)
    try:
        yield EventStore(engine)
    finally:
        engine.dispose()


def _run_together(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` on ``count`` threads released at the same instant; re-raise the first failure."""
    barrier = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    if failures:
        raise failures[0]


def test_fifty_agents_editing_one_contact_lose_no_update(store: EventStore) -> None:
    stream = "contact-hot"

    def writer(w: int) -> None:
        retry_jitter = random.Random(w)
        for n in range(EVENTS_PER_WRITER):
            event = Envelope(type="contacts.ContactEdited", stream_id=stream, data={"writer": w, "n": n})
            attempt = 0
            while True:
                with store.engine.connect() as conn:
                    seen = store.stream_version(conn, stream)
                try:
                    with store.transaction() as conn:
                        store.append(conn, stream, seen, [event])
                    break
                except ConcurrencyError:
                    attempt += 1
                    time.sleep(retry_jitter.random() * min(2**attempt, 64) / 1000)

    _run_together(WRITERS_ON_ONE_STREAM, writer)

    stored = store.read_stream(stream)
    total = WRITERS_ON_ONE_STREAM * EVENTS_PER_WRITER
    assert [e.stream_version for e in stored] == list(range(1, total + 1))
    assert sorted((e.data["writer"], e.data["n"]) for e in stored) == [
        (w, n) for w in range(WRITERS_ON_ONE_STREAM) for n in range(EVENTS_PER_WRITER)
    ]
    for w in range(WRITERS_ON_ONE_STREAM):
        assert [e.data["n"] for e in stored if e.data["writer"] == w] == list(range(EVENTS_PER_WRITER))


def test_a_reader_tailing_by_position_sees_every_event_once_while_writers_commit(store: EventStore) -> None:
    written: list[Envelope] = []
    written_lock = threading.Lock()
    writers_done = threading.Event()
    seen: list[Envelope] = []

    def writer(w: int) -> None:
        chance = random.Random(w)
        for t in range(TRANSACTIONS_PER_TAILED_WRITER):
            with store.transaction() as conn:
                if t % 3 == 2:
                    stored = store.append_many(
                        conn,
                        [
                            StreamAppend(
                                f"w{w}-s{t}-{k}", 0, [Envelope(type="t", stream_id="", data={"k": k})]
                            )
                            for k in range(chance.randint(1, 30))
                        ],
                    )
                else:
                    events = [Envelope(type="t", stream_id="", data={}) for _ in range(chance.randint(1, 5))]
                    stored = store.append(conn, f"w{w}", store.stream_version(conn, f"w{w}"), events)
                # Commit late: without serialised appends a later position could become visible first.
                time.sleep(chance.random() / 500)
            with written_lock:
                written.extend(stored)

    def reader() -> None:
        last = 0
        while True:
            done = writers_done.is_set()
            page = store.read_all(after_position=last, limit=50)
            seen.extend(page)
            if page:
                last = page[-1].position
            elif done:
                return

    tail = threading.Thread(target=reader)
    tail.start()
    try:
        _run_together(TAILED_WRITERS, writer)
    finally:
        writers_done.set()
        tail.join(timeout=120)

    assert not tail.is_alive()
    positions = [e.position for e in seen]
    assert all(a < b for a, b in itertools.pairwise(positions))
    assert len({e.id for e in seen}) == len(seen)
    assert {e.id for e in seen} == {e.id for e in written}
    assert sorted(positions) == sorted(e.position for e in written)
