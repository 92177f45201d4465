"""The desk dials the outside-line prefix, then 8 national digits (Costa Rica) or 00 + E.164 digits."""

from __future__ import annotations

import pytest

from dialer_agent.dialstring import InvalidDialRequest, dial_string_for, dial_string_of_request

COSTA_RICA_MOBILE = [
    "8812-3456",
    "88123456",
    "8812 3456",
    "8812.3456",
    "+506 8812 3456",
    "+50688123456",
    "+506-8812-3456",
    "506-8812-3456",
    "506 8812 3456",
    "(506) 8812-3456",
    "00506 8812 3456",
    "0050688123456",
    "88123456.0",
    "  8812-3456  ",
    "8812\u00a03456",
    88123456,
    88123456.0,
    50688123456,
    50688123456.0,
]


@pytest.mark.parametrize("raw", COSTA_RICA_MOBILE, ids=repr)
def test_every_accepted_shape_of_a_costa_rican_mobile_dials_eight_digits(raw: object) -> None:
    assert dial_string_for(raw) == "88123456"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2222-3333", "22223333"),
        ("+506 2222 3333", "22223333"),
        ("6012-3456", "60123456"),
        ("7001-2345", "70012345"),
        ("800-123-4567", "8001234567"),
    ],
)
def test_landlines_and_other_national_numbers_dial_their_national_digits(raw: str, expected: str) -> None:
    assert dial_string_for(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 202 555 0123", "0012025550123"),
        ("+12025550123", "0012025550123"),
        ("+44 20 7946 0958", "00442079460958"),
        ("+52 55 1234 5678", "00525512345678"),
        ("0012025550123", "0012025550123"),
    ],
)
def test_foreign_numbers_dial_00_and_the_country_code(raw: str, expected: str) -> None:
    assert dial_string_for(raw) == expected


@pytest.mark.parametrize(("prefix", "expected"), [("", "88123456"), ("9", "988123456"), ("0", "088123456")])
def test_the_outside_line_prefix_goes_first(prefix: str, expected: str) -> None:
    assert dial_string_for("+50688123456", prefix) == expected


def test_the_prefix_goes_before_the_international_00() -> None:
    assert dial_string_for("+12025550123", "9") == "90012025550123"


@pytest.mark.parametrize("prefix", ["9,", "+9", "a", " 9"])
def test_a_prefix_with_anything_but_digits_is_refused(prefix: str) -> None:
    with pytest.raises(InvalidDialRequest):
        dial_string_for("+50688123456", prefix)


@pytest.mark.parametrize("raw", ["", "8812", "881234567", "+1 555 123 4567", "no es un número", None])
def test_numbers_the_import_rejects_cannot_be_dialled(raw: object) -> None:
    with pytest.raises(InvalidDialRequest, match="no marcable"):
        dial_string_for(raw)


def test_a_request_without_e164_uses_the_servers_dial_digits() -> None:
    assert dial_string_of_request(None, "88123456", "9") == "988123456"
    assert dial_string_of_request("+50688123456", "11111111", "") == "88123456"
    with pytest.raises(InvalidDialRequest):
        dial_string_of_request(None, "8812-3456")
