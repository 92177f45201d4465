"""The import pipeline through the real contacts service, on SQLite and PostgreSQL.

Files are made in the tests (openpyxl, text in several encodings) or come from the committed corpus;
every assertion is about contacts as users would see them, the report, or the events written.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Generator, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import openpyxl
import pytest
from conftest import ContactsSystem, MakeText, MakeXlsx, contacts_system

from contacts.asks import GetContact, GetContactByPhone, Query
from contacts.client import ContactsClient, LocalContactsClient
from contacts.commands import BatchResult, Caller, CreateContact, ImportRow, LockContact, MergeMode, Source
from contacts.errors import Forbidden
from importexport.pipeline import (
    IMPORT_JOB,
    ImportOptions,
    import_job,
    import_params,
    import_records,
    reader_limits,
    run_import,
)
from importexport.spreadsheets import FileRejected
from kernel.jobqueue import Job, JobExecutor, JobState, JobStore
from kernel.roles import Role

R = TypeVar("R")

NOW = datetime(2000, 1, 1, tzinfo=UTC)  # the service stamps each command with its own clock
HEADERS = ["Teléfono", "Nombre", "Observaciones", "Estado", "Correo electrónico", "Cédula"]


def phones(count: int, start: int = 0) -> list[str]:
    """Distinct valid Costa Rican mobiles as a user types them (``8xxx-xxxx``)."""
    return [f"8{(start + i) // 10_000 + 300:03d}-{(start + i) % 10_000:04d}" for i in range(count)]


@pytest.mark.usefixtures("reading")
def test_an_xlsx_with_spanish_headers_floats_blanks_and_formulas_becomes_contacts(
    system: ContactsSystem, lead: Caller, make_xlsx: MakeXlsx
) -> None:
    path = make_xlsx(
        [
            ["Lista de clientes de marzo"],
            HEADERS,
            [
                88123456.0,
                "Ana Pérez",
                "llamar después de las 5",
                "interesado",
                "ana@example.cr",
                "1-1111-1111",
            ],
            ["6012-3456", "Luis Mora", "=1+1", None, "no-es-correo", None],
            [None, None, None, None, None, None],
            ["123", "Corto", None, None, None, None],
            ["+1 202 555 0182", "Washington", None, "NC", None, 105670123],
        ]
    )

    report = run_import(path, system.client, lead, ImportOptions(list_name="marzo"))

    assert (report.total, report.inserted, report.updated, report.rejected) == (4, 3, 0, 1)
    assert [(e.row, e.phone) for e in report.errors] == [(6, "123")]
    assert [(w.row, w.message) for w in report.warnings] == [
        (4, "correo «no-es-correo» no válido; se ignoró")
    ]
    assert report.headers["phone"] == "Teléfono"
    assert report.headers["email"] == "Correo electrónico"
    ana = system.client.ask(GetContactByPhone(phone="8812-3456"), lead)
    assert (ana.name, ana.note, ana.status, ana.email) == (
        "Ana Pérez",
        "llamar después de las 5",
        "INTERESADO",
        "ana@example.cr",
    )
    assert ana.extra == {"Cédula": "1-1111-1111"}
    assert ana.list_name == "marzo"
    assert ana.operator == "kolbi"
    luis = system.client.ask(GetContactByPhone(phone="60123456"), lead)
    assert luis.email == ""
    assert not luis.note.startswith("=")
    assert system.client.ask(GetContactByPhone(phone="+12025550182"), lead).extra == {"Cédula": "105670123"}


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("utf-8-sig", ","), ("utf-8", ";"), ("cp1252", ";"), ("latin-1", ",")],
)
def test_csv_files_in_both_encodings_and_delimiters_import_alike(
    system: ContactsSystem, lead: Caller, make_text: MakeText, encoding: str, delimiter: str
) -> None:
    lines = [
        ["Teléfono", "Nombre", "Nota"],
        ["88123456.0", "Ñandú Pérez", "pidió información"],
        ["nan", "", ""],
        ["8312 3456", "Óscar", ""],
    ]
    path = make_text("\r\n".join(delimiter.join(cells) for cells in lines) + "\r\n", encoding)

    report = run_import(path, system.client, lead)

    assert (report.total, report.inserted, report.rejected) == (2, 2, 0)  # "nan" makes a blank row
    assert system.client.ask(GetContactByPhone(phone="8812-3456"), lead).name == "Ñandú Pérez"
    assert system.client.ask(GetContactByPhone(phone="8312-3456"), lead).name == "Óscar"


def test_an_xls_workbook_imports_below_its_title_row(
    system: ContactsSystem, lead: Caller, corpus: Path
) -> None:
    report = run_import(corpus / "contactos.xls", system.client, lead)

    assert (report.total, report.inserted) == (3, 3)
    assert report.file["kind"] == "xls"
    assert report.file["header_row"] == 2
    maria = system.client.ask(GetContactByPhone(phone="8812-3456"), lead)
    assert (maria.name, maria.note, maria.extra) == (
        "María José Pérez",
        "llamar después de las 5",
        {"Cédula": "1-1234-0567"},
    )
    assert system.client.ask(GetContactByPhone(phone="2212-3456"), lead).extra == {"Cédula": "105670123"}


@pytest.mark.usefixtures("reading")
def test_repeats_inside_the_file_become_one_contact_and_are_reported(
    system: ContactsSystem, lead: Caller, make_xlsx: MakeXlsx
) -> None:
    path = make_xlsx(
        [
            ["Teléfono", "Nombre", "Nota"],
            ["8812-3456", "Ana", "primera"],
            ["6012-3456", "Luis", None],
            [88123456, None, "segunda"],
            ["+506 8812 3456", "Ana María", None],
        ]
    )

    report = run_import(path, system.client, lead)

    assert (report.total, report.inserted, report.duplicates_merged) == (4, 2, 2)
    assert [(m.row, m.into) for m in report.merged] == [(4, 2), (5, 2)]
    ana = system.client.ask(GetContactByPhone(phone="8812-3456"), lead)
    assert (ana.name, ana.note) == ("Ana María", "segunda")
    assert ana.version == 1  # created once, with the merged row: no update on top
    assert len(system.contacts()) == 2


def test_a_row_whose_phone_exists_updates_that_contact_and_keeps_what_the_file_leaves_empty(
    system: ContactsSystem, lead: Caller, make_xlsx: MakeXlsx
) -> None:
    created = CreateContact(
        caller=lead, now=NOW, phone="8812-3456", name="Ana", note="cliente antigua", list_name="viejos"
    )
    existing = system.client.execute(created)
    assert existing is not None
    path = make_xlsx(
        [["Celular", "Nombre", "Nota"], ["88123456", None, "volvió a llamar"], ["6012-3456", "Luis", None]]
    )

    report = run_import(path, system.client, lead, ImportOptions(list_name="nuevos"))

    assert (report.inserted, report.updated) == (1, 1)
    ana = system.client.ask(GetContact(contact_id=existing.id), lead)
    assert (ana.name, ana.list_name) == ("Ana", "viejos")
    assert re.fullmatch(r"cliente antigua\n\[\d{4}-\d{2}-\d{2}\] volvió a llamar", ana.note)
    assert len(system.contacts()) == 2


@pytest.mark.usefixtures("reading")
def test_importing_the_same_file_twice_changes_nothing_the_second_time(
    system: ContactsSystem, lead: Caller, make_xlsx: MakeXlsx
) -> None:
    numbers = phones(30)
    rows: list[list[object]] = [["Teléfono", "Nombre", "Estado", "Nota"]]
    rows += [[number, f"Cliente {i}", "NC" if i % 3 else "", f"nota {i}"] for i, number in enumerate(numbers)]
    # The same phone twice with different names and notes: merged, so a re-run has nothing to change.
    rows += [[numbers[0], "Otro nombre", "INTERESADO", ""], [numbers[1].replace("-", ""), "", "", "otra"]]
    rows += [["12", "malo", "", ""]]
    path = make_xlsx(rows)
    first = run_import(path, system.client, lead, ImportOptions(list_name="lista", batch_rows=7))
    events = system.events()
    before = system.contacts()

    second = run_import(path, system.client, lead, ImportOptions(list_name="lista", batch_rows=7))

    assert (first.inserted, first.duplicates_merged, first.rejected) == (30, 2, 1)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 30)
    assert (second.duplicates_merged, second.rejected) == (2, 1)
    assert system.events() == events
    assert system.contacts() == before
    assert system.client.ask(GetContactByPhone(phone=numbers[0]), lead).name == "Otro nombre"


class ProcessDied(BaseException):
    """Stands for the worker process being killed: no handler of the job runs."""


class DyingClient(LocalContactsClient):
    """The real client, but the process dies when batch number ``die_at`` is taken from the import."""

    def __init__(self, inner: LocalContactsClient, die_at: int) -> None:
        self._inner = inner
        self.die_at = die_at
        self.batches = 0

    def create_or_merge_stream(
        self,
        batches: Iterable[Sequence[ImportRow]],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
        merge: MergeMode = MergeMode.FILL,
        dry_run: bool = False,
    ) -> Generator[BatchResult]:
        sent = (self.sending(rows) for rows in batches)
        return self._inner.create_or_merge_stream(
            sent, list_name, caller, source=source, job_id=job_id, merge=merge, dry_run=dry_run
        )

    def sending(self, rows: Sequence[ImportRow]) -> Sequence[ImportRow]:
        self.batches += 1
        if self.batches == self.die_at:
            raise ProcessDied
        return rows

    def ask(self, query: Query[R], caller: Caller) -> R:
        return self._inner.ask(query, caller)


def executor_for(system: ContactsSystem, client: ContactsClient, tmp_path: Path, **job: Any) -> JobExecutor:
    """A job executor running ``import`` jobs against ``client`` (no bus)."""

    def run(context: Any) -> dict[str, Any]:
        return import_job(
            context,
            contacts=client,
            reports_dir=tmp_path / "reports",
            limits=reader_limits(None, job.get("max_rows")),
            max_rows=job.get("max_rows"),
            batch_rows=job.get("batch_rows", 25),
        )

    return JobExecutor(JobStore(system.engine), {IMPORT_JOB: run}, None, "jobs")


def submit(
    system: ContactsSystem, lead: Caller, source: Path, tmp_path: Path, **params: Any
) -> tuple[Job, Path]:
    """Copy ``source`` to the uploads folder (as the gateway stores it) and create an import job."""
    uploads = tmp_path / "uploads"
    uploads.mkdir(exist_ok=True)
    upload = uploads / f"{len(list(uploads.iterdir()))}-{source.name}"
    shutil.copyfile(source, upload)
    job = JobStore(system.engine).create(
        IMPORT_JOB, import_params(upload, source.name, lead, **params), lead.user_id
    )
    return job, upload


@pytest.mark.usefixtures("reading")
def test_an_import_killed_halfway_and_run_again_ends_as_one_clean_run(
    system: ContactsSystem, lead: Caller, make_xlsx: MakeXlsx, tmp_path: Path
) -> None:
    numbers = phones(200)
    rows: list[list[object]] = [["Teléfono", "Nombre", "Nota"]]
    rows += [[number, f"Cliente {i}", f"nota {i}"] for i, number in enumerate(numbers)]
    rows += [[numbers[5], "Repetido", ""], ["999", "malo", ""]]
    path = make_xlsx(rows)
    job, upload = submit(system, lead, path, tmp_path, list_name="marzo")
    dying = DyingClient(system.client, die_at=4)

    with pytest.raises(ProcessDied):
        executor_for(system, dying, tmp_path).run(job.id)

    interrupted = JobStore(system.engine).get(job.id)
    assert interrupted is not None
    assert interrupted.state is JobState.RUNNING
    assert upload.exists()  # left for the retry
    written_before = len(system.contacts())
    assert 0 < written_before < 200

    executor_for(system, system.client, tmp_path).run(job.id)

    retried = JobStore(system.engine).get(job.id)
    assert retried is not None
    assert retried.state is JobState.FINISHED
    assert retried.report is not None
    assert retried.report["unchanged"] == written_before
    assert retried.report["inserted"] == 200 - written_before
    assert not upload.exists()
    clean = contacts_system(f"sqlite:///{tmp_path / 'clean.db'}")
    try:
        run_import(path, clean.client, lead, ImportOptions(list_name="marzo"))
        assert system.contacts() == clean.contacts()
    finally:
        clean.engine.dispose()


@pytest.mark.usefixtures("reading")
def test_a_file_imported_again_into_another_list_counts_its_rows_listed_in_the_dry_run_and_the_real_one(
    system: ContactsSystem, lead: Caller, make_xlsx: MakeXlsx
) -> None:
    numbers = phones(12)
    rows: list[list[object]] = [["Teléfono", "Nombre"]] + [[n, f"Cliente {i}"] for i, n in enumerate(numbers)]
    run_import(make_xlsx(rows), system.client, lead, ImportOptions(list_name="marzo", batch_rows=5))
    # Into "abril": ten rows as they were (listed), one with a new e-mail (updated), one new contact.
    again = [
        ["Teléfono", "Nombre", "Correo"],
        *rows[1:11],
        [numbers[10], "Cliente 10", "diez@correo.cr"],
        ["8999-0001", "Nueva"],
    ]
    path = make_xlsx(again)
    events = system.events()

    dry = run_import(path, system.client, lead, ImportOptions(list_name="abril", dry_run=True, batch_rows=5))
    assert system.events() == events
    real = run_import(path, system.client, lead, ImportOptions(list_name="abril", batch_rows=5))
    repeated = run_import(path, system.client, lead, ImportOptions(list_name="abril", batch_rows=5))

    for report in (dry, real):
        counts = report.to_data()
        assert {k: counts[k] for k in ("inserted", "updated", "listed", "unchanged", "total")} == {
            "inserted": 1,
            "updated": 1,
            "listed": 10,
            "unchanged": 0,
            "total": 12,
        }
    assert (dry.new, dry.existing) == (1, 11)
    assert [p["action"] for p in dry.preview][:2] == ["existente"] * 2
    assert (repeated.listed, repeated.updated, repeated.unchanged) == (0, 0, 12)
    written = [e.type for e in system.store.read_all(after_position=events, limit=100)]
    assert written.count("contacts.ContactListed") == 11
    assert written.count("contacts.ContactMerged") == 1


@pytest.mark.usefixtures("reading")
def test_a_dry_run_writes_nothing_and_tells_new_contacts_from_existing_ones(
    system: ContactsSystem, lead: Caller, make_xlsx: MakeXlsx
) -> None:
    system.client.execute(CreateContact(caller=lead, now=NOW, phone="8812-3456", name="Ana"))
    path = make_xlsx(
        [
            ["Teléfono", "Nombre"],
            ["8812-3456", "Ana María"],
            ["6012-3456", "Luis"],
            ["abc", "malo"],
            ["60123456", "Luis Mora"],
        ]
    )
    events = system.events()

    report = run_import(path, system.client, lead, ImportOptions(dry_run=True))

    assert system.events() == events
    assert (report.new, report.existing, report.rejected, report.duplicates_merged) == (1, 1, 1, 1)
    assert [(p["row"], p["action"]) for p in report.preview] == [
        (2, "existente"),
        (3, "nueva"),
        (4, "rechazada"),
        (5, "combinada"),
    ]
    data = report.to_data()
    assert data["dry_run"] is True
    assert (data["inserted"], data["unchanged"], data["merge"]) == (1, 1, "fill")
    assert len(data["preview"]) == 4


@pytest.mark.usefixtures("reading")
def test_a_file_past_the_row_limit_is_refused_before_anything_is_written(
    system: ContactsSystem, lead: Caller, make_text: MakeText, tmp_path: Path
) -> None:
    path = make_text("telefono\n" + "\n".join(phones(8)) + "\n")

    with pytest.raises(FileRejected, match="más de 5 filas de datos"):
        run_import(path, system.client, lead, ImportOptions(max_rows=5, batch_rows=2))
    job, upload = submit(system, lead, path, tmp_path)
    executor_for(system, system.client, tmp_path, max_rows=5, batch_rows=2).run(job.id)

    failed = JobStore(system.engine).get(job.id)
    assert failed is not None
    assert failed.state is JobState.FAILED
    assert failed.error == "El archivo tiene más de 5 filas de datos, el máximo permitido."
    assert system.events() == 0
    assert not upload.exists()


@pytest.mark.usefixtures("reading")
def test_bad_files_fail_their_job_with_the_reason_and_write_nothing(
    system: ContactsSystem, lead: Caller, bad_files: dict[str, Path], make_text: MakeText, tmp_path: Path
) -> None:
    headerless = make_text("88123456;Ana\n60123456;Luis\n", name="sin_encabezados.csv")
    for name, path in {**bad_files, "sin_encabezados.csv": headerless}.items():
        job, upload = submit(system, lead, path, tmp_path)
        executor_for(system, system.client, tmp_path).run(job.id)
        failed = JobStore(system.engine).get(job.id)
        assert failed is not None, name
        assert failed.state is JobState.FAILED, name
        assert failed.report is not None, name
        assert failed.error, name
        assert failed.report["refused"] == failed.error, name
        assert not upload.exists(), name
    assert system.events() == 0


@pytest.mark.usefixtures("reading")
def test_the_report_files_list_every_rejected_merged_and_warned_row(
    system: ContactsSystem, lead: Caller, make_xlsx: MakeXlsx, tmp_path: Path
) -> None:
    path = make_xlsx(
        [
            ["Teléfono", "Nombre", "Correo"],
            ["8812-3456", "Ana", "ana@"],
            ["12345", "Corto", ""],
            ["88123456", "Ana María", ""],
        ]
    )
    job, _ = submit(system, lead, path, tmp_path)

    executor_for(system, system.client, tmp_path).run(job.id)

    done = JobStore(system.engine).get(job.id)
    assert done is not None
    assert done.report is not None
    book = openpyxl.load_workbook(tmp_path / "reports" / done.report["report_files"]["xlsx"], read_only=True)
    sheet = book.active
    assert sheet is not None
    assert [list(row) for row in sheet.iter_rows(values_only=True)] == [
        ["fila", "teléfono", "resultado", "detalle"],
        [2, "8812-3456", "aviso", "correo «ana@» no válido; se ignoró"],
        [3, "12345", "rechazada", "número demasiado corto"],
        [4, "88123456", "combinada", "mismo teléfono que la fila 2; se combinó con ella"],
    ]
    text = (tmp_path / "reports" / done.report["report_files"]["csv"]).read_text(encoding="utf-8-sig")
    assert text.splitlines()[2] == "3;12345;rechazada;número demasiado corto"
    assert done.report["download"]["xlsx"] == f"/jobs/{job.id}/report?format=xlsx"


@pytest.mark.usefixtures("reading")
def test_cancelling_an_import_stops_it_between_batches(
    system: ContactsSystem, lead: Caller, make_text: MakeText, tmp_path: Path
) -> None:
    path = make_text("telefono;nombre\n" + "\n".join(f"{p};n" for p in phones(400)) + "\n")
    job, _ = submit(system, lead, path, tmp_path)
    store = JobStore(system.engine)
    sent = threading.Event()

    class CancellingClient(DyingClient):
        def sending(self, rows: Sequence[ImportRow]) -> Sequence[ImportRow]:
            store.request_cancel(job.id)
            sent.wait(0.15)  # slow enough for the job's next progress point to see the cancel
            return super().sending(rows)

    executor_for(system, CancellingClient(system.client, die_at=0), tmp_path, batch_rows=25).run(job.id)

    cancelled = store.get(job.id)
    assert cancelled is not None
    assert cancelled.state is JobState.CANCELLED
    assert 0 < len(system.contacts()) < 400


def test_json_records_follow_the_same_rules_as_files(system: ContactsSystem, lead: Caller) -> None:
    records: list[dict[str, Any]] = [
        {"phone": "8812-3456", "name": "Ana", "status": "interesado", "extra": {"origen": "web"}},
        {"telefono": 88123456, "nota": "repetida", "campaña": "marzo"},
        {"phone": "1"},
        {},
        {"phone": "6012-3456", "status": "NO_EXISTE_ESTE_ESTADO"},
    ]

    report = import_records(records, system.client, lead, "api")

    data = report.to_data()
    assert (data["total"], data["inserted"], data["updated"], data["duplicates_merged"]) == (5, 1, 0, 1)
    assert [e["row"] for e in data["errors"]] == [3, 4, 5]
    assert "Estado desconocido" in data["errors"][2]["message"]
    ana = system.client.ask(GetContactByPhone(phone="8812-3456"), lead)
    assert (ana.name, ana.note, ana.status) == ("Ana", "repetida", "INTERESADO")
    assert ana.extra == {"origen": "web", "campaña": "marzo"}


def test_json_records_past_the_limit_are_refused(system: ContactsSystem, lead: Caller) -> None:
    with pytest.raises(FileRejected, match="el máximo por petición es 2"):
        import_records([{"phone": p} for p in phones(3)], system.client, lead, max_rows=2)
    assert system.events() == 0


# --- merge modes, notes, locked contacts (issue 19) ------------------------------------------------------

PM = Caller(user_id="u-pm", username="pablo", role=Role.PROJECT_MANAGER)
AGENT = Caller(user_id="u-agent", username="ana", role=Role.AGENT)
DATED_LINE = r"\n\[\d{4}-\d{2}-\d{2}\] "


def worked_contact(system: ContactsSystem, caller: Caller) -> str:
    """A contact an agent has worked: name, status, note; no e-mail. Its id."""
    created = CreateContact(
        caller=caller,
        now=NOW,
        phone="8812-3456",
        name="Ana",
        status="INTERESADO",
        note="vieja",
        list_name="v",
    )
    contact = system.client.execute(created)
    assert contact is not None
    return contact.id


def reimport(make_xlsx: MakeXlsx) -> Path:
    return make_xlsx(
        [
            ["Teléfono", "Nombre", "Estado", "Nota", "Correo"],
            ["8812-3456", "Otra", "NC", "nueva", "ana@example.cr"],
            ["6012-3456", "Luis", "", "", ""],
        ]
    )


def test_fill_the_default_sets_only_empty_fields_and_appends_the_note(
    system: ContactsSystem, lead: Caller, make_xlsx: MakeXlsx
) -> None:
    contact_id = worked_contact(system, lead)

    report = run_import(reimport(make_xlsx), system.client, lead)

    assert (report.merge, report.inserted, report.updated) == ("fill", 1, 1)
    ana = system.client.ask(GetContact(contact_id=contact_id), lead)
    assert (ana.name, ana.status, ana.email) == ("Ana", "INTERESADO", "ana@example.cr")
    assert re.fullmatch("vieja" + DATED_LINE + "nueva", ana.note)
    again = run_import(reimport(make_xlsx), system.client, lead)
    assert (again.updated, again.unchanged) == (0, 2)


def test_overwrite_lets_the_file_win_but_never_replaces_the_note(
    system: ContactsSystem, make_xlsx: MakeXlsx
) -> None:
    contact_id = worked_contact(system, PM)

    report = run_import(reimport(make_xlsx), system.client, PM, ImportOptions(merge=MergeMode.OVERWRITE))

    assert (report.merge, report.updated) == ("overwrite", 1)
    ana = system.client.ask(GetContact(contact_id=contact_id), PM)
    assert (ana.name, ana.status, ana.email) == ("Otra", "NC", "ana@example.cr")
    assert re.fullmatch("vieja" + DATED_LINE + "nueva", ana.note)


def test_only_project_managers_and_ti_may_overwrite(
    system: ContactsSystem, lead: Caller, make_xlsx: MakeXlsx
) -> None:
    worked_contact(system, lead)
    events = system.events()

    with pytest.raises(Forbidden, match="sobrescribiendo"):
        run_import(reimport(make_xlsx), system.client, lead, ImportOptions(merge=MergeMode.OVERWRITE))
    assert system.events() == events


def test_skip_leaves_existing_contacts_untouched_and_adds_new_ones(
    system: ContactsSystem, lead: Caller, make_xlsx: MakeXlsx
) -> None:
    contact_id = worked_contact(system, lead)
    before = system.client.ask(GetContact(contact_id=contact_id), lead)

    report = run_import(reimport(make_xlsx), system.client, lead, ImportOptions(merge=MergeMode.SKIP))

    assert (report.merge, report.inserted, report.updated, report.unchanged) == ("skip", 1, 0, 1)
    assert system.client.ask(GetContact(contact_id=contact_id), lead) == before


def test_a_contact_locked_while_the_import_runs_is_left_alone_and_its_row_says_so(
    system: ContactsSystem, lead: Caller, make_xlsx: MakeXlsx
) -> None:
    contact_id = worked_contact(system, AGENT)
    system.client.execute(LockContact(caller=AGENT, now=NOW, contact_id=contact_id))
    before = system.client.ask(GetContact(contact_id=contact_id), lead)

    report = run_import(reimport(make_xlsx), system.client, lead)

    assert system.client.ask(GetContact(contact_id=contact_id), lead).version == before.version
    assert (report.inserted, report.updated, report.rejected) == (1, 0, 0)
    assert [(issue.row, issue.phone) for issue in report.locked] == [(2, "8812-3456")]
    assert "bloqueado por ana" in report.locked[0].message
    assert "no se modificó" in report.locked[0].message
    assert report.to_data()["locked"] == 1
    assert [entry[2] for entry in report.rows()] == ["bloqueada"]


class RecordingClient(LocalContactsClient):
    """The real client, keeping every row outcome contacts answers."""

    def __init__(self, inner: LocalContactsClient) -> None:
        self._inner = inner
        self.outcomes: list[tuple[int, str, str, str]] = []

    def create_or_merge_stream(
        self,
        batches: Iterable[Sequence[ImportRow]],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
        merge: MergeMode = MergeMode.FILL,
        dry_run: bool = False,
    ) -> Generator[BatchResult]:
        results = self._inner.create_or_merge_stream(
            batches, list_name, caller, source=source, job_id=job_id, merge=merge, dry_run=dry_run
        )
        for result in results:
            self.outcomes += [(o.row, o.e164, o.outcome.value, o.reason) for o in result.outcomes]
            yield result


def every_row(path: Path, client: LocalContactsClient, caller: Caller, dry_run: bool) -> object:
    """Every row's outcome and reason, and the report's rows, of one run; or the file's refusal."""
    recording = RecordingClient(client)
    options = ImportOptions(list_name="lista", dry_run=dry_run, batch_rows=3)
    try:
        report = run_import(path, recording, caller, options)
    except FileRejected as exc:
        return ("refused", exc.reason)
    counts = (report.inserted, report.updated, report.unchanged, len(report.locked), report.rejected)
    return (recording.outcomes, list(report.rows()), counts, report.total)


