"""Calls from the agent's side and the desks that place them: ``POST /contacts/{id}/call``,
``POST /calls/{call_id}/hangup`` and ``GET /desks`` (``docs/CALLS.md``).

A number on the do-not-call list is refused first (409 ``dnc``, nothing locked or dialled). Calling
then locks the contact to the caller (423 when someone else holds it), then needs one of her desks
connected to some gateway process (409 ``no_desk``); the dial request names that desk and travels to it
over Socket.IO (across gateway replicas through Redis).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from contacts.asks import CheckDnc, GetContact
from contacts.client import ContactsClient
from contacts.commands import CallOutcome, LockContact, RecordCallRequested
from gateway.auth import ApiError, CanLockOwn, CanReadContacts, note_audit
from gateway.callers import caller_of
from gateway.desks import Desk
from gateway.live import LiveHub
from gateway.roles import Capability, Principal
from gateway.routes.contacts import ContactId
from kernel.phone import parse_phone

CallId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9a-zA-Z_-]+$")]


class CallOut(BaseModel):
    """A dial request sent to one of the caller's desks."""

    call_id: str
    contact_id: str
    dial: str
    desk: str
    desk_connected: bool


class HangupIn(BaseModel):
    """What the agent says of the call she ends (drivers that cannot see the call report this outcome)."""

    outcome: CallOutcome | None = None


class HangupOut(BaseModel):
    """The hang-up request was sent to the caller's desks."""

    call_id: str
    sent: bool


class DeskOut(BaseModel):
    """One connected desk."""

    user_id: str
    username: str
    team: str | None
    desk: str
    state: str
    call_id: str | None
    contact_id: str | None
    since: datetime
    connected_at: datetime


def desks_router(contacts: ContactsClient, hub: LiveHub) -> APIRouter:
    """The call routes over the contacts client (which holds the do-not-call list calls are checked
    against) and the live hub's desk registry."""
    router = APIRouter(tags=["calls"])

    @router.post(
        "/contacts/{contact_id}/call",
        status_code=202,
        response_model=CallOut,
        summary="Llamar: bloquea el contacto y envía el número al marcador del puesto del agente",
        responses={
            409: {
                "description": "`dnc`: el número está en la lista de no llamar; `no_desk`: no hay un "
                "marcador conectado en el puesto del agente."
            },
            423: {"description": "Otro usuario tiene el contacto bloqueado."},
        },
    )
    async def call(request: Request, principal: CanLockOwn, contact_id: ContactId) -> dict[str, Any]:
        caller = caller_of(principal)
        user_id = str(principal.user_id)
        target = await run_in_threadpool(contacts.ask, GetContact(contact_id=contact_id), caller)
        await run_in_threadpool(contacts.ask, CheckDnc(phone_e164=target.phone_e164), caller)
        locked = LockContact(caller=caller, now=datetime.now(UTC), contact_id=contact_id)
        await run_in_threadpool(contacts.execute, locked)
        desks = await hub.desks_of(user_id)
        if not desks:
            raise ApiError(
                409,
                "no_desk",
                "Su puesto no tiene el marcador conectado: inicie callmanager-dialer en su equipo "
                "(callmanager-dialer --check dice qué falta).",
            )
        desk = desks[0]
        call_id = uuid.uuid4().hex
        requested = RecordCallRequested(
            caller=caller, now=datetime.now(UTC), contact_id=contact_id, call_id=call_id, desk=desk.desk
        )
        contact = await run_in_threadpool(contacts.execute, requested)
        assert contact is not None  # a contact that was just locked and called exists
        dial = parse_phone(contact.phone_e164).dial_string
        note_audit(request, contact_id=contact_id, call_id=call_id, desk=desk.desk)
        await hub.dial(
            user_id,
            {
                "call_id": call_id,
                "contact_id": contact_id,
                "phone_e164": contact.phone_e164,
                "dial": dial,
                "desk": desk.desk,
                "requested_at": datetime.now(UTC).isoformat(),
            },
        )
        return {
            "call_id": call_id,
            "contact_id": contact_id,
            "dial": dial,
            "desk": desk.desk,
            "desk_connected": True,
        }

    @router.post(
        "/calls/{call_id}/hangup",
        status_code=202,
        response_model=HangupOut,
        summary="Colgar: pide al marcador del puesto que termine la llamada",
    )
    async def hangup(
        request: Request,
        principal: CanLockOwn,
        call_id: CallId,
        body: Annotated[HangupIn | None, Body()] = None,
    ) -> dict[str, Any]:
        user_id = str(principal.user_id)
        desks = await hub.desks_of(user_id)
        outcome = body.outcome.value if body is not None and body.outcome is not None else None
        note_audit(request, call_id=call_id)
        if desks:
            await hub.hangup(user_id, {"call_id": call_id, "outcome": outcome})
        return {"call_id": call_id, "sent": bool(desks)}

    @router.get(
        "/desks",
        response_model=list[DeskOut],
        summary="Puestos conectados y su estado",
        description=(
            "Un agente ve sus propios puestos, un líder de equipo los de su equipo y ProjectManager o TI "
            "todos: estado (listo, marcando, sonando, en llamada, sin softphone), llamada en curso y desde "
            "cuándo."
        ),
    )
    async def desks(principal: CanReadContacts) -> list[dict[str, Any]]:
        every = await run_in_threadpool(hub.desks.every)
        return [desk.to_data() for desk in every if _sees(principal, desk)]

    return router


def _sees(principal: Principal, desk: Desk) -> bool:
    """Whether ``principal`` may see ``desk``: their own, their team's (TeamLead), or any (PM, TI)."""
    if principal.can(Capability.ALL_METRICS) or desk.user_id == str(principal.user_id):
        return True
    return (
        principal.can(Capability.TEAM_METRICS) and principal.team is not None and desk.team == principal.team
    )
