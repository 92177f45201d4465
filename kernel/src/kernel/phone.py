"""Phone numbers: one identity (E.164) for every way a user may type a number.

``phonenumbers`` (Google's libphonenumber metadata) is the source of truth; default region CR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, carrier

DEFAULT_REGION = "CR"
CR_COUNTRY_CODE = 506

_TYPE_NAMES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.VOIP: "voip",
}

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "código de país no válido",
    NumberParseException.NOT_A_NUMBER: "no es un número",
    NumberParseException.TOO_SHORT_AFTER_IDD: "demasiado corto tras el prefijo internacional",
    NumberParseException.TOO_SHORT_NSN: "demasiado corto",
    NumberParseException.TOO_LONG: "demasiado largo",
}

# libphonenumber still names Liberty (ex-Telefónica) "Movistar"; see COSTA_RICA.md.
OPERATOR_BY_CARRIER = {"Kolbi ICE": "kolbi", "Movistar": "telefonica", "Claro": "claro"}


class InvalidPhone(ValueError):
    """A number that cannot be a contact's phone, with the reason in Spanish."""

    def __init__(self, raw: object, reason: str) -> None:
        super().__init__(reason)
        self.raw = raw
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Phone:
    """A valid phone number in every form the product shows."""

    e164: str
    national: str
    country_code: int
    kind: str
    operator: str | None

    @property
    def dial_string(self) -> str:
        """What a desk softphone dials: 8 national digits in Costa Rica, ``00`` + E.164 digits abroad."""
        if self.country_code == CR_COUNTRY_CODE:
            return self.e164[4:]
        return "00" + self.e164[1:]


def clean_raw(raw: object) -> str:
    """Text of a raw cell: Excel floats (``88123456.0``), ints and blanks (``nan``) handled."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return ""
    if isinstance(raw, float):
        if math.isnan(raw) or math.isinf(raw):
            return ""
        if raw.is_integer():
            return str(int(raw))
        return repr(raw)
    if isinstance(raw, int):
        return str(raw)
    text = str(raw).strip()
    if text.lower() in {"nan", "none", "null"}:
        return ""
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return text


def national_format(e164: str) -> str:
    """``+50688123456`` → ``8812-3456``; other countries in libphonenumber's national format."""
    if e164.startswith("+506") and len(e164) == 12:
        return f"{e164[4:8]}-{e164[8:]}"
    parsed = phonenumbers.parse(e164, None)
    return phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)


def parse_phone(raw: object, region: str = DEFAULT_REGION) -> Phone:
    """Parse and validate ``raw``; raise :class:`InvalidPhone` with a reason when it is not a phone."""
    text = clean_raw(raw)
    if not text:
        raise InvalidPhone(raw, "teléfono vacío")
    digits = sum(ch.isdigit() for ch in text)
    if digits == 0:
        raise InvalidPhone(raw, "el teléfono no contiene dígitos")
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        # ``error_type`` is a plain int in the Python port, not an enum.
        detail = _PARSE_ERRORS.get(exc.error_type, "error de formato")
        raise InvalidPhone(raw, f"no es un número de teléfono ({detail})") from exc
    # "506-8812-3456" typed without "+": libphonenumber reads it as a national number; retry as international.
    if not phonenumbers.is_valid_number(parsed) and not text.lstrip().startswith("+"):
        stripped = "".join(ch for ch in text if ch.isdigit())
        if stripped.startswith("506") and len(stripped) == 11:
            parsed = phonenumbers.parse("+" + stripped, region)
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhone(raw, _length_reason(parsed))
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone(raw, "número no válido según el plan de numeración")
    e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    kind = _TYPE_NAMES.get(phonenumbers.number_type(parsed), "other")
    operator = None
    if parsed.country_code == CR_COUNTRY_CODE and kind == "mobile":
        operator = OPERATOR_BY_CARRIER.get(carrier.name_for_number(parsed, "en"))
    return Phone(
        e164=e164,
        national=national_format(e164),
        country_code=parsed.country_code or 0,
        kind=kind,
        operator=operator,
    )


def _length_reason(parsed: phonenumbers.PhoneNumber) -> str:
    result = phonenumbers.is_possible_number_with_reason(parsed)
    if result == phonenumbers.ValidationResult.TOO_SHORT:
        return "número demasiado corto"
    if result == phonenumbers.ValidationResult.TOO_LONG:
        return "número demasiado largo"
    if result == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE:
        return "código de país no válido"
    return "longitud de número no válida"
