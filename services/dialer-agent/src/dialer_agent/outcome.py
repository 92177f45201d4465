"""From a softphone's call states to the outcome and durations the desk reports (pure, clock injected)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dialer_agent.softphone import CallEvent, CallState

ANSWERED = "answered"
NO_ANSWER = "no_answer"
BUSY = "busy"
FAILED = "failed"
CANCELLED = "cancelled"
OUTCOMES = frozenset({ANSWERED, NO_ANSWER, BUSY, FAILED, CANCELLED})

_BUSY_STATUS = re.compile(r"^\s*(486|600)\b")


@dataclass(frozen=True, slots=True)
class CallResult:
    """How one call ended, as reported in ``call_ended``."""

    outcome: str
    ring_seconds: int
    talk_seconds: int
    reason: str = ""


@dataclass
class CallProgress:
    """The states one call went through, stamped with a monotonic clock."""

    dialled_at: float
    rang: bool = False
    remote_media: bool = False
    established_at: float | None = None
    closed_at: float | None = None
    close_reason: str = ""
    timed_out: bool = False
    hung_up_by_agent: bool = False
    refs: set[str] = field(default_factory=set)

    def record(self, event: CallEvent, now: float) -> None:
        """Take one softphone event into account."""
        if event.state is CallState.RINGING:
            self.rang = True
        elif event.state is CallState.MEDIA:
            self.remote_media = True
        elif event.state is CallState.ESTABLISHED and self.established_at is None:
            self.established_at = now
        elif event.state is CallState.CLOSED and self.closed_at is None:
            self.closed_at = now
            self.close_reason = event.reason

    @property
    def closed(self) -> bool:
        """Whether the softphone said the call is over."""
        return self.closed_at is not None

    def result(self, now: float) -> CallResult:
        """The outcome per SOFTPHONE.md's mapping, with whole seconds of ringing and talk."""
        end = self.closed_at if self.closed_at is not None else now
        if self.established_at is not None:
            ring = self.established_at - self.dialled_at
            talk = end - self.established_at
            return CallResult(ANSWERED, _seconds(ring), _seconds(talk), self.close_reason)
        ring_seconds = _seconds(end - self.dialled_at)
        if self.hung_up_by_agent:
            outcome = CANCELLED
        elif self.timed_out and self.rang:
            outcome = NO_ANSWER
        elif _BUSY_STATUS.match(self.close_reason):
            outcome = BUSY
        else:
            outcome = FAILED
        return CallResult(outcome, ring_seconds, 0, self.close_reason)


def _seconds(duration: float) -> int:
    return max(0, round(duration))
