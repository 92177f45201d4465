"""The contact panel: edit name, status and note; history; lock and release with the time left; delete for
roles that may. (The call button's workflow is ``viewmodels/call.py``.)

Nothing typed is lost: a save sends the version the typing started from (``base_version``), so a change
made meanwhile by someone else comes back as a conflict shown field by field (keep mine, take theirs, or
merge the notes) instead of being overwritten; typed fields are kept in a :class:`~client.drafts.DraftStore`
until saved or discarded."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from client.api import (
    Gateway,
    LockedByOther,
    LockInfo,
    NotFound,
    PreconditionFailed,
    error_text,
)
from client.dispatch import Runner
from client.drafts import Draft, DraftStore, MemoryDrafts
from client.i18n import Translator
from client.models import Contact, Eligibility, HistoryEntry, Me, parse_time
from client.viewmodels.contacts import utcnow
from client.viewmodels.session import Capabilities

DEFAULT_LOCK_MINUTES = 10
EDITABLE = ("name", "status", "note")
MERGEABLE = frozenset({"note"})
EXPIRY_WARNING_SECONDS = 60


class Choice(StrEnum):
    """What the agent keeps of a field both she and someone else changed."""

    MINE = "mine"
    THEIRS = "theirs"
    MERGE = "merge"


@dataclass(slots=True)
class ConflictRow:
    """One field changed both in the draft and, meanwhile, by someone else."""

    field: str
    base: str
    mine: str
    theirs: str
    who: str
    when: datetime | None
    choice: Choice | None = None

    def value(self, choice: Choice) -> str:
        """The field's value under ``choice`` (a merge keeps their note, then hers)."""
        if choice is Choice.MINE:
            return self.mine
        if choice is Choice.THEIRS:
            return self.theirs
        return f"{self.theirs.rstrip()}\n{self.mine}" if self.theirs.strip() else self.mine


class LockState(StrEnum):
    """Who holds the open contact's lock."""

    FREE = "free"
    MINE = "mine"
    OTHER = "other"


