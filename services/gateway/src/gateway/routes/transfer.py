"""Import and export routes: ``POST /import``, ``GET /export`` and ``GET /jobs/{id}/report``.

``POST /import`` takes either a JSON array of contacts, imported at once (PRODUCT.md's synchronous
shape ``{inserted, updated, duplicates_merged, errors: [{row, message}], total}``), or a multipart upload
(field ``file``; ``dry_run``, ``list`` and ``merge`` as form fields or query parameters). ``merge`` says
how rows meet existing contacts: ``fill`` (only empty fields, the default), ``overwrite`` (ProjectManager
and TI: a 403, audited, for anyone else) or ``skip``. An upload is streamed to
the uploads folder — a declared ``Content-Length`` past the limit is refused with 413 before any of it
is read, and so is a body that grows past it —, checked at once (type by content, zip bombs, password,
header row: 422 with the reason), and imported by an ``import`` job: 202 with the job and
``Location: /jobs/{id}``. Progress reaches the uploader's Socket.IO connections as ``job_progress``; the
job's report lists every rejected and merged row and is downloadable from ``GET /jobs/{id}/report``.

Each operation is one of import/export's public commands (``importexport.commands``) handed to the
:class:`~gateway.ports.TransferPort`: in process embedded, over rq to ``callmanager serve importexport``
distributed (the upload is in the data folder both share).

``GET /export`` streams the file itself while the system holds at most
:data:`~importexport.commands.STREAM_LIMIT` contacts (or with ``async=false``); above that, or with
``async=true``, it answers 202 with an ``export`` job whose file ``GET /jobs/{id}/download`` serves.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from contacts.asks import GetStats
from contacts.client import ContactsClient
from gateway.auth import ApiError, Authenticated, CanExport, CanImport, authorize, note_audit
from gateway.callers import caller_of
from gateway.ports import TransferPort
from gateway.querystring import QueryBool, true_or_false
from gateway.roles import Capability, Principal
from gateway.routes.jobs import JobId, JobOut, visible_job
from importexport.commands import (
    MEDIA_TYPES,
    STREAM_LIMIT,
    ExportContacts,
    ImportRecords,
    ImportRefused,
    InspectUpload,
    MergeMode,
    StartImport,
)
from kernel.jobqueue import JobStore

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_JSON_ROWS = 20_000
_MULTIPART_SLACK = 64 << 10  # boundaries and part headers around the file
_MAX_FIELD_BYTES = 1000
_MAX_FIELDS = 20
_UPLOAD_SUFFIXES = (".xlsx", ".xls", ".csv")
_MAX_LIST_NAME = 200
_MAX_PROBLEMS = 100
_Value = Annotated[str, Field(max_length=1000)]


class ImportRecordIn(BaseModel):
    """One contact of a JSON import. Keys are read like a spreadsheet's headers (``telefono`` works as
    well as ``phone``, so none is required: a record without a phone is a rejected row of the report);
    keys it does not know go to ``extra``. Every value is text: a phone sent as a number would lose its
    leading zeros, and ``null`` or ``true`` is a mistake to refuse, not a value to guess."""

    model_config = ConfigDict(extra="allow", strict=True)
    __pydantic_extra__: dict[str, _Value] = Field(init=False)

    phone: str = Field("", max_length=64, examples=["8812-3456"])
    name: str = Field("", max_length=200)
    note: str = Field("", max_length=10_000)
    status: str = Field("", max_length=40, examples=["SIN_GESTIONAR"])
    email: str = Field("", max_length=254)
    extra: dict[str, _Value] = Field(default_factory=dict, max_length=100)


_JSON_RECORDS = TypeAdapter(list[ImportRecordIn])
_JSON_BODY = {"type": "array", "maxItems": MAX_JSON_ROWS, "items": ImportRecordIn.model_json_schema()}
_MULTIPART_BODY = {
    "type": "object",
    "properties": {
        "file": {"type": "string", "format": "binary", "description": ".xlsx, .xls o .csv"},
        "dry_run": {"type": "boolean", "description": "Clasificar sin escribir nada."},
        "list": {
            "type": "string",
            "maxLength": _MAX_LIST_NAME,
            "description": "Lista de los contactos nuevos.",
        },
        "merge": {
            "type": "string",
            "enum": ["fill", "overwrite", "skip"],
            "description": "Modo de combinación.",
        },
    },
    "required": ["file"],
}


@dataclass(frozen=True)
class TransferConfig:
    """Folders and limits of the import/export routes (from settings, in the composition root)."""

    uploads_dir: Path | None = None
    reports_dir: Path | None = None
    max_upload_bytes: int = 100 << 20
    max_import_rows: int = 1_000_000
    max_json_rows: int = MAX_JSON_ROWS
    stream_limit: int = STREAM_LIMIT

    @property
    def max_upload_mb(self) -> str:
        """The upload limit as users read it (``100 MB``)."""
        return f"{self.max_upload_bytes / (1 << 20):g} MB"


class RowIssueOut(BaseModel):
    row: int
    phone: str
    message: str


class MergedRowOut(BaseModel):
    row: int
    into: int
    phone: str


class ImportResultOut(BaseModel):
    """What a JSON import did: PRODUCT.md's counts and errors, plus unchanged rows, merges, warnings and
    rows on the do-not-call list (not saved)."""

    inserted: int
    updated: int
    listed: int = Field(
        0, description="Filas de contactos existentes que no cambiaron datos y quedaron también en la lista."
    )
    unchanged: int
    duplicates_merged: int
    rejected: int
    errors: list[RowIssueOut]
    merged: list[MergedRowOut]
    warnings: list[RowIssueOut]
    locked: int
    locked_rows: list[RowIssueOut]
    dnc: int = Field(0, description="Filas cuyo teléfono está en la lista de no llamar (no se guardaron).")
    dnc_rows: list[RowIssueOut] = []
    merge: MergeMode
    total: int
    list: str
    dry_run: bool
    truncated: bool


class ImportJobOut(JobOut):
    """The import job just created (202); its report arrives in ``GET /jobs/{id}``."""

    source: str
    headers: dict[str, str]


class ExportJobOut(JobOut):
    """The export job just created (202); ``download`` serves the file once it has finished."""

    download: str


@dataclass
class Upload:
    """A multipart upload stored in the uploads folder: where, its name as sent, the form's other fields."""

    path: Path
    filename: str
    fields: dict[str, str]


