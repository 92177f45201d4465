"""The port every desk softphone driver implements, and the call states it reports."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class CallState(enum.Enum):
    """What a softphone says about the call it was asked to make."""

    DIALLING = "dialling"
    RINGING = "ringing"
    MEDIA = "media"  # the far end's SDP arrived (answer or early media)
    ESTABLISHED = "established"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One call state, with the softphone's reason (``486 Busy Here``) and its own call reference."""

    state: CallState
    reason: str = ""
    ref: str = ""


CallListener = Callable[[CallEvent], None]


class SoftphoneError(RuntimeError):
    """The softphone refused or failed a command; the message is in Spanish."""


class SoftphoneUnavailable(SoftphoneError):
    """The softphone cannot be reached (not running, window closed, program missing)."""


class Softphone(Protocol):
    """A desk softphone the agent drives: one call at a time."""

    @property
    def reports_progress(self) -> bool:
        """Whether ``watch`` listeners see ringing/established/closed (else the agent ends each call)."""
        ...

    def watch(self, listener: CallListener) -> None:
        """Send every call state the softphone reports to ``listener``, from any thread."""
        ...

    def dial(self, number: str) -> None:
        """Start a call to ``number``; return once the softphone accepted it, else raise SoftphoneError."""
        ...

    def hangup(self) -> None:
        """End the current call, if any; raise SoftphoneError when the softphone cannot be told."""
        ...

    def check(self) -> str | None:
        """None when the softphone is reachable, else why not (Spanish)."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...
