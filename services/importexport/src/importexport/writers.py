"""Stream contacts to ``.csv`` or ``.xlsx`` in constant memory, with no cell able to run a formula.

Text cells that begin with ``=``, ``+``, ``-``, ``@``, tab or CR get a leading ``'`` (the OWASP advice
against CSV/formula injection); the import undoes it, so exporting and re-importing changes nothing.

CSV: UTF-8 with a BOM (without it Excel on Windows reads the file in the ANSI code page and breaks
accents) and ``;`` between fields: Costa Rican Windows uses the decimal comma, so Excel splits CSV
files on ``;``, and a ``,`` file opens with everything in column A. A ``sep=;`` line would force it but
makes Excel ignore the BOM. The importer detects both separators.

XLSX: the sheet XML is written by hand straight into a deflated zip entry, a few hundred rows at a time
(inline strings, no shared-string table), so memory stays flat whatever the row count. openpyxl's
write-only mode does the same with far more Python per cell; see ``bench/export.py`` for figures.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = [
    "CONTACT_HEADERS",
    "COSTA_RICA_TIME",
    "ExportRow",
    "escape_formula",
    "export_filename",
    "write_csv",
    "write_xlsx",
]

ExportCell = str | int | float | bool | datetime.datetime | datetime.date | None
Target = str | Path | IO[bytes]

CONTACT_HEADERS = (
    "id",
    "teléfono",
    "nombre",
    "estado",
    "nota",
    "bloqueado por",
    "último contacto",
    "creado",
    "actualizado",
)
# Costa Rica keeps UTC-6 all year (no daylight saving), so a fixed offset needs no tz database.
COSTA_RICA_TIME = datetime.timezone(datetime.timedelta(hours=-6), "America/Costa_Rica")

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_BATCH_ROWS = 500
# Formatted times remembered per export: contacts of one import share their creation time.
_TIME_CACHE = 4096
_EXCEL_EPOCH = datetime.datetime(1899, 12, 30)
_DAY = datetime.timedelta(days=1)
# Characters XML 1.0 cannot carry at all; dropped from text cells.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# Excel reads "_x0041_" in text as an escaped character; escape the underscore to keep the text as is.
_OOXML_ESCAPE = re.compile("_(x[0-9A-Fa-f]{4}_)")


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One contact as exported, in the order of :data:`CONTACT_HEADERS`."""

    id: str
    phone: str
    name: str | None
    status: str
    note: str | None
    locked_by: str | None
    last_contacted_at: datetime.datetime | None
    created_at: datetime.datetime
    updated_at: datetime.datetime

    def cells(self) -> tuple[ExportCell, ...]:
        """The row's cells in header order."""
        return (
            self.id,
            self.phone,
            self.name,
            self.status,
            self.note,
            self.locked_by,
            self.last_contacted_at,
            self.created_at,
            self.updated_at,
        )


def escape_formula(text: str) -> str:
    """``'=SUM(A1)`` for ``=SUM(A1)``: text a spreadsheet will show, never evaluate."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def export_filename(now: datetime.datetime, extension: str) -> str:
    """``contactos_YYYYMMDD_HHMMSS.<extension>``, the name PRODUCT.md gives the download."""
    return f"contactos_{now:%Y%m%d_%H%M%S}.{extension}"


def write_csv(
    target: Target,
    rows: Iterable[Sequence[ExportCell]],
    headers: Sequence[str] = CONTACT_HEADERS,
    delimiter: str = ";",
    timezone: datetime.tzinfo = COSTA_RICA_TIME,
) -> int:
    """Write ``headers`` and ``rows`` as Excel-friendly CSV; return the number of data rows."""
    with _binary(target) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="", write_through=False)
        try:
            writer = csv.writer(text, delimiter=delimiter, lineterminator="\r\n")
            writer.writerow([escape_formula(h) for h in headers])
            cell = _csv_cell_writer(timezone)
            count = 0
            for row in rows:
                writer.writerow([escape_formula(v) if type(v) is str else cell(v) for v in row])
                count += 1
            text.flush()
        finally:
            text.detach()
    return count


def write_xlsx(
    target: Target,
    rows: Iterable[Sequence[ExportCell]],
    headers: Sequence[str] = CONTACT_HEADERS,
    sheet_name: str = "Contactos",
    timezone: datetime.tzinfo = COSTA_RICA_TIME,
    compresslevel: int = 1,
    column_widths: Sequence[float] | None = None,
) -> int:
    """Write ``headers`` (bold, frozen) and ``rows`` as a one-sheet xlsx; return the number of data rows."""
    with (
        _binary(target) as raw,
        zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf,
    ):
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _ROOT_RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK.format(name=_xml_attr(sheet_name[:31])))
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        zf.writestr("xl/styles.xml", _STYLES)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(_sheet_head(column_widths).encode())
            cell = _xlsx_cell_writer(timezone)
            header_cells = "".join(_xlsx_text(h, _STYLE_HEADER) for h in headers)
            parts = [f'<row r="1">{header_cells}</row>']
            number = 1
            for row in rows:
                number += 1
                cells = "".join([_xlsx_text(v, 0) if type(v) is str else cell(v) for v in row])
                parts.append(f'<row r="{number}">{cells}</row>')
                if len(parts) >= _BATCH_ROWS:
                    sheet.write("".join(parts).encode())
                    parts.clear()
            parts.append("</sheetData></worksheet>")
            sheet.write("".join(parts).encode())
    return number - 1


class _binary:
    """A binary stream for ``target``: a file opened (and closed) here, or the caller's stream."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._opened: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        if isinstance(self._target, str | Path):
            self._opened = Path(self._target).open("wb")
            return self._opened
        return self._target

    def __exit__(self, *exc: object) -> None:
        if self._opened is not None:
            self._opened.close()


