"""The contact list: server-side filters and debounced search, pages fetched as the user scrolls, and live
events patched into single rows (never a full redraw)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from client.api import ContactQuery, Gateway, error_text
from client.dispatch import Runner, Scheduler
from client.i18n import Translator
from client.models import Contact, parse_time
from client.viewmodels.catalogue import StatusCatalogue

NOTE_PREVIEW = 60


@dataclass(frozen=True, slots=True)
class Row:
    """One table row as shown: iid is the contact id."""

    iid: str
    name: str
    phone: str
    status: str
    status_label: str
    note: str
    lock_owner: str

    def values(self) -> tuple[str, str, str, str, str]:
        """Cells in column order: name, phone, status, note, lock owner."""
        return (self.name, self.phone, self.status_label, self.note, self.lock_owner)


class TableSink(Protocol):
    """What the view does with rows; every call touches only the rows named."""

    def reset(self, rows: Sequence[Row]) -> None:
        """Replace every row (new filter or reload)."""

    def append(self, rows: Sequence[Row]) -> None:
        """Add rows at the end (next page)."""

    def insert(self, index: int, row: Row) -> None:
        """Add one row at ``index``."""

    def update(self, row: Row) -> None:
        """Redraw one row."""

    def remove(self, iid: str) -> None:
        """Remove one row."""


def note_preview(note: str) -> str:
    """The first line of a note, cut to fit a cell."""
    line = " ".join(note.split())
    return line if len(line) <= NOTE_PREVIEW else line[: NOTE_PREVIEW - 1] + "…"


def _ignore(_exc: Exception) -> None:
    """Without ``/stats`` (an agent's key) the bar shows how many rows are loaded instead of a total."""


def utcnow() -> datetime:
    """Now, aware UTC."""
    return datetime.now(UTC)


class ContactListViewModel:
    """Rows in server order, loaded a page at a time; filters and search reload from the server."""

    page_size = 200
    debounce_ms = 100
    prefetch_rows = 100

    def __init__(
        self,
        api: Gateway,
        runner: Runner,
        scheduler: Scheduler,
        translate: Translator,
        catalogue: StatusCatalogue | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._api = api
        self._runner = runner
        self._scheduler = scheduler
        self.t = translate
        self.catalogue = catalogue or StatusCatalogue()
        self._clock = clock
        self.sink: TableSink | None = None
        self.query = ContactQuery()
        self.contacts: dict[str, Contact] = {}
        self.order: list[str] = []
        self.next_cursor = ""
        self.total: int | None = None
        self.loading = False
        self.loaded_once = False
        self.error = ""
        self._generation = 0
        # Events that arrived while a page was in flight: that page may predate them, so they are applied
        # again on top of it when it lands (every event is safe to apply twice).
        self._during_load: list[tuple[str, Mapping[str, Any]]] = []
        self._search_timer: object | None = None
        self._reload_timer: object | None = None
        self.on_summary: Callable[[str], None] = lambda _text: None
        self.on_error: Callable[[str], None] = lambda _text: None
        self.on_loaded: Callable[[int], None] = lambda _generation: None

    # -- rows ---------------------------------------------------------------------------------------

    def row(self, contact: Contact) -> Row:
        """The row shown for ``contact``."""
        return Row(
            iid=contact.id,
            name=contact.name,
            phone=contact.display_phone,
            status=contact.status,
            status_label=self.catalogue.label(contact.status, self.t.language),
            note=note_preview(contact.note),
            lock_owner=contact.lock_holder(self._clock()),
        )

    def rows(self) -> list[Row]:
        """Every loaded row, in order."""
        return [self.row(self.contacts[i]) for i in self.order]

    def set_catalogue(self, catalogue: StatusCatalogue) -> None:
        """Use a new status catalogue (labels and priorities) and reload."""
        self.catalogue = catalogue
        if self.loaded_once:
            self.reload()

    @property
    def summary(self) -> str:
        """The count for the status bar: exact when known, else what is loaded."""
        if self.total is not None:
            return self.t.plural("status.count_exact", self.total, count=f"{self.total:,}")
        if not self.next_cursor and self.loaded_once:
            return self.t.plural("status.count_exact", len(self.order), count=f"{len(self.order):,}")
        if not self.loaded_once:
            return self.t("status.loading")
        return self.t.plural("status.count_loaded", len(self.order), loaded=f"{len(self.order):,}")

    # -- filters and paging -------------------------------------------------------------------------

    def set_search(self, text: str) -> None:
        """Search as the user types: the request goes out ``debounce_ms`` after the last keystroke."""
        if self._search_timer is not None:
            self._scheduler.cancel(self._search_timer)
        self._search_timer = self._scheduler.call_later(self.debounce_ms, lambda: self._search_now(text))

    def _search_now(self, text: str) -> None:
        self._search_timer = None
        if text.strip() != self.query.q.strip():
            self.query = replace(self.query, q=text)
            self.reload()

    def set_filters(
        self, *, status: str | None = None, list_name: str | None = None, operator: str | None = None
    ) -> None:
        """Change server-side filters (None leaves one as it is) and reload."""
        query = replace(
            self.query,
            status=self.query.status if status is None else status,
            list=self.query.list if list_name is None else list_name,
            operator=self.query.operator if operator is None else operator,
        )
        if query != self.query:
            self.query = query
            self.reload()

    def reload(self) -> None:
        """Fetch the first page for the current filters; older answers in flight are ignored."""
        self._generation += 1
        generation = self._generation
        query = self.query
        self.loading = True
        self._during_load = []
        self.total = None
        self.on_summary(self.summary)
        self._runner.submit(
            lambda: self._api.list_contacts(query, self.page_size),
            lambda page: self._first_page(generation, page),
            lambda exc: self._failed(generation, exc),
        )
        if query == ContactQuery():
            self._runner.submit(self._api.stats, lambda stats: self._got_stats(generation, stats), _ignore)

    def _got_stats(self, generation: int, stats: Mapping[str, Any]) -> None:
        total = stats.get("total")
        if generation == self._generation and self.total is None and isinstance(total, int):
            self.total = total
            self.on_summary(self.summary)

    def _first_page(self, generation: int, page: Any) -> None:
        if generation != self._generation:
            return
        self.loading = False
        self.loaded_once = True
        self.error = ""
        self.contacts = {c.id: c for c in page.contacts}
        self.order = [c.id for c in page.contacts]
        self.next_cursor = page.next_cursor
        if page.total is not None:
            self.total = page.total
        if self.sink is not None:
            self.sink.reset(self.rows())
        self._replay_during_load()
        self.on_summary(self.summary)
        self.on_loaded(generation)

    def _replay_during_load(self) -> None:
        missed, self._during_load = self._during_load, []
        for name, payload in missed:
            if name != "contact_deleted" or str(payload.get("id") or "") in self.contacts:
                self.apply(name, payload)  # a deletion was counted when it arrived

    def load_more(self) -> bool:
        """Fetch the next page unless one is loading or none is left; returns whether a request went out."""
        if self.loading or not self.next_cursor:
            return False
        generation = self._generation
        cursor = self.next_cursor
        query = self.query
        self.loading = True
        self._during_load = []
        self._runner.submit(
            lambda: self._api.list_contacts(query, self.page_size, cursor),
            lambda page: self._next_page(generation, page),
            lambda exc: self._failed(generation, exc),
        )
        return True

    def _next_page(self, generation: int, page: Any) -> None:
        if generation != self._generation:
            return
        self.loading = False
        fresh = [c for c in page.contacts if c.id not in self.contacts]
        for contact in fresh:
            self.contacts[contact.id] = contact
            self.order.append(contact.id)
        self.next_cursor = page.next_cursor
        if page.total is not None:
            self.total = page.total
        if self.sink is not None and fresh:
            self.sink.append([self.row(c) for c in fresh])
        self._replay_during_load()
        self.on_summary(self.summary)

    def _failed(self, generation: int, exc: Exception) -> None:
        if generation != self._generation:
            return
        self.loading = False
        self._during_load = []
        self.error = error_text(exc)
        self.on_error(self.error)
        self.on_summary(self.summary)

    def visible(self, last_index: int) -> None:
        """The view shows rows up to ``last_index``: fetch the next page when near the end."""
        if last_index >= len(self.order) - self.prefetch_rows:
            self.load_more()

    def next_id(self, current: str | None) -> str | None:
        """The contact after ``current`` in the list (the first when None); loads more near the end."""
        if not self.order:
            return None
        if current not in self.contacts:
            return self.order[0]
        index = self.order.index(current) + 1
        self.visible(index)
        return self.order[index] if index < len(self.order) else None

    # -- live events --------------------------------------------------------------------------------

    def apply(self, name: str, payload: Mapping[str, Any]) -> None:
        """Patch the rows one live event touches."""
        if name == "resync":
            self.reload()
            return
        if name == "bulk_update":
            self._schedule_reload()
            return
        if self.loading:
            self._during_load.append((name, payload))
        contact_id = str(payload.get("id") or "")
        if not contact_id:
            return
        if name == "contact_deleted":
            self._remove(contact_id, counted=True)
            return
        current = self.contacts.get(contact_id)
        if name == "contact_created":
            contact = _contact_from(payload, None)
            if contact is not None:
                self._created(contact)
            return
        if current is None:
            return
        if name == "contact_updated":
            updated = _contact_from(payload, current)
        elif name == "contact_locked":
            updated = replace(
                _contact_from(payload, current) or current,
                locked_by=str(payload.get("locked_by") or ""),
                locked_by_name=str(payload.get("locked_by_name") or ""),
                locked_until=parse_time(payload.get("locked_until")),
            )
        elif name == "contact_unlocked":
            updated = replace(
                _contact_from(payload, current) or current, locked_by="", locked_by_name="", locked_until=None
            )
        else:
            return
        if updated is None:
            return
        self.patch(updated)

    def patch(self, contact: Contact) -> None:
        """Show the new state of one loaded contact (or drop it when it left the filter)."""
        previous = self.contacts.get(contact.id)
        if previous is None:
            return
        contact = contact.keeping_lock_name(previous)
        if not self.query.matches(contact):
            self._remove(contact.id, counted=True)
            return
        self.contacts[contact.id] = contact
        if self.sink is not None:
            self.sink.update(self.row(contact))

    def _created(self, contact: Contact) -> None:
        if contact.id in self.contacts or not self.query.matches(contact):
            return
        if self.total is not None:
            self.total += 1
        rank = self.catalogue.priority(contact.status)
        index = next(
            (
                i
                for i, cid in enumerate(self.order)
                if self.catalogue.priority(self.contacts[cid].status) > rank
            ),
            None,
        )
        if index is None:
            if self.next_cursor:
                self.on_summary(self.summary)
                return  # it belongs to a page not loaded yet
            index = len(self.order)
        self.contacts[contact.id] = contact
        self.order.insert(index, contact.id)
        if self.sink is not None:
            self.sink.insert(index, self.row(contact))
        self.on_summary(self.summary)

    def _remove(self, contact_id: str, *, counted: bool) -> None:
        if contact_id not in self.contacts:
            if counted and self.total is not None and self.total > 0:
                self.total -= 1
                self.on_summary(self.summary)
            return
        del self.contacts[contact_id]
        self.order.remove(contact_id)
        if counted and self.total is not None and self.total > 0:
            self.total -= 1
        if self.sink is not None:
            self.sink.remove(contact_id)
        self.on_summary(self.summary)

    def _schedule_reload(self) -> None:
        if self._reload_timer is not None:
            self._scheduler.cancel(self._reload_timer)

        def fire() -> None:
            self._reload_timer = None
            self.reload()

        self._reload_timer = self._scheduler.call_later(1000, fire)


def _contact_from(payload: Mapping[str, Any], current: Contact | None) -> Contact | None:
    """The contact an event describes: its full ``contact`` when sent, else ``fields`` over ``current``."""
    full = payload.get("contact")
    if isinstance(full, Mapping) and full.get("id"):
        return Contact.from_json(full)
    if current is None:
        return None
    fields = payload.get("fields")
    if not isinstance(fields, Mapping):
        return current
    updated = current
    for key in ("name", "status", "note", "email", "list", "operator"):
        if key in fields:
            value = fields[key]
            updated = replace(updated, **{key: "" if value is None else str(value)})  # type: ignore[arg-type]
    version = payload.get("version")
    return replace(updated, version=version) if isinstance(version, int) else updated
