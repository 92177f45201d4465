"""One call from click to metrics, through real processes (issue 17's end-to-end check).

``callmanager up`` (embedded), a real ``callmanager-dialer`` with its baresip driver, a real headless
baresip (``ctrl_tcp``) and SIPp as the called party on 127.0.0.1. The agent's side is plain HTTP, as the
client sends it. Each scenario is a SIPp script in ``tests/dialer/sipp``: answered then hung up by the
peer, busy (486), no answer (the desk gives up and cancels), failure (503), and hung up from the client
mid-call. A last test restarts the server mid-call: the desk keeps the end on disk and it is recorded
exactly once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import EmbeddedServer, Process, clean_env, start, start_embedded, wait_healthy
from tests.support.softphone import (
    BaresipProcess,
    free_tcp_port,
    free_udp_port,
    softphone_tools_or_skip,
    start_baresip,
    start_sipp,
)

pytestmark = pytest.mark.slow

SCENARIOS = Path(__file__).parents[1] / "dialer" / "sipp"
NO_ANSWER_SECONDS = 3


@dataclass
class Desk:
    """The desk side: baresip, the dialer agent as a process, and the SIPp port it dials."""

    baresip: BaresipProcess
    dialer: subprocess.Popen[bytes]
    log_path: Path
    callee_port: int
    data_dir: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.dialer.poll() is None:
            self.dialer.terminate()
            try:
                self.dialer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.dialer.kill()
        self.baresip.stop()


def start_desk(server: EmbeddedServer, key: str, workdir: Path) -> Desk:
    """baresip and ``callmanager-dialer --softphone baresip`` for the user of ``key``."""
    softphone_tools_or_skip("baresip", "sipp")
    callee_port, sip_port, ctrl_port = free_udp_port(), free_udp_port(), free_tcp_port()
    baresip = start_baresip(workdir / "baresip", sip_port=sip_port, ctrl_port=ctrl_port)
    log_path = workdir / "dialer.log"
    data_dir = workdir / "dialer-data"
    argv = [
        sys.executable,
        "-m",
        "dialer_agent",
        "--server",
        server.base_url,
        "--desk",
        "puesto-e2e",
        "--softphone",
        "baresip",
        "--baresip-ctrl",
        f"127.0.0.1:{ctrl_port}",
        "--baresip-dial-template",
        f"sip:{{number}}@127.0.0.1:{callee_port}",
        "--no-answer-seconds",
        str(NO_ANSWER_SECONDS),
        "--data-dir",
        str(data_dir),
    ]
    env = clean_env(CALLMANAGER_DIALER_API_KEY=key)
    with log_path.open("wb") as log:
        dialer = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    return Desk(baresip, dialer, log_path, callee_port, data_dir)


@dataclass
class World:
    server: EmbeddedServer
    desk: Desk
    workdir: Path

    def http(self, who: str = "ana") -> httpx.Client:
        return self.server.client(self.server.keys[who])

    def wait_desk(self, state: str = "ready", timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.http() as http:
            while time.monotonic() < deadline:
                desks = http.get("/desks").json()
                if desks and desks[0]["state"] == state:
                    return dict(desks[0])
                time.sleep(0.1)
        raise AssertionError(f"the desk never became {state}:\n{self.desk.log()}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    softphone_tools_or_skip("baresip", "sipp")
    workdir = tmp_path_factory.mktemp("calls-e2e")
    server = start_embedded(workdir)
    desk: Desk | None = None
    try:
        server.create_user("ana", "Agent", "norte")
        server.create_user("tomas", "TI")
        desk = start_desk(server, server.keys["ana"], workdir)
        world = World(server, desk, workdir)
        world.wait_desk()
        yield world
    finally:
        if desk is not None:
            desk.stop()
        server.process.stop()


def _new_contact(world: World, phone: str) -> str:
    with world.http() as http:
        created = http.post("/contacts", json={"phone": phone, "name": "Cliente"})
        assert created.status_code == 201, created.text
        return str(created.json()["id"])


def _call_history(world: World, contact_id: str, call_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The call's history rows once it has ended."""
    deadline = time.monotonic() + timeout
    with world.http() as http:
        while time.monotonic() < deadline:
            rows = [
                h
                for h in http.get(f"/contacts/{contact_id}/history").json()
                if h["field"] == "call" and h["detail"].get("call_id") == call_id
            ]
            if rows and rows[-1]["new"] not in ("requested", "started"):
                return rows
            time.sleep(0.1)
    raise AssertionError(f"call {call_id} never ended:\n{world.desk.log()}")


