"""The supervisors' desk board: every desk their role may see (``GET /desks``), kept live by ``desk_state``,
with the agent, the desk's name, its state, its current contact, since when, and the agent's calls today and
success rate (``GET /metrics/calls`` since the local midnight, read again when a desk finishes a call)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, time
from typing import Any

from client.api import Gateway, error_text
from client.dispatch import Runner
from client.i18n import Translator
from client.models import Contact, DeskState
from client.viewmodels.call import clock_text

COLUMNS = ("agent", "desk", "state", "contact", "since", "calls_today", "success")


class DesksViewModel:
    """Desks by agent and name; contact names are looked up once each (the list first, else the server)."""

    def __init__(
        self,
        api: Gateway,
        runner: Runner,
        translate: Translator,
        *,
        known_contact: Callable[[str], Contact | None] = lambda _id: None,
        clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    ) -> None:
        self._api = api
        self._runner = runner
        self.t = translate
        self._known_contact = known_contact
        self._clock = clock
        self.desks: dict[tuple[str, str], DeskState] = {}
        self._names: dict[str, str] = {}
        self._asked: set[str] = set()
        self.loaded = False
        self.error = ""
        self.today: dict[str, tuple[int, float | None]] = {}
        """Calls made today and success rate (0..1, None without ended calls), by user id and by name."""
        self.on_change: Callable[[], None] = lambda: None

    def refresh(self) -> None:
        """Read every desk again, and today's call figures."""
        self._runner.submit(self._api.desks, self._got, self._failed)
        self.refresh_figures()

    def refresh_figures(self) -> None:
        """Read today's call figures per agent (since the local midnight)."""
        midnight = datetime.combine(self._clock().date(), time(0, 0), tzinfo=self._clock().tzinfo)
        # Without figures (a server from before /metrics/calls) the columns show «—»; the desks still show.
        self._runner.submit(
            lambda: self._api.call_metrics(since=midnight), self._got_figures, lambda _exc: None
        )

    def _got_figures(self, data: Mapping[str, Any]) -> None:
        today: dict[str, tuple[int, float | None]] = {}
        for row in data.get("agents") or []:
            if not isinstance(row, Mapping):
                continue
            made = row.get("made")
            rate = row.get("success_rate")
            figures = (
                made if isinstance(made, int) and not isinstance(made, bool) else 0,
                float(rate) if isinstance(rate, int | float) and not isinstance(rate, bool) else None,
            )
            for key in (row.get("user_id"), row.get("username")):
                if key:
                    today[str(key)] = figures
        self.today = today
        self.on_change()

    def _got(self, desks: Sequence[DeskState]) -> None:
        self.desks = {desk.key: desk for desk in desks if desk.state != "offline"}
        self.loaded = True
        self.error = ""
        for desk in self.desks.values():
            self._contact(desk.contact_id)  # ask for the names now, not at the first redraw
        self.on_change()

    def _failed(self, exc: Exception) -> None:
        message = error_text(exc)
        self.error = self.t("desks.failed", message=message)
        self.on_change()

    def apply(self, name: str, payload: Mapping[str, Any]) -> None:
        """A ``desk_state`` notice: the desk's new row (an ``offline`` desk leaves the board)."""
        if name != "desk_state":
            return
        desk = DeskState.from_json(payload)
        before = self.desks.get(desk.key)
        if desk.state == "offline":
            self.desks.pop(desk.key, None)
        else:
            self.desks[desk.key] = desk
            self._contact(desk.contact_id)
        if before is not None and before.busy and not desk.busy:
            self.refresh_figures()  # a call ended: its agent's figures moved
        self.on_change()

    @property
    def summary(self) -> str:
        """How many desks are connected."""
        if not self.desks:
            return self.t("desks.none") if self.loaded else ""
        return self.t.plural("desks.count", len(self.desks), count=len(self.desks))

    def rows(self) -> list[tuple[str, str, str, str, str, str, str]]:
        """One row per desk in ``COLUMNS`` order, sorted by agent then desk."""
        now = self._clock()
        ordered = sorted(self.desks.values(), key=lambda d: (d.username.lower() or d.user_id, d.desk))
        return [
            (
                desk.username or desk.user_id,
                desk.desk,
                self.t(f"desk_state.{desk.state}") if self.t.has(f"desk_state.{desk.state}") else desk.state,
                self._contact(desk.contact_id) if desk.busy else "",
                _since(desk.since, now),
                *self._today(desk),
            )
            for desk in ordered
        ]

    def _today(self, desk: DeskState) -> tuple[str, str]:
        """The agent's calls today and success rate as shown (``—`` when not known)."""
        figures = self.today.get(desk.user_id) or self.today.get(desk.username)
        if figures is None:
            return ("—", "—")
        made, rate = figures
        return (str(made), "—" if rate is None else f"{round(rate * 100)} %")

    def _contact(self, contact_id: str) -> str:
        """The contact's name (or number); fetched once when the list does not have it."""
        if not contact_id:
            return ""
        if contact_id in self._names:
            return self._names[contact_id]
        known = self._known_contact(contact_id)
        if known is not None:
            return known.name or known.display_phone
        if contact_id not in self._asked:
            self._asked.add(contact_id)
            self._runner.submit(
                lambda: self._api.get_contact(contact_id), self._got_contact, lambda _exc: None
            )
        return contact_id[:8]

    def _got_contact(self, contact: Contact) -> None:
        self._names[contact.id] = contact.name or contact.display_phone
        self.on_change()


def _since(moment: datetime | None, now: datetime) -> str:
    """``14:03:12 (02:31)``: the local time the state began and how long ago."""
    if moment is None:
        return ""
    return f"{moment.astimezone().strftime('%H:%M:%S')} ({clock_text((now - moment).total_seconds())})"
