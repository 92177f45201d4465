"""The fast phone path gives exactly parse_phone's answers, for every kind of input."""

from __future__ import annotations

import gc

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kernel.phone import InvalidPhone, Phone, parse_phone
from kernel.phonefast import PhoneNormaliser, normalise_fast, parse_phone_fast, same_number_key

Outcome = Phone | tuple[str, str]


def reference(raw: object) -> Outcome:
    try:
        return parse_phone(raw)
    except InvalidPhone as exc:
        return ("rechazado", exc.reason)


def fast(raw: object, normaliser: PhoneNormaliser | None = None) -> Outcome:
    result = (normaliser or normalise_fast)(raw)
    if isinstance(result, InvalidPhone):
        assert result.raw is raw
        return ("rechazado", result.reason)
    return result


@pytest.fixture(scope="module")
def normaliser() -> PhoneNormaliser:
    return PhoneNormaliser()


SHAPES = (
    "{a}{b}",
    "{a}-{b}",
    "{a} {b}",
    "{a}.{b}",
    "+506 {a} {b}",
    "+506{a}{b}",
    "506-{a}-{b}",
    "00506{a}{b}",
)


def test_every_four_digit_prefix_in_every_shape_matches_parse_phone(normaliser: PhoneNormaliser) -> None:
    mismatches = []
    for prefix in range(10_000):
        a = f"{prefix:04d}"
        b = f"{(prefix * 7919) % 10_000:04d}"  # a different suffix for each prefix
        shape = SHAPES[prefix % len(SHAPES)]
        for raw in (a + b, shape.format(a=a, b=b)):
            if fast(raw, normaliser) != reference(raw):
                mismatches.append(raw)
    assert mismatches == []


@pytest.mark.slow
def test_every_five_digit_block_gets_parse_phones_kind_and_operator(normaliser: PhoneNormaliser) -> None:
    # Carrier prefixes reach five national digits (Claro 70010-70014), type patterns six (65000, 65001);
    # suffixes 000 and 999 hit both ends of every block.
    mismatches = []
    for block in range(10_000, 100_000):
        if str(block)[0] not in "2345678":
            continue
        for suffix in ("000", "999"):
            raw = f"{block}{suffix}"
            if fast(raw, normaliser) != reference(raw):
                mismatches.append(raw)
    assert mismatches == []


TRICKY: list[object] = [
    "",
    "   ",
    None,
    True,
    False,
    float("nan"),
    float("inf"),
    "nan",
    "NaN",
    "None",
    "null",
    88123456,
    88123456.0,
    88123456.5,
    -88123456,
    50688123456,
    50688123456.0,
    "88123456.0",
    "8812-3456.0",
    "  8812-3456  ",
    "8812--3456",
    "8812 - 3456",
    "(506) 8812-3456",
    "+ 506 8812 3456",
    "+506-8812-3456",
    "+5068812345",
    "+50688123456789",
    "506 8812 3456",
    "5068812 3456",
    "0050688123456",
    "005068812345",
    "00 506 8812 3456",
    "011 506 8812 3456",
    "19008812",
    "19001234",
    "1900 8812 3456",
    "50612345",
    "50688123",
    "00123456",
    "01234567",
    "+50601234567",
    "30051234",
    "30061234",
    "65000123",
    "65002123",
    "70011234",
    "70015234",
    "73001234",
    "73021234",
    "80012345",
    "8001234567",
    "9001234567",
    "800-123-4567",
    "22123456",
    "20001234",
    "21071234",
    "40001234",
    "51001234",
    "８８１２３４５６",
    "8812\u00a03456",
    "8812\t3456",
    "tel: 8812-3456",
    "8812-3456 ext 12",
    "8812-3456 x12",
    "8812-3456;ext=1",
    "88-12-34-56",
    "8.8.1.2.3.4.5.6",
    "88123456 / 88123457",
    "abc",
    "+",
    "506",
    "+506",
    "8812",
    "881234567",
    "+1 555 123 4567",
    "+1 202 555 0123",
    "+34 612 34 56 78",
    "0034612345678",
    "+44 20 7946 0958",
    "+999 1234",
    "1-800-FLOWERS",
    "88I23456",
    "'+506 8812 3456",
    "=88123456",
]


@pytest.mark.parametrize("raw", TRICKY, ids=repr)
def test_tricky_inputs_get_the_same_answer_as_parse_phone(raw: object) -> None:
    assert fast(raw) == reference(raw)


PREFIXES = st.sampled_from(["", "", "", "+506", "506", "00506", "+506 ", "506-", "+1 ", "+", "00", "0", "("])
SEPARATORS = st.sampled_from(["", "", "", "-", " ", ".", "  ", "--", "/", ")", "\u00a0"])


