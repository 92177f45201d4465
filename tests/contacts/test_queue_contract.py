"""One contract for the work queue's client: in process and over the internal HTTP API, the same answers
and the same typed errors (``QueueEmpty`` with its counts, ``DoNotCall``, ``NotFound``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from contacts_support import ANA, BETO, PABLO, FakeClock, create_contact
from fastapi.testclient import TestClient

from contacts.api import create_app
from contacts.callbacks import CallbackBook
from contacts.campaignbook import CampaignBook
from contacts.campaigns import Reason
from contacts.client import ContactsClient, HttpContactsClient, LocalContactsClient
from contacts.commands import RecordDisposition
from contacts.dnc import DncList
from contacts.domain import LockPolicy
from contacts.errors import (
    CampaignExists,
    CampaignNotFound,
    CampaignNotWorked,
    DoNotCall,
    InvalidInput,
    NotFound,
    QueueEmpty,
)
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.queue import WorkQueue
from contacts.queueclient import HttpQueueClient, LocalQueueClient, QueueClient
from contacts.statuses import DEFAULT_CATALOGUE
from kernel.store import EventStore, create_engine
from system.migrate import upgrade

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@contextmanager
def _system(path: Path, transport: str) -> Iterator[tuple[QueueClient, ContactsClient, FakeClock]]:
    engine = create_engine(f"sqlite:///{path / f'{transport}.db'}")
    upgrade(engine)
    clock = FakeClock(START)
    store = EventStore(engine)
    service = ContactsService(engine, store, LockPolicy(10, 60), DEFAULT_CATALOGUE, clock)
    queries = ContactQueries(engine, store, DEFAULT_CATALOGUE, clock)
    queue = WorkQueue(engine, store, service, DncList(engine), CampaignBook(engine))
    try:
        if transport == "local":
            yield LocalQueueClient(queue, CallbackBook(engine)), LocalContactsClient(service, queries), clock
        else:
            with TestClient(
                create_app(service, queries, queue=queue, callbacks=CallbackBook(engine))
            ) as http:
                contacts = HttpContactsClient(client=http)
                yield HttpQueueClient(contacts), contacts, clock
    finally:
        engine.dispose()


@pytest.mark.parametrize("transport", ["local", "http"])
def test_the_queue_client_answers_alike_on_both_transports(tmp_path: Path, transport: str) -> None:
    with _system(tmp_path, transport) as (queue, contacts, clock):
        with pytest.raises(QueueEmpty, match="importe o cree"):
            queue.next_contact(ANA)
        first = create_contact(contacts, PABLO, "8812-0001")
        listed = create_contact(contacts, PABLO, "8812-0002")
        entry = queue.add_dnc(PABLO, "8812-0002", "pidió no ser llamado", clock.now)
        assert entry.phone_e164 == "+50688120002"
        assert [e.phone_e164 for e in queue.dnc_entries(PABLO)] == ["+50688120002"]
        with pytest.raises(DoNotCall) as refused:
            queue.check_dnc(ANA, "+50688120002")
        assert refused.value.reason == "pidió no ser llamado"

        claim = queue.next_contact(ANA)
        assert claim.contact.id == first.id
        assert claim.reason is Reason.NEVER_TRIED
        assert claim.contact.locked_by == ANA.user_id
        with pytest.raises(QueueEmpty) as empty:
            queue.next_contact(BETO)
        assert empty.value.counts == {
            "contacts": 2,
            "locked": 1,
            "closed_status": 0,
            "dnc": 1,
            "attempts_capped": 0,
            "call_open": 0,
            "in_retry": 0,
            "callback_pending": 0,
        }

        why = queue.eligibility(BETO, listed.id)
        assert [f.reason for f in why.findings] == [Reason.DNC]
        with pytest.raises(NotFound):
            queue.eligibility(BETO, "00000000-0000-4000-8000-000000000000")
        assert queue.remove_dnc(PABLO, "+50688120002", "", clock.now + timedelta(minutes=1))
        assert not queue.remove_dnc(PABLO, "+50688120002", "", clock.now + timedelta(minutes=1))
        assert [c.name for c in queue.campaigns(ANA)] == ["General"]

        callback_at = clock.now + timedelta(hours=3)
        wrap_up = RecordDisposition(
            caller=ANA, now=clock.now, contact_id=first.id, outcome="callback", callback_at=callback_at
        )
        contacts.execute(wrap_up)
        assert [(c.contact_id, c.scope, c.due_at) for c in queue.callbacks(ANA)] == [
            (first.id, "personal", callback_at)
        ]
        assert queue.callbacks(BETO) == []
        assert queue.callbacks(BETO, mine=False) == []
        assert len(queue.callbacks(PABLO, mine=False)) == 1
        assert queue.callbacks(ANA, due_before=clock.now) == []


@pytest.mark.parametrize("transport", ["local", "http"])
def test_campaign_rules_are_kept_and_applied_alike_on_both_transports(tmp_path: Path, transport: str) -> None:
    with _system(tmp_path, transport) as (queue, contacts, clock):
        assert [(c.id, c.name, c.active) for c in queue.campaigns(PABLO)] == [("general", "General", True)]
        made = queue.save_campaign(
            PABLO,
            clock.now,
            None,
            {"name": "Renovaciones", "max_attempts": 2, "closed_statuses": ["interesado"]},
        )
        assert (made.id, made.max_attempts, made.closed_statuses) == ("renovaciones", 2, ("INTERESADO",))
        with pytest.raises(CampaignExists):
            queue.save_campaign(PABLO, clock.now, None, {"name": "Renovaciones"})
        with pytest.raises(CampaignNotFound):
            queue.next_contact(ANA, "otra")
        with pytest.raises(InvalidInput):
            queue.save_campaign(PABLO, clock.now, "general", {"max_attempts": 0})

        interested = create_contact(contacts, PABLO, "8812-0005", status="INTERESADO")
        assert not queue.eligibility(ANA, interested.id, "renovaciones").eligible
        assert queue.eligibility(ANA, interested.id).eligible

        queue.save_campaign(PABLO, clock.now, "renovaciones", {"active": False})
        with pytest.raises(QueueEmpty, match="inactiva"):
            queue.next_contact(ANA, "renovaciones")
        assert queue.next_contact(ANA).contact.id == interested.id


@pytest.mark.parametrize("transport", ["local", "http"])
def test_numbers_are_listed_in_bulk_and_looked_up_alike_on_both_transports(
    tmp_path: Path, transport: str
) -> None:
    with _system(tmp_path, transport) as (queue, contacts, clock):
        queue.add_dnc(PABLO, "8812-0003", "ya estaba", clock.now)

        added = queue.add_dnc_many(
            PABLO,
            [("+50688120001", "lista"), ("8812 0002", ""), ("+50688120003", "otra"), ("88120001", "x")],
            clock.now,
        )

        assert added == ["+50688120001", "+50688120002"]
        reasons = {e.phone_e164: e.reason for e in queue.dnc_entries(PABLO)}
        assert reasons == {"+50688120001": "lista", "+50688120002": "", "+50688120003": "ya estaba"}
        asked = ["+50688120001", "+50688120003", "+50688120009"]
        assert contacts.dnc_listed(PABLO, asked) == {"+50688120001", "+50688120003"}
        with pytest.raises(InvalidInput):
            queue.add_dnc_many(PABLO, [("123", "corto")], clock.now)
        assert len(queue.dnc_entries(PABLO)) == 3


@pytest.mark.parametrize("transport", ["local", "http"])
def test_lists_teams_hours_archive_and_progress_travel_alike_on_both_transports(
    tmp_path: Path, transport: str
) -> None:
    with _system(tmp_path, transport) as (queue, contacts, clock):
        hours = {"mon": [["08:00", "17:00"]]}
        made = queue.save_campaign(
            PABLO,
            clock.now,
            None,
            {"name": "Sur", "lists": ["sur"], "teams": ["sur"], "calling_hours": hours, "max_per_day": 1},
        )
        assert (made.lists, made.teams, made.max_per_day) == (("sur",), ("sur",), 1)
        assert made.to_data()["calling_hours"] == hours
        south = create_contact(contacts, PABLO, "8812-0101", list_name="sur")
        with pytest.raises(CampaignNotWorked):
            queue.next_contact(ANA, "sur")
        why = queue.eligibility(ANA, south.id, "sur")
        assert [f.reason for f in why.findings] == [Reason.NOT_YOUR_TEAM, Reason.OUTSIDE_HOURS]
        assert queue.progress(PABLO, "sur").to_data() == {
            "campaign": "sur",
            "total": 1,
            "never_tried": 1,
            "in_retry": 0,
            "reached": 0,
            "closed": 0,
            "dnc": 0,
            "capped": 0,
            "locked": 0,
        }
        with pytest.raises(CampaignNotFound):
            queue.progress(PABLO, "nada")

        queue.save_campaign(PABLO, clock.now, "sur", {"archived": True})
        assert [c.id for c in queue.campaigns(PABLO)] == ["general"]
        assert [c.id for c in queue.campaigns(PABLO, archived=True)] == ["general", "sur"]