def _merge_mode(request: Request, principal: Principal, value: str) -> MergeMode:
    """The import's merge mode (``fill`` if not given); ``overwrite`` needs its capability (403, audited)."""
    try:
        mode = MergeMode(value.strip().lower() or MergeMode.FILL)
    except ValueError:
        raise ApiError(
            422,
            "invalid_merge",
            f"Modo de combinación «{value}» desconocido: use fill (completar vacíos), overwrite "
            "(sobrescribir) o skip (omitir existentes).",
        ) from None
    if mode is MergeMode.OVERWRITE:
        authorize(request, principal, Capability.IMPORT_OVERWRITE)
    return mode


def transfer_router(
    contacts: ContactsClient, transfer: TransferPort, jobs: JobStore, config: TransferConfig
) -> APIRouter:
    """``POST /import``, ``GET /export`` and ``GET /jobs/{id}/report``."""
    router = APIRouter(tags=["import-export"])

    @router.post(
        "/import",
        response_model=ImportResultOut,
        summary="Importar contactos: lista JSON (al instante) o archivo .xlsx/.xls/.csv (trabajo)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _JSON_BODY},
                    "multipart/form-data": {"schema": _MULTIPART_BODY},
                },
            }
        },
        responses={
            202: {"model": ImportJobOut, "description": "Archivo recibido; ver `Location` (el trabajo)."},
            413: {"description": "El cuerpo supera el tamaño máximo de subida."},
            415: {"description": "Ni JSON ni multipart/form-data."},
            422: {"description": "Archivo o datos rechazados, con el motivo."},
        },
    )
    async def import_contacts(
        request: Request,
        principal: CanImport,
        dry_run: Annotated[QueryBool, Query(description="Clasificar sin escribir nada.")] = False,
        list_name: Annotated[
            str | None,
            Query(alias="list", max_length=_MAX_LIST_NAME, description="Lista de los contactos nuevos."),
        ] = None,
        merge: Annotated[
            MergeMode | None,
            Query(
                description="Contactos que ya existen: fill (sólo campos vacíos, por defecto), overwrite "
                "(gana el archivo; ProjectManager y TI) o skip (no se tocan)."
            ),
        ] = None,
    ) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > config.max_upload_bytes + _MULTIPART_SLACK:
            raise _too_large(config)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        caller = caller_of(principal)
        if media_type == "multipart/form-data":
            upload = await receive_upload(request, config)
            try:
                dry = dry_run or _form_bool(upload.fields, "dry_run")
                chosen_list = (list_name or _form_text(upload.fields, "list", _MAX_LIST_NAME)).strip()
                mode = _merge_mode(request, principal, merge or upload.fields.get("merge", ""))
                headers = await run_in_threadpool(_inspect, transfer, upload.path)
                command = StartImport(
                    caller, upload.path, upload.filename, dry_run=dry, list_name=chosen_list, merge=mode
                )
                job = await run_in_threadpool(transfer.start_import, command, str(principal.user_id))
            except BaseException:
                upload.path.unlink(missing_ok=True)
                raise
            note_audit(
                request,
                job_id=job.id,
                file=upload.filename,
                dry_run=dry,
                merge=mode.value,
                list=job.params["list"],
            )
            body = {**job.to_data(), "source": upload.filename, "headers": headers}
            return Response(
                orjson.dumps(body),
                status_code=202,
                media_type="application/json",
                headers={"Location": f"/jobs/{job.id}"},
            )
        if media_type != "application/json":
            raise ApiError(
                415,
                "unsupported_media_type",
                "Envíe una lista JSON de contactos o un archivo en multipart/form-data (campo «file»).",
            )
        mode = _merge_mode(request, principal, merge or "")
        records = _records(await _read_body(request, config))
        wanted = ImportRecords(caller, records, list_name or "", dry_run, config.max_json_rows, mode)
        records_command = dataclasses.replace(wanted, list_name=wanted.chosen_list())
        try:
            report = await run_in_threadpool(transfer.import_records, records_command)
        except ImportRefused as exc:
            raise ApiError(422, "import_rejected", exc.reason) from exc
        note_audit(
            request,
            list=records_command.list_name,
            merge=mode.value,
            inserted=report["inserted"],
            updated=report["updated"],
            listed=report["listed"],
            total=report["total"],
        )
        return Response(orjson.dumps(report), media_type="application/json")

    @router.get(
        "/export",
        summary="Exportar contactos a .xlsx o .csv (con filtros)",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "El archivo (`contactos_AAAAMMDD_HHMMSS.xlsx`).",
                "content": {MEDIA_TYPES["xlsx"]: {}, MEDIA_TYPES["csv"]: {}},
            },
            202: {"model": ExportJobOut, "description": "Exportación grande: ver `Location` (el trabajo)."},
        },
    )
    def export_contacts(
        principal: CanExport,
        export_format: Annotated[Literal["xlsx", "csv"], Query(alias="format")] = "xlsx",
        status: Annotated[list[str] | None, Query(max_length=20)] = None,
        list_name: Annotated[str | None, Query(alias="list", max_length=200)] = None,
        operator: Annotated[str | None, Query(max_length=20)] = None,
        background: Annotated[
            QueryBool | None,
            Query(
                alias="async",
                description=f"Sin indicar: archivo directo hasta {STREAM_LIMIT:,} contactos, si no trabajo.",
            ),
        ] = None,
    ) -> Response:
        caller = caller_of(principal)
        wanted = ExportContacts(
            caller,
            format=export_format,
            statuses=tuple(s for s in status or () if s.strip()),
            list_name=list_name or None,
            operator=operator or None,
        )
        if background is None:
            background = int(contacts.ask(GetStats(), caller).get("total") or 0) > config.stream_limit
        if background:
            job = transfer.start_export(wanted, str(principal.user_id))
            body = {**job.to_data(), "download": f"/jobs/{job.id}/download"}
            return Response(
                orjson.dumps(body),
                status_code=202,
                media_type="application/json",
                headers={"Location": f"/jobs/{job.id}"},
            )
        # Bad filters (an unknown status) raise here, a 422 before the file starts.
        chunks = transfer.export_now(wanted)
        return StreamingResponse(
            chunks,
            media_type=MEDIA_TYPES[wanted.format],
            headers={"Content-Disposition": f'attachment; filename="{wanted.filename()}"'},
        )

    @router.get(
        "/jobs/{job_id}/report",
        tags=["jobs"],
        summary="Descargar el informe de una importación (filas rechazadas, combinadas y avisos)",
        response_class=FileResponse,
        responses={200: {"content": {MEDIA_TYPES["xlsx"]: {}, MEDIA_TYPES["csv"]: {}}}},
    )
    def import_report(
        principal: Authenticated,
        job_id: JobId,
        report_format: Annotated[Literal["xlsx", "csv"], Query(alias="format")] = "xlsx",
    ) -> FileResponse:
        job = visible_job(jobs, job_id, principal)
        files = (job.report or {}).get("report_files")
        name = files.get(report_format) if isinstance(files, dict) else None
        if config.reports_dir is None or not isinstance(name, str) or not name:
            raise ApiError(404, "no_report", "Ese trabajo no tiene informe para descargar.")
        path = config.reports_dir / Path(name).name
        if not path.is_file():
            raise ApiError(404, "no_report", "El informe de ese trabajo ya no existe.")
        return FileResponse(path, media_type=MEDIA_TYPES[report_format], filename=path.name)

    return router


