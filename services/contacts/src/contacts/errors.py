"""Domain errors of the contacts service, each with a stable ``code``, a Spanish message and the HTTP
status (``http_status``) both HTTP edges answer it with: the contacts service's internal API and the
gateway.

An error crosses a process boundary as ``{"code", "message", ...its attributes}``
(``contacts.views.error_to_data``) and comes back as the same class, found by its code in
:data:`ContactError.by_code`; attributes annotated ``datetime`` on the class come back as datetimes.
A new error is one class here: nothing else lists them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import ClassVar


class ContactError(Exception):
    """Base of every rule the contacts domain refuses; ``message`` is for users (Spanish)."""

    code: ClassVar[str] = "contact_error"
    http_status: ClassVar[int] = 400
    by_code: ClassVar[dict[str, type[ContactError]]] = {}

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        ContactError.by_code[cls.code] = cls

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ContactError):
    """The contact does not exist or was deleted."""

    code = "not_found"
    http_status = 404

    def __init__(self, contact_id: str) -> None:
        super().__init__(f"El contacto {contact_id} no existe")
        self.contact_id = contact_id


class AlreadyExists(ContactError):
    """A contact with this phone (E.164) already exists."""

    code = "already_exists"
    http_status = 409

    def __init__(self, existing_id: str, phone_e164: str) -> None:
        super().__init__(f"Ya existe un contacto con el teléfono {phone_e164} (id {existing_id})")
        self.existing_id = existing_id
        self.phone_e164 = phone_e164


class Locked(ContactError):
    """Another user holds the lock on the contact."""

    code = "locked"
    http_status = 423
    locked_until: datetime

    def __init__(self, contact_id: str, locked_by: str, locked_by_name: str, locked_until: datetime) -> None:
        who = locked_by_name or locked_by
        super().__init__(
            f"El contacto está bloqueado por {who} hasta {locked_until:%Y-%m-%d %H:%M} UTC",
        )
        self.contact_id = contact_id
        self.locked_by = locked_by
        self.locked_by_name = locked_by_name
        self.locked_until = locked_until


class NotLockOwner(ContactError):
    """Only the lock holder (or a TeamLead and above, by force) may do this to the lock."""

    code = "not_lock_owner"
    http_status = 403

    def __init__(self, contact_id: str, locked_by: str, locked_by_name: str) -> None:
        who = locked_by_name or locked_by
        super().__init__(f"Solo {who}, que tiene el bloqueo, puede liberarlo o extenderlo")
        self.contact_id = contact_id
        self.locked_by = locked_by
        self.locked_by_name = locked_by_name


class NotLocked(ContactError):
    """The lock to extend does not exist (never taken, released or expired)."""

    code = "not_locked"
    http_status = 409

    def __init__(self, contact_id: str) -> None:
        super().__init__("El contacto no está bloqueado; bloquéelo de nuevo")
        self.contact_id = contact_id


class Forbidden(ContactError):
    """The caller's role may not do this."""

    code = "forbidden"
    http_status = 403

    def __init__(self, role: str, action: str) -> None:
        super().__init__(f"El rol {role} no puede {action}")
        self.role = role
        self.action = action


class InvalidStatus(ContactError):
    """A status that is not in the catalogue (after mapping legacy spellings)."""

    code = "invalid_status"
    http_status = 422

    def __init__(self, text: str, known: Iterable[str] = ()) -> None:
        known_list = ", ".join(known)
        message = f"Estado desconocido: «{text}»" if text.strip() else "El estado está vacío"
        if known_list:
            message += f". Estados válidos: {known_list}"
        super().__init__(message)
        self.text = text


class InvalidInput(ContactError):
    """A field value the domain refuses, naming the field."""

    code = "invalid_input"
    http_status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class LockDurationTooLong(ContactError):
    """A lock longer than the configured maximum."""

    code = "lock_duration_too_long"
    http_status = 422

    def __init__(self, requested_minutes: int, max_minutes: int) -> None:
        super().__init__(
            f"Un bloqueo dura como máximo {max_minutes} minutos (se pidieron {requested_minutes})",
        )
        self.requested_minutes = requested_minutes
        self.max_minutes = max_minutes


class Conflict(ContactError):
    """The contact kept changing while the command was applied (concurrent writers); try again."""

    code = "conflict"
    http_status = 409

    def __init__(self, contact_id: str = "") -> None:
        super().__init__("El contacto cambió mientras se guardaba; vuelva a intentarlo")
        self.contact_id = contact_id