def _place(world: World, scenario: str, phone: str, **sipp: Any) -> tuple[str, str, Any]:
    sipp_process = start_sipp(
        SCENARIOS / scenario, world.workdir / "sipp", port=world.desk.callee_port, **sipp
    )
    contact_id = _new_contact(world, phone)
    with world.http() as http:
        placed = http.post(f"/contacts/{contact_id}/call")
    assert placed.status_code == 202, placed.text
    return contact_id, str(placed.json()["call_id"]), sipp_process


@pytest.mark.parametrize(
    ("scenario", "outcome", "talk_at_least", "sipp"),
    [
        pytest.param("answer_peer_bye.xml", "answered", 1, {"rtp_echo": True}, id="answered, peer hangs up"),
        pytest.param("busy_486.xml", "busy", 0, {}, id="busy"),
        pytest.param("ring_forever.xml", "no_answer", 0, {}, id="no answer"),
        pytest.param("unavailable_503.xml", "failed", 0, {}, id="failure 503"),
    ],
)
def test_each_way_a_call_ends_is_recorded_with_its_outcome_and_seconds(
    world: World, scenario: str, outcome: str, talk_at_least: int, sipp: dict[str, Any]
) -> None:
    phone = f"8812-{abs(hash(scenario)) % 10_000:04d}"
    contact_id, call_id, sipp_process = _place(world, scenario, phone, **sipp)
    try:
        rows = _call_history(world, contact_id, call_id)
        assert sipp_process.wait(timeout=30) == 0, sipp_process.log()
    finally:
        sipp_process.stop()

    ended = rows[-1]
    assert [r["new"] for r in rows] == ["requested", "started", outcome]
    talk, ring = int(ended["detail"]["duration_seconds"]), int(ended["detail"]["ring_seconds"])
    assert talk >= talk_at_least
    if outcome != "answered":
        assert talk == 0
    if outcome == "no_answer":
        assert ring >= NO_ANSWER_SECONDS - 1
    world.wait_desk("ready")


def test_the_agent_hangs_up_mid_call_from_the_client(world: World) -> None:
    contact_id, call_id, sipp_process = _place(world, "answer_caller_bye.xml", "8812-4321", rtp_echo=True)
    try:
        world.wait_desk("in_call")
        time.sleep(1.2)
        with world.http() as http:
            assert http.post(f"/calls/{call_id}/hangup").status_code == 202
        rows = _call_history(world, contact_id, call_id)
        assert sipp_process.wait(timeout=30) == 0, sipp_process.log()  # SIPp received our BYE
    finally:
        sipp_process.stop()
    assert [r["new"] for r in rows] == ["requested", "started", "answered"]
    assert int(rows[-1]["detail"]["duration_seconds"]) >= 1


def test_metrics_count_what_the_desk_reported(world: World) -> None:
    with world.http("tomas") as http:
        totals = http.get("/metrics/calls").json()["totals"]
        text = http.get("/metrics").text
    by_outcome = totals["by_outcome"]
    assert (by_outcome["answered"], by_outcome["busy"], by_outcome["no_answer"], by_outcome["failed"]) == (
        2,
        1,
        1,
        1,
    )
    assert totals["made"] == 5
    assert totals["in_progress"] == 0
    assert "callmanager_calls_placed_total 5.0" in text
    assert 'callmanager_calls_ended_total{outcome="answered"} 2.0' in text


def test_a_server_restarted_mid_call_records_the_end_exactly_once(tmp_path: Path) -> None:
    softphone_tools_or_skip("baresip", "sipp")
    server = start_embedded(tmp_path)
    port = server.base_url.rsplit(":", 1)[1]
    server.create_user("ana", "Agent", "norte")
    desk = start_desk(server, server.keys["ana"], tmp_path)
    world = World(server, desk, tmp_path)
    restarted: Process | None = None
    try:
        world.wait_desk()
        contact_id, call_id, sipp_process = _place(world, "answer_peer_bye.xml", "8812-9090", rtp_echo=True)
        world.wait_desk("in_call")
        server.process.stop()  # the peer hangs up while the server is down: the desk keeps the end
        assert sipp_process.wait(timeout=30) == 0, sipp_process.log()
        time.sleep(1.0)
        argv = ["up", "--no-client", "--port", port, "--data-dir", str(server.data_dir)]
        restarted = start("up-again", argv, clean_env(), tmp_path)
        wait_healthy(server.base_url, restarted)
        rows = _call_history(world, contact_id, call_id)
        time.sleep(2.0)  # a second delivery would show by now
        with world.http() as http:
            history = http.get(f"/contacts/{contact_id}/history").json()
    finally:
        desk.stop()
        if restarted is not None:
            restarted.stop()
        server.process.stop()
    ends = [h for h in history if h["field"] == "call" and h["new"] not in ("requested", "started")]
    assert [r["new"] for r in rows] == ["requested", "started", "answered"]
    assert len(ends) == 1, ends
    assert int(ends[0]["detail"]["duration_seconds"]) >= 1
