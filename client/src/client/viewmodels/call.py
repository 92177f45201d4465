"""One agent's calls: her desk's state on the Call button, the call in progress (dialling, ringing, in call)
with a running timer and hang-up, and the wrap-up where outcome, status, a note and an optional callback
are recorded in one step (``POST /contacts/{id}/disposition``; a server without it gets the old ``PUT``).

The desk (``callmanager-dialer``) reports progress with ``desk_state``; the gateway announces every call's
``call_started`` and ``call_ended``. A desk whose softphone cannot see the call (InterPhone) reports neither
ringing nor answer: then the agent chooses the outcome in the wrap-up and the hang-up carries it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from client.api import (
    Conflict,
    Disposition,
    DoNotCall,
    Gateway,
    LockedByOther,
    NoDesk,
    NotFound,
    PreconditionFailed,
    error_text,
)
from client.centretime import BadTime, local_parts, parse_local
from client.dispatch import Runner
from client.i18n import Translator
from client.models import CallRequest, Contact, DeskState, Me
from client.viewmodels.contacts import utcnow
from client.viewmodels.panel import EDITABLE, ContactPanelViewModel, MessageKind, local_time

OUTCOMES = ("answered", "no_answer", "busy", "failed", "cancelled")
"""What a call's end may report (CALLS.md), in the order the wrap-up offers them."""

CALLBACK_SCOPES = ("personal", "shared")
"""Who may take a callback: only the agent who set it, or anyone in the campaign."""

CALL_EVENTS = frozenset({"call_requested", "call_started", "call_ended"})
EARLY_EVENTS_KEPT = 20


class CallPhase(StrEnum):
    """Where the agent's own call stands."""

    IDLE = "idle"
    REQUESTING = "requesting"  # POST /contacts/{id}/call sent, no answer yet
    DIALLING = "dialling"
    RINGING = "ringing"
    IN_CALL = "in_call"
    HANGING_UP = "hanging_up"  # hang-up sent, waiting for call_ended
    WRAP_UP = "wrap_up"


class Readiness(StrEnum):
    """What the agent's desks say, as the Call button shows it."""

    UNKNOWN = "unknown"  # not read yet (or the server has no GET /desks)
    NO_DESK = "no_desk"
    READY = "ready"
    BUSY = "busy"
    SOFTPHONE_MISSING = "softphone_missing"


_PHASE_OF_DESK = {"dialling": CallPhase.DIALLING, "ringing": CallPhase.RINGING, "in_call": CallPhase.IN_CALL}
LIVE_PHASES = frozenset({CallPhase.DIALLING, CallPhase.RINGING, CallPhase.IN_CALL, CallPhase.HANGING_UP})


@dataclass
class ActiveCall:
    """The call being placed or held."""

    contact: Contact
    call_id: str = ""
    desk: str = ""
    timer_from: float = 0.0
    started: bool = False  # call_started seen: the softphone took the dial string
    progress_seen: bool = False  # the desk reported ringing or in_call: it sees the call


@dataclass
class WrapUp:
    """The step after a call: the outcome (editable when the desk could not report it), the status, a note
    added to the contact's and an optional callback typed in the centre's local time."""

    call_id: str
    contact: Contact
    outcome: str
    outcome_editable: bool
    hangup_pending: bool  # the hang-up has not been sent: it goes out with the chosen outcome
    status: str
    note: str
    talk_seconds: int | None = None
    saving: bool = False
    callback: bool = False
    callback_date: str = ""
    callback_time: str = ""
    callback_scope: str = "personal"
    kept_typing: dict[str, str] | None = None
    """Panel typing the wrap-up does not save (a new name): put back in the panel after the save."""


