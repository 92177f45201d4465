"""Exports open in Excel with Spanish headers and local times, run no formula, and re-import unchanged."""

from __future__ import annotations

import datetime
import io
import zipfile
from pathlib import Path

import openpyxl
import pytest
import python_calamine

from importexport.headers import detect_headers
from importexport.rows import AcceptedRow, classify_rows
from importexport.spreadsheets import open_rows
from importexport.writers import (
    CONTACT_HEADERS,
    COSTA_RICA_TIME,
    ExportRow,
    escape_formula,
    export_filename,
    write_csv,
    write_xlsx,
)

UTC = datetime.UTC
CREATED = datetime.datetime(2024, 3, 1, 18, 30, tzinfo=UTC)  # 12:30 in Costa Rica

CONTACTS = [
    ExportRow(
        id="c1",
        phone="8812-3456",
        name="María José Pérez",
        status="SIN_GESTIONAR",
        note='=HYPERLINK("http://evil")',
        locked_by=None,
        last_contacted_at=None,
        created_at=CREATED,
        updated_at=CREATED,
    ),
    ExportRow(
        id="c2",
        phone="+1 202-555-0123",
        name="@jefe",
        status="NC",
        note="-1+1\r\ncon salto; y <etiquetas> & más",
        locked_by="ana",
        last_contacted_at=datetime.datetime(2024, 3, 2, 15, 0, 5, tzinfo=UTC),
        created_at=CREATED,
        updated_at=CREATED,
    ),
    ExportRow(
        id="c3",
        phone="2212-3456",
        name="\ttab",
        status="INTERESADO",
        note="\rcr",
        locked_by=None,
        last_contacted_at=None,
        created_at=CREATED,
        updated_at=CREATED,
    ),
]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def test_xlsx_export_has_spanish_headers_local_times_and_no_formula_cell(tmp_path: Path) -> None:
    path = tmp_path / "contactos.xlsx"
    assert write_xlsx(path, (c.cells() for c in CONTACTS)) == 3
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    cells = list(sheet.iter_rows())
    assert [c.value for c in cells[0]] == list(CONTACT_HEADERS)
    assert all(c.data_type != "f" for row in cells for c in row)
    texts = [c.value for row in cells for c in row if isinstance(c.value, str)]
    assert not any(t.startswith(DANGEROUS) for t in texts)
    assert cells[1][4].value == '\'=HYPERLINK("http://evil")'
    assert cells[2][1].value == "'+1 202-555-0123"
    assert cells[2][2].value == "'@jefe"
    assert cells[1][7].value == datetime.datetime(2024, 3, 1, 12, 30)
    assert cells[2][6].value == datetime.datetime(2024, 3, 2, 9, 0, 5)
    assert cells[1][5].value is None


