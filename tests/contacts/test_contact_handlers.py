"""Command handlers against a real database (SQLite and PostgreSQL): load, decide, append, project."""

from __future__ import annotations

import gc
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from contacts_support import (
    ANA,
    BETO,
    LAURA,
    PABLO,
    FakeClock,
    change_status,
    create_contact,
    delete_contact,
    end_call,
    lock_contact,
    request_call,
    start_call,
    update_contact,
)
from sqlalchemy.engine import Engine

from contacts.commands import CallOutcome, ImportRow, Outcome, Source
from contacts.domain import CONTACTS_NAMESPACE, LockPolicy, contact_id_for_phone
from contacts.errors import (
    AlreadyExists,
    Forbidden,
    InvalidInput,
    InvalidStatus,
    Locked,
    NotFound,
    VersionMismatch,
)
from contacts.events import ContactCreated, ContactLocked
from contacts.handlers import ContactsService, event_data
from contacts.projection import ContactProjection, ids_match
from contacts.queries import ContactQueries
from contacts.schema import SEARCH_INDEX, SEARCH_TABLE
from contacts.statuses import DEFAULT_CATALOGUE
from contacts.views import ContactFilters
from kernel.store import EventStore
from system.tuning import BulkTuning


def _types(store: EventStore, contact_id: str) -> list[str]:
    return [e.type for e in store.read_stream(contact_id)]


def _row(number: int, **fields: str) -> ImportRow:
    national = f"88{number:06d}"
    return ImportRow(
        row=number + 2,
        e164=f"+506{national}",
        national=f"{national[:4]}-{national[4:]}",
        phone=national,
        **fields,
    )


def test_create_normalises_the_phone_and_is_readable_at_once(
    service: ContactsService, queries: ContactQueries
) -> None:
    created = create_contact(service, ANA, "8812-3456", name="  José   Pérez ", note="llamar tarde")

    assert created.phone == "8812-3456"
    assert created.phone_e164 == "+50688123456"
    assert created.phone_national == "8812-3456"
    assert created.operator == "kolbi"
    assert created.name == "José Pérez"
    assert created.status == "SIN_GESTIONAR"
    assert created.version == 1
    assert created.id == contact_id_for_phone("+50688123456")
    assert queries.get(created.id) == created


@pytest.mark.parametrize("typed", ["88123456", "+506 8812 3456", "506-8812-3456", "8812 3456"])
def test_the_same_phone_typed_another_way_is_refused_with_the_existing_id(
    service: ContactsService, typed: str
) -> None:
    first = create_contact(service, ANA, "8812-3456")

    with pytest.raises(AlreadyExists) as refused:
        create_contact(service, BETO, typed)

    assert refused.value.existing_id == first.id


def test_an_invalid_phone_is_refused_with_a_reason(service: ContactsService) -> None:
    with pytest.raises(InvalidInput) as refused:
        create_contact(service, ANA, "12")

    assert refused.value.field == "phone"
    assert "12" in refused.value.message


def test_second_agent_cannot_lock_a_locked_contact(service: ContactsService, store: EventStore) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    locked = lock_contact(service, ANA, contact.id, 15)

    with pytest.raises(Locked) as refused:
        lock_contact(service, BETO, contact.id)

    assert locked.locked_by == ANA.user_id
    assert refused.value.locked_by == ANA.user_id
    assert refused.value.locked_until == locked.locked_until
    assert _types(store, contact.id).count("contacts.ContactLocked") == 1


