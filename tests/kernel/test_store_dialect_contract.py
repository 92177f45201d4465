"""One contract for the store dialects: the same operations, run on SQLite and on PostgreSQL.

Every SQLite/PostgreSQL difference of the stores is behind a dialect object; whichever database it is, a
caller sees the same outcome.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kernel.envelope import Envelope
from kernel.store import (
    PostgresDialect,
    SqliteDialect,
    StoreDialect,
    StreamAppend,
    create_engine,
    store_dialect,
    write_transaction,
)
from kernel.store.changes import ChangeSignal
from kernel.store.schema import events, positions
from system.migrate import upgrade


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def dialect(engine: Engine) -> StoreDialect:
    return store_dialect(engine)


def _appends(*streams: str, each: int = 2) -> list[StreamAppend]:
    return [
        StreamAppend(s, 0, [Envelope(type="test.Happened", stream_id=s, data={"n": i}) for i in range(each)])
        for s in streams
    ]


def test_the_dialect_is_the_engines_database(engine: Engine, dialect: StoreDialect) -> None:
    expected = {"sqlite": SqliteDialect, "postgresql": PostgresDialect}[engine.dialect.name]
    assert isinstance(dialect, expected)
    assert dialect.name == engine.dialect.name
    with engine.connect() as conn:
        assert isinstance(store_dialect(conn), expected)


def test_a_bulk_append_writes_every_event_with_the_versions_after_the_expected_ones(
    engine: Engine, dialect: StoreDialect
) -> None:
    with write_transaction(engine, dialect) as conn:
        dialect.lock_appends(conn)
        dialect.bulk_append(conn, _appends("a", "b", each=3))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.stream_id, events.c.version).order_by(events.c.position)).all()
    assert [tuple(r) for r in rows] == [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2), ("b", 3)]


def test_a_bulk_append_refused_by_the_unique_index_raises_one_of_the_dialects_integrity_errors(
    engine: Engine, dialect: StoreDialect
) -> None:
    with write_transaction(engine, dialect) as conn:
        dialect.bulk_append(conn, _appends("a"))
    with pytest.raises(dialect.integrity_errors()), write_transaction(engine, dialect) as conn:
        dialect.bulk_append(conn, _appends("a"))


def test_an_upsert_inserts_then_replaces(engine: Engine, dialect: StoreDialect) -> None:
    for position in (5, 9):
        with write_transaction(engine, dialect) as conn:
            insert = dialect.insert(positions)
            conn.execute(
                insert.values(name="relay", position=position).on_conflict_do_update(
                    index_elements=[positions.c.name], set_={"position": insert.excluded.position}
                )
            )
    with engine.connect() as conn:
        assert conn.execute(sa.select(positions.c.position)).scalars().all() == [9]


def test_the_change_probe_says_yes_first_and_yes_after_a_commit_elsewhere(
    engine: Engine, dialect: StoreDialect
) -> None:
    probe = dialect.change_probe(engine)
    assert probe()
    with write_transaction(engine, dialect) as conn:
        dialect.bulk_append(conn, _appends("a"))
    assert probe()


def test_migrations_serialise_inside_a_transaction_on_either_database(
    engine: Engine, dialect: StoreDialect
) -> None:
    with write_transaction(engine, dialect) as conn:
        dialect.serialise_migrations(conn, 4242)
        conn.execute(sa.select(1))


def test_a_change_signal_listens_only_where_changes_are_announced(
    engine: Engine, dialect: StoreDialect
) -> None:
    if not dialect.announces_changes:
        with pytest.raises(ValueError, match="PostgreSQL only"):
            ChangeSignal(engine, "callmanager_test")
        return
    signal = ChangeSignal(engine, "callmanager_test", check_every=0.1, retry_every=0.1)
    stop = threading.Event()
    thread = threading.Thread(target=signal.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = threading.Event()
        for _ in range(100):
            if signal.version is not None:
                break
            deadline.wait(0.05)
        before = signal.version
        assert before is not None
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_notify('callmanager_test', '')"))
        for _ in range(100):
            if signal.version != before:
                break
            deadline.wait(0.05)
        assert signal.version not in (before, None)
    finally:
        stop.set()
        thread.join(5)


def test_the_envelope_json_the_database_builds_reads_back_as_the_stored_envelopes(engine: Engine) -> None:
    """What the relay publishes (``read_all_json``, built by the database) is what ``read_all`` reads."""
    from datetime import UTC, datetime
    from uuid import uuid4

    from kernel.envelope import Actor
    from kernel.store import EventStore

    store = EventStore(engine)
    cause = uuid4()
    written = [
        Envelope(
            type="test.Happened", stream_id="s-1", data={"n": 1, "text": 'ñandú "ü" \n', "list": [1, None]}
        ),
        Envelope(
            type="test.Happened",
            stream_id="s-1",
            data={},
            actor=Actor(user_id="u-1", role="Agent", desk="puesto-1"),
            occurred_at=datetime(2026, 12, 7, 15, 0, 0, 123456, tzinfo=UTC),
            correlation_id=cause,
            causation_id=cause,
        ),
        Envelope(type="other.Thing", stream_id="s-2", data={"nested": {"a": {"b": 1.5}}}),
    ]
    with store.transaction() as conn:
        store.append(conn, "s-1", 0, written[:2])
        store.append(conn, "s-2", 0, written[2:])
    stored = store.read_all(after_position=0, limit=10)
    published = store.read_all_json(after_position=0, limit=10)
    assert [position for position, _ in published] == [e.position for e in stored]
    assert [Envelope.from_json(body) for _, body in published] == stored
    assert store.read_all_json(after_position=stored[0].position, limit=1)[0][0] == stored[1].position
