"""The answers every route can give, declared once in the OpenAPI description instead of on each route.

A route declares its success and, where it has one, an error of its own; what the gateway's common
machinery may answer is added here from what the route is: a route behind a key may give 401, 429 and
503 (the key directory or a service unreachable); one that needs a capability, 403; one with a path
parameter, 404; one that reads parameters or a body, 400 and 422; a write, 409; a write on one contact,
412 (``If-Match``) and 423 (locked by another). Every error has the one JSON shape of
:mod:`gateway.errors`. Schemathesis checks the result against the running gateway for every role
(``tests/gateway/test_security_schema.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import Any, Final

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

ERROR_SCHEMA: Final[dict[str, Any]] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Código estable del error."},
                "message": {"type": "string", "description": "Mensaje en español para el usuario."},
            },
            "additionalProperties": True,
        }
    },
}
"""``{"error": {"code", "message", ...details}}``: the shape of every error answer."""

_RETRY_AFTER: Final = {
    "Retry-After": {"description": "Segundos a esperar antes de reintentar.", "schema": {"type": "integer"}}
}

DESCRIPTIONS: Final[dict[int, str]] = {
    400: "Solicitud no válida.",
    401: "Falta la clave API o no es válida.",
    403: "El rol no permite esta acción.",
    404: "No encontrado.",
    409: "Conflicto con el estado actual (ya existe, no bloqueado, ...).",
    412: "La versión de `If-Match` ya no es la actual.",
    413: "El archivo excede el tamaño máximo.",
    422: "Datos de entrada no válidos.",
    423: "Bloqueado por otro usuario.",
    429: "Demasiadas solicitudes.",
    503: "Un servicio interno no está disponible; reintente.",
}

_WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

METRICS_CONTENT: Final[dict[str, Any]] = {
    "text/plain": {"schema": {"type": "string", "description": "Exposición de texto de Prometheus."}},
    "application/json": {"schema": {"type": "object", "additionalProperties": True}},
}


def install_openapi(app: FastAPI, routes: Iterable[BaseRoute]) -> None:
    """Make ``app.openapi()`` declare the common answers of ``routes`` (``app``'s own and its routers')."""
    build = app.openapi
    known = list(routes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(build(), known)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(spec: dict[str, Any], routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """``spec`` with the common answers of each of ``routes`` added (those a route declares are kept).

    An operation of ``spec`` none of ``routes`` serves gets the answers its security and parameters
    imply, and 403 when it needs a key (it may need a capability).
    """
    spec.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    by_operation = {
        (route.path, method.lower()): route for route in _api_routes(routes) for method in route.methods or ()
    }
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            route = by_operation.get((path, method))
            for status in sorted(expected_errors(route, method, operation)):
                _declare(operation, status)
    metrics = spec.get("paths", {}).get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"]["content"] = METRICS_CONTENT
    return spec


def expected_errors(route: APIRoute | None, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses the gateway's common machinery may answer for ``method`` on ``route``."""
    statuses: set[int] = set()
    if operation.get("security"):
        statuses |= {401, 429, 503}
        if route is None or any(_needs_capability(call) for call in _calls(route.dependant)):
            statuses.add(403)
    path = route.path if route is not None else ""
    methods = {method.upper()}
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if parameters or "requestBody" in operation:
        statuses |= {400, 422}  # 400: a rule of the service that no schema states
    if methods & _WRITES:
        statuses.add(409)  # already exists, not locked, no longer in that state
    if path.startswith("/contacts/{contact_id}") and methods & _WRITES:
        statuses.add(423)
        if methods & {"PUT", "PATCH", "DELETE"}:
            statuses.add(412)
    return statuses


def _declare(operation: dict[str, Any], status: int) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    key = str(status)
    # FastAPI's own 422 describes its validation error, not the shape this gateway answers: replace it.
    if key in responses and status != 422:
        return
    answer: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if status in (429, 503):
        answer["headers"] = _RETRY_AFTER
    responses[key] = answer


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    return (route for route in routes if isinstance(route, APIRoute) and route.include_in_schema)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _needs_capability(call: Callable[..., Any]) -> bool:
    """Whether ``call`` is a role check (:func:`gateway.auth.require`'s, or one built on it)."""
    return getattr(call, "__name__", "").startswith("require_")


def allowed_methods(spec: dict[str, Any], path: str) -> list[str]:
    """The methods ``spec`` documents for the concrete ``path`` (for a 405's ``Allow``), sorted.

    A path the spec names as it is (``/dnc/export``) answers for that entry alone, as the spec describes
    it; otherwise every template that matches (``/dnc/{phone}``) counts."""
    paths: dict[str, Any] = spec.get("paths", {})
    matching = (
        [paths[path]]
        if path in paths
        else [
            operations
            for template, operations in paths.items()
            if _template_pattern(template).fullmatch(path)
        ]
    )
    methods: set[str] = set()
    for operations in matching:
        methods |= {method.upper() for method in operations if method.upper() in _HTTP_METHODS}
    return sorted(methods)


_HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


@cache
def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))
