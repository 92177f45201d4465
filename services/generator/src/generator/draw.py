"""Draw unique Costa Rican mobile numbers by operator: pure functions, standard library only.

Built for volume: a million numbers are drawn as range indexes with ``random.Random.sample`` and turned into
8-digit strings with integer arithmetic; objects per number (``GeneratedNumber``) are only built on iteration.
The same seed, arguments and Python version give the same numbers in the same order.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from itertools import accumulate

from generator.ranges import COSTA_RICA, COUNTRY_CODE, Catalogue, Operator, OperatorRanges

# Once this share of an operator's space has been drawn, redraws walk the rest instead of probing at random.
_ENUMERATE_FROM = 0.75


class Method(StrEnum):
    """How a request's count is split among operators."""

    STRATIFIED = "stratified"
    SIMPLE = "simple"
    RANDOM = "random"


class GenerationError(ValueError):
    """A generation request that cannot be met; the message is for the user (Spanish)."""


class SpaceExhausted(GenerationError):
    """More distinct numbers were asked for than the ranges (minus excluded numbers) hold."""

    def __init__(self, requested: int, available: int, operator: Operator | None = None) -> None:
        self.requested = requested
        self.available = available
        self.operator = operator
        where = f" de {operator.name}" if operator else ""
        super().__init__(
            f"No hay suficientes números{where} disponibles: se pidieron {requested} "
            f"y como máximo hay {available}."
        )


def parse_method(method: str) -> Method:
    """The ``Method`` named ``method`` (GenerationError if unknown)."""
    try:
        return Method(method)
    except ValueError:
        known = ", ".join(m.value for m in Method)
        raise GenerationError(f"Método desconocido {method!r}; use uno de: {known}.") from None


def _check_weights(weights: Mapping[str, float], catalogue: Catalogue) -> list[Fraction]:
    """Exact weights in catalogue order; missing operators weigh 0."""
    unknown = sorted(set(weights) - set(catalogue.codes))
    if unknown:
        raise GenerationError(f"Operador desconocido en los pesos: {', '.join(unknown)}.")
    exact: list[Fraction] = []
    for code in catalogue.codes:
        weight = weights.get(code, 0)
        if not math.isfinite(weight) or weight < 0:
            raise GenerationError(f"El peso de {code} debe ser un número no negativo.")
        # Via the shortest decimal form, so 0.35 weighs exactly 7/20 and ties break as a person expects.
        exact.append(Fraction(str(weight)) if isinstance(weight, float) else Fraction(weight))
    if sum(exact) <= 0:
        raise GenerationError("Al menos un operador debe tener un peso mayor que cero.")
    return exact


def check_weights(weights: Mapping[str, float], catalogue: Catalogue = COSTA_RICA) -> None:
    """Raise GenerationError (Spanish) unless ``weights`` name known operators with usable values."""
    _check_weights(weights, catalogue)


def _largest_remainder(count: int, weights: list[Fraction]) -> list[int]:
    """Split ``count`` in proportion to ``weights``: floors, then +1 by largest remainder (ties: first)."""
    total = sum(weights)
    quotas = [count * w / total for w in weights]
    shares = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(quotas)), key=lambda j: (-(quotas[j] - shares[j]), j))
    for j in by_remainder[: count - sum(shares)]:
        shares[j] += 1
    return shares


def _equal_split(count: int, operators: int) -> list[int]:
    """Equal parts; the remainder goes one each to the first operators in catalogue order."""
    base, extra = divmod(count, operators)
    return [base + (1 if j < extra else 0) for j in range(operators)]


def _exact_split(count: int, method: Method, weights: Mapping[str, float], catalogue: Catalogue) -> list[int]:
    """Numbers per operator (catalogue order) for ``stratified`` (weights) or ``simple`` (weights ignored)."""
    if method is Method.STRATIFIED:
        return _largest_remainder(count, _check_weights(weights, catalogue))
    return _equal_split(count, len(catalogue.ranges))


def _operator_sequence(
    count: int, method: Method, weights: Mapping[str, float], catalogue: Catalogue, rng: random.Random
) -> list[int]:
    """The operator (catalogue index) of each position in the request, in output order."""
    if method is Method.RANDOM:
        exact = _check_weights(weights, catalogue)
        total = sum(exact)
        # Cumulative shares computed exactly, then rounded: the last is exactly 1.0 and an operator
        # weighing 0 repeats its neighbour's bound, so it can never be chosen (with raw float weights
        # as tiny as 5e-324 the scaled draw could round onto it).
        running = [float(c / total) for c in accumulate(exact)]
        return rng.choices(range(len(catalogue.ranges)), cum_weights=running, k=count)
    sequence: list[int] = []
    for j, n in enumerate(_exact_split(count, method, weights, catalogue)):
        sequence.extend([j] * n)
    rng.shuffle(sequence)
    return sequence


def allocate(
    count: int,
    method: Method | str,
    weights: Mapping[str, float],
    *,
    catalogue: Catalogue = COSTA_RICA,
    rng: random.Random | None = None,
) -> dict[str, int]:
    """Numbers per operator: exact for ``stratified`` and ``simple``, realised draws for ``random``."""
    if count < 0:
        raise GenerationError("La cantidad no puede ser negativa.")
    method = parse_method(method)
    if method is Method.RANDOM:
        sequence = _operator_sequence(count, method, weights, catalogue, rng or random.Random())
        split = [sequence.count(j) for j in range(len(catalogue.ranges))]
    else:
        split = _exact_split(count, method, weights, catalogue)
    return dict(zip(catalogue.codes, split, strict=True))


