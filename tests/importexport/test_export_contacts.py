"""Exporting contacts through the real contacts service: files read back as a user's spreadsheet would."""

from __future__ import annotations

import gc
import io
import threading
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from conftest import ContactsSystem

from contacts.asks import GetContactByPhone
from contacts.commands import Caller, ImportRow, LockContact, Source
from contacts.views import ContactFilters
from importexport.export import (
    EXPORT_JOB,
    ExportRequest,
    export_job,
    export_params,
    stream_export,
    write_export,
)
from importexport.pipeline import ImportOptions, run_import
from importexport.writers import CONTACT_HEADERS
from kernel.jobqueue import JobExecutor, JobState, JobStore
from kernel.roles import Role

NOW = datetime(2000, 1, 1, tzinfo=UTC)  # the service stamps each command with its own clock
AGENT = Caller(user_id="u-agent", username="ana.agente", role=Role.AGENT)


def seed(system: ContactsSystem, lead: Caller) -> None:
    """Contacts over three operators, two lists, several statuses, and notes that look like formulas."""
    rows = [
        ImportRow(row=2, e164="+50688123456", national="8812-3456", phone="8812-3456", name="Ana Pérez",
                  note='=HYPERLINK("http://x","clic")', status="INTERESADO", operator="kolbi"),
        ImportRow(row=3, e164="+50660123456", national="6012-3456", phone="6012-3456", name="+Luis",
                  note="-5 puntos", status="NC", operator="telefonica"),
        ImportRow(row=4, e164="+50670123456", national="7012-3456", phone="7012-3456", name="@María",
                  note="\tcon tabulador", status="NC", operator="claro"),
        ImportRow(row=5, e164="+12025550182", national="(202) 555-0182", phone="+1 202 555 0182",
                  name="Washington", note="", status=""),
    ]  # fmt: skip
    system.client.create_or_merge(rows[:3], "marzo", lead, source=Source.IMPORT)
    system.client.create_or_merge(rows[3:], "abril", lead, source=Source.IMPORT)
    contact_id = system.client.ask(GetContactByPhone(phone="6012-3456"), AGENT).id
    system.client.execute(LockContact(caller=AGENT, now=NOW, contact_id=contact_id, duration_minutes=30))


def test_an_xlsx_export_has_spanish_headers_and_no_cell_that_runs_a_formula(
    system: ContactsSystem, lead: Caller, tmp_path: Path
) -> None:
    seed(system, lead)
    store = JobStore(system.engine)
    executor = JobExecutor(
        store,
        {EXPORT_JOB: lambda context: export_job(context, contacts=system.client, exports_dir=tmp_path)},
        None,
        "jobs",
    )
    job = store.create(EXPORT_JOB, export_params(ExportRequest("xlsx"), lead), lead.user_id)

    executor.run(job.id)

    done = store.get(job.id)
    assert done is not None
    assert done.state is JobState.FINISHED
    assert done.report is not None
    assert (done.report["rows"], done.done, done.total) == (4, 4, 4)
    assert done.report["file"].startswith("contactos_")
    assert done.report["download"] == f"/jobs/{job.id}/download"
    book = openpyxl.load_workbook(tmp_path / done.report["file"])
    sheet = book.active
    assert sheet is not None
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert all(cell.data_type != "f" for cell in cells)
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert tuple(values[0]) == CONTACT_HEADERS
    by_phone = {row[1]: row for row in values[1:]}
    assert by_phone["8812-3456"][2:5] == ["Ana Pérez", "INTERESADO", '\'=HYPERLINK("http://x","clic")']
    assert by_phone["6012-3456"][2] == "'+Luis"
    assert by_phone["6012-3456"][4] == "'-5 puntos"
    assert by_phone["6012-3456"][5] == "ana.agente"  # the lock holder, while the lock holds
    assert by_phone["7012-3456"][2] == "'@María"
    assert by_phone["'+12025550182"][2] == "Washington"


def test_filters_pick_contacts_by_status_list_and_operator(system: ContactsSystem, lead: Caller) -> None:
    seed(system, lead)

    def phones(**filters: Any) -> list[str]:
        return sorted(row.phone for row in system.client.export_contacts(lead, ContactFilters(**filters)))

    assert phones(statuses=("NC",)) == ["6012-3456", "7012-3456"]
    assert phones(statuses=("NC", "interesado")) == ["6012-3456", "7012-3456", "8812-3456"]
    assert phones(list_name="abril") == ["+12025550182"]
    assert phones(operator="claro") == ["7012-3456"]
    assert phones(list_name="marzo", statuses=("NC",), operator="telefonica") == ["6012-3456"]


@pytest.mark.parametrize("export_format", ["xlsx", "csv"])
def test_an_exported_file_imported_again_changes_nothing(
    system: ContactsSystem, lead: Caller, tmp_path: Path, export_format: str
) -> None:
    seed(system, lead)
    path = tmp_path / f"contactos.{export_format}"
    write_export(path, system.client.export_contacts(lead), export_format)
    events = system.events()

    contacts = system.contacts()

    report = run_import(path, system.client, lead, ImportOptions(list_name="reimport"))

    # Every field comes back as it was; what the import records is only that the contacts are now in its
    # list too (a contact may be in several lists): ``listed``, not ``updated`` — not the one another user
    # holds locked.
    outcomes = (report.total, report.inserted, report.rejected, report.updated, len(report.locked))
    assert outcomes == (4, 0, 0, 0, 1)
    assert (report.listed, report.unchanged, report.to_data()["listed"]) == (3, 0, 3)
    assert system.contacts() == contacts
    listed = system.store.read_all(after_position=events, limit=100)
    assert [e.type for e in listed] == ["contacts.ContactListed"] * 3


def test_a_streamed_export_is_the_same_file_and_stops_when_its_reader_leaves(
    system: ContactsSystem, lead: Caller
) -> None:
    seed(system, lead)
    plain = io.BytesIO()
    write_export(plain, system.client.export_contacts(lead), "csv")

    streamed = b"".join(stream_export(system.client.export_contacts(lead), "csv"))
    zipped = b"".join(stream_export(system.client.export_contacts(lead), "xlsx"))

    assert streamed == plain.getvalue()
    book = openpyxl.load_workbook(io.BytesIO(zipped), read_only=True)
    assert book.active is not None
    assert sum(1 for _ in book.active.iter_rows()) == 5
    assert zipfile.ZipFile(io.BytesIO(zipped)).testzip() is None

    many = ([f"id-{i}", f"8812-{i % 10_000:04d}", "nombre " * 20] for i in range(200_000))
    chunks = stream_export(many, "csv")
    next(chunks)
    before = threading.active_count()
    chunks.close()
    gc.collect()
    assert threading.active_count() == before - 1  # the writer thread ended with the reader
