"""The gateway's ASGI application: the only public door of CallManager."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI
from fastapi.responses import ORJSONResponse

from gateway.health import HealthCheck, run_checks

VERSION = "0.1.0"


def create_app(*, health_checks: Mapping[str, HealthCheck]) -> FastAPI:
    """Build the gateway app around dependencies built by the composition root."""
    app = FastAPI(
        title="CallManager",
        version=VERSION,
        description="Gestión de contactos para call centers: API pública del gateway.",
        default_response_class=ORJSONResponse,
    )

    @app.get("/health", tags=["operations"], summary="Estado del servidor y de sus dependencias")
    def health() -> ORJSONResponse:
        report = run_checks(health_checks)
        return ORJSONResponse(
            {**report.to_dict(), "version": VERSION}, status_code=200 if report.healthy else 503
        )

    return app
