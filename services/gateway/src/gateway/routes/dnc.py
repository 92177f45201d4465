"""The do-not-call list: ``GET/POST /dnc``, ``DELETE /dnc/{phone}``, ``POST /dnc/import`` and
``GET /dnc/export``. ProjectManager and TI manage it (``dnc.manage``); every change is audited twice, by
contacts (``dnc_changes``: who, when, why, per number) and here (the gateway's audit of the request).

``POST /dnc/import`` takes a CSV or spreadsheet (multipart field ``file``) under the import's upload limit
and checks; import/export reads it (``ReadDncFile`` through the transfer port: in process embedded, the
importexport worker distributed) and the numbers not listed yet are added in one transaction. The answer
says, with row numbers, which were added, which were already listed, and which rows were invalid.

``GET /dnc/export`` answers the whole list as CSV or xlsx, written like the contacts export (formula-like
text escaped).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from contacts.asks import ListDnc
from contacts.campaigns import DncEntry
from contacts.client import ContactsClient
from contacts.commands import AddDnc, AddDncMany, Caller, RemoveDnc
from gateway.auth import ApiError, CanManageDnc, note_audit
from gateway.callers import caller_of
from gateway.errors import error_response
from gateway.ports import TransferPort
from gateway.routes.transfer import TransferConfig, receive_upload
from importexport.commands import MEDIA_TYPES, ImportRefused, ReadDncFile
from importexport.views import dnc_export_file

Phone = Annotated[str, Field(min_length=1, max_length=64)]
_PAGE = 1000
_REASON_FIELD = "reason"
_MULTIPART_BODY = {
    "type": "object",
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": ".csv, .xlsx o .xls con una columna de teléfono y, si se quiere, «Motivo».",
        },
        "reason": {"type": "string", "description": "Motivo para las filas que no traen uno."},
    },
    "required": ["file"],
}


class DncIn(BaseModel):
    """Body of ``POST /dnc``."""

    model_config = ConfigDict(extra="forbid")

    phone: Phone = Field(examples=["8812-3456"])
    reason: str = Field("", max_length=500)


class DncOut(BaseModel):
    """One number of the do-not-call list."""

    phone_e164: str
    reason: str
    added_by: str
    added_by_name: str
    added_at: str


class DncRowOut(BaseModel):
    """A row of an uploaded list: its spreadsheet row, the phone as typed, and E.164 or why not."""

    row: int
    phone: str
    e164: str = ""
    message: str = ""


class DncImportOut(BaseModel):
    """What ``POST /dnc/import`` did, row by row."""

    source: str
    total: int = Field(description="Filas de datos leídas.")
    added: int
    already_listed: int
    invalid: int
    repeated: int
    added_rows: list[DncRowOut]
    already_listed_rows: list[DncRowOut]
    invalid_rows: list[DncRowOut]
    repeated_rows: list[DncRowOut]
    headers: dict[str, str]


def dnc_router(contacts: ContactsClient, transfer: TransferPort, config: TransferConfig) -> APIRouter:
    """The do-not-call routes over the contacts client (the list) and the transfer port (files)."""
    router = APIRouter(tags=["dnc"])

    @router.get("/dnc", response_model=list[DncOut], summary="Lista de no llamar")
    def dnc_list(
        principal: CanManageDnc,
        limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[dict[str, Any]]:
        found = contacts.ask(ListDnc(limit=limit, offset=offset), caller_of(principal))
        return [entry.to_data() for entry in found]

    @router.post(
        "/dnc", status_code=201, response_model=DncOut, summary="Añadir un número a la lista de no llamar"
    )
    def dnc_add(request: Request, principal: CanManageDnc, body: DncIn) -> dict[str, Any]:
        added = AddDnc(
            caller=caller_of(principal), now=datetime.now(UTC), phone=body.phone, reason=body.reason
        )
        entry = contacts.execute(added)
        note_audit(request, phone=entry.phone_e164)
        return entry.to_data()

    @router.post(
        "/dnc/import",
        response_model=DncImportOut,
        summary="Importar números a la lista de no llamar desde un archivo .csv/.xlsx/.xls",
        description=(
            "Columna de teléfono obligatoria (como en la importación de contactos) y «Motivo» opcional. "
            "Los números nuevos se añaden en una sola operación, cada uno auditado; la respuesta dice, con "
            "su número de fila, cuáles se añadieron, cuáles ya estaban y qué filas no son válidas."
        ),
        openapi_extra={
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _MULTIPART_BODY}}}
        },
        responses={
            413: {"description": "El archivo supera el tamaño máximo de subida."},
            415: {"description": "No es multipart/form-data."},
            422: {"description": "Archivo rechazado, con el motivo."},
        },
    )
    async def dnc_import(request: Request, principal: CanManageDnc) -> dict[str, Any]:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "multipart/form-data":
            raise ApiError(
                415, "unsupported_media_type", "Envíe el archivo en multipart/form-data (campo «file»)."
            )
        upload = await receive_upload(request, config)
        try:
            found = await run_in_threadpool(transfer.read_dnc, ReadDncFile(upload.path))
        except ImportRefused as exc:
            raise ApiError(422, "file_rejected", exc.reason) from exc
        finally:
            upload.path.unlink(missing_ok=True)
        default_reason = upload.fields.get(_REASON_FIELD, "").strip()[:500]
        caller = caller_of(principal)
        result = await run_in_threadpool(_add_found, contacts, caller, found, default_reason)
        note_audit(
            request,
            file=upload.filename,
            added=result["added"],
            already_listed=result["already_listed"],
            invalid=result["invalid"],
        )
        return {**result, "source": upload.filename}

    @router.get(
        "/dnc/export",
        summary="Exportar la lista de no llamar a .csv o .xlsx",
        response_class=Response,
        responses={
            200: {
                "description": "El archivo (`no_llamar_AAAAMMDD_HHMMSS.xlsx`).",
                "content": {MEDIA_TYPES["xlsx"]: {}, MEDIA_TYPES["csv"]: {}},
            }
        },
    )
    def dnc_export(
        request: Request,
        principal: CanManageDnc,
        export_format: Annotated[Literal["csv", "xlsx"], Query(alias="format")] = "xlsx",
    ) -> Response:
        entries = _all_entries(contacts, caller_of(principal))
        content = dnc_export_file(entries, export_format)
        stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
        note_audit(request, format=export_format, numbers=len(entries))
        return Response(
            content,
            media_type=MEDIA_TYPES[export_format],
            headers={"Content-Disposition": f'attachment; filename="no_llamar_{stamp}.{export_format}"'},
        )

    @router.delete(
        "/dnc/{phone}",
        status_code=204,
        summary="Quitar un número de la lista de no llamar",
        responses={404: {"description": "El número no está en la lista."}},
    )
    def dnc_remove(
        request: Request,
        principal: CanManageDnc,
        phone: Phone,
        reason: Annotated[str, Query(max_length=500)] = "",
    ) -> Response:
        removed = RemoveDnc(caller=caller_of(principal), now=datetime.now(UTC), phone=phone, reason=reason)
        if not contacts.execute(removed):
            return error_response(404, "not_in_dnc", f"El número {phone} no está en la lista de no llamar.")
        note_audit(request, phone=phone)
        return Response(status_code=204)

    return router


def _add_found(
    contacts: ContactsClient, caller: Caller, found: dict[str, Any], default_reason: str
) -> dict[str, Any]:
    """Add the numbers an uploaded list holds; the answer of ``POST /dnc/import``."""
    numbers: list[dict[str, Any]] = found["numbers"]
    entries = [(str(n["e164"]), str(n["reason"]) or default_reason) for n in numbers]
    added = set(contacts.execute(AddDncMany(caller=caller, now=datetime.now(UTC), entries=tuple(entries))))
    added_rows = [_row(n) for n in numbers if n["e164"] in added]
    already_rows = [_row(n) for n in numbers if n["e164"] not in added]
    invalid_rows = [_issue(issue) for issue in found["invalid"]]
    repeated_rows = [_issue(issue) for issue in found["repeated"]]
    return {
        "total": int(found["total"]),
        "added": len(added_rows),
        "already_listed": len(already_rows),
        "invalid": len(invalid_rows),
        "repeated": len(repeated_rows),
        "added_rows": added_rows,
        "already_listed_rows": already_rows,
        "invalid_rows": invalid_rows,
        "repeated_rows": repeated_rows,
        "headers": dict(found["headers"]),
    }


def _row(number: dict[str, Any]) -> dict[str, Any]:
    return {"row": number["row"], "phone": number["phone"], "e164": number["e164"]}


def _issue(issue: dict[str, Any]) -> dict[str, Any]:
    return {"row": issue["row"], "phone": issue["phone"], "message": issue["message"]}


def _all_entries(contacts: ContactsClient, caller: Caller) -> list[DncEntry]:
    """Every listed number, a page at a time."""
    entries: list[DncEntry] = []
    while True:
        page = contacts.ask(ListDnc(limit=_PAGE, offset=len(entries)), caller)
        entries.extend(page)
        if len(page) < _PAGE:
            return entries


__all__ = ["dnc_router"]
