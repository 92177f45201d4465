"""The agent's work queue: ``POST /queue/next``, ``POST /contacts/{id}/disposition``,
``GET /contacts/{id}/eligibility`` and the campaigns (``/campaigns``, their progress); the callbacks are
``gateway.routes.callbacks``', the do-not-call list ``gateway.routes.dnc``'.

Next contact (a ``ClaimNextContact`` command), eligibility and campaigns are the work queue's
(``contacts.queue``); like the disposition they go through the contacts client's two doors,
``execute`` for commands and ``ask`` for queries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from contacts.asks import GetEligibility, GetProgress, ListCampaigns
from contacts.client import ContactsClient
from contacts.commands import AddDnc, CallbackScope, ClaimNextContact, RecordDisposition, SaveCampaign
from contacts.errors import CampaignNotWorked
from contacts.statuses import DEFAULT_CATALOGUE, Catalogue
from gateway.auth import (
    CanManageCampaigns,
    CanReadContacts,
    CanRecordDisposition,
    CanSeeTeamMetrics,
    CanTakeNext,
    note_audit,
)
from gateway.callers import caller_of, run_command
from gateway.instant import IsoInstant
from gateway.querystring import QueryBool
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
    reason: str = Field(
        description="`callback_due` (rellamada vencida), `never_tried` (nunca llamado) o `retry_due` "
        "(terminó su espera)."
    )
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
    callback_at: IsoInstant | None = Field(
        None, description="Rellamada (ISO 8601 con zona horaria, en el futuro)."
    )
    callback_scope: CallbackScope = Field(
        CallbackScope.PERSONAL, description="`personal` (solo este agente) o `shared` (cualquiera)."
    )
    keep_lock: bool = Field(False, strict=True, description="Conservar el bloqueo (por defecto se libera).")


Hours = dict[
    Annotated[str, Field(pattern=r"^(mon|tue|wed|thu|fri|sat|sun)$")],
    list[Annotated[list[Annotated[str, Field(pattern=r"^\d{2}:\d{2}$")]], Field(min_length=2, max_length=2)]],
]
Names = list[Annotated[str, Field(min_length=1, max_length=100)]]
Zone = Annotated[str, Field(min_length=1, max_length=64, examples=["America/Costa_Rica"])]
_HOURS_HELP = (
    'Horario de llamadas por día, hora local: `{"mon": [["08:00", "12:00"], ["13:00", "17:00"]]}`; '
    "un día que no aparece no se llama; `null`: sin límite."
)


class CampaignOut(BaseModel):
    """A campaign and its rules."""

    id: str
    name: str
    active: bool
    archived: bool
    priority: int
    max_attempts: int
    max_per_day: int | None
    retry_minutes: dict[str, int]
    closed_statuses: list[str]
    teams: list[str]
    lists: list[str]
    timezone: str
    calling_hours: dict[str, list[list[str]]] | None


class ProgressOut(BaseModel):
    """How far a campaign's contacts are worked (a contact may count under several headings)."""

    campaign: str
    total: int
    never_tried: int
    in_retry: int
    reached: int = Field(description="Con una llamada contestada.")
    closed: int = Field(description="En un estado cerrado de la campaña.")
    dnc: int
    capped: int = Field(description="Con el máximo de intentos (en total o de hoy).")
    locked: int


class NewCampaign(BaseModel):
    """Body of ``POST /campaigns``: rules not given are General's defaults."""

    # strict: `true` and 5 only; 1, "true", 5.0 or "5" are refused, not guessed.
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=100, examples=["Renovaciones"])
    active: bool = True
    max_attempts: int | None = Field(None, ge=1, le=100)
    max_per_day: int | None = Field(
        None, ge=1, le=100, description="Intentos por día (hora local); `null` quita el límite."
    )
    retry_minutes: dict[str, Annotated[int, Field(ge=0, le=10080)]] | None = Field(
        None, max_length=20, examples=[{"busy": 30, "no_answer": 120}], description="Espera por resultado."
    )
    closed_statuses: list[Annotated[str, Field(max_length=40)]] | None = Field(None, max_length=50)
    lists: Names | None = Field(None, max_length=50, description="Listas de contactos de la campaña.")
    teams: Names | None = Field(None, max_length=50, description="Equipos que la trabajan (vacío: todos).")
    priority: int | None = Field(None, ge=0, le=1000, description="Orden entre campañas (menor primero).")
    timezone: Zone | None = None
    calling_hours: Hours | None = Field(None, description=_HOURS_HELP)


