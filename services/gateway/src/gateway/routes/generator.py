"""Generator routes: ``POST /api/generate_contacts`` (seed-compatible) and ``GET /jobs/{id}/download``.

The route builds the generator's public command (:class:`generator.commands.GenerateNumbers`, carrying
the caller whose API key made the request) and hands it to the :class:`~gateway.ports.GeneratorPort`:
in process in embedded mode, over rq to ``callmanager serve generator`` in distributed mode. The
generator reaches contacts (existence check, saving) through its own contacts client.

Up to :data:`~generator.commands.MAX_SYNC_COUNT` numbers are answered at once; larger counts (up to
:data:`~generator.commands.MAX_COUNT`) start a ``generate`` job and answer 202 with the job and
``Location: /jobs/{id}``; its progress reaches the creator's Socket.IO connections as ``job_progress``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from contacts.commands import Caller
from gateway.auth import ApiError, Authenticated, CanGenerate, note_audit
from gateway.callers import caller_of
from gateway.ports import GeneratorPort
from gateway.routes.jobs import JobId, visible_job
from generator.commands import MAX_COUNT, MAX_SYNC_COUNT, GenerateNumbers, GenerationRefused
from kernel.jobqueue import JobStore

# Files jobs leave in the exports folder: generated numbers (csv) and contact exports (xlsx, csv).
_DOWNLOAD_TYPES = {
    ".csv": "text/csv; charset=utf-8",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class GeneratorConfig:
    """What the generator routes need besides the generator and the jobs: the exports folder."""

    exports_dir: Path | None = None


class GenerateBody(BaseModel):
    """Body of ``POST /api/generate_contacts`` (``count`` and ``auto_import`` are accepted as aliases)."""

    model_config = ConfigDict(extra="forbid")

    amount: int = Field(
        validation_alias=AliasChoices("amount", "count"),
        description=f"Cuántos números: 1..{MAX_SYNC_COUNT} al instante, hasta {MAX_COUNT} como trabajo.",
        examples=[100],
    )
    method: str = Field("stratified", max_length=20, description="stratified, simple o random.")
    save: bool = Field(
        False,
        strict=True,
        validation_alias=AliasChoices("save", "auto_import"),
        description="Guardar los números como contactos (lista `gen-...`, sin chocar con los existentes).",
    )
    seed: int | None = Field(
        None, ge=0, lt=2**63, strict=True, description="Semilla para repetir una generación."
    )
    weights: dict[str, float] | None = Field(
        None,
        max_length=10,
        description="Pesos por operador (kolbi, telefonica, claro); por defecto los de la configuración.",
        examples=[{"kolbi": 40, "telefonica": 35, "claro": 25}],
    )
    background: bool | None = Field(
        None,
        strict=True,  # true or false: 0, 1 or "yes" are refused, not guessed
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
    dnc_skipped: int = Field(0, description="En la lista de no llamar: se sacaron otros.")
    dnc_refused: int = Field(0, description="Entraron en la lista de no llamar antes de guardarse.")
    weights: dict[str, float]
    operators: list[OperatorShareOut]
    phones: list[GeneratedPhoneOut]
    list: str | None


def generator_router(generator: GeneratorPort, jobs: JobStore, config: GeneratorConfig) -> APIRouter:
    """``POST /api/generate_contacts`` and the download of a job's file."""
    router = APIRouter(tags=["generator"])

    @router.post(
        "/api/generate_contacts",
        response_model=GenerationOut,
        summary="Generar números móviles de Costa Rica (y guardarlos como contactos)",
        responses={202: {"description": "Trabajo creado (más de 1000 números); ver `Location`."}},
    )
    def generate_contacts(request: Request, principal: CanGenerate, body: GenerateBody) -> Response:
        order = _order(body, caller_of(principal))
        background = body.background if body.background is not None else order.count > MAX_SYNC_COUNT
        if not background and order.count > MAX_SYNC_COUNT:
            raise ApiError(
                422,
                "invalid_amount",
                f"Con respuesta inmediata se generan como máximo {MAX_SYNC_COUNT} números; "
                "para más, use un trabajo en segundo plano.",
            )
        note_audit(request, amount=order.count, method=order.method, save=order.save)
        if background:
            order = order.pinned()
            job = generator.start(order, str(principal.user_id))
            note_audit(request, job_id=job.id, list=order.list_name or None)
            body_out = {**job.to_data(), "list": order.list_name or None}
            return Response(
                orjson.dumps(body_out),
                status_code=202,
                media_type="application/json",
                headers={"Location": f"/jobs/{job.id}"},
            )
        try:
            answer = generator.generate(order)
        except GenerationRefused as exc:
            raise ApiError(422, "generation_impossible", exc.message) from exc
        if answer.get("list"):
            note_audit(request, list=answer["list"], saved=answer.get("saved"))
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


def _order(body: GenerateBody, caller: Caller) -> GenerateNumbers:
    """The generator command of ``body``, or a 422 :class:`ApiError` with a Spanish message."""
    try:
        return GenerateNumbers(
            caller=caller,
            count=body.amount,
            method=body.method,
            save=body.save,
            seed=body.seed,
            weights=body.weights,
        ).checked()
    except GenerationRefused as exc:
        raise ApiError(422, exc.code, exc.message) from exc