@pytest.mark.usefixtures("reading")
def test_the_dry_run_gives_every_row_the_outcome_of_the_real_run_over_the_bad_file_corpus(
    system: ContactsSystem, lead: Caller, bad_files: dict[str, Path], make_xlsx: MakeXlsx, make_text: MakeText
) -> None:
    assert isinstance(system.client, LocalContactsClient)
    contact_id = worked_contact(system, AGENT)
    system.client.execute(LockContact(caller=AGENT, now=NOW, contact_id=contact_id))
    system.client.execute(CreateContact(caller=lead, now=NOW, phone="7012-3456", name="Eva"))
    bad_rows = make_xlsx(
        [
            ["Teléfono", "Nombre", "Estado", "Nota", "Correo", "Cédula"],
            ["8812-3456", "Otra", "NC", "nota nueva", "", ""],  # locked by an agent
            ["7012-3456", "", "estado que no existe", "", "", ""],  # exists; unknown status
            ["6012-3456", "Luis", "estado raro", "", "", ""],  # new; unknown status
            ["6012-3457", "Mar", "", "", "no-es-correo", ""],  # new; bad e-mail (warned)
            ["123", "corto", "", "", "", ""],  # bad phone
            ["", "sin teléfono", "", "", "", ""],
            ["6012-3458", "Rep", "", "a", "", "1"],
            ["60123458", "Rep 2", "INTERESADO", "b", "", ""],  # repeated phone: merged
            ["+1 202 555 0182", "x" * 300, "", "", "", ""],  # name too long
            ["6012-3459", "Nota larga", "", "n" * 10_001, "", ""],
            ["6012-3460", "Bien", "SIN GESTIONAR", "", "", ""],
        ]
    )
    files = {**bad_files, "filas_malas.xlsx": bad_rows, "vacio_de_filas.csv": make_text("telefono\n")}
    compared = 0
    for name, path in files.items():
        events = system.events()
        dry = every_row(path, system.client, lead, dry_run=True)
        assert system.events() == events, name
        real = every_row(path, system.client, lead, dry_run=False)
        assert dry == real, name
        compared += 1
    assert compared == len(files)
    outcomes = every_row(bad_rows, system.client, lead, dry_run=True)
    assert isinstance(outcomes, tuple)
    assert {outcome for _, _, outcome, _ in outcomes[0]} >= {"locked", "rejected", "unchanged"}
