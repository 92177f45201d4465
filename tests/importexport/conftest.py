"""Files for the import/export tests, made in the tests; the bad-file corpus is generated here too.

Only what our own dependencies cannot write is committed (``corpus/contactos.xls``,
``corpus/protegido.xlsx``; see ``corpus/make_binary_fixtures.py``).
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy.engine import Engine

from contacts.client import LocalContactsClient
from contacts.commands import Caller
from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.statuses import DEFAULT_CATALOGUE
from importexport import pipeline
from kernel.roles import Role
from kernel.store import EventStore, create_engine
from system.migrate import upgrade

CORPUS = Path(__file__).parent / "corpus"

MakeXlsx = Callable[..., Path]
MakeText = Callable[..., Path]


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The folder of committed binary fixtures."""
    return CORPUS


@pytest.fixture
def make_xlsx(tmp_path: Path) -> MakeXlsx:
    """Write rows (lists of cells) to an xlsx with openpyxl; extra sheets as ``{title: (rows, hidden)}``."""

    def make(
        rows: Sequence[Sequence[object]],
        name: str = "contactos.xlsx",
        title: str = "Hoja1",
        before: dict[str, tuple[Sequence[Sequence[object]], bool]] | None = None,
    ) -> Path:
        book = openpyxl.Workbook()
        first = book.active
        assert first is not None
        book.remove(first)
        for sheet_title, (sheet_rows, hidden) in (before or {}).items():
            sheet = book.create_sheet(sheet_title)
            for row in sheet_rows:
                sheet.append(list(row))
            if hidden:
                sheet.sheet_state = "hidden"
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
        path = tmp_path / name
        book.save(path)
        return path

    return make


