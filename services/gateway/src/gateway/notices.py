"""What live clients are told about each stored event: the Socket.IO event name and its payload.

The payloads follow PRODUCT.md's Socket.IO contract; every one carries the event's global ``position`` so
a client that reconnects can ask for what it missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contacts import events as ev
from kernel.envelope import Envelope

# A bus batch with more events than this from one correlation (an import, a generation) is announced
# as one ``bulk_update`` instead of one notice per contact.
BULK_THRESHOLD = 50


@dataclass(frozen=True, slots=True)
class Notice:
    """One Socket.IO emission: event name, payload, and the contact it concerns (if any)."""

    name: str
    payload: dict[str, Any]
    contact_id: str | None = None


_UPDATES = {ev.ContactUpdated.TYPE, ev.ContactMerged.TYPE}
_LOCKS = {ev.ContactLocked.TYPE, ev.LockExtended.TYPE}
_UNLOCKS = {ev.LockReleased.TYPE, ev.LockForceReleased.TYPE, ev.LockExpired.TYPE}
_CALLBACK_CHANGES = {
    ev.CallbackRescheduled.TYPE: "rescheduled",
    ev.CallbackCancelled.TYPE: "cancelled",
    ev.CallbackShared.TYPE: "shared",
}


def notice_for(event: Envelope) -> Notice | None:
    """The notice for one contact event, or None for events clients are not told about."""
    data = event.data
    contact_id = str(data.get("contact_id", event.stream_id))
    base: dict[str, Any] = {
        "id": contact_id,
        "position": event.position,
        "ts": event.occurred_at.isoformat(),
        "user": event.actor.user_id,
    }
    kind = event.type
    if kind == ev.ContactCreated.TYPE:
        return Notice("contact_created", {**base, "contact": _created_contact(contact_id, data)}, contact_id)
    if kind in _UPDATES:
        fields = {c["field"]: c["new"] for c in data.get("changes", [])}
        return Notice("contact_updated", {**base, "fields": fields}, contact_id)
    if kind == ev.StatusChanged.TYPE:
        fields = {"status": data.get("new")}
        return Notice("contact_updated", {**base, "fields": fields, "reason": data.get("reason")}, contact_id)
    if kind == ev.NoteEdited.TYPE:
        return Notice("contact_updated", {**base, "fields": {"note": data.get("new")}}, contact_id)
    if kind in _LOCKS:
        payload = {
            **base,
            "locked_by": data.get("locked_by"),
            "locked_by_name": data.get("locked_by_name", ""),
            "locked_until": data.get("locked_until"),
            "duration_minutes": data.get("duration_minutes"),
        }
        return Notice("contact_locked", payload, contact_id)
    if kind in _UNLOCKS:
        unlocked_by = data.get("released_by") or (
            "system" if kind == ev.LockExpired.TYPE else event.actor.user_id
        )
        payload = {**base, "unlocked_by": unlocked_by, "expired": kind == ev.LockExpired.TYPE}
        return Notice("contact_unlocked", payload, contact_id)
    if kind == ev.ContactDeleted.TYPE:
        return Notice("contact_deleted", base, contact_id)
    if kind in _CALLBACK_CHANGES or (kind == ev.DispositionRecorded.TYPE and data.get("callback_at")):
        return Notice("callback_changed", _callback_change(event, contact_id, base), contact_id)
    if kind in {ev.CallRequested.TYPE, ev.CallStarted.TYPE, ev.CallEnded.TYPE}:
        name = {"contacts.CallRequested": "call_requested", "contacts.CallStarted": "call_started"}.get(
            kind, "call_ended"
        )
        payload = {**base, **{k: v for k, v in data.items() if k != "contact_id"}}
        if kind == ev.CallEnded.TYPE:
            payload["talk_seconds"] = data.get("duration_seconds", 0)
        return Notice(name, payload, contact_id)
    return None


def _callback_change(event: Envelope, contact_id: str, base: dict[str, Any]) -> dict[str, Any]:
    """``callback_changed``: which callback, what happened to it (``scheduled``, ``rescheduled``,
    ``cancelled``, ``shared``) and, when the event says, its due time, scope and agent; open «Rellamadas»
    windows read their list again on it."""
    data = event.data
    if event.type == ev.DispositionRecorded.TYPE:
        # Events stored before callback_id existed: the id the callbacks read model derives.
        callback_id = data.get("callback_id") or f"{contact_id}.{event.stream_version}"
        change, due_at, scope = "scheduled", data.get("callback_at"), data.get("callback_scope")
    else:
        callback_id = data.get("callback_id")
        change, due_at = _CALLBACK_CHANGES[event.type], data.get("due_at")
        scope = "shared" if change == "shared" else data.get("scope")
    return {
        **base,
        "callback_id": callback_id,
        "change": change,
        "due_at": due_at,
        "scope": scope,
        "user_id": data.get("user_id"),
    }


def notices_for(events: Sequence[Envelope]) -> list[Notice]:
    """Notices for a batch in position order; a large group of one correlation becomes one ``bulk_update``."""
    groups: dict[str, list[Envelope]] = {}
    for event in events:
        groups.setdefault(_correlation(event), []).append(event)
    notices: list[Notice] = []
    for event in events:
        group = groups[_correlation(event)]
        if len(group) <= BULK_THRESHOLD:
            notice = notice_for(event)
            if notice is not None:
                notices.append(notice)
        elif event is group[-1]:
            notices.append(_bulk_notice(group))
    return notices


def _correlation(event: Envelope) -> str:
    return str(event.correlation_id or event.id)


def _bulk_notice(group: Sequence[Envelope]) -> Notice:
    counts: dict[str, int] = {}
    for event in group:
        short = event.type.rsplit(".", 1)[-1]
        counts[short] = counts.get(short, 0) + 1
    payload = {
        "correlation_id": _correlation(group[0]),
        "count": len(group),
        "by_type": counts,
        "position": group[-1].position,
        "first_position": group[0].position,
        "user": group[0].actor.user_id,
    }
    return Notice("bulk_update", payload)


def _created_contact(contact_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": contact_id,
        "phone": data.get("phone"),
        "phone_e164": data.get("phone_e164"),
        "phone_national": data.get("phone_national"),
        "name": data.get("name", ""),
        "status": data.get("status"),
        "note": data.get("note", ""),
        "email": data.get("email", ""),
        "extra": data.get("extra", {}),
        "list": data.get("list_name", ""),
        "operator": data.get("operator"),
        "locked_by": None,
        "locked_until": None,
        "created_at": data.get("at"),
    }
