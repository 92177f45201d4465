"""The agent's work queue: ``POST /queue/next``, ``POST /contacts/{id}/disposition``,
``GET /contacts/{id}/eligibility`` and ``GET /campaigns``; the callbacks are
``gateway.routes.callbacks``', the do-not-call list ``gateway.routes.dnc``'.

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
from contacts.statuses import DEFAULT_CATALOGUE, Catalogue
from gateway.auth import (
    CanManageCampaigns,
    CanReadContacts,
    CanRecordDisposition,
    CanTakeNext,
    note_audit,
)
from gateway.callers import caller_of, run_command
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


def queue_router(
    queue: QueueClient, contacts: ContactsClient, catalogue: Catalogue = DEFAULT_CATALOGUE
) -> APIRouter:
    """The work-queue routes over the queue client and the contacts client; ``catalogue`` says which
    statuses put a number on the do-not-call list."""
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
        description=(
            "El estado sigue la máquina de estados del catálogo (`GET /statuses`): salir de un estado final "
            "necesita TeamLead o superior (`NO_LLAMAR`: ProjectManager). Un estado que requiere rellamada "
            "exige `callback_at`; uno de no llamar pone el número en la lista de no llamar en la misma "
            "solicitud."
        ),
        responses={
            403: {
                "description": "`transition_refused`: su rol no puede pasar el contacto de un estado al otro."
            },
            422: {"description": "`callback_required`: el estado exige una rellamada."},
            423: {"description": "Otro usuario tiene el contacto bloqueado."},
        },
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
        note_audit(request, contact_id=contact_id, outcome=body.outcome, status=body.status)
        contact = run_command(contacts, command)
        if body.status is not None and contact.status in catalogue and catalogue.get(contact.status).dnc:
            reason = f"Cierre con estado {contact.status} ({body.outcome})"
            queue.add_dnc(command.caller, contact.phone_e164, reason, command.now)
            note_audit(request, dnc=contact.phone_e164)
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

    return router


__all__ = ["queue_router"]