# --- upload -------------------------------------------------------------------------------------------


def _too_large(config: TransferConfig) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"El archivo supera el tamaño máximo permitido ({config.max_upload_mb}). "
        "Divídalo en partes más pequeñas o pida a TI que suba el límite.",
    )


async def _read_body(request: Request, config: TransferConfig) -> bytes:
    """The whole (JSON) body, refused with 413 as soon as it grows past the upload limit."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > config.max_upload_bytes:
            raise _too_large(config)
    return bytes(body)


def _records(body: bytes) -> list[dict[str, Any]]:
    """The records of a JSON import, each checked against :class:`ImportRecordIn` (422 otherwise)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(422, "invalid_json", "El cuerpo no es JSON válido.") from exc
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ApiError(
            422,
            "invalid_input",
            'Se esperaba una lista JSON de contactos: [{"phone": ..., "name": ..., ...}].',
        )
    try:
        _JSON_RECORDS.validate_python(data)
    except ValidationError as error:
        # The first problems are enough to fix a file; thousands would only grow the answer.
        raise _invalid("body", error.errors()[:_MAX_PROBLEMS]) from None
    return data


def _form_bool(fields: dict[str, str], name: str) -> bool:
    """A multipart field read as ``true``/``false`` (absent or empty: false); 422 for any other text."""
    value = fields.get(name, "").strip()
    try:
        return bool(true_or_false(value)) if value else False
    except ValueError as error:
        raise _invalid(
            "body", [{"type": "bool_parsing", "loc": (name,), "msg": str(error), "input": value}]
        ) from None


