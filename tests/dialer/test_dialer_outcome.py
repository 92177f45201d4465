"""Outcome mapping of SOFTPHONE.md, with whole seconds from a monotonic clock."""

from __future__ import annotations

from dialer_agent.outcome import CallProgress, CallResult
from dialer_agent.softphone import CallEvent, CallState

RINGING = CallEvent(CallState.RINGING)
MEDIA = CallEvent(CallState.MEDIA)
ESTABLISHED = CallEvent(CallState.ESTABLISHED)


def closed(reason: str) -> CallEvent:
    return CallEvent(CallState.CLOSED, reason)


def play(*steps: tuple[float, CallEvent], timed_out: bool = False, by_agent: bool = False) -> CallResult:
    progress = CallProgress(dialled_at=100.0)
    for at, event in steps:
        if event.state is CallState.CLOSED:
            progress.timed_out = timed_out
            progress.hung_up_by_agent = by_agent
        progress.record(event, 100.0 + at)
    return progress.result(now=999.0)


def test_established_then_peer_bye_is_answered_with_ring_and_talk_time() -> None:
    result = play((0.1, RINGING), (0.4, ESTABLISHED), (2.45, closed("Connection reset by peer")))
    assert result == CallResult("answered", 0, 2, "Connection reset by peer")


def test_established_then_our_hangup_is_still_answered() -> None:
    result = play(
        (3.0, RINGING), (6.6, ESTABLISHED), (70.0, closed("Connection reset by user")), by_agent=False
    )
    assert (result.outcome, result.ring_seconds, result.talk_seconds) == ("answered", 7, 63)


def test_486_and_600_are_busy() -> None:
    assert play((0.2, closed("486 Busy Here"))).outcome == "busy"
    assert play((0.2, closed("600 Busy Everywhere"))).outcome == "busy"


def test_ringing_ended_by_our_no_answer_timeout_is_no_answer() -> None:
    result = play((0.1, RINGING), (30.0, closed("Connection reset by user")), timed_out=True)
    assert (result.outcome, result.ring_seconds, result.talk_seconds) == ("no_answer", 30, 0)


def test_our_timeout_without_any_ringing_is_failed() -> None:
    assert play((30.0, closed("Connection reset by user")), timed_out=True).outcome == "failed"


def test_agent_hanging_up_before_answer_is_cancelled() -> None:
    result = play((0.1, RINGING), (4.0, closed("Connection reset by user")), by_agent=True)
    assert (result.outcome, result.ring_seconds) == ("cancelled", 4)


def test_closed_after_remote_sdp_without_established_is_failed_not_no_answer() -> None:
    assert play((0.1, RINGING), (0.3, MEDIA), (0.31, closed("Unknown error -2"))).outcome == "failed"


def test_other_statuses_and_lost_softphones_are_failed() -> None:
    assert play((0.1, closed("503 Service Unavailable"))).outcome == "failed"
    assert play((0.1, closed("404 Not Found"))).outcome == "failed"
    assert play((0.1, RINGING), (5.0, closed("conexión con baresip perdida"))).outcome == "failed"


def test_durations_are_never_negative() -> None:
    progress = CallProgress(dialled_at=10.0)
    progress.record(ESTABLISHED, 9.0)
    progress.record(closed("x"), 8.0)
    assert progress.result(now=8.0) == CallResult("answered", 0, 0, "x")
