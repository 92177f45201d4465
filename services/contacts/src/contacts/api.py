"""The contacts service's internal HTTP API: what the gateway and the workers call in distributed mode.

Two doors carry the contract: ``POST /commands`` (any command of ``contacts.commands``) and
``POST /queries`` (any query of ``contacts.asks``), both ``{"type", "data"}`` answered ``{"result"}``
and run by the same :class:`~contacts.messagebus.MessageBus` as in process. Beside them, the bulk paths:
``GET /contacts`` (the list page, serialised once) and ``POST /contacts/batch`` (import and generation).

Internal network only: the caller's identity arrives in the ``X-Caller`` header (JSON ``user_id``,
``username``, ``role``, ``team``), set by the gateway after it checked the API key. Every domain error
is answered as ``{"error": {"code", "message", ...details}}`` with its ``http_status``;
:class:`contacts.client.HttpContactsClient` turns it back into the same typed exception.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from contacts.asks import decode_query
from contacts.callbacks import CallbackBook
from contacts.client import CALLER_HEADER, INTERNAL_TOKEN_HEADER
from contacts.commands import Caller, ImportRow, MergeMode, Source, decode_command
from contacts.errors import (
    ContactError,
    InvalidInput,
)
from contacts.handlers import ContactsService
from contacts.message import decode_dataclass
from contacts.messagebus import MessageBus
from contacts.queries import DEFAULT_LIMIT, MAX_LIMIT, ContactQueries
from contacts.queue import WorkQueue
from contacts.views import ContactFilters, caller_from_data, caller_to_data, error_to_data


class CommandRequest(BaseModel):
    """Body of ``POST /commands``: any command by its stable type name and its data (its ``caller`` is
    the ``X-Caller`` header's), and the contact version it expects (the gateway's ``If-Match``)."""

    type: str = Field(min_length=1, max_length=100)
    data: dict[str, Any]
    expected_version: int | None = Field(default=None, ge=0)


class QueryRequest(BaseModel):
    """Body of ``POST /queries``: any query by its stable type name and its data."""

    type: str = Field(min_length=1, max_length=100)
    data: dict[str, Any]


class BatchRequest(BaseModel):
    """Body of ``POST /contacts/batch``: rows as ``ImportRow`` data."""

    rows: list[dict[str, Any]]
    list_name: str = Field("", alias="list")
    source: Source = Source.IMPORT
    job_id: str = ""
    merge: MergeMode = MergeMode.FILL
    dry_run: bool = False


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


def create_router(bus: MessageBus) -> APIRouter:
    """The routes of the contacts API around the service's message bus."""
    router = APIRouter()
    service, queries = bus.service, bus.queries

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

    @router.post("/commands")
    def command(body: CommandRequest, caller: CallerDep) -> Response:
        try:
            decoded = decode_command(body.type, {**body.data, "caller": caller_to_data(caller)})
        except ValueError as exc:
            raise InvalidInput("command", str(exc)) from None
        result = bus.execute(decoded, body.expected_version)
        return json_response({"result": decoded.result_to_data(result)})

    @router.post("/queries")
    def query(body: QueryRequest, caller: CallerDep) -> Response:
        try:
            decoded = decode_query(body.type, body.data)
        except ValueError as exc:
            raise InvalidInput("query", str(exc)) from None
        result = bus.ask(decoded, caller)
        return json_response({"result": decoded.result_to_data(result)})

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

    ``queue`` and ``callbacks``: the composition root's work queue and callback book (built over the
    queries' database when not given).

    With ``internal_token`` every request must carry it in ``X-Internal-Token`` (distributed mode: only
    the deployment's own services may call, and only they may name the caller in ``X-Caller``).
    """
    app = FastAPI(
        title="CallManager contacts (internal)",
        version="0.1.0",
        # No OpenTelemetry: FastAPI would otherwise look its providers up on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.include_router(create_router(MessageBus(service, queries, queue, callbacks)))
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
