"""The gateway's ASGI application: the only public door of CallManager."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

import orjson
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import Match

from gateway.health import HealthCheck, run_checks
from gateway.metrics import GatewayMetrics

VERSION = "0.1.0"


def create_app(*, health_checks: Mapping[str, HealthCheck], metrics: GatewayMetrics) -> FastAPI:
    """Build the gateway app around dependencies built by the composition root."""
    app = FastAPI(
        title="CallManager",
        version=VERSION,
        description="Gestión de contactos para call centers: API pública del gateway.",
    )

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = _route_template(app, request)
        metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        return response

    @app.get("/health", tags=["operations"], summary="Estado del servidor y de sus dependencias")
    def health() -> Response:
        report = run_checks(health_checks)
        return json_response({**report.to_dict(), "version": VERSION}, 200 if report.healthy else 503)

    @app.get(
        "/metrics", tags=["operations"], summary="Métricas Prometheus (JSON con Accept: application/json)"
    )
    def prometheus(request: Request) -> Response:
        if "application/json" in request.headers.get("accept", ""):
            return json_response(_json_stats(metrics))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def json_response(body: object, status_code: int = 200) -> Response:
    """A JSON response serialised once with orjson."""
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def _route_template(app: FastAPI, request: Request) -> str:
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "other"))
    return "unmatched"


def _json_stats(metrics: GatewayMetrics) -> dict[str, object]:
    stats: dict[str, object] = {}
    for family in metrics.registry.collect():
        samples = {}
        for sample in family.samples:
            if sample.name.endswith(("_created", "_bucket")):
                continue
            key = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items())) or "total"
            samples[f"{sample.name}{{{key}}}" if key != "total" else sample.name] = sample.value
        stats[family.name] = samples
    return stats
