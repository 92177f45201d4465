"""The desk agent, wired by its real composition root, against a real python-socketio server (uvicorn)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dialer_agent.bootstrap import Desk, build_desk
from dialer_agent.settings import DialerSettings
from dialer_agent.softphone import CallState
from dialer_agent.status import DeskStatus
from tests.dialer.doubles import KEY, FakeSoftphone, GatewayDouble
from tests.support.softphone import free_tcp_port

DESK = "puesto-7"


class RecordingView:
    def __init__(self) -> None:
        self.seen: list[DeskStatus] = []

    def show(self, status: DeskStatus) -> None:
        self.seen.append(status)

    def close(self) -> None:
        pass


@pytest.fixture
def port() -> int:
    return free_tcp_port()


@pytest.fixture
def gateway(port: int) -> Iterator[GatewayDouble]:
    server = GatewayDouble(port).start()
    yield server
    server.stop()


def desk_settings(tmp_path: Path, port: int, **changes: Any) -> DialerSettings:
    values: dict[str, Any] = {
        "server": f"http://127.0.0.1:{port}",
        "desk": DESK,
        "prefix": "9",
        "data_dir": tmp_path / "data",
        "ack_timeout_seconds": 2,
    }
    values.update(changes)
    return DialerSettings(**values)


@pytest.fixture
def desk_factory(
    tmp_path: Path, port: int
) -> Iterator[Callable[..., tuple[Desk, FakeSoftphone, RecordingView]]]:
    started: list[Desk] = []

    def make(
        softphone: FakeSoftphone | None = None, **changes: Any
    ) -> tuple[Desk, FakeSoftphone, RecordingView]:
        phone = softphone or FakeSoftphone()
        view = RecordingView()
        desk = build_desk(desk_settings(tmp_path, port, **changes), KEY, view, softphone=phone)
        desk.start()
        started.append(desk)
        return desk, phone, view

    yield make
    for desk in started:
        desk.stop()


def dial(call_id: str, desk: str = DESK, contact_id: int = 7) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "contact_id": contact_id,
        "phone_e164": "+50688123456",
        "dial": "88123456",
        "desk": desk,
        "requested_at": "2026-12-07T10:00:00Z",
    }


def test_an_answered_call_is_dialled_with_the_prefix_and_reported(
    gateway: GatewayDouble, desk_factory: Callable[..., Any]
) -> None:
    _, phone, view = desk_factory()
    gateway.wait_connected()
    auth = gateway.auths[0]
    assert (auth["api_key"], auth["desk"]) == (KEY, DESK)
    assert auth["agent"].startswith("callmanager-dialer/")
    gateway.wait_state("ready")

    gateway.send("dial", dial("c1"))
    assert phone.wait_dialled() == ["988123456"]
    assert gateway.wait_report("call_started") == [{"id": 7, "call_id": "c1"}]
    phone.push(CallState.RINGING, ref="sip-1")
    gateway.wait_state("ringing")
    phone.push(CallState.ESTABLISHED, ref="sip-1")
    gateway.wait_state("in_call")
    time.sleep(1.1)
    phone.push(CallState.CLOSED, "Connection reset by peer", ref="sip-1")
    (ended,) = gateway.wait_report("call_ended")
    assert ended["id"] == 7
    assert ended["call_id"] == "c1"
    assert ended["outcome"] == "answered"
    assert ended["talk_seconds"] >= 1
    assert ended["ring_seconds"] == 0
    states = [p["state"] for p in gateway.reports("desk_state")]
    assert states[-4:] == ["dialling", "ringing", "in_call", "ready"]
    assert any(s.last_call.startswith("988123456 contestada") for s in view.seen)


def test_a_dial_for_another_desk_is_ignored(gateway: GatewayDouble, desk_factory: Callable[..., Any]) -> None:
    _, phone, _ = desk_factory()
    gateway.wait_connected()
    gateway.send("dial", dial("c1", desk="otro-puesto"))
    time.sleep(0.5)
    assert phone.dialled == []
    assert gateway.reports("call_started") == []


def test_a_second_dial_while_busy_is_ended_failed_puesto_ocupado(
    gateway: GatewayDouble, desk_factory: Callable[..., Any]
) -> None:
    _, phone, _ = desk_factory()
    gateway.wait_connected()
    gateway.send("dial", dial("c1"))
    phone.wait_dialled()
    gateway.send("dial", dial("c2", contact_id=8))
    (ended,) = gateway.wait_report("call_ended")
    assert ended == {
        "id": 8,
        "call_id": "c2",
        "outcome": "failed",
        "ring_seconds": 0,
        "talk_seconds": 0,
        "reason": "puesto ocupado",
    }
    assert phone.dialled == ["988123456"]


def test_hanging_up_before_answer_is_cancelled_and_other_calls_hangups_are_ignored(
    gateway: GatewayDouble, desk_factory: Callable[..., Any]
) -> None:
    _, phone, _ = desk_factory()
    gateway.wait_connected()
    gateway.send("dial", dial("c1"))
    phone.wait_dialled()
    phone.push(CallState.RINGING)
    gateway.send("hangup", {"call_id": "not-mine"})
    time.sleep(0.3)
    assert phone.hangups == 0
    gateway.send("hangup", {"call_id": "c1"})
    (ended,) = gateway.wait_report("call_ended")
    assert (ended["call_id"], ended["outcome"], ended["talk_seconds"]) == ("c1", "cancelled", 0)
    assert phone.hangups == 1


def test_ringing_without_answer_is_hung_up_at_the_no_answer_timeout(
    gateway: GatewayDouble, desk_factory: Callable[..., Any]
) -> None:
    _, phone, _ = desk_factory(no_answer_seconds=1)
    gateway.wait_connected()
    gateway.send("dial", dial("c1"))
    phone.wait_dialled()
    phone.push(CallState.RINGING)
    (ended,) = gateway.wait_report("call_ended", timeout=5)
    assert (ended["outcome"], ended["ring_seconds"]) == ("no_answer", 1)
    assert phone.hangups == 1


def test_a_desk_softphone_without_progress_reports_the_agents_outcome(
    gateway: GatewayDouble, desk_factory: Callable[..., Any]
) -> None:
    _, phone, _ = desk_factory(FakeSoftphone(reports_progress=False))
    gateway.wait_connected()
    gateway.send("dial", dial("c1"))
    phone.wait_dialled()
    gateway.wait_report("call_started")
    gateway.wait_state("in_call")
    gateway.send("hangup", {"call_id": "c1", "outcome": "busy"})
    (ended,) = gateway.wait_report("call_ended")
    assert (ended["outcome"], ended["talk_seconds"]) == ("busy", 0)
    assert phone.hangups == 1


def test_a_missing_softphone_is_announced_and_its_dials_fail(
    gateway: GatewayDouble, desk_factory: Callable[..., Any]
) -> None:
    phone = FakeSoftphone()
    phone.problem = "baresip no responde en 127.0.0.1:4444"
    desk_factory(phone)
    gateway.wait_connected()
    gateway.wait_state("softphone_missing")
    gateway.send("dial", dial("c1"))
    (ended,) = gateway.wait_report("call_ended")
    assert ended["outcome"] == "failed"
    assert "baresip no responde" in ended["reason"]
    assert gateway.reports("call_started") == []


def test_a_refused_report_is_dropped_not_resent(
    gateway: GatewayDouble, desk_factory: Callable[..., Any], tmp_path: Path
) -> None:
    gateway.acks["call_started"] = lambda p: {"ok": False, "error": {"code": "call_not_open", "message": "x"}}
    desk, _phone, _ = desk_factory()
    gateway.wait_connected()
    gateway.send("dial", dial("c1"))
    gateway.wait_report("call_started")
    time.sleep(0.3)
    assert desk.outbox.pending() == []


def test_a_gateway_restart_mid_call_gets_the_end_exactly_once(
    gateway: GatewayDouble, desk_factory: Callable[..., Any], port: int
) -> None:
    desk, phone, _ = desk_factory()
    gateway.wait_connected()
    gateway.send("dial", dial("c1"))
    gateway.wait_report("call_started")
    phone.push(CallState.ESTABLISHED)
    gateway.wait_state("in_call")

    gateway.stop()  # the gateway goes away mid-call
    time.sleep(0.5)
    phone.push(CallState.CLOSED, "Connection reset by peer")
    deadline = time.monotonic() + 5
    while not desk.outbox.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.event for r in desk.outbox.pending()] == ["call_ended"]  # kept on disk meanwhile

    restarted = GatewayDouble(port).start()
    try:
        restarted.wait_connected(timeout=20)
        (ended,) = restarted.wait_report("call_ended", timeout=15)
        assert (ended["call_id"], ended["outcome"]) == ("c1", "answered")
        time.sleep(1.0)
        assert len(restarted.reports("call_ended")) == 1
        assert gateway.reports("call_ended") == []
        assert desk.outbox.pending() == []
        assert restarted.reports("desk_state")[-1]["state"] == "ready"
    finally:
        restarted.stop()


def test_reports_left_by_a_killed_desk_are_sent_after_its_restart(
    gateway: GatewayDouble, desk_factory: Callable[..., Any], tmp_path: Path, port: int
) -> None:
    from dialer_agent.outbox import Outbox

    outbox = Outbox(desk_settings(tmp_path, port).outbox_path)
    outbox.put("call_started", {"id": 7, "call_id": "old"})
    outbox.put(
        "call_ended",
        {"id": 7, "call_id": "old", "outcome": "no_answer", "ring_seconds": 30, "talk_seconds": 0},
    )
    outbox.close()
    desk_factory()
    gateway.wait_connected()
    ended = gateway.wait_report("call_ended")
    assert [e for e, _ in gateway.received if e != "desk_state"] == ["call_started", "call_ended"]
    assert ended[0]["outcome"] == "no_answer"


def test_a_wrong_key_is_never_accepted_and_the_desk_keeps_trying(
    gateway: GatewayDouble, tmp_path: Path, port: int
) -> None:
    view = RecordingView()
    desk = build_desk(desk_settings(tmp_path, port), "wrong-key", view, softphone=FakeSoftphone())
    desk.start()
    try:
        time.sleep(1.5)
        assert gateway.auths == []
        assert not any(s.connected for s in view.seen)
    finally:
        desk.stop()


def test_a_call_nobody_ends_is_closed_failed_at_the_maximum_duration(
    gateway: GatewayDouble, desk_factory: Callable[..., Any]
) -> None:
    _, phone, _ = desk_factory(FakeSoftphone(reports_progress=False), max_call_seconds=1)
    gateway.wait_connected()
    gateway.send("dial", dial("c1"))
    (ended,) = gateway.wait_report("call_ended", timeout=5)
    assert (ended["outcome"], ended["reason"]) == (
        "failed",
        "la llamada superó la duración máxima sin terminar",
    )
    assert phone.hangups == 1
    gateway.wait_state("ready")
