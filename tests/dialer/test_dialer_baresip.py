"""The baresip driver against a scripted ctrl_tcp server on a real loopback socket."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dialer_agent.baresip import LOST_REASON, BaresipDriver, baresip_target
from dialer_agent.softphone import CallEvent, CallState, SoftphoneError, SoftphoneUnavailable
from tests.dialer.doubles import FakeCtrlTcp
from tests.support.softphone import free_tcp_port


@pytest.fixture
def ctrl() -> Iterator[FakeCtrlTcp]:
    server = FakeCtrlTcp()
    yield server
    server.close()


def connected_driver(server: FakeCtrlTcp, template: str = "{number}", **options: Any) -> BaresipDriver:
    driver = BaresipDriver(("127.0.0.1", server.port), template, reconnect_seconds=0.05, **options)
    driver.start()
    assert driver.wait_connected(5)
    return driver


def collect(driver: BaresipDriver) -> queue.Queue[CallEvent]:
    events: queue.Queue[CallEvent] = queue.Queue()
    driver.watch(events.put)
    return events


def test_dial_sends_the_number_with_a_token_and_returns_on_ok(ctrl: FakeCtrlTcp) -> None:
    driver = connected_driver(ctrl)
    try:
        driver.dial("88123456")
        (command,) = ctrl.wait_command(1)
        assert command["command"] == "dial"
        assert command["params"] == "88123456"
        assert command["token"]
    finally:
        driver.close()


def test_the_dial_template_and_full_sip_uris() -> None:
    assert baresip_target("88123456") == "88123456"
    assert baresip_target("88123456", "sip:{number}@127.0.0.1:5080") == "sip:88123456@127.0.0.1:5080"
    assert baresip_target("sip:60000000@127.0.0.1:5080", "sip:{number}@pbx") == "sip:60000000@127.0.0.1:5080"


def test_responses_are_matched_by_token_not_by_order(ctrl: FakeCtrlTcp) -> None:
    held: list[dict[str, Any]] = []

    def answer_late(command: dict[str, Any]) -> dict[str, Any] | None:
        # An unrelated response and an event arrive before the real answer.
        ctrl.send({"response": True, "ok": False, "data": "other", "token": "someone-else"})
        ctrl.event("CALL_RINGING", "sip:x")
        held.append(command)
        return {"response": True, "ok": True, "data": "", "token": command["token"]}

    ctrl.responder = answer_late
    driver = connected_driver(ctrl, "sip:{number}@127.0.0.1:5080")
    events = collect(driver)
    try:
        driver.dial("88123456")
        assert held[0]["params"] == "sip:88123456@127.0.0.1:5080"
        assert events.get(timeout=2).state is CallState.RINGING
    finally:
        driver.close()


def test_a_refused_dial_raises_with_baresips_reason(ctrl: FakeCtrlTcp) -> None:
    ctrl.responder = lambda c: {"response": True, "ok": False, "data": "invalid uri", "token": c["token"]}
    driver = connected_driver(ctrl)
    try:
        with pytest.raises(SoftphoneError, match="invalid uri"):
            driver.dial("x")
    finally:
        driver.close()


def test_a_dial_without_answer_times_out(ctrl: FakeCtrlTcp) -> None:
    ctrl.responder = lambda c: None
    driver = connected_driver(ctrl, command_timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(SoftphoneError, match="no respondió"):
            driver.dial("88123456")
        assert time.monotonic() - started < 2
    finally:
        driver.close()


def test_call_events_reach_the_listener_in_order(ctrl: FakeCtrlTcp) -> None:
    driver = connected_driver(ctrl)
    events = collect(driver)
    try:
        driver.dial("88123456")
        ctrl.event("CALL_LOCAL_SDP", "offer")
        ctrl.event("CALL_RINGING", "sip:88123456@x")
        ctrl.event("CALL_REMOTE_SDP", "answer")
        ctrl.event("CALL_ESTABLISHED", "sip:88123456@x")
        ctrl.event("SOMETHING_ELSE")
        ctrl.event("CALL_CLOSED", "Connection reset by peer")
        seen = [events.get(timeout=2) for _ in range(4)]
        assert [e.state for e in seen] == [
            CallState.RINGING,
            CallState.MEDIA,
            CallState.ESTABLISHED,
            CallState.CLOSED,
        ]
        assert seen[-1].reason == "Connection reset by peer"
        assert seen[-1].ref == "c1"
        assert events.empty()
    finally:
        driver.close()


def test_hangup_sends_the_hangup_command(ctrl: FakeCtrlTcp) -> None:
    driver = connected_driver(ctrl)
    try:
        driver.hangup()
        assert ctrl.wait_command(1)[0]["command"] == "hangup"
        assert "params" not in ctrl.commands[0]
    finally:
        driver.close()


def test_without_baresip_dial_says_it_is_missing_and_check_explains() -> None:
    port = free_tcp_port()
    driver = BaresipDriver(("127.0.0.1", port))
    assert "no responde" in (driver.check() or "")
    driver.start()
    try:
        with pytest.raises(SoftphoneUnavailable):
            driver.dial("88123456")
        assert "no responde" in (driver.check() or "")
    finally:
        driver.close()


def test_a_baresip_restart_closes_the_call_and_the_driver_reconnects() -> None:
    first = FakeCtrlTcp()
    port = first.port
    driver = connected_driver(first)
    events = collect(driver)
    try:
        driver.dial("88123456")
        first.event("CALL_RINGING")
        assert events.get(timeout=2).state is CallState.RINGING
        first.close()  # baresip exits mid-call
        lost = events.get(timeout=2)
        assert (lost.state, lost.reason) == (CallState.CLOSED, LOST_REASON)
        assert driver.check() is not None

        second = FakeCtrlTcp(port=port)  # baresip back on the same port
        try:
            assert second.connected.wait(5)
            assert driver.wait_connected(5)
            driver.dial("22223333")
            assert second.wait_command(1)[0]["params"] == "22223333"
            assert driver.check() is None
        finally:
            second.close()
    finally:
        driver.close()
