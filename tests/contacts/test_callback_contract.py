"""The callbacks and the status machine through both transports of the contacts service's contract
(in process and over its internal HTTP API): the same answers and the same typed errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from contacts_support import ANA, BETO, LAURA, PABLO, FakeClock, create_contact, lock_contact
from fastapi.testclient import TestClient

from contacts.api import create_app
from contacts.callbacks import CallbackBook
from contacts.campaignbook import CampaignBook
from contacts.client import ContactsClient, HttpContactsClient, LocalContactsClient
from contacts.commands import (
    CallbackScope,
    CancelCallback,
    ChangeStatus,
    RecordDisposition,
    RescheduleCallback,
)
from contacts.dnc import DncList
from contacts.domain import LockPolicy
from contacts.errors import CallbackNotFound, CallbackRequired, Forbidden, TransitionRefused
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
    book = CallbackBook(engine)
    try:
        if transport == "local":
            yield LocalQueueClient(queue, book), LocalContactsClient(service, queries), clock
        else:
            with TestClient(create_app(service, queries, queue=queue, callbacks=book)) as http:
                contacts = HttpContactsClient(client=http)
                yield HttpQueueClient(contacts), contacts, clock
    finally:
        engine.dispose()


@pytest.mark.parametrize("transport", ["local", "http"])
def test_callbacks_are_set_listed_moved_and_cancelled_alike_on_both_transports(
    tmp_path: Path, transport: str
) -> None:
    with _system(tmp_path, transport) as (queue, contacts, clock):
        contact = create_contact(contacts, ANA, "8812-0101", name="Rosa")
        lock_contact(contacts, ANA, contact.id)
        due = clock.now + timedelta(hours=2)
        wrap_up = RecordDisposition(
            caller=ANA,
            now=clock.now,
            contact_id=contact.id,
            outcome="later",
            status="PENDIENTE",
            callback_at=due,
        )
        contacts.execute(wrap_up)

        [mine] = queue.callbacks(ANA)
        assert (mine.contact_id, mine.name, mine.user_id, mine.team, mine.scope, mine.due_at) == (
            contact.id,
            "Rosa",
            ANA.user_id,
            "norte",
            "personal",
            due,
        )
        assert mine.callback_id.startswith(f"{contact.id}.")
        assert mine.reminded_at is None
        assert queue.callbacks(BETO) == []
        assert [cb.callback_id for cb in queue.callbacks(LAURA, mine=False)] == [mine.callback_id]
        assert [cb.callback_id for cb in queue.callbacks(PABLO, team="norte")] == [mine.callback_id]
        assert queue.callbacks(PABLO, team="sur") == []
        assert queue.callbacks(ANA, due_before=clock.now) == []
        with pytest.raises(Forbidden, match="equipo sur"):
            queue.callbacks(LAURA, team="sur")

        move = RescheduleCallback(
            caller=LAURA,
            now=clock.now,
            contact_id=contact.id,
            callback_id=mine.callback_id,
            scope=CallbackScope.SHARED,
            assignee_id=BETO.user_id,
            assignee_name="beto",
            assignee_team="norte",
        )
        contacts.execute(move)
        [moved] = queue.callbacks(ANA)
        assert (moved.callback_id, moved.user_id, moved.username, moved.scope) == (
            mine.callback_id,
            BETO.user_id,
            "beto",
            "shared",
        )
        assert queue.callbacks(PABLO, mine=False, contact_id=contact.id) == [moved]
        assert queue.callbacks(PABLO, mine=False, contact_id="00000000-0000-4000-8000-000000000000") == []
        with pytest.raises(Forbidden, match="cancelar"):
            contacts.execute(
                CancelCallback(caller=ANA, now=clock.now, contact_id=contact.id, callback_id=mine.callback_id)
            )
        contacts.execute(
            CancelCallback(caller=BETO, now=clock.now, contact_id=contact.id, callback_id=mine.callback_id)
        )
        assert queue.callbacks(PABLO, mine=False) == []
        with pytest.raises(CallbackNotFound) as gone:
            contacts.execute(
                CancelCallback(
                    caller=BETO, now=clock.now, contact_id=contact.id, callback_id=mine.callback_id
                )
            )
        assert gone.value.callback_id == mine.callback_id


@pytest.mark.parametrize("transport", ["local", "http"])
def test_the_status_machine_refuses_alike_on_both_transports(tmp_path: Path, transport: str) -> None:
    with _system(tmp_path, transport) as (_, contacts, clock):
        contact = create_contact(contacts, PABLO, "8812-0102", status="COMPLETADA")
        with pytest.raises(TransitionRefused) as refused:
            contacts.execute(
                ChangeStatus(caller=ANA, now=clock.now, contact_id=contact.id, status="SIN_GESTIONAR")
            )
        assert (refused.value.old, refused.value.new, refused.value.role, refused.value.needed) == (
            "COMPLETADA",
            "SIN_GESTIONAR",
            "Agent",
            "TeamLead",
        )
        assert "de COMPLETADA a SIN_GESTIONAR" in refused.value.message
        reopened = contacts.execute(
            ChangeStatus(caller=LAURA, now=clock.now, contact_id=contact.id, status="SIN_GESTIONAR")
        )
        assert reopened is not None
        assert reopened.status == "SIN_GESTIONAR"

        with pytest.raises(CallbackRequired) as required:
            contacts.execute(
                RecordDisposition(
                    caller=ANA, now=clock.now, contact_id=contact.id, outcome="x", status="PENDIENTE"
                )
            )
        assert required.value.status == "PENDIENTE"
