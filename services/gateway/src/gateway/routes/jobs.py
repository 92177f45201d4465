"""Job routes: ``GET /jobs/{id}`` (state, progress, report) and ``DELETE /jobs/{id}`` (cancel)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from gateway.auth import ApiError, Authenticated, note_audit
from gateway.roles import Capability, Principal
from kernel.jobqueue import Job, JobState, JobStore, discard_upload

JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


class Progress(BaseModel):
    done: int
    total: int


class JobOut(BaseModel):
    """A job: ``state`` is queued, running, finished, failed or cancelled."""

    id: str
    kind: str
    state: str
    progress: Progress
    report: dict[str, Any] | None
    error: str | None
    created_by: str
    created_at: str
    updated_at: str
    attempts: int


def visible_job(store: JobStore, job_id: str, principal: Principal) -> Job:
    """The job if this caller may see it (its creator, or a role that sees all metrics); 404 otherwise."""
    job = store.get(job_id)
    if job is None or (
        job.created_by != str(principal.user_id) and not principal.can(Capability.ALL_METRICS)
    ):
        raise ApiError(404, "not_found", "No existe ese trabajo.")
    return job


def jobs_router(store: JobStore) -> APIRouter:
    """Routes over the job table."""
    router = APIRouter(tags=["jobs"])

    @router.get("/jobs/{job_id}", response_model=JobOut, summary="Estado y progreso de un trabajo")
    def get_job(principal: Authenticated, job_id: JobId) -> dict[str, Any]:
        return visible_job(store, job_id, principal).to_data()

    @router.delete("/jobs/{job_id}", response_model=JobOut, summary="Cancelar un trabajo")
    def cancel_job(request: Request, principal: Authenticated, job_id: JobId) -> dict[str, Any]:
        visible_job(store, job_id, principal)
        note_audit(request, job_id=job_id)
        job = store.request_cancel(job_id)
        assert job is not None
        if job.state is JobState.CANCELLED:  # ended now (queued, or its process died): nobody else will
            discard_upload(job)
        return job.to_data()

    return router