def test_times_are_the_same_in_a_fixed_offset_a_tz_database_zone_and_when_naive(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    aware = datetime.datetime(2024, 3, 1, 18, 30, 15, tzinfo=UTC)
    naive = datetime.datetime(2024, 3, 1, 12, 30, 15)
    for zone in (COSTA_RICA_TIME, ZoneInfo("America/Costa_Rica")):
        write_xlsx(
            tmp_path / "t.xlsx", [[aware, naive, datetime.date(2024, 3, 1)]], ["a", "b", "c"], timezone=zone
        )
        sheet = openpyxl.load_workbook(tmp_path / "t.xlsx").active
        assert sheet is not None
        assert [c.value for c in sheet[2]] == [naive, naive, datetime.datetime(2024, 3, 1)]
        write_csv(tmp_path / "t.csv", [[aware, naive]], ["a", "b"], timezone=zone)
        assert (tmp_path / "t.csv").read_text("utf-8-sig").splitlines()[
            1
        ] == "2024-03-01 12:30:15;2024-03-01 12:30:15"


def test_calamine_reads_the_xlsx_export_exactly(tmp_path: Path) -> None:
    path = tmp_path / "contactos.xlsx"
    write_xlsx(path, (c.cells() for c in CONTACTS))
    rows = list(python_calamine.CalamineWorkbook.from_path(path).get_sheet_by_index(0).iter_rows())
    assert rows[0] == list(CONTACT_HEADERS)
    assert rows[2][:6] == [
        "c2",
        "'+1 202-555-0123",
        "'@jefe",
        "NC",
        "'-1+1\r\ncon salto; y <etiquetas> & más",
        "ana",
    ]
    assert rows[3][2] == "'\ttab"
    assert rows[3][4] == "'\rcr"


def test_xlsx_text_that_xml_cannot_carry_is_dropped_and_escape_like_text_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "raro.xlsx"
    write_xlsx(path, [["a\x00b\x1fc", "_x0041_", "ok"]], headers=["uno", "dos", "tres"])
    rows = list(python_calamine.CalamineWorkbook.from_path(path).get_sheet_by_index(0).iter_rows())
    assert rows[1] == ["abc", "_x0041_", "ok"]


def test_xlsx_export_is_one_streamed_sheet_in_a_small_valid_package(tmp_path: Path) -> None:
    path = tmp_path / "contactos.xlsx"
    write_xlsx(path, ([f"id{n}", f"8812-{n:04d}"] for n in range(5000)), headers=["id", "teléfono"])
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert set(zf.namelist()) == {
            "[Content_Types].xml",
            "_rels/.rels",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml",
            "xl/worksheets/sheet1.xml",
        }
    sheet = openpyxl.load_workbook(path, read_only=True).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 5001
    assert rows[-1] == ("id4999", "8812-4999")


def test_csv_export_is_utf8_with_bom_semicolons_and_escaped_formulas(tmp_path: Path) -> None:
    path = tmp_path / "contactos.csv"
    assert write_csv(path, (c.cells() for c in CONTACTS)) == 3
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfid;tel\xc3\xa9fono;nombre;estado;nota;bloqueado por;")
    lines = data.decode("utf-8-sig").split("\r\n")
    assert lines[1] == (
        'c1;8812-3456;María José Pérez;SIN_GESTIONAR;"\'=HYPERLINK(""http://evil"")";;;'
        "2024-03-01 12:30:00;2024-03-01 12:30:00"
    )


def test_csv_and_xlsx_exports_can_be_written_to_a_stream() -> None:
    for write in (write_csv, write_xlsx):
        out = io.BytesIO()
        write(out, [c.cells() for c in CONTACTS])
        assert len(out.getvalue()) > 100
        assert not out.closed


@pytest.mark.parametrize("write", [write_csv, write_xlsx])
def test_an_export_re_imports_to_the_same_phones_names_and_notes(write: object, tmp_path: Path) -> None:
    path = tmp_path / ("export.csv" if write is write_csv else "export.xlsx")
    write(path, [c.cells() for c in CONTACTS])  # type: ignore[operator]
    table = open_rows(path)
    headers = detect_headers(table)
    assert headers.mapping()["phone"] == "teléfono"
    rows = [r for r in classify_rows(table, headers) if isinstance(r, AcceptedRow)]
    assert [(r.national, r.name, r.status, r.note) for r in rows] == [
        ("8812-3456", "María José Pérez", "SIN_GESTIONAR", '=HYPERLINK("http://evil")'),
        ("(202) 555-0123", "@jefe", "NC", "-1+1\r\ncon salto; y <etiquetas> & más"),
        ("2212-3456", "\ttab", "INTERESADO", "\rcr"),
    ]


def test_escape_formula_prefixes_only_dangerous_starts() -> None:
    assert [escape_formula(t) for t in ("=1", "+1", "-1", "@a", "\tx", "\rx", "a=1", "", "'x")] == [
        "'=1",
        "'+1",
        "'-1",
        "'@a",
        "'\tx",
        "'\rx",
        "a=1",
        "",
        "'x",
    ]


def test_export_file_name_has_the_timestamp() -> None:
    assert export_filename(datetime.datetime(2024, 3, 1, 8, 5, 9), "xlsx") == "contactos_20240301_080509.xlsx"