# --- cells -------------------------------------------------------------------------------------------


def _local(value: datetime.datetime, timezone: datetime.tzinfo) -> datetime.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone).replace(tzinfo=None)


def _csv_cell(value: ExportCell, timezone: datetime.tzinfo) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return escape_formula(value)
    if isinstance(value, bool):
        return "VERDADERO" if value else "FALSO"
    if isinstance(value, datetime.datetime):
        return _local(value, timezone).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _csv_cell_writer(timezone: datetime.tzinfo) -> Callable[[ExportCell], str]:
    """:func:`_csv_cell`, remembering the text of recent times (rows of one import share them)."""
    texts: dict[datetime.datetime, str] = {}

    def cell(value: ExportCell) -> str:
        if value is None:
            return ""
        if type(value) is datetime.datetime:
            text = texts.get(value)
            if text is None:
                if len(texts) >= _TIME_CACHE:
                    texts.clear()
                text = texts[value] = _csv_cell(value, timezone)
            return text
        return _csv_cell(value, timezone)

    return cell


_STYLE_DATETIME = 1
_STYLE_DATE = 2
_STYLE_HEADER = 3


def _xlsx_cell_writer(timezone: datetime.tzinfo) -> Callable[[ExportCell], str]:
    """The XML of one cell; aware times are shown in ``timezone``."""
    # With a fixed offset, subtracting an epoch in that zone gives local serial days without astimezone().
    zoned_epoch = _EXCEL_EPOCH.replace(tzinfo=timezone) if isinstance(timezone, datetime.timezone) else None
    times: dict[datetime.datetime, str] = {}

    def cell(value: ExportCell) -> str:
        if value is None:
            return "<c/>"
        if isinstance(value, str):
            return _xlsx_text(value, 0)
        if isinstance(value, bool):
            return f'<c t="b"><v>{int(value)}</v></c>'
        if isinstance(value, datetime.datetime):
            xml = times.get(value)
            if xml is not None:
                return xml
            if value.tzinfo is None:
                serial = (value - _EXCEL_EPOCH) / _DAY
            elif zoned_epoch is not None:
                serial = (value - zoned_epoch) / _DAY
            else:
                serial = (_local(value, timezone) - _EXCEL_EPOCH) / _DAY
            if len(times) >= _TIME_CACHE:
                times.clear()
            xml = times[value] = f'<c s="{_STYLE_DATETIME}"><v>{serial!r}</v></c>'
            return xml
        if isinstance(value, datetime.date):
            return f'<c s="{_STYLE_DATE}"><v>{(value - _EXCEL_EPOCH.date()).days}</v></c>'
        if isinstance(value, float) and not math.isfinite(value):
            return "<c/>"
        return f"<c><v>{value!r}</v></c>"

    return cell


def _xlsx_text(text: str, style: int) -> str:
    if not text:
        return "<c/>"
    if text.startswith(_FORMULA_STARTS):
        text = "'" + text
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if not (text.isascii() and text.isprintable()):
        # XML parsers turn a literal CR into LF; a character reference keeps it.
        text = _XML_ILLEGAL.sub("", text).replace("\r", "&#13;")
    if "_x" in text:
        text = _OOXML_ESCAPE.sub(r"_x005F_\1", text)
    styled = f' s="{style}"' if style else ""
    return f'<c t="inlineStr"{styled}><is><t xml:space="preserve">{text}</t></is></c>'


def _xml_attr(text: str) -> str:
    text = _XML_ILLEGAL.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# --- package parts -----------------------------------------------------------------------------------

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

_CONTENT_TYPES = (
    _XML_DECL + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    _XML_DECL + f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    _XML_DECL + f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}">'
    '<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    _XML_DECL + f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/>'
    "</Relationships>"
)
# Cell styles: 0 default, 1 date and time, 2 date, 3 bold (headers).
_STYLES = (
    _XML_DECL + f'<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _sheet_head(column_widths: Sequence[float] | None) -> str:
    cols = ""
    if column_widths:
        cols = (
            "<cols>"
            + "".join(
                f'<col min="{i}" max="{i}" width="{w:g}" customWidth="1"/>'
                for i, w in enumerate(column_widths, start=1)
            )
            + "</cols>"
        )
    return (
        _XML_DECL + f'<worksheet xmlns="{_MAIN}">'
        '<sheetViews><sheetView workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        "</sheetView></sheetViews>"
        f"{cols}<sheetData>"
    )
