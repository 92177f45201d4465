"""The agent's work queue: ``POST /queue/next``, ``POST /contacts/{id}/disposition``,
``GET /contacts/{id}/eligibility`` and ``GET /campaigns`` (the do-not-call list is ``gateway.routes.dnc``).

Next contact and eligibility are the work queue's (``contacts.queue``, through :class:`QueueClient`);
the disposition is a contact command like any other and goes through the contacts client's one door.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from contacts.client import ContactsClient
from contacts.commands import CallbackScope, RecordDisposition
from contacts.queueclient import QueueClient
from gateway.auth import (
    CanManageCampaigns,
    CanReadContacts,
    CanRecordDisposition,
    CanTakeNext,
    note_audit,
)
from gateway.callers import caller_of, run_command
from gateway.roles import Capability
from gateway.routes.contacts import ContactId, ContactOut, contact_response

CampaignId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9-]+$")]
CampaignQuery = Annotated[
    str | None,
    Query(max_length=100, pattern=r"^[a-z0-9-]+$", description="Campaña (por defecto `general`)."),
]


class ClaimOut(BaseModel):
    """The next contact, already locked to the caller, and why it was chosen."""

    contact: ContactOut
    campaign: str
    reason: str = Field(description="`never_tried` (nunca llamado) o `retry_due` (terminó su espera).")
    message: str
    attempts: int


class FindingOut(BaseModel):
    """One reason a contact is (or is not) offered; ``until`` when a wait ends."""

    reason: str
    message: str
    until: str | None


class EligibilityOut(BaseModel):
    """Whether the queue would offer the contact to the caller now, and why."""

    contact_id: str
    campaign: str
    eligible: bool
    reasons: list[FindingOut]
    attempts: int
    checked_at: str


class DispositionIn(BaseModel):
    """Body of ``POST /contacts/{id}/disposition``: the wrap-up of a call in one step."""

    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(
        min_length=1, max_length=40, examples=["no_answer"], description="Resultado (letras, cifras y _)."
    )
    status: str | None = Field(None, max_length=40, examples=["INTERESADO"], description="Nuevo estado.")
    note: str = Field("", max_length=10_000, description="Se añade a la nota del contacto.")
    callback_at: datetime | None = Field(None, description="Rellamada (con zona horaria, en el futuro).")
    callback_scope: CallbackScope = Field(
        CallbackScope.PERSONAL, description="`personal` (solo este agente) o `shared` (cualquiera)."
    )
    keep_lock: bool = Field(False, description="Conservar el bloqueo (por defecto se libera).")


class CampaignOut(BaseModel):
    """A campaign and its rules."""

    id: str
    name: str
    active: bool
    max_attempts: int
    retry_minutes: dict[str, int]
    closed_statuses: list[str]
    teams: list[str]
    lists: list[str]
    calling_hours: dict[str, Any] | None


class CallbackOut(BaseModel):
    """A pending callback."""

    contact_id: str
    phone_e164: str
    name: str
    user_id: str
    username: str
    scope: str
    due_at: str
    set_at: str


class NewCampaign(BaseModel):
    """Body of ``POST /campaigns``: rules not given are General's defaults."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["Renovaciones"])
    active: bool = True
    max_attempts: int | None = Field(None, ge=1, le=100)
    retry_minutes: dict[str, Annotated[int, Field(ge=0, le=10080)]] | None = Field(
        None, max_length=20, examples=[{"busy": 30, "no_answer": 120}], description="Espera por resultado."
    )
    closed_statuses: list[Annotated[str, Field(max_length=40)]] | None = Field(None, max_length=50)


