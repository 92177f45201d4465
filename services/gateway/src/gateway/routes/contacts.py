"""Contact routes (seed-compatible paths): list, create, read, update, delete, history, locks, calls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Body, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from contacts.asks import GetContact, GetHistory, GetStats
from contacts.client import ContactsClient
from contacts.commands import (
    CreateContact,
    DeleteContact,
    ForceReleaseLock,
    LockContact,
    ReleaseLock,
    UpdateContact,
)
from contacts.errors import NotLockOwner, VersionMismatch
from contacts.statuses import Catalogue
from contacts.views import Contact, ContactFilters
from gateway.auth import (
    Authenticated,
    CanCreateContact,
    CanDeleteContact,
    CanLockOwn,
    CanReadContacts,
    CanUpdateContact,
    audit_read,
    note_audit,
)
from gateway.callers import caller_of, run_command
from gateway.conflicts import history_rows, stale_write_body
from gateway.errors import error_response
from gateway.live import LiveHub
from gateway.pages import read_page
from gateway.querystring import parse_query, query_openapi
from gateway.roles import Capability
from gateway.users import UserNames

MAX_PAGE = 1000
DEFAULT_PAGE = 100
"""Contacts a page holds when the caller names no ``limit``: whole lists leave only through the audited
export, never through one unbounded read."""

ContactId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9a-fA-F-]{32,36}$")]


class ListQuery(BaseModel):
    """Query of ``GET /contacts`` (read with :func:`gateway.querystring.parse_query`)."""

    status: list[str] | None = Field(
        None, max_length=20, description="Estados (repetible: `status=A&status=B`)."
    )
    list_name: str | None = Field(None, alias="list", max_length=200, description="Lista de origen.")
    operator: str | None = Field(None, max_length=20, description="Operador: Kolbi, Movistar, Claro.")
    q: str = Field("", max_length=100, description="Búsqueda en nombre y teléfono.")
    locked: bool | None = Field(None, description="Solo bloqueados (`true`) o solo libres (`false`).")
    limit: int = Field(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="Tamaño de página (100 si no se indica).")
    cursor: str | None = Field(None, max_length=500, description="Cursor de la página siguiente.")


class NewContact(BaseModel):
    """Body of ``POST /contacts``."""

    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=1, max_length=64, examples=["8812-3456"])
    name: str = Field("", max_length=200)
    status: str | None = Field(None, max_length=40, examples=["SIN_GESTIONAR"])
    note: str = Field("", max_length=10_000)
    email: str = Field("", max_length=254)
    extra: dict[str, str] = Field(default_factory=dict, max_length=100)
    list: str = Field("", max_length=200)


MAX_VERSION = 2_147_483_647
"""The largest stream version the store keeps (a 32-bit column): a larger one is invalid input."""


class ContactChanges(BaseModel):
    """Body of ``PUT``/``PATCH /contacts/{id}``: only the fields given change; ``version`` (or ``If-Match``)
    is the version the writer read."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(
        None,
        ge=1,
        le=MAX_VERSION,
        description="Versión leída; si el contacto cambió desde entonces, 412 con los cambios.",
    )
    name: str | None = Field(None, max_length=200)
    status: str | None = Field(None, max_length=40)
    note: str | None = Field(None, max_length=10_000)
    email: str | None = Field(None, max_length=254)
    extra: dict[str, str] | None = Field(None, max_length=100)


class LockRequest(BaseModel):
    """Body of ``POST /contacts/{id}/lock`` (optional)."""

    model_config = ConfigDict(extra="forbid")

    duration_minutes: int | None = Field(None, ge=1, le=24 * 60)


class ContactOut(BaseModel):
    """A contact as the API returns it."""

    id: str
    phone: str
    phone_e164: str
    phone_national: str
    name: str
    status: str
    note: str
    email: str
    extra: dict[str, str]
    list: str
    operator: str | None
    locked_by: str | None
    locked_by_name: str | None
    locked_until: str | None
    last_contacted_at: str | None
    created_at: str
    updated_at: str
    version: int


class HistoryOut(BaseModel):
    """One change of a contact."""

    position: int
    version: int
    event_type: str
    field: str
    old: str | None
    new: str | None
    user_id: str
    username: str | None
    old_name: str | None
    new_name: str | None
    role: str
    at: str
    detail: dict[str, str]


class MeOut(BaseModel):
    """Who the key belongs to."""

    user_id: str
    username: str
    display_name: str
    role: str
    team: str | None
    capabilities: list[str]


class StatusOut(BaseModel):
    """One status of the catalogue."""

    code: str
    label: str
    label_en: str
    priority: int
    ageable: bool
    reached: bool = Field(description="Se habló con una persona.")
    final: bool = Field(description="La gestión terminó: salir de él necesita `leave_role`.")
    requires_callback: bool = Field(description="Un cierre con este estado exige una rellamada.")
    dnc: bool = Field(description="Un cierre con este estado pone el número en la lista de no llamar.")
    leave_role: str = Field(description="Rol mínimo para sacar un contacto de este estado.")
    transitions: dict[str, str] = Field(
        description="Cada otro estado y el rol mínimo que puede pasar el contacto de este a aquel."
    )


