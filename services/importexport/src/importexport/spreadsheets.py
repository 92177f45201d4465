"""Open an uploaded spreadsheet and read its rows: ``.xlsx``, ``.xls`` and ``.csv``, detected by content.

The extension is never trusted: a zip holding ``xl/workbook.xml`` is an xlsx, an OLE2 container with a
``Workbook`` stream is an xls, and readable text is a CSV. Everything else is refused with a
:class:`FileRejected` whose reason (in Spanish) is shown to the user as is.

Memory: CSV rows are read lazily from disk (constant memory). Excel sheets are parsed by calamine (Rust),
which keeps the sheet's cells in its own compact form; rows become Python objects one at a time. The zip
checks below bound what calamine may inflate.

CSV encoding: a UTF-8 (or UTF-16) BOM decides; otherwise the whole file must decode as strict UTF-8,
else strict cp1252 (what Excel in a Spanish Windows saves as "CSV"), else Latin-1, which accepts any
byte. A deterministic rule is preferred to ``charset-normalizer``'s guess: for the encodings the product
promises it is exact (cp1252 bytes 0x80-0xFF almost never form valid UTF-8), and it never picks an
exotic code page for a short file with two accents.
"""

from __future__ import annotations

import codecs
import copy
import csv
import datetime
import functools
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal
from xml.etree import ElementTree as ET

import python_calamine

__all__ = ["Cell", "FileRejected", "ReaderLimits", "Row", "Table", "open_rows", "peek_rows", "spanish_count"]

Cell = (
    str | int | float | bool | datetime.date | datetime.datetime | datetime.time | datetime.timedelta | None
)
Row = list[Cell]
Kind = Literal["xlsx", "xls", "csv"]

