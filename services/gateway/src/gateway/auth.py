"""Who is calling and what they may do: FastAPI dependencies for every gateway route.

Wiring (composition root, once per app)::

    gate = Gate(
        directory=UserDirectory(engine),
        audit=AuditLog(engine),
        limiter=RateLimiter(storage, rate=settings.rate_limit, heavy_rate=settings.rate_limit_heavy),
        enable_auth=settings.enable_auth,
        loopback=settings.is_loopback,
    )
    install_security(app, gate)      # app.state.gate, the ApiError handler, the audit middleware
    app.include_router(admin_router(directory, audit_log))

Using it in a route: annotate one parameter with the alias of the capability the route needs; the
parameter receives the caller's :class:`~gateway.roles.Principal`::

    @router.post("/import")
    def import_rows(principal: CanImport, rows: list[Row]) -> ...:
        actor = principal.actor()        # kernel Actor for the command's envelope
        ...

    @router.get("/contacts")
    def list_contacts(principal: CanReadContacts) -> ...: ...

    @router.get("/me")
    def me(principal: Authenticated) -> ...: ...   # any valid key, no capability needed

What every such dependency does, in order:

1. Reads the key from ``X-API-Key`` or ``Authorization: Bearer <key>``. Missing, malformed, unknown,
   wrong, revoked, or of a deactivated user → **401** ``{"error": {"code": "unauthorized", ...}}`` with
   ``WWW-Authenticate``. Identity comes from the key only, never from the payload.
2. Counts the request against the key's general rate limit → **429** ``{"error": {"code":
   "rate_limited", ...}}`` with ``Retry-After`` (seconds) past it.
3. Checks the role holds the capability (:data:`gateway.roles.MATRIX`) → **403** ``{"error": {"code":
   "forbidden", ...}}``.
4. For :data:`HEAVY` capabilities (import, generate) also counts against the stricter heavy limit → 429.

Every denial is written to the audit log at once (user, role, key id when the key was recognisable —
never the key —, method, path, capability, status, source address, reason). The audit middleware
installed by :func:`install_security` records every mutating request (POST, PUT, PATCH, DELETE) after it
is answered, with the caller, the capability and the status code; a route may add details with
:func:`note_audit`. A route that refuses something on its own raises :class:`ApiError`, which renders as
``{"error": {"code", "message"}}``.

With ``enable_auth=False`` (allowed only on a loopback bind: :class:`Gate` refuses otherwise, and
requests from a non-loopback address are still refused) every request acts as
:data:`~gateway.roles.LOCAL_PRINCIPAL`, a TI user named ``local``.

Socket.IO and other non-route callers use :meth:`Gate.identify`, :meth:`Gate.admit` and
:meth:`Gate.authorize` directly, with ``method="SOCKET"`` and the event name as ``path``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Protocol, TypeVar

import orjson
import sqlalchemy as sa
import structlog
from fastapi import Depends, FastAPI, Request, Response, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.audit import AuditEntry, AuditSink, Outcome
from gateway.ratelimit import RateLimiter
from gateway.roles import LOCAL_PRINCIPAL, Capability, Principal
from gateway.users import DenialReason, Verdict

__all__ = [
    "HEAVY",
    "ApiError",
    "Authenticated",
    "CanBackup",
    "CanChangeConfig",
    "CanCreateContact",
    "CanDeleteContact",
    "CanExport",
    "CanForceRelease",
    "CanGenerate",
    "CanImport",
    "CanLockOwn",
    "CanManageCampaigns",
    "CanManageDnc",
    "CanManageUsers",
    "CanReadAudit",
    "CanReadConfig",
    "CanReadContacts",
    "CanRecordDisposition",
    "CanSeeAllMetrics",
    "CanSeeTeamMetrics",
    "CanTakeNext",
    "CanUpdateContact",
    "Gate",
    "Principal",
    "authorize",
    "current_principal",
    "install_security",
    "note_audit",
    "presented_key",
    "require",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")

HEAVY: frozenset[Capability] = frozenset({Capability.IMPORT, Capability.GENERATE})
"""Capabilities whose requests also pay the stricter ``rate_limit_heavy``."""

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DENIED_STATUSES = frozenset({401, 403, 429})
_UNAUTHORIZED_MESSAGE = "Falta la clave API o no es válida (cabecera X-API-Key o Authorization: Bearer)."


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status_code`` and ``headers``."""

    def __init__(
        self, status_code: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """The JSON response for this error."""
        body = orjson.dumps({"error": {"code": self.code, "message": self.message}})
        return Response(body, self.status_code, headers=self.headers, media_type="application/json")


class KeyVerifier(Protocol):
    """Checks a presented API key (:class:`gateway.users.UserDirectory`)."""

    def verify(self, presented: str | None) -> Verdict: ...

    def verify_quietly(self, presented: str | None) -> Principal | None:
        """The principal of a good key when checking it writes nothing (None: call :meth:`verify`)."""
        ...

    def verify_kept(self, presented: str | None) -> Principal | None:
        """:meth:`verify_quietly` answered without I/O from a key row kept and current, else None."""
        ...


@dataclass(frozen=True, slots=True)
class Call:
    """Where a request came from and what it asked for (for the audit log)."""

    method: str
    path: str
    source: str | None

    @classmethod
    def of(cls, request: Request) -> Call:
        """The call a FastAPI request makes."""
        client = request.scope.get("client")
        # The scope's path, as the audit middleware records it (building request.url costs ~3 µs).
        return cls(request.scope["method"], request.scope["path"], client[0] if client else None)


class Gate:
    """The security policy of one gateway process: authentication, roles, rate limits, auditing."""

    def __init__(
        self,
        *,
        directory: KeyVerifier,
        audit: AuditSink,
        limiter: RateLimiter,
        enable_auth: bool = True,
        loopback: bool = False,
        heavy: frozenset[Capability] = HEAVY,
        inline: bool = False,
    ) -> None:
        # inline: the directory and the limiter answer in microseconds without waiting on I/O (SQLite and
        # in-memory counters, embedded mode), so requests that pass are admitted on the event loop.
        if not enable_auth and not loopback:
            raise ValueError("ENABLE_AUTH=false sólo se permite escuchando en loopback (127.0.0.1)")
        self.directory = directory
        self.audit = audit
        self.limiter = limiter
        self.enable_auth = enable_auth
        self.heavy = heavy
        self.inline = inline

    def admit_quickly(self, presented: str | None, capability: Capability | None) -> Principal | None:
        """The caller when every check passes with nothing to write; else None (use the full checks)."""
        # None sends the request through identify/admit/authorize, which audit a denial and record the
        # key's use. Nothing is counted twice: a hit counted here admits the request, a refused hit
        # adds no count, and heavy capabilities (a second limit) always take the full path.
        if not self.enable_auth or (capability is not None and capability in self.heavy):
            return None
        principal = self.directory.verify_quietly(presented)
        if principal is None or (capability is not None and not principal.can(capability)):
            return None
        if not self.limiter.hit(principal.key_id or principal.username).allowed:
            return None
        return principal

    async def admit_kept(self, presented: str | None, capability: Capability | None) -> Principal | None:
        """:meth:`admit_quickly` for a gateway whose checks wait on I/O (PostgreSQL, Redis), on the loop.

        The key is checked only against a row the directory keeps current (no query), and the request
        counted with the limiter's asyncio storage; anything else (a key not kept, a refusal, a use to
        record, a heavy capability) returns None, for the full checks on a worker thread.
        """
        if not self.enable_auth or not self.limiter.counts_async:
            return None
        if capability is not None and capability in self.heavy:
            return None
        principal = self.directory.verify_kept(presented)
        if principal is None or (capability is not None and not principal.can(capability)):
            return None
        if not await self.limiter.passes(principal.key_id or principal.username):
            return None
        return principal

    def identify(self, presented: str | None, call: Call) -> Principal:
        """The principal behind ``presented``, or a 401 :class:`ApiError` (audited)."""
        if not self.enable_auth:
            if _is_loopback(call.source):
                return LOCAL_PRINCIPAL
            self._deny(None, call, 401, None, {"reason": "auth_disabled_remote"})
            raise _unauthorized()
        try:
            verdict = self.directory.verify(presented)
        except sa.exc.SQLAlchemyError as exc:
            log.error("auth.directory_unavailable", error=type(exc).__name__, path=call.path)
            raise ApiError(503, "unavailable", "Servicio no disponible; intente de nuevo.") from exc
        if verdict.principal is not None:
            return verdict.principal
        reason = verdict.reason or DenialReason.MALFORMED
        self._refuse_unidentified(call, reason.value, verdict.key_id)
        raise _unauthorized()

    def _refuse_unidentified(self, call: Call, reason: str, key_id: str | None) -> None:
        """Count a request without a valid key per source address (shared by every replica through the
        rate store): past the unidentified limit it is a 429; a few denials a window get an audit row
        each, with how many that source made so far; the rest only a log line."""
        source = call.source or "unknown"
        decision = self.limiter.hit_unidentified(source)
        status = 401 if decision.allowed else 429
        detail: dict[str, Any] = {"reason": reason if decision.allowed else "unidentified_rate_limit"}
        detail["failures_in_window"] = decision.count
        if self.limiter.may_audit(source):
            self._deny(None, call, status, None, detail, key_id=key_id)
        else:
            log.warning("auth.denied_aggregated", status=status, source=source, **detail)
        if not decision.allowed:
            raise ApiError(
                429,
                "rate_limited",
                f"Demasiados intentos sin una clave válida: intente de nuevo en {decision.retry_after} s.",
                {"Retry-After": str(decision.retry_after)},
            )

    def admit(self, principal: Principal, call: Call, *, heavy: bool = False) -> None:
        """Count one request of ``principal``; past its limit, a 429 :class:`ApiError` (audited)."""
        decision = self.limiter.hit(principal.key_id or principal.username, heavy=heavy)
        if decision.allowed:
            return
        detail = {"reason": "heavy_rate_limit" if heavy else "rate_limit", "limit": decision.limit}
        self._deny(principal, call, 429, None, detail)
        raise ApiError(
            429,
            "rate_limited",
            f"Demasiadas peticiones: intente de nuevo en {decision.retry_after} s.",
            {"Retry-After": str(decision.retry_after)},
        )

    def authorize(self, principal: Principal, capability: Capability, call: Call) -> None:
        """Refuse with a 403 :class:`ApiError` (audited) unless the role holds ``capability``."""
        if not principal.can(capability):
            self._deny(principal, call, 403, capability, {"reason": "missing_capability"})
            raise ApiError(
                403,
                "forbidden",
                f"El rol {principal.role.value} no permite esta acción ({capability.value}).",
            )
        if capability in self.heavy:
            self.admit(principal, call, heavy=True)

    def refuse(self, principal: Principal, call: Call, status: int, detail: dict[str, Any]) -> None:
        """Audit a refusal that a rule outside the roles made (a desk reporting a call not its own)."""
        self._deny(principal, call, status, None, detail)

    def _deny(
        self,
        principal: Principal | None,
        call: Call,
        status: int,
        capability: Capability | None,
        detail: dict[str, Any],
        *,
        key_id: str | None = None,
    ) -> None:
        log.warning(
            "auth.denied",
            status=status,
            method=call.method,
            path=call.path,
            source=call.source,
            username=principal.username if principal else None,
            key_id=principal.key_id if principal else key_id,
            **detail,
        )
        fields: dict[str, Any] = {
            "method": call.method,
            "path": call.path,
            "outcome": Outcome.DENIED,
            "status_code": status,
            "action": capability.value if capability else None,
            "source": call.source,
            "detail": detail,
        }
        if principal is None:
            fields["key_id"] = key_id
        self.audit.record(AuditEntry.by(principal, **fields))


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key in ``x-api-key``, else ``authorization: Bearer`` (``request.headers``, or lower-case names)."""
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def gate_of(request: Request) -> Gate:
    """The gate :func:`install_security` put on the app."""
    gate = getattr(request.app.state, "gate", None)
    if not isinstance(gate, Gate):
        raise RuntimeError("install_security(app, gate) was not called for this app")
    return gate


# Declared as security schemes so /docs shows how to authenticate; they only read the headers.
_API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="Clave API (cm_...).")
_BEARER = HTTPBearer(auto_error=False, description="La misma clave API, como Authorization: Bearer.")


ApiKey = Annotated[str | None, Security(_API_KEY_HEADER)]
BearerKey = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]


async def current_principal(request: Request, api_key: ApiKey, bearer: BearerKey) -> Principal:
    """Dependency: the authenticated, rate-limited caller (401 / 429 otherwise)."""
    return await _checked_caller(request, api_key or (bearer.credentials if bearer else None), None)


Authenticated = Annotated[Principal, Depends(current_principal)]
"""Any caller with a valid key (no capability required)."""


@cache
def require(capability: Capability) -> Callable[[Request, str | None, Any], Awaitable[Principal]]:
    """A dependency returning the caller when its role holds ``capability`` (403 otherwise)."""

    async def dependency(request: Request, api_key: ApiKey, bearer: BearerKey) -> Principal:
        request.state.action = capability.value
        presented = api_key or (bearer.credentials if bearer else None)
        return await _checked_caller(request, presented, capability)

    dependency.__name__ = f"require_{capability.name.lower()}"
    dependency.__doc__ = f"The caller, if its role holds {capability.value}."
    return dependency


async def _checked_caller(
    request: Request, presented: str | None, capability: Capability | None
) -> Principal:
    """Identify, count and (given a capability) authorize the caller, in that order.

    One dependency does all three so a request crosses to a worker thread at most once for them; with an
    ``inline`` gate, or a key row kept and an asyncio rate store, a request that passes does not cross at
    all.
    """
    gate = gate_of(request)
    call = Call.of(request)
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):  # a second guard on one request: identified and counted already
        if capability is None or (known.can(capability) and capability not in gate.heavy):
            return known
    else:
        principal = gate.admit_quickly(presented, capability) if gate.inline else None
        if principal is None:
            principal = await gate.admit_kept(presented, capability)
        if principal is not None:
            request.state.principal = principal
            return principal
    return await run_in_threadpool(_check_caller, request, gate, presented, call, capability)


def _check_caller(
    request: Request, gate: Gate, presented: str | None, call: Call, capability: Capability | None
) -> Principal:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        principal = _mark_denials(request, lambda: gate.identify(presented, call))
        request.state.principal = principal
        _mark_denials(request, lambda: gate.admit(principal, call))
    if capability is not None:
        _mark_denials(request, lambda: gate.authorize(principal, capability, call))
    return principal


CanReadContacts = Annotated[Principal, Depends(require(Capability.READ_CONTACTS))]
CanLockOwn = Annotated[Principal, Depends(require(Capability.LOCK_OWN))]
CanUpdateContact = Annotated[Principal, Depends(require(Capability.UPDATE_CONTACT))]
CanCreateContact = Annotated[Principal, Depends(require(Capability.CREATE_CONTACT))]
CanForceRelease = Annotated[Principal, Depends(require(Capability.FORCE_RELEASE))]
CanSeeTeamMetrics = Annotated[Principal, Depends(require(Capability.TEAM_METRICS))]
CanImport = Annotated[Principal, Depends(require(Capability.IMPORT))]
CanExport = Annotated[Principal, Depends(require(Capability.EXPORT))]
CanGenerate = Annotated[Principal, Depends(require(Capability.GENERATE))]
CanDeleteContact = Annotated[Principal, Depends(require(Capability.DELETE_CONTACT))]
CanSeeAllMetrics = Annotated[Principal, Depends(require(Capability.ALL_METRICS))]
CanReadConfig = Annotated[Principal, Depends(require(Capability.READ_CONFIG))]
CanManageUsers = Annotated[Principal, Depends(require(Capability.MANAGE_USERS))]
CanChangeConfig = Annotated[Principal, Depends(require(Capability.CHANGE_CONFIG))]
CanReadAudit = Annotated[Principal, Depends(require(Capability.READ_AUDIT))]
CanBackup = Annotated[Principal, Depends(require(Capability.BACKUPS))]
CanTakeNext = Annotated[Principal, Depends(require(Capability.TAKE_NEXT))]
CanRecordDisposition = Annotated[Principal, Depends(require(Capability.RECORD_DISPOSITION))]
CanManageDnc = Annotated[Principal, Depends(require(Capability.MANAGE_DNC))]
CanManageCampaigns = Annotated[Principal, Depends(require(Capability.MANAGE_CAMPAIGNS))]


def authorize(request: Request, principal: Principal, capability: Capability) -> None:
    """Refuse with a 403 (audited once) unless ``principal`` holds ``capability``.

    For a check a route makes itself, when a parameter asks for more than the route's own capability
    (``GET /metrics/calls?team=`` for a team not the caller's).
    """
    gate = gate_of(request)
    _mark_denials(request, lambda: gate.authorize(principal, capability, Call.of(request)))


def audit_read(request: Request, **detail: Any) -> None:
    """Audit this read too (reads are not audited by default): a bulk read, with what and how much."""
    request.state.audit_read = True
    note_audit(request, **detail)


def note_audit(request: Request, **detail: Any) -> None:
    """Add JSON-ready ``detail`` (e.g. the target of the action) to this request's audit entry."""
    current: dict[str, Any] = getattr(request.state, "audit_detail", {})
    request.state.audit_detail = {**current, **detail}


def install_security(app: FastAPI, gate: Gate) -> None:
    """Give ``app`` its gate, the :class:`ApiError` handler and the audit middleware."""
    app.state.gate = gate
    app.add_exception_handler(ApiError, _render_api_error)
    app.add_middleware(AuditMiddleware, audit=gate.audit)


async def _render_api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


class AuditMiddleware:
    """Records every mutating request, and any denial no dependency recorded, once it is answered."""

    def __init__(self, app: ASGIApp, audit: AuditSink) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            method = str(scope["method"])
            wanted = method in MUTATING_METHODS or status in _DENIED_STATUSES or state.get("audit_read")
            if not state.get("audited") and wanted:
                await run_in_threadpool(self.audit.record, _entry_after(scope, state, status))


def _entry_after(scope: Scope, state: Mapping[str, Any], status: int) -> AuditEntry:
    principal = state.get("principal")
    client = scope.get("client")
    if status < 400:
        outcome = Outcome.ALLOWED
    elif status in _DENIED_STATUSES:
        outcome = Outcome.DENIED
    else:
        outcome = Outcome.ERROR
    return AuditEntry.by(
        principal if isinstance(principal, Principal) else None,
        method=str(scope["method"]),
        path=str(scope.get("path", "")),
        outcome=outcome,
        status_code=status,
        action=state.get("action"),
        source=str(client[0]) if client else None,
        detail=dict(state.get("audit_detail", {})),
    )


def _mark_denials(request: Request, step: Callable[[], T]) -> T:
    """Run ``step``; when it denies, flag the request so the middleware does not audit it twice."""
    try:
        return step()
    except ApiError as exc:
        if exc.status_code in _DENIED_STATUSES:
            request.state.audited = True
        raise


def _unauthorized() -> ApiError:
    return ApiError(
        401, "unauthorized", _UNAUTHORIZED_MESSAGE, {"WWW-Authenticate": 'Bearer realm="callmanager"'}
    )


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
