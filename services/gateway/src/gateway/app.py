"""The gateway's ASGI application: the only public door of CallManager."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import structlog
from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contacts.asks import GetLockedContacts
from contacts.client import ContactsClient, HttpContactsClient
from contacts.commands import SYSTEM_CALLER
from contacts.statuses import Catalogue
from gateway.admin import admin_router
from gateway.audit import AuditLog
from gateway.auth import ApiKey, BearerKey, Gate, install_security, require
from gateway.docs import install_docs
from gateway.errors import install_error_handlers
from gateway.headers import SecurityHeaders
from gateway.health import HealthCheck, run_checks
from gateway.live import LiveHub
from gateway.metrics import GatewayMetrics
from gateway.openapi import install_openapi
from gateway.ports import GeneratorPort, TransferPort
from gateway.roles import Capability, Principal
from gateway.routes.callbacks import callbacks_router
from gateway.routes.calls import call_totals, calls_router
from gateway.routes.contacts import contacts_router
from gateway.routes.desks import desks_router
from gateway.routes.deskupdates import deskupdates_router
from gateway.routes.dnc import dnc_router
from gateway.routes.generator import GeneratorConfig, generator_router
from gateway.routes.jobs import jobs_router
from gateway.routes.operations import operations_router
from gateway.routes.queue import queue_router
from gateway.routes.transfer import TransferConfig, transfer_router
from gateway.runtime import ConfigStore
from gateway.users import UserDirectory, UserNames
from kernel.jobqueue import JobStore

VERSION = "0.1.0"

log = structlog.get_logger(__name__)


@dataclass
class GatewayDeps:
    """Everything the gateway needs, built by the composition root."""

    gate: Gate
    directory: UserDirectory
    audit: AuditLog
    contacts: ContactsClient
    catalogue: Catalogue
    metrics: GatewayMetrics
    hub: LiveHub
    config: ConfigStore
    jobs: JobStore
    names: UserNames
    generator_port: GeneratorPort
    transfer_port: TransferPort
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    health_checks: Mapping[str, HealthCheck] = field(default_factory=dict)
    health_advisories: Mapping[str, HealthCheck] = field(default_factory=dict)
    # The folder of the signed desk release served at /desk/version (None: nothing published).
    desk_updates: Path | None = None
    extra_routers: list[Callable[[FastAPI], None]] = field(default_factory=list)
    # A bearer token that reads /metrics without a user's key (Prometheus); None: keys only.
    metrics_token: str | None = None


def create_app(deps: GatewayDeps) -> ASGIApp:
    """The gateway: HTTP API and Socket.IO on one ASGI app."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await deps.hub.start()
        try:
            yield
        finally:
            await deps.hub.stop()
            if isinstance(deps.contacts, HttpContactsClient):
                await deps.contacts.aclose()

    app = FastAPI(
        title="CallManager",
        version=VERSION,
        description=(
            "Gestión de contactos para call centers: API pública del gateway. Autenticación con la cabecera "
            '`X-API-Key` (o `Authorization: Bearer`). Errores como `{"error": {"code", "message"}}`.'
        ),
        lifespan=lifespan,
        docs_url=None,  # served from the gateway's own assets (gateway.docs)
        redoc_url=None,
        # No OpenTelemetry here (Prometheus metrics below); checking for its providers on every request
        # read the environment each time.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_error_handlers(app)
    install_docs(app)
    install_security(app, deps.gate)
    app.add_middleware(MetricsMiddleware, metrics=deps.metrics)
    app.add_middleware(SecurityHeaders)

    @app.get("/health", tags=["operations"], summary="Estado del servidor y de sus dependencias")
    def health() -> Response:
        report = run_checks(deps.health_checks, deps.health_advisories)
        return json_response({**report.to_dict(), "version": VERSION}, 200 if report.healthy else 503)

    read_all_metrics = require(Capability.ALL_METRICS)

    async def require_metrics_or_scrape_token(
        request: Request, api_key: ApiKey, bearer: BearerKey
    ) -> Principal | None:
        """The caller when its role sees every metric; None for the scrape token (401/403 otherwise)."""
        presented = api_key or (bearer.credentials if bearer else None)
        if deps.metrics_token and presented and _same_secret(presented, deps.metrics_token):
            return None
        return await read_all_metrics(request, api_key, bearer)

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Métricas Prometheus (JSON con Accept: application/json)",
        description=(
            "Para ProjectManager y TI, o para Prometheus con el token de lectura de métricas "
            "(`CALLMANAGER_METRICS_TOKEN`) como `Authorization: Bearer`."
        ),
        dependencies=[Depends(require_metrics_or_scrape_token)],
    )
    def prometheus(request: Request) -> Response:
        try:
            deps.metrics.locks_held.set(len(deps.contacts.ask(GetLockedContacts(), SYSTEM_CALLER)))
        except Exception:  # the scrape still answers; /health names the failing dependency
            log.warning("metrics.locks_uncounted")
        try:
            deps.metrics.calls.update(call_totals(deps.contacts, SYSTEM_CALLER))
        except Exception:  # as above: the counters keep their last reading
            log.warning("metrics.calls_uncounted")
        if "application/json" in request.headers.get("accept", ""):
            stats = _json_stats(deps.metrics)
            figures = deps.metrics.calls.figures
            if figures is not None:
                stats["calls"] = figures.to_data()
            return json_response(stats)
        return Response(generate_latest(deps.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routers = [
        contacts_router(deps.contacts, deps.catalogue, deps.hub, deps.names),
        operations_router(deps.config, deps.contacts),
        calls_router(deps.contacts, deps.directory),
        desks_router(deps.contacts, deps.hub),
        queue_router(deps.contacts, deps.catalogue),
        callbacks_router(deps.contacts, deps.directory),
        dnc_router(deps.contacts, deps.transfer_port, deps.transfer),
        jobs_router(deps.jobs),
        generator_router(deps.generator_port, deps.jobs, deps.generator),
        transfer_router(deps.contacts, deps.transfer_port, deps.jobs, deps.transfer),
        admin_router(deps.directory, deps.audit),
        deskupdates_router(deps.desk_updates),
    ]
    for router in routers:
        app.include_router(router)
    for add in deps.extra_routers:
        add(app)
    install_openapi(app, [*app.routes, *(route for router in routers for route in router.routes)])
    return deps.hub.asgi(app)


def json_response(body: object, status_code: int = 200) -> Response:
    """A JSON response serialised once with orjson."""
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


class MetricsMiddleware:
    """Counts requests and their latency by route template (pure ASGI: no per-request task or copy)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def _same_secret(presented: str, expected: str) -> bool:
    """Whether ``presented`` is ``expected``, compared in constant time."""
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def _json_stats(metrics: GatewayMetrics) -> dict[str, object]:
    stats: dict[str, object] = {}
    for family in metrics.registry.collect():
        samples = {}
        for sample in family.samples:
            if sample.name.endswith(("_created", "_bucket")):
                continue
            key = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{key}}}" if key else sample.name] = sample.value
        stats[family.name] = samples
    return stats
