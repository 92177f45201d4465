"""Generator routes: ``POST /api/generate_contacts`` (seed-compatible) and ``GET /jobs/{id}/download``.

The generator is a stateless pure library, so the gateway calls it in-process: drawing a thousand
numbers takes about a millisecond, far less than a network hop. No ``serve generator`` process is
needed for the HTTP path (``callmanager serve generator`` says so). What does need the contacts service
— the existence check and the saving — goes through the gateway's :class:`ContactsClient` (direct in
embedded mode, HTTP in distributed mode), as the caller whose API key made the request.

Up to :data:`~generator.batch.MAX_SYNC_COUNT` numbers are answered at once; larger counts (up to
:data:`~generator.batch.MAX_COUNT`) start a ``generate`` job and answer 202 with the job and
``Location: /jobs/{id}``; its progress reaches the creator's Socket.IO connections as ``job_progress``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from contacts.client import ContactsClient
from gateway.auth import ApiError, Authenticated, CanGenerate, note_audit
from gateway.callers import caller_of
from gateway.routes.jobs import JobId, visible_job
from generator.batch import (
    MAX_COUNT,
    MAX_SYNC_COUNT,
    GenerationRequest,
    batch_list_name,
    run_generation,
)
from generator.draw import GenerationError, Method, check_weights, new_seed, parse_method
from generator.generatejob import GENERATE_JOB, job_params
from generator.ranges import DEFAULT_WEIGHTS
from kernel.jobqueue import JobRunner, JobStore

_AMOUNT_MESSAGE = (
    "La cantidad debe ser un número entero entre 1 y 1.000.000 "
    "(hasta 1.000 con respuesta inmediata; más, como trabajo en segundo plano)."
)


# Files jobs leave in the exports folder: generated numbers (csv) and contact exports (xlsx, csv).
_DOWNLOAD_TYPES = {
    ".csv": "text/csv; charset=utf-8",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class GeneratorConfig:
    """What the generator routes need besides the contacts client and the jobs: weights, exports folder."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    exports_dir: Path | None = None


class GenerateBody(BaseModel):
    """Body of ``POST /api/generate_contacts`` (``count`` and ``auto_import`` are accepted as aliases)."""

    model_config = ConfigDict(extra="forbid")

    amount: int = Field(
        validation_alias=AliasChoices("amount", "count"),
        description=f"Cuántos números: 1..{MAX_SYNC_COUNT} al instante, hasta {MAX_COUNT} como trabajo.",
        examples=[100],
    )
    method: str = Field(Method.STRATIFIED.value, max_length=20, description="stratified, simple o random.")
    save: bool = Field(
        False,
        validation_alias=AliasChoices("save", "auto_import"),
        description="Guardar los números como contactos (lista `gen-...`, sin chocar con los existentes).",
    )
    seed: int | None = Field(None, ge=0, lt=2**63, description="Semilla para repetir una generación.")
    weights: dict[str, float] | None = Field(
        None,
        max_length=10,
        description="Pesos por operador (kolbi, telefonica, claro); por defecto los de la configuración.",
        examples=[{"kolbi": 40, "telefonica": 35, "claro": 25}],
    )
    background: bool | None = Field(
        None,
        description=(
            "Sin indicar: respuesta inmediata hasta 1000 números y trabajo en segundo plano para más. "
            "`false` exige respuesta inmediata; `true` crea siempre un trabajo."
        ),
    )


class GeneratedPhoneOut(BaseModel):
    number: str
    formatted: str
    e164: str
    operator: str


class OperatorShareOut(BaseModel):
    code: str
    name: str
    count: int
    share: float


class GenerationOut(BaseModel):
    """Numbers and statistics; ``list`` is the contact list they were saved into (when saved)."""

    success: bool
    count: int
    saved: int
    merged: int
    rejected: int
    method: str
    seed: int
    redraws: int
    weights: dict[str, float]
    operators: list[OperatorShareOut]
    phones: list[GeneratedPhoneOut]
    list: str | None


