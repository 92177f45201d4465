"""«Campañas» (TeamLead and up): the campaigns, active or archived, every rule of one to create or edit
(name, active, archive, priority, lists, teams, time zone, calling hours per weekday, attempt caps, retry
delay per outcome), checked here with a message beside each field, and each one's progress
(``GET /campaigns/{id}/progress``). A refusal (409, 422) keeps what was typed and puts the server's words
beside the fields it names."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from client.api import Conflict, Gateway, Invalid, NotFound, error_text
from client.dispatch import Runner
from client.i18n import Translator
from client.models import (
    DEFAULT_TIMEZONE,
    PROGRESS_FIELDS,
    RETRY_OUTCOMES,
    WEEKDAYS,
    Campaign,
    CampaignProgress,
)

MAX_ATTEMPTS = 100
MAX_RETRY_MINUTES = 10080
MAX_PRIORITY = 1000
DEFAULT_PRIORITY = 100
MAX_NAMES = 50
NAME_MAX = 100
GENERAL = "general"
"""The campaign every install has: it holds every contact in no other list, so it takes no lists, teams
or archiving (the server refuses them)."""
TIMEZONES = (
    DEFAULT_TIMEZONE,
    "America/Guatemala",
    "America/El_Salvador",
    "America/Tegucigalpa",
    "America/Managua",
    "America/Panama",
    "America/Mexico_City",
    "America/Bogota",
    "UTC",
)
"""Zones offered in the form (any IANA name may be typed)."""
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass
class DayForm:
    """One weekday's row: open or not, its window and an optional second one (``HH:MM`` text)."""

    enabled: bool = False
    start: str = ""
    end: str = ""
    start2: str = ""
    end2: str = ""
    extra: tuple[tuple[str, str], ...] = ()
    """Windows past the two the form shows (set through the API): kept as they are."""


def default_days() -> dict[str, DayForm]:
    """Monday to Friday 08:00-17:00; Saturday 08:00-12:00 and Sunday offered but closed."""
    days = {day: DayForm(True, "08:00", "17:00") for day in WEEKDAYS[:5]}
    days["sat"] = DayForm(False, "08:00", "12:00")
    days["sun"] = DayForm(False, "08:00", "12:00")
    return days


@dataclass
class CampaignForm:
    """What is typed in the campaign form (text, checked on save)."""

    campaign_id: str | None = None
    name: str = ""
    active: bool = True
    archived: bool = False
    priority: str = str(DEFAULT_PRIORITY)
    lists: str = ""
    teams: str = ""
    timezone: str = DEFAULT_TIMEZONE
    hours_limited: bool = False
    days: dict[str, DayForm] = field(default_factory=default_days)
    max_attempts: str = "6"
    max_per_day: str = ""
    retry_minutes: dict[str, str] = field(default_factory=lambda: dict.fromkeys(RETRY_OUTCOMES, ""))

    @property
    def is_general(self) -> bool:
        """Whether this is the campaign ``General`` (no lists, teams or archiving)."""
        return self.campaign_id == GENERAL

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignForm:
        """The form filled with ``campaign``'s rules."""
        days = default_days()
        if campaign.calling_hours is not None:
            for day in WEEKDAYS:
                windows = campaign.calling_hours.get(day, ())
                if not windows:
                    days[day].enabled = False
                    continue
                first, second = windows[0], windows[1] if len(windows) > 1 else ("", "")
                days[day] = DayForm(True, first[0], first[1], second[0], second[1], tuple(windows[2:]))
        return cls(
            campaign_id=campaign.id,
            name=campaign.name,
            active=campaign.active,
            archived=campaign.archived,
            priority=str(campaign.priority),
            lists=", ".join(campaign.lists),
            teams=", ".join(campaign.teams),
            timezone=campaign.timezone,
            hours_limited=campaign.calling_hours is not None,
            days=days,
            max_attempts=str(campaign.max_attempts),
            max_per_day="" if campaign.max_per_day is None else str(campaign.max_per_day),
            retry_minutes={o: str(campaign.retry_minutes.get(o, "")) for o in RETRY_OUTCOMES},
        )


