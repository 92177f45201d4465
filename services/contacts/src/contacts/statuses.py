"""The status catalogue as data: codes, labels, priority, flags, transitions, ageing and legacy spellings.

Flags (``docs/QUEUE.md``, "Status catalogue"): ``reached`` (a person was talked to), ``final`` (the
contact's work is done), ``requires_callback`` (a wrap-up to it must set a callback) and ``dnc`` (a
wrap-up to it puts the number on the do-not-call list). Transitions: moving a contact out of a status
needs that status's ``leave_role`` (Agent for working statuses, TeamLead for final ones, ProjectManager
for ``NO_LLAMAR``), unless the catalogue's ``transitions`` name the pair explicitly; the scheduler's
``System`` role passes every check. :meth:`Catalogue.required_role` is the one rule the domain enforces.

Ageing: a contact not contacted for 3 calendar months becomes ``NO_EXISTE``, 6 months ``SIN_RED``,
8 months ``NO_CONTACTO``; the highest threshold reached wins. Statuses with ``ageable=False``
(``INTERESADO``, ``SERVICIOS_ACTIVOS``) are never aged, and an aged status only moves forward
(``NO_CONTACTO`` never goes back to ``SIN_RED``).
"""

from __future__ import annotations

import calendar
import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contacts.errors import InvalidStatus
from kernel.roles import Role

_CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SEPARATORS = re.compile(r"[^A-Z0-9]+")


