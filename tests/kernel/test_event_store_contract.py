"""One contract for the event store, run against SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from kernel.envelope import Actor, Envelope
from kernel.store import ConcurrencyError, EventStore, PositionStore, StreamAppend, create_engine
from system.migrate import upgrade

COSTA_RICA = timezone(timedelta(hours=-6))


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    engine = create_engine(database_url)
    upgrade(engine)
    try:
        yield EventStore(engine)
    finally:
        engine.dispose()


def _event(stream_id: str, n: int = 0, **data: object) -> Envelope:
    return Envelope(type="contacts.ContactEdited", stream_id=stream_id, data={"n": n, **data})


def _append(store: EventStore, stream_id: str, expected: int, count: int) -> list[Envelope]:
    with store.transaction() as conn:
        return store.append(conn, stream_id, expected, [_event(stream_id, i) for i in range(count)])


def test_append_gives_versions_after_the_expected_one_and_increasing_positions(store: EventStore) -> None:
    first = _append(store, "contact-1", 0, 2)
    more = _append(store, "contact-1", 2, 3)

    assert [e.stream_version for e in first + more] == [1, 2, 3, 4, 5]
    positions = [e.position for e in first + more]
    assert positions == sorted(positions)
    assert len(set(positions)) == 5
    with store.engine.connect() as conn:
        assert store.stream_version(conn, "contact-1") == 5
        assert store.stream_version(conn, "contact-unknown") == 0


def test_second_writer_with_a_stale_version_gets_a_conflict_not_a_lost_update(store: EventStore) -> None:
    _append(store, "contact-1", 0, 1)
    _append(store, "contact-1", 1, 1)

    with pytest.raises(ConcurrencyError) as caught, store.transaction() as conn:
        store.append(conn, "contact-1", 1, [_event("contact-1", 99)])

    assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == ("contact-1", 1, 2)
    assert [e.data["n"] for e in store.read_stream("contact-1")] == [0, 0]


def test_creating_a_stream_that_already_exists_is_a_conflict(store: EventStore) -> None:
    _append(store, "contact-1", 0, 1)

    with pytest.raises(ConcurrencyError), store.transaction() as conn:
        store.append(conn, "contact-1", 0, [_event("contact-1", 1)])

    assert len(store.read_stream("contact-1")) == 1


def test_an_expected_version_ahead_of_the_stream_is_a_conflict(store: EventStore) -> None:
    _append(store, "contact-1", 0, 1)

    with pytest.raises(ConcurrencyError), store.transaction() as conn:
        store.append(conn, "contact-1", 3, [_event("contact-1", 1)])


def test_a_conflict_leaves_the_transaction_usable(store: EventStore) -> None:
    _append(store, "contact-1", 0, 1)

    with store.transaction() as conn:
        with pytest.raises(ConcurrencyError):
            store.append(conn, "contact-1", 0, [_event("contact-1")])
        store.append(conn, "contact-2", 0, [_event("contact-2")])

    assert len(store.read_stream("contact-2")) == 1


def test_events_are_stored_under_the_stream_they_are_appended_to(store: EventStore) -> None:
    loose = Envelope(type="t", stream_id="", data={})

    with store.transaction() as conn:
        [single] = store.append(conn, "contact-1", 0, [loose])
        [bulk] = store.append_many(
            conn, [StreamAppend("contact-2", 0, [Envelope(type="t", stream_id="", data={})])]
        )

    assert (single.stream_id, bulk.stream_id) == ("contact-1", "contact-2")
    assert store.read_stream("contact-1") == [single]
    assert store.read_stream("contact-2") == [bulk]


def test_storing_the_same_event_twice_is_refused_on_both_paths(store: EventStore) -> None:
    event = _event("contact-1")
    with store.transaction() as conn:
        store.append(conn, "contact-1", 0, [event])

    with pytest.raises(sa.exc.IntegrityError), store.transaction() as conn:
        store.append(conn, "contact-2", 0, [event])
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as conn:
        store.append_many(conn, [StreamAppend("contact-3", 0, [event])])

    assert store.read_stream("contact-2") == store.read_stream("contact-3") == []


def test_appending_nothing_writes_nothing(store: EventStore) -> None:
    with store.transaction() as conn:
        assert store.append(conn, "contact-1", 0, []) == []
        assert store.append_many(conn, []) == []
    assert store.last_position() == 0


def test_read_stream_returns_only_that_stream_after_a_version(store: EventStore) -> None:
    _append(store, "contact-1", 0, 3)
    _append(store, "contact-2", 0, 2)

    assert [e.stream_version for e in store.read_stream("contact-1")] == [1, 2, 3]
    assert [e.stream_version for e in store.read_stream("contact-1", after_version=1)] == [2, 3]
    assert {e.stream_id for e in store.read_stream("contact-2")} == {"contact-2"}
    assert store.read_stream("contact-unknown") == []


def test_read_all_pages_every_stream_by_global_position(store: EventStore) -> None:
    written = _append(store, "a", 0, 3) + _append(store, "b", 0, 3) + _append(store, "a", 3, 2)

    page = store.read_all(after_position=written[1].position, limit=4)
    rest = store.read_all(after_position=page[-1].position)

    assert [e.id for e in page + rest] == [e.id for e in written[2:]]
    assert store.read_all(after_position=written[-1].position) == []
    assert store.last_position() == written[-1].position


def test_every_envelope_field_survives_storage(store: EventStore) -> None:
    cause = uuid.uuid4()
    correlation = uuid.uuid4()
    sent = Envelope(
        type="contacts.ContactCreated",
        stream_id="contact-ñandú",
        schema_version=3,
        occurred_at=datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=COSTA_RICA),
        actor=Actor(user_id="u-7", role="supervisor", desk="mesa-3"),
        correlation_id=correlation,
        causation_id=cause,
        data={
            "nombre": "José Ñúñez",
            "notas": "llamar después ☎️",
            "tel": "+50688881234",
            "n": [1, 2.5, None],
        },
    )

    with store.transaction() as conn:
        [stored] = store.append(conn, sent.stream_id, 0, [sent])
    [read] = store.read_stream(sent.stream_id)

    assert read == stored
    assert read.occurred_at == datetime(2025, 3, 14, 15, 26, 53, 589793, tzinfo=UTC)
    assert read.occurred_at.utcoffset() == timedelta(0)
    assert (read.id, read.type, read.schema_version, read.data) == (sent.id, sent.type, 3, sent.data)
    assert (read.actor, read.correlation_id, read.causation_id) == (sent.actor, correlation, cause)
    assert (read.stream_version, read.position) == (1, stored.position)


def test_bulk_append_stores_the_same_envelope_as_a_single_append(store: EventStore) -> None:
    sent = Envelope(
        type="contacts.ContactImported",
        stream_id="contact-bulk",
        occurred_at=datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=COSTA_RICA),
        actor=Actor(user_id="importer", role="admin"),
        correlation_id=uuid.uuid4(),
        data={"nombre": "María José Güell", "emoji": "😀"},
    )
    naive = Envelope(
        type="contacts.ContactImported",
        stream_id="contact-naive",
        occurred_at=datetime(2025, 1, 2, 3, 4, 5),
        data={},
    )

    with store.transaction() as conn:
        stored = store.append_many(
            conn, [StreamAppend("contact-bulk", 0, [sent]), StreamAppend("contact-naive", 0, [naive])]
        )

    [read] = store.read_stream("contact-bulk")
    assert read == stored[0]
    assert read.occurred_at == datetime(2025, 1, 2, 9, 4, 5, 6, tzinfo=UTC)
    assert (read.actor, read.correlation_id, read.causation_id, read.data) == (
        sent.actor,
        sent.correlation_id,
        None,
        sent.data,
    )
    assert store.read_stream("contact-naive")[0].occurred_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_bulk_append_of_thousands_of_events_in_one_transaction(store: EventStore) -> None:
    appends = [
        StreamAppend(f"contact-{s}", 0, [_event(f"contact-{s}", i) for i in range(5)]) for s in range(1000)
    ]

    with store.transaction() as conn:
        stored = store.append_many(conn, appends)

    assert len(stored) == 5000
    assert [e.id for e in stored] == [e.id for a in appends for e in a.events]
    assert [e.position for e in stored] == list(range(stored[0].position, stored[0].position + 5000))
    assert [e.stream_version for e in stored[:5]] == [1, 2, 3, 4, 5]
    read = store.read_all(limit=10_000)
    assert read == stored
    assert (stored[-1], stored[1234], stored[4998:]) == (read[-1], read[1234], read[4998:])
    assert list(stored.positions) == [e.position for e in read]


def test_bulk_append_continues_existing_streams(store: EventStore) -> None:
    _append(store, "a", 0, 2)

    with store.transaction() as conn:
        stored = store.append_many(
            conn,
            [
                StreamAppend("a", 2, [_event("a", 10)]),
                StreamAppend("b", 0, [_event("b", 20)]),
                StreamAppend("a", 3, [_event("a", 11)]),
            ],
        )

    assert [(e.stream_id, e.stream_version) for e in stored] == [("a", 3), ("b", 1), ("a", 4)]
    assert [e.data["n"] for e in store.read_stream("a")] == [0, 1, 10, 11]


def test_bulk_conflict_refuses_the_whole_batch(store: EventStore) -> None:
    _append(store, "contact-500", 0, 1)
    before = store.last_position()
    appends = [StreamAppend(f"contact-{s}", 0, [_event(f"contact-{s}")]) for s in range(1000)]

    with store.transaction() as conn:
        with pytest.raises(ConcurrencyError) as caught:
            store.append_many(conn, appends)
        assert store.last_position(conn) == before

    assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == ("contact-500", 0, 1)
    assert store.last_position() == before
    assert store.read_stream("contact-0") == []


def test_a_caller_rolling_back_after_a_bulk_conflict_keeps_nothing_of_the_transaction(
    store: EventStore,
) -> None:
    _append(store, "a", 0, 1)

    batch = [StreamAppend("b", 0, [_event("b")]), StreamAppend("a", 0, [_event("a")])]

    with store.transaction() as conn:
        store.append(conn, "z", 0, [_event("z")])
        with pytest.raises(ConcurrencyError):
            store.append_many(conn, batch)
        conn.rollback()

    assert store.read_stream("z") == []
    assert store.read_stream("b") == []


def test_bulk_append_refuses_an_expected_version_ahead_of_the_stream(store: EventStore) -> None:
    _append(store, "a", 0, 1)

    with pytest.raises(ConcurrencyError) as caught, store.transaction() as conn:
        store.append_many(conn, [StreamAppend("b", 0, [_event("b")]), StreamAppend("a", 4, [_event("a")])])

    assert (caught.value.stream_id, caught.value.actual) == ("a", 1)
    assert store.read_stream("b") == []


def test_bulk_append_refuses_a_batch_that_contradicts_itself(store: EventStore) -> None:
    with pytest.raises(ConcurrencyError), store.transaction() as conn:
        store.append_many(conn, [StreamAppend("a", 0, [_event("a")]), StreamAppend("a", 0, [_event("a")])])

    assert store.read_stream("a") == []


def test_positions_are_zero_until_saved_then_remembered_per_name(store: EventStore) -> None:
    positions = PositionStore()

    with store.transaction() as conn:
        assert positions.get(conn, "relay:contacts.events") == 0
        positions.set(conn, "relay:contacts.events", 42)
        positions.set(conn, "projection:history", 7)
    with store.transaction() as conn:
        positions.set(conn, "relay:contacts.events", 43)

    with store.engine.connect() as conn:
        assert positions.get(conn, "relay:contacts.events") == 43
        assert positions.get(conn, "projection:history") == 7


def test_a_position_saved_in_a_rolled_back_transaction_is_forgotten(store: EventStore) -> None:
    positions = PositionStore()

    def save_then_fail() -> None:
        with store.transaction() as conn:
            positions.set(conn, "relay:x", 10)
            raise RuntimeError("effect failed")

    with pytest.raises(RuntimeError):
        save_then_fail()

    with store.engine.connect() as conn:
        assert positions.get(conn, "relay:x") == 0