class FormError(ValueError):
    """Fields of the form that cannot be saved: ``errors`` maps each field key (``name``, ``hours.mon``,
    ``retry.busy``, ...) to its Spanish message; the exception's text is the first one."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__(next(iter(self.errors.values()), ""))


def split_names(text: str) -> list[str]:
    """The names typed in a list or team field (comma or line separated), trimmed, each once."""
    names = (" ".join(part.split()) for part in re.split(r"[,\n;]", text))
    return list(dict.fromkeys(name for name in names if name))


def with_name(text: str, name: str) -> str:
    """``text`` (names separated by commas) with ``name`` added at the end unless it is there."""
    names = split_names(text)
    if name not in names:
        names.append(name)
    return ", ".join(names)


def _known_zone(name: str) -> bool:
    """Whether ``name`` is a time zone this machine knows (True when it has no zone database at all: the
    server checks then)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        try:
            ZoneInfo(DEFAULT_TIMEZONE)
        except ZoneInfoNotFoundError:
            return True
        return False
    return True


def _minutes(clock: str) -> int:
    return 24 * 60 if clock == "24:00" else int(clock[:2]) * 60 + int(clock[3:])


def _day_windows(day: DayForm, label: str, translate: Translator) -> list[list[str]]:
    """An open day's windows, checked (FormError names the day)."""
    windows: list[list[str]] = []
    pairs = [(day.start.strip(), day.end.strip()), (day.start2.strip(), day.end2.strip())]
    for index, (start, end) in enumerate(pairs):
        if index == 1 and not start and not end:
            break
        if not _CLOCK.match(start) or not (_CLOCK.match(end) or end == "24:00"):
            raise ValueError(translate("campaigns.bad_clock", day=label))
        if _minutes(end) <= _minutes(start):
            raise ValueError(translate("campaigns.bad_window", day=label, start=start, end=end))
        if windows and _minutes(start) < _minutes(windows[-1][1]):
            raise ValueError(translate("campaigns.overlap", day=label))
        windows.append([start, end])
    return windows + [list(w) for w in day.extra]


def _whole(text: str, low: int, high: int) -> int | None:
    """``text`` as a whole number within ``low``..``high`` (None when it is not one)."""
    clean = text.strip()
    if not clean.isdigit() or not low <= int(clean) <= high:
        return None
    return int(clean)


def form_fields(form: CampaignForm, translate: Translator) -> dict[str, Any]:
    """Every rule of the form as ``POST``/``PATCH /campaigns`` takes it, each checked; FormError names every
    field that is wrong."""
    errors: dict[str, str] = {}
    fields: dict[str, Any] = {}
    name = " ".join(form.name.split())
    if not name or len(name) > NAME_MAX:
        errors["name"] = translate("campaigns.bad_name")
    fields["name"] = name
    if form.active and form.archived:
        errors["active"] = translate("campaigns.archived_active")
    fields["active"] = form.active and not form.archived
    priority = _whole(form.priority, 0, MAX_PRIORITY)
    if priority is None:
        errors["priority"] = translate("campaigns.bad_priority", most=MAX_PRIORITY)
    fields["priority"] = priority
    for key in ("lists", "teams"):
        names = split_names(getattr(form, key))
        if len(names) > MAX_NAMES or any(len(n) > NAME_MAX for n in names):
            errors[key] = translate(f"campaigns.bad_{key}", most=MAX_NAMES, longest=NAME_MAX)
        elif names and form.is_general:
            errors[key] = translate("campaigns.general_fixed")
        if not form.is_general:
            fields[key] = names
    zone = form.timezone.strip()
    if not zone or not _known_zone(zone):
        errors["timezone"] = translate("campaigns.bad_timezone", zone=zone)
    fields["timezone"] = zone
    hours: dict[str, list[list[str]]] | None = None
    if form.hours_limited:
        hours = {}
        for day in WEEKDAYS:
            row = form.days.get(day, DayForm())
            if not row.enabled:
                continue
            try:
                hours[day] = _day_windows(row, translate(f"weekday.{day}"), translate)
            except ValueError as exc:
                errors[f"hours.{day}"] = str(exc)
        if not hours and not any(key.startswith("hours.") for key in errors):
            errors["calling_hours"] = translate("campaigns.no_days")
    fields["calling_hours"] = hours
    attempts = _whole(form.max_attempts, 1, MAX_ATTEMPTS)
    if attempts is None:
        errors["max_attempts"] = translate("campaigns.bad_attempts", most=MAX_ATTEMPTS)
    fields["max_attempts"] = attempts
    per_day: int | None = None
    if form.max_per_day.strip():
        per_day = _whole(form.max_per_day, 1, MAX_ATTEMPTS)
        if per_day is None:
            errors["max_per_day"] = translate("campaigns.bad_per_day", most=MAX_ATTEMPTS)
    fields["max_per_day"] = per_day
    retry: dict[str, int] = {}
    for outcome in RETRY_OUTCOMES:
        text = form.retry_minutes.get(outcome, "").strip()
        if not text:
            continue
        minutes = _whole(text, 0, MAX_RETRY_MINUTES)
        if minutes is None:
            label = translate(f"value.{outcome}")
            most = MAX_RETRY_MINUTES
            errors[f"retry.{outcome}"] = translate("campaigns.bad_retry", outcome=label, most=most)
            continue
        retry[outcome] = minutes
    fields["retry_minutes"] = retry
    if form.campaign_id is not None and not form.is_general:
        fields["archived"] = form.archived
    if errors:
        raise FormError(errors)
    return fields


