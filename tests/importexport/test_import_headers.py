"""Finding the header row and the column of each field, in Spanish or English, with or without accents."""

from __future__ import annotations

from pathlib import Path

import pytest

from importexport.headers import detect_headers
from importexport.spreadsheets import Cell, FileRejected, open_rows
from importexport.writers import CONTACT_HEADERS


@pytest.mark.parametrize(
    "header",
    [
        "telefono",
        "Teléfono",
        "TELÉFONO",
        "tel",
        "Tel.",
        "celular",
        "Celular ",
        "movil",
        "Móvil",
        "numero",
        "Número",
        "phone",
        "Phone",
        "mobile",
        "Teléfono móvil",
        "Número de teléfono",
        "Nº Celular",
        "Teléfonos",
        "Phone Number",
        "Mobile phone",
        "teléfono-celular",
    ],
)
def test_phone_headers_are_recognised(header: str) -> None:
    headers = detect_headers([["Id", header, "Otra"]])
    assert headers.columns["phone"] == 1


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("nombre", "name"),
        ("Nombre completo", "name"),
        ("Nombre del cliente", "name"),
        ("cliente", "name"),
        ("Name", "name"),
        ("nota", "note"),
        ("Notas", "note"),
        ("Observaciones", "note"),
        ("note", "note"),
        ("NOTES", "note"),
        ("estado", "status"),
        ("Status", "status"),
        ("correo", "email"),
        ("Correo electrónico", "email"),
        ("email", "email"),
        ("E-mail", "email"),
        ("e mail", "email"),
    ],
)
def test_other_fields_are_recognised_in_spanish_and_english(header: str, field: str) -> None:
    headers = detect_headers([["Teléfono", header]])
    assert headers.columns[field] == 1


@pytest.mark.parametrize("header", ["Número de cédula", "Estado civil", "ID cliente", "Código", "Cédula", ""])
def test_ambiguous_words_inside_other_headers_go_to_extra(header: str) -> None:
    headers = detect_headers([["Teléfono", header]])
    assert headers.columns == {"phone": 0}
    assert headers.extra == ((1, header or "Columna B"),)


def test_a_title_line_above_the_headers_is_skipped(corpus: Path) -> None:
    headers = detect_headers(open_rows(corpus / "contactos.xls"))
    assert (headers.row_index, headers.row_number) == (1, 2)
    assert headers.mapping() == {
        "phone": "Teléfono",
        "name": "Nombre",
        "note": "Observaciones",
        "extra:Cédula": "Cédula",
    }


def test_a_title_that_mentions_phones_does_not_become_the_header() -> None:
    rows: list[list[Cell]] = [
        ["Lista de teléfonos", None],
        [None, None],
        ["Teléfono móvil", "Nombre"],
        ["88123456", "Ana"],
    ]
    assert detect_headers(rows).row_index == 2


def test_an_exact_synonym_beats_a_partial_one_and_the_rest_go_to_extra() -> None:
    headers = detect_headers([["Teléfono fijo", "Celular", "Nombre", "Nombre", "Cliente"]])
    assert headers.columns == {"phone": 1, "name": 2}
    assert headers.extra == ((0, "Teléfono fijo"), (3, "Nombre"), (4, "Cliente"))


def test_a_counter_column_named_numero_loses_to_a_real_phone_header() -> None:
    headers = detect_headers([["Número", "Teléfono", "Nombre"]])
    assert headers.columns["phone"] == 1


def test_repeated_or_blank_extra_headers_get_unique_keys() -> None:
    headers = detect_headers([["Teléfono", "Zona", "Zona", None, "Zona"]])
    assert [key for _, key in headers.extra] == ["Zona", "Zona (2)", "Columna D", "Zona (3)"]


def test_no_phone_column_is_refused_naming_the_headers_seen() -> None:
    with pytest.raises(FileRejected) as caught:
        detect_headers([[], ["Nombre", "Cédula", "Dirección"], ["Ana", "1-1234-0567", "San José"]])
    assert "columna de teléfono" in caught.value.reason
    assert "«Nombre», «Cédula», «Dirección»" in caught.value.reason


def test_a_file_without_a_header_row_is_told_to_add_one() -> None:
    with pytest.raises(FileRejected) as caught:
        detect_headers([[88123456.0, "Ana"], [88123457.0, "Luis"]])
    assert "no tiene fila de encabezados" in caught.value.reason
    assert "«88123456»" in caught.value.reason


def test_a_phone_header_below_the_first_ten_rows_is_not_searched() -> None:
    rows: list[list[Cell]] = [["x"]] * 10 + [["Teléfono"]]
    with pytest.raises(FileRejected):
        detect_headers(rows)


def test_an_empty_table_is_refused() -> None:
    with pytest.raises(FileRejected, match="no tiene encabezados"):
        detect_headers([[None, ""], []])


def test_the_read_only_columns_of_our_own_export_are_not_kept_as_extra() -> None:
    headers = detect_headers([[*CONTACT_HEADERS, "Cédula"]])

    assert headers.mapping() == {
        "phone": "teléfono",
        "name": "nombre",
        "note": "nota",
        "status": "estado",
        "extra:Cédula": "Cédula",
    }


def test_an_id_column_of_another_file_is_kept_as_extra() -> None:
    headers = detect_headers([["ID", "Teléfono", "Creado"]])

    assert headers.extra == ((0, "ID"), (2, "Creado"))