class MessageKind(StrEnum):
    """How a panel message is shown."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def remaining_text(until: datetime | None, now: datetime) -> str:
    """Time left as ``m:ss`` (``0:00`` once passed)."""
    if until is None:
        return ""
    seconds = max(0, int((until - now).total_seconds()))
    return f"{seconds // 60}:{seconds % 60:02d}"


def local_time(moment: datetime | None) -> str:
    """``HH:MM`` in local time."""
    return moment.astimezone().strftime("%H:%M") if moment else "?"


class ContactPanelViewModel:
    """One open contact, its draft edits, its lock and its history; the view re-reads it on ``on_change``."""

    def __init__(
        self,
        api: Gateway,
        runner: Runner,
        translate: Translator,
        *,
        me: Callable[[], Me | None],
        capabilities: Callable[[], Capabilities],
        clock: Callable[[], datetime] = utcnow,
        drafts: DraftStore | None = None,
    ) -> None:
        self._api = api
        self._drafts: DraftStore = drafts if drafts is not None else MemoryDrafts()
        self.base: dict[str, str] = {}
        """The editable fields as they were when the draft started; judged against in a conflict."""
        self.base_version = 0
        """The version the draft was typed over: what a save sends."""
        self.conflict: list[ConflictRow] = []
        self._warned_until: datetime | None = None
        self.expiring = False
        """Whether my lock ends within a minute (the view offers «Extender»)."""
        self._runner = runner
        self.t = translate
        self._me = me
        self._capabilities = capabilities
        self._clock = clock
        self.contact: Contact | None = None
        self.draft: dict[str, str] = {}
        self.history: Sequence[HistoryEntry] = []
        self.history_loaded = False
        self._history_in_flight = False
        self._history_stale = False
        self._held = False
        self._refetching = False
        self._refetch_again = False  # an event came while reading: read once more after
        self.message = ""
        self.message_kind = MessageKind.INFO
        self.busy = False
        self.dnc = ""
        """Why the open contact must not be called (its number is on the do-not-call list); "" when not."""
        self.fields_replaced = 0
        """Counts drafts replaced from outside the form (the wrap-up's save): the view refills its fields."""
        self.on_change: Callable[[], None] = lambda: None
        self.on_saved: Callable[[Contact], None] = lambda _contact: None
        self.on_deleted: Callable[[str], None] = lambda _contact_id: None

    # -- state --------------------------------------------------------------------------------------

    def _take(self, contact: Contact) -> None:
        """Make ``contact``'s fields the draft and the base (nothing typed remains)."""
        self.draft = {f: getattr(contact, f) for f in EDITABLE}
        self.base = dict(self.draft)
        self.base_version = contact.version
        self.conflict = []

    def _adopt(self, fresh: Contact) -> None:
        """A newer read of the open contact: the draft follows it when nothing is typed; with typing, the
        base moves on only when ``fresh`` changed none of the editable fields (a lock, a call)."""
        if not self.dirty:
            self._take(fresh)
        elif all(getattr(fresh, f) == self.base.get(f, "") for f in EDITABLE):
            self.base_version = fresh.version
        self.contact = fresh

    def _say(self, text: str, kind: MessageKind = MessageKind.INFO) -> None:
        self.message = text
        self.message_kind = kind
        self.on_change()

    def notify(self, text: str, kind: MessageKind = MessageKind.INFO) -> None:
        """Show ``text`` on the panel's message line (the call workflow reports here too)."""
        self._say(text, kind)

    def accept(self, contact: Contact, *, keep_draft: bool = False) -> None:
        """A contact saved or read elsewhere (the call's wrap-up): show it, and take its fields as the draft
        unless ``keep_draft``; nothing happens when another contact is open."""
        if self.contact is None or self.contact.id != contact.id:
            return
        self.contact = contact.keeping_lock_name(self.contact)
        if not keep_draft:
            self._take(self.contact)
            self._drafts.drop(contact.id)
            self.fields_replaced += 1
        else:
            self._adopt(self.contact)
        self.on_change()
        self.load_history()

    def _error(self, exc: Exception) -> None:
        self.busy = False
        if isinstance(exc, LockedByOther):
            self._say(
                self.t("lock.denied", owner=exc.owner or "?", until=local_time(exc.locked_until)),
                MessageKind.WARNING,
            )
            return
        text = error_text(exc)
        self._say(text, MessageKind.ERROR)

    @property
    def username(self) -> str:
        """The logged-in user's name ("" when unknown)."""
        me = self._me()
        return me.username if me else ""

    def is_me(self, user: str) -> bool:
        """Whether ``user`` (an id or a name from an event or a lock) is the logged-in user."""
        me = self._me()
        return me is not None and me.is_me(user)

    def display_user(self, user: str) -> str:
        """How a user named by id or name is shown: my own name, a name, or "Otro usuario (abc12345)"."""
        me = self._me()
        if me is not None and me.is_me(user):
            return me.display_name or me.username
        if user and _looks_like_id(user):
            return f"{self.t('common.someone')} ({user[:8]})"
        return user

    def who(self, payload: Mapping[str, Any]) -> str:
        """A printable name for the user an event names (ids are not shown to people)."""
        name = str(payload.get("user_name") or payload.get("locked_by_name") or "")
        if name:
            return name
        user = str(payload.get("user") or payload.get("unlocked_by") or payload.get("locked_by") or "")
        return self.t("common.someone") if not user or _looks_like_id(user) else user

    @property
    def dirty(self) -> bool:
        """Whether the draft holds typing not saved yet (or a conflict still to settle)."""
        if self.contact is None:
            return False
        return bool(self.conflict) or any(
            self.draft.get(f, "") != self.base.get(f, getattr(self.contact, f)) for f in EDITABLE
        )

    @property
    def conflict_settled(self) -> bool:
        """Whether every conflicting field has a choice."""
        return all(row.choice is not None for row in self.conflict)

    def lock_state(self, now: datetime | None = None) -> LockState:
        """Free, held by me, or held by someone else (expired locks count as free)."""
        if self.contact is None:
            return LockState.FREE
        if not self.contact.lock_active(now or self._clock()):
            return LockState.FREE
        return LockState.MINE if self.is_me(self.contact.locked_by) else LockState.OTHER

    def lock_text(self, now: datetime | None = None) -> str:
        """The lock line: free, mine with time left, or someone else's with owner, expiry and time left."""
        now = now or self._clock()
        state = self.lock_state(now)
        if self.contact is None or state is LockState.FREE:
            return self.t("lock.free")
        left = remaining_text(self.contact.locked_until, now)
        if state is LockState.MINE:
            return self.t("lock.mine", remaining=left)
        return self.t(
            "lock.other",
            owner=self.contact.lock_holder(now),
            until=local_time(self.contact.locked_until),
            remaining=left,
        )

    def check_expiry(self, now: datetime | None = None) -> None:
        """Warn a minute before my own lock runs out, and say so when it has (called every second)."""
        now = now or self._clock()
        held = self.lock_state(now) is LockState.MINE
        if self._held and not held and self.contact is not None and self.is_me(self.contact.locked_by):
            self.expiring = False
            self._say(self.t("lock.expired"), MessageKind.WARNING)
        self._held = held
        until = self.contact.locked_until if self.contact is not None and held else None
        expiring = until is not None and (until - now).total_seconds() <= EXPIRY_WARNING_SECONDS
        if expiring and self._warned_until != until:
            self._warned_until = until
            self.expiring = True
            self._say(self.t("lock.expiring", until=local_time(until)), MessageKind.WARNING)
        elif not expiring and self.expiring and held:
            self.expiring = False
            self.on_change()

    def extend(self) -> None:
        """«Extender»: take my lock for another default period."""
        self.expiring = False
        self.lock()

    @property
    def can_edit(self) -> bool:
        """Whether the fields may be saved now (not while someone else holds the lock)."""
        return self.contact is not None and self.lock_state() is not LockState.OTHER and not self.busy

    @property
    def can_delete(self) -> bool:
        """Whether the delete button is offered (ProjectManager and TI)."""
        return self.contact is not None and self._capabilities().delete

    @property
    def can_force_release(self) -> bool:
        """Whether a lock held by someone else may be released by this role."""
        return self.lock_state() is LockState.OTHER and self._capabilities().force_release

    # -- actions ------------------------------------------------------------------------------------

    def open(self, contact: Contact) -> None:
        """Show ``contact`` at once, with the typing kept for it if any, then fetch its current version
        and history."""
        self.contact = contact
        self._take(contact)
        self._held = self.lock_state() is LockState.MINE
        self.expiring = False
        self._warned_until = None
        self.history = []
        self.history_loaded = False
        self.message = ""
        self.dnc = ""
        kept = self._drafts.get(contact.id)
        if kept is not None:
            self.draft.update({f: v for f, v in kept.fields.items() if f in EDITABLE})
            self.base.update({f: v for f, v in kept.base.items() if f in EDITABLE})
            self.base_version = kept.base_version or contact.version
            when = local_time(parse_time(kept.saved_at)) if kept.saved_at else "?"
            self.message = self.t("panel.draft_restored", when=when)
            self.message_kind = MessageKind.WARNING
        self.on_change()
        contact_id = contact.id
        self._runner.submit(
            lambda: self._api.get_contact(contact_id),
            lambda fresh: self._fresh(contact_id, fresh),
            self._open_failed,
        )
        self.load_history()
        self.check_dnc()

    def check_dnc(self) -> None:
        """Ask the queue whether the open contact's number is on the do-not-call list (the badge)."""
        if self.contact is None:
            return
        contact_id = self.contact.id

        def judged(found: Eligibility) -> None:
            finding = found.dnc
            if finding is not None:
                self.mark_dnc(contact_id, finding.message)

        # A server without the work queue answers 404: no badge, nothing to tell.
        self._runner.submit(lambda: self._api.eligibility(contact_id), judged, lambda _exc: None)

    def mark_dnc(self, contact_id: str, reason: str) -> None:
        """The number of ``contact_id`` is on the do-not-call list (eligibility, or a call refused)."""
        if self.contact is None or self.contact.id != contact_id:
            return
        self.dnc = reason or self.t("dnc.reason")
        self.on_change()

    def restore_typing(self, fields: Mapping[str, str]) -> None:
        """Put ``fields`` typed before a save done elsewhere (the wrap-up) back into the draft."""
        if self.contact is None or not fields:
            return
        self.draft.update({f: v for f, v in fields.items() if f in EDITABLE})
        self.fields_replaced += 1
        self.remember()
        self.on_change()

    def _fresh(self, contact_id: str, fresh: Contact) -> None:
        if self.contact is None or self.contact.id != contact_id:
            return
        self._adopt(fresh.keeping_lock_name(self.contact))
        self.on_change()

    def _open_failed(self, exc: Exception) -> None:
        if isinstance(exc, NotFound):
            self._say(self.t("panel.deleted"), MessageKind.WARNING)
            return
        self._error(exc)

    def close(self) -> None:
        """Show no contact."""
        self.contact = None
        self.draft = {}
        self.base = {}
        self.conflict = []
        self.history = []
        self.message = ""
        self.dnc = ""
        self.on_change()

    def set_field(self, field: str, value: str) -> None:
        """The user typed into ``field`` (name, status or note)."""
        if field in EDITABLE:
            self.draft[field] = value

    def remember(self) -> None:
        """Keep the typing on disk until it is saved (the view calls this shortly after each edit)."""
        if self.contact is None:
            return
        if self.dirty:
            self._drafts.put(Draft(self.contact.id, dict(self.draft), self.base_version, dict(self.base)))
        else:
            self._drafts.drop(self.contact.id)

    def discard(self) -> None:
        """«Descartar»: forget the typing and show the contact as it is."""
        if self.contact is None:
            return
        self._drafts.drop(self.contact.id)
        self._take(self.contact)
        self.fields_replaced += 1
        self.on_change()

    def choose(self, field: str, choice: Choice) -> None:
        """Settle one conflicting field: keep mine, take theirs, or merge (notes only)."""
        for row in self.conflict:
            if row.field == field and (choice is not Choice.MERGE or field in MERGEABLE):
                row.choice = choice
                self.draft[field] = row.value(choice)
                self.fields_replaced += 1
        self.remember()
        self.on_change()

    def load_history(self) -> None:
        """Fetch the contact's history from its events."""
        if self.contact is None:
            return
        if self._history_in_flight:
            self._history_stale = True  # one more fetch when this one returns, however many events came
            return
        contact_id = self.contact.id
        self._history_in_flight = True
        self._runner.submit(
            lambda: self._api.history(contact_id),
            lambda rows: self._got_history(contact_id, rows),
            self._history_failed,
        )

    def _history_failed(self, exc: Exception) -> None:
        self._history_in_flight = False
        self._history_stale = False
        self._error(exc)

    def _got_history(self, contact_id: str, rows: Sequence[HistoryEntry]) -> None:
        self._history_in_flight = False
        if self._history_stale:
            self._history_stale = False
            self.load_history()
        if self.contact is None or self.contact.id != contact_id:
            return
        ordered = sorted(rows, key=lambda r: r.when.timestamp() if r.when else 0.0, reverse=True)
        self.history = [self._named(row) for row in ordered]
        self.history_loaded = True
        self.on_change()

    def _named(self, row: HistoryEntry) -> HistoryEntry:
        """``row`` with users shown as people: me by my name, others by name or a short id."""
        who = self.display_user(row.who)
        if row.what != "locked_by":
            return replace(row, who=who)
        return replace(row, who=who, old=self.display_user(row.old), new=self.display_user(row.new))

    def save(self) -> None:
        """Send the changed fields with the version read (If-Match); report exactly what happened."""
        if self.contact is None or self.busy:
            return
        changes = {
            f: self.draft.get(f, "") for f in EDITABLE if self.draft.get(f, "") != getattr(self.contact, f)
        }
        if not self.conflict_settled:
            self._say(self.t("panel.conflict_choose"), MessageKind.WARNING)
            return
        if not changes:
            self.conflict = []
            self._drafts.drop(self.contact.id)
            self._say(self.t("panel.nothing_to_save"))
            return
        if self.lock_state() is LockState.OTHER:
            self._say(self.lock_text(), MessageKind.WARNING)
            return
        contact_id, version = self.contact.id, self.base_version or self.contact.version
        self.busy = True
        self.on_change()
        self._runner.submit(
            lambda: self._api.update_contact(contact_id, changes, version or None),
            self._saved,
            self._save_failed,
        )

    def _saved(self, contact: Contact) -> None:
        self.busy = False
        self._drafts.drop(contact.id)
        if self.contact is not None and self.contact.id == contact.id:
            contact = contact.keeping_lock_name(self.contact)
            self.contact = contact
            self._take(contact)
            self.fields_replaced += 1
        self.on_saved(contact)
        self._say(self.t("panel.saved"))
        self.load_history()

    def _save_failed(self, exc: Exception) -> None:
        self.busy = False
        if isinstance(exc, PreconditionFailed) and self.contact is not None:
            contact_id = self.contact.id
            if exc.current is not None and exc.current.id == contact_id:
                self._conflicted(exc.current, exc.changes)
                return

            def reloaded(fresh: Contact) -> None:
                if self.contact is not None and self.contact.id == contact_id:
                    self._conflicted(fresh, [])

            self._runner.submit(lambda: self._api.get_contact(contact_id), reloaded, self._error)
            return
        if isinstance(exc, LockedByOther) and self.contact is not None:
            self.contact = replace(
                self.contact,
                locked_by=exc.locked_by,
                locked_by_name=exc.locked_by_name,
                locked_until=exc.locked_until,
            )
            self._say(
                self.t(
                    "lock.other",
                    owner=exc.owner or "?",
                    until=local_time(exc.locked_until),
                    remaining=remaining_text(exc.locked_until, self._clock()),
                ),
                MessageKind.WARNING,
            )
            return
        self._error(exc)

    def _conflicted(self, current: Contact, changes: Sequence[HistoryEntry]) -> None:
        """A save refused as stale: fields only someone else changed take their value, fields only I changed
        keep mine, and fields we both changed become conflict rows; with none of those, save again."""
        assert self.contact is not None
        rows: list[ConflictRow] = []
        for f in EDITABLE:
            mine, theirs = self.draft.get(f, ""), getattr(current, f)
            base = self.base.get(f, theirs)
            if mine != base and theirs != base and mine != theirs:
                last = next((c for c in reversed(changes) if c.what == f), None)
                who = self.display_user(last.who) if last else self.t("common.someone")
                rows.append(ConflictRow(f, base, mine, theirs, who, last.when if last else None))
            elif mine == base:
                self.draft[f] = theirs
        self.contact = current.keeping_lock_name(self.contact)
        self.base = {f: getattr(current, f) for f in EDITABLE}
        self.base_version = current.version
        self.conflict = rows
        self.fields_replaced += 1
        self.remember()
        self.load_history()
        if rows:
            self._say(self.t("panel.conflict"), MessageKind.WARNING)
        else:
            self.save()  # the other changes touched other fields: both are kept

    def lock(self, minutes: int = DEFAULT_LOCK_MINUTES) -> None:
        """Lock the open contact for ``minutes`` (also extends my own lock)."""
        if self.contact is None:
            return
        contact_id = self.contact.id

        def locked(info: LockInfo) -> None:
            if self.contact is not None and self.contact.id == contact_id:
                me = self._me()
                self.contact = replace(
                    info.contact or self.contact,
                    locked_by=info.locked_by or (me.user_id or me.username if me else ""),
                    locked_by_name=info.locked_by_name or (me.display_name or me.username if me else ""),
                    locked_until=parse_time(info.locked_until),
                )
                self.on_saved(self.contact)
                self._adopt(self.contact)
            self._say(self.t("lock.locked", minutes=minutes))

        self._runner.submit(lambda: self._api.lock(contact_id, minutes), locked, self._error)

    def release(self) -> None:
        """Release my lock, or force-release someone else's when the role may."""
        if self.contact is None:
            return
        contact_id = self.contact.id

        def released(fresh: Contact | None) -> None:
            if self.contact is not None and self.contact.id == contact_id:
                self.contact = replace(
                    fresh or self.contact, locked_by="", locked_by_name="", locked_until=None
                )
                self._adopt(self.contact)
                self.on_saved(self.contact)
            self._say(self.t("lock.released"))

        self._runner.submit(lambda: self._api.unlock(contact_id), released, self._error)

    def delete_prompt(self) -> str:
        """The confirmation question for delete."""
        if self.contact is None:
            return ""
        return self.t("panel.confirm_delete", name=self.contact.name or "?", phone=self.contact.display_phone)

    def delete(self) -> None:
        """Delete the open contact (the view asked for confirmation first)."""
        if self.contact is None or not self.can_delete:
            return
        contact_id = self.contact.id

        def deleted(_: None) -> None:
            self.on_deleted(contact_id)
            self.close()
            self._say(self.t("panel.deleted"))

        self._runner.submit(lambda: self._api.delete_contact(contact_id), deleted, self._error)

    # -- live events --------------------------------------------------------------------------------

    def apply(self, name: str, payload: Mapping[str, Any]) -> None:
        """Reflect a live event about the open contact."""
        if self.contact is None or str(payload.get("id") or "") != self.contact.id:
            return
        user = str(payload.get("user") or "")
        if name == "contact_deleted":
            self.contact = None
            self.draft = {}
            self._say(self.t("panel.deleted_by", user=self.who(payload)), MessageKind.WARNING)
        elif name == "contact_updated":
            self._updated(payload, mine=self.is_me(user))
        elif name in ("contact_locked", "contact_unlocked"):
            self._lock_changed(name, payload)
        elif name in ("call_requested", "call_started", "call_ended"):
            self._refetch()  # each step of a call is an event of the contact: its version moved on
            self.load_history()
        elif name == "lock_denied":
            until = parse_time(payload.get("locked_until"))
            text = str(payload.get("message") or "") or self.t(
                "lock.denied", owner=self.who(payload), until=local_time(until)
            )
            self._say(text, MessageKind.WARNING)

    def _lock_changed(self, name: str, payload: Mapping[str, Any]) -> None:
        """A lock taken or released: its fields, and the new version when the event carries the contact."""
        assert self.contact is not None
        full = payload.get("contact")
        base = Contact.from_json(full) if isinstance(full, Mapping) and full.get("id") else self.contact
        was_mine = self.lock_state() is LockState.MINE
        if name == "contact_locked":
            fresh = replace(
                base,
                locked_by=str(payload.get("locked_by") or ""),
                locked_by_name=str(payload.get("locked_by_name") or ""),
                locked_until=parse_time(payload.get("locked_until")),
            )
        else:
            fresh = replace(base, locked_by="", locked_by_name="", locked_until=None)
        self._adopt(fresh)
        released_by = str(payload.get("unlocked_by") or payload.get("user") or "")
        if name == "contact_unlocked" and was_mine and released_by and not self.is_me(released_by):
            self.expiring = False
            self._say(self.t("lock.force_released", user=self.who(payload)), MessageKind.WARNING)
        else:
            self.on_change()
        if not (isinstance(full, Mapping) and full.get("id")):
            self._refetch()  # the event has no version: read it, so the next save's If-Match is right

    def _updated(self, payload: Mapping[str, Any], *, mine: bool) -> None:
        assert self.contact is not None
        full = payload.get("contact")
        if isinstance(full, Mapping) and full.get("id"):
            fresh = Contact.from_json(full)
        else:
            fields = payload.get("fields")
            changes: dict[str, str] = {}
            if isinstance(fields, Mapping):
                changes = {k: str(v or "") for k, v in fields.items() if k in EDITABLE}
            fresh = replace(self.contact, **changes)  # type: ignore[arg-type]
        if self.dirty and not mine:
            self._adopt(fresh)
            self._say(self.t("panel.changed_by_dirty", user=self.who(payload)), MessageKind.WARNING)
        else:
            self.contact = fresh
            self._take(fresh)
            if mine:
                self.on_change()
            else:
                self._say(self.t("panel.changed_by", user=self.who(payload)))
        if not (isinstance(full, Mapping) and full.get("id")):
            self._refetch()  # the event has no version: read it, so the next save's If-Match is right
        self.load_history()

    def _refetch(self) -> None:
        if self.contact is None:
            return
        if self._refetching:
            self._refetch_again = True  # the read under way may predate this event
            return
        contact_id = self.contact.id
        self._refetching = True
        self._refetch_again = False

        def done(fresh: Contact) -> None:
            self._refetching = False
            self._fresh(contact_id, fresh)
            if self._refetch_again:
                self._refetch()

        def failed(exc: Exception) -> None:
            self._refetching = False
            self._open_failed(exc)

        self._runner.submit(lambda: self._api.get_contact(contact_id), done, failed)


def _looks_like_id(user: str) -> bool:
    """Whether ``user`` is an opaque id (a UUID or hex) rather than a name."""
    compact = user.replace("-", "")
    return len(compact) >= 16 and all(ch in "0123456789abcdefABCDEF" for ch in compact)