ACCEPTED = "Formatos aceptados: .xlsx, .xls y .csv."
EMPTY = "El archivo está vacío."
NO_ROWS = "El archivo no tiene filas con datos."
PROTECTED = (
    "El archivo está protegido con contraseña. Quite la contraseña en Excel "
    "(Archivo > Información > Proteger libro) y vuelva a subirlo."
)
DAMAGED_XLSX = "El archivo está dañado: no se pudo leer como libro de Excel (.xlsx)."
DAMAGED_XLS = "El archivo está dañado: no se pudo leer como libro de Excel 97-2003 (.xls)."

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Things people upload instead of a spreadsheet, by their first bytes.
_OTHER_MAGIC = (
    (b"\x89PNG", "una imagen PNG"),
    (b"\xff\xd8\xff", "una imagen JPEG"),
    (b"GIF8", "una imagen GIF"),
    (b"%PDF", "un documento PDF"),
    (b"\x1f\x8b", "un archivo comprimido gzip"),
    (b"Rar!", "un archivo comprimido RAR"),
    (b"7z\xbc\xaf\x27\x1c", "un archivo comprimido 7-Zip"),
    (b"BM", "una imagen BMP"),
    (b"II*\x00", "una imagen TIFF"),
    (b"MM\x00*", "una imagen TIFF"),
    (b"{\\rtf", "un documento RTF"),
    (b"MZ", "un programa de Windows"),
    (b"\x7fELF", "un programa"),
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_DELIMITERS = (",", ";", "\t", "|")
_CHUNK = 1 << 20


class FileRejected(Exception):
    """A file the import refuses; ``reason`` is a Spanish sentence for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ReaderLimits:
    """Bounds checked before and while reading; ``None`` means unbounded.

    ``max_rows`` counts every row of the sheet or CSV, the header and blank rows included (Excel sheets
    are refused up front, CSV files when the row past the limit is read); ``classify_rows`` has its own
    limit on data rows.
    """

    max_file_bytes: int | None = None
    max_rows: int | None = None
    # Zip bombs: total inflated size, and inflated/compressed ratio once past ``ratio_floor_bytes``.
    max_uncompressed_bytes: int = 1 << 30
    max_compression_ratio: float = 100.0
    ratio_floor_bytes: int = 16 << 20
    max_zip_entries: int = 10_000
    # Inflate every entry once (bounded) so a header that lies about its size is caught too.
    verify_inflation: bool = True
    sample_bytes: int = 64 << 10


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of one sheet or CSV; iterating (again) starts from the first row."""

    kind: Kind
    rows_from: Callable[[], Iterator[Row]]
    first_row_number: int = 1
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    row_count: int | None = None
    max_rows: int | None = None

    def __iter__(self) -> Iterator[Row]:
        """Rows as lists of cells, the ``n``-th being spreadsheet row ``first_row_number + n``."""
        limit = self.max_rows
        for count, row in enumerate(self.rows_from(), start=1):
            if limit is not None and count > limit:
                raise FileRejected(
                    f"El archivo tiene más de {spanish_count(limit)} filas, el máximo permitido."
                )
            yield row


def open_rows(path: str | Path, limits: ReaderLimits | None = None, sheet: str | None = None) -> Table:
    """Detect the file's real type, check it, and return its rows; raise :class:`FileRejected` if unusable."""
    limits = limits or ReaderLimits()
    path = Path(path)
    kind, head = _sniff(path, limits)
    if kind == "xlsx":
        _check_zip(path, limits)
        return _open_excel(path, "xlsx", limits, sheet)
    if kind == "xls":
        _check_ole(path)
        return _open_excel(path, "xls", limits, sheet)
    return _open_csv(path, head, limits)


def peek_rows(
    path: str | Path, limits: ReaderLimits | None = None, sheet: str | None = None, count: int = 10
) -> Table:
    """The checks of :func:`open_rows` and only the first ``count`` rows, without parsing a whole sheet.

    For an xlsx the zip checks run in full, the sheet's declared size is checked against ``max_rows``
    and its first rows are streamed from the sheet XML; calamine (seconds and hundreds of MB for a
    million rows) is not involved. An xls (at most 65,536 rows) and a CSV (read lazily) are opened as
    :func:`open_rows` does. Meant for answering an upload at once; the import reads with ``open_rows``.
    """
    limits = limits or ReaderLimits()
    path = Path(path)
    kind, head = _sniff(path, limits)
    if kind == "xlsx":
        _check_zip(path, limits)
        return _peek_xlsx(path, limits, sheet, count)
    if kind == "xls":
        _check_ole(path)
        return _open_excel(path, "xls", limits, sheet)
    return _open_csv(path, head, limits)


def _sniff(path: Path, limits: ReaderLimits) -> tuple[Kind, bytes]:
    """The real type of the file from its first bytes (and its first bytes); refuses the unusable."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(limits.sample_bytes)
    except OSError as exc:
        raise FileRejected("No se pudo leer el archivo subido.") from exc
    if size == 0 or not head.strip():
        raise FileRejected(EMPTY)
    if limits.max_file_bytes is not None and size > limits.max_file_bytes:
        raise FileRejected(
            f"El archivo pesa {_mb(size)}, más que el máximo permitido ({_mb(limits.max_file_bytes)})."
        )
    if head.startswith(_ZIP_MAGIC):
        return "xlsx", head
    if head.startswith(_OLE_MAGIC):
        return "xls", head
    for magic, what in _OTHER_MAGIC:
        if head.startswith(magic):
            raise FileRejected(f"El archivo no es una hoja de cálculo (parece {what}). {ACCEPTED}")
    return "csv", head


# --- Excel -------------------------------------------------------------------------------------------


def _check_zip(path: Path, limits: ReaderLimits) -> None:
    """Refuse zips that are not xlsx, are damaged or encrypted, or inflate beyond the limits."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > limits.max_zip_entries:
                raise FileRejected(
                    f"El archivo comprimido tiene demasiadas partes ({spanish_count(len(infos))})."
                )
            names = {info.filename for info in infos}
            _require_workbook(names)
            if any(info.flag_bits & 0x1 for info in infos):
                raise FileRejected(PROTECTED)
            declared = sum(info.file_size for info in infos)
            compressed = sum(info.compress_size for info in infos)
            _check_inflated_size(declared, compressed, limits)
            if limits.verify_inflation:
                _inflate_all(archive, infos, limits)
    except FileRejected:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, RuntimeError) as exc:
        raise FileRejected(DAMAGED_XLSX) from exc