class DuplicatePhone(Conflict):
    """The read model refused a second row with a phone another contact has (its unique index): nothing
    was written. Not a race a retry would win, but a contact whose id was not derived from its phone."""

    code = "duplicate_phone"

    def __init__(self, phone: str = "") -> None:
        super().__init__()
        which = f"el teléfono {phone}" if phone else "ese teléfono"
        self.message = f"Otro contacto ya tiene {which}; no se guardó nada. Si se repite, avise a TI."
        self.args = (self.message,)
        self.phone = phone


class VersionMismatch(ContactError):
    """The caller's expected version (If-Match) is not the contact's version: someone changed it first."""

    code = "version_mismatch"
    http_status = 412

    def __init__(self, expected: int, actual: int, contact_id: str = "") -> None:
        super().__init__(
            f"El contacto cambió: está en la versión {actual} y se esperaba la {expected}; recárguelo",
        )
        self.expected = expected
        self.actual = actual
        self.contact_id = contact_id


class CallNotOpen(ContactError):
    """A desk reports on a call not open for it: unknown, issued to another user or desk, or ended."""

    code = "call_not_open"
    http_status = 409

    def __init__(self, contact_id: str, call_id: str) -> None:
        super().__init__(f"La llamada {call_id} no está abierta para este puesto")
        self.contact_id = contact_id
        self.call_id = call_id


class QueueEmpty(ContactError):
    """No contact may be offered now; ``why`` says what keeps each one out and ``until`` when the first
    one comes back (None when nothing will by itself)."""

    code = "queue_empty"
    http_status = 404
    until: datetime | None

    def __init__(self, why: str, until: datetime | None = None, counts: dict[str, int] | None = None) -> None:
        super().__init__(why)
        self.until = until
        self.counts = dict(counts or {})


class DoNotCall(ContactError):
    """The number is in the do-not-call list."""

    code = "dnc"
    http_status = 409

    def __init__(self, phone_e164: str, reason: str = "") -> None:
        because = f" ({reason})" if reason else ""
        super().__init__(f"El número {phone_e164} está en la lista de no llamar{because}")
        self.phone = phone_e164
        self.reason = reason


class CampaignNotFound(ContactError):
    """No campaign has this id."""

    code = "campaign_not_found"
    http_status = 404

    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"La campaña {campaign_id} no existe")
        self.campaign_id = campaign_id


class CampaignNotWorked(Forbidden):
    """The caller's team does not work this campaign (a 403 like any refusal)."""

    code = "campaign_not_worked"
    http_status = 403

    def __init__(self, campaign_id: str, team: str) -> None:
        ContactError.__init__(self, f"Su equipo ({team or 'sin equipo'}) no trabaja la campaña {campaign_id}")
        self.role = ""
        self.action = "trabajar esta campaña"
        self.campaign_id = campaign_id
        self.team = team


class CampaignExists(ContactError):
    """Another campaign already has this name."""

    code = "campaign_exists"
    http_status = 409

    def __init__(self, name: str) -> None:
        super().__init__(f"Ya existe una campaña llamada «{name}»")
        self.name = name


class TransitionRefused(ContactError):
    """The caller's role may not move the contact from one status to the other (the status state
    machine, ``contacts.statuses.Catalogue.required_role``)."""

    code = "transition_refused"
    http_status = 403

    def __init__(self, contact_id: str, old: str, new: str, role: str, needed: str) -> None:
        super().__init__(
            f"El rol {role} no puede pasar el contacto de {old} a {new}: "
            f"solo {needed} o superior puede hacerlo"
        )
        self.contact_id = contact_id
        self.old = old
        self.new = new
        self.role = role
        self.needed = needed


class CallbackRequired(ContactError):
    """The status a wrap-up sets requires a callback and none was given."""

    code = "callback_required"
    http_status = 422

    def __init__(self, status: str) -> None:
        super().__init__(f"El estado {status} requiere programar una rellamada (callback_at)")
        self.status = status
        self.field = "callback_at"


class CallbackNotFound(ContactError):
    """The contact has no pending callback with this id (done, cancelled, replaced, or never set)."""

    code = "callback_not_found"
    http_status = 404

    def __init__(self, callback_id: str) -> None:
        super().__init__(f"La rellamada {callback_id} no existe o ya no está pendiente")
        self.callback_id = callback_id
