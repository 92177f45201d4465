"""Regenerate the binary fixtures that the project's own dependencies cannot write.

``contactos.xls`` needs ``xlwt`` and ``protegido.xlsx`` needs ``msoffcrypto-tool``; neither is a project
dependency, so this script is run by hand in a throwaway environment and its output is committed:

    python -m venv /tmp/fixturevenv && /tmp/fixturevenv/bin/pip install xlwt msoffcrypto-tool openpyxl
    /tmp/fixturevenv/bin/python tests/importexport/corpus/make_binary_fixtures.py
"""

from __future__ import annotations

import io
from pathlib import Path

HERE = Path(__file__).parent

# The rows of contactos.xls; tests/importexport/test_readers.py asserts them.
XLS_ROWS: list[list[object]] = [
    ["Lista de marzo", "", "", ""],
    ["Teléfono", "Nombre", "Observaciones", "Cédula"],
    [88123456.0, "María José Pérez", "llamar después de las 5", "1-1234-0567"],
    ["8312-3456", "Ñandú S.A.", "", ""],
    [22123456, "Óscar", '=HYPERLINK("x")', 105670123],
]


def make_xls(path: Path) -> None:
    """Write a small BIFF8 workbook with a title row above the headers, accents, floats and ints."""
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Contactos")
    for r, row in enumerate(XLS_ROWS):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.save(str(path))


def make_encrypted_xlsx(path: Path) -> None:
    """Write an xlsx protected with the password ``secreto`` (an OLE2 container with EncryptionInfo)."""
    import msoffcrypto.format.ooxml
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Teléfono", "Nombre"])
    sheet.append(["88123456", "Ana"])
    plain = io.BytesIO()
    book.save(plain)
    plain.seek(0)
    with path.open("wb") as out:
        msoffcrypto.format.ooxml.OOXMLFile(plain).encrypt("secreto", out)


if __name__ == "__main__":
    make_xls(HERE / "contactos.xls")
    make_encrypted_xlsx(HERE / "protegido.xlsx")
    print("written", HERE / "contactos.xls", HERE / "protegido.xlsx")
