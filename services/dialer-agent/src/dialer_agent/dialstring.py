"""What the desk dials: the outside-line prefix, then kernel's dial string for the number."""

from __future__ import annotations

from kernel.phone import InvalidPhone, parse_phone


class InvalidDialRequest(ValueError):
    """A dial request whose number cannot be dialled, with the reason in Spanish."""


def dial_string_for(phone_e164: object, prefix: str = "") -> str:
    """``prefix`` + 8 national digits in Costa Rica, or ``prefix`` + ``00`` + E.164 digits abroad."""
    if prefix and not prefix.isdigit():
        raise InvalidDialRequest("el prefijo de línea externa solo puede tener dígitos")
    try:
        phone = parse_phone(phone_e164)
    except InvalidPhone as exc:
        raise InvalidDialRequest(f"número no marcable: {exc.reason}") from exc
    return prefix + phone.dial_string


def dial_string_of_request(phone_e164: str | None, dial: str | None, prefix: str = "") -> str:
    """The number to dial: from ``phone_e164`` when given, else the server's ``dial`` digits."""
    if phone_e164:
        return dial_string_for(phone_e164, prefix)
    if dial and dial.isdigit():
        return prefix + dial
    raise InvalidDialRequest("la solicitud de marcación no trae un número válido")