def _form_text(fields: dict[str, str], name: str, max_length: int) -> str:
    """A multipart text field (absent: empty); 422 past ``max_length`` characters."""
    value = fields.get(name, "")
    if len(value) > max_length:
        problem = {
            "type": "string_too_long",
            "loc": (name,),
            "msg": f"como máximo {max_length} caracteres",
            "input": value[:50],
        }
        raise _invalid("body", [problem])
    return value


def _invalid(where: str, problems: Sequence[Mapping[str, Any]]) -> RequestValidationError:
    """FastAPI's own 422 (the one every route gives) for problems found by hand in ``where``."""
    return RequestValidationError([{**problem, "loc": (where, *problem["loc"])} for problem in problems])


class _MultipartSink:
    """python-multipart callbacks: the ``file`` part goes to the uploads folder, fields to memory."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.fields: dict[str, str] = {}
        self.path: Path | None = None
        self.filename = ""
        self.written = 0
        self.too_large = False
        self.problem: str | None = None
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._field: str | None = None
        self._value = bytearray()
        self._file: Any = None

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._disposition = b""
        self._field = None
        self._value = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if name != "file" or self.path is not None:
                self.problem = "Envíe un solo archivo, en el campo «file»."
                return
            self.filename = Path(options[b"filename"].decode("utf-8", "replace").replace("\\", "/")).name
            self.filename = self.filename[:200] or "archivo"
            suffix = Path(self.filename).suffix.lower()
            stored = uuid.uuid4().hex + (suffix if suffix in _UPLOAD_SUFFIXES else "")
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path = self.folder / stored
            self._file = self.path.open("xb")
            self._field = None
            return
        if len(self.fields) >= _MAX_FIELDS:
            self.problem = "El formulario trae demasiados campos."
            return
        self._field = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self.written += end - start
            if self.written > self.max_bytes:
                self.too_large = True
                return
            self._file.write(data[start:end])
        elif self._field is not None and len(self._value) < _MAX_FIELD_BYTES:
            self._value += data[start : min(end, start + _MAX_FIELD_BYTES - len(self._value))]

    def _part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self._field is not None:
            self.fields[self._field] = self._value.decode("utf-8", "replace")
            self._field = None

    def feed(self, parser: MultipartParser, chunk: bytes) -> None:
        """Parse one chunk of the body (file writes included; run in a worker thread)."""
        parser.write(chunk)

    @property
    def unfinished(self) -> bool:
        """Whether the file part never ended (a truncated body)."""
        return self._file is not None

    def discard(self) -> None:
        """Close and delete what was stored."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def receive_upload(request: Request, config: TransferConfig) -> Upload:
    """Stream the multipart body's ``file`` to the uploads folder; 413 past the limit, 422 when malformed.

    ``POST /import`` and ``POST /dnc/import`` take their files this way (one limit, one set of checks).
    """
    if config.uploads_dir is None:
        raise ApiError(503, "unavailable", "Las subidas de archivos no están configuradas en este servidor.")
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise ApiError(422, "invalid_upload", "Falta el separador (boundary) del formulario multipart.")
    sink = _MultipartSink(config.uploads_dir, config.max_upload_bytes)
    parser = MultipartParser(boundary, sink.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > config.max_upload_bytes + _MULTIPART_SLACK:
                raise _too_large(config)
            await run_in_threadpool(sink.feed, parser, chunk)
            if sink.too_large:
                raise _too_large(config)
            if sink.problem is not None:
                raise ApiError(422, "invalid_upload", sink.problem)
        parser.finalize()
    except MultipartParseError as exc:
        sink.discard()
        raise ApiError(422, "invalid_upload", "El formulario multipart está mal formado.") from exc
    except BaseException:
        sink.discard()
        raise
    if sink.path is None or sink.unfinished:
        sink.discard()
        raise ApiError(422, "invalid_upload", "Falta el archivo: envíelo en el campo «file».")
    return Upload(sink.path, sink.filename, sink.fields)


def _inspect(transfer: TransferPort, path: Path) -> dict[str, str]:
    """Refuse an unusable upload now (422 with the reason); the header mapping of a usable one."""
    try:
        return transfer.inspect(InspectUpload(path))
    except ImportRefused as exc:
        raise ApiError(422, "file_rejected", exc.reason) from exc
