"""The call centre's clock: callbacks are typed and shown in ``America/Costa_Rica`` time, sent in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CENTRE_ZONE_NAME = "America/Costa_Rica"
DATE_FORMAT = "%d/%m/%Y"
TIME_FORMAT = "%H:%M"


def centre_zone() -> tzinfo:
    """Costa Rica's zone (UTC-6 all year; the fixed offset when the zone database is missing)."""
    try:
        return ZoneInfo(CENTRE_ZONE_NAME)
    except ZoneInfoNotFoundError:
        return timezone(timedelta(hours=-6), "CST")


def end_of_local_day(now: datetime) -> datetime:
    """The last moment of ``now``'s day in the centre's time, as aware UTC."""
    local = now.astimezone(centre_zone())
    following = datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=centre_zone())
    return (following - timedelta(seconds=1)).astimezone(UTC)


def local_text(moment: datetime | None) -> str:
    """``dd/mm/aaaa HH:MM`` in the centre's time ("" when unknown)."""
    if moment is None:
        return ""
    return moment.astimezone(centre_zone()).strftime(f"{DATE_FORMAT} {TIME_FORMAT}")


def local_parts(moment: datetime) -> tuple[str, str]:
    """The date and time fields a form shows for ``moment`` in the centre's time."""
    local = moment.astimezone(centre_zone())
    return local.strftime(DATE_FORMAT), local.strftime(TIME_FORMAT)


class BadTime(ValueError):
    """A date or time typed that cannot be read, or is not in the future; the message says which."""


def parse_local(date_text: str, time_text: str, now: datetime) -> datetime:
    """The moment ``dd/mm/aaaa`` ``HH:MM`` in the centre's time, as aware UTC; it must be after ``now``."""
    date_text, time_text = date_text.strip(), time_text.strip()
    try:
        day = datetime.strptime(date_text, DATE_FORMAT).date()
    except ValueError:
        raise BadTime(f"La fecha «{date_text}» no es válida: escríbala como dd/mm/aaaa.") from None
    try:
        clock = datetime.strptime(time_text, TIME_FORMAT).time()
    except ValueError:
        raise BadTime(f"La hora «{time_text}» no es válida: escríbala como HH:MM (24 horas).") from None
    moment = datetime.combine(day, clock, tzinfo=centre_zone()).astimezone(UTC)
    if moment <= now:
        raise BadTime("La rellamada debe quedar en el futuro.")
    return moment
