"""Operations routes: effective configuration (``GET/POST /config``) and contact statistics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from contacts.asks import GetStats
from contacts.client import ContactsClient
from gateway.auth import ApiError, CanChangeConfig, CanReadConfig, CanSeeTeamMetrics, note_audit
from gateway.callers import caller_of
from gateway.runtime import LOCK_MINUTES, ConfigStore, InvalidRuntimeSettings


class RuntimeChanges(BaseModel):
    """Body of ``POST /config``: the runtime settings to change (only those given)."""

    model_config = ConfigDict(extra="forbid")

    default_lock_duration_minutes: int | None = Field(None, ge=LOCK_MINUTES[0], le=LOCK_MINUTES[1])
    max_lock_duration_minutes: int | None = Field(None, ge=LOCK_MINUTES[0], le=LOCK_MINUTES[1])
    rate_limit: str | None = Field(None, max_length=100, examples=["600/minute"])
    rate_limit_heavy: str | None = Field(None, max_length=100, examples=["20/minute"])


def operations_router(config: ConfigStore, contacts: ContactsClient) -> APIRouter:
    """``/config`` and ``/stats``."""
    router = APIRouter(tags=["operations"])

    @router.get(
        "/config",
        summary="Configuración efectiva (sin secretos)",
        description=(
            "Cada ajuste en vigor; `sources` dice de dónde viene cada ajuste cambiable en caliente: "
            "`runtime` (POST /config, hasta `callmanager config reset`), `env` (entorno o .env) o `default`."
        ),
    )
    def read_config(principal: CanReadConfig) -> dict[str, Any]:
        return config.effective()

    @router.post("/config", summary="Cambiar configuración en caliente (TI)")
    def change_config(request: Request, principal: CanChangeConfig, body: RuntimeChanges) -> dict[str, Any]:
        changes = body.model_dump(exclude_none=True)
        if not changes:
            raise ApiError(422, "invalid_input", "Indique al menos un valor a cambiar.")
        note_audit(request, changes=config.describe_change(changes))
        try:
            config.change(changes, principal.actor())
        except InvalidRuntimeSettings as exc:
            raise ApiError(422, "invalid_config", str(exc)) from exc
        return config.effective()

    @router.get("/stats", summary="Totales de contactos: por estado, bloqueos")
    def stats(principal: CanSeeTeamMetrics) -> dict[str, Any]:
        return contacts.ask(GetStats(), caller_of(principal))

    return router
