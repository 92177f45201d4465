"""Importing against the do-not-call list: listed rows come back ``dnc``, are not saved, and are reported.

On SQLite and PostgreSQL, real and dry run, in process (embedded) and through the contacts service's
internal HTTP API (the contract the distributed importexport worker uses).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import ContactsSystem, MakeXlsx
from fastapi.testclient import TestClient

from contacts.api import create_app
from contacts.asks import GetContact, GetContactByPhone
from contacts.client import ContactsClient, HttpContactsClient
from contacts.commands import Caller, CreateContact
from contacts.dnc import DncList
from contacts.domain import DNC_ROW_REASON
from contacts.errors import NotFound
from contacts.queries import ContactQueries
from importexport.pipeline import ImportOptions, import_records, run_import
from importexport.report import write_report
from kernel.roles import Role

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
PABLO = Caller(user_id="u-pm", username="pablo", role=Role.PROJECT_MANAGER)


@pytest.fixture(params=["embedded", "http"])
def client(request: pytest.FixtureRequest, system: ContactsSystem) -> Iterator[ContactsClient]:
    """The client an import writes through: in process, or the contacts service's HTTP API."""
    if request.param == "embedded":
        yield system.client
        return
    queries = ContactQueries(system.engine, system.store)
    with TestClient(create_app(system.service, queries)) as http:
        yield HttpContactsClient(client=http)


@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry_run"])
@pytest.mark.usefixtures("reading")
def test_rows_on_the_dnc_list_are_not_saved_and_are_reported_as_dnc(
    system: ContactsSystem,
    client: ContactsClient,
    lead: Caller,
    make_xlsx: MakeXlsx,
    tmp_path: Path,
    dry_run: bool,
) -> None:
    dnc = DncList(system.engine)
    dnc.add("8812-0002", "pidió no ser llamado", PABLO, NOW)
    dnc.add("+506 6012 0004", "abogado", PABLO, NOW)
    existing = system.client.execute(CreateContact(caller=lead, now=NOW, phone="6012-0004", name="Vieja"))
    assert existing is not None
    events = system.events()
    path = make_xlsx(
        [
            ["Teléfono", "Nombre"],
            ["8812-0001", "Ana"],
            ["88120002", "Beto"],  # listed, typed another way
            ["8812-0003", "Carla"],
            ["6012-0004", "Nombre nuevo"],  # listed, and already a contact: left alone
            ["123", "Corto"],
        ]
    )

    report = run_import(path, client, lead, ImportOptions(list_name="enero", dry_run=dry_run))

    assert (report.total, report.inserted, report.rejected) == (5, 2, 1)
    assert [(issue.row, issue.phone, issue.message) for issue in report.dnc] == [
        (3, "88120002", DNC_ROW_REASON),
        (5, "6012-0004", DNC_ROW_REASON),
    ]
    data = report.to_data()
    assert data["dnc"] == 2
    assert [row["row"] for row in data["dnc_rows"]] == [3, 5]
    written = tmp_path / "informe.csv"
    write_report(report, written)
    with written.open(encoding="utf-8-sig", newline="") as file:
        lines = list(csv.reader(file, delimiter=";"))[1:]
    assert [(line[0], line[2]) for line in lines] == [
        ("3", "no llamar"),
        ("5", "no llamar"),
        ("6", "rechazada"),
    ]
    assert system.client.ask(GetContact(contact_id=existing.id), lead).name == "Vieja"
    with pytest.raises(NotFound):
        system.client.ask(GetContactByPhone(phone="8812-0002"), lead)
    if dry_run:
        assert system.events() == events
        assert {entry["row"]: entry["action"] for entry in data["preview"]} == {
            2: "nueva",
            3: "no llamar",
            4: "nueva",
            5: "no llamar",
            6: "rechazada",
        }
    else:
        assert system.client.ask(GetContactByPhone(phone="8812-0003"), lead).name == "Carla"


def test_a_number_listed_after_a_first_import_is_left_alone_by_the_next(
    system: ContactsSystem, client: ContactsClient, lead: Caller
) -> None:
    first = import_records([{"phone": "8812-0101", "name": "Ana"}], client, lead)
    DncList(system.engine).add("8812-0101", "", PABLO, NOW)

    again = import_records([{"phone": "8812-0101", "name": "Ana María"}], client, lead)

    assert (first.inserted, again.inserted, again.updated, len(again.dnc)) == (1, 0, 0, 1)
    assert system.client.ask(GetContactByPhone(phone="8812-0101"), lead).name == "Ana"


def test_a_large_import_looks_the_list_up_per_batch_and_finds_every_listed_row(
    system: ContactsSystem, client: ContactsClient, lead: Caller, make_xlsx: MakeXlsx
) -> None:
    numbers = [f"8{i // 10_000 + 400:03d}-{i % 10_000:04d}" for i in range(3_000)]
    dnc = DncList(system.engine)
    listed = numbers[::7]
    for number in listed:
        dnc.add(number, "", PABLO, NOW)
    path = make_xlsx([["Teléfono"], *([number] for number in numbers)])

    report = run_import(path, client, lead, ImportOptions(batch_rows=1_000))

    assert (report.inserted, len(report.dnc)) == (len(numbers) - len(listed), len(listed))
    assert [issue.phone for issue in report.dnc] == listed
    assert len(system.contacts()) == len(numbers) - len(listed)