def _require_workbook(names: set[str]) -> None:
    if "xl/workbook.xml" in names:
        return
    if "xl/workbook.bin" in names:
        raise FileRejected("Los libros binarios de Excel (.xlsb) no se aceptan; guárdelo como .xlsx.")
    if "content.xml" in names and "mimetype" in names:
        raise FileRejected("Las hojas de OpenDocument (.ods) no se aceptan; guárdela como .xlsx o .csv.")
    if "word/document.xml" in names:
        raise FileRejected(f"El archivo no es una hoja de cálculo (parece un documento de Word). {ACCEPTED}")
    if "ppt/presentation.xml" in names:
        raise FileRejected(
            f"El archivo no es una hoja de cálculo (parece una presentación de PowerPoint). {ACCEPTED}"
        )
    raise FileRejected(f"El archivo es un ZIP pero no un libro de Excel (.xlsx). {ACCEPTED}")


def _check_inflated_size(inflated: int, compressed: int, limits: ReaderLimits) -> None:
    if inflated > limits.max_uncompressed_bytes:
        raise FileRejected(
            f"El archivo descomprimido ocuparía {_mb(inflated)}, más que el máximo permitido "
            f"({_mb(limits.max_uncompressed_bytes)}); se rechaza por seguridad."
        )
    ratio = inflated / max(compressed, 1)
    if inflated > limits.ratio_floor_bytes and ratio > limits.max_compression_ratio:
        raise FileRejected(
            f"El archivo tiene una compresión anómala ({spanish_count(round(ratio))} a 1); "
            "se rechaza por seguridad (posible bomba de descompresión)."
        )


def _inflate_all(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], limits: ReaderLimits) -> None:
    """Inflate every entry in bounded chunks; an entry longer than its header says is a forged zip."""
    inflated = 0
    compressed = 0
    for info in infos:
        if info.is_dir():
            continue
        # Read past the declared size: zipfile would silently stop there, calamine would not.
        probe = copy.copy(info)
        probe.file_size = limits.max_uncompressed_bytes + 1
        actual = 0
        with archive.open(probe) as member:
            while chunk := member.read(_CHUNK):
                actual += len(chunk)
                if actual > info.file_size:
                    raise FileRejected(
                        "El archivo está dañado o manipulado: una parte ocupa más de lo que declara; "
                        "se rechaza por seguridad."
                    )
        inflated += actual
        compressed += info.compress_size
        _check_inflated_size(inflated, compressed, limits)


