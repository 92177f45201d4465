"""«Rellamadas»: my callbacks due today (``GET /callbacks?mine=true&due_before=<end of the local day>``),
opened with a click, rescheduled or cancelled (``PATCH``/``DELETE /callbacks/{id}``), the live
``callback_reminder`` shown as a notice that does not stop the agent's work, and the list read again when a
live ``callback_changed`` concerns it (another user rescheduled, cancelled or shared one of its callbacks)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from client.api import Gateway, NotFound, error_text
from client.centretime import BadTime, end_of_local_day, local_text, parse_local
from client.dispatch import Runner
from client.i18n import Translator
from client.models import Callback, Me, parse_time
from client.viewmodels.contacts import utcnow

COLUMNS = ("due", "name", "phone", "scope")
CHANGES = ("scheduled", "rescheduled", "cancelled", "shared")
"""What a ``callback_changed`` says happened."""
_CALLBACK_EVENTS = ("DispositionRecorded", "CallbackRescheduled", "CallbackCancelled", "CallbackShared")
"""Event types a ``bulk_update`` counts that may change the list."""


class CallbacksViewModel:
    """The agent's callbacks of today, soonest first; the view redraws on ``on_change``."""

    def __init__(
        self,
        api: Gateway,
        runner: Runner,
        translate: Translator,
        *,
        me: Callable[[], Me | None],
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._api = api
        self._runner = runner
        self.t = translate
        self._me = me
        self._now = now
        self.callbacks: list[Callback] = []
        self.loaded = False
        self.loading = False
        self._again: bool | None = None  # a read asked for while one was running: its keep_message
        # A change to a callback not shown yet (now shared, new): (callback id, message key, values); its
        # line names the contact once the list read again has it.
        self._unnamed: tuple[str, str, dict[str, str]] | None = None
        self.message = ""
        self.error = False
        self.reminder = ""
        """The last reminder's text (the main window also shows it in its status bar)."""
        self.on_change: Callable[[], None] = lambda: None
        self.on_reminder: Callable[[str], None] = lambda _text: None
        self.open_contact: Callable[[str], None] = lambda _contact_id: None

    def refresh(self, *, keep_message: bool = False) -> None:
        """Read my callbacks due before the end of today (local time); ``keep_message`` leaves the line that
        says what was just done (rescheduled, cancelled) instead of the count."""
        if self.loading:
            # The read under way may predate the change that asked for this one: read again after it.
            self._again = keep_message if self._again is None else self._again and keep_message
            return
        self.loading = True
        due_before = end_of_local_day(self._now())
        self._runner.submit(
            lambda: self._api.callbacks(due_before),
            lambda found: self._got(found, keep_message),
            self._failed,
        )

    def _got(self, callbacks: Sequence[Callback], keep_message: bool) -> None:
        self.loading = False
        self.loaded = True
        self.callbacks = sorted(callbacks, key=lambda c: (c.due_at is None, c.due_at or self._now()))
        if self._unnamed is not None and self._again is None:  # the read that follows the change
            callback_id, key, values = self._unnamed
            self._unnamed = None
            arrived = self.find(callback_id)
            if arrived is not None:
                self.message = self.t(key, **values, name=arrived.name or arrived.display_phone)
        if not keep_message and not self._again:  # a change said while this read ran keeps its line
            self.error = False
            self.message = (
                self.t.plural("callbacks.count", len(self.callbacks), count=len(self.callbacks))
                if self.callbacks
                else self.t("callbacks.none")
            )
        self.on_change()
        self._read_again()

    def _failed(self, exc: Exception) -> None:
        self.loading = False
        self._say(self.t("callbacks.failed", message=error_text(exc)), error=True)
        self._read_again()

    def _read_again(self) -> None:
        again, self._again = self._again, None
        if again is not None:
            self.refresh(keep_message=again)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message = text
        self.error = error
        self.on_change()

    def rows(self) -> list[tuple[str, str, str, str]]:
        """One row per callback in ``COLUMNS`` order: local due time (``vencida`` when past), name, phone,
        scope."""
        now = self._now()
        rows = []
        for callback in self.callbacks:
            due = local_text(callback.due_at)
            if callback.due_at is not None and callback.due_at <= now:
                due = self.t("callbacks.overdue", due=due)
            scope = self.t(f"callback.scope.{callback.scope}")
            rows.append((due, callback.name or "—", callback.display_phone, scope))
        return rows

    def find(self, callback_id: str) -> Callback | None:
        """The callback with this id (as ``Callback.id``)."""
        return next((c for c in self.callbacks if c.id == callback_id), None)

    def open(self, callback_id: str) -> None:
        """Open the callback's contact in the panel (the window runs the unsaved-typing prompt first)."""
        callback = self.find(callback_id)
        if callback is not None:
            self.open_contact(callback.contact_id)

    def reschedule(self, callback_id: str, date_text: str, time_text: str, scope: str | None = None) -> None:
        """Move a callback to ``dd/mm/aaaa`` ``HH:MM`` (local), and/or change who may take it."""
        callback = self.find(callback_id)
        if callback is None:
            return
        try:
            due = parse_local(date_text, time_text, self._now())
        except BadTime as exc:
            self._say(str(exc), error=True)
            return
        chosen = scope if scope in ("personal", "shared") else None

        def done(_none: None) -> None:
            self._say(self.t("callbacks.rescheduled", due=local_text(due)))
            self.refresh(keep_message=True)

        self._runner.submit(
            lambda: self._api.reschedule_callback(callback.id, due, chosen), done, self._change_failed
        )

    def cancel(self, callback_id: str) -> None:
        """Cancel a callback (the window asked for confirmation)."""
        callback = self.find(callback_id)
        if callback is None:
            return

        def done(_none: None) -> None:
            self.callbacks = [c for c in self.callbacks if c.id != callback_id]
            self._say(self.t("callbacks.cancelled", name=callback.name or callback.display_phone))
            self.refresh(keep_message=True)

        self._runner.submit(lambda: self._api.cancel_callback(callback.id), done, self._change_failed)

    def _change_failed(self, exc: Exception) -> None:
        if isinstance(exc, NotFound):
            self._say(self.t("callbacks.gone"), error=True)
            self.refresh(keep_message=True)
            return
        self._say(self.t("callbacks.failed", message=error_text(exc)), error=True)

    def apply(self, name: str, payload: Mapping[str, Any]) -> None:
        """A live ``callback_reminder`` for me: a notice (never a dialog), and the list read again; a
        ``callback_changed`` (or a ``bulk_update`` counting callback events) that concerns the list read:
        the list read again, saying who changed what."""
        if name == "callback_changed":
            self._changed(payload)
            return
        if name == "bulk_update":
            counted = payload.get("by_type")
            if self.loaded and isinstance(counted, Mapping) and any(t in counted for t in _CALLBACK_EVENTS):
                self.refresh()
            return
        if name != "callback_reminder":
            return
        me = self._me()
        user = str(payload.get("user_id") or "")
        if user and me is not None and not me.is_me(user) and payload.get("scope") != "shared":
            return
        callback = Callback.from_json(payload)
        self.reminder = self.t(
            "callbacks.reminder",
            due=local_text(callback.due_at),
            name=callback.name or "—",
            phone=callback.display_phone,
        )
        self.on_reminder(self.reminder)
        self.refresh()

    def _changed(self, payload: Mapping[str, Any]) -> None:
        """Another user's (or the schedule's) change to a callback this list shows or should show."""
        if not self.loaded:
            return  # nothing shown yet: the window reads the list when it opens
        me = self._me()
        shown = self.find(str(payload.get("callback_id") or ""))
        owner = str(payload.get("user_id") or "")
        mine = me is not None and me.is_me(owner)
        if shown is None and not mine and payload.get("scope") != "shared":
            return
        change = str(payload.get("change") or "")
        by_me = me is not None and me.is_me(str(payload.get("user") or ""))
        if by_me:
            # My own change from this window already says what it did; a wrap-up of mine changes the count.
            self.refresh(keep_message=change != "scheduled")
            return
        if change in CHANGES:
            key = f"callbacks.changed.{change}"
            values = {
                "who": str(payload.get("user_name") or "") or self.t("common.someone"),
                "due": local_text(parse_time(payload.get("due_at"))),
            }
            name = (shown.name or shown.display_phone) if shown else self.t("callbacks.changed.contact")
            self._unnamed = (str(payload.get("callback_id") or ""), key, values) if shown is None else None
            self.error = False
            self.message = self.t(key, **values, name=name)
        self.refresh(keep_message=change in CHANGES)
