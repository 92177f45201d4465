"""The status catalogue of lists and panel: from ``GET /statuses``, else the bundled one."""

from __future__ import annotations

from collections.abc import Sequence

from client.models import DEFAULT_STATUSES, StatusOption

# Row colours by status (background), chosen to read on light and dark themes.
STATUS_COLOURS: dict[str, str] = {
    "NC": "#f6d365",
    "CUELGA": "#f4a6a6",
    "SIN_GESTIONAR": "#e0e0e0",
    "INTERESADO": "#a8e6a1",
    "SERVICIOS_ACTIVOS": "#7fd1b9",
    "PENDIENTE": "#ffe8a3",
    "EN_PROGRESO": "#a7c7f2",
    "COMPLETADA": "#b5e3b0",
    "NO_DISPONIBLE": "#d9c2e9",
    "NO_EXISTE": "#c9c9c9",
    "SIN_RED": "#bfbfbf",
    "NO_CONTACTO": "#b0b0b0",
}
UNKNOWN_COLOUR = "#ffffff"


class StatusCatalogue:
    """Statuses by code, in list priority order."""

    def __init__(self, options: Sequence[StatusOption] = DEFAULT_STATUSES, *, bundled: bool = True) -> None:
        self.options = sorted(options, key=lambda o: (o.priority, o.code))
        self.bundled = bundled
        self._by_code = {o.code: o for o in self.options}

    def priority(self, code: str) -> int:
        """List priority of ``code`` (unknown codes last)."""
        option = self._by_code.get(code)
        return option.priority if option else 10_000

    def label(self, code: str, language: str = "es") -> str:
        """The label of ``code`` (the code itself when unknown)."""
        option = self._by_code.get(code)
        return option.label(language) if option else code

    def codes(self) -> list[str]:
        """Every code, by priority."""
        return [o.code for o in self.options]

    def colour(self, code: str) -> str:
        """Row colour of ``code``."""
        return STATUS_COLOURS.get(code, UNKNOWN_COLOUR)
