"""The contacts service's internal HTTP API: what the gateway calls in distributed mode.

Internal network only: the caller's identity arrives in the ``X-Caller`` header (JSON ``user_id``,
``username``, ``role``, ``team``), set by the gateway after it checked the API key. Every domain error
is answered as ``{"error": {"code", "message", ...details}}`` with its ``http_status``;
:class:`contacts.client.HttpContactsClient` turns it back into the same typed exception.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from contacts.agenda import visibility
from contacts.callbacks import CallbackBook
from contacts.campaignbook import FIELDS
from contacts.client import CALLER_HEADER, INTERNAL_TOKEN_HEADER
from contacts.commands import Caller, ContactCommand, ImportRow, MergeMode, Source, decode_command
from contacts.errors import (
    ContactError,
    InvalidInput,
)
from contacts.handlers import ContactsService
from contacts.message import decode_dataclass
from contacts.queries import DEFAULT_LIMIT, MAX_LIMIT, ContactQueries
from contacts.queue import WorkQueue
from contacts.views import Contact, ContactFilters, caller_from_data, caller_to_data, error_to_data


class CommandRequest(BaseModel):
    """Body of ``POST /commands``: any single-contact command by its stable type name and its data, and
    the contact version it expects (the gateway's ``If-Match``)."""

    type: str = Field(min_length=1, max_length=100)
    data: dict[str, Any]
    expected_version: int | None = Field(default=None, ge=0)


class BatchRequest(BaseModel):
    """Body of ``POST /contacts/batch``: rows as ``ImportRow`` data."""

    rows: list[dict[str, Any]]
    list_name: str = Field("", alias="list")
    source: Source = Source.IMPORT
    job_id: str = ""
    merge: MergeMode = MergeMode.FILL
    dry_run: bool = False


class PhonesRequest(BaseModel):
    """Body of ``POST /contacts/existing``."""

    phones: list[str]


class CallerMissing(Exception):
    """The request has no usable ``X-Caller`` header."""


def json_response(body: object, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response serialised once with orjson."""
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )


def error_response(error: ContactError) -> Response:
    """The JSON answer for a domain error, with its HTTP status."""
    return json_response({"error": error_to_data(error)}, error.http_status)


async def caller_of(x_caller: Annotated[str | None, Header(alias=CALLER_HEADER)] = None) -> Caller:
    """The caller named by the gateway in ``X-Caller``."""
    if not x_caller:
        raise CallerMissing
    try:
        return caller_from_data(orjson.loads(x_caller))
    except (ValueError, TypeError, AttributeError, orjson.JSONDecodeError):
        raise CallerMissing from None


CallerDep = Annotated[Caller, Depends(caller_of)]


def create_router(service: ContactsService, queries: ContactQueries) -> APIRouter:
    """The routes of the contacts API around a service and its queries."""
    router = APIRouter()

    def contact_response(contact: Contact, status_code: int = 200) -> Response:
        return json_response(contact.to_data(), status_code, {"ETag": contact.etag})

    @router.get("/contacts")
    async def list_contacts(
        _: CallerDep,
        status: Annotated[list[str] | None, Query()] = None,
        list_name: Annotated[str | None, Query(alias="list")] = None,
        operator: str | None = None,
        locked: bool | None = None,
        q: str = "",
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Response:
        statuses = tuple(part.strip() for value in status or [] for part in value.split(",") if part.strip())
        filters = ContactFilters(
            statuses=statuses, list_name=list_name, operator=operator, locked=locked, q=q
        )
        # A page kept and still true is answered on the loop; any other is read on a worker thread.
        page = queries.kept_page_json(filters, limit, cursor)
        if page is None:
            page = await run_in_threadpool(queries.list_contacts_json, filters, limit, cursor)
        items, next_cursor = page
        # Page.to_data() shape, with the items serialised once by the queries.
        body = b'{"items":' + items + b',"next_cursor":' + orjson.dumps(next_cursor) + b"}"
        return Response(body, media_type="application/json")

    @router.get("/contacts/locked")
    def locked_contacts(_: CallerDep) -> Response:
        return json_response([c.to_data() for c in queries.locked_contacts()])

    @router.post("/contacts/existing")
    def existing(body: PhonesRequest, _: CallerDep) -> Response:
        return json_response({"existing": sorted(queries.existing_phones(body.phones))})

    @router.post("/contacts/dnc")
    def dnc_listed(body: PhonesRequest, _: CallerDep) -> Response:
        return json_response({"listed": sorted(queries.dnc_listed(body.phones))})

    @router.post("/contacts/batch")
    def batch(body: BatchRequest, caller: CallerDep) -> Response:
        try:
            rows = [decode_dataclass(ImportRow, row) for row in body.rows]
        except ValueError as error:
            raise InvalidInput("rows", str(error)) from None
        result = service.create_or_merge(
            rows,
            body.list_name,
            caller,
            source=body.source,
            job_id=body.job_id,
            merge=body.merge,
            dry_run=body.dry_run,
        )
        return json_response(result.to_data())

    @router.get("/contacts/by-phone/{phone}")
    def by_phone(phone: str, _: CallerDep) -> Response:
        return contact_response(queries.get_by_phone(phone))

    @router.get("/contacts/{contact_id}")
    def get(contact_id: str, _: CallerDep) -> Response:
        return contact_response(queries.get(contact_id))

    @router.get("/contacts/{contact_id}/history")
    def history(contact_id: str, _: CallerDep) -> Response:
        return json_response([entry.to_data() for entry in queries.history(contact_id)])

    @router.post("/commands")
    def command(body: CommandRequest, caller: CallerDep) -> Response:
        try:
            decoded = decode_command(body.type, {**body.data, "caller": caller_to_data(caller)})
        except ValueError as exc:
            raise InvalidInput("command", str(exc)) from None
        if not isinstance(decoded, ContactCommand):
            raise InvalidInput("command", f"{body.type} no es un comando de un contacto")
        contact = service.handle(decoded, body.expected_version)
        return json_response({"contact": contact.to_data() if contact is not None else None})

    @router.get("/stats")
    def stats(_: CallerDep) -> Response:
        return json_response(queries.stats())

    @router.get("/calls/figures")
    def call_figures(
        _: CallerDep,
        since: datetime | None = None,
        until: datetime | None = None,
        user_id: Annotated[list[str] | None, Query()] = None,
        only_users: bool = False,
    ) -> Response:
        # only_users distinguishes "these users" (possibly none) from "everyone" (no user_id at all).
        user_ids = list(user_id or []) if only_users else None
        agents = queries.call_figures(_aware(since), _aware(until), user_ids)
        return json_response([agent.to_data() for agent in agents])

    return router


class DncRequest(BaseModel):
    """Body of ``POST /dnc`` and ``POST /dnc/remove``."""

    phone: str = Field(min_length=1, max_length=64)
    reason: str = Field("", max_length=500)
    now: datetime


class DncManyRequest(BaseModel):
    """Body of ``POST /dnc/many``: ``[phone, reason]`` pairs."""

    entries: list[
        tuple[Annotated[str, Field(min_length=1, max_length=64)], Annotated[str, Field(max_length=500)]]
    ]
    now: datetime


class CampaignRequest(BaseModel):
    """Body of ``POST /campaigns`` and ``PATCH /campaigns/{id}``: the rules given, and when."""

    fields: dict[str, Any]
    now: datetime


def _campaign_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - FIELDS)
    if unknown:
        raise InvalidInput(unknown[0], f"Campo de campaña desconocido: {unknown[0]}")
    if "name" not in fields:
        raise InvalidInput("name", "Falta el nombre de la campaña")
    return {key: value for key, value in fields.items() if value is not None}


def create_queue_router(queue: WorkQueue, book: CallbackBook | None = None) -> APIRouter:
    """The work queue's routes (``contacts.queueclient.HttpQueueClient`` calls them); ``GET /callbacks``
    lists ``book``'s."""
    router = APIRouter()

    @router.post("/queue/next")
    def next_contact(caller: CallerDep, campaign: str | None = None) -> Response:
        return json_response(queue.next_contact(caller, campaign).to_data())

    @router.get("/queue/eligibility/{contact_id}")
    def eligibility(contact_id: str, caller: CallerDep, campaign: str | None = None) -> Response:
        return json_response(queue.eligibility(caller, contact_id, campaign).to_data())

    @router.get("/campaigns")
    def campaigns(_: CallerDep, archived: bool = False) -> Response:
        return json_response([campaign.to_data() for campaign in queue.campaigns.all(archived=archived)])

    @router.get("/campaigns/{campaign_id}/progress")
    def progress(campaign_id: str, _: CallerDep) -> Response:
        return json_response(queue.progress(campaign_id).to_data())

    @router.post("/campaigns")
    def create_campaign(body: CampaignRequest, caller: CallerDep) -> Response:
        made = queue.campaigns.create(caller, _aware(body.now) or body.now, **_campaign_fields(body.fields))
        return json_response(made.to_data())

    @router.patch("/campaigns/{campaign_id}")
    def update_campaign(campaign_id: str, body: CampaignRequest, caller: CallerDep) -> Response:
        now = _aware(body.now) or body.now
        return json_response(queue.campaigns.update(caller, now, campaign_id, body.fields).to_data())

    @router.get("/callbacks")
    def callbacks(
        caller: CallerDep,
        mine: bool = True,
        team: Annotated[str | None, Query(max_length=100)] = None,
        due_before: datetime | None = None,
        contact_id: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        if book is None:
            raise InvalidInput("callbacks", "Este servicio no tiene el registro de rellamadas")
        seen = visibility(caller, mine=mine, team=team)
        found = book.listed(seen, _aware(due_before), contact_id=contact_id)
        return json_response([callback.to_data() for callback in found])

    @router.get("/dnc")
    def dnc_entries(
        _: CallerDep,
        limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        return json_response([entry.to_data() for entry in queue.dnc.entries(limit, offset)])

    @router.post("/dnc")
    def add_dnc(body: DncRequest, caller: CallerDep) -> Response:
        entry = queue.dnc.add(body.phone, body.reason, caller, _aware(body.now) or body.now)
        return json_response(entry.to_data())

    @router.post("/dnc/many")
    def add_dnc_many(body: DncManyRequest, caller: CallerDep) -> Response:
        added = queue.dnc.add_many(body.entries, caller, _aware(body.now) or body.now)
        return json_response({"added": added})

    @router.post("/dnc/remove")
    def remove_dnc(body: DncRequest, caller: CallerDep) -> Response:
        return json_response({"removed": queue.dnc.remove(body.phone, body.reason, caller, body.now)})

    @router.get("/dnc/check/{phone_e164}")
    def check_dnc(phone_e164: str, _: CallerDep) -> Response:
        queue.dnc.check(phone_e164)
        return json_response({"listed": False})

    return router


class InternalTokenMiddleware:
    """Refuses every request (but ``/health``) without the deployment's internal token (401)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()
        self._header = INTERNAL_TOKEN_HEADER.lower().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") != "/health":
            presented = dict(scope.get("headers") or ()).get(self._header, b"")
            if not hmac.compare_digest(presented, self._token):
                message = "Falta el token interno o no es válido: esta API es sólo para los servicios"
                body = {"error": {"code": "unauthenticated", "message": message}}
                await json_response(body, 401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    service: ContactsService,
    queries: ContactQueries,
    internal_token: str | None = None,
    queue: WorkQueue | None = None,
    callbacks: CallbackBook | None = None,
) -> FastAPI:
    """The internal contacts app: the routes plus the one place domain errors become HTTP answers.

    With ``internal_token`` every request must carry it in ``X-Internal-Token`` (distributed mode: only
    the deployment's own services may call, and only they may name the caller in ``X-Caller``).
    """
    app = FastAPI(
        title="CallManager contacts (internal)",
        version="0.1.0",
        # No OpenTelemetry: FastAPI would otherwise look its providers up on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.include_router(create_router(service, queries))
    if queue is not None:
        app.include_router(create_queue_router(queue, callbacks))
    if internal_token:
        app.add_middleware(InternalTokenMiddleware, token=internal_token)

    @app.exception_handler(ContactError)
    async def domain_error(_: Request, error: ContactError) -> Response:
        return error_response(error)

    @app.exception_handler(CallerMissing)
    async def caller_missing(_: Request, __: CallerMissing) -> Response:
        message = f"Falta la cabecera {CALLER_HEADER} con el usuario que llama"
        return json_response({"error": {"code": "unauthenticated", "message": message}}, 401)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = f"Solicitud no válida: {where or 'cuerpo'}: {first.get('msg', 'valor no válido')}"
        body = {"error": {"code": InvalidInput.code, "message": message, "field": where}}
        return json_response(body, 422)

    return app


def _aware(moment: datetime | None) -> datetime | None:
    """``moment`` with a time zone; a naive one is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