@dataclass(frozen=True, slots=True)
class Status:
    """One status: its code, labels, list priority (lower first), whether ageing may change it, its flags
    and the least role that may move a contact out of it."""

    code: str
    label_es: str
    label_en: str
    priority: int
    ageable: bool = True
    reached: bool = False
    final: bool = False
    requires_callback: bool = False
    dnc: bool = False
    leave_role: Role | None = None

    @property
    def leaving_role(self) -> Role:
        """The least role that may move a contact out of this status (TeamLead for a final one)."""
        if self.leave_role is not None:
            return self.leave_role
        return Role.TEAM_LEAD if self.final else Role.AGENT

    def to_data(self) -> dict[str, Any]:
        """JSON-safe dict of this status."""
        return {
            "code": self.code,
            "label_es": self.label_es,
            "label_en": self.label_en,
            "priority": self.priority,
            "ageable": self.ageable,
            "reached": self.reached,
            "final": self.final,
            "requires_callback": self.requires_callback,
            "dnc": self.dnc,
            "leave_role": self.leave_role.value if self.leave_role is not None else None,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Status:
        """A status from a settings/config row; ``code`` is required, the rest has defaults."""
        code = str(data["code"]).strip().upper()
        return cls(
            code=code,
            label_es=str(data.get("label_es") or code),
            label_en=str(data.get("label_en") or data.get("label_es") or code),
            priority=int(data.get("priority", 1000)),
            ageable=bool(data.get("ageable", True)),
            reached=bool(data.get("reached", False)),
            final=bool(data.get("final", False)),
            requires_callback=bool(data.get("requires_callback", False)),
            dnc=bool(data.get("dnc", False)),
            leave_role=Role.parse(str(data["leave_role"])) if data.get("leave_role") else None,
        )


@dataclass(frozen=True, slots=True)
class AgeingStep:
    """After ``months`` calendar months without contact, a contact becomes ``status``."""

    months: int
    status: str


STATUSES: tuple[Status, ...] = (
    Status("NC", "No contesta", "No answer", 1),
    Status("CUELGA", "Cuelga", "Hangs up", 2, reached=True),
    Status("SIN_GESTIONAR", "Sin gestionar", "Not handled", 3),
    Status("INTERESADO", "Interesado", "Interested", 4, ageable=False, reached=True),
    Status(
        "SERVICIOS_ACTIVOS",
        "Servicios activos",
        "Active services",
        5,
        ageable=False,
        reached=True,
        final=True,
    ),
    Status("PENDIENTE", "Pendiente", "Pending", 6, reached=True, requires_callback=True),
    Status("EN_PROGRESO", "En progreso", "In progress", 7, reached=True),
    Status("COMPLETADA", "Completada", "Completed", 8, reached=True, final=True),
    Status("NO_DISPONIBLE", "No disponible", "Unavailable", 9),
    Status("NO_EXISTE", "No existe", "Does not exist", 10),
    Status("SIN_RED", "Sin red", "No network", 11),
    Status("NO_CONTACTO", "No contacto", "No contact", 12),
    Status(
        "NO_LLAMAR",
        "No llamar",
        "Do not call",
        13,
        ageable=False,
        reached=True,
        final=True,
        dnc=True,
        leave_role=Role.PROJECT_MANAGER,
    ),
)

# Spellings seen in older data; keys are compared after status_key(), so case, accents, spaces and
# hyphens do not matter ("sin-gestionar", "Sin Gestionar" and "SIN_GESTIONAR" are one key).
LEGACY_ALIASES: Mapping[str, str] = {
    "NO CONTACTADO": "NO_CONTACTO",
    "NO CONTESTA": "NC",
    "N/C": "NC",
    "COMPLETADO": "COMPLETADA",
    "SERVICIO ACTIVO": "SERVICIOS_ACTIVOS",
}

AGEING_STEPS: tuple[AgeingStep, ...] = (
    AgeingStep(3, "NO_EXISTE"),
    AgeingStep(6, "SIN_RED"),
    AgeingStep(8, "NO_CONTACTO"),
)

DEFAULT_STATUS = "SIN_GESTIONAR"


@functools.lru_cache(maxsize=1024)
def status_key(text: str) -> str:
    """Comparison key of a status spelling: no accents, upper case, runs of non-alphanumerics as ``_``.

    Remembered for the last thousand spellings: an import's million rows use a handful of them.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SEPARATORS.sub("_", plain.upper()).strip("_")


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months, the day clamped to the target month (31 Jan + 1 = 28/29 Feb)."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


class Catalogue:
    """The statuses in force: lookup by any accepted spelling, list priority and ageing."""

    def __init__(
        self,
        statuses: Iterable[Status] = STATUSES,
        aliases: Mapping[str, str] = LEGACY_ALIASES,
        ageing: Iterable[AgeingStep] = AGEING_STEPS,
        default: str = DEFAULT_STATUS,
        transitions: Mapping[tuple[str, str], Role] | None = None,
    ) -> None:
        ordered = tuple(sorted(statuses, key=lambda s: s.priority))
        self._by_code: dict[str, Status] = {}
        for status in ordered:
            if not _CODE_PATTERN.match(status.code):
                raise ValueError(f"status code must be upper-case letters, digits and _: {status.code!r}")
            if status.code in self._by_code:
                raise ValueError(f"duplicate status code {status.code}")
            self._by_code[status.code] = status
        if default not in self._by_code:
            raise ValueError(f"default status {default} is not in the catalogue")
        self.statuses = ordered
        self.default = default
        self.aliases = dict(aliases)
        self._keys: dict[str, str] = {}
        for status in ordered:
            self._add_key(status.code, status.code)
        for status in ordered:
            self._add_key(status.label_es, status.code, soft=True)
            self._add_key(status.label_en, status.code, soft=True)
        for spelling, code in self.aliases.items():
            if code not in self._by_code:
                raise ValueError(f"alias {spelling!r} points to unknown status {code}")
            self._add_key(spelling, code)
        self.ageing = tuple(ageing)
        months = [step.months for step in self.ageing]
        if months != sorted(set(months)) or any(m <= 0 for m in months):
            raise ValueError("ageing steps must have strictly increasing positive months")
        self._age_rank: dict[str, int] = {}
        for rank, step in enumerate(self.ageing):
            if step.status not in self._by_code or step.status in self._age_rank:
                raise ValueError(f"ageing step status {step.status} unknown or repeated")
            self._age_rank[step.status] = rank
        self.transitions: dict[tuple[str, str], Role] = dict(transitions or {})
        for old, new in self.transitions:
            if old not in self._by_code or new not in self._by_code:
                raise ValueError(f"transition {old} -> {new} names an unknown status")

    def _add_key(self, spelling: str, code: str, soft: bool = False) -> None:
        key = status_key(spelling)
        if not key:
            return
        existing = self._keys.get(key)
        if existing is not None and existing != code:
            if soft:
                return
            raise ValueError(f"spelling {spelling!r} would mean both {existing} and {code}")
        self._keys[key] = code

    @property
    def codes(self) -> tuple[str, ...]:
        """Every status code, in list priority order."""
        return tuple(status.code for status in self.statuses)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str) -> Status:
        """The status with this exact code; :class:`InvalidStatus` when unknown."""
        try:
            return self._by_code[code]
        except KeyError:
            raise InvalidStatus(code, self.codes) from None

    def normalise(self, text: str) -> str:
        """The code for any accepted spelling (code, label, legacy alias); InvalidStatus otherwise."""
        code = self._keys.get(status_key(text))
        if code is None:
            raise InvalidStatus(text, self.codes)
        return code

    def priority(self, code: str) -> int:
        """List priority of a code (lower is listed first); unknown codes sort last."""
        status = self._by_code.get(code)
        return status.priority if status is not None else 1_000_000

    def required_role(self, old: str, new: str) -> Role:
        """The least role that may move a contact from ``old`` to ``new`` (Agent when nothing changes or
        ``old`` is a spelling the catalogue no longer holds)."""
        if old == new:
            return Role.AGENT
        explicit = self.transitions.get((old, new))
        if explicit is not None:
            return explicit
        status = self._by_code.get(old)
        return status.leaving_role if status is not None else Role.AGENT

    def allows(self, old: str, new: str, role: Role) -> bool:
        """Whether ``role`` may move a contact from ``old`` to ``new``."""
        return role.at_least(self.required_role(old, new))

    def transitions_from(self, old: str) -> dict[str, Role]:
        """Every other status and the least role that may move a contact from ``old`` to it."""
        return {
            status.code: self.required_role(old, status.code)
            for status in self.statuses
            if status.code != old
        }

    def with_statuses(self, *extra: Status, aliases: Mapping[str, str] | None = None) -> Catalogue:
        """A new catalogue with ``extra`` statuses (and spellings) added, e.g. from settings."""
        return Catalogue(
            statuses=(*self.statuses, *extra),
            aliases={**self.aliases, **(aliases or {})},
            ageing=self.ageing,
            default=self.default,
            transitions=self.transitions,
        )

    def aged_status(self, current: str, since: datetime, now: datetime) -> str | None:
        """The status ageing moves ``current`` to at ``now`` (no contact since ``since``), or None."""
        status = self._by_code.get(current)
        if status is not None and not status.ageable:
            return None
        reached: str | None = None
        for step in self.ageing:
            if now >= add_months(since, step.months):
                reached = step.status
        if reached is None or self._age_rank[reached] <= self._age_rank.get(current, -1):
            return None
        return reached


DEFAULT_CATALOGUE = Catalogue()


def normalise_status(text: str, catalogue: Catalogue = DEFAULT_CATALOGUE) -> str:
    """The catalogue code for ``text`` (legacy spellings mapped); :class:`InvalidStatus` if unknown."""
    return catalogue.normalise(text)