def clock_text(seconds: float) -> str:
    """Elapsed seconds as ``mm:ss`` (``h:mm:ss`` past an hour)."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class CallViewModel:
    """The agent's desks, her call and its wrap-up; the view redraws on ``on_change`` and every second."""

    def __init__(
        self,
        api: Gateway,
        runner: Runner,
        translate: Translator,
        *,
        me: Callable[[], Me | None],
        panel: ContactPanelViewModel,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._now = now
        self._api = api
        self._runner = runner
        self.t = translate
        self._me = me
        self._panel = panel
        self._clock = clock
        self.desks: dict[tuple[str, str], DeskState] = {}
        self.desks_loaded = False
        self.phase = CallPhase.IDLE
        self.active: ActiveCall | None = None
        self.wrapup: WrapUp | None = None
        self._early: list[tuple[str, Mapping[str, Any]]] = []
        self.on_change: Callable[[], None] = lambda: None
        self.on_saved: Callable[[Contact], None] = lambda _contact: None
        self.on_wrapped: Callable[[Contact], None] = lambda _contact: None
        """Called once a wrap-up is saved (the window then offers «Siguiente»)."""
        self.sync_drafts: Callable[[], None] = lambda: None
        """Set by the view: copy what is typed in the panel into its draft (before the wrap-up reads it)."""

    # -- the desk -----------------------------------------------------------------------------------

    def refresh_desks(self) -> None:
        """Read the desks (``GET /desks``); a server without the route leaves the state unknown."""
        self._runner.submit(self._api.desks, self._got_desks, self._desks_failed)

    def _got_desks(self, desks: Any) -> None:
        self.desks = {desk.key: desk for desk in desks if desk.state != "offline"}
        self.desks_loaded = True
        self.on_change()

    def _desks_failed(self, _exc: Exception) -> None:
        self.desks_loaded = False  # the Call button still works; the server's answer will say what is wrong
        self.on_change()

    def _is_mine(self, desk: DeskState) -> bool:
        me = self._me()
        return me is not None and (me.is_me(desk.user_id) or me.is_me(desk.username))

    def my_desks(self) -> list[DeskState]:
        """The logged-in user's connected desks, by name."""
        return sorted((d for d in self.desks.values() if self._is_mine(d)), key=lambda d: d.desk)

    @property
    def readiness(self) -> Readiness:
        """No desk, ready, busy, or a desk without its softphone."""
        mine = self.my_desks()
        if not mine:
            return Readiness.NO_DESK if self.desks_loaded and self._me() is not None else Readiness.UNKNOWN
        if any(d.state == "ready" for d in mine):
            return Readiness.READY
        if any(d.busy for d in mine):
            return Readiness.BUSY
        return Readiness.SOFTPHONE_MISSING

    def _desk_name(self) -> str:
        mine = self.my_desks()
        ready = [d for d in mine if d.state == "ready"]
        return (ready or mine)[0].desk if mine else ""

    @property
    def desk_text(self) -> str:
        """The line beside the Call button: which desk, and what it is doing or how to start it."""
        readiness = self.readiness
        if readiness is Readiness.UNKNOWN:
            return ""
        if readiness is Readiness.NO_DESK:
            return self.t("desk.none")
        desk = self._desk_name()
        if readiness is Readiness.READY:
            return self.t("desk.ready", desk=desk)
        if readiness is Readiness.BUSY:
            state = next(d.state for d in self.my_desks() if d.busy)
            return self.t("desk.busy", desk=desk, state=self.t(f"desk_state.{state}"))
        return self.t("desk.softphone_missing", desk=desk)

    @property
    def desk_kind(self) -> MessageKind:
        """How the desk line is coloured."""
        readiness = self.readiness
        if readiness in (Readiness.READY, Readiness.UNKNOWN):
            return MessageKind.INFO
        return MessageKind.ERROR if readiness is Readiness.NO_DESK else MessageKind.WARNING

    @property
    def call_text(self) -> str:
        """The Call button's text: it says when there is no desk or it is busy."""
        if self.phase is CallPhase.WRAP_UP:
            return self.t("call.button_wrapup")
        if self.phase is not CallPhase.IDLE:
            return self.t("call.button_in_call")
        if self._panel.dnc:
            return self.t("call.button_dnc")
        readiness = self.readiness
        if readiness is Readiness.NO_DESK:
            return self.t("call.button_no_desk")
        if readiness is Readiness.BUSY:
            return self.t("call.button_busy")
        return self.t("panel.call")

    @property
    def can_call(self) -> bool:
        """Whether Llamar is offered (not during a call or its wrap-up, nor while the desk is busy)."""
        return self.phase is CallPhase.IDLE and self.readiness is not Readiness.BUSY and not self._panel.dnc

    # -- the call -----------------------------------------------------------------------------------

    @property
    def phase_text(self) -> str:
        """``Marcando…``, ``Sonando…``, ``En llamada``, ``Colgando…`` ("" when idle or wrapping up)."""
        if self.phase in (CallPhase.IDLE, CallPhase.WRAP_UP) or self.active is None:
            return ""
        text = self.t(f"call.phase.{self.phase.value}")
        shown = self._panel.contact
        if shown is None or shown.id != self.active.contact.id:
            contact = self.active.contact
            return f"{text} · {contact.name or contact.display_phone}"  # the panel shows someone else
        return text

    def timer_text(self) -> str:
        """The running time of the current phase group: since the request, then since the answer."""
        if self.active is None or self.phase not in (*LIVE_PHASES, CallPhase.REQUESTING):
            return ""
        return clock_text(self._clock() - self.active.timer_from)

    @property
    def can_hangup(self) -> bool:
        """Whether Colgar is offered: a call the desk took and that has not been hung up yet."""
        return self.active is not None and bool(self.active.call_id) and self.phase in _PHASE_OF_DESK.values()

    def call(self, contact: Contact | None = None) -> None:
        """Have my desk dial ``contact`` (the open one by default)."""
        contact = contact or self._panel.contact
        if contact is None:
            return
        if self.phase is CallPhase.WRAP_UP:
            self._panel.notify(self.t("call.finish_wrapup"), MessageKind.WARNING)
            return
        if self.phase is not CallPhase.IDLE:
            self._panel.notify(self.t("call.already"), MessageKind.WARNING)
            return
        if self._panel.dnc and self._panel.contact is not None and self._panel.contact.id == contact.id:
            self._panel.notify(self.t("dnc.refused", reason=self._panel.dnc), MessageKind.ERROR)
            return
        self.phase = CallPhase.REQUESTING
        self.active = ActiveCall(contact=contact, timer_from=self._clock())
        self._early = []
        self.on_change()
        self._runner.submit(lambda: self._api.call(contact.id), self._placed, self._call_failed)

    def _placed(self, answer: CallRequest) -> None:
        active = self.active
        if active is None:
            return
        if not answer.desk_connected:
            self._reset()
            self._panel.notify(self.t("call.sent_no_desk"), MessageKind.WARNING)
            return
        active.call_id = answer.call_id
        active.desk = answer.desk
        self.phase = CallPhase.DIALLING
        self._panel.notify(
            self.t(
                "call.sent", desk=answer.desk or self._desk_name() or "?", number=active.contact.display_phone
            )
        )
        early, self._early = self._early, []
        for name, payload in early:
            self.apply(name, payload)
        self.on_change()

    def _call_failed(self, exc: Exception) -> None:
        contact = self.active.contact if self.active is not None else None
        self._reset()
        if isinstance(exc, DoNotCall):
            if contact is not None:
                self._panel.mark_dnc(contact.id, exc.message)
            self._panel.notify(self.t("dnc.refused", reason=exc.message), MessageKind.ERROR)
        elif isinstance(exc, NoDesk):
            self._panel.notify(self.t("call.no_desk"), MessageKind.WARNING)
        elif isinstance(exc, LockedByOther):
            self._panel.notify(
                self.t("call.locked", owner=exc.owner or "?", until=local_time(exc.locked_until)),
                MessageKind.WARNING,
            )
        else:
            self._panel.notify(_text(exc), MessageKind.ERROR)

    def _reset(self) -> None:
        self.phase = CallPhase.IDLE
        self.active = None
        self.wrapup = None
        self._early = []
        self.on_change()

    def hangup(self) -> None:
        """Colgar: a desk that sees the call is told to hang up now; for one that cannot, the wrap-up opens
        and the hang-up goes with the outcome the agent picks there."""
        active = self.active
        if active is None or not self.can_hangup:
            return
        if active.started and not active.progress_seen:
            self._start_wrapup(outcome="answered", editable=True, hangup_pending=True)
            return
        outcome = None if active.started else "cancelled"
        call_id = active.call_id
        previous = self.phase
        self.phase = CallPhase.HANGING_UP
        self.on_change()

        def failed(exc: Exception) -> None:
            if self.phase is CallPhase.HANGING_UP and self.active is active:
                self.phase = previous
                self.on_change()
            self._panel.notify(self.t("call.hangup_failed", message=_text(exc)), MessageKind.ERROR)

        self._runner.submit(lambda: self._api.hangup(call_id, outcome), lambda _none: None, failed)

    # -- live events --------------------------------------------------------------------------------

    def apply(self, name: str, payload: Mapping[str, Any]) -> None:
        """Follow ``desk_state`` and the call notices that concern me."""
        if name == "desk_state":
            self._desk_state(payload)
        elif name in CALL_EVENTS:
            self._call_event(name, payload)

    def _desk_state(self, payload: Mapping[str, Any]) -> None:
        desk = DeskState.from_json(payload)
        if desk.state == "offline":
            self.desks.pop(desk.key, None)
        else:
            self.desks[desk.key] = desk
        if self._is_mine(desk):
            self.desks_loaded = True
        active = self.active
        if active is not None and self._is_mine(desk):
            if desk.state == "offline" and desk.desk == active.desk and self.phase in LIVE_PHASES:
                self._panel.notify(self.t("call.desk_lost"), MessageKind.WARNING)
            elif desk.call_id and not active.call_id:
                self._keep_early("desk_state", payload)
            elif desk.call_id and desk.call_id == active.call_id:
                self._progress(active, desk.state)
        self.on_change()

    def _progress(self, active: ActiveCall, state: str) -> None:
        phase = _PHASE_OF_DESK.get(state)
        if phase is None or self.phase not in _PHASE_OF_DESK.values():
            return
        if phase is not CallPhase.DIALLING:
            active.progress_seen = True
        if phase is CallPhase.IN_CALL and self.phase is not CallPhase.IN_CALL:
            active.timer_from = self._clock()
        self.phase = phase

    def _call_event(self, name: str, payload: Mapping[str, Any]) -> None:
        call_id = str(payload.get("call_id") or "")
        active = self.active
        if active is not None and not active.call_id:
            if str(payload.get("id") or "") == active.contact.id:
                self._keep_early(name, payload)
            return
        if active is None or not call_id or call_id != active.call_id:
            wrap = self.wrapup
            if name == "call_ended" and wrap is not None and call_id == wrap.call_id:
                self._ended_during_wrapup(wrap, payload)
            return
        if name == "call_started":
            active.started = True
            if self.phase is CallPhase.DIALLING and not active.progress_seen:
                # A softphone that reports no progress: from here on the call is under way.
                self.phase = CallPhase.IN_CALL
                active.timer_from = self._clock()
            self.on_change()
        elif name == "call_ended":
            outcome = str(payload.get("outcome") or "")
            self._start_wrapup(outcome=outcome or "answered", editable=False, hangup_pending=False)
            self._set_talk(payload)

    def _keep_early(self, name: str, payload: Mapping[str, Any]) -> None:
        """An event about my call that came before the gateway's answer named it: replayed after."""
        self._early = [*self._early, (name, payload)][-EARLY_EVENTS_KEPT:]

    def _ended_during_wrapup(self, wrap: WrapUp, payload: Mapping[str, Any]) -> None:
        outcome = str(payload.get("outcome") or "")
        if outcome and not wrap.hangup_pending:
            wrap.outcome = outcome
            wrap.outcome_editable = False
        elif outcome and wrap.hangup_pending:
            # The call ended on its own (the desk or the server's timeout): nothing left to hang up.
            wrap.outcome = outcome
            wrap.outcome_editable = False
            wrap.hangup_pending = False
        self._set_talk(payload)
        self.on_change()

    def _set_talk(self, payload: Mapping[str, Any]) -> None:
        talk = payload.get("talk_seconds")
        if self.wrapup is not None and isinstance(talk, int) and not isinstance(talk, bool):
            self.wrapup.talk_seconds = talk
            self.on_change()

    # -- wrap-up ------------------------------------------------------------------------------------

    def _start_wrapup(self, *, outcome: str, editable: bool, hangup_pending: bool) -> None:
        active = self.active
        assert active is not None
        self.sync_drafts()
        contact = self._latest(active.contact)
        draft = self._panel.draft if self._panel.contact and self._panel.contact.id == contact.id else {}
        typed_note = draft.get("note", contact.note)
        kept: dict[str, str] = {}
        # The server adds the wrap-up's note to the contact's: what she added during the call, or all she
        # typed when she rewrote the note (the old text stays on the server, nothing typed is lost).
        if typed_note.startswith(contact.note):
            note = typed_note[len(contact.note) :].strip()
        else:
            note = typed_note.strip()
        if draft.get("name", contact.name) != contact.name:
            kept["name"] = draft["name"]
        due_date, due_time = local_parts(self._now() + timedelta(days=1))
        self.wrapup = WrapUp(
            call_id=active.call_id,
            contact=contact,
            outcome=outcome if outcome in OUTCOMES else "answered",
            outcome_editable=editable,
            hangup_pending=hangup_pending,
            status=draft.get("status", contact.status),
            note=note,
            callback_date=due_date,
            callback_time=due_time,
            kept_typing=kept or None,
        )
        self.phase = CallPhase.WRAP_UP
        self.on_change()

    def _latest(self, contact: Contact) -> Contact:
        """The freshest copy of ``contact`` known (the panel keeps its version current)."""
        shown = self._panel.contact
        return shown if shown is not None and shown.id == contact.id else contact

    @property
    def wrapup_title(self) -> str:
        """``Cierre de la llamada con Ana (03:12)``."""
        wrap = self.wrapup
        if wrap is None:
            return ""
        name = wrap.contact.name or wrap.contact.display_phone
        if wrap.talk_seconds is None:
            return self.t("wrapup.title", name=name)
        return self.t("wrapup.title_talk", name=name, talk=clock_text(wrap.talk_seconds))

    @property
    def wrapup_hint(self) -> str:
        """Why the outcome may be chosen, or that it came from the desk."""
        wrap = self.wrapup
        if wrap is None:
            return ""
        return self.t("wrapup.choose_outcome" if wrap.outcome_editable else "wrapup.reported_outcome")

    @property
    def wrapup_button(self) -> str:
        """``Guardar cierre``, or ``Colgar y guardar`` when the hang-up still has to go out."""
        wrap = self.wrapup
        return self.t("wrapup.hangup_and_save" if wrap and wrap.hangup_pending else "wrapup.save")

    def outcome_label(self, outcome: str) -> str:
        """An outcome as shown (``contestada``)."""
        return self.t(f"value.{outcome}")

    def set_wrapup(self, field: str, value: str) -> None:
        """The agent changed the outcome (when editable), the status, the note or the callback (``callback``
        ``"1"``/``""``, ``callback_date`` ``dd/mm/aaaa``, ``callback_time`` ``HH:MM``, ``callback_scope``)."""
        wrap = self.wrapup
        if wrap is None:
            return
        if field == "outcome" and wrap.outcome_editable and value in OUTCOMES:
            wrap.outcome = value
        elif field == "status":
            wrap.status = value
        elif field == "note":
            wrap.note = value
        elif field == "callback":
            wrap.callback = bool(value)
        elif field == "callback_date":
            wrap.callback_date = value
        elif field == "callback_time":
            wrap.callback_time = value
        elif field == "callback_scope" and value in CALLBACK_SCOPES:
            wrap.callback_scope = value

    def scope_label(self, scope: str) -> str:
        """``Personal (solo yo)`` or ``Compartida (cualquiera)``."""
        return self.t(f"callback.scope.{scope}")

    def save_wrapup(self) -> None:
        """Send the hang-up with the outcome when still due, then the status and note (``PUT``, If-Match)."""
        wrap = self.wrapup
        if wrap is None or wrap.saving:
            return
        try:
            callback_at = (
                parse_local(wrap.callback_date, wrap.callback_time, self._now()) if wrap.callback else None
            )
        except BadTime as exc:
            self._panel.notify(str(exc), MessageKind.WARNING)
            return
        wrap.saving = True
        self.on_change()
        if not wrap.hangup_pending:
            self._save_disposition(wrap, callback_at)
            return
        outcome = wrap.outcome

        def hung_up(_none: None) -> None:
            wrap.hangup_pending = False
            wrap.outcome_editable = False
            self._save_disposition(wrap, callback_at)

        self._runner.submit(
            lambda: self._api.hangup(wrap.call_id, outcome),
            hung_up,
            lambda exc: self._wrapup_failed(wrap, self.t("call.hangup_failed", message=_text(exc))),
        )

    def _save_disposition(self, wrap: WrapUp, callback_at: datetime | None) -> None:
        """Outcome, status, note and callback in one request; the server appends the note and releases the
        lock. A server without the route (404 without a code) gets the fields by ``PUT`` instead."""
        contact = self._latest(wrap.contact)
        body = Disposition(
            outcome=wrap.outcome,
            status=wrap.status if wrap.status != contact.status else None,
            note=wrap.note.strip(),
            callback_at=callback_at,
            callback_scope=wrap.callback_scope,
        )

        def failed(exc: Exception) -> None:
            if isinstance(exc, NotFound) and exc.code in ("", "http_404") and callback_at is None:
                self._save_fields(wrap)
                return
            self._save_failed(wrap, contact, exc, retry=False)

        self._runner.submit(lambda: self._api.disposition(contact.id, body), self._finished, failed)

    def _save_fields(self, wrap: WrapUp, *, retry: bool = True) -> None:
        contact = self._latest(wrap.contact)
        added = wrap.note.strip()
        note = f"{contact.note.rstrip()}\n{added}".strip() if added else contact.note
        changes = {
            field: value
            for field, value in (("status", wrap.status), ("note", note))
            if value != getattr(contact, field)
        }
        if not changes:
            self._finished(contact)
            return
        self._runner.submit(
            lambda: self._api.update_contact(contact.id, changes, contact.version or None),
            self._finished,
            lambda exc: self._save_failed(wrap, contact, exc, retry=retry),
        )

    def _finished(self, contact: Contact) -> None:
        kept = self.wrapup.kept_typing if self.wrapup is not None else None
        self._panel.accept(contact)
        if kept:
            self._panel.restore_typing(kept)
        self.on_saved(contact)
        self._reset()
        self._panel.notify(self.t("wrapup.saved_next"))
        self.on_wrapped(contact)

    def _save_failed(self, wrap: WrapUp, contact: Contact, exc: Exception, *, retry: bool = False) -> None:
        if isinstance(exc, PreconditionFailed):
            # The version moved: read it. When no field changed (only the call's own steps or a lock
            # moved it on) save again with the new version; when someone changed a field, keep what the
            # agent typed and let her review and save again.
            def reread(fresh: Contact) -> None:
                wrap.contact = fresh
                self._panel.accept(fresh, keep_draft=True)
                if retry and all(getattr(fresh, f) == getattr(contact, f) for f in EDITABLE):
                    self._save_fields(wrap, retry=False)
                    return
                self._wrapup_failed(wrap, self.t("wrapup.stale"))

            self._runner.submit(
                lambda: self._api.get_contact(contact.id),
                reread,
                lambda again: self._wrapup_failed(wrap, _text(again)),
            )
            return
        if isinstance(exc, NotFound):
            self._reset()
            self._panel.notify(self.t("panel.deleted"), MessageKind.WARNING)
            return
        if isinstance(exc, LockedByOther):
            text = self.t("call.locked_save", owner=exc.owner or "?", until=local_time(exc.locked_until))
            self._wrapup_failed(wrap, text)
            return
        if isinstance(exc, Conflict):
            # A transition the role may not make, a closed contact...: what she typed stays for a retry.
            self._wrapup_failed(wrap, self.t("wrapup.refused", message=_text(exc)))
            return
        self._wrapup_failed(wrap, _text(exc))

    def _wrapup_failed(self, wrap: WrapUp, text: str) -> None:
        wrap.saving = False
        self.on_change()
        self._panel.notify(text, MessageKind.WARNING)


def _text(exc: Exception) -> str:
    return error_text(exc)