class CampaignChanges(BaseModel):
    """Body of ``PATCH /campaigns/{id}``: only the rules given change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    active: bool | None = None
    max_attempts: int | None = Field(None, ge=1, le=100)
    retry_minutes: dict[str, Annotated[int, Field(ge=0, le=10080)]] | None = Field(None, max_length=20)
    closed_statuses: list[Annotated[str, Field(max_length=40)]] | None = Field(None, max_length=50)


def queue_router(queue: QueueClient, contacts: ContactsClient) -> APIRouter:
    """The work-queue routes over the queue client and the contacts client."""
    router = APIRouter(tags=["queue"])

    @router.post(
        "/queue/next",
        response_model=ClaimOut,
        summary="Siguiente contacto: el próximo elegible, ya bloqueado para quien lo pide",
        description=(
            "Primero los contactos nunca llamados, luego aquellos cuya espera de reintento terminó; cada "
            "grupo por prioridad de estado y antigüedad. Nunca ofrece un contacto bloqueado por otro, en "
            "la lista de no llamar, en un estado cerrado, con el máximo de intentos o dentro de su espera. "
            "Dos agentes nunca reciben el mismo contacto."
        ),
        responses={
            404: {
                "description": "`queue_empty`: no hay contacto disponible; `message` dice por qué "
                "y `until` cuándo vuelve el primero en espera."
            }
        },
    )
    def next_contact(
        request: Request, principal: CanTakeNext, campaign: CampaignQuery = None
    ) -> dict[str, Any]:
        claim = queue.next_contact(caller_of(principal), campaign)
        note_audit(request, contact_id=claim.contact.id, reason=claim.reason.value)
        return claim.to_data()

    @router.post(
        "/contacts/{contact_id}/disposition",
        response_model=ContactOut,
        summary="Cerrar la gestión de una llamada: resultado, estado, nota y rellamada en un paso",
        responses={423: {"description": "Otro usuario tiene el contacto bloqueado."}},
    )
    def disposition(
        request: Request, principal: CanRecordDisposition, contact_id: ContactId, body: DispositionIn
    ) -> Response:
        command = RecordDisposition(
            caller=caller_of(principal),
            now=datetime.now(UTC),
            contact_id=contact_id,
            outcome=body.outcome,
            status=body.status,
            note=body.note,
            callback_at=body.callback_at,
            callback_scope=body.callback_scope,
            keep_lock=body.keep_lock,
        )
        contact = run_command(contacts, command)
        note_audit(request, contact_id=contact_id, outcome=body.outcome)
        return contact_response(contact)

    @router.get(
        "/contacts/{contact_id}/eligibility",
        response_model=EligibilityOut,
        summary="Por qué el contacto se ofrecería (o no) ahora en la cola",
    )
    def eligibility(
        principal: CanReadContacts, contact_id: ContactId, campaign: CampaignQuery = None
    ) -> dict[str, Any]:
        return queue.eligibility(caller_of(principal), contact_id, campaign).to_data()

    @router.get("/campaigns", response_model=list[CampaignOut], summary="Campañas y sus reglas")
    def campaigns(principal: CanReadContacts) -> list[dict[str, Any]]:
        return [campaign.to_data() for campaign in queue.campaigns(caller_of(principal))]

    @router.post(
        "/campaigns",
        status_code=201,
        response_model=CampaignOut,
        summary="Crear una campaña (reglas de intentos, esperas y estados cerrados)",
        responses={409: {"description": "`campaign_exists`: ya hay una campaña con ese nombre."}},
    )
    def create_campaign(request: Request, principal: CanManageCampaigns, body: NewCampaign) -> dict[str, Any]:
        fields = body.model_dump(exclude_none=True)
        made = queue.save_campaign(caller_of(principal), datetime.now(UTC), None, fields)
        note_audit(request, campaign_id=made.id)
        return made.to_data()

    @router.patch(
        "/campaigns/{campaign_id}",
        response_model=CampaignOut,
        summary="Cambiar las reglas de una campaña o activarla/desactivarla",
        responses={404: {"description": "`campaign_not_found`."}},
    )
    def update_campaign(
        request: Request, principal: CanManageCampaigns, campaign_id: CampaignId, body: CampaignChanges
    ) -> dict[str, Any]:
        fields = body.model_dump(exclude_none=True)
        saved = queue.save_campaign(caller_of(principal), datetime.now(UTC), campaign_id, fields)
        note_audit(request, campaign_id=campaign_id)
        return saved.to_data()

    @router.get(
        "/callbacks",
        response_model=list[CallbackOut],
        summary="Rellamadas pendientes, la más próxima primero",
        description=(
            "Con `mine=true` (por defecto; siempre para un agente) las personales de quien pregunta y las "
            "compartidas; TeamLead y superiores ven todas con `mine=false`. `due_before` filtra por hora."
        ),
    )
    def callbacks(
        principal: CanTakeNext,
        mine: bool = True,
        due_before: datetime | None = None,
    ) -> list[dict[str, Any]]:
        every = not mine and principal.can(Capability.TEAM_METRICS)
        if due_before is not None and due_before.tzinfo is None:
            due_before = due_before.replace(tzinfo=UTC)
        found = queue.callbacks(caller_of(principal), mine=not every, due_before=due_before)
        return [callback.to_data() for callback in found]

    return router


__all__ = ["queue_router"]