def _draw(
    rng: random.Random, ranges: OperatorRanges, k: int, exclude: Container[str] | None
) -> tuple[list[str], int]:
    """``k`` distinct numbers drawn uniformly from ``ranges``, none in ``exclude``; and the redraw count."""
    size = ranges.size
    if k > size:
        raise SpaceExhausted(k, size, ranges.operator)
    if k == 0:
        return [], 0
    indexes = rng.sample(range(size), k)
    drawn = ranges.texts_at(indexes)
    if exclude is None:
        return drawn, 0
    kept = [n for n in drawn if n not in exclude]
    redraws = k - len(kept)
    if not redraws:
        return kept, 0
    seen = set(indexes)
    while len(kept) < k and len(seen) < size * _ENUMERATE_FROM:
        index = rng.randrange(size)
        if index in seen:
            continue
        seen.add(index)
        number = str(ranges.number_at(index))
        if number in exclude:
            redraws += 1
        else:
            kept.append(number)
    if len(kept) < k:
        rest = [i for i in range(size) if i not in seen]
        if len(rest) < k - len(kept):
            raise SpaceExhausted(k, len(kept) + len(rest), ranges.operator)
        rng.shuffle(rest)
        for index in rest:
            number = str(ranges.number_at(index))
            if number in exclude:
                redraws += 1
                continue
            kept.append(number)
            if len(kept) == k:
                break
        else:
            raise SpaceExhausted(k, len(kept), ranges.operator)
    return kept, redraws


@dataclass(frozen=True)
class GeneratedNumber:
    """One generated number: its 8 national digits and its operator."""

    number: str
    operator: Operator

    @property
    def formatted(self) -> str:
        """``NNNN-NNNN``."""
        return f"{self.number[:4]}-{self.number[4:]}"

    @property
    def e164(self) -> str:
        """``+506NNNNNNNN``."""
        return f"+{COUNTRY_CODE}{self.number}"


@dataclass(frozen=True)
class GenerationResult:
    """The numbers of one request (parallel tuples: national number, operator code) and its statistics."""

    numbers: tuple[str, ...]
    operators: tuple[str, ...]
    method: Method
    counts: Mapping[str, int]
    redraws: int
    seed: int
    catalogue: Catalogue = field(default=COSTA_RICA, repr=False, compare=False)
    dnc_skipped: int = 0
    """Numbers drawn but on the do-not-call list, discarded and replaced (saving only)."""

    def __len__(self) -> int:
        return len(self.numbers)

    def __iter__(self) -> Iterator[GeneratedNumber]:
        by_code = {o.code: o for o in self.catalogue.operators}
        for number, code in zip(self.numbers, self.operators, strict=True):
            yield GeneratedNumber(number, by_code[code])

    def e164(self) -> list[str]:
        """The numbers in E.164 form, in output order."""
        prefix = "+" + COUNTRY_CODE
        return [prefix + n for n in self.numbers]

    @property
    def shares(self) -> dict[str, float]:
        """Each operator's share of the numbers (0..1; all 0 for an empty result)."""
        total = len(self.numbers)
        return {code: (n / total if total else 0.0) for code, n in self.counts.items()}

    def stats(self) -> dict[str, object]:
        """JSON-ready statistics: count, method, redraws, numbers skipped as do-not-call, seed, and count and
        share per operator."""
        shares = self.shares
        return {
            "count": len(self.numbers),
            "method": self.method.value,
            "redraws": self.redraws,
            "dnc_skipped": self.dnc_skipped,
            "seed": self.seed,
            "operators": [
                {"code": o.code, "name": o.name, "count": self.counts[o.code], "share": shares[o.code]}
                for o in self.catalogue.operators
            ],
        }


def new_seed() -> int:
    """A fresh random seed, so that even an unseeded request can be reproduced from its result."""
    return secrets.randbits(63)


def generate(
    count: int,
    method: Method | str,
    weights: Mapping[str, float],
    seed: int | None = None,
    exclude: Container[str] | None = None,
    *,
    catalogue: Catalogue = COSTA_RICA,
) -> GenerationResult:
    """``count`` distinct valid mobile numbers split by ``method``; none in ``exclude`` (national numbers)."""
    if count < 0:
        raise GenerationError("La cantidad no puede ser negativa.")
    method = parse_method(method)
    if count > catalogue.size:
        raise SpaceExhausted(count, catalogue.size)
    seed = new_seed() if seed is None else seed
    rng = random.Random(seed)
    sequence = _operator_sequence(count, method, weights, catalogue, rng)
    split = [sequence.count(j) for j in range(len(catalogue.ranges))]
    redraws = 0
    takers = []
    for ranges, k in zip(catalogue.ranges, split, strict=True):
        drawn, redrawn = _draw(rng, ranges, k, exclude)
        redraws += redrawn
        takers.append(iter(drawn).__next__)
    codes = catalogue.codes
    return GenerationResult(
        numbers=tuple([takers[j]() for j in sequence]),
        operators=tuple([codes[j] for j in sequence]),
        method=method,
        counts=dict(zip(codes, split, strict=True)),
        redraws=redraws,
        seed=seed,
        catalogue=catalogue,
    )
