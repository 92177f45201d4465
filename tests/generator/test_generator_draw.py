"""Drawing numbers: valid, carrier-consistent, unique, split as the method says, reproducible."""

from __future__ import annotations

import math
from fractions import Fraction

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType, carrier

from generator.draw import GenerationError, Method, SpaceExhausted, allocate, generate
from generator.ranges import COSTA_RICA, DEFAULT_WEIGHTS, Catalogue, Operator, OperatorRanges

CODES = COSTA_RICA.codes
CARRIER = {o.code: o.carrier for o in COSTA_RICA.operators}

weights_strategy = st.fixed_dictionaries(
    {code: st.one_of(st.integers(0, 100), st.floats(0, 100, allow_nan=False)) for code in CODES}
).filter(lambda w: sum(Fraction(str(v)) for v in w.values()) > 0)


def _exact(weight: float) -> Fraction:
    return Fraction(str(weight))


def _assert_largest_remainder(count: int, weights: dict[str, float], split: dict[str, int]) -> None:
    total = sum(_exact(w) for w in weights.values())
    quotas = {code: count * _exact(weights[code]) / total for code in CODES}
    floors = {code: math.floor(quotas[code]) for code in CODES}
    assert sum(split.values()) == count
    assert all(split[code] - floors[code] in (0, 1) for code in CODES)
    remainder = {code: quotas[code] - floors[code] for code in CODES}
    rounded_up = [code for code in CODES if split[code] > floors[code]]
    rounded_down = [code for code in CODES if split[code] == floors[code]]
    for up in rounded_up:
        assert all(remainder[up] >= remainder[down] for down in rounded_down)


def _is_mobile_of(national: str, code: str) -> bool:
    parsed = phonenumbers.parse("+506" + national)
    return (
        phonenumbers.is_valid_number_for_region(parsed, "CR")
        and phonenumbers.number_type(parsed) == PhoneNumberType.MOBILE
        and carrier.name_for_number(parsed, "en") == CARRIER[code]
    )


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(1, 5000),
    method=st.sampled_from(list(Method)),
    weights=weights_strategy,
    seed=st.integers(0, 2**32),
)
def test_every_generated_number_is_a_unique_valid_mobile_of_its_operator(
    count: int, method: Method, weights: dict[str, float], seed: int
) -> None:
    result = generate(count, method, weights, seed=seed)

    assert len(result) == count
    assert len(set(result.numbers)) == count
    assert all(_is_mobile_of(n, code) for n, code in zip(result.numbers, result.operators, strict=True))
    assert not any(70015000 <= int(n) < 70020000 for n in result.numbers)
    assert result.counts == {code: result.operators.count(code) for code in CODES}
    if method is Method.STRATIFIED:
        _assert_largest_remainder(count, weights, dict(result.counts))
    elif method is Method.SIMPLE:
        assert max(result.counts.values()) - min(result.counts.values()) <= 1
        assert list(result.counts.values()) == sorted(result.counts.values(), reverse=True)
    else:
        assert all(result.counts[c] == 0 for c in CODES if weights[c] == 0)


@settings(max_examples=200, deadline=None)
@given(count=st.integers(0, 10**7), weights=weights_strategy)
def test_stratified_allocation_is_exact_by_largest_remainder(count: int, weights: dict[str, float]) -> None:
    _assert_largest_remainder(count, weights, allocate(count, Method.STRATIFIED, weights))


@settings(max_examples=200, deadline=None)
@given(count=st.integers(0, 10**7))
def test_simple_allocation_is_equal_thirds_with_the_rest_to_the_first_operators(count: int) -> None:
    third, rest = divmod(count, 3)
    expected = [third + (1 if i < rest else 0) for i in range(3)]
    assert list(allocate(count, Method.SIMPLE, DEFAULT_WEIGHTS).values()) == expected


def test_default_split_of_a_thousand_numbers() -> None:
    assert allocate(1000, "stratified", DEFAULT_WEIGHTS) == {"kolbi": 400, "telefonica": 350, "claro": 250}
    assert allocate(1000, "simple", DEFAULT_WEIGHTS) == {"kolbi": 334, "telefonica": 333, "claro": 333}
    assert allocate(10, "stratified", {"kolbi": 0.4, "telefonica": 0.35, "claro": 0.25}) == allocate(
        10, "stratified", {"kolbi": 40, "telefonica": 35, "claro": 25}
    )


@pytest.mark.parametrize(
    "weights",
    [
        DEFAULT_WEIGHTS,
        {"kolbi": 1, "telefonica": 1, "claro": 1},
        {"kolbi": 70, "telefonica": 20, "claro": 10},
    ],
    ids=["40-35-25", "equal", "70-20-10"],
)
def test_random_shares_at_100000_are_within_half_a_point_of_the_weights(weights: dict[str, float]) -> None:
    result = generate(100_000, "random", weights, seed=20240601)
    total = sum(weights.values())
    for code, share in result.shares.items():
        assert abs(share - weights[code] / total) * 100 <= 0.5, (code, share)
    assert len(set(result.numbers)) == 100_000


@pytest.mark.parametrize("seed", range(20))
def test_random_never_picks_an_operator_weighing_zero_beside_a_tiny_weight(seed: int) -> None:
    result = generate(200, Method.RANDOM, {"kolbi": 0, "telefonica": 5e-324, "claro": 0}, seed=seed)
    assert result.counts == {"kolbi": 0, "telefonica": 200, "claro": 0}


