"""The work queue on SQLite and PostgreSQL: who is offered next, who never is, and why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from contacts_support import (
    ANA,
    BETO,
    PABLO,
    FakeClock,
    change_status,
    create_contact,
    end_call,
    lock_contact,
)
from contacts_support import request_call as request
from sqlalchemy.engine import Engine

from contacts.callbacks import pending_callbacks
from contacts.campaignbook import CampaignBook
from contacts.campaigns import Reason
from contacts.commands import CallbackScope, Caller, CallOutcome, RecordDisposition
from contacts.dnc import DncList
from contacts.errors import DoNotCall, InvalidInput, Locked, QueueEmpty
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.queue import WorkQueue
from kernel.store import EventStore


@pytest.fixture
def queue(engine: Engine, store: EventStore, service: ContactsService) -> WorkQueue:
    return WorkQueue(engine, store, service, DncList(engine), CampaignBook(engine))


def _called(service: ContactsService, contact_id: str, call_id: str, outcome: CallOutcome) -> None:
    request(service, ANA, contact_id, call_id)
    end_call(service, ANA, contact_id, call_id, outcome)


def test_next_contact_is_locked_to_the_agent_and_never_given_twice(
    queue: WorkQueue, service: ContactsService
) -> None:
    first = create_contact(service, PABLO, "8812-0001")
    second = create_contact(service, PABLO, "8812-0002")

    ana = queue.next_contact(ANA)
    beto = queue.next_contact(BETO)

    assert {ana.contact.id, beto.contact.id} == {first.id, second.id}
    assert ana.contact.locked_by == ANA.user_id
    assert beto.contact.locked_by == BETO.user_id
    assert ana.reason is Reason.NEVER_TRIED
    with pytest.raises(QueueEmpty) as empty:
        queue.next_contact(ANA)
    assert empty.value.counts["locked"] == 2
    assert "2 bloqueados" in empty.value.message


def test_never_tried_first_then_by_status_priority_then_oldest(
    queue: WorkQueue, service: ContactsService, clock: FakeClock
) -> None:
    tried = create_contact(service, PABLO, "8812-0010")
    _called(service, tried.id, "c1", CallOutcome.BUSY)
    clock.advance(hours=1)
    old = create_contact(service, PABLO, "8812-0011")
    clock.advance(minutes=1)
    newer = create_contact(service, PABLO, "8812-0012")
    urgent = create_contact(service, PABLO, "8812-0013", status="NC")

    order = [queue.next_contact(ANA) for _ in range(4)]

    assert [c.contact.id for c in order] == [urgent.id, old.id, newer.id, tried.id]
    assert [c.reason for c in order][-1] is Reason.RETRY_DUE
    assert order[-1].attempts == 1


def test_retry_delay_attempt_cap_closed_status_and_dnc_keep_contacts_out(
    queue: WorkQueue, service: ContactsService, clock: FakeClock
) -> None:
    waiting = create_contact(service, PABLO, "8812-0020")
    _called(service, waiting.id, "w1", CallOutcome.NO_ANSWER)
    closed = create_contact(service, PABLO, "8812-0021")
    change_status(service, PABLO, closed.id, "COMPLETADA")
    listed = create_contact(service, PABLO, "8812-0022")
    queue.dnc.add("8812-0022", "pidió no ser llamado", PABLO, clock.now)

    with pytest.raises(QueueEmpty) as empty:
        queue.next_contact(ANA)

    assert empty.value.counts["in_retry"] == 1
    assert empty.value.counts["closed_status"] == 1
    assert empty.value.counts["dnc"] == 1
    assert empty.value.until == clock.now + timedelta(hours=2)
    why = {f.reason for f in queue.eligibility(ANA, listed.id).findings}
    assert why == {Reason.DNC}
    assert {f.reason for f in queue.eligibility(ANA, closed.id).findings} == {Reason.CLOSED_STATUS}
    retry = queue.eligibility(ANA, waiting.id)
    assert not retry.eligible
    assert retry.findings[0].until == clock.now + timedelta(hours=2)

    clock.advance(hours=2, seconds=1)
    assert queue.eligibility(ANA, waiting.id).eligible
    assert queue.next_contact(ANA).contact.id == waiting.id


def test_a_contact_past_its_attempt_cap_is_never_offered(
    queue: WorkQueue, service: ContactsService, clock: FakeClock
) -> None:
    contact = create_contact(service, PABLO, "8812-0030")
    for n in range(queue.campaigns.get(None).max_attempts):
        _called(service, contact.id, f"a{n}", CallOutcome.FAILED)
        clock.advance(days=1)

    with pytest.raises(QueueEmpty) as empty:
        queue.next_contact(ANA)

    assert empty.value.counts["attempts_capped"] == 1
    found = queue.eligibility(ANA, contact.id)
    assert [f.reason for f in found.findings] == [Reason.ATTEMPTS_CAPPED]
    assert found.attempts == queue.campaigns.get(None).max_attempts


def test_an_empty_install_says_there_is_nothing_to_call(queue: WorkQueue) -> None:
    with pytest.raises(QueueEmpty, match="importe o cree contactos"):
        queue.next_contact(ANA)


def test_eligibility_names_the_holder_of_a_lock(queue: WorkQueue, service: ContactsService) -> None:
    contact = create_contact(service, PABLO, "8812-0040")
    lock_contact(service, BETO, contact.id)

    found = queue.eligibility(ANA, contact.id)

    assert not found.eligible
    assert found.findings[0].reason is Reason.LOCKED
    assert "beto" in found.findings[0].message


def test_disposition_records_outcome_status_note_callback_and_releases_the_lock(
    queue: WorkQueue, service: ContactsService, queries: ContactQueries, clock: FakeClock
) -> None:
    create_contact(service, PABLO, "8812-0050")
    contact = queue.next_contact(ANA).contact
    callback = clock.now + timedelta(days=1)

    after = service.handle(
        RecordDisposition(
            caller=ANA,
            now=clock.now,
            contact_id=contact.id,
            outcome="callback",
            status="interesado",
            note="Llamar mañana a las 10",
            callback_at=callback,
            callback_scope=CallbackScope.SHARED,
        )
    )

    assert after is not None
    assert after.status == "INTERESADO"
    assert after.note == "Llamar mañana a las 10"
    assert after.locked_by is None
    rows = queries.history(contact.id)
    disposition = next(r for r in rows if r.field == "disposition")
    assert disposition.new == "callback"
    assert disposition.detail["callback_at"] == callback.isoformat()
    assert disposition.detail["callback_scope"] == "shared"


def test_disposition_is_refused_while_someone_else_holds_the_contact(
    queue: WorkQueue, service: ContactsService, clock: FakeClock
) -> None:
    create_contact(service, PABLO, "8812-0060")
    contact = queue.next_contact(BETO).contact

    with pytest.raises(Locked):
        service.handle(RecordDisposition(caller=ANA, now=clock.now, contact_id=contact.id, outcome="sale"))
    with pytest.raises(InvalidInput):
        service.handle(RecordDisposition(caller=BETO, now=clock.now, contact_id=contact.id, outcome="¿?"))


def test_dnc_list_adds_removes_and_audits(queue: WorkQueue, clock: FakeClock) -> None:
    entry = queue.dnc.add("8812 3456", "Pidió no ser llamado", PABLO, clock.now)
    assert entry.phone_e164 == "+50688123456"
    with pytest.raises(DoNotCall):
        queue.dnc.check("+50688123456")
    assert [e.phone_e164 for e in queue.dnc.entries()] == ["+50688123456"]

    assert queue.dnc.remove("+506 8812-3456", "error de captura", PABLO, clock.now)
    assert not queue.dnc.remove("+506 8812-3456", "", PABLO, clock.now)
    queue.dnc.check("+50688123456")
    assert [c["action"] for c in queue.dnc.changes("+50688123456")] == ["added", "removed"]


def _wrap_up(service: ContactsService, caller: Caller, contact_id: str, **fields: Any) -> None:
    service.handle(RecordDisposition(caller=caller, now=service.now(), contact_id=contact_id, **fields))


def test_due_callbacks_come_first_personal_ones_only_to_their_agent(
    queue: WorkQueue, service: ContactsService, engine: Engine, clock: FakeClock
) -> None:
    fresh = create_contact(service, PABLO, "8812-0070", status="NC")
    mine = create_contact(service, PABLO, "8812-0071")
    shared = create_contact(service, PABLO, "8812-0072")
    later = clock.now + timedelta(minutes=5)
    for contact, scope in ((mine, CallbackScope.PERSONAL), (shared, CallbackScope.SHARED)):
        lock_contact(service, ANA, contact.id)
        _wrap_up(service, ANA, contact.id, outcome="callback", callback_at=later, callback_scope=scope)
    assert [c.contact_id for c in pending_callbacks(engine, user_id=BETO.user_id)] == [shared.id]

    beto_before = queue.next_contact(BETO)
    assert beto_before.contact.id == fresh.id
    assert {f.reason for f in queue.eligibility(BETO, mine.id).findings} == {Reason.CALLBACK_PENDING}
    with pytest.raises(QueueEmpty) as empty:
        queue.next_contact(BETO)
    assert empty.value.counts["callback_pending"] == 2
    assert empty.value.until == later

    clock.advance(minutes=5)  # the callbacks are due; beto still holds the fresh contact
    assert queue.next_contact(BETO).contact.id == shared.id
    with pytest.raises(QueueEmpty):
        queue.next_contact(BETO)
    ana = queue.next_contact(ANA)
    assert ana.contact.id == mine.id
    assert ana.reason is Reason.CALLBACK_DUE
    assert "personal de ana" in ana.message

    _wrap_up(service, ANA, mine.id, outcome="sale", status="COMPLETADA")
    assert [c.contact_id for c in pending_callbacks(engine)] == [shared.id]
