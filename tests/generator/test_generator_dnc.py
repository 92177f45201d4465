"""The generator never saves a number on the do-not-call list: it is skipped, replaced and counted.

Against the real contacts service on SQLite and PostgreSQL, in process and through its internal HTTP API
(what ``callmanager serve generator`` uses in distributed mode).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from contacts.api import create_app
from contacts.asks import GetContactByPhone
from contacts.client import ContactsClient, HttpContactsClient, LocalContactsClient
from contacts.commands import Caller
from contacts.dnc import DncList
from contacts.domain import LockPolicy
from contacts.errors import NotFound
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.statuses import DEFAULT_CATALOGUE
from generator.batch import GenerationRequest, run_generation, save_numbers
from kernel.roles import Role
from kernel.store import EventStore, create_engine
from system.migrate import upgrade

WEIGHTS = {"kolbi": 40.0, "telefonica": 35.0, "claro": 25.0}
MANAGER = Caller(user_id="u-pm", username="paula", role=Role.PROJECT_MANAGER)
NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


class Contacts:
    """The contacts service on a migrated database: its do-not-call list and the client to save through."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        upgrade(self.engine)
        store = EventStore(self.engine)
        self.service = ContactsService(self.engine, store, LockPolicy(10, 60), DEFAULT_CATALOGUE)
        self.queries = ContactQueries(self.engine, store)
        self.dnc = DncList(self.engine)
        self.local = LocalContactsClient(self.service, self.queries)


@pytest.fixture(params=["embedded", "http"])
def contacts(request: pytest.FixtureRequest, database_url: str) -> Iterator[tuple[Contacts, ContactsClient]]:
    built = Contacts(database_url)
    try:
        if request.param == "embedded":
            yield built, built.local
        else:
            with TestClient(create_app(built.service, built.queries)) as http:
                yield built, HttpContactsClient(client=http)
    finally:
        built.engine.dispose()


def test_listed_numbers_are_skipped_replaced_and_counted(contacts: tuple[Contacts, ContactsClient]) -> None:
    system, client = contacts
    # The same seed draws the same numbers first: list a fifth of them before saving.
    drawn = run_generation(GenerationRequest(300, seed=11), WEIGHTS).phones()
    listed = [phone["e164"] for phone in drawn[::5]]
    for e164 in listed:
        system.dnc.add(e164, "pidió no ser llamado", MANAGER, NOW)

    run = run_generation(
        GenerationRequest(300, save=True, seed=11, list_name="gen-dnc"), WEIGHTS, client, MANAGER
    )

    saved = {phone["e164"] for phone in run.phones()}
    assert len(saved) == 300
    assert saved.isdisjoint(listed)
    summary = run.summary()
    assert (summary["saved"], summary["dnc_skipped"], summary["dnc_refused"]) == (300, len(listed), 0)
    assert system.queries.stats()["total"] == 300
    for e164 in listed[:5]:
        with pytest.raises(NotFound):
            system.local.ask(GetContactByPhone(phone=e164), MANAGER)


def test_a_number_listed_between_the_draw_and_the_save_is_refused_by_contacts(
    contacts: tuple[Contacts, ContactsClient],
) -> None:
    system, client = contacts
    run = run_generation(GenerationRequest(20, seed=5), WEIGHTS)
    late = run.phones()[3]["e164"]
    system.dnc.add(late, "", MANAGER, NOW)

    report = save_numbers(run.result, client, MANAGER, "gen-tarde")

    assert (report.inserted, report.dnc) == (19, 1)
    assert report.to_data()["dnc_refused"] == 1
    with pytest.raises(NotFound):
        system.local.ask(GetContactByPhone(phone=late), MANAGER)
