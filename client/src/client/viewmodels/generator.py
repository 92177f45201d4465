"""Generate Costa Rican numbers: amount, method, save toggle → result table and operator shares, savable."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from client.api import Gateway, error_text
from client.dispatch import Runner
from client.i18n import Translator
from client.models import Generation
from client.sheets import write_table

METHODS = ("stratified", "simple", "random")
OPERATOR_NAMES = {"kolbi": "Kölbi (ICE)", "telefonica": "Telefónica (Liberty)", "claro": "Claro"}


def operator_name(code: str) -> str:
    """Display name of an operator code."""
    return OPERATOR_NAMES.get(code.lower(), code)


class GeneratorState(StrEnum):
    """Where the generation stands."""

    IDLE = "idle"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class GeneratorViewModel:
    """One generation request and its result."""

    def __init__(self, api: Gateway, runner: Runner, translate: Translator) -> None:
        self._api = api
        self._runner = runner
        self.t = translate
        self.amount_text = "100"
        self.method = "stratified"
        self.save = False
        self.state = GeneratorState.IDLE
        self.result: Generation | None = None
        self.error = ""
        self.configured_weights: dict[str, float] = {}
        self.on_change: Callable[[], None] = lambda: None

    def load_weights(self) -> None:
        """Read the operator weights in force from ``GET /config`` (shown next to the method)."""
        self._runner.submit(self._api.config, self._got_config, lambda _exc: None)

    def _got_config(self, config: Mapping[str, Any]) -> None:
        flat = {
            key.removeprefix("generator_weight_"): float(value)
            for key, value in config.items()
            if key.startswith("generator_weight_") and isinstance(value, int | float)
        }
        if flat:
            self.configured_weights = flat
            self.on_change()
            return
        for key in ("generator_weights", "operator_weights", "weights"):
            value = config.get(key)
            if isinstance(value, Mapping):
                self.configured_weights = {
                    str(k): float(v) for k, v in value.items() if isinstance(v, int | float)
                }
                self.on_change()
                return

    def amount(self) -> int | None:
        """The amount typed, or None when it is not a whole number in 1..1000."""
        text = self.amount_text.strip()
        if not text.isdigit():
            return None
        value = int(text)
        return value if 1 <= value <= 1000 else None

    def generate(self) -> None:
        """Ask the gateway for numbers; refuse an invalid amount before sending."""
        amount = self.amount()
        if amount is None:
            self.state = GeneratorState.FAILED
            self.error = self.t("generate.amount_invalid")
            self.on_change()
            return
        method, save = self.method, self.save
        self.state = GeneratorState.RUNNING
        self.error = ""
        self.on_change()
        self._runner.submit(lambda: self._api.generate(amount, method, save), self._done, self._failed)

    def _done(self, result: Generation) -> None:
        self.result = result
        if result.weights:
            self.configured_weights = dict(result.weights)
        self.state = GeneratorState.DONE
        self.on_change()

    def _failed(self, exc: Exception) -> None:
        self.state = GeneratorState.FAILED
        self.error = error_text(exc)
        self.on_change()

    @property
    def text(self) -> str:
        """One line saying where the generation stands."""
        if self.state is GeneratorState.RUNNING:
            return self.t("generate.running")
        if self.state is GeneratorState.FAILED:
            return (
                self.error
                if self.error == self.t("generate.amount_invalid")
                else self.t("generate.failed", message=self.error)
            )
        if self.state is GeneratorState.DONE and self.result is not None:
            if self.result.saved or self.save:
                return self.t("generate.done", count=self.result.count, saved=self.result.saved)
            return self.t("generate.done_unsaved", count=self.result.count)
        return ""

    def rows(self) -> list[tuple[str, str, str]]:
        """Result table: number, formatted, operator."""
        if self.result is None:
            return []
        return [(p.number, p.formatted, operator_name(p.operator)) for p in self.result.phones]

    def shares(self) -> list[tuple[str, int, float]]:
        """Operator, count and percentage of the result."""
        if self.result is None or not self.result.phones:
            return []
        counts = Counter(p.operator for p in self.result.phones)
        total = sum(counts.values())
        return [(operator_name(op), n, 100.0 * n / total) for op, n in counts.most_common()]

    def shares_text(self) -> str:
        """``Kölbi (ICE) 40 (40.0 %) · ...``, with the configured weights when known."""
        parts = [f"{name} {n} ({pct:.1f} %)" for name, n, pct in self.shares()]
        text = " · ".join(parts)
        if self.configured_weights:
            total = sum(self.configured_weights.values()) or 1.0
            weights = " · ".join(
                f"{operator_name(k)} {100 * v / total:.0f} %" for k, v in self.configured_weights.items()
            )
            text = (
                f"{text}\n{self.t('generate.shares')}: {weights}"
                if text
                else f"{self.t('generate.shares')}: {weights}"
            )
        return text

    def save_result(self, path: Path) -> None:
        """Write the result table as CSV or xlsx (by suffix); raises OSError on failure."""
        write_table(
            path,
            [self.t("generate.number"), self.t("generate.formatted"), self.t("generate.operator")],
            self.rows(),
        )
