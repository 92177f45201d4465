"""The whole desk against a real headless baresip calling a real SIPp, reporting to a real Socket.IO server.

Skipped when ``baresip`` or ``sipp`` is not on PATH, unless CALLMANAGER_REQUIRE_SERVICES=1 (then failed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dialer_agent.bootstrap import Desk, build_desk
from dialer_agent.settings import DialerSettings
from dialer_agent.status import DeskStatus
from tests.dialer.doubles import KEY, GatewayDouble
from tests.support.softphone import (
    BaresipProcess,
    free_tcp_port,
    free_udp_port,
    softphone_tools_or_skip,
    start_baresip,
    start_sipp,
)

pytestmark = pytest.mark.slow

SCENARIOS = Path(__file__).parent / "sipp"
DESK = "puesto-sip"


class QuietView:
    def show(self, status: DeskStatus) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def baresip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaresipProcess]:
    softphone_tools_or_skip("baresip", "sipp")
    process = start_baresip(
        tmp_path_factory.mktemp("baresip"), sip_port=free_udp_port(), ctrl_port=free_tcp_port()
    )
    yield process
    process.stop()


@pytest.fixture
def gateway() -> Iterator[GatewayDouble]:
    server = GatewayDouble(free_tcp_port()).start()
    yield server
    server.stop()


@pytest.fixture
def call_through(
    baresip: BaresipProcess, gateway: GatewayDouble, tmp_path: Path
) -> Iterator[Callable[..., tuple[dict[str, Any], Any]]]:
    desks: list[Desk] = []
    sipps: list[Any] = []

    def run(
        scenario: str, *, no_answer_seconds: float = 30, hangup_when: str | None = None
    ) -> tuple[dict[str, Any], Any]:
        callee_port = free_udp_port()
        sipp = start_sipp(SCENARIOS / scenario, tmp_path / "sipp", port=callee_port, rtp_echo=True)
        sipps.append(sipp)
        settings = DialerSettings(
            server=f"http://127.0.0.1:{gateway.port}",
            desk=DESK,
            softphone="baresip",
            baresip_ctrl=f"127.0.0.1:{baresip.ctrl_port}",
            baresip_dial_template=f"sip:{{number}}@127.0.0.1:{callee_port}",
            no_answer_seconds=no_answer_seconds,
            data_dir=tmp_path / "data",
        )
        desk = build_desk(settings, KEY, QuietView())
        desks.append(desk)
        desk.start()
        gateway.wait_connected(len(desks))
        gateway.wait_state("ready")
        call_id = f"call-{scenario}"
        gateway.send(
            "dial",
            {
                "call_id": call_id,
                "contact_id": 42,
                "phone_e164": "+50688123456",
                "dial": "88123456",
                "desk": DESK,
            },
        )
        gateway.wait_report("call_started")
        if hangup_when is not None:
            gateway.wait_state(hangup_when)
            gateway.send("hangup", {"call_id": call_id})
        (ended,) = gateway.wait_report("call_ended", timeout=no_answer_seconds + 15)
        assert ended["call_id"] == call_id
        assert ended["id"] == 42
        return ended, sipp

    yield run
    for desk in desks:
        desk.stop()
    for sipp in sipps:
        sipp.stop()


def test_answered_then_the_peer_hangs_up(call_through: Callable[..., Any]) -> None:
    ended, sipp = call_through("answer_peer_bye.xml")
    assert ended["outcome"] == "answered", ended
    assert ended["talk_seconds"] >= 1
    assert sipp.wait(timeout=10) == 0, sipp.log()


def test_busy_486(call_through: Callable[..., Any]) -> None:
    ended, sipp = call_through("busy_486.xml")
    assert (ended["outcome"], ended["talk_seconds"]) == ("busy", 0), ended
    assert "486" in ended["reason"]
    assert sipp.wait(timeout=10) == 0, sipp.log()


def test_ringing_forever_is_no_answer_and_the_callee_sees_cancel(call_through: Callable[..., Any]) -> None:
    ended, sipp = call_through("ring_forever.xml", no_answer_seconds=2)
    assert ended["outcome"] == "no_answer", ended
    assert ended["ring_seconds"] == 2
    assert sipp.wait(timeout=10) == 0, sipp.log()  # the scenario passes only after CANCEL, 487, ACK


def test_unavailable_503_is_failed(call_through: Callable[..., Any]) -> None:
    ended, sipp = call_through("unavailable_503.xml")
    assert ended["outcome"] == "failed", ended
    assert "503" in ended["reason"]
    assert sipp.wait(timeout=10) == 0, sipp.log()


def test_the_agent_hanging_up_an_answered_call_sends_bye(call_through: Callable[..., Any]) -> None:
    ended, sipp = call_through("answer_caller_bye.xml", hangup_when="in_call")
    assert ended["outcome"] == "answered", ended
    assert sipp.wait(timeout=10) == 0, sipp.log()  # the scenario passes only after our BYE


def test_the_agent_hanging_up_while_ringing_is_cancelled(call_through: Callable[..., Any]) -> None:
    ended, sipp = call_through("ring_forever.xml", hangup_when="ringing")
    assert ended["outcome"] == "cancelled", ended
    assert sipp.wait(timeout=10) == 0, sipp.log()