@pytest.fixture
def make_text(tmp_path: Path) -> MakeText:
    """Write text in an encoding (``utf-8-sig`` adds the BOM) under a name."""

    def make(text: str, encoding: str = "utf-8", name: str = "contactos.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return path

    return make


def _xlsx_bytes(rows: Sequence[Sequence[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _forge_sizes(data: bytes, member: str, file_size: int) -> bytes:
    """Rewrite the uncompressed size ``member`` declares, in its local header and the central directory."""
    out = bytearray(data)
    name = member.encode()
    # Local file header: signature, ..., uncompressed size at offset 22, name length at 26.
    local = out.find(b"PK\x03\x04")
    while local != -1:
        name_length = struct.unpack_from("<H", out, local + 26)[0]
        if out[local + 30 : local + 30 + name_length] == name:
            struct.pack_into("<I", out, local + 22, file_size)
        local = out.find(b"PK\x03\x04", local + 4)
    # Central directory entry: uncompressed size at offset 24, name length at 28, name at 46.
    central = out.find(b"PK\x01\x02")
    while central != -1:
        name_length = struct.unpack_from("<H", out, central + 28)[0]
        if out[central + 46 : central + 46 + name_length] == name:
            struct.pack_into("<I", out, central + 24, file_size)
        central = out.find(b"PK\x01\x02", central + 4)
    return bytes(out)


def _zip_with(entries: dict[str, bytes], level: int = 9) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    return out.getvalue()


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bad-file corpus: name → file, each to be refused with a clear reason."""
    folder = tmp_path_factory.mktemp("corpus")
    good = _xlsx_bytes([["Teléfono", "Nombre"], ["88123456", "Ana"]])
    workbook_parts = {name: zipfile.ZipFile(io.BytesIO(good)).read(name) for name in ("xl/workbook.xml",)}
    zeros = b"0" * (64 << 20)
    files: dict[str, bytes] = {
        "vacio.xlsx": b"",
        "espacios.csv": b"  \r\n \r\n",
        "zip_corrupto.xlsx": b"PK\x03\x04" + bytes(range(256)) * 8,
        "xlsx_truncado.xlsx": good[: len(good) // 2],
        "zip_sin_libro.xlsx": _zip_with({"hola.txt": b"hola"}),
        "word_renombrado.xlsx": _zip_with({"word/document.xml": b"<w:document/>"}),
        "png_renombrado.xlsx": b"\x89PNG\r\n\x1a\n" + bytes(200),
        "pdf_renombrado.xls": b"%PDF-1.7\n" + b"x" * 200,
        "html_renombrado.xls": "<html><body><table><tr><td>Teléfono</td></tr></table></body></html>".encode(),
        "binario.csv": b"Tel\x00\x01\x02\x03" * 100,
        # 64 MiB of zeros in ~64 KiB: refused by its compression ratio before anything is inflated.
        "bomba_zip.xlsx": _zip_with({**workbook_parts, "xl/worksheets/sheet1.xml": zeros}),
        # A header claiming ~4 GiB: refused by the declared size alone.
        "bomba_declarada.xlsx": _forge_sizes(
            _zip_with({**workbook_parts, "xl/worksheets/sheet1.xml": b"<x/>" * 1000}),
            "xl/worksheets/sheet1.xml",
            0xFFFF_FFF0,
        ),
        # A header claiming 1 KB for 2 MiB of content: caught while inflating.
        "bomba_mentirosa.xlsx": _forge_sizes(
            _zip_with({**workbook_parts, "xl/worksheets/sheet1.xml": b"<x/>" * (1 << 19)}),
            "xl/worksheets/sheet1.xml",
            1000,
        ),
    }
    xls = (CORPUS / "contactos.xls").read_bytes()
    files["ole_sin_libro.xls"] = xls.replace("Workbook".encode("utf-16-le"), "Xorkbook".encode("utf-16-le"))
    files["xls_corrupto.xls"] = xls[:8] + bytes(range(256)) * 4
    paths = {}
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content)
        paths[name] = path
    paths["protegido.xlsx"] = CORPUS / "protegido.xlsx"
    return paths


# --- a contacts service over a real database, for the pipeline and export tests ---------------------


@dataclass
class ContactsSystem:
    """The contacts service over one migrated database, and the direct client importexport uses."""

    engine: Engine
    store: EventStore
    service: ContactsService
    client: LocalContactsClient

    def events(self) -> int:
        """How many events the store holds."""
        return self.store.last_position()

    def contacts(self) -> list[tuple[Any, ...]]:
        """Every contact's identity and fields, sorted (what a user can see of the import)."""
        page_rows = []
        for contact in ContactQueries(self.engine, self.store).iter_contacts(page_size=1000):
            page_rows.append(
                (
                    contact.id,
                    contact.phone_e164,
                    contact.name,
                    contact.status,
                    contact.note,
                    contact.email,
                    tuple(sorted(contact.extra.items())),
                    contact.list_name,
                    contact.operator,
                )
            )
        return sorted(page_rows)


def contacts_system(url: str) -> ContactsSystem:
    """The contacts service on ``url`` (migrated)."""
    engine = create_engine(url)
    upgrade(engine)
    store = EventStore(engine)
    service = ContactsService(engine, store, LockPolicy(10, 60), DEFAULT_CATALOGUE)
    return ContactsSystem(engine, store, service, LocalContactsClient(service, ContactQueries(engine, store)))


@pytest.fixture
def system(database_url: str) -> Iterator[ContactsSystem]:
    """Contacts on SQLite and on PostgreSQL, in turn."""
    built = contacts_system(database_url)
    try:
        yield built
    finally:
        built.engine.dispose()


@pytest.fixture
def lead() -> Caller:
    """A TeamLead, who may import and export."""
    return Caller(user_id="u-lead", username="lucia", role=Role.TEAM_LEAD)


@pytest.fixture(params=["here", "apart"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Imports read their file in this process, then in a process of their own, whatever its size."""
    monkeypatch.setattr(pipeline, "READ_APART_FROM_BYTES", 0 if request.param == "apart" else 1 << 62)
    return str(request.param)
