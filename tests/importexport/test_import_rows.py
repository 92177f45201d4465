"""From file rows to contacts: phones normalised, Excel floats and blanks handled, repeats merged."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

import pytest

from importexport.headers import detect_headers
from importexport.rows import (
    AcceptedRow,
    DuplicateTracker,
    RejectedRow,
    cell_text,
    classify_rows,
    merge_duplicates,
)
from importexport.spreadsheets import Cell, FileRejected, open_rows

MakeXlsx = Callable[..., Path]
MakeText = Callable[..., Path]


def classify(rows: list[list[Cell]]) -> list[AcceptedRow | RejectedRow]:
    return list(classify_rows(rows, detect_headers(rows)))


def test_an_excel_file_becomes_contacts_with_spreadsheet_row_numbers(make_xlsx: MakeXlsx) -> None:
    path = make_xlsx(
        [
            ["Contactos de marzo"],
            ["Teléfono", "Nombre", "Estado", "Correo", "Cédula", "Nota"],
            # A formula cell gives its last computed value (openpyxl stores none), never the formula.
            [88123456.0, "Ana", "SIN GESTIONAR", "ana@example.cr", 105670123.0, "=1+1"],
            [None, None, None, None, None, None],
            ["+506 6012-3456", "  Luis  ", None, "no-es-correo", None, "nan"],
            ["1234", "Corto", None, None, None, None],
            [None, "Sin teléfono", None, None, None, None],
        ]
    )
    table = open_rows(path)
    outcomes = list(classify_rows(table, detect_headers(table)))
    assert outcomes == [
        AcceptedRow(
            row=3,
            raw_phone="88123456",
            e164="+50688123456",
            national="8812-3456",
            kind="mobile",
            operator="kolbi",
            name="Ana",
            status="SIN GESTIONAR",
            email="ana@example.cr",
            extra={"Cédula": "105670123"},
        ),
        AcceptedRow(
            row=5,
            raw_phone="+506 6012-3456",
            e164="+50660123456",
            national="6012-3456",
            kind="mobile",
            operator="telefonica",
            name="Luis",
            warnings=("correo «no-es-correo» no válido; se ignoró",),
        ),
        RejectedRow(row=6, raw_phone="1234", reason="número demasiado corto"),
        RejectedRow(row=7, raw_phone="", reason="teléfono vacío"),
    ]


def test_a_csv_with_cp1252_accents_and_semicolons_imports(make_text: MakeText) -> None:
    path = make_text("Número de teléfono;Nombre\r\n8812 3456;Peña\r\n506-2212-3456;Óscar\r\n", "cp1252")
    table = open_rows(path)
    rows = [r for r in classify_rows(table, detect_headers(table)) if isinstance(r, AcceptedRow)]
    assert [(r.row, r.e164, r.name, r.kind) for r in rows] == [
        (2, "+50688123456", "Peña", "mobile"),
        (3, "+50622123456", "Óscar", "fixed_line"),
    ]


def test_formula_text_in_a_csv_is_kept_as_plain_text(make_text: MakeText) -> None:
    table = open_rows(make_text('Teléfono,Nota\n88123456,"=HYPERLINK(""http://x"")"\n'))
    (row,) = classify_rows(table, detect_headers(table))
    assert isinstance(row, AcceptedRow)
    assert row.note == '=HYPERLINK("http://x")'


def test_invalid_phones_are_rejected_with_parse_phones_reason() -> None:
    outcomes = classify([["Teléfono"], ["12345678"], ["881234567890"], ["hola"], ["+1 555"]])
    assert [(o.row, o.reason) for o in outcomes if isinstance(o, RejectedRow)] == [
        (2, "número no válido según el plan de numeración"),
        (3, "número demasiado largo"),
        (4, "el teléfono no contiene dígitos"),
        (5, "número demasiado corto"),
    ]
    assert isinstance(outcomes[0], RejectedRow)
    assert outcomes[0].message == "número no válido según el plan de numeración («12345678»)"


def test_blank_rows_are_skipped_silently() -> None:
    outcomes = classify(
        [["Teléfono", "Nombre"], [None, ""], ["nan", "NaN"], ["  ", None], ["88123456", "Ana"]]
    )
    assert [o.row for o in outcomes] == [5]


def test_a_foreign_number_is_kept_with_its_own_format() -> None:
    (row,) = classify([["phone", "name"], ["+1 202 555 0123", "Joe"]])
    assert isinstance(row, AcceptedRow)
    assert (row.e164, row.national, row.operator) == ("+12025550123", "(202) 555-0123", None)


def test_cells_exported_with_a_formula_escape_come_back_as_they_were() -> None:
    (row,) = classify([["Teléfono", "Nota", "Nombre"], ["'+506 8812 3456", "'=SUM(A1)", "'-"]])
    assert isinstance(row, AcceptedRow)
    assert (row.e164, row.note, row.name) == ("+50688123456", "=SUM(A1)", "-")


def test_short_rows_are_padded_with_blanks() -> None:
    (row,) = classify([["Nombre", "Teléfono", "Nota"], ["Ana", "88123456"]])
    assert isinstance(row, AcceptedRow)
    assert (row.name, row.note) == ("Ana", None)


def test_repeats_merge_into_the_first_row_with_later_non_empty_fields_winning() -> None:
    outcomes = classify(
        [
            ["Teléfono", "Nombre", "Nota", "Zona"],
            ["8812-3456", "Ana", "primera", "Norte"],
            ["22123456", "Oficina", None, None],
            ["+506 88123456", None, "segunda", None],
            [88123456.0, "Ana María", None, "Sur"],
        ]
    )
    merged = merge_duplicates(o for o in outcomes if isinstance(o, AcceptedRow))
    assert [(r.row, r.e164, r.name, r.note, dict(r.extra)) for r in merged.rows] == [
        (2, "+50688123456", "Ana María", "segunda", {"Zona": "Sur"}),
        (3, "+50622123456", "Oficina", None, {}),
    ]
    assert [(m.into, m.row) for m in merged.merges] == [(2, 4), (2, 5)]


def test_streaming_labels_repeats_with_their_first_row() -> None:
    outcomes = classify([["Teléfono"], ["88123456"], ["22123456"], ["8812-3456"], ["88123456"]])
    tracker = DuplicateTracker()
    assert [tracker.first_row_of(o) for o in outcomes if isinstance(o, AcceptedRow)] == [None, None, 2, 2]


def test_too_many_data_rows_are_refused() -> None:
    rows: list[list[Cell]] = [["Teléfono"], ["88123456"], [None], ["88123457"], ["88123458"]]
    with pytest.raises(FileRejected, match="más de 2 filas de datos"):
        list(classify_rows(rows, detect_headers(rows), max_rows=2))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("  x ", "x"),
        ("NaN", ""),
        ("null", ""),
        (float("nan"), ""),
        (88123456.0, "88123456"),
        (1.5, "1.5"),
        (7, "7"),
        (True, "VERDADERO"),
        (datetime.date(2024, 1, 2), "2024-01-02"),
        (datetime.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02 03:04:05"),
        ("'=1", "=1"),
        ("'hola", "'hola"),
    ],
)
def test_cells_become_the_text_a_user_sees(value: Cell, text: str) -> None:
    assert cell_text(value) == text
