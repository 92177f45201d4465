"""Reports survive a kill: unacked ones are sent again once, in order; acked or refused ones are gone."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dialer_agent.link import LinkError
from dialer_agent.outbox import Outbox
from dialer_agent.reporter import Reporter


class ScriptedLink:
    """A gateway link whose acknowledgements the test chooses, per event and call id."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, Any] = {}
        self.offline = False
        self.delivered = threading.Condition()

    def call(self, event: str, payload: dict[str, Any], timeout: float) -> Any:
        with self.delivered:
            self.sent.append((event, payload))
            self.delivered.notify_all()
        if self.offline:
            raise LinkError("not connected")
        answer = self.answers.get(payload["call_id"], {"ok": True})
        if answer is None:
            raise LinkError("timed out")
        return answer

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        pass

    def wait_sent(self, count: int, timeout: float = 5.0) -> list[tuple[str, dict[str, Any]]]:
        with self.delivered:
            self.delivered.wait_for(lambda: len(self.sent) >= count, timeout)
        return list(self.sent)


def ended(call_id: str) -> dict[str, Any]:
    return {"id": 7, "call_id": call_id, "outcome": "answered", "ring_seconds": 1, "talk_seconds": 5}


def test_reports_are_on_disk_in_order_before_anything_is_sent(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    outbox.put("call_started", {"id": 7, "call_id": "a"})
    outbox.put("call_ended", ended("a"))
    outbox.close()  # the process is killed here

    reopened = Outbox(tmp_path / "outbox.sqlite3")
    assert [(r.event, r.payload["call_id"]) for r in reopened.pending()] == [
        ("call_started", "a"),
        ("call_ended", "a"),
    ]


def test_after_a_restart_unacked_reports_are_sent_once_in_order_and_acked_ones_never(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    first_link = ScriptedLink()
    first_link.answers = {"b": None}  # b's end is never acknowledged (connection lost)
    outbox = Outbox(path)
    reporter = Reporter(outbox, first_link)
    for call_id in ("a", "b", "c"):
        outbox.put("call_ended", ended(call_id))
    reporter.connected()
    assert reporter.deliver_pending() is False  # a acked, b unanswered: stop there, keep order
    assert [p["call_id"] for _, p in first_link.sent] == ["a", "b"]
    outbox.close()  # killed

    second_link = ScriptedLink()
    restarted = Reporter(Outbox(path), second_link)
    restarted.start()
    try:
        restarted.connected()
        sent = second_link.wait_sent(2)
        assert [p["call_id"] for _, p in sent] == ["b", "c"]
    finally:
        restarted.stop()
    assert Outbox(path).pending() == []


def test_a_refusal_is_final_and_the_next_report_follows(tmp_path: Path) -> None:
    link = ScriptedLink()
    link.answers = {"a": {"ok": False, "error": {"code": "call_not_open", "message": "cerrada"}}}
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    reporter = Reporter(outbox, link)
    outbox.put("call_ended", ended("a"))
    outbox.put("call_ended", ended("b"))
    reporter.connected()
    assert reporter.deliver_pending() is True
    assert [p["call_id"] for _, p in link.sent] == ["a", "b"]
    assert outbox.pending() == []


def test_an_unacknowledged_report_waits_for_the_next_connection_and_is_sent_once(tmp_path: Path) -> None:
    link = ScriptedLink()
    link.offline = True
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    reporter = Reporter(outbox, link, ack_timeout=0.2)
    reporter.start()
    try:
        reporter.connected()
        reporter.report("call_ended", ended("a"))
        assert len(link.wait_sent(1)) == 1
        reporter.report("call_ended", ended("b"))  # held behind a until a new connection
        assert len(link.wait_sent(2, timeout=0.5)) == 1

        link.offline = False
        reporter.connected()
        sent = link.wait_sent(3)
        assert [p["call_id"] for _, p in sent] == ["a", "a", "b"]
        assert len(link.wait_sent(4, timeout=0.5)) == 3
    finally:
        reporter.stop()
    assert outbox.pending() == []


def test_a_lost_ack_on_a_live_connection_is_retried_after_the_retry_delay(tmp_path: Path) -> None:
    link = ScriptedLink()
    link.answers = {"a": None}
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    reporter = Reporter(outbox, link, ack_timeout=0.1, retry_seconds=0.5)
    reporter.start()
    try:
        reporter.connected()
        reporter.report("call_ended", ended("a"))
        reporter.report("call_ended", ended("b"))
        assert len(link.wait_sent(1)) == 1
        link.answers = {}
        sent = link.wait_sent(3, timeout=5)
        assert [p["call_id"] for _, p in sent] == ["a", "a", "b"]
    finally:
        reporter.stop()
    assert outbox.pending() == []