def error_key(server_field: str) -> str:
    """The form's key for a field the server names (``calling_hours.mon.0.0`` → ``hours.mon``,
    ``retry_minutes.busy`` → ``retry.busy``)."""
    head, _, rest = server_field.partition(".")
    sub = rest.partition(".")[0]
    if head == "calling_hours" and sub in WEEKDAYS:
        return f"hours.{sub}"
    if head == "retry_minutes" and sub in RETRY_OUTCOMES:
        return f"retry.{sub}"
    return head


class CampaignsViewModel:
    """The campaigns list, the one selected, its progress and the form; the view redraws on ``on_change``
    and refills its fields only when ``form_version`` moves (a campaign chosen, a new form, a save)."""

    def __init__(
        self,
        api: Gateway,
        runner: Runner,
        translate: Translator,
        *,
        known_lists: Callable[[], Iterable[str]] = tuple,
        known_teams: Callable[[], Iterable[str]] = tuple,
        can_manage: bool = True,
    ) -> None:
        self._api = api
        self.can_manage = can_manage
        """Whether the role may create and change campaigns (ProjectManager, TI); else the form is read."""
        self._runner = runner
        self.t = translate
        self._known_lists = known_lists
        self._known_teams = known_teams
        self.campaigns: list[Campaign] = []
        self.show_archived = False
        self.selected: str | None = None
        self.creating = False
        self.progress: dict[str, CampaignProgress] = {}
        self.progress_missing = ""
        self.form = CampaignForm()
        self._loaded_form = CampaignForm()
        self._after_save: Callable[[], None] | None = None
        self.form_version = 0
        self.errors: dict[str, str] = {}
        self.message = ""
        self.error = False
        self.saving = False
        self.on_change: Callable[[], None] = lambda: None

    def refresh(self) -> None:
        """Read the campaigns again, archived ones included (and the selected one's progress)."""
        self._runner.submit(self._api.campaigns, self._got, self._failed)

    def _got(self, campaigns: Sequence[Campaign]) -> None:
        self.campaigns = sorted(campaigns, key=lambda c: (not c.active, c.name.lower()))
        if self.selected is None and not self.creating and self.visible():
            self.select(self.visible()[0].id)
            return
        if self.selected is not None:
            self.load_progress(self.selected)
        self.on_change()

    def _failed(self, exc: Exception) -> None:
        self._say(self.t("campaigns.failed", message=error_text(exc)), error=True)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message = text
        self.error = error
        self.on_change()

    def _load_form(self, form: CampaignForm) -> None:
        self.form = form
        self._loaded_form = copy.deepcopy(form)
        self.form_version += 1
        self.errors = {}
        self.message = ""

    def visible(self) -> list[Campaign]:
        """Active campaigns, and the inactive and archived ones when asked for."""
        return [c for c in self.campaigns if (c.active and not c.archived) or self.show_archived]

    def set_archived(self, shown: bool) -> None:
        """Show or hide the inactive and archived campaigns."""
        self.show_archived = shown
        self.on_change()

    def state_text(self, campaign: Campaign) -> str:
        """``activa``, ``inactiva`` or ``archivada``."""
        if campaign.archived:
            return self.t("campaigns.archived")
        return self.t("campaigns.active" if campaign.active else "campaigns.inactive")

    def rows(self) -> list[tuple[str, str, str, str]]:
        """One row per visible campaign: id, name, state, attempt cap."""
        return [(c.id, c.name, self.state_text(c), str(c.max_attempts)) for c in self.visible()]

    def select(self, campaign_id: str) -> None:
        """Show ``campaign_id``'s rules in the form and read its progress."""
        campaign = self.find(campaign_id)
        if campaign is None:
            return
        self.selected = campaign_id
        self.creating = False
        self._load_form(CampaignForm.of(campaign))
        self.on_change()
        self.load_progress(campaign_id)

    def find(self, campaign_id: str | None) -> Campaign | None:
        """The campaign with this id, as last read."""
        return next((c for c in self.campaigns if c.id == campaign_id), None)

    def new(self) -> None:
        """An empty form for a new campaign."""
        self.selected = None
        self.creating = True
        self._load_form(CampaignForm())
        self.on_change()

    def list_choices(self) -> list[str]:
        """List names to offer: those of the campaigns and of the contacts the desk has loaded."""
        names = {name for c in self.campaigns for name in c.lists}
        names.update(n for n in self._known_lists() if n)
        return sorted(names, key=str.lower)

    def team_choices(self) -> list[str]:
        """Team names to offer: those of the campaigns and the ones the desk knows (its own, the board's)."""
        names = {name for c in self.campaigns for name in c.teams}
        names.update(n for n in self._known_teams() if n)
        return sorted(names, key=str.lower)

    def load_progress(self, campaign_id: str) -> None:
        """``GET /campaigns/{id}/progress`` for one campaign."""

        def got(progress: CampaignProgress) -> None:
            self.progress[campaign_id] = progress
            self.progress_missing = ""
            self.on_change()

        def failed(exc: Exception) -> None:
            self.progress.pop(campaign_id, None)
            self.progress_missing = (
                self.t("campaigns.no_progress")
                if isinstance(exc, NotFound)
                else self.t("campaigns.failed", message=error_text(exc))
            )
            self.on_change()

        self._runner.submit(lambda: self._api.campaign_progress(campaign_id), got, failed)

    def progress_lines(self) -> list[tuple[str, int]]:
        """The selected campaign's figures as (Spanish label, number), ``total`` first."""
        progress = self.progress.get(self.selected or "")
        if progress is None:
            return []
        return [(self.t(f"progress.{name}"), progress.counts.get(name, 0)) for name in PROGRESS_FIELDS]

    @property
    def worked_share(self) -> float:
        """The selected campaign's share of contacts tried at least once (the progress bar)."""
        progress = self.progress.get(self.selected or "")
        return progress.worked_share if progress is not None else 0.0

    @property
    def worked_text(self) -> str:
        """``412 de 1.000 contactos trabajados (41 %)``."""
        progress = self.progress.get(self.selected or "")
        if progress is None:
            return self.progress_missing
        worked = progress.total - progress.counts.get("never_tried", 0)
        return self.t(
            "campaigns.worked",
            worked=worked,
            total=progress.total,
            percent=round(progress.worked_share * 100),
        )

    def set_form(self, name: str, value: str | bool) -> None:
        """A form field changed: ``name``, ``active``, ``archived``, ``priority``, ``lists``, ``teams``,
        ``timezone``, ``hours_limited``, ``max_attempts``, ``max_per_day``, ``retry.<outcome>`` or
        ``day.<weekday>.<enabled|start|end|start2|end2>``."""
        form = self.form
        if name in ("active", "archived", "hours_limited"):
            setattr(form, name, bool(value))
        elif name in ("name", "priority", "lists", "teams", "timezone", "max_attempts", "max_per_day"):
            setattr(form, name, str(value))
        elif name.startswith("retry.") and name[6:] in RETRY_OUTCOMES:
            form.retry_minutes[name[6:]] = str(value)
        elif name.startswith("day."):
            _, day, part = [*name.split("."), "", ""][:3]
            row = form.days.setdefault(day, DayForm()) if day in WEEKDAYS else None
            if row is not None and part == "enabled":
                row.enabled = bool(value)
            elif row is not None and part in ("start", "end", "start2", "end2"):
                setattr(row, part, str(value))

    @property
    def has_changes(self) -> bool:
        """Whether the form (as last copied in by the window) differs from the campaign or empty form
        loaded."""
        return self.form != self._loaded_form

    @property
    def form_title(self) -> str:
        """The name the unsaved-changes question gives the form."""
        return self.form.name.strip() or self._loaded_form.name or self.t("campaigns.new_title")

    def save(self, then: Callable[[], None] | None = None) -> None:
        """Create the campaign, or send the selected one's changed rules; what was typed stays on a refusal,
        with each refused field's message beside it. ``then`` runs once it is saved (not on a refusal)."""
        if self.saving:
            return
        self._after_save = then
        if not self.can_manage:
            self._say(self.t("campaigns.read_only"), error=True)
            return
        try:
            fields = form_fields(self.form, self.t)
        except FormError as exc:
            self.errors = exc.errors
            count = len(exc.errors)
            text = str(exc) if count == 1 else self.t("campaigns.check_fields", count=count, first=str(exc))
            self._say(text, error=True)
            return
        self.errors = {}
        campaign_id = self.form.campaign_id
        if campaign_id is not None:
            fields = self._changes(campaign_id, fields)
            if not fields:
                self._say(self.t("campaigns.unchanged"))
                self._run_after_save()
                return
        self.saving = True
        self.on_change()
        self._runner.submit(
            lambda: self._api.save_campaign(campaign_id, fields), self._saved, self._save_failed
        )

    def _changes(self, campaign_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The rules typed differently from the form as it was loaded (a PATCH changes only what it names,
        so someone else's change meanwhile to another rule stands); other outcomes' retry delays are kept."""
        original = self.find(campaign_id)
        if original is None:
            return fields
        try:
            before = form_fields(self._loaded_form, self.t)
        except FormError:
            return fields
        extra_retry = {k: v for k, v in original.retry_minutes.items() if k not in RETRY_OUTCOMES}
        if "retry_minutes" in fields:
            fields["retry_minutes"] = {**extra_retry, **fields["retry_minutes"]}
            before["retry_minutes"] = {**extra_retry, **before["retry_minutes"]}
        return {key: value for key, value in fields.items() if before.get(key, object()) != value}

    def _saved(self, campaign: Campaign) -> None:
        self.saving = False
        self.campaigns = [c for c in self.campaigns if c.id != campaign.id] + [campaign]
        self.selected = campaign.id
        self.creating = False
        self._load_form(CampaignForm.of(campaign))
        self._say(self.t("campaigns.saved", name=campaign.name))
        self.refresh()
        self._run_after_save()

    def _run_after_save(self) -> None:
        then, self._after_save = self._after_save, None
        if then is not None:
            then()

    def _save_failed(self, exc: Exception) -> None:
        self.saving = False
        self._after_save = None
        if isinstance(exc, Invalid):
            self.errors = {
                error_key(name): text or self.t("campaigns.server_refused")
                for name, text in exc.fields.items()
            }
        elif isinstance(exc, Conflict) and exc.code == "campaign_exists":
            self.errors = {"name": exc.message}
        self._say(self.t("campaigns.save_failed", message=error_text(exc)), error=True)

    def figures(self) -> Mapping[str, int]:
        """The selected campaign's raw figures (empty when not read)."""
        progress = self.progress.get(self.selected or "")
        return dict(progress.counts) if progress is not None else {}
