"""The gateway's HTTP API as typed calls (``GatewayApi`` over ``requests``) and the ``Gateway`` protocol that
view models depend on, so tests can hand them a fake."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import requests

from client.models import (
    Callback,
    CallRequest,
    Campaign,
    CampaignProgress,
    Claim,
    Contact,
    DeskState,
    Eligibility,
    Generation,
    HistoryEntry,
    JobProgress,
    Me,
    Page,
    StatusOption,
    history_from_json,
    parse_time,
)

ProgressCallback = Callable[[int, int | None], None]


class ApiError(Exception):
    """A request that failed; ``message`` is the server's (Spanish) text when it sent one."""

    status = 0
    default_message = "Error del servidor."

    def __init__(self, message: str = "", *, status: int | None = None, code: str = "") -> None:
        self.message = message or self.default_message
        if status is not None:
            self.status = status
        self.code = code
        super().__init__(self.message)


class NetworkError(ApiError):
    """The server could not be reached (no answer, refused, timed out)."""

    default_message = "No se pudo conectar con el servidor."


class Unauthorized(ApiError):
    """401: the key is missing, invalid or revoked."""

    status = 401
    default_message = (
        "La llave de API no es válida o fue revocada. Pida una nueva a TI y escríbala en la configuración."
    )


class Forbidden(ApiError):
    """403: the role lacks the capability."""

    status = 403
    default_message = "Su rol no permite esta acción."


class NotFound(ApiError):
    """404."""

    status = 404
    default_message = "No existe."


class Conflict(ApiError):
    """409: for example a phone that already exists."""

    status = 409
    default_message = "Conflicto con el estado actual."


class PreconditionFailed(ApiError):
    """412: the contact changed since it was read (If-Match mismatch); ``current`` is the contact as it is
    now and ``changes`` what changed after the version sent, when the server said so."""

    status = 412
    default_message = "El contacto cambió desde que se leyó."

    def __init__(
        self,
        message: str = "",
        *,
        code: str = "",
        current: Contact | None = None,
        changes: Sequence[HistoryEntry] = (),
    ) -> None:
        super().__init__(message, code=code)
        self.current = current
        self.changes = list(changes)


class Invalid(ApiError):
    """400/413/422: the request was refused as invalid; ``fields`` names the fields the server refused
    (``calling_hours.mon.0.0`` → its message), when it said."""

    status = 422
    default_message = "Datos no válidos."

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        code: str = "",
        fields: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.fields: dict[str, str] = dict(fields or {})