@st.composite
def phone_like(draw: st.DrawFn) -> str:
    prefix = draw(PREFIXES)
    digits = draw(st.text(alphabet="0123456789", min_size=0, max_size=12))
    cut = draw(st.integers(min_value=0, max_value=len(digits)))
    tail = draw(st.sampled_from(["", "", ".0", " ", "x", "ext 5", "a"]))
    return f"{prefix}{digits[:cut]}{draw(SEPARATORS)}{digits[cut:]}{tail}"


@given(phone_like())
@settings(max_examples=1500, deadline=None)
@example("50612345678")
def test_generated_phone_like_strings_match_parse_phone(raw: str) -> None:
    assert fast(raw) == reference(raw)


@given(st.text(alphabet="0123456789+-. ()x", max_size=20))
@settings(max_examples=800, deadline=None)
def test_generated_junk_matches_parse_phone(raw: str) -> None:
    assert fast(raw) == reference(raw)


@given(st.one_of(st.integers(min_value=-(10**12), max_value=10**12), st.floats(allow_nan=True)))
@settings(max_examples=800, deadline=None)
def test_generated_excel_numbers_match_parse_phone(raw: float) -> None:
    assert fast(raw) == reference(raw)


@given(st.integers(min_value=20_000_000, max_value=89_999_999))
@settings(max_examples=800, deadline=None)
def test_generated_costa_rican_numbers_as_excel_floats_match_parse_phone(n: int) -> None:
    assert fast(float(n)) == reference(float(n))
    assert fast(f"{n // 10_000}-{n % 10_000:04d}") == reference(f"{n // 10_000}-{n % 10_000:04d}")


def key_agrees(raw: object) -> bool:
    """``same_number_key`` is the E.164 of a valid phone, and of no valid phone otherwise (or None)."""
    key = same_number_key(raw)
    expected = reference(raw)
    if isinstance(expected, Phone):
        return key == expected.e164
    return key is None or not isinstance(reference(key), Phone)


def test_the_same_number_key_of_every_four_digit_prefix_in_every_shape_is_its_e164_or_no_numbers() -> None:
    disagreeing = []
    for prefix in range(10_000):
        a = f"{prefix:04d}"
        b = f"{(prefix * 7919) % 10_000:04d}"
        for raw in (a + b, SHAPES[prefix % len(SHAPES)].format(a=a, b=b), float(a + b)):
            if not key_agrees(raw):
                disagreeing.append(raw)
    assert disagreeing == []


@given(
    st.one_of(
        phone_like(),
        st.text(alphabet="0123456789+-. ()x", max_size=20),
        st.integers(min_value=-(10**12), max_value=10**12),
        st.floats(allow_nan=True),
        st.sampled_from(TRICKY),
    )
)
@settings(max_examples=1500, deadline=None)
@example("50612345678")
def test_the_same_number_key_of_any_input_is_its_e164_or_no_numbers(raw: object) -> None:
    assert key_agrees(raw)


def test_a_kolbi_mobile_has_its_operator_and_national_form() -> None:
    phone = parse_phone_fast("+506 8812 3456")
    assert (phone.e164, phone.national, phone.kind, phone.operator) == (
        "+50688123456",
        "8812-3456",
        "mobile",
        "kolbi",
    )


def test_the_raising_variant_raises_like_parse_phone() -> None:
    with pytest.raises(InvalidPhone) as caught:
        parse_phone_fast("1234")
    assert caught.value.reason == reference("1234")[1]  # type: ignore[index]


@pytest.mark.parametrize(
    "raw",
    [
        "88123456",
        "8812-3456",
        "8812 3456",
        "+506 8812 3456",
        "506-8812-3456",
        "0050688123456",
        88123456.0,
        88123456,
    ],
)
def test_common_costa_rican_shapes_never_reach_the_slow_parser(
    raw: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(raw: object) -> Phone:
        raise AssertionError(f"slow path used for {raw!r}")

    monkeypatch.setattr("kernel.phonefast.parse_phone", refuse)
    result = PhoneNormaliser()(raw)
    assert isinstance(result, Phone)
    assert result.e164 == "+50688123456"


def test_rejected_phones_leave_no_reference_cycles_behind() -> None:
    """Bulk imports pause the cyclic collector: a million rejected rows must be freed as they go."""
    gc.collect()
    gc.disable()
    try:
        for n in range(200):
            normalise_fast(f"12{n}")
            normalise_fast("+1 212 555 0101")
            same_number_key(f"no es {n}")
        left = gc.collect()
    finally:
        gc.enable()
    assert left == 0
