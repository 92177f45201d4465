"""TI administration over HTTP: users and their keys (``/admin/users``), the audit log (``/admin/audit``).

A key appears in a response only when it is created (``POST /admin/users``, ``.../keys``,
``.../rotate-key``), with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.audit import LONGEST_PAGE, AuditFilter, AuditLog, Outcome
from gateway.auth import ApiError, CanManageUsers, CanReadAudit, note_audit
from gateway.instant import IsoInstant
from gateway.users import (
    DirectoryError,
    InvalidUser,
    IssuedKey,
    KeyNotFound,
    User,
    UserDirectory,
    UserExists,
    UserInactive,
    UserNotFound,
)

T = TypeVar("T")

_NO_STORE = {"Cache-Control": "no-store"}


class NewUser(BaseModel):
    """Body of ``POST /admin/users``."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=2, max_length=64, examples=["maria.vargas"])
    role: str = Field(examples=["Agent", "TeamLead", "ProjectManager", "TI"])
    team: str | None = Field(None, max_length=100, examples=["Equipo Norte"])
    display_name: str | None = Field(None, max_length=200, examples=["María Vargas"])


def admin_router(directory: UserDirectory, audit: AuditLog) -> APIRouter:
    """Routes for TI: create, list and deactivate users; issue, rotate and revoke keys; read the audit."""
    router = APIRouter(tags=["admin"])

    @router.post("/admin/users", status_code=201, summary="Crear un usuario (devuelve su clave una sola vez)")
    def create_user(body: NewUser, principal: CanManageUsers, request: Request, response: Response) -> Any:
        note_audit(request, target=body.username, role=body.role)
        user, issued = _directory_call(
            lambda: directory.create_user(
                body.username, body.role, team=body.team, display_name=body.display_name
            )
        )
        response.headers.update(_NO_STORE)
        return _with_key(user, issued)

    @router.get("/admin/users", summary="Listar usuarios")
    def list_users(
        principal: CanManageUsers, include_inactive: Annotated[bool, Query()] = True
    ) -> list[dict[str, Any]]:
        return [user.to_dict() for user in directory.list_users(include_inactive=include_inactive)]

    @router.get("/admin/users/{username}", summary="Un usuario y sus claves (sin el secreto)")
    def get_user(username: str, principal: CanManageUsers) -> dict[str, Any]:
        user = _directory_call(lambda: directory.get_user(username))
        keys = _directory_call(lambda: directory.list_keys(username))
        return {**user.to_dict(), "keys": [key.to_dict() for key in keys]}

    @router.post("/admin/users/{username}/deactivate", summary="Desactivar un usuario y revocar sus claves")
    def deactivate(username: str, principal: CanManageUsers, request: Request) -> dict[str, Any]:
        note_audit(request, target=username)
        if username.strip().lower() == principal.username:
            raise ApiError(409, "conflict", "No puede desactivar su propio usuario.")
        return _directory_call(lambda: directory.deactivate(username)).to_dict()

    @router.post("/admin/users/{username}/keys", status_code=201, summary="Emitir una clave adicional")
    def issue_key(username: str, principal: CanManageUsers, request: Request, response: Response) -> Any:
        note_audit(request, target=username)
        user = _directory_call(lambda: directory.get_user(username))
        issued = _directory_call(lambda: directory.issue_key(username))
        note_audit(request, key_id=issued.key_id)
        response.headers.update(_NO_STORE)
        return _with_key(user, issued)

    @router.post(
        "/admin/users/{username}/rotate-key",
        status_code=201,
        summary="Revocar todas las claves del usuario y emitir una nueva",
    )
    def rotate_key(username: str, principal: CanManageUsers, request: Request, response: Response) -> Any:
        note_audit(request, target=username)
        user = _directory_call(lambda: directory.get_user(username))
        issued = _directory_call(lambda: directory.rotate_key(username))
        note_audit(request, key_id=issued.key_id)
        response.headers.update(_NO_STORE)
        return _with_key(user, issued)

    @router.delete("/admin/keys/{key_id}", summary="Revocar una clave por su identificador público")
    def revoke_key(key_id: str, principal: CanManageUsers, request: Request) -> dict[str, Any]:
        note_audit(request, target_key_id=key_id)
        return _directory_call(lambda: directory.revoke_key(key_id)).to_dict()

    @router.get("/admin/audit", summary="Registro de auditoría, del más reciente al más antiguo")
    def read_audit(
        principal: CanReadAudit,
        request: Request,
        response: Response,
        username: str | None = None,
        key_id: str | None = None,
        outcome: Outcome | None = None,
        action: str | None = None,
        since: IsoInstant | None = None,
        until: IsoInstant | None = None,
        before: Annotated[int | None, Query(ge=1, lt=2**63)] = None,
        limit: Annotated[int, Query(ge=1, le=LONGEST_PAGE)] = 100,
    ) -> list[dict[str, Any]]:
        filters = AuditFilter(
            username=username,
            key_id=key_id,
            outcome=outcome,
            action=action,
            since=since,
            until=until,
            before_id=before,
        )
        records = audit.list(filters, limit)
        if len(records) == limit:
            following = request.url.include_query_params(before=records[-1].id)
            response.headers["Link"] = f'<{following}>; rel="next"'
        return [record.to_dict() for record in records]

    return router


def _with_key(user: User, issued: IssuedKey) -> dict[str, Any]:
    return {**user.to_dict(), "key_id": issued.key_id, "api_key": issued.plaintext}


def _directory_call(call: Callable[[], T]) -> T:
    """Run a directory operation, turning its refusals into API errors."""
    try:
        return call()
    except InvalidUser as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    except (UserNotFound, KeyNotFound) as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except (UserExists, UserInactive) as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    except DirectoryError as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