class CampaignChanges(BaseModel):
    """Body of ``PATCH /campaigns/{id}``: only the rules given change."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(None, min_length=1, max_length=100)
    active: bool | None = None
    archived: bool | None = Field(None, description="Archivar (la desactiva y la oculta) o desarchivar.")
    max_attempts: int | None = Field(None, ge=1, le=100)
    max_per_day: int | None = Field(
        None, ge=1, le=100, description="Intentos por día (hora local); `null` quita el límite."
    )
    retry_minutes: dict[str, Annotated[int, Field(ge=0, le=10080)]] | None = Field(
        None, max_length=20, examples=[{"busy": 30, "no_answer": 120}], description="Espera por resultado."
    )
    closed_statuses: list[Annotated[str, Field(max_length=40)]] | None = Field(None, max_length=50)
    lists: Names | None = Field(None, max_length=50, description="Listas de contactos de la campaña.")
    teams: Names | None = Field(None, max_length=50, description="Equipos que la trabajan (vacío: todos).")
    priority: int | None = Field(None, ge=0, le=1000, description="Orden entre campañas (menor primero).")
    timezone: Zone | None = None
    calling_hours: Hours | None = Field(None, description=_HOURS_HELP)


def queue_router(contacts: ContactsClient, catalogue: Catalogue = DEFAULT_CATALOGUE) -> APIRouter:
    """The work-queue routes over the contacts client; ``catalogue`` says which statuses put a number on
    the do-not-call list."""
    router = APIRouter(tags=["queue"])

    @router.post(
        "/queue/next",
        response_model=ClaimOut,
        summary="Siguiente contacto: el próximo elegible, ya bloqueado para quien lo pide",
        description=(
            "Sin `campaign`, entre las campañas activas del equipo de quien pide, por `priority` (menor "
            "primero) y luego por nombre; con `campaign`, solo esa. Primero sus rellamadas vencidas, luego "
            "las compartidas, luego los contactos nunca llamados, luego aquellos cuya espera de reintento "
            "terminó; cada grupo por prioridad de estado y antigüedad. Nunca ofrece un contacto bloqueado "
            "por otro, en la lista de no llamar, en un estado cerrado, con el máximo de intentos (en total "
            "o de hoy), dentro de su espera, ni fuera del horario de llamadas. Dos agentes nunca reciben el "
            "mismo contacto."
        ),
        responses={
            403: {"description": "`campaign_not_worked`: su equipo no trabaja esa campaña."},
            404: {
                "description": "`queue_empty`: no hay contacto disponible; `message` dice por qué "
                "(sin campaña activa, fuera de horario hasta HH:MM, todos en espera hasta HH:MM) y `until` "
                "cuándo vuelve el primero en espera."
            },
        },
    )
    def next_contact(
        request: Request, principal: CanTakeNext, campaign: CampaignQuery = None
    ) -> dict[str, Any]:
        try:
            claim = contacts.execute(
                ClaimNextContact(caller=caller_of(principal), now=datetime.now(UTC), campaign=campaign)
            )
        except CampaignNotWorked as refused:
            note_audit(request, campaign_id=refused.campaign_id, team=refused.team, denied=refused.code)
            raise
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
            contacts.execute(
                AddDnc(caller=command.caller, now=command.now, phone=contact.phone_e164, reason=reason)
            )
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
        query = GetEligibility(contact_id=contact_id, campaign=campaign)
        return contacts.ask(query, caller_of(principal)).to_data()

    @router.get(
        "/campaigns",
        response_model=list[CampaignOut],
        summary="Campañas y sus reglas (las archivadas solo con `archived=true`)",
    )
    def campaigns(
        principal: CanReadContacts,
        archived: Annotated[QueryBool, Query(description="`true` o `false`.")] = False,
    ) -> list[dict[str, Any]]:
        found = contacts.ask(ListCampaigns(archived=archived), caller_of(principal))
        return [campaign.to_data() for campaign in found]

    @router.get(
        "/campaigns/{campaign_id}/progress",
        response_model=ProgressOut,
        summary="Avance de una campaña: total, nunca llamados, en espera, contactados, cerrados, no llamar",
        responses={404: {"description": "`campaign_not_found`."}},
    )
    def progress(principal: CanSeeTeamMetrics, campaign_id: CampaignId) -> dict[str, Any]:
        return contacts.ask(GetProgress(campaign_id=campaign_id), caller_of(principal)).to_data()

    @router.post(
        "/campaigns",
        status_code=201,
        response_model=CampaignOut,
        summary="Crear una campaña (listas, equipos, horario, intentos, esperas y estados cerrados)",
        responses={409: {"description": "`campaign_exists`: ya hay una campaña con ese nombre."}},
    )
    def create_campaign(request: Request, principal: CanManageCampaigns, body: NewCampaign) -> dict[str, Any]:
        fields = body.model_dump(exclude_none=True)
        made = contacts.execute(
            SaveCampaign(caller=caller_of(principal), now=datetime.now(UTC), fields=fields)
        )
        note_audit(request, campaign_id=made.id)
        return made.to_data()

    @router.patch(
        "/campaigns/{campaign_id}",
        response_model=CampaignOut,
        summary="Cambiar las reglas de una campaña, activarla, desactivarla o archivarla",
        responses={404: {"description": "`campaign_not_found`."}},
    )
    def update_campaign(
        request: Request, principal: CanManageCampaigns, campaign_id: CampaignId, body: CampaignChanges
    ) -> dict[str, Any]:
        # Only the rules sent change; an explicit null lifts a limit (calling hours, daily cap).
        fields = body.model_dump(exclude_unset=True)
        saved = contacts.execute(
            SaveCampaign(
                caller=caller_of(principal), now=datetime.now(UTC), campaign_id=campaign_id, fields=fields
            )
        )
        note_audit(request, campaign_id=campaign_id)
        return saved.to_data()

    return router


__all__ = ["queue_router"]
