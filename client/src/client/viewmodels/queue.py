"""«Siguiente»: ask the work queue for my next contact (Socket.IO ``queue_next``, else ``POST /queue/next``),
open it locked in the panel and say why it was chosen; an empty queue says why and until when. A contact the
queue gave that is still open and locked to me when I ask again was skipped: its lock is released."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from client.api import ApiError, Gateway, QueueEmpty, ServerError, error_text
from client.dispatch import Runner
from client.i18n import Translator
from client.live import NotConnected
from client.models import Claim, parse_time
from client.viewmodels.panel import ContactPanelViewModel, LockState, MessageKind, local_time

LiveRequest = Callable[[Mapping[str, Any]], Any]
"""Sends ``queue_next`` over the live connection and returns its ack; raises ``NotConnected``."""

REASONS = ("callback_due", "never_tried", "retry_due")
"""The reasons the queue gives for a contact it offers (each has a Spanish text)."""


def claim_from_ack(ack: Any) -> Claim:
    """The claim in a ``queue_next`` ack; the typed error for an ack ``{"error", "message", "until"}``."""
    if not isinstance(ack, Mapping):
        raise ServerError("El servidor respondió a «Siguiente» algo que no se entiende.")
    error = ack.get("error")
    if error:
        code = str(error.get("code") if isinstance(error, Mapping) else error)
        message = str(
            ack.get("message") or (error.get("message") if isinstance(error, Mapping) else "") or ""
        )
        if code == "queue_empty":
            raise QueueEmpty(message, until=parse_time(ack.get("until")))
        raise ApiError(message, code=code)
    try:
        return Claim.from_json(ack)
    except ValueError as exc:
        raise ServerError("El servidor dio un siguiente contacto sin sus datos.") from exc


class NextContactViewModel:
    """One «Siguiente» at a time; the panel shows the contact and the reason (or why the queue is empty)."""

    def __init__(
        self,
        api: Gateway,
        runner: Runner,
        translate: Translator,
        *,
        panel: ContactPanelViewModel,
        live: LiveRequest | None = None,
        blocked: Callable[[], str] = lambda: "",
    ) -> None:
        self._api = api
        self._runner = runner
        self.t = translate
        self._panel = panel
        self._live = live
        self._blocked = blocked
        self.busy = False
        self.last: Claim | None = None
        self.empty_text = ""
        self.via_socket = False
        """Whether the last answer came over the live connection (else over HTTP)."""
        self.on_change: Callable[[], None] = lambda: None
        self.on_opened: Callable[[Claim], None] = lambda _claim: None

    def refused(self) -> bool:
        """Whether «Siguiente» must wait (a call or its wrap-up is open); the panel then says why."""
        reason = self._blocked()
        if reason:
            self._panel.notify(reason, MessageKind.WARNING)
        return bool(reason)

    def next(self) -> None:
        """Ask for the next contact (the view has already run the unsaved-typing prompt)."""
        if self.busy or self.refused():
            return
        self.busy = True
        self.empty_text = ""
        self.on_change()
        skipped = self._skippable()
        self._runner.submit(self._ask, lambda answer: self._got(answer, skipped), self._failed)

    def _skippable(self) -> str | None:
        """The contact the queue gave last, when it is still open and locked to me: it was skipped (a wrap-up
        would have released it), so it is released once the next one comes."""
        last, shown = self.last, self._panel.contact
        if last is None or shown is None or shown.id != last.contact.id:
            return None
        return shown.id if self._panel.lock_state() is LockState.MINE else None

    def _ask(self) -> tuple[Claim, bool]:
        """The claim, and whether it came over the live connection (when it is up) rather than HTTP."""
        if self._live is not None:
            try:
                ack = self._live({})
            except NotConnected:
                pass
            else:
                return claim_from_ack(ack), True
        return self._api.next_contact(), False

    def reason_text(self, claim: Claim) -> str:
        """Why the queue chose it, in the server's words (ours when it sent none):
        ``Siguiente de «General»: Nunca se ha llamado (intentos: 0).``."""
        key = f"queue.reason.{claim.reason}"
        why = claim.message.strip().rstrip(".") or (self.t(key) if self.t.has(key) else claim.reason)
        return self.t("queue.chosen", campaign=claim.campaign or "?", why=why, attempts=claim.attempts)

    def _got(self, answer: tuple[Claim, bool], skipped: str | None) -> None:
        claim, self.via_socket = answer
        self.busy = False
        self.last = claim
        if skipped is not None and skipped != claim.contact.id:
            # Released for the next agent; a lock that already lapsed or was released answers an error
            # that changes nothing here.
            self._runner.submit(lambda: self._api.unlock(skipped), lambda _c: None, lambda _exc: None)
        self._panel.open(claim.contact)
        self._panel.notify(self.reason_text(claim))
        self.on_opened(claim)
        self.on_change()

    def _failed(self, exc: Exception) -> None:
        self.busy = False
        if isinstance(exc, QueueEmpty):
            until = self.t("queue.until", until=local_time(exc.until)) if exc.until else ""
            self.empty_text = self.t("queue.empty", why=exc.message, until=until).strip()
            self._panel.notify(self.empty_text, MessageKind.WARNING)
        else:
            self._panel.notify(self.t("queue.failed", message=error_text(exc)), MessageKind.ERROR)
        self.on_change()