def _check_ole(path: Path) -> None:
    """Refuse OLE2 files that are encrypted Office documents or not Excel workbooks."""
    try:
        with path.open("rb") as f:
            names = _ole_stream_names(f)
    except (OSError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise FileRejected(DAMAGED_XLS) from exc
    if "EncryptionInfo" in names or "EncryptedPackage" in names:
        raise FileRejected(PROTECTED)
    if "Workbook" in names or "Book" in names:
        return
    if "WordDocument" in names:
        raise FileRejected(f"El archivo no es una hoja de cálculo (parece un documento de Word). {ACCEPTED}")
    raise FileRejected(f"El archivo es un documento de Office pero no un libro de Excel. {ACCEPTED}")


_FREE_OR_END = 0xFFFFFFFA  # sector ids at or above this are markers (end of chain, free, FAT, DIFAT)


def _ole_stream_names(f: IO[bytes]) -> set[str]:
    """Names in an OLE2 (Compound File) directory, read with bounds so a damaged file cannot loop."""
    header = f.read(512)
    if len(header) < 512:
        raise ValueError("short OLE2 header")
    sector_size = 1 << struct.unpack_from("<H", header, 0x1E)[0]
    if sector_size not in (512, 4096):
        raise ValueError("bad OLE2 sector size")
    fat_sectors, first_dir = struct.unpack_from("<II", header, 0x2C)
    first_difat, difat_count = struct.unpack_from("<II", header, 0x44)
    f.seek(0, 2)
    sector_count = max(0, f.tell() - sector_size + sector_size - 1) // sector_size

    def read_sector(sid: int) -> bytes:
        if sid >= sector_count:
            raise ValueError("OLE2 sector out of range")
        f.seek((sid + 1) * sector_size)
        return f.read(sector_size)

    fat_ids = [sid for sid in struct.unpack_from("<109I", header, 0x4C) if sid < _FREE_OR_END]
    sid = first_difat
    for _ in range(min(difat_count, sector_count)):
        if sid >= _FREE_OR_END:
            break
        difat = struct.unpack(f"<{sector_size // 4}I", read_sector(sid))
        fat_ids.extend(s for s in difat[:-1] if s < _FREE_OR_END)
        sid = difat[-1]
    fat: list[int] = []
    for fat_sid in fat_ids[:fat_sectors]:
        fat.extend(struct.unpack(f"<{sector_size // 4}I", read_sector(fat_sid)))
    names: set[str] = set()
    sid, seen = first_dir, set()
    while sid < _FREE_OR_END:
        if sid in seen or sid >= len(fat):
            raise ValueError("bad OLE2 directory chain")
        seen.add(sid)
        block = read_sector(sid)
        for offset in range(0, len(block) - 127, 128):
            name_length = struct.unpack_from("<H", block, offset + 64)[0]
            if 2 <= name_length <= 64 and block[offset + 66] in (1, 2):
                names.add(block[offset : offset + name_length - 2].decode("utf-16-le"))
        sid = fat[sid]
    return names


def _open_excel(path: Path, kind: Kind, limits: ReaderLimits, wanted: str | None) -> Table:
    damaged = DAMAGED_XLSX if kind == "xlsx" else DAMAGED_XLS
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except python_calamine.PasswordError as exc:
        raise FileRejected(PROTECTED) from exc
    except Exception as exc:  # calamine's errors share no base class beyond Exception
        raise FileRejected(damaged) from exc
    with workbook:
        try:
            sheet = _pick_sheet(workbook, wanted)
        except FileRejected:
            raise
        except python_calamine.PasswordError as exc:
            raise FileRejected(PROTECTED) from exc
        except Exception as exc:
            raise FileRejected(damaged) from exc
    if sheet.height == 0 or sheet.start is None:
        raise FileRejected(NO_ROWS)
    if limits.max_rows is not None and sheet.height > limits.max_rows:
        raise FileRejected(
            f"El archivo tiene {spanish_count(sheet.height)} filas; "
            f"el máximo permitido es {spanish_count(limits.max_rows)}."
        )

    def rows() -> Iterator[Row]:
        for row in sheet.iter_rows():
            yield list(row)

    return Table(
        kind=kind,
        rows_from=rows,
        # calamine yields every row from the sheet's first (blank leading rows included), not from start.
        first_row_number=1,
        sheet=sheet.name,
        row_count=sheet.height,
        max_rows=limits.max_rows,
    )


def _pick_sheet(
    workbook: python_calamine.CalamineWorkbook, wanted: str | None
) -> python_calamine.CalamineSheet:
    """The named sheet, else the first visible worksheet that has data."""
    if wanted is not None:
        if wanted not in workbook.sheet_names:
            seen = ", ".join(workbook.sheet_names)
            raise FileRejected(f"El libro no tiene una hoja llamada «{wanted}» (hojas: {seen}).")
        return workbook.get_sheet_by_name(wanted)
    first: python_calamine.CalamineSheet | None = None
    for meta in workbook.sheets_metadata:
        if meta.typ != python_calamine.SheetTypeEnum.WorkSheet:
            continue
        if meta.visible != python_calamine.SheetVisibleEnum.Visible:
            continue
        sheet = workbook.get_sheet_by_name(meta.name)
        if sheet.height > 0:
            return sheet
        first = first or sheet
    if first is None:
        raise FileRejected("El libro no tiene ninguna hoja de cálculo visible.")
    return first


# --- xlsx peek ---------------------------------------------------------------------------------------

# _XML_NOTE: ElementTree never resolves external entities, the bundled expat (>= 2.4) caps entity
# amplification ("billion laughs"), and _check_zip has bounded every part's inflated size first.
_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_DOC_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_CELL_REF = re.compile(r"([A-Z]{1,3})([0-9]+)")
_RANGE_REF = re.compile(r"([A-Z]{1,3})([0-9]+):[A-Z]{1,3}([0-9]+)")


@dataclass(frozen=True, slots=True)
class _SheetPart:
    name: str
    part: str
    visible: bool


def _peek_xlsx(path: Path, limits: ReaderLimits, wanted: str | None, count: int) -> Table:
    """The first ``count`` rows of the sheet calamine would pick, streamed from its XML."""
    try:
        with zipfile.ZipFile(path) as archive:
            sheets = _sheet_parts(archive)
            if wanted is not None:
                chosen = [sheet for sheet in sheets if sheet.name == wanted]
                if not chosen:
                    seen = ", ".join(sheet.name for sheet in sheets)
                    raise FileRejected(f"El libro no tiene una hoja llamada «{wanted}» (hojas: {seen}).")
            else:
                chosen = [sheet for sheet in sheets if sheet.visible]
                if not chosen:
                    raise FileRejected("El libro no tiene ninguna hoja de cálculo visible.")
            for sheet in chosen:
                first, rows = _first_rows(archive, sheet.part, count, limits)
                if rows:
                    resolved = _resolve_strings(archive, rows)
                    return Table(
                        kind="xlsx",
                        rows_from=functools.partial(iter, resolved),
                        first_row_number=first,
                        sheet=sheet.name,
                    )
    except FileRejected:
        raise
    except (zipfile.BadZipFile, KeyError, ET.ParseError, ValueError, OSError, EOFError, zlib.error) as exc:
        raise FileRejected(DAMAGED_XLSX) from exc
    raise FileRejected(NO_ROWS)


def _sheet_parts(archive: zipfile.ZipFile) -> list[_SheetPart]:
    """The worksheets of the workbook in order, with their part names and visibility."""
    targets: dict[str, str] = {}
    with archive.open("xl/_rels/workbook.xml.rels") as rels:
        tree = ET.parse(rels)  # noqa: S314 (see _XML_NOTE)
        for element in tree.getroot().iter(f"{_PKG_REL_NS}Relationship"):
            if str(element.get("Type", "")).endswith("/worksheet"):
                targets[str(element.get("Id"))] = _part_name(str(element.get("Target", "")))
    sheets: list[_SheetPart] = []
    with archive.open("xl/workbook.xml") as workbook:
        tree = ET.parse(workbook)  # noqa: S314
        for element in tree.getroot().iter(f"{_MAIN_NS}sheet"):
            part = targets.get(str(element.get(f"{_DOC_REL_NS}id")))
            if part is not None:
                visible = element.get("state", "visible") == "visible"
                sheets.append(_SheetPart(str(element.get("name", "")), part, visible))
    return sheets


def _part_name(target: str) -> str:
    """A relationship target of ``xl/workbook.xml`` as a zip member name."""
    if target.startswith("/"):
        return target[1:]
    parts: list[str] = ["xl"]
    for piece in target.split("/"):
        if piece == "..":
            if parts:
                parts.pop()
        elif piece and piece != ".":
            parts.append(piece)
    return "/".join(parts)


def _first_rows(
    archive: zipfile.ZipFile, part: str, count: int, limits: ReaderLimits
) -> tuple[int, list[list[object]]]:
    """The first ``count`` rows as calamine yields them (from row 1, from the first used column).

    Shared strings come back as ``("s", index)``; the returned row number is always 1.
    """
    rows: list[list[object]] = []
    first_column: int | None = None
    with archive.open(part) as sheet:
        events = ET.iterparse(sheet, events=("end",))  # noqa: S314
        for _, element in events:
            tag = element.tag
            if tag == f"{_MAIN_NS}dimension":
                first_column = _check_dimension(str(element.get("ref", "")), limits)
            elif tag == f"{_MAIN_NS}row":
                number = int(element.get("r") or len(rows) + 1)
                rows.extend([] for _ in range(min(number - 1, count) - len(rows)))
                rows.append(_row_cells(element))
                element.clear()
                if len(rows) >= count:
                    break
    if not any(rows):
        return 1, []
    if first_column is None:
        first_column = min(_leading_blanks(row) for row in rows if any(c is not None for c in row))
    return 1, [row[first_column:] for row in rows[:count]]


def _leading_blanks(row: list[object]) -> int:
    return next(i for i, cell in enumerate(row) if cell is not None)


def _check_dimension(ref: str, limits: ReaderLimits) -> int | None:
    """Refuse a sheet declaring more rows than allowed; the first used column it declares (from 0)."""
    match = _RANGE_REF.fullmatch(ref.replace("$", ""))
    if match is None:
        return None
    height = int(match.group(3)) - int(match.group(2)) + 1
    if limits.max_rows is not None and height > limits.max_rows:
        raise FileRejected(
            f"El archivo tiene {spanish_count(height)} filas; "
            f"el máximo permitido es {spanish_count(limits.max_rows)}."
        )
    return _column_index(match.group(1))


def _row_cells(row: ET.Element) -> list[object]:
    cells: list[object] = []
    for cell in row.iter(f"{_MAIN_NS}c"):
        match = _CELL_REF.fullmatch(str(cell.get("r", "")))
        column = _column_index(match.group(1)) if match else len(cells)
        while len(cells) < column:
            cells.append(None)
        cells.append(_cell_value(cell))
    return cells


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - 64
    return index - 1


def _cell_value(cell: ET.Element) -> object:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        inline = cell.find(f"{_MAIN_NS}is")
        return _text_of(inline) if inline is not None else ""
    value = cell.findtext(f"{_MAIN_NS}v")
    if not value:
        return None  # empty, or a formula never calculated
    if kind == "s":
        return ("s", int(value))
    if kind in ("str", "d"):
        return value
    if kind == "b":
        return value.strip() == "1"
    if kind == "e":
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _text_of(item: ET.Element) -> str:
    """The text of a string item (``<t>``, or rich-text runs ``<r><t>``), phonetic hints left out."""
    direct = item.find(f"{_MAIN_NS}t")
    if direct is not None:
        return direct.text or ""
    return "".join(run.findtext(f"{_MAIN_NS}t") or "" for run in item.iter(f"{_MAIN_NS}r"))


def _resolve_strings(archive: zipfile.ZipFile, rows: list[list[object]]) -> list[Row]:
    """Replace shared-string references by their text, reading the table only as far as needed."""
    wanted = max(
        (cell[1] for row in rows for cell in row if isinstance(cell, tuple)),
        default=-1,
    )
    strings: list[str] = []
    if wanted >= 0:
        with archive.open("xl/sharedStrings.xml") as table:
            events = ET.iterparse(table, events=("end",))  # noqa: S314
            for _, element in events:
                if element.tag == f"{_MAIN_NS}si":
                    strings.append(_text_of(element))
                    element.clear()
                    if len(strings) > wanted:
                        break
    resolved: list[Row] = []
    for row in rows:
        out: Row = []
        for cell in row:
            if isinstance(cell, tuple):
                index = int(cell[1])
                out.append(strings[index] if index < len(strings) else "")
            else:
                out.append(cell if isinstance(cell, str | int | float | bool) or cell is None else str(cell))
        resolved.append(out)
    return resolved


# --- CSV ---------------------------------------------------------------------------------------------


def _open_csv(path: Path, head: bytes, limits: ReaderLimits) -> Table:
    encoding = _detect_encoding(path, head)
    sample = _decode_sample(head, encoding)
    if "\x00" in sample or _control_share(sample) > 0.01:
        raise FileRejected(f"El archivo no es una hoja de cálculo ni un texto CSV legible. {ACCEPTED}")
    start = sample.lstrip("\ufeff \t\r\n")[:512].lower()
    if start.startswith(("<!doctype html", "<html", "<table")) or "<html" in start:
        raise FileRejected(
            "El archivo es una página HTML, no una hoja de cálculo (algunos sistemas exportan así con "
            "extensión .xls). Ábralo en Excel y guárdelo como .xlsx."
        )
    if start.startswith("<?xml"):
        raise FileRejected(f"El archivo es un documento XML, no una hoja de cálculo. {ACCEPTED}")
    lines = sample.splitlines()
    skip = 0
    delimiter = None
    # Excel writes "sep=;" as a first line when asked to; honour it.
    if lines and lines[0].lower().startswith("sep=") and len(lines[0].strip()) == 5:
        delimiter = lines[0].strip()[4]
        skip = 1
    if delimiter is None:
        delimiter = _detect_delimiter(sample)

    def rows() -> Iterator[Row]:
        with path.open(encoding=encoding, newline="") as f:
            for _ in range(skip):
                f.readline()
            reader = csv.reader(f, delimiter=delimiter)
            number = skip
            try:
                for record in reader:
                    number += 1
                    yield list(record)
            except csv.Error as exc:
                raise FileRejected(f"El CSV está mal formado cerca de la fila {number + 1}: {exc}.") from exc

    return Table(
        kind="csv",
        rows_from=rows,
        first_row_number=1 + skip,
        encoding=encoding,
        delimiter=delimiter,
        max_rows=limits.max_rows,
    )


def _detect_encoding(path: Path, head: bytes) -> str:
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    for name in ("utf-8", "cp1252"):
        if _decodes(path, name):
            return name
    return "latin-1"


def _decodes(path: Path, encoding: str) -> bool:
    """Whether the whole file decodes strictly, read in chunks (constant memory)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _decode_sample(head: bytes, encoding: str) -> str:
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)


def _control_share(text: str) -> float:
    controls = sum(1 for ch in text if ch < " " and ch not in "\t\r\n")
    return controls / max(len(text), 1)


def _detect_delimiter(sample: str) -> str:
    """The delimiter that splits the sample's lines into the most consistent number of fields (> 1)."""
    lines = sample.splitlines()
    if len(lines) > 1:
        lines = lines[:-1]  # the sample may end mid-line
    lines = [line for line in lines[:50] if line.strip()]
    best, best_score = ",", (0.0, 0)
    for delimiter in _DELIMITERS:
        try:
            counts = [len(record) for record in csv.reader(lines, delimiter=delimiter)]
        except csv.Error:
            continue
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        if mode < 2:
            continue
        score = (counts.count(mode) / len(counts), mode)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def spanish_count(n: int) -> str:
    """``1000000`` → ``1.000.000``, as counts are written in Costa Rica."""
    return f"{n:,}".replace(",", ".")


def _mb(size: int) -> str:
    whole, tenth = divmod(round(size / (1 << 20) * 10), 10)
    return f"{spanish_count(whole)},{tenth} MB"
