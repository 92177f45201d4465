"""The desk loop: dial and hangup requests, softphone states and timeouts, handled one at a time.

Socket.IO handlers and the softphone's reader only enqueue; one thread decides, drives the softphone
and writes reports to the outbox (the Reporter delivers them). One call at a time.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import structlog

from dialer_agent.dialstring import InvalidDialRequest, dial_string_of_request
from dialer_agent.outcome import ANSWERED, CANCELLED, FAILED, OUTCOMES, CallProgress, CallResult
from dialer_agent.reporter import Reporter
from dialer_agent.softphone import CallEvent, CallState, Softphone, SoftphoneError, SoftphoneUnavailable
from dialer_agent.status import OUTCOME_LABELS, DeskStatus, StatusView

log = structlog.get_logger(__name__)

READY = "ready"
DIALLING = "dialling"
RINGING = "ringing"
IN_CALL = "in_call"
SOFTPHONE_MISSING = "softphone_missing"

BUSY_REASON = "puesto ocupado"
TOO_LONG_REASON = "la llamada superó la duración máxima sin terminar"
CLOSE_GRACE_SECONDS = 5.0


@dataclass
class ActiveCall:
    """The call the desk is making."""

    call_id: str
    contact_id: Any
    number: str
    progress: CallProgress
    no_answer_at: float | None
    ref: str = ""
    hangup_sent_at: float | None = None
    outcome_hint: str | None = None


@dataclass(frozen=True, slots=True)
class _Input:
    kind: str
    payload: Any = None


class Agent:
    """Decides what the desk does; ``run`` processes inputs until ``stop``."""

    def __init__(
        self,
        *,
        desk: str,
        softphone: Softphone,
        reporter: Reporter,
        send_state: Callable[[dict[str, Any]], None],
        view: StatusView,
        prefix: str = "",
        no_answer_seconds: float = 30.0,
        max_call_seconds: float = 4 * 3600.0,
        check_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.desk = desk
        self._softphone = softphone
        self._reporter = reporter
        self._send_state = send_state
        self._view = view
        self._prefix = prefix
        self._no_answer = no_answer_seconds
        self._max_call = max_call_seconds
        self._check_seconds = check_seconds
        self._clock = clock
        self._inputs: queue.Queue[_Input] = queue.Queue()
        self._call: ActiveCall | None = None
        self._status = DeskStatus(desk=desk, state=READY, connected=False)
        self._next_check = 0.0
        self._stopping = threading.Event()
        softphone.watch(self.on_call_event)

    @property
    def status(self) -> DeskStatus:
        """The desk's current status."""
        return self._status

    # Inputs, from any thread.

    def on_dial(self, payload: Any) -> None:
        """A ``dial`` request from the gateway."""
        self._inputs.put(_Input("dial", payload))

    def on_hangup(self, payload: Any) -> None:
        """A ``hangup`` request from the gateway."""
        self._inputs.put(_Input("hangup", payload))

    def on_call_event(self, event: CallEvent) -> None:
        """A call state from the softphone."""
        self._inputs.put(_Input("call", event))

    def on_connected(self) -> None:
        """The gateway connection is up: resend the desk state and pending reports."""
        self._reporter.connected()
        self._inputs.put(_Input("connected"))

    def on_disconnected(self) -> None:
        """The gateway connection dropped."""
        self._reporter.disconnected()
        self._inputs.put(_Input("disconnected"))

    def stop(self) -> None:
        """Make ``run`` return."""
        self._stopping.set()
        self._inputs.put(_Input("stop"))

    # The loop.

    def run(self) -> None:
        """Handle inputs and timeouts until ``stop``."""
        self._view.show(self._status)
        while not self._stopping.is_set():
            try:
                item = self._inputs.get(timeout=self._wait_seconds())
            except queue.Empty:
                item = _Input("tick")
            try:
                self._handle(item)
            except Exception:  # one bad input must not stop the desk
                log.exception("agent.input_failed", kind=item.kind)
        if self._call is not None:
            self._safe_hangup()

    def _wait_seconds(self) -> float:
        now = self._clock()
        waits = [max(0.0, self._next_check - now) if self._call is None else self._check_seconds]
        call = self._call
        if call is not None:
            waits.append(max(0.0, call.progress.dialled_at + self._max_call - now))
        if call is not None and call.no_answer_at is not None and call.hangup_sent_at is None:
            waits.append(max(0.0, call.no_answer_at - now))
        if call is not None and call.hangup_sent_at is not None:
            waits.append(max(0.0, call.hangup_sent_at + CLOSE_GRACE_SECONDS - now))
        return max(0.01, min(waits))

    def _handle(self, item: _Input) -> None:
        if item.kind == "dial":
            self._dial(item.payload)
        elif item.kind == "hangup":
            self._hangup(item.payload)
        elif item.kind == "call":
            self._call_event(item.payload)
        elif item.kind == "connected":
            self._set_status(connected=True)
            self._publish_state()
        elif item.kind == "disconnected":
            self._set_status(connected=False)
        self._timeouts()

    def _dial(self, payload: Any) -> None:
        if not isinstance(payload, dict) or not payload.get("call_id"):
            log.warning("dial.malformed", payload=payload)
            return
        call_id = str(payload["call_id"])
        contact_id = payload.get("contact_id")
        target_desk = payload.get("desk")
        if target_desk and str(target_desk) != self.desk:
            log.info("dial.other_desk", call_id=call_id, desk=target_desk)
            return
        if self._call is not None:
            if self._call.call_id == call_id:
                return  # the same request delivered twice
            log.warning("dial.busy", call_id=call_id, current=self._call.call_id)
            self._report_end(call_id, contact_id, CallResult(FAILED, 0, 0, BUSY_REASON))
            return
        try:
            number = dial_string_of_request(payload.get("phone_e164"), payload.get("dial"), self._prefix)
        except InvalidDialRequest as exc:
            self._report_end(call_id, contact_id, CallResult(FAILED, 0, 0, str(exc)))
            return
        self._set_state(DIALLING, call_id=call_id, contact_id=contact_id, number=number)
        started = self._clock()
        try:
            self._softphone.dial(number)
        except SoftphoneError as exc:
            log.warning("dial.refused", call_id=call_id, error=str(exc))
            self._report_end(call_id, contact_id, CallResult(FAILED, 0, 0, str(exc)))
            missing = isinstance(exc, SoftphoneUnavailable)
            self._set_state(SOFTPHONE_MISSING if missing else READY, detail=str(exc) if missing else "")
            return
        progress = CallProgress(dialled_at=started)
        no_answer_at = started + self._no_answer if self._softphone.reports_progress else None
        self._call = ActiveCall(call_id, contact_id, number, progress, no_answer_at)
        self._reporter.report("call_started", {"id": contact_id, "call_id": call_id})
        if not self._softphone.reports_progress:
            self._set_state(IN_CALL, call_id=call_id, contact_id=contact_id, number=number)

    def _hangup(self, payload: Any) -> None:
        call = self._call
        if not isinstance(payload, dict) or call is None or str(payload.get("call_id")) != call.call_id:
            log.info("hangup.not_current", payload=payload)
            return
        hint = payload.get("outcome")
        call.outcome_hint = hint if hint in OUTCOMES else None
        if not self._softphone.reports_progress:
            self._safe_hangup()
            self._finish(self._reported_result(call))
            return
        if call.progress.established_at is None:
            call.progress.hung_up_by_agent = True
        call.hangup_sent_at = self._clock()
        if not self._safe_hangup():
            call.progress.closed_at = self._clock()
            self._finish(call.progress.result(self._clock()))

    def _call_event(self, event: CallEvent) -> None:
        call = self._call
        if call is None or not self._softphone.reports_progress:
            log.debug("softphone.event_ignored", state=event.state.value, reason=event.reason)
            return
        if event.ref:
            if not call.ref:
                call.ref = event.ref
            elif event.ref != call.ref:
                log.info("softphone.other_call", ref=event.ref)
                return
        call.progress.record(event, self._clock())
        if event.state is CallState.RINGING and call.progress.established_at is None:
            self._set_state(RINGING)
        elif event.state is CallState.ESTABLISHED:
            self._set_state(IN_CALL)
        elif event.state is CallState.CLOSED:
            self._finish(call.progress.result(self._clock()))

    def _timeouts(self) -> None:
        now = self._clock()
        call = self._call
        if call is None:
            if now >= self._next_check:
                self._next_check = now + self._check_seconds
                self._refresh_softphone()
            return
        progress = call.progress
        if now >= progress.dialled_at + self._max_call and call.hangup_sent_at is None:
            log.warning("call.too_long", call_id=call.call_id)
            self._safe_hangup()
            self._finish(replace(progress.result(now), outcome=FAILED, reason=TOO_LONG_REASON))
            return
        if (
            call.no_answer_at is not None
            and now >= call.no_answer_at
            and progress.established_at is None
            and call.hangup_sent_at is None
        ):
            log.info("call.no_answer_timeout", call_id=call.call_id)
            progress.timed_out = True
            call.hangup_sent_at = now
            if not self._safe_hangup():
                progress.closed_at = now
                self._finish(progress.result(now))
                return
        if call.hangup_sent_at is not None and now >= call.hangup_sent_at + CLOSE_GRACE_SECONDS:
            log.warning("call.close_not_seen", call_id=call.call_id)
            progress.closed_at = now
            self._finish(progress.result(now))

    def _reported_result(self, call: ActiveCall) -> CallResult:
        elapsed = max(0, round(self._clock() - call.progress.dialled_at))
        outcome = call.outcome_hint or CANCELLED
        if outcome == ANSWERED:
            return CallResult(ANSWERED, 0, elapsed)
        return CallResult(outcome, elapsed, 0, "" if call.outcome_hint else "colgada sin resultado indicado")

    def _finish(self, result: CallResult) -> None:
        call = self._call
        if call is None:
            return
        self._call = None
        self._report_end(call.call_id, call.contact_id, result)
        label = OUTCOME_LABELS.get(result.outcome, result.outcome)
        last = f"{call.number} {label}" + (f" ({result.talk_seconds} s)" if result.talk_seconds else "")
        self._status = replace(self._status, last_call=last)
        self._next_check = 0.0
        self._set_state(READY)
        self._refresh_softphone()

    def _report_end(self, call_id: str, contact_id: Any, result: CallResult) -> None:
        payload: dict[str, Any] = {
            "id": contact_id,
            "call_id": call_id,
            "outcome": result.outcome,
            "ring_seconds": result.ring_seconds,
            "talk_seconds": result.talk_seconds,
        }
        if result.reason:
            payload["reason"] = result.reason[:500]
        log.info("call.ended", **payload)
        self._reporter.report("call_ended", payload)

    def _safe_hangup(self) -> bool:
        try:
            self._softphone.hangup()
        except SoftphoneError as exc:
            log.warning("hangup.failed", error=str(exc))
            return False
        return True

    def _refresh_softphone(self) -> None:
        problem = self._softphone.check()
        if problem is not None and self._status.state != SOFTPHONE_MISSING:
            self._set_state(SOFTPHONE_MISSING, detail=problem)
        elif problem is None and self._status.state == SOFTPHONE_MISSING:
            self._set_state(READY)

    def _set_state(
        self,
        state: str,
        *,
        call_id: str | None = None,
        contact_id: Any = None,
        number: str | None = None,
        detail: str = "",
    ) -> None:
        call = self._call
        self._status = replace(
            self._status,
            state=state,
            number=number if number is not None else (call.number if call else ""),
            detail=detail,
        )
        self._view.show(self._status)
        self._publish_state(call_id=call_id, contact_id=contact_id)

    def _set_status(self, **changes: Any) -> None:
        self._status = replace(self._status, **changes)
        self._view.show(self._status)

    def _publish_state(self, call_id: str | None = None, contact_id: Any = None) -> None:
        call = self._call
        message: dict[str, Any] = {"state": self._status.state}
        if call_id or call:
            message["call_id"] = call_id or (call.call_id if call else None)
            message["contact_id"] = contact_id if call_id else (call.contact_id if call else None)
        if self._status.detail:
            message["detail"] = self._status.detail
        self._send_state(message)
