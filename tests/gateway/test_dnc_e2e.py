"""The do-not-call list on a real embedded system: file import and export over HTTP, audit, and an import
of contacts that meets the list (real and dry run)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import openpyxl
import pytest
import sqlalchemy as sa

from kernel.store import create_engine
from tests.support.servers import EmbeddedServer, start_embedded, wait_finished

FINAL = {"finished", "failed", "cancelled"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    running = start_embedded(tmp_path_factory.mktemp("dnc"), CALLMANAGER_MAX_UPLOAD_MB="1")
    try:
        for name, role in [
            ("pablo", "ProjectManager"),
            ("tina", "TI"),
            ("lucia", "TeamLead"),
            ("ana", "Agent"),
        ]:
            running.create_user(name, role, "norte")
        yield running
    finally:
        running.process.stop()


def _as(server: EmbeddedServer, who: str) -> httpx.Client:
    return server.client(server.keys[who])


def _xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _changes(server: EmbeddedServer, phone_e164: str) -> list[tuple[str, str, str]]:
    engine = create_engine(f"sqlite:///{server.data_dir / 'callmanager.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT action, reason, username FROM dnc_changes WHERE phone_e164 = :p ORDER BY id"),
                {"p": phone_e164},
            )
            return [(str(a), str(r), str(u)) for a, r, u in rows]
    finally:
        engine.dispose()


def test_a_csv_list_is_imported_with_row_numbers_and_every_addition_audited(server: EmbeddedServer) -> None:
    lines = [
        "Lista de no llamar de enero",
        "Teléfono;Motivo",
        "8840-0001;Pidió no ser llamado",
        "88400002;",
        "123;corto",
        "+506 8840 0001;otra vez",
        ";sin número",
        '8840-0003;=HYPERLINK("http://x")',
    ]
    content = ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")
    with _as(server, "pablo") as pablo:
        assert pablo.post("/dnc", json={"phone": "8840-0003", "reason": "ya estaba"}).status_code == 201
        answer = pablo.post(
            "/dnc/import", files={"file": ("no_llamar.csv", content)}, data={"reason": "lista de enero"}
        )
        listed = {entry["phone_e164"]: entry for entry in pablo.get("/dnc").json()}

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["total"], body["added"], body["already_listed"], body["invalid"], body["repeated"]) == (
        6,
        2,
        1,
        2,
        1,
    )
    assert [(r["row"], r["e164"]) for r in body["added_rows"]] == [(3, "+50688400001"), (4, "+50688400002")]
    assert [(r["row"], r["e164"]) for r in body["already_listed_rows"]] == [(8, "+50688400003")]
    assert [r["row"] for r in body["invalid_rows"]] == [5, 7]
    assert [(r["row"], r["message"]) for r in body["repeated_rows"]] == [(6, "mismo número que la fila 3")]
    assert body["headers"] == {"phone": "Teléfono", "reason": "Motivo"}
    assert listed["+50688400001"]["reason"] == "Pidió no ser llamado"
    assert listed["+50688400002"]["reason"] == "lista de enero"  # the form's reason for rows without one
    assert listed["+50688400003"]["reason"] == "ya estaba"
    assert _changes(server, "+50688400001") == [("added", "Pidió no ser llamado", "pablo")]
    with _as(server, "tina") as tina:
        audit = tina.get("/admin/audit", params={"username": "pablo"}).json()
    imported = next(e for e in audit if e["path"] == "/dnc/import")
    assert (imported["outcome"], imported["action"]) == ("allowed", "dnc.manage")
    assert imported["detail"] == {"file": "no_llamar.csv", "added": 2, "already_listed": 1, "invalid": 2}


def test_an_xlsx_list_imports_and_the_list_exports_as_csv_and_xlsx_with_formulas_escaped(
    server: EmbeddedServer,
) -> None:
    workbook = _xlsx(
        [
            ["Celular", "Razón"],
            [88410001, "-molesto"],
            ["6041-0002", "cliente molesto"],
            ["+1 202 555 0182", ""],
        ]
    )
    with _as(server, "tina") as tina:
        answer = tina.post("/dnc/import", files={"file": ("lista.xlsx", workbook)})
        assert answer.status_code == 200, answer.text
        assert answer.json()["added"] == 3
        as_csv = tina.get("/dnc/export", params={"format": "csv"})
        as_xlsx = tina.get("/dnc/export", params={"format": "xlsx"})

    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert 'filename="no_llamar_' in as_csv.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["telefono", "motivo", "agregado_por", "agregado_el"]
    by_phone = {row[0]: row for row in rows[1:]}
    assert by_phone["8841-0001"][1:3] == ["'-molesto", "tina"]
    assert by_phone["6041-0002"][1] == "cliente molesto"
    book = openpyxl.load_workbook(io.BytesIO(as_xlsx.content), read_only=True)
    sheet = book.worksheets[0]
    cells = {row[0]: row[1] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert cells["8841-0001"] == "'-molesto"
    assert cells["'+12025550182"] in (None, "")
    assert len(cells) == len(rows) - 1


def test_unusable_files_are_refused_and_agents_and_teamleads_are_denied(server: EmbeddedServer) -> None:
    with _as(server, "pablo") as pablo:
        no_phone = pablo.post("/dnc/import", files={"file": ("x.csv", b"Nombre;Motivo\r\nAna;x\r\n")})
        fake = pablo.post("/dnc/import", files={"file": ("x.xlsx", b"PK\x03\x04" + bytes(300))})
        too_big = pablo.post(
            "/dnc/import", files={"file": ("x.csv", b"Telefono\r\n" + b"88400009\r\n" * 200_000)}
        )
        json_body = pablo.post("/dnc/import", json=[{"phone": "8840-0009"}])
    assert (no_phone.status_code, no_phone.json()["error"]["code"]) == (422, "file_rejected")
    assert fake.status_code == 422
    assert too_big.status_code == 413
    assert json_body.status_code == 415
    for who in ("ana", "lucia"):
        with _as(server, who) as http:
            assert (
                http.post("/dnc/import", files={"file": ("x.csv", b"Telefono\r\n88400010\r\n")}).status_code
                == 403
            )
            assert http.get("/dnc/export").status_code == 403
    with _as(server, "pablo") as pablo:
        assert "+50688400010" not in {e["phone_e164"] for e in pablo.get("/dnc").json()}


@pytest.mark.parametrize("dry_run", ["false", "true"])
def test_a_contacts_import_reports_listed_rows_as_dnc_and_does_not_save_them(
    server: EmbeddedServer, dry_run: str
) -> None:
    first = 8842_0000 if dry_run == "false" else 8843_0000
    with _as(server, "pablo") as pablo:
        assert pablo.post("/dnc", json={"phone": str(first + 2), "reason": "no llamar"}).status_code == 201
        workbook = _xlsx(
            [["Teléfono", "Nombre"], [first + 1, "Ana"], [first + 2, "Beto"], [first + 3, "Carla"]]
        )
        started = pablo.post(
            "/import", files={"file": ("clientes.xlsx", workbook)}, data={"dry_run": dry_run}
        )
        assert started.status_code == 202, started.text
        job = wait_finished(pablo, started.json()["id"])
        report = job["report"]
        found = pablo.get("/contacts", params={"q": str(first + 2)}).json()
        csv_report = pablo.get(f"/jobs/{job['id']}/report", params={"format": "csv"})

    assert job["state"] == "finished", job
    assert (report["dnc"], report["inserted"]) == (1, 2)
    assert [(r["row"], r["phone"]) for r in report["dnc_rows"]] == [(3, str(first + 2))]
    assert found == []
    lines = list(csv.reader(io.StringIO(csv_report.content.decode("utf-8-sig")), delimiter=";"))
    assert [line[:3] for line in lines[1:]] == [["3", str(first + 2), "no llamar"]]
    if dry_run == "true":
        assert {row["row"]: row["action"] for row in report["preview"]}[3] == "no llamar"


def test_generating_with_save_never_saves_a_listed_number_and_says_how_many_it_skipped(
    server: EmbeddedServer,
) -> None:
    with _as(server, "pablo") as pablo:
        drawn = pablo.post("/api/generate_contacts", json={"amount": 60, "seed": 4242}).json()["phones"]
        listed = [phone["e164"] for phone in drawn[::6]]
        for e164 in listed:
            assert pablo.post("/dnc", json={"phone": e164, "reason": "no generar"}).status_code == 201
        saved = pablo.post("/api/generate_contacts", json={"amount": 60, "seed": 4242, "save": True})
        body = saved.json()
        in_list = pablo.get("/contacts", params={"list": body["list"], "limit": 1000}).json()

    assert saved.status_code == 200, saved.text
    assert (body["saved"], body["dnc_skipped"], body["dnc_refused"]) == (60, len(listed), 0)
    assert len(in_list) == 60
    assert {contact["phone_e164"] for contact in in_list}.isdisjoint(listed)
