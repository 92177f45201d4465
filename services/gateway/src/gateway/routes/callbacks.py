"""Callbacks: ``GET /callbacks`` (who sees which: ``contacts.agenda``), ``PATCH /callbacks/{id}``
(reschedule, change scope, reassign) and ``DELETE /callbacks/{id}`` (cancel).

A callback's id is ``<contact id>.<stream version of the wrap-up that set it>``: stable through its
reschedules, and naming the contact stream its events go to. Rescheduling and cancelling are contact
commands (``RescheduleCallback``, ``CancelCallback``) through the contacts client's one door; the domain
decides who may (an Agent their own, a TeamLead also their team's and reassigns within it, ProjectManager
and TI any), and every refusal is audited by the audit middleware like any other denied write.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contacts.asks import ListCallbacks
from contacts.client import ContactsClient
from contacts.commands import CallbackScope, CancelCallback, RescheduleCallback
from contacts.errors import CallbackNotFound, InvalidInput
from gateway.auth import CanRecordDisposition, CanTakeNext, note_audit
from gateway.callers import caller_of, run_command
from gateway.instant import IsoInstant
from gateway.querystring import QueryBool
from gateway.users import UserDirectory, UserNotFound

CallbackId = Annotated[
    str,
    Field(
        min_length=34,
        max_length=48,
        pattern=r"^[0-9a-fA-F-]{32,36}\.[1-9][0-9]{0,9}$",
        description="`<id del contacto>.<versión del cierre que la programó>`.",
    ),
]


class CallbackOut(BaseModel):
    """A pending callback."""

    callback_id: str = Field(description="Estable: `<id del contacto>.<versión del cierre que la programó>`.")
    contact_id: str
    phone_e164: str
    name: str
    user_id: str
    username: str
    team: str
    scope: str = Field(description="`personal` (solo su agente) o `shared` (cualquiera de la campaña).")
    due_at: str
    set_at: str
    reminded_at: str | None = Field(description="Cuándo salió su recordatorio (null: aún no).")


class CallbackChanges(BaseModel):
    """Body of ``PATCH /callbacks/{id}``: what changes (at least one field)."""

    model_config = ConfigDict(extra="forbid")

    due_at: IsoInstant | None = Field(
        None, description="Nueva hora (ISO 8601 con zona horaria, en el futuro)."
    )
    scope: CallbackScope | None = Field(None, description="`personal` o `shared`.")
    assignee: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Usuario al que se reasigna (TeamLead: de su equipo; ProjectManager y TI: cualquiera).",
    )
    reason: str = Field("", max_length=500, description="Motivo (queda en la auditoría).")

    @model_validator(mode="after")
    def _something_changes(self) -> CallbackChanges:
        if self.due_at is None and self.scope is None and self.assignee is None:
            raise ValueError("indique due_at, scope o assignee")
        return self


def callbacks_router(contacts: ContactsClient, directory: UserDirectory) -> APIRouter:
    """The callback routes over the contacts client (listing and commands) and the user directory (a
    reassignment's user)."""
    router = APIRouter(tags=["callbacks"])

    @router.get(
        "/callbacks",
        response_model=list[CallbackOut],
        summary="Rellamadas pendientes, la más próxima primero",
        description=(
            "Con `mine=true` (por defecto) las personales de quien pregunta y las compartidas; con `team` "
            "las de ese equipo (TeamLead: solo el suyo; ProjectManager y TI: cualquiera). Con `mine=false` "
            "y sin `team`: un Agent sigue viendo las suyas y las compartidas, un TeamLead las de su equipo, "
            "ProjectManager y TI todas. `due_before` filtra por hora, `contact_id` por contacto."
        ),
        responses={403: {"description": "`forbidden`: ese equipo no le corresponde."}},
    )
    def list_callbacks(
        principal: CanTakeNext,
        mine: Annotated[QueryBool, Query(description="`true` o `false`.")] = True,
        team: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
        due_before: Annotated[IsoInstant | None, Query(description="Hasta (excluido), ISO 8601.")] = None,
        contact_id: Annotated[
            str | None, Query(pattern=r"^[0-9a-fA-F-]{32,36}$", description="Solo las de este contacto.")
        ] = None,
    ) -> list[dict[str, Any]]:
        if due_before is not None and due_before.tzinfo is None:
            due_before = due_before.replace(tzinfo=UTC)
        query = ListCallbacks(mine=mine, team=team, due_before=due_before, contact_id=contact_id)
        found = contacts.ask(query, caller_of(principal))
        return [callback.to_data() for callback in found]

    @router.patch(
        "/callbacks/{callback_id}",
        response_model=CallbackOut,
        summary="Reprogramar una rellamada: nueva hora, alcance o agente",
        responses={
            403: {"description": "`forbidden`: no es suya (ni de su equipo), o reasignar no le corresponde."},
            404: {"description": "`callback_not_found`: ya no está pendiente."},
        },
    )
    def reschedule(
        request: Request, principal: CanRecordDisposition, callback_id: CallbackId, body: CallbackChanges
    ) -> dict[str, Any]:
        caller = caller_of(principal)
        callback_id = callback_id.lower()
        note_audit(request, callback_id=callback_id, reason=body.reason)
        assignee_id: str | None = None
        assignee_name = assignee_team = ""
        if body.assignee is not None:
            try:
                user = directory.get_user(body.assignee)
            except UserNotFound:
                raise InvalidInput("assignee", f"No existe el usuario «{body.assignee}»") from None
            if not user.active:
                raise InvalidInput("assignee", f"El usuario «{body.assignee}» está desactivado")
            assignee_id, assignee_name, assignee_team = str(user.id), user.username, user.team or ""
            note_audit(request, assignee=user.username)
        command = RescheduleCallback(
            caller=caller,
            now=datetime.now(UTC),
            contact_id=_contact_of(callback_id),
            callback_id=callback_id,
            due_at=body.due_at,
            scope=body.scope,
            assignee_id=assignee_id,
            assignee_name=assignee_name,
            assignee_team=assignee_team,
        )
        run_command(contacts, command)
        for callback in contacts.ask(ListCallbacks(mine=False, contact_id=command.contact_id), caller):
            if callback.callback_id == callback_id:
                return callback.to_data()
        raise CallbackNotFound(callback_id)

    @router.delete(
        "/callbacks/{callback_id}",
        status_code=204,
        summary="Cancelar una rellamada",
        responses={
            403: {"description": "`forbidden`: no es suya ni de su equipo."},
            404: {"description": "`callback_not_found`: ya no está pendiente."},
        },
    )
    def cancel(
        request: Request,
        principal: CanRecordDisposition,
        callback_id: CallbackId,
        reason: Annotated[str, Query(max_length=500)] = "",
    ) -> Response:
        callback_id = callback_id.lower()
        note_audit(request, callback_id=callback_id, reason=reason)
        command = CancelCallback(
            caller=caller_of(principal),
            now=datetime.now(UTC),
            contact_id=_contact_of(callback_id),
            callback_id=callback_id,
            reason=reason,
        )
        run_command(contacts, command)
        return Response(status_code=204)

    return router


def _contact_of(callback_id: str) -> str:
    """The contact stream a callback id names."""
    return callback_id.rpartition(".")[0]


__all__ = ["callbacks_router"]
