"""«Campañas» (TeamLead and up): the campaigns, active or archived, their basic rules (name, active,
attempt cap, retry minutes per outcome) to create or edit, and each one's progress
(``GET /campaigns/{id}/progress``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from client.api import Gateway, NotFound, error_text
from client.dispatch import Runner
from client.i18n import Translator
from client.models import PROGRESS_FIELDS, RETRY_OUTCOMES, Campaign, CampaignProgress

MAX_ATTEMPTS = 100
MAX_RETRY_MINUTES = 10080


@dataclass
class CampaignForm:
    """What is typed in the campaign form (text, validated on save)."""

    campaign_id: str | None = None
    name: str = ""
    active: bool = True
    max_attempts: str = "6"
    retry_minutes: dict[str, str] = field(default_factory=lambda: dict.fromkeys(RETRY_OUTCOMES, ""))

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignForm:
        """The form filled with ``campaign``'s rules."""
        return cls(
            campaign_id=campaign.id,
            name=campaign.name,
            active=campaign.active,
            max_attempts=str(campaign.max_attempts),
            retry_minutes={o: str(campaign.retry_minutes.get(o, "")) for o in RETRY_OUTCOMES},
        )


class FormError(ValueError):
    """A field of the form that cannot be saved; the message names it."""


def form_fields(form: CampaignForm, translate: Translator) -> dict[str, Any]:
    """The body of ``POST``/``PATCH /campaigns``: only what is filled in, each checked."""
    name = form.name.strip()
    if not name or len(name) > 100:
        raise FormError(translate("campaigns.bad_name"))
    fields: dict[str, Any] = {"name": name, "active": form.active}
    attempts = form.max_attempts.strip()
    if attempts:
        if not attempts.isdigit() or not 1 <= int(attempts) <= MAX_ATTEMPTS:
            raise FormError(translate("campaigns.bad_attempts", most=MAX_ATTEMPTS))
        fields["max_attempts"] = int(attempts)
    retry: dict[str, int] = {}
    for outcome in RETRY_OUTCOMES:
        text = form.retry_minutes.get(outcome, "").strip()
        if not text:
            continue
        if not text.isdigit() or int(text) > MAX_RETRY_MINUTES:
            label = translate(f"value.{outcome}")
            raise FormError(translate("campaigns.bad_retry", outcome=label, most=MAX_RETRY_MINUTES))
        retry[outcome] = int(text)
    if retry:
        fields["retry_minutes"] = retry
    return fields


class CampaignsViewModel:
    """The campaigns list, the one selected, its progress and the form; the view redraws on ``on_change``."""

    def __init__(self, api: Gateway, runner: Runner, translate: Translator) -> None:
        self._api = api
        self._runner = runner
        self.t = translate
        self.campaigns: list[Campaign] = []
        self.show_archived = False
        self.selected: str | None = None
        self.progress: dict[str, CampaignProgress] = {}
        self.progress_missing = ""
        self.form = CampaignForm()
        self.message = ""
        self.error = False
        self.saving = False
        self.on_change: Callable[[], None] = lambda: None

    def refresh(self) -> None:
        """Read the campaigns again (and the selected one's progress)."""
        self._runner.submit(self._api.campaigns, self._got, self._failed)

    def _got(self, campaigns: Sequence[Campaign]) -> None:
        self.campaigns = sorted(campaigns, key=lambda c: (not c.active, c.name.lower()))
        if self.selected is None and self.visible():
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

    def visible(self) -> list[Campaign]:
        """Active campaigns, and the archived (inactive) ones when asked for."""
        return [c for c in self.campaigns if c.active or self.show_archived]

    def set_archived(self, shown: bool) -> None:
        """Show or hide the archived campaigns."""
        self.show_archived = shown
        self.on_change()

    def rows(self) -> list[tuple[str, str, str, str]]:
        """One row per visible campaign: id, name, state, attempt cap."""
        return [
            (
                c.id,
                c.name,
                self.t("campaigns.active" if c.active else "campaigns.archived"),
                str(c.max_attempts),
            )
            for c in self.visible()
        ]

    def select(self, campaign_id: str) -> None:
        """Show ``campaign_id``'s rules in the form and read its progress."""
        campaign = next((c for c in self.campaigns if c.id == campaign_id), None)
        if campaign is None:
            return
        self.selected = campaign_id
        self.form = CampaignForm.of(campaign)
        self.message = ""
        self.on_change()
        self.load_progress(campaign_id)

    def new(self) -> None:
        """An empty form for a new campaign."""
        self.selected = None
        self.form = CampaignForm()
        self.message = ""
        self.on_change()

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
        """A form field changed (``name``, ``active``, ``max_attempts``, ``retry.<outcome>``)."""
        if name == "active":
            self.form.active = bool(value)
        elif name == "name":
            self.form.name = str(value)
        elif name == "max_attempts":
            self.form.max_attempts = str(value)
        elif name.startswith("retry.") and name[6:] in RETRY_OUTCOMES:
            self.form.retry_minutes[name[6:]] = str(value)

    def save(self) -> None:
        """Create the campaign, or change the selected one's rules (what was typed stays on a refusal)."""
        if self.saving:
            return
        try:
            fields = form_fields(self.form, self.t)
        except FormError as exc:
            self._say(str(exc), error=True)
            return
        campaign_id = self.form.campaign_id
        self.saving = True
        self.on_change()
        self._runner.submit(
            lambda: self._api.save_campaign(campaign_id, fields), self._saved, self._save_failed
        )

    def _saved(self, campaign: Campaign) -> None:
        self.saving = False
        self.campaigns = [c for c in self.campaigns if c.id != campaign.id] + [campaign]
        self.selected = campaign.id
        self.form = CampaignForm.of(campaign)
        self._say(self.t("campaigns.saved", name=campaign.name))
        self.refresh()

    def _save_failed(self, exc: Exception) -> None:
        self.saving = False
        self._say(self.t("campaigns.save_failed", message=error_text(exc)), error=True)

    def figures(self) -> Mapping[str, int]:
        """The selected campaign's raw figures (empty when not read)."""
        progress = self.progress.get(self.selected or "")
        return dict(progress.counts) if progress is not None else {}
