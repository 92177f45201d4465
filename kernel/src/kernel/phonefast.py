"""Fast phone normalisation for bulk work: the common Costa Rican shapes without ``phonenumbers.parse``.

The answers are exactly those of :func:`kernel.phone.parse_phone` (same E.164, national form, kind,
operator and rejection reasons). Only inputs whose outcome is known without parsing take the fast path:
after :func:`~kernel.phone.clean_raw`, eight ASCII digits, optionally preceded by ``+506``, ``506`` or
``00506`` and separated by single ``-``, ``.`` or spaces, whose digits match the CR general pattern.
Everything else (other countries, ten-digit 800/900 numbers, junk, numbers outside the plan) goes to
``parse_phone``.

The tables are built from ``phonenumbers``' own metadata when a :class:`PhoneNormaliser` is created, so
a metadata upgrade changes both paths together:

* validity and kind: the CR ``national_number_pattern`` of every number type that admits eight digits,
  tried in the order of ``phonenumbers``' ``_number_type_helper``;
* operator: the CR entries of ``phonenumbers.carrierdata`` (longest prefix wins, as
  ``carrier.name_for_number`` does), memoised per block of national digits that decides the carrier.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from phonenumbers import PhoneMetadata, PhoneNumberDesc, PhoneNumberType
from phonenumbers.carrierdata import CARRIER_DATA, CARRIER_LONGEST_PREFIX

from kernel.phone import (
    _TYPE_NAMES,
    CR_COUNTRY_CODE,
    DEFAULT_REGION,
    OPERATOR_BY_CARRIER,
    InvalidPhone,
    Phone,
    clean_raw,
    parse_phone,
)

__all__ = ["PhoneNormaliser", "normalise_fast", "parse_phone_fast", "same_number_key"]

_NATIONAL_LENGTH = 8
_INVALID_REASON = "número no válido según el plan de numeración"
# ``+506``/``506``/``00506`` then eight digits with single separators; the national digits are group 1.
_SHAPE = re.compile(r"(?:(?:\+|00)?506[-. ]?)?([0-9](?:[-. ]?[0-9]){7})", re.ASCII)
_SEPARATORS = str.maketrans("", "", "-. ")

# The order of ``phonenumbers.phonenumberutil._number_type_helper``; fixed line and mobile come last.
_SPECIAL_TYPES = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)

Matcher = Callable[[str], object]


class PhoneNormaliser:
    """``parse_phone`` with a fast path for Costa Rican numbers; tables are built in the constructor."""

    def __init__(self) -> None:
        metadata = PhoneMetadata.metadata_for_region(DEFAULT_REGION)
        if metadata is None or metadata.country_code != CR_COUNTRY_CODE:
            raise RuntimeError("phonenumbers has no Costa Rica metadata")
        general = _matcher(metadata.general_desc)
        if general is None:
            raise RuntimeError("phonenumbers has no Costa Rica general pattern")
        self._general: Matcher = general
        self._special: list[tuple[Matcher, int]] = []
        for attribute, number_type in _SPECIAL_TYPES:
            matcher = _matcher(getattr(metadata, attribute))
            if matcher is not None:
                self._special.append((matcher, number_type))
        self._fixed = _matcher(metadata.fixed_line)
        self._mobile = _matcher(metadata.mobile)
        self._same_fixed_and_mobile = bool(metadata.same_mobile_and_fixed_line_pattern)
        self._carriers = _carrier_prefixes(str(CR_COUNTRY_CODE))
        # Longest carrier key decides how many national digits fix the carrier; memoise per such block.
        longest = max((len(k) for k in self._carriers), default=0)
        self._carrier_block = max(0, longest - len(str(CR_COUNTRY_CODE)))
        self._operator_by_block: dict[str, str | None] = {}

    def __call__(self, raw: object) -> Phone | InvalidPhone:
        """The :class:`Phone` for ``raw``, or the :class:`InvalidPhone` ``parse_phone`` would raise."""
        text = clean_raw(raw)
        if len(text) == _NATIONAL_LENGTH and text.isdigit() and text.isascii():
            national = text
        else:
            shape = _SHAPE.fullmatch(text)
            if shape is None:
                return _slow(raw)
            national = shape.group(1).translate(_SEPARATORS)
        number_type = self._number_type(national)
        if number_type is None:
            return _slow(raw)
        if number_type == PhoneNumberType.UNKNOWN:
            return InvalidPhone(raw, _INVALID_REASON)
        kind = _TYPE_NAMES.get(number_type, "other")
        operator = None
        if kind == "mobile":
            operator = self._operator(national)
        return Phone(
            e164="+506" + national,
            national=f"{national[:4]}-{national[4:]}",
            country_code=CR_COUNTRY_CODE,
            kind=kind,
            operator=operator,
        )

    def same_number_key(self, raw: object) -> str | None:
        """A key shared by every ``raw`` that normalises to the same valid number, found without checking
        validity: for a Costa Rican shape ``+506`` and its eight digits, else the parsed E.164 (None
        when invalid). A Costa Rican shape that is not a valid number gets the key of no valid number,
        because the normaliser gives ``+506`` plus the shape's digits exactly when those are valid.
        About four times cheaper than :meth:`__call__`: counting a file's repeated phones needs no more.
        """
        text = clean_raw(raw)
        if len(text) == _NATIONAL_LENGTH and text.isdigit() and text.isascii():
            return "+506" + text
        shape = _SHAPE.fullmatch(text)
        if shape is not None:
            return "+506" + shape.group(1).translate(_SEPARATORS)
        result = _slow(raw)
        return None if isinstance(result, InvalidPhone) else result.e164

    def _number_type(self, national: str) -> int | None:
        """Type as ``phonenumbers.number_type`` would say; ``None`` when outside the general pattern."""
        if not self._general(national):
            return None
        for matcher, number_type in self._special:
            if matcher(national):
                return number_type
        if self._fixed is not None and self._fixed(national):
            if self._same_fixed_and_mobile or (self._mobile is not None and self._mobile(national)):
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        if not self._same_fixed_and_mobile and self._mobile is not None and self._mobile(national):
            return PhoneNumberType.MOBILE
        return PhoneNumberType.UNKNOWN

    def _operator(self, national: str) -> str | None:
        block = national[: self._carrier_block]
        try:
            return self._operator_by_block[block]
        except KeyError:
            pass
        digits = str(CR_COUNTRY_CODE) + national
        name = ""
        for length in range(CARRIER_LONGEST_PREFIX, 0, -1):
            found = self._carriers.get(digits[:length])
            if found is not None:
                name = found
                break
        operator = OPERATOR_BY_CARRIER.get(name)
        self._operator_by_block[block] = operator
        return operator


def _matcher(desc: PhoneNumberDesc | None) -> Matcher | None:
    """``fullmatch`` of the pattern if ``desc`` admits eight digits (as ``_is_number_matching_desc``)."""
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = desc.possible_length or ()
    if lengths and _NATIONAL_LENGTH not in lengths:
        return None
    return re.compile(desc.national_number_pattern).fullmatch


def _carrier_prefixes(country_digits: str) -> dict[str, str]:
    """English carrier names of every carrier-data key that can prefix a number of this country."""
    names: dict[str, str] = {}
    for prefix, by_language in CARRIER_DATA.items():
        if prefix.startswith(country_digits) or country_digits.startswith(prefix):
            name = by_language.get("en")
            if name is not None:
                names[prefix] = name
    return names


def _slow(raw: object) -> Phone | InvalidPhone:
    try:
        return parse_phone(raw)
    except InvalidPhone as exc:
        # A fresh one, without the raised one's traceback: that holds the parser's frames in a reference
        # cycle (9 objects a rejected phone), which only the collector frees, and bulk imports pause it.
        return InvalidPhone(exc.raw, exc.reason)


@functools.cache
def _default() -> PhoneNormaliser:
    return PhoneNormaliser()


def normalise_fast(raw: object) -> Phone | InvalidPhone:
    """Same answer as ``parse_phone(raw)`` (region CR), returned instead of raised; fast for CR shapes."""
    return _default()(raw)


def same_number_key(raw: object) -> str | None:
    """:meth:`PhoneNormaliser.same_number_key` of the shared normaliser."""
    return _default().same_number_key(raw)


def parse_phone_fast(raw: object) -> Phone:
    """Drop-in for ``parse_phone(raw)``: the :class:`Phone`, or raise :class:`InvalidPhone`."""
    result = _default()(raw)
    if isinstance(result, InvalidPhone):
        raise result
    return result