class LockedByOther(ApiError):
    """423: someone else holds the contact's lock."""

    status = 423
    default_message = "El contacto está bloqueado por otro usuario."

    def __init__(
        self,
        message: str = "",
        *,
        locked_by: str = "",
        locked_until: str = "",
        code: str = "",
        locked_by_name: str = "",
    ) -> None:
        super().__init__(message, code=code)
        self.locked_by = locked_by
        self.locked_by_name = locked_by_name
        self.locked_until = parse_time(locked_until)

    @property
    def owner(self) -> str:
        """The holder's name when known, else their id."""
        return self.locked_by_name or self.locked_by


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` seconds to wait."""

    status = 429
    default_message = "Demasiadas solicitudes."

    def __init__(self, message: str = "", *, retry_after: float = 1.0, code: str = "") -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class NoDesk(ApiError):
    """409 ``no_desk``: the call could not be placed, no desk agent of this user is connected."""

    status = 409
    default_message = (
        "Su puesto no tiene el marcador conectado. Inicie «callmanager-dialer» en este equipo (vea --check)."
    )


class QueueEmpty(NotFound):
    """404 ``queue_empty``: no contact may be offered now; the message says why, ``until`` when the first
    one in wait comes back (None when nothing will by itself)."""

    default_message = "No hay contactos disponibles en la cola."

    def __init__(
        self, message: str = "", *, until: datetime | None = None, code: str = "queue_empty"
    ) -> None:
        super().__init__(message, code=code)
        self.until = until


class DoNotCall(Conflict):
    """409 ``dnc``: the number is on the do-not-call list."""

    default_message = "El número está en la lista de no llamar."

    def __init__(self, message: str = "", *, code: str = "dnc") -> None:
        super().__init__(message, code=code)


class ServerError(ApiError):
    """5xx or an answer the client does not understand."""

    status = 500


@dataclass(frozen=True, slots=True)
class ContactQuery:
    """Server-side filters of the contact list (empty means no filter)."""

    status: str = ""
    list: str = ""
    operator: str = ""
    q: str = ""
    locked: bool | None = None

    def params(self) -> dict[str, str]:
        """Query-string parameters for ``GET /contacts`` and ``GET /export``."""
        params = {
            k: v
            for k, v in (
                ("status", self.status),
                ("list", self.list),
                ("operator", self.operator),
                ("q", self.q.strip()),
            )
            if v
        }
        if self.locked is not None:
            params["locked"] = "true" if self.locked else "false"
        return params

    def export_params(self) -> dict[str, str]:
        """The filters ``GET /export`` applies (status, list, operator: a search is not one of them)."""
        return {k: v for k, v in self.params().items() if k in ("status", "list", "operator")}

    def matches(self, contact: Contact) -> bool:
        """Whether ``contact`` passes the filters (the live feed uses this to place new rows)."""
        if self.status and contact.status != self.status:
            return False
        if self.list and contact.list != self.list:
            return False
        if self.operator and contact.operator != self.operator:
            return False
        if self.locked is not None and bool(contact.locked_by) != self.locked:
            return False
        needle = self.q.strip().lower()
        if needle:
            letters = any(ch.isalpha() for ch in needle)
            digits = "" if letters else "".join(ch for ch in needle if ch.isdigit())
            haystack_phone = "".join(ch for ch in contact.phone_e164 + " " + contact.phone if ch.isdigit())
            if needle not in contact.name.lower() and not (digits and digits in haystack_phone):
                return False
        return True


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds a lock and until when, as the server granted it."""

    locked_by: str
    locked_until: str
    locked_by_name: str = ""
    contact: Contact | None = None


class Gateway(Protocol):
    """The gateway calls the client makes; every method blocks and raises ``ApiError`` subclasses."""

    base_url: str

    def health(self) -> Mapping[str, Any]:
        """``GET /health``."""

    def me(self) -> Me:
        """``GET /me``."""

    def statuses(self) -> Sequence[StatusOption]:
        """``GET /statuses``."""

    def list_contacts(self, query: ContactQuery, limit: int, cursor: str = "") -> Page:
        """One page of ``GET /contacts``."""

    def get_contact(self, contact_id: str) -> Contact:
        """``GET /contacts/{id}``."""

    def update_contact(self, contact_id: str, fields: Mapping[str, Any], version: int | None) -> Contact:
        """``PUT /contacts/{id}`` with ``If-Match`` when ``version`` is given."""

    def delete_contact(self, contact_id: str) -> None:
        """``DELETE /contacts/{id}``."""

    def history(self, contact_id: str) -> Sequence[HistoryEntry]:
        """``GET /contacts/{id}/history``."""

    def lock(self, contact_id: str, minutes: int) -> LockInfo:
        """``POST /contacts/{id}/lock``."""

    def unlock(self, contact_id: str) -> Contact | None:
        """``DELETE /contacts/{id}/lock``; the contact as it is now when the server sends it."""

    def call(self, contact_id: str) -> CallRequest:
        """``POST /contacts/{id}/call``: the call id and the desk it was sent to."""

    def hangup(self, call_id: str, outcome: str | None = None) -> None:
        """``POST /calls/{call_id}/hangup`` with ``{outcome?}``."""

    def desks(self) -> Sequence[DeskState]:
        """``GET /desks``: the desks the caller's role may see, with state, call and since when."""

    def start_import(self, path: Path, dry_run: bool) -> JobProgress:
        """``POST /import`` (multipart) → the job."""

    def job(self, job_id: str) -> JobProgress:
        """``GET /jobs/{id}``."""

    def cancel_job(self, job_id: str) -> None:
        """``DELETE /jobs/{id}``."""

    def export(self, fmt: str, query: ContactQuery, dest: Path, on_progress: ProgressCallback) -> int:
        """``GET /export`` streamed into ``dest``; returns the bytes written."""

    def download_report(self, job_id: str, fmt: str, dest: Path) -> int:
        """``GET /jobs/{id}/report?format=`` (an import's complete report) into ``dest``; bytes written."""

    def generate(self, amount: int, method: str, save: bool) -> Generation:
        """``POST /api/generate_contacts``."""

    def metrics(self) -> Mapping[str, Any]:
        """``GET /metrics`` as JSON."""

    def config(self) -> Mapping[str, Any]:
        """``GET /config``."""

    def stats(self) -> Mapping[str, Any]:
        """``GET /stats``: totals by status and held locks (TeamLead and up)."""

    def call_metrics(self, since: datetime | None = None, until: datetime | None = None) -> Mapping[str, Any]:
        """``GET /metrics/calls``: call figures per agent and team, as far as the caller's role sees."""

    def next_contact(self, campaign: str | None = None) -> Claim:
        """``POST /queue/next``: the next contact, locked to me; ``QueueEmpty`` says why there is none."""

    def disposition(self, contact_id: str, wrap: Disposition) -> Contact:
        """``POST /contacts/{id}/disposition``: a call's wrap-up in one step (the lock is released)."""

    def eligibility(self, contact_id: str, campaign: str | None = None) -> Eligibility:
        """``GET /contacts/{id}/eligibility``: whether the queue would offer the contact now, and why."""

    def callbacks(self, due_before: datetime | None = None) -> Sequence[Callback]:
        """``GET /callbacks?mine=true&due_before=``: my pending callbacks (and the shared), soonest first."""

    def reschedule_callback(self, callback_id: str, due_at: datetime | None, scope: str | None) -> None:
        """``PATCH /callbacks/{id}`` with the new ``due_at`` and/or ``scope``."""

    def cancel_callback(self, callback_id: str) -> None:
        """``DELETE /callbacks/{id}``."""

    def campaigns(self) -> Sequence[Campaign]:
        """``GET /campaigns``, the archived ones included."""

    def save_campaign(self, campaign_id: str | None, fields: Mapping[str, Any]) -> Campaign:
        """``POST /campaigns`` (``campaign_id`` None) or ``PATCH /campaigns/{id}`` with the rules given."""

    def campaign_progress(self, campaign_id: str) -> CampaignProgress:
        """``GET /campaigns/{id}/progress``."""


@dataclass(frozen=True, slots=True)
class Disposition:
    """The body of ``POST /contacts/{id}/disposition``: outcome, new status, a note to append and an optional
    callback (an aware time, ``personal`` or ``shared``)."""

    outcome: str
    status: str | None = None
    note: str = ""
    callback_at: datetime | None = None
    callback_scope: str = "personal"

    def body(self) -> dict[str, Any]:
        """The JSON body (a callback only when one is set)."""
        data: dict[str, Any] = {"outcome": self.outcome, "note": self.note}
        if self.status:
            data["status"] = self.status
        if self.callback_at is not None:
            data["callback_at"] = self.callback_at.isoformat()
            data["callback_scope"] = self.callback_scope
        return data


def unreachable(base_url: str, exc: requests.RequestException) -> str:
    """Why the server at ``base_url`` ("" when unknown) could not be reached, in plain Spanish, with what
    to do."""
    server = f"el servidor {base_url}" if base_url else "el servidor"
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        shown = f" «{base_url}»" if base_url else ""
        return (
            f"La dirección del servidor{shown} no es válida. Escríbala completa, por ejemplo "
            "http://10.0.0.5:5000, en la configuración."
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return f"{server.capitalize()} tardó demasiado en responder. Espere un momento e intente de nuevo."
    if isinstance(exc, requests.exceptions.SSLError):
        return f"No se pudo establecer una conexión segura con {server}. Revise la dirección (http o https)."
    return (
        f"No se pudo conectar con {server}. Revise que la red funcione y que la dirección sea correcta; "
        "si sigue igual, avise a TI."
    )


def error_text(exc: BaseException) -> str:
    """What to tell people about ``exc``: the server's (Spanish) message, or a plain sentence with what to
    do; never an exception's name."""
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, requests.RequestException):
        return unreachable("", exc)
    if isinstance(exc, OSError):
        return (
            f"No se pudo leer o escribir el archivo: {exc.strerror or exc}. Revise la carpeta y los permisos."
        )
    return "Ocurrió un error inesperado en el programa. Intente de nuevo; si se repite, avise a TI."


def error_from_response(response: requests.Response) -> ApiError:
    """The typed error for a non-2xx answer, carrying the server's message."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error: dict[str, Any] = {}
    for candidate in (body.get("error"), body.get("detail")):
        if isinstance(candidate, dict):
            error = candidate
            break
    if not error and isinstance(body.get("detail"), str):
        error = {"message": body["detail"]}
    code = str(error.get("code") or "")
    message = str(error.get("message") or "")
    status = response.status_code
    if code == "no_desk":
        return NoDesk(message, status=status, code=code)
    if status == 401:
        return Unauthorized(code=code)  # ours: the server's names the HTTP header, not what to do
    if status == 403:
        return Forbidden(message, code=code)
    if status == 404 and code == "queue_empty":
        return QueueEmpty(message, until=parse_time(error.get("until")))
    if status == 404:
        return NotFound(message, code=code)
    if status == 409 and code == "dnc":
        return DoNotCall(message)
    if status == 409:
        return Conflict(message, code=code)
    if status == 412:
        current = error.get("current")
        changes = error.get("changes")
        return PreconditionFailed(
            message,
            code=code,
            current=Contact.from_json(current) if isinstance(current, dict) and current.get("id") else None,
            changes=history_from_json([c for c in changes if isinstance(c, dict)])
            if isinstance(changes, list)
            else (),
        )
    if status == 423:
        nested = error.get("details")
        details: dict[str, Any] = nested if isinstance(nested, dict) else error
        return LockedByOther(
            message,
            locked_by=str(details.get("locked_by") or ""),
            locked_by_name=str(details.get("locked_by_name") or ""),
            locked_until=str(details.get("locked_until") or ""),
            code=code,
        )
    if status == 429:
        try:
            retry = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            retry = 1.0
        return RateLimited(message, retry_after=retry, code=code)
    if status in (400, 413, 422):
        return Invalid(message, status=status, code=code, fields=refused_fields(error))
    return ServerError(message or f"Respuesta inesperada del servidor ({status}).", status=status, code=code)


def refused_fields(error: Mapping[str, Any]) -> dict[str, str]:
    """The fields a 422 names: a domain refusal's ``field`` with its (Spanish) message, and each field of a
    validation error's ``problems`` with "" (their text is the validation library's English, not for
    people)."""
    fields: dict[str, str] = {}
    problems = error.get("problems")
    for problem in problems if isinstance(problems, list) else []:
        if isinstance(problem, dict) and problem.get("field"):
            fields.setdefault(str(problem["field"]), "")
    if error.get("field"):
        fields[str(error["field"])] = str(error.get("message") or "")
    return fields


def next_cursor(response: requests.Response) -> str:
    """The ``cursor`` of the ``Link: <...>; rel="next"`` header ("" when there is no next page)."""
    link = response.links.get("next")
    if not link:
        return ""
    values = parse_qs(urlsplit(link.get("url", "")).query).get("cursor")
    return values[0] if values else ""


class GatewayApi:
    """The real gateway over one pooled ``requests.Session`` (safe to share between worker threads)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._session.headers.update({"X-API-Key": api_key, "Accept": "application/json"})
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=8)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._timeout = timeout

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        try:
            response = self._session.request(method, self.base_url + path, **kwargs)
        except requests.RequestException as exc:
            raise NetworkError(unreachable(self.base_url, exc)) from exc
        if response.status_code >= 400:
            error = error_from_response(response)
            response.close()
            raise error
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise ServerError(
                "El servidor respondió algo que no es JSON.", status=response.status_code
            ) from exc

    def health(self) -> Mapping[str, Any]:
        """``GET /health``."""
        data = self._json("GET", "/health")
        return data if isinstance(data, dict) else {}

    def me(self) -> Me:
        """``GET /me``."""
        return Me.from_json(self._json("GET", "/me"))

    def statuses(self) -> Sequence[StatusOption]:
        """``GET /statuses``."""
        data = self._json("GET", "/statuses")
        items = data.get("statuses", []) if isinstance(data, dict) else data
        return [StatusOption.from_json(item) for item in items if isinstance(item, dict)]

    def list_contacts(self, query: ContactQuery, limit: int, cursor: str = "") -> Page:
        """One page of ``GET /contacts``."""
        params = query.params()
        params["limit"] = str(limit)
        if cursor:
            params["cursor"] = cursor
        response = self._request("GET", "/contacts", params=params)
        try:
            items = response.json()
        except ValueError as exc:
            raise ServerError("El servidor respondió algo que no es JSON.") from exc
        if not isinstance(items, list):
            raise ServerError("La lista de contactos no es un arreglo JSON.")
        total_header = response.headers.get("X-Total-Count", "")
        return Page(
            contacts=[Contact.from_json(item) for item in items],
            next_cursor=next_cursor(response),
            total=int(total_header) if total_header.isdigit() else None,
        )

    def get_contact(self, contact_id: str) -> Contact:
        """``GET /contacts/{id}`` (the ETag, when sent, is the version)."""
        response = self._request("GET", f"/contacts/{contact_id}")
        contact = Contact.from_json(response.json())
        etag = response.headers.get("ETag", "").strip('W/"')
        if etag.isdigit() and int(etag) != contact.version:
            contact = replace(contact, version=int(etag))
        return contact

    def update_contact(self, contact_id: str, fields: Mapping[str, Any], version: int | None) -> Contact:
        """``PUT /contacts/{id}``."""
        headers = {"If-Match": f'"{version}"'} if version else {}
        return Contact.from_json(
            self._json("PUT", f"/contacts/{contact_id}", json=dict(fields), headers=headers)
        )

    def delete_contact(self, contact_id: str) -> None:
        """``DELETE /contacts/{id}``."""
        self._request("DELETE", f"/contacts/{contact_id}").close()

    def history(self, contact_id: str) -> Sequence[HistoryEntry]:
        """``GET /contacts/{id}/history``."""
        data = self._json("GET", f"/contacts/{contact_id}/history")
        items = data.get("events") or data.get("history") or [] if isinstance(data, dict) else data
        return history_from_json([item for item in items if isinstance(item, dict)])

    def lock(self, contact_id: str, minutes: int) -> LockInfo:
        """``POST /contacts/{id}/lock``."""
        data = self._json("POST", f"/contacts/{contact_id}/lock", json={"duration_minutes": minutes})
        return LockInfo(
            str(data.get("locked_by") or ""),
            str(data.get("locked_until") or ""),
            str(data.get("locked_by_name") or ""),
            _contact_or_none(data),
        )

    def unlock(self, contact_id: str) -> Contact | None:
        """``DELETE /contacts/{id}/lock``; the released contact (with its new version) when sent."""
        return _contact_or_none(self._json("DELETE", f"/contacts/{contact_id}/lock"))

    def call(self, contact_id: str) -> CallRequest:
        """``POST /contacts/{id}/call`` → 202 ``{call_id, contact_id, dial, desk, desk_connected}``; 409
        ``no_desk`` raises ``NoDesk``, 423 ``LockedByOther`` naming who holds the contact."""
        data = self._json("POST", f"/contacts/{contact_id}/call")
        if not isinstance(data, dict) or not data.get("call_id"):
            raise ServerError("El servidor aceptó la llamada sin decir su identificador.")
        return CallRequest.from_json(data)

    def hangup(self, call_id: str, outcome: str | None = None) -> None:
        """``POST /calls/{call_id}/hangup``; ``outcome`` is what the agent chose (for desks that cannot
        see the call's progress)."""
        body = {"outcome": outcome} if outcome else {}
        self._request("POST", f"/calls/{call_id}/hangup", json=body).close()

    def desks(self) -> Sequence[DeskState]:
        """``GET /desks`` (a list, or ``{"desks": [...]}``)."""
        data = self._json("GET", "/desks")
        items = data.get("desks", []) if isinstance(data, dict) else data
        return [DeskState.from_json(item) for item in items or [] if isinstance(item, dict)]

    def start_import(self, path: Path, dry_run: bool) -> JobProgress:
        """``POST /import`` with the file in field ``file``."""
        with path.open("rb") as handle:
            data = self._json(
                "POST",
                "/import",
                files={"file": (path.name, handle)},
                data={"dry_run": "true" if dry_run else "false"},
                timeout=max(self._timeout, 120.0),
            )
        job = data.get("job", data) if isinstance(data, dict) else {}
        return JobProgress.from_json(job)

    def job(self, job_id: str) -> JobProgress:
        """``GET /jobs/{id}``."""
        return JobProgress.from_json(self._json("GET", f"/jobs/{job_id}"))

    def cancel_job(self, job_id: str) -> None:
        """``DELETE /jobs/{id}``."""
        self._request("DELETE", f"/jobs/{job_id}").close()

    def export(self, fmt: str, query: ContactQuery, dest: Path, on_progress: ProgressCallback) -> int:
        """``GET /export`` saved as ``dest`` only when complete; a large export the server answers with a job
        (202) is waited for, then its file downloaded."""
        params = query.export_params()
        params["format"] = fmt
        response = self._request("GET", "/export", params=params, stream=True, timeout=(self._timeout, 300))
        if response.status_code == 202:
            job = JobProgress.from_json(response.json())
            response.close()
            self._wait_for(job, on_progress)
            response = self._request(
                "GET", f"/jobs/{job.id}/download", stream=True, timeout=(self._timeout, 300)
            )
        return self._save(response, dest, on_progress)

    def _wait_for(self, job: JobProgress, on_progress: ProgressCallback, every: float = 1.0) -> None:
        """Poll ``job`` until it ends; raise with the server's message unless it finished."""
        while not job.finished:
            on_progress(0, None)
            time.sleep(every)
            job = self.job(job.id)
        if job.state != "finished":
            raise ServerError(job.message or f"El trabajo terminó como «{job.state}».")

    def download_report(self, job_id: str, fmt: str, dest: Path) -> int:
        """``GET /jobs/{id}/report`` saved as ``dest`` only when complete."""
        response = self._request(
            "GET", f"/jobs/{job_id}/report", params={"format": fmt}, stream=True, timeout=(self._timeout, 300)
        )
        return self._save(response, dest, lambda _done, _total: None)

    def _save(self, response: requests.Response, dest: Path, on_progress: ProgressCallback) -> int:
        """Stream ``response`` to ``dest.part``, renamed to ``dest`` only when every byte arrived."""
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        partial = dest.with_name(dest.name + ".part")
        written = 0
        try:
            with response, partial.open("wb") as handle:
                for chunk in response.iter_content(chunk_size=256 * 1024):
                    handle.write(chunk)
                    written += len(chunk)
                    on_progress(written, total)
            if total is not None and written != total:
                raise NetworkError(f"La descarga se cortó: {written} de {total} bytes.")
            os.replace(partial, dest)
        except requests.RequestException as exc:
            partial.unlink(missing_ok=True)
            raise NetworkError(
                "La descarga se cortó (se perdió la conexión con el servidor). Intente de nuevo."
            ) from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return written

    def generate(self, amount: int, method: str, save: bool) -> Generation:
        """``POST /api/generate_contacts``."""
        data = self._json(
            "POST", "/api/generate_contacts", json={"amount": amount, "method": method, "save": save}
        )
        result = Generation.from_json(data)
        if not result.success:
            error = data.get("error") if isinstance(data, dict) else None
            message = error.get("message") if isinstance(error, dict) else data.get("message", "")
            raise ServerError(str(message or "El servidor indicó que la generación no tuvo éxito."))
        return result

    def metrics(self) -> Mapping[str, Any]:
        """``GET /metrics`` with ``Accept: application/json``."""
        data = self._json("GET", "/metrics", headers={"Accept": "application/json"})
        return data if isinstance(data, dict) else {}

    def config(self) -> Mapping[str, Any]:
        """``GET /config``."""
        data = self._json("GET", "/config")
        return data if isinstance(data, dict) else {}

    def stats(self) -> Mapping[str, Any]:
        """``GET /stats``."""
        data = self._json("GET", "/stats")
        return data if isinstance(data, dict) else {}

    def call_metrics(self, since: datetime | None = None, until: datetime | None = None) -> Mapping[str, Any]:
        """``GET /metrics/calls?since=&until=`` (ISO 8601 with the time zone)."""
        params = {}
        if since is not None:
            params["since"] = since.isoformat()
        if until is not None:
            params["until"] = until.isoformat()
        data = self._json("GET", "/metrics/calls", params=params)
        return data if isinstance(data, dict) else {}

    def next_contact(self, campaign: str | None = None) -> Claim:
        """``POST /queue/next[?campaign=]``."""
        params = {"campaign": campaign} if campaign else {}
        data = self._json("POST", "/queue/next", params=params)
        try:
            return Claim.from_json(data if isinstance(data, dict) else {})
        except ValueError as exc:
            raise ServerError("El servidor dio un siguiente contacto sin sus datos.") from exc

    def disposition(self, contact_id: str, wrap: Disposition) -> Contact:
        """``POST /contacts/{id}/disposition``."""
        return Contact.from_json(self._json("POST", f"/contacts/{contact_id}/disposition", json=wrap.body()))

    def eligibility(self, contact_id: str, campaign: str | None = None) -> Eligibility:
        """``GET /contacts/{id}/eligibility[?campaign=]``."""
        params = {"campaign": campaign} if campaign else {}
        data = self._json("GET", f"/contacts/{contact_id}/eligibility", params=params)
        return Eligibility.from_json(data if isinstance(data, dict) else {})

    def callbacks(self, due_before: datetime | None = None) -> Sequence[Callback]:
        """``GET /callbacks?mine=true[&due_before=]``."""
        params = {"mine": "true"}
        if due_before is not None:
            params["due_before"] = due_before.isoformat()
        data = self._json("GET", "/callbacks", params=params)
        items = data.get("callbacks", []) if isinstance(data, dict) else data
        return [Callback.from_json(item) for item in items or [] if isinstance(item, dict)]

    def reschedule_callback(self, callback_id: str, due_at: datetime | None, scope: str | None) -> None:
        """``PATCH /callbacks/{id}``."""
        body: dict[str, Any] = {}
        if due_at is not None:
            body["due_at"] = due_at.isoformat()
        if scope:
            body["scope"] = scope
        self._request("PATCH", f"/callbacks/{callback_id}", json=body).close()

    def cancel_callback(self, callback_id: str) -> None:
        """``DELETE /callbacks/{id}``."""
        self._request("DELETE", f"/callbacks/{callback_id}").close()

    def campaigns(self) -> Sequence[Campaign]:
        """``GET /campaigns?archived=true`` (the window hides the archived ones until asked)."""
        data = self._json("GET", "/campaigns", params={"archived": "true"})
        items = data.get("campaigns", []) if isinstance(data, dict) else data
        return [Campaign.from_json(item) for item in items or [] if isinstance(item, dict)]

    def save_campaign(self, campaign_id: str | None, fields: Mapping[str, Any]) -> Campaign:
        """``POST /campaigns`` or ``PATCH /campaigns/{id}``."""
        if campaign_id is None:
            data = self._json("POST", "/campaigns", json=dict(fields))
        else:
            data = self._json("PATCH", f"/campaigns/{campaign_id}", json=dict(fields))
        return Campaign.from_json(data if isinstance(data, dict) else {})

    def campaign_progress(self, campaign_id: str) -> CampaignProgress:
        """``GET /campaigns/{id}/progress``."""
        data = self._json("GET", f"/campaigns/{campaign_id}/progress")
        return CampaignProgress.from_json(data if isinstance(data, dict) else {})


def _contact_or_none(data: Any) -> Contact | None:
    """The contact a lock answer carries (the real gateway sends the whole contact), else None."""
    if isinstance(data, dict) and data.get("id") and "version" in data:
        return Contact.from_json(data)
    return None
