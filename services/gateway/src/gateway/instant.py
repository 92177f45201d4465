"""Date-time parameters read as ISO 8601 only.

Pydantic reads a number, or a string of one, as a Unix time: ``until=0.5`` would mean half a second after
1970. A query string is typed by hand and by scripts, and a number there is a mistake to refuse, not a
moment to guess; :data:`IsoInstant` refuses it with a 422 like every other invalid parameter.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_only(value: object) -> object:
    """``value`` unchanged when it is not text or reads as an ISO 8601 date; ``ValueError`` otherwise."""
    if isinstance(value, str | int | float) and not (isinstance(value, str) and _ISO_DATE.match(value)):
        raise ValueError("se esperaba una fecha ISO 8601 (AAAA-MM-DD o AAAA-MM-DDTHH:MM:SS±HH:MM)")
    return value


IsoInstant = Annotated[datetime, BeforeValidator(iso_only)]
"""A date-time given as ISO 8601 only (a query parameter: ``since: IsoInstant | None = None``)."""
