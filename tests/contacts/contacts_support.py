"""Shared pieces of the contacts service tests: the people acting and a clock tests move."""

from __future__ import annotations

from datetime import datetime, timedelta

from contacts.commands import Caller, Role

ANA = Caller(user_id="u-ana", username="ana", role=Role.AGENT, team="norte")
BETO = Caller(user_id="u-beto", username="beto", role=Role.AGENT, team="norte")
LAURA = Caller(user_id="u-laura", username="laura", role=Role.TEAM_LEAD, team="norte")
PABLO = Caller(user_id="u-pablo", username="pablo", role=Role.PROJECT_MANAGER)


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
