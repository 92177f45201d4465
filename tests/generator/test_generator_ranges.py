"""The operator ranges hold only valid Costa Rican mobile numbers of the right carrier, per ``phonenumbers``.

The walk steps through every 1,000-number block. ``test_validity_and_carrier_never_change_inside_a_block``
proves that is enough: libphonenumber decides type and carrier for +506 from the first five national digits.
"""

from __future__ import annotations

import random
import re

import phonenumbers
import pytest
from phonenumbers import PhoneMetadata, PhoneNumberType, carrier, carrierdata

from generator.ranges import (
    CLARO,
    COSTA_RICA,
    KOLBI,
    TELEFONICA,
    Catalogue,
    Interval,
    Operator,
    OperatorRanges,
)

BLOCK = 1000


def _describe(national: int) -> tuple[bool, str]:
    """(valid mobile for CR?, libphonenumber's English carrier name) of an 8-digit national number."""
    parsed = phonenumbers.parse(f"+506{national}")
    mobile = (
        phonenumbers.is_valid_number_for_region(parsed, "CR")
        and phonenumbers.number_type(parsed) == PhoneNumberType.MOBILE
    )
    return mobile, carrier.name_for_number(parsed, "en")


def _top_level_alternatives(pattern: str) -> list[str]:
    parts, current, depth = [], "", 0
    for ch in pattern:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def test_validity_and_carrier_never_change_inside_a_block() -> None:
    metadata = PhoneMetadata.metadata_for_region("CR")
    descs = [
        metadata.general_desc,
        metadata.fixed_line,
        metadata.mobile,
        metadata.toll_free,
        metadata.premium_rate,
        metadata.shared_cost,
        metadata.personal_number,
        metadata.voip,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
    ]
    patterns = [d.national_number_pattern for d in descs if d is not None and d.national_number_pattern]
    assert metadata.mobile.national_number_pattern in patterns
    for pattern in patterns:
        for alternative in _top_level_alternatives(pattern):
            # Each alternative is X\d{k}: whether it matches depends only on all but the last k >= 3 digits.
            tail = re.search(r"\\d\{(\d+)\}$", alternative)
            assert tail is not None, alternative
            assert int(tail.group(1)) >= 3, alternative
    costa_rican_prefixes = [key[3:] for key in carrierdata.CARRIER_DATA if key.startswith("506")]
    assert costa_rican_prefixes
    assert max(len(p) for p in costa_rican_prefixes) <= 5
    for ranges in COSTA_RICA.ranges:
        for interval in ranges.intervals:
            assert interval.start % BLOCK == 0
            assert interval.end % BLOCK == 0


@pytest.mark.parametrize("ranges", COSTA_RICA.ranges, ids=lambda r: r.operator.code)
def test_every_block_of_every_range_is_a_valid_mobile_of_its_operator(ranges: OperatorRanges) -> None:
    rng = random.Random(ranges.operator.code)
    blocks = 0
    for interval in ranges.intervals:
        for start in range(interval.start, interval.end, BLOCK):
            for national in (start, start + BLOCK - 1, start + rng.randrange(1, BLOCK - 1)):
                mobile, name = _describe(national)
                assert mobile, national
                assert name == ranges.operator.carrier, national
            blocks += 1
    assert blocks * BLOCK == ranges.size


def test_ranges_have_the_sizes_of_the_numbering_plan() -> None:
    sizes = {r.operator.code: r.size for r in COSTA_RICA.ranges}
    assert sizes == {"kolbi": 9_000_000, "telefonica": 5_000_000, "claro": 3_015_000}
    assert COSTA_RICA.size == 17_015_000


def test_ranges_leave_out_only_what_the_product_leaves_out() -> None:
    """Against every mobile block libphonenumber knows: only 3005, 65000, 65001 and carrier-less ones."""
    mobile = re.compile(PhoneMetadata.metadata_for_region("CR").mobile.national_number_pattern)
    by_carrier = {KOLBI.carrier: KOLBI, TELEFONICA.carrier: TELEFONICA, CLARO.carrier: CLARO}
    left_out: dict[str, list[int]] = {}
    for prefix in range(10_000, 100_000):
        start = prefix * BLOCK
        operator = COSTA_RICA.operator_of(start)
        if not mobile.fullmatch(str(start)):
            assert operator is None, start
            continue
        is_mobile, name = _describe(start)
        assert is_mobile
        expected = by_carrier.get(name)
        if operator is not None:
            assert operator == expected, start
        else:
            left_out.setdefault(name, []).append(prefix)
    assert left_out[KOLBI.carrier] == list(range(30050, 30060))
    assert left_out[TELEFONICA.carrier] == [65000, 65001]
    assert CLARO.carrier not in left_out
    assert left_out[""] == [70015, 70016, 70017, 70018, 70019, *range(73020, 74000)]


def test_claro_carrierless_numbers_70015000_to_70019999_are_not_drawable() -> None:
    claro = COSTA_RICA.ranges_for("claro")
    for national in (70015000, 70017345, 70019999):
        assert _describe(national) == (True, "")
        assert national not in claro
        assert COSTA_RICA.operator_of(national) is None
    assert COSTA_RICA.operator_of(70014999) == CLARO
    assert COSTA_RICA.operator_of(70020000) == CLARO
    walked = {claro.number_at(i) for i in range(14_990, 15_010)}
    assert walked == set(range(70014990, 70015000)) | set(range(70020000, 70020010))


def test_index_walks_each_operators_ranges_in_order_without_gaps() -> None:
    kolbi = COSTA_RICA.ranges_for("kolbi")
    assert kolbi.number_at(0) == 50_000_000
    assert kolbi.number_at(999_999) == 50_999_999
    assert kolbi.number_at(1_000_000) == 57_000_000
    assert kolbi.number_at(2_000_000) == 83_000_000
    assert kolbi.number_at(kolbi.size - 1) == 89_999_999
    assert kolbi.texts_at([0, 1_000_000, 2_000_000, kolbi.size - 1]) == [
        "50000000",
        "57000000",
        "83000000",
        "89999999",
    ]
    with pytest.raises(IndexError):
        kolbi.number_at(kolbi.size)


def test_a_catalogue_refuses_overlapping_operators() -> None:
    one = OperatorRanges.from_prefixes(Operator("a", "A", "A"), ("88",))
    other = OperatorRanges.from_prefixes(Operator("b", "B", "B"), ("888",))
    with pytest.raises(ValueError, match="overlap"):
        Catalogue((one, other))


def test_prefixes_must_describe_eight_digit_numbers() -> None:
    with pytest.raises(ValueError):
        Interval.from_prefix("0123")
    with pytest.raises(ValueError):
        Interval.from_prefix("123456789")
    assert Interval.from_prefix("7300") == Interval(73_000_000, 73_010_000)
