"""Opening uploads: real type by content, CSV encodings and separators, and refusals a user understands."""

from __future__ import annotations

import datetime
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from importexport.headers import detect_headers
from importexport.spreadsheets import FileRejected, ReaderLimits, open_rows, peek_rows

MakeXlsx = Callable[..., Path]
MakeText = Callable[..., Path]

ROWS = [
    ["Teléfono", "Nombre", "Nota"],
    ["8812-3456", "María José Pérez", "llamar después de las 5"],
    ["22123456", "Ñandú, S.A.", 'dijo "mañana"; volver'],
]


def test_an_xlsx_is_read_with_its_cell_types(make_xlsx: MakeXlsx) -> None:
    path = make_xlsx(
        [["Teléfono", "Nombre", "Fecha"], [88123456, "Ana", datetime.date(2024, 1, 2)], [None, "", None]],
    )
    table = open_rows(path)
    assert (table.kind, table.sheet, table.first_row_number) == ("xlsx", "Hoja1", 1)
    assert list(table) == [["Teléfono", "Nombre", "Fecha"], [88123456.0, "Ana", datetime.date(2024, 1, 2)]]


def test_rows_can_be_read_twice(make_xlsx: MakeXlsx, make_text: MakeText) -> None:
    for path in (make_xlsx(ROWS), make_text("a;b\n1;2\n")):
        table = open_rows(path)
        assert list(table) == list(table)


