"""Every error the gateway answers, mapped to HTTP in one place: ``{"error": {"code", "message", ...}}``.

Domain errors of the services keep their stable code and Spanish message; details that help a client
(the existing contact's id, the lock owner and expiry) travel beside them. Nothing internal (stack
traces, SQL, exception text of libraries) ever reaches a response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import redis
import sqlalchemy
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from contacts.client import ContactsUnavailable
from contacts.errors import ContactError
from gateway.openapi import allowed_methods
from gateway.ports import ServiceUnavailable

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 5
"""What a 503 tells the caller to wait: a service restarting is usually back within seconds."""

# Details of a domain error a client may see, by attribute name.
_PUBLIC_DETAILS = (
    "contact_id",
    "call_id",
    "existing_id",
    "locked_by",
    "locked_by_name",
    "locked_until",
    "expected",
    "actual",
    "field",
    "max_minutes",
    "until",
    "counts",
    "phone",
    "campaign_id",
    "old",
    "new",
    "needed",
    "callback_id",
)


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The JSON error shape of every gateway response."""
    return {"error": {"code": code, "message": message, **details}}


def error_response(status_code: int, code: str, message: str, **details: Any) -> Response:
    """A JSON error response."""
    return Response(
        orjson.dumps(error_body(code, message, **details)),
        status_code=status_code,
        media_type="application/json",
    )


def domain_error_response(error: ContactError) -> Response:
    """The response for a domain error of a service."""
    details: dict[str, Any] = {}
    for name in _PUBLIC_DETAILS:
        value = getattr(error, name, None)
        if value is not None:
            details[name] = value.isoformat() if isinstance(value, datetime) else value
    return error_response(error.http_status, error.code, error.message, **details)


def install_error_handlers(app: FastAPI) -> None:
    """Render domain errors, validation errors, HTTP errors and anything unexpected in the one shape."""

    async def on_domain_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ContactError)
        return domain_error_response(exc)

    async def on_validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        return error_response(422, "invalid_input", "Datos de entrada no válidos.", problems=problems)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        messages = {404: "Recurso no encontrado.", 405: "Método no permitido."}
        message = messages.get(
            exc.status_code, str(exc.detail) if exc.status_code < 500 else "Error interno."
        )
        answer = error_response(exc.status_code, f"http_{exc.status_code}", message)
        if exc.headers:
            answer.headers.update(exc.headers)
        if exc.status_code == 405:  # Allow: every method the path serves (RFC 9110), not one route's
            methods = allowed_methods(app.openapi(), request.scope["path"])
            if methods:
                answer.headers["Allow"] = ", ".join(methods)
        return answer

    async def on_unavailable(request: Request, exc: Exception) -> Response:
        log.warning(
            "gateway.service_unavailable", path=request.url.path, kind=type(exc).__name__, error=str(exc)
        )
        answer = error_response(
            503, "service_unavailable", "Un servicio interno no respondió a tiempo; intente de nuevo."
        )
        answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return answer

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("gateway.unexpected_error", path=request.url.path, error=type(exc).__name__)
        return error_response(500, "internal", "Error interno del servidor.")

    app.add_exception_handler(ContactError, on_domain_error)
    app.add_exception_handler(ServiceUnavailable, on_unavailable)
    app.add_exception_handler(ContactsUnavailable, on_unavailable)
    # The job queue's Redis or the database unreachable or too slow: a dependency is down, not a bug.
    app.add_exception_handler(redis.exceptions.ConnectionError, on_unavailable)
    app.add_exception_handler(redis.exceptions.TimeoutError, on_unavailable)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, on_unavailable)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