_UPDATE_DESCRIPTION = (
    "Solo cambian los campos enviados. La versión leída va en `If-Match` (la ETag) o en `version`; si otra "
    "persona cambió el contacto desde entonces, nada se aplica y la respuesta 412 `version_mismatch` trae "
    "`current` (el contacto como está ahora) y `changes` (los cambios posteriores a esa versión, como en el "
    "historial). 423 si otro usuario lo tiene bloqueado."
)
_UPDATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    412: {"description": "El contacto cambió desde la versión leída: `current` y `changes`."},
    423: {"description": "Otro usuario tiene el contacto bloqueado."},
}


def contact_response(contact: Contact, status_code: int = 200) -> Response:
    """A contact as JSON, with its version as the ETag."""
    return Response(
        orjson.dumps(contact.to_data()),
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": contact.etag},
    )


def parse_if_match(value: str | None) -> int | None:
    """The version an ``If-Match`` header names (``"3"``, ``W/"3"`` or ``3``); None when absent or ``*``."""
    if value is None or value.strip() in ("", "*"):
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or int(text) > MAX_VERSION:
        raise ValueError(value)
    return int(text)


def contacts_router(
    client: ContactsClient, catalogue: Catalogue, hub: LiveHub, names: UserNames
) -> APIRouter:
    """Routes over the contacts service's client (direct in embedded mode, HTTP in distributed mode)."""
    router = APIRouter(tags=["contacts"])

    @router.get(
        "/contacts",
        summary="Lista de contactos",
        response_model=list[ContactOut],
        description=(
            "Una página de contactos (`limit`, 100 por omisión, como máximo 1000); la página siguiente va "
            'en la cabecera `Link: <...>; rel="next"`. Las listas completas salen por la exportación '
            "(auditada). Cada página después de la primera queda en la auditoría. Orden: prioridad de "
            "estado, luego antigüedad."
        ),
        openapi_extra=query_openapi(ListQuery),
    )
    async def list_contacts(request: Request, principal: CanReadContacts) -> Response:
        query = parse_query(ListQuery, request.query_params)
        caller = caller_of(principal)
        filters = ContactFilters(
            statuses=tuple(catalogue.normalise(s) for s in query.status or ()),
            list_name=query.list_name,
            operator=query.operator,
            locked=query.locked,
            q=query.q,
        )
        body, next_cursor = await read_page(client, caller, filters, query.limit, query.cursor)
        if query.cursor:  # reading on past the first page: who read how far through which filter
            audit_read(request, filters=[f"{k}={v}" for k, v in filters.to_params()], limit=query.limit)
        headers = {}
        if next_cursor:
            headers["Link"] = f'<{_next_page_url(request, next_cursor)}>; rel="next"'
            if query.cursor is None and _counted_by_status(filters):
                stats = await run_in_threadpool(client.ask, GetStats(), caller)
                headers["X-Total-Count"] = str(_status_total(stats, filters.statuses))
        return Response(body, media_type="application/json", headers=headers)

    @router.post("/contacts", status_code=201, response_model=ContactOut, summary="Crear un contacto")
    def create_contact(request: Request, principal: CanCreateContact, body: NewContact) -> Response:
        command = CreateContact(
            caller=caller_of(principal),
            now=datetime.now(UTC),
            phone=body.phone,
            name=body.name,
            status=body.status,
            note=body.note,
            email=body.email,
            extra=body.extra,
            list_name=body.list,
        )
        contact = run_command(client, command)
        note_audit(request, contact_id=contact.id)
        return contact_response(contact, 201)

    @router.get("/contacts/{contact_id}", response_model=ContactOut, summary="Un contacto")
    def get_contact(principal: CanReadContacts, contact_id: ContactId) -> Response:
        return contact_response(client.ask(GetContact(contact_id=contact_id), caller_of(principal)))

    @router.get(
        "/contacts/{contact_id}/history", response_model=list[HistoryOut], summary="Historial de cambios"
    )
    def history(principal: CanReadContacts, contact_id: ContactId) -> Response:
        rows = history_rows(client.ask(GetHistory(contact_id=contact_id), caller_of(principal)), names)
        return Response(orjson.dumps(rows), media_type="application/json")

    @router.put(
        "/contacts/{contact_id}",
        response_model=ContactOut,
        summary="Actualizar un contacto",
        description=_UPDATE_DESCRIPTION,
        responses=_UPDATE_RESPONSES,
    )
    @router.patch(
        "/contacts/{contact_id}",
        response_model=ContactOut,
        summary="Actualizar campos de un contacto",
        description=_UPDATE_DESCRIPTION,
        responses=_UPDATE_RESPONSES,
    )
    def update_contact(
        request: Request,
        principal: CanUpdateContact,
        contact_id: ContactId,
        body: ContactChanges,
        if_match: Annotated[str | None, Header(max_length=40)] = None,
    ) -> Response:
        try:
            expected = parse_if_match(if_match)
        except ValueError:
            return error_response(400, "invalid_if_match", "If-Match debe ser la versión del contacto.")
        if expected is not None and body.version is not None and expected != body.version:
            return error_response(
                400, "invalid_if_match", "If-Match y version dicen versiones distintas: envíe solo una."
            )
        expected = expected if expected is not None else body.version
        caller = caller_of(principal)
        note_audit(request, contact_id=contact_id, fields=sorted(body.model_fields_set - {"version"}))
        command = UpdateContact(
            caller=caller,
            now=datetime.now(UTC),
            contact_id=contact_id,
            name=body.name,
            status=body.status,
            note=body.note,
            email=body.email,
            extra=body.extra,
        )
        try:
            contact = run_command(client, command, expected)
        except VersionMismatch as exc:
            stale, etag = stale_write_body(client, names, caller, exc)
            return Response(
                orjson.dumps(stale),
                status_code=412,
                media_type="application/json",
                headers={"ETag": etag} if etag else None,
            )
        return contact_response(contact)

    @router.delete("/contacts/{contact_id}", status_code=204, summary="Eliminar un contacto")
    def delete_contact(
        request: Request,
        principal: CanDeleteContact,
        contact_id: ContactId,
        if_match: Annotated[str | None, Header(max_length=40)] = None,
    ) -> Response:
        try:
            expected = parse_if_match(if_match)
        except ValueError:
            return error_response(400, "invalid_if_match", "If-Match debe ser la versión del contacto.")
        note_audit(request, contact_id=contact_id)
        command = DeleteContact(caller=caller_of(principal), now=datetime.now(UTC), contact_id=contact_id)
        client.execute(command, expected)
        return Response(status_code=204)

    @router.post("/contacts/{contact_id}/lock", response_model=ContactOut, summary="Bloquear un contacto")
    def lock(
        request: Request,
        principal: CanLockOwn,
        contact_id: ContactId,
        body: Annotated[LockRequest | None, Body()] = None,
    ) -> Response:
        note_audit(request, contact_id=contact_id)
        duration = body.duration_minutes if body else None
        command = LockContact(
            caller=caller_of(principal),
            now=datetime.now(UTC),
            contact_id=contact_id,
            duration_minutes=duration,
        )
        return contact_response(run_command(client, command))

    @router.delete(
        "/contacts/{contact_id}/lock",
        response_model=ContactOut,
        summary="Liberar un bloqueo",
        description="El dueño libera su bloqueo; TeamLead, ProjectManager y TI liberan el de cualquiera.",
    )
    def unlock(request: Request, principal: CanLockOwn, contact_id: ContactId) -> Response:
        caller = caller_of(principal)
        note_audit(request, contact_id=contact_id)
        try:
            released = ReleaseLock(caller=caller, now=datetime.now(UTC), contact_id=contact_id)
            return contact_response(run_command(client, released))
        except NotLockOwner:
            if not principal.can(Capability.FORCE_RELEASE):
                raise
            note_audit(request, forced=True)
            forced = ForceReleaseLock(caller=caller, now=datetime.now(UTC), contact_id=contact_id)
            return contact_response(run_command(client, forced))

    @router.get("/me", response_model=MeOut, tags=["session"], summary="Quién soy (según la clave)")
    def me(principal: Authenticated) -> dict[str, Any]:
        return {
            "user_id": str(principal.user_id),
            "username": principal.username,
            "display_name": principal.display_name or principal.username,
            "role": principal.role.value,
            "team": principal.team,
            "capabilities": sorted(c.value for c in Capability if principal.can(c)),
        }

    @router.get("/statuses", response_model=list[StatusOut], tags=["contacts"], summary="Catálogo de estados")
    def statuses(principal: CanReadContacts) -> list[dict[str, Any]]:
        return [
            {
                "code": s.code,
                "label": s.label_es,
                "label_en": s.label_en,
                "priority": s.priority,
                "ageable": s.ageable,
                "reached": s.reached,
                "final": s.final,
                "requires_callback": s.requires_callback,
                "dnc": s.dnc,
                "leave_role": s.leaving_role.value,
                "transitions": {
                    code: role.value for code, role in catalogue.transitions_from(s.code).items()
                },
            }
            for s in catalogue.statuses
        ]

    return router


def _next_page_url(request: Request, cursor: str) -> str:
    """This request's URL with ``cursor`` in place of its own (the query string's other parts as sent)."""
    url, _, query = str(request.url).partition("?")
    kept = [part for part in query.split("&") if part and part.split("=", 1)[0] != "cursor"]
    return f"{url}?{'&'.join([*kept, 'cursor=' + quote(cursor, safe='')])}"


def _counted_by_status(filters: ContactFilters) -> bool:
    """Whether the list's total is the kept per-status counts (no filter but statuses): a first page that
    has more after it then says how many there are (``X-Total-Count``), for every role's status bar."""
    return not (filters.list_name or filters.operator or filters.locked is not None or filters.q.strip())


def _status_total(stats: dict[str, Any], statuses: tuple[str, ...]) -> int:
    """The contacts with one of ``statuses`` (all of them when none) by the stats' counts."""
    by_status = stats.get("by_status") or {}
    if not statuses:
        return int(stats.get("total") or 0)
    return sum(int(by_status.get(status) or 0) for status in set(statuses))
