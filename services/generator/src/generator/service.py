"""The generator as the gateway and the CLI call it: weights from settings, no clash with contacts."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from generator.draw import GenerationResult, Method, generate, new_seed
from generator.ranges import CLARO, COSTA_RICA, COUNTRY_CODE, KOLBI, TELEFONICA, Catalogue

ExistingLookup = Callable[[Sequence[str]], Collection[str]]
"""Given E.164 numbers (``+506NNNNNNNN``), return those that already belong to a contact (in bulk)."""
DncLookup = Callable[[Sequence[str]], Collection[str]]
"""Given E.164 numbers, return those on the do-not-call list (in bulk)."""


class WeightSettings(Protocol):
    """The part of ``kernel.settings.Settings`` the generator reads."""

    @property
    def generator_weight_kolbi(self) -> float: ...

    @property
    def generator_weight_telefonica(self) -> float: ...

    @property
    def generator_weight_claro(self) -> float: ...


def weights_from_settings(settings: WeightSettings) -> dict[str, float]:
    """The operator weights (by operator code) configured in ``settings``."""
    return {
        KOLBI.code: float(settings.generator_weight_kolbi),
        TELEFONICA.code: float(settings.generator_weight_telefonica),
        CLARO.code: float(settings.generator_weight_claro),
    }


class GeneratorService:
    """Generates numbers with the configured weights; on request, none an existing contact already has
    and none on the do-not-call list."""

    def __init__(
        self,
        weights: Mapping[str, float],
        existing: ExistingLookup | None = None,
        catalogue: Catalogue = COSTA_RICA,
        dnc: DncLookup | None = None,
    ) -> None:
        self._weights = dict(weights)
        self._existing = existing
        self._catalogue = catalogue
        self._dnc = dnc

    @classmethod
    def from_settings(
        cls, settings: WeightSettings, existing: ExistingLookup | None = None
    ) -> GeneratorService:
        """A service with the weights of ``settings`` and an optional existing-contacts lookup."""
        return cls(weights_from_settings(settings), existing)

    @property
    def weights(self) -> dict[str, float]:
        """The default weights by operator code."""
        return dict(self._weights)

    def generate(
        self,
        count: int,
        method: Method | str = Method.STRATIFIED,
        *,
        seed: int | None = None,
        weights: Mapping[str, float] | None = None,
        avoid_existing: bool = False,
    ) -> GenerationResult:
        """``count`` unique numbers; with ``avoid_existing``, none a contact has (those are redrawn) and,
        with a do-not-call lookup, none on that list (skipped and replaced the same way).

        With ``avoid_existing`` the result's ``redraws`` counts the numbers discarded because a contact
        already had them, and ``dnc_skipped`` those discarded because they are on the do-not-call list.
        """
        chosen = self._weights if weights is None else weights
        if not avoid_existing:
            return generate(count, method, chosen, seed, catalogue=self._catalogue)
        if self._existing is None:
            raise RuntimeError("no existing-contacts lookup was configured for this generator")
        # One seed for every round, so each round repeats the last one except where a clash forced a redraw.
        seed = new_seed() if seed is None else seed
        prefix = "+" + COUNTRY_CODE
        taken: set[str] = set()
        barred: set[str] = set()
        checked: set[str] = set()
        while True:
            result = generate(count, method, chosen, seed, exclude=taken | barred, catalogue=self._catalogue)
            fresh = [n for n in result.numbers if n not in checked]
            clashes: set[str] = set()
            listed: set[str] = set()
            if fresh:
                asked = [prefix + n for n in fresh]
                if self._dnc is not None:
                    listed = {e.removeprefix(prefix) for e in self._dnc(asked)}.intersection(fresh)
                unlisted = [e for e in asked if e.removeprefix(prefix) not in listed]
                clashes = {e.removeprefix(prefix) for e in self._existing(unlisted)}
                checked.update(fresh)
                clashes.intersection_update(fresh)
            if not clashes and not listed:
                # Every number a contact had (or the list holds) was discarded and redrawn once, whichever
                # round found it.
                return replace(result, redraws=len(taken), dnc_skipped=len(barred))
            taken |= clashes
            barred |= listed