def test_the_legacy_xls_format_is_read(corpus: Path) -> None:
    table = open_rows(corpus / "contactos.xls")
    assert (table.kind, table.sheet) == ("xls", "Contactos")
    rows = list(table)
    assert rows[1] == ["Teléfono", "Nombre", "Observaciones", "Cédula"]
    assert rows[2][:2] == [88123456, "María José Pérez"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_in_any_promised_encoding_and_separator_gives_the_same_rows(
    make_text: MakeText, encoding: str, delimiter: str
) -> None:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(ROWS)
    table = open_rows(make_text(out.getvalue(), encoding))
    assert table.kind == "csv"
    assert table.delimiter == delimiter
    assert table.encoding == encoding
    assert list(table) == ROWS


def test_windows_1252_punctuation_is_decoded(make_text: MakeText) -> None:
    table = open_rows(make_text("Teléfono;Nota\n88123456;“precio” 10 €\n", "cp1252"))
    assert table.encoding == "cp1252"
    assert list(table)[1] == ["88123456", "“precio” 10 €"]


def test_bytes_undefined_in_windows_1252_fall_back_to_latin_1(tmp_path: Path) -> None:
    path = tmp_path / "raro.csv"
    path.write_bytes("Teléfono,Nota\n88123456,".encode("latin-1") + b"\x81\xe9\n")
    table = open_rows(path)
    assert table.encoding == "latin-1"
    assert list(table)[1] == ["88123456", "\x81é"]


def test_a_late_latin_1_byte_after_a_long_ascii_start_is_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "largo.csv"
    body = "".join(f"8812{n:04d},Cliente {n}\n" for n in range(200_000))  # ~5 MB of ASCII first
    path.write_bytes(
        ("Teléfono,Nombre\n" + body).encode("ascii", "replace") + "88129999,Peña\n".encode("cp1252")
    )
    table = open_rows(path)
    assert table.encoding == "cp1252"
    assert list(table)[-1] == ["88129999", "Peña"]


def test_excels_unicode_text_export_in_utf16_is_read(make_text: MakeText) -> None:
    table = open_rows(make_text("Teléfono\tNombre\r\n88123456\tPeña\r\n", "utf-16"))
    assert (table.encoding, table.delimiter) == ("utf-16", "\t")
    assert list(table) == [["Teléfono", "Nombre"], ["88123456", "Peña"]]


def test_excels_sep_line_sets_the_separator(make_text: MakeText) -> None:
    table = open_rows(make_text("sep=|\nTeléfono|Nombre\n88123456|Ana, la de ventas\n"))
    assert table.delimiter == "|"
    assert table.first_row_number == 2
    assert list(table) == [["Teléfono", "Nombre"], ["88123456", "Ana, la de ventas"]]


def test_decimal_commas_do_not_fool_the_separator_detection(make_text: MakeText) -> None:
    text = "Teléfono;Nombre;Saldo\n88123456;Ana;1,5\n88123457;Luis;2,75\n88123458;Eva;3\n"
    assert open_rows(make_text(text)).delimiter == ";"


def test_quoted_fields_keep_separators_and_line_breaks(make_text: MakeText) -> None:
    table = open_rows(make_text('Teléfono,Nota\n88123456,"uno, dos\ntres"\n'))
    assert list(table) == [["Teléfono", "Nota"], ["88123456", "uno, dos\ntres"]]


def test_a_single_column_csv_is_read(make_text: MakeText) -> None:
    assert list(open_rows(make_text("Teléfono\n88123456\n"))) == [["Teléfono"], ["88123456"]]


def test_the_type_comes_from_the_content_not_the_extension(make_xlsx: MakeXlsx, make_text: MakeText) -> None:
    assert open_rows(make_xlsx(ROWS, name="en_realidad_excel.csv")).kind == "xlsx"
    assert open_rows(make_text("Teléfono\n88123456\n", name="en_realidad_texto.xlsx")).kind == "csv"


def test_the_first_visible_sheet_with_data_is_read(make_xlsx: MakeXlsx) -> None:
    path = make_xlsx(
        ROWS,
        title="Datos",
        before={"Oculta": ([["Teléfono"], ["11111111"]], True), "Vacía": ([], False)},
    )
    table = open_rows(path)
    assert table.sheet == "Datos"
    assert next(iter(table)) == ROWS[0]


def test_a_named_sheet_is_read_or_refused_naming_the_sheets(make_xlsx: MakeXlsx) -> None:
    path = make_xlsx(ROWS, title="Datos", before={"Otra": ([["x"]], False)})
    assert open_rows(path, sheet="Otra").sheet == "Otra"
    with pytest.raises(FileRejected, match="Otra, Datos"):
        open_rows(path, sheet="Contactos")


def test_too_many_rows_are_refused(make_xlsx: MakeXlsx, make_text: MakeText) -> None:
    limits = ReaderLimits(max_rows=2)
    with pytest.raises(FileRejected, match="máximo permitido es 2"):
        open_rows(make_xlsx(ROWS), limits)
    table = open_rows(make_text("a\n1\n2\n3\n"), limits)
    with pytest.raises(FileRejected, match="más de 2 filas"):
        list(table)


def test_a_file_over_the_size_limit_is_refused(make_text: MakeText) -> None:
    with pytest.raises(FileRejected, match="pesa"):
        open_rows(make_text("Teléfono\n" + "88123456\n" * 200), ReaderLimits(max_file_bytes=1000))


REFUSALS = {
    "vacio.xlsx": "vacío",
    "espacios.csv": "vacío",
    "zip_corrupto.xlsx": "dañado",
    "xlsx_truncado.xlsx": "dañado",
    "zip_sin_libro.xlsx": "ZIP pero no un libro de Excel",
    "word_renombrado.xlsx": "documento de Word",
    "png_renombrado.xlsx": "imagen PNG",
    "pdf_renombrado.xls": "documento PDF",
    "html_renombrado.xls": "página HTML",
    "binario.csv": "ni un texto CSV legible",
    "bomba_zip.xlsx": "compresión anómala",
    "bomba_declarada.xlsx": "descomprimido ocuparía",
    "bomba_mentirosa.xlsx": "ocupa más de lo que declara",
    "protegido.xlsx": "protegido con contraseña",
    "ole_sin_libro.xls": "documento de Office pero no un libro de Excel",
    "xls_corrupto.xls": "dañado",
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_bad_files_are_refused_with_a_clear_reason(bad_files: dict[str, Path], name: str) -> None:
    with pytest.raises(FileRejected) as caught:
        open_rows(bad_files[name])
    assert REFUSALS[name] in caught.value.reason


def test_zip_limits_are_parameters(make_xlsx: MakeXlsx) -> None:
    path = make_xlsx(ROWS)
    with pytest.raises(FileRejected, match="descomprimido ocuparía"):
        open_rows(path, ReaderLimits(max_uncompressed_bytes=1000))
    with pytest.raises(FileRejected, match="compresión anómala"):
        open_rows(path, ReaderLimits(max_compression_ratio=1.0, ratio_floor_bytes=0))


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_a_peek_refuses_bad_files_for_the_same_reason(bad_files: dict[str, Path], name: str) -> None:
    with pytest.raises(FileRejected) as caught:
        peek_rows(bad_files[name])
    assert REFUSALS[name] in caught.value.reason


def test_a_peek_at_an_xlsx_shows_its_first_rows_as_calamine_reads_them(make_xlsx: MakeXlsx) -> None:
    rows = [["Lista de marzo"], [], ROWS[0], *ROWS[1:], ["=1+1", True, 3.5]] + [["88000000", "x"]] * 30
    path = make_xlsx(rows, before={"Oculta": ([["Teléfono"], ["1"]], True), "Vacía": ([], False)})

    peeked = peek_rows(path, count=6)

    assert peeked.sheet == "Hoja1"
    assert peeked.first_row_number == 1
    assert list(peeked) == [
        ["Lista de marzo"],
        [],
        ["Teléfono", "Nombre", "Nota"],
        ["8812-3456", "María José Pérez", "llamar después de las 5"],
        ["22123456", "Ñandú, S.A.", 'dijo "mañana"; volver'],
        [None, True, 3.5],
    ]


def test_a_peek_refuses_a_sheet_declaring_more_rows_than_allowed(make_xlsx: MakeXlsx) -> None:
    path = make_xlsx([ROWS[0]] + [["88123456", "Ana", ""]] * 20)

    with pytest.raises(FileRejected, match="tiene 21 filas; el máximo permitido es 10"):
        peek_rows(path, ReaderLimits(max_rows=10))
    assert len(list(peek_rows(path, ReaderLimits(max_rows=21)))) == 10


def _excel_like_xlsx(path: Path) -> Path:
    """A workbook as Excel writes it: shared strings (one in rich-text runs), data from B2, two sheets."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    parts = {
        "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/worksheets/sheet2.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
        "_rels/.rels": f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
        f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
        '<sheet name="Resumen" sheetId="1" r:id="rId1"/><sheet name="Datos" sheetId="2" r:id="rId2"/>'
        "</sheets></workbook>",
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{pkg}">'
        f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="/xl/worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{rel}/worksheet" Target="worksheets/sheet2.xml"/>'
        f'<Relationship Id="rId3" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
        "xl/sharedStrings.xml": f'<sst xmlns="{main}"><si><t>Teléfono</t></si>'
        "<si><r><t>Nom</t></r><r><t>bre</t></r><rPh><t>no</t></rPh></si><si><t>Ana</t></si>"
        "<si><t>resumen</t></si></sst>",
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{main}"><dimension ref="B2:C3"/><sheetData>'
        '<row r="2"><c r="B2" t="s"><v>0</v></c><c r="C2" t="s"><v>1</v></c></row>'
        '<row r="3"><c r="B3"><v>88123456</v></c><c r="C3" t="s"><v>2</v></c></row></sheetData></worksheet>',
        "xl/worksheets/sheet2.xml": f'<worksheet xmlns="{main}"><sheetData><row r="1"><c r="A1" t="s">'
        "<v>3</v></c></row></sheetData></worksheet>",
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return path


def test_a_peek_reads_shared_strings_and_a_named_sheet(corpus: Path, tmp_path: Path) -> None:
    path = _excel_like_xlsx(tmp_path / "excel.xlsx")

    peeked = peek_rows(path)

    assert (peeked.sheet, peeked.first_row_number) == ("Resumen", 1)
    assert list(peeked) == [[], ["Teléfono", "Nombre"], [88123456, "Ana"]]
    assert detect_headers(peeked).mapping() == detect_headers(open_rows(path)).mapping()
    assert list(peek_rows(path, sheet="Datos")) == [["resumen"]]
    with pytest.raises(FileRejected, match="hojas: Resumen, Datos"):
        peek_rows(path, sheet="Otra")
    assert list(peek_rows(corpus / "contactos.xls", count=2))[1][0] == "Teléfono"


def test_rows_keep_their_spreadsheet_numbers_when_the_data_starts_lower(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["B3"], sheet["C3"], sheet["B4"] = "Teléfono", "Nombre", 88123456
    path = tmp_path / "abajo.xlsx"
    book.save(path)

    assert detect_headers(open_rows(path)).row_number == 3
    assert detect_headers(peek_rows(path)).row_number == 3