def test_a_lapsed_lock_lets_another_agent_lock(
    service: ContactsService, store: EventStore, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    lock_contact(service, ANA, contact.id, 5)
    clock.advance(minutes=5)

    taken = lock_contact(service, BETO, contact.id)

    assert taken.locked_by == BETO.user_id
    assert _types(store, contact.id)[-2:] == ["contacts.LockExpired", "contacts.ContactLocked"]


def test_edits_by_another_agent_are_refused_while_locked(service: ContactsService) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    lock_contact(service, ANA, contact.id)

    with pytest.raises(Locked):
        update_contact(service, BETO, contact.id, note="intento")

    edited = update_contact(service, ANA, contact.id, note="hablé con el cliente", status="interesado")
    assert (edited.note, edited.status) == ("hablé con el cliente", "INTERESADO")


def test_an_outdated_if_match_version_is_a_version_mismatch(service: ContactsService) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    update_contact(service, BETO, contact.id, name="Ana María")

    with pytest.raises(VersionMismatch) as refused:
        update_contact(service, ANA, contact.id, name="Otra", expected_version=contact.version)

    assert (refused.value.expected, refused.value.actual) == (1, 2)
    accepted = update_contact(service, ANA, contact.id, name="Otra", expected_version=2)
    assert (accepted.name, accepted.version) == ("Otra", 3)


def test_unknown_status_is_refused(service: ContactsService) -> None:
    contact = create_contact(service, ANA, "8812-3456")

    with pytest.raises(InvalidStatus):
        change_status(service, ANA, contact.id, "PERDIDO")


def test_a_command_that_changes_nothing_appends_nothing(service: ContactsService, store: EventStore) -> None:
    contact = create_contact(service, ANA, "8812-3456", name="Ana")

    same = update_contact(service, ANA, contact.id, name="Ana")

    assert same.version == 1
    assert _types(store, contact.id) == ["contacts.ContactCreated"]


def test_events_carry_the_caller_as_actor(service: ContactsService, store: EventStore) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    request_call(service, BETO, contact.id, "call-1", "desk-7")

    requested = store.read_stream(contact.id)[-1]

    assert requested.type == "contacts.CallRequested"
    assert (requested.actor.user_id, requested.actor.role, requested.actor.desk) == (
        "u-beto",
        "Agent",
        "desk-7",
    )


def test_a_finished_call_resets_the_last_contact_clock(service: ContactsService, clock: FakeClock) -> None:
    contact = create_contact(service, ANA, "8812-3456")
    clock.advance(days=3)

    request_call(service, ANA, contact.id, "call-1")
    start_call(service, ANA, contact.id, "call-1")
    clock.advance(seconds=100)
    ended = end_call(service, ANA, contact.id, "call-1", CallOutcome.ANSWERED, 95)

    assert ended is not None
    assert ended.last_contacted_at == clock.now


def test_a_deleted_contact_is_gone_and_its_phone_can_be_created_again(
    service: ContactsService, queries: ContactQueries, store: EventStore
) -> None:
    contact = create_contact(service, ANA, "8812-3456", name="Antes")
    with pytest.raises(Forbidden):
        delete_contact(service, ANA, contact.id)

    delete_contact(service, PABLO, contact.id, "duplicado")

    with pytest.raises(NotFound):
        queries.get(contact.id)
    again = create_contact(service, ANA, "+506 8812 3456", name="Después")
    assert (again.id, again.version, again.name) == (contact.id, 3, "Después")
    assert queries.get_by_phone("88123456").name == "Después"


def test_a_batch_creates_merges_and_rejects_row_by_row(
    service: ContactsService, queries: ContactQueries
) -> None:
    existing = create_contact(service, ANA, "8800-0001", name="Ya estaba")
    rows = [
        _row(1, note="nota nueva"),
        _row(2, name="Nueva"),
        ImportRow(row=9, e164="+5061"),
        _row(2, email="nueva@example.com"),
    ]

    result = service.create_or_merge(rows, "lista-marzo", LAURA)

    assert [o.outcome for o in result.outcomes] == [
        Outcome.UPDATED,
        Outcome.INSERTED,
        Outcome.REJECTED,
        Outcome.UPDATED,
    ]
    assert result.outcomes[2].reason
    merged = queries.get(existing.id)
    assert (merged.name, merged.note, merged.list_name) == ("Ya estaba", "nota nueva", "")
    new = queries.get_by_phone("8800-0002")
    assert (new.name, new.email, new.list_name) == ("Nueva", "nueva@example.com", "lista-marzo")


def test_running_the_same_batch_again_changes_nothing(service: ContactsService, store: EventStore) -> None:
    rows = [_row(n, name=f"Cliente {n}", status="NC") for n in range(1, 40)]
    first = service.create_or_merge(rows, "lista", LAURA)
    position = store.last_position()

    second = service.create_or_merge(rows, "lista", LAURA)

    assert first.count(Outcome.INSERTED) == 39
    assert second.count(Outcome.UNCHANGED) == 39
    assert store.last_position() == position


def test_a_batch_larger_than_one_transaction_is_split_and_keeps_row_order(
    engine: Engine, store: EventStore, clock: FakeClock, queries: ContactQueries
) -> None:
    service = ContactsService(engine, store, LockPolicy(), DEFAULT_CATALOGUE, clock, batch_size=7)
    rows = [_row(n, name=f"Cliente {n}") for n in range(1, 31)] + [_row(3, note="repetido")]

    result = service.create_or_merge(rows, "lista", PABLO, source=Source.GENERATOR)

    assert [o.row for o in result.outcomes] == [r.row for r in rows]
    assert result.count(Outcome.INSERTED) == 30
    assert result.outcomes[-1].outcome is Outcome.UPDATED
    assert queries.get_by_phone("8800-0003").note == "repetido"


def test_a_pipelined_batch_under_the_systems_tuning_hands_the_gil_over_quickly_and_puts_it_back(
    engine: Engine, store: EventStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ContactsService(
        engine, store, LockPolicy(), DEFAULT_CATALOGUE, clock, batch_size=7, tuning=BulkTuning()
    )
    seen: list[tuple[float, bool]] = []
    write_chunk = service._bulk._write_chunk

    def noting_the_switches(decided: object) -> object:
        seen.append((sys.getswitchinterval(), gc.isenabled()))
        return write_chunk(decided)  # type: ignore[arg-type]

    monkeypatch.setattr(service._bulk, "_write_chunk", noting_the_switches)
    found = sys.getswitchinterval()

    service.create_or_merge([_row(n) for n in range(1, 22)], "lista", PABLO)

    assert seen == [(0.0005, False)] * 3
    assert sys.getswitchinterval() == found
    assert gc.isenabled()


def test_a_pipelined_batch_without_tuning_leaves_the_process_switches_alone(
    engine: Engine, store: EventStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ContactsService(engine, store, LockPolicy(), DEFAULT_CATALOGUE, clock, batch_size=7)
    seen: list[tuple[float, bool]] = []
    write_chunk = service._bulk._write_chunk

    def noting_the_switches(decided: object) -> object:
        seen.append((sys.getswitchinterval(), gc.isenabled()))
        return write_chunk(decided)  # type: ignore[arg-type]

    monkeypatch.setattr(service._bulk, "_write_chunk", noting_the_switches)

    service.create_or_merge([_row(n) for n in range(1, 22)], "lista", PABLO)

    assert seen == [(sys.getswitchinterval(), True)] * 3


def test_a_stream_takes_the_next_batch_while_the_last_is_written_and_answers_each_in_order(
    engine: Engine, store: EventStore, clock: FakeClock
) -> None:
    service = ContactsService(engine, store, LockPolicy(), DEFAULT_CATALOGUE, clock, batch_size=7)
    sent = [[_row(n) for n in range(1, 16)], [], [_row(n) for n in range(16, 20)], [_row(3, name="Otra")]]
    log: list[str] = []

    def batches() -> Iterator[list[ImportRow]]:
        for number, rows in enumerate(sent):
            log.append(f"batch {number}")
            yield rows

    results = []
    for result in service.create_or_merge_stream(batches(), "lista", PABLO, job_id="job-9"):
        log.append(f"result {len(results)}")
        results.append(result)

    # Batch 0 is three chunks (7, 7, 1): its result comes once its last chunk is written, which is
    # while batch 2 is decided; the empty batch 1 answers right after it, in order.
    assert log == ["batch 0", "batch 1", "batch 2", "result 0", "result 1", "batch 3", "result 2", "result 3"]
    assert [[o.row for o in r.outcomes] for r in results] == [[row.row for row in b] for b in sent]
    assert [r.count(Outcome.INSERTED) for r in results] == [15, 0, 4, 0]
    assert results[3].outcomes[0].outcome is Outcome.UPDATED
    assert {r.job_id for r in results} == {"job-9"}


def test_a_stream_of_one_small_batch_is_one_transaction_without_the_pipeline(
    engine: Engine, store: EventStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ContactsService(engine, store, LockPolicy(), DEFAULT_CATALOGUE, clock, batch_size=7)

    def pipelined(decided: object) -> object:
        raise AssertionError("a short import needs no writing thread")

    monkeypatch.setattr(service._bulk, "_write_chunk", pipelined)

    (result,) = service.create_or_merge_stream([[_row(n) for n in range(1, 6)]], "lista", PABLO)

    assert result.count(Outcome.INSERTED) == 5
    assert list(service.create_or_merge_stream([], "lista", PABLO)) == []


def test_a_stream_closed_early_commits_what_it_sent_and_puts_the_process_back(
    engine: Engine, store: EventStore, clock: FakeClock
) -> None:
    service = ContactsService(
        engine, store, LockPolicy(), DEFAULT_CATALOGUE, clock, batch_size=7, tuning=BulkTuning()
    )
    queries = ContactQueries(engine, store, DEFAULT_CATALOGUE)
    taken: list[int] = []

    def batches() -> Iterator[list[ImportRow]]:
        for first in (1, 8, 15):
            taken.append(first)
            yield [_row(n) for n in range(first, first + 7)]

    interval = sys.getswitchinterval()
    stream = service.create_or_merge_stream(batches(), "lista", PABLO)
    first = next(stream)  # given once batch 1 is being written
    stream.close()

    assert first.count(Outcome.INSERTED) == 7
    assert taken == [1, 8]
    assert queries.stats()["total"] == 14  # batch 1 was in flight: it committed
    assert gc.isenabled()
    assert sys.getswitchinterval() == interval


def test_every_event_of_one_job_shares_its_correlation_id(
    engine: Engine, store: EventStore, clock: FakeClock
) -> None:
    """Live clients hear of a large group of one correlation as one bulk_update (gateway.notices)."""
    service = ContactsService(engine, store, LockPolicy(), DEFAULT_CATALOGUE, clock, batch_size=7)
    start = store.last_position()
    service.create_or_merge([_row(n) for n in range(1, 21)], "lista", PABLO, job_id="job-1")
    service.create_or_merge([_row(n) for n in range(21, 31)], "lista", PABLO, job_id="job-1")
    job = store.read_all(start, 100)
    service.create_or_merge([_row(n) for n in range(31, 36)], "lista", PABLO)
    alone = store.read_all(job[-1].position or 0, 100)
    locked = lock_contact(service, ANA, contact_id_for_phone("+50688000001"), 5)

    assert len(job) == 30
    assert len({e.correlation_id for e in job}) == 1
    assert len({e.correlation_id for e in alone}) == 1
    assert None not in {job[0].correlation_id, alone[0].correlation_id}
    assert job[0].correlation_id != alone[0].correlation_id
    assert store.read_stream(locked.id)[-1].correlation_id is None  # one agent's command


def test_a_batch_brings_back_a_deleted_contact_on_its_old_stream(
    service: ContactsService, store: EventStore, queries: ContactQueries
) -> None:
    gone = create_contact(service, ANA, "8800-0005", name="Borrado")
    delete_contact(service, PABLO, gone.id)

    result = service.create_or_merge([_row(4), _row(5, name="Vuelve")], "lista", LAURA)

    assert [o.outcome for o in result.outcomes] == [Outcome.INSERTED, Outcome.INSERTED]
    back = queries.get(gone.id)
    assert (back.name, back.version) == ("Vuelve", 3)
    assert _types(store, gone.id)[-1] == "contacts.ContactCreated"


def test_a_batch_does_not_overwrite_a_contact_another_agent_locked(
    service: ContactsService, queries: ContactQueries
) -> None:
    contact = create_contact(service, ANA, "8800-0001", name="Ana")
    lock_contact(service, ANA, contact.id)

    result = service.create_or_merge([_row(1, note="Import")], "lista", LAURA)

    assert result.outcomes[0].outcome is Outcome.LOCKED
    assert queries.get(contact.id).note == ""


def test_a_dry_run_batch_answers_what_the_real_one_does_and_writes_nothing(
    service: ContactsService, queries: ContactQueries
) -> None:
    contact = create_contact(service, ANA, "8800-0001", name="Ana")
    lock_contact(service, ANA, contact.id)
    before = queries.get(contact.id).version
    rows = [_row(1, note="Import"), _row(2, name="Nuevo"), _row(3, email="sin-arroba")]

    dry = service.create_or_merge(rows, "lista", LAURA, dry_run=True)

    assert queries.existing_phones(["+50688000002", "+50688000003"]) == set()
    assert queries.get(contact.id).version == before
    real = service.create_or_merge(rows, "lista", LAURA)
    assert [(o.row, o.outcome, o.reason) for o in dry.outcomes] == [
        (o.row, o.outcome, o.reason) for o in real.outcomes
    ]
    assert [o.outcome for o in real.outcomes] == [Outcome.LOCKED, Outcome.INSERTED, Outcome.REJECTED]


def test_agents_may_not_import(service: ContactsService) -> None:
    with pytest.raises(Forbidden):
        service.create_or_merge([_row(1)], "lista", ANA)


def test_contact_ids_are_the_name_based_uuid_of_the_phone() -> None:
    for number in ("+50688123456", "+15551234567", "+50622123456", "+50670001234"):
        assert contact_id_for_phone(number) == str(uuid.uuid5(CONTACTS_NAMESPACE, number))


def test_the_fast_event_encoding_is_the_events_own_encoding(clock: FakeClock) -> None:
    created = ContactCreated(
        contact_id="c",
        at=clock.now,
        phone="8812-3456",
        phone_e164="+50688123456",
        phone_national="8812-3456",
        operator="kolbi",
        name="Ana",
        status="NC",
        note="n",
        email="a@b.cr",
        extra={"ciudad": "Cartago"},
        list_name="l",
        source=Source.GENERATOR,
    )
    locked = ContactLocked(
        contact_id="c",
        at=clock.now,
        locked_by="u",
        locked_by_name="ana",
        locked_until=clock.now,
        duration_minutes=5,
    )

    assert event_data(created) == created.to_data()
    assert event_data(locked) == locked.to_data()


def test_every_contact_row_matches_its_stream_after_mixed_commands(
    service: ContactsService, engine: Engine, store: EventStore, clock: FakeClock
) -> None:
    from contacts.domain import evolve
    from contacts.events import decode_event
    from contacts.projection import ContactProjection

    a = create_contact(service, ANA, "8812-3456", extra={"ciudad": "Heredia"})
    lock_contact(service, ANA, a.id)
    update_contact(service, ANA, a.id, extra={"ciudad": ""}, status="CUELGA", email="x@y.cr")
    service.create_or_merge(
        [_row(1, name="Uno"), ImportRow(row=5, e164="+50688123456", note="imp")], "l", LAURA
    )
    clock.advance(minutes=30)
    service.expire_lock(a.id)

    with engine.connect() as conn:
        states = ContactProjection(DEFAULT_CATALOGUE).load_states(
            conn, [a.id, contact_id_for_phone("+50688000001")]
        )
    for contact_id, from_row in states.items():
        folded = None
        for stored in store.read_stream(contact_id):
            folded = evolve(folded, decode_event(stored.type, stored.data))
        assert folded is not None
        assert from_row == folded.__class__(**{**_fields(folded), "source": from_row.source})


def _fields(state: object) -> dict[str, object]:
    import dataclasses

    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}  # type: ignore[arg-type]


def test_contacts_table_has_one_row_per_live_contact(service: ContactsService, engine: Engine) -> None:
    a = create_contact(service, ANA, "8812-3456")
    create_contact(service, ANA, "8812-3457")
    delete_contact(service, PABLO, a.id)

    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM contacts")).scalar_one()

    assert count == 1


def test_a_bulk_batch_leaves_sqlite_wal_and_full_text_upkeep_as_it_found_them(
    engine: Engine, store: EventStore, clock: FakeClock
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite write-ahead log only")
    service = ContactsService(engine, store, LockPolicy(), DEFAULT_CATALOGUE, clock, batch_size=5)

    service.create_or_merge([_row(n) for n in range(1, 40)], "lista", LAURA)

    held = []
    with engine.connect() as first, engine.connect() as second:
        for conn in (first, second):
            held.append(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())
        automerge = first.exec_driver_sql(
            "SELECT v FROM contacts_search_config WHERE k = 'automerge'"
        ).scalar()
    assert held == [1000, 1000]
    assert automerge == 4


def test_bulk_batches_leave_the_full_text_index_merged_by_levels_and_searchable(
    engine: Engine, store: EventStore, clock: FakeClock, queries: ContactQueries
) -> None:
    """After a bulk no level of the FTS5 index holds enough segments to merge, as automerge leaves it."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite full-text index only")
    service = ContactsService(engine, store, LockPolicy(), DEFAULT_CATALOGUE, clock, batch_size=3)

    for start in range(1, 121, 40):
        rows = [_row(n, name=f"Cliente K{n:04d}Z") for n in range(start, start + 40)]
        service.create_or_merge(rows, "lista", LAURA)

    raw = engine.raw_connection()
    try:
        before = raw.total_changes
        raw.execute(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rank) VALUES ('merge', 2000)")
        merged_more = raw.total_changes - before >= 2
        raw.rollback()
    finally:
        raw.close()
    assert not merged_more
    for n in (1, 60, 120):
        found = queries.list_contacts(ContactFilters(q=f"k{n:04d}z"), limit=5).items
        assert [c.phone for c in found] == [f"88{n:06d}"]


def test_only_uuids_go_into_the_postgres_id_array(engine: Engine) -> None:
    """Ids travel as one ``{...}`` literal cast to ``uuid[]``: braces or quotes must never get in."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL array literal only")
    with engine.connect() as conn, pytest.raises(ValueError, match="uuids"):
        ids_match(conn, ["8c1f0000-0000-0000-0000-000000000000}", '{"x'])


def test_a_bulk_on_postgres_merges_the_trigram_pending_list_beside_its_writes(
    engine: Engine, service: ContactsService, queries: ContactQueries
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL trigram index only")
    service.create_or_merge([_row(n, name=f"Cliente {n}") for n in range(1, 40)], "lista", LAURA)
    projection = ContactProjection(DEFAULT_CATALOGUE)
    merge = sa.text("SELECT gin_clean_pending_list(CAST(:index AS regclass))").bindparams(index=SEARCH_INDEX)

    with projection.bulk_upkeep(engine, merge_every=0.01) as merger:
        assert merger is not None
        deadline = time.monotonic() + 10
        while merger.merged_pages == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        merged_beside = merger.merged_pages
    with engine.begin() as conn:
        projection.prepare_bulk(conn)
        bulk_limit = conn.exec_driver_sql("SHOW gin_pending_list_limit").scalar_one()
        left = conn.execute(merge).scalar_one()
    with engine.connect() as conn:
        limit_after = conn.exec_driver_sql("SHOW gin_pending_list_limit").scalar_one()

    assert merged_beside > 0
    assert left == 0  # what the merger had not merged, settle did
    assert (bulk_limit, limit_after) == ("64MB", "4MB")  # only inside a bulk chunk's transaction
    assert [c.name for c in queries.list_contacts(ContactFilters(q="cliente 17")).items] == ["Cliente 17"]