def generator_router(
    contacts: ContactsClient, runner: JobRunner, jobs: JobStore, config: GeneratorConfig
) -> APIRouter:
    """``POST /api/generate_contacts`` and the download of a job's file."""
    router = APIRouter(tags=["generator"])

    @router.post(
        "/api/generate_contacts",
        response_model=GenerationOut,
        summary="Generar números móviles de Costa Rica (y guardarlos como contactos)",
        responses={202: {"description": "Trabajo creado (más de 1000 números); ver `Location`."}},
    )
    def generate_contacts(request: Request, principal: CanGenerate, body: GenerateBody) -> Response:
        order = _order(body)
        background = body.background if body.background is not None else order.count > MAX_SYNC_COUNT
        if not background and order.count > MAX_SYNC_COUNT:
            raise ApiError(
                422,
                "invalid_amount",
                f"Con respuesta inmediata se generan como máximo {MAX_SYNC_COUNT} números; "
                "para más, use un trabajo en segundo plano.",
            )
        caller = caller_of(principal)
        note_audit(request, amount=order.count, method=order.method.value, save=order.save)
        if background:
            order = GenerationRequest(
                count=order.count,
                method=order.method,
                save=order.save,
                seed=order.seed if order.seed is not None else new_seed(),
                weights=order.weights if order.weights is not None else dict(config.weights),
                list_name=batch_list_name() if order.save else "",
            )
            job = runner.submit(
                GENERATE_JOB, job_params(order, caller), str(principal.user_id), total=order.count
            )
            note_audit(request, job_id=job.id, list=order.list_name or None)
            body_out = {**job.to_data(), "list": order.list_name or None}
            return Response(
                orjson.dumps(body_out),
                status_code=202,
                media_type="application/json",
                headers={"Location": f"/jobs/{job.id}"},
            )
        try:
            run = run_generation(order, config.weights, contacts, caller)
        except GenerationError as exc:
            raise ApiError(422, "generation_impossible", str(exc)) from exc
        if run.saved is not None:
            note_audit(request, list=run.list_name, saved=run.saved.inserted)
        answer = {"success": True, **run.summary(), "phones": run.phones()}
        return Response(orjson.dumps(answer), media_type="application/json")

    @router.get(
        "/jobs/{job_id}/download",
        tags=["jobs"],
        summary="Descargar el archivo de un trabajo terminado (p. ej. los números generados sin guardar)",
        response_class=FileResponse,
    )
    def download(principal: Authenticated, job_id: JobId) -> FileResponse:
        job = visible_job(jobs, job_id, principal)
        name = (job.report or {}).get("file")
        if config.exports_dir is None or not isinstance(name, str) or not name:
            raise ApiError(404, "no_file", "Ese trabajo no tiene archivo para descargar.")
        path = config.exports_dir / Path(name).name
        if not path.is_file():
            raise ApiError(404, "no_file", "El archivo de ese trabajo ya no existe.")
        media_type = _DOWNLOAD_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return FileResponse(path, media_type=media_type, filename=path.name)

    return router


def _order(body: GenerateBody) -> GenerationRequest:
    """The generation request of ``body``, or a 422 :class:`ApiError` with a Spanish message."""
    if not 1 <= body.amount <= MAX_COUNT:
        raise ApiError(422, "invalid_amount", _AMOUNT_MESSAGE)
    try:
        method = parse_method(body.method.strip().lower())
    except GenerationError as exc:
        raise ApiError(422, "invalid_method", str(exc)) from exc
    if body.weights is not None:
        try:
            check_weights(body.weights)
        except GenerationError as exc:
            raise ApiError(422, "invalid_weights", str(exc)) from exc
    return GenerationRequest(
        count=body.amount, method=method, save=body.save, seed=body.seed, weights=body.weights
    )