def test_the_same_seed_gives_the_same_numbers_in_the_same_order() -> None:
    for method in Method:
        first = generate(2000, method, DEFAULT_WEIGHTS, seed=42)
        again = generate(2000, method, DEFAULT_WEIGHTS, seed=42)
        other = generate(2000, method, DEFAULT_WEIGHTS, seed=43)
        assert first == again
        assert first.numbers != other.numbers


def test_an_unseeded_request_reports_the_seed_that_reproduces_it() -> None:
    result = generate(500, "random", DEFAULT_WEIGHTS)
    assert generate(500, "random", DEFAULT_WEIGHTS, seed=result.seed) == result


def test_operators_are_interleaved_not_grouped() -> None:
    result = generate(1000, "stratified", DEFAULT_WEIGHTS, seed=1)
    changes = sum(a != b for a, b in zip(result.operators, result.operators[1:], strict=False))
    assert changes > 100


@settings(max_examples=25, deadline=None)
@given(count=st.integers(1, 3000), method=st.sampled_from(list(Method)), seed=st.integers(0, 2**32))
def test_excluded_numbers_are_redrawn_and_the_count_still_met(count: int, method: Method, seed: int) -> None:
    earlier = generate(count, method, DEFAULT_WEIGHTS, seed=seed)
    existing = set(earlier.numbers)

    result = generate(count, method, DEFAULT_WEIGHTS, seed=seed, exclude=existing)

    assert len(result) == count
    assert len(set(result.numbers)) == count
    assert existing.isdisjoint(result.numbers)
    assert result.counts == earlier.counts
    # The first operator's first draw repeats the earlier request exactly, so all of it is redrawn.
    first_drawn = next(code for code in CODES if earlier.counts[code])
    assert result.redraws >= earlier.counts[first_drawn]


def _tiny(*prefixes: str) -> Catalogue:
    operators = [Operator(f"op{i}", f"Op {i}", f"Carrier {i}") for i in range(len(prefixes))]
    return Catalogue(
        tuple(OperatorRanges.from_prefixes(o, (p,)) for o, p in zip(operators, prefixes, strict=True))
    )


def test_when_almost_everything_exists_the_remaining_numbers_are_found() -> None:
    catalogue = _tiny("88888")
    free = {"88888007", "88888123", "88888500", "88888999"}
    existing = {str(n) for n in range(88_888_000, 88_889_000)} - free

    result = generate(4, "simple", {}, seed=5, exclude=existing, catalogue=catalogue)

    assert set(result.numbers) == free
    assert 0 < result.redraws <= len(existing)


def test_asking_for_more_numbers_than_the_ranges_hold_is_refused() -> None:
    catalogue = _tiny("88888", "77777")
    assert len(generate(2000, "simple", {}, catalogue=catalogue)) == 2000
    with pytest.raises(SpaceExhausted, match="No hay suficientes números") as refused:
        generate(2001, "simple", {}, catalogue=catalogue)
    assert (refused.value.requested, refused.value.available) == (2001, 2000)
    with pytest.raises(SpaceExhausted, match="de Op 0") as refused:
        generate(1500, "stratified", {"op0": 3, "op1": 1}, catalogue=catalogue)
    assert refused.value.operator is not None
    assert refused.value.operator.code == "op0"


def test_existing_numbers_that_fill_the_space_are_reported_as_exhaustion() -> None:
    catalogue = _tiny("88888")
    existing = {str(n) for n in range(88_888_000, 88_888_990)}
    with pytest.raises(SpaceExhausted) as refused:
        generate(11, "simple", {}, seed=1, exclude=existing, catalogue=catalogue)
    assert refused.value.available == 10


@pytest.mark.parametrize(
    ("count", "method", "weights"),
    [
        (-1, "simple", DEFAULT_WEIGHTS),
        (10, "sorted", DEFAULT_WEIGHTS),
        (10, "stratified", {"kolbi": 0, "telefonica": 0, "claro": 0}),
        (10, "random", {"kolbi": -1, "telefonica": 1, "claro": 1}),
        (10, "stratified", {"liberty": 1}),
        (10, "random", {"kolbi": float("nan")}),
    ],
)
def test_invalid_requests_are_refused_with_a_message(
    count: int, method: str, weights: dict[str, float]
) -> None:
    with pytest.raises(GenerationError):
        generate(count, method, weights)


def test_each_number_has_its_formatted_and_e164_forms_and_statistics_add_up() -> None:
    result = generate(300, "stratified", DEFAULT_WEIGHTS, seed=9)
    first = next(iter(result))
    assert first.number == result.numbers[0]
    assert first.formatted == f"{first.number[:4]}-{first.number[4:]}"
    assert first.e164 == "+506" + first.number
    assert (
        phonenumbers.format_number(phonenumbers.parse(first.e164), phonenumbers.PhoneNumberFormat.E164)
        == first.e164
    )
    assert result.e164()[0] == first.e164
    stats = result.stats()
    assert stats["count"] == 300
    assert stats["method"] == "stratified"
    assert stats["redraws"] == 0
    assert stats["operators"] == [
        {"code": "kolbi", "name": "Kölbi", "count": 120, "share": 0.4},
        {"code": "telefonica", "name": "Telefónica", "count": 105, "share": 0.35},
        {"code": "claro", "name": "Claro", "count": 75, "share": 0.25},
    ]
    assert len(generate(0, "random", DEFAULT_WEIGHTS)) == 0
