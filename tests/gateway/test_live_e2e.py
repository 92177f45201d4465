"""Socket.IO on a real embedded system: keyless refusal, live notices, lock_denied, replay after a gap."""

from __future__ import annotations

import itertools
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import socketio

from tests.support.servers import EmbeddedServer


class Listener:
    """A real Socket.IO client that records every server event it receives."""

    NAMES = (
        "contact_created",
        "contact_updated",
        "contact_locked",
        "contact_unlocked",
        "contact_deleted",
        "lock_denied",
        "error",
        "resync",
        "bulk_update",
        "desk_state",
        "dial",
        "hangup",
        "call_requested",
        "call_started",
        "call_ended",
        "job_progress",
    )

    def __init__(self, base_url: str, auth: dict[str, Any] | None) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        for name in self.NAMES:
            self.client.on(name, self._recorder(name))
        self.client.connect(base_url, auth=auth, transports=["websocket"], wait_timeout=10)

    def _recorder(self, name: str) -> Any:
        def record(data: dict[str, Any]) -> None:
            self.events.put((name, data))

        return record

    def wait_for(self, name: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got, data = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if got == name and all(data.get(k) == v for k, v in match.items()):
                return data
        raise AssertionError(f"no {name} {match} within {timeout} s")

    def close(self) -> None:
        self.client.disconnect()


def wait_relayed(server: EmbeddedServer, count: int, timeout: float = 10.0) -> None:
    """Wait until the gateway has relayed ``count`` events live (so later ones can only be replays)."""
    reader = server.keys.get("metrics-reader") or server.create_user("metrics-reader", "ProjectManager")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = httpx.get(
            f"{server.base_url}/metrics", headers={"Accept": "application/json", "X-API-Key": reader}
        ).json()
        if sum(stats.get("callmanager_events_relayed", {}).values()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} events relayed within {timeout} s")


def test_connection_without_a_valid_key_is_refused(embedded_server: EmbeddedServer) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        Listener(embedded_server.base_url, None)
    with pytest.raises(socketio.exceptions.ConnectionError):
        Listener(embedded_server.base_url, {"api_key": "cm_000000000000_nope"})


def test_a_lock_by_one_agent_reaches_another_live(embedded_server: EmbeddedServer) -> None:
    ana_key = embedded_server.create_user("ana", "Agent")
    luis_key = embedded_server.create_user("luis", "Agent")
    ana = embedded_server.client(ana_key)
    listener = Listener(embedded_server.base_url, {"api_key": luis_key})
    try:
        contact = ana.post("/contacts", json={"phone": "8812-3456"}).json()
        created = listener.wait_for("contact_created", id=contact["id"])
        assert created["contact"]["phone_e164"] == "+50688123456"
        ana.post(f"/contacts/{contact['id']}/lock")
        locked = listener.wait_for("contact_locked", id=contact["id"])
        assert locked["locked_by_name"] == "ana"
        assert locked["position"] > created["position"]
        assert locked["contact"]["locked_by_name"] == "ana"
        assert locked["user_name"] == "ana"
    finally:
        listener.close()


def test_lock_over_socketio_is_denied_to_the_requester_only(embedded_server: EmbeddedServer) -> None:
    ana_key = embedded_server.create_user("ana", "Agent")
    luis_key = embedded_server.create_user("luis", "Agent")
    contact = embedded_server.client(ana_key).post("/contacts", json={"phone": "8812-3456"}).json()
    ana = Listener(embedded_server.base_url, {"api_key": ana_key})
    luis = Listener(embedded_server.base_url, {"api_key": luis_key})
    try:
        answer = ana.client.call("lock_contact", {"id": contact["id"], "duration_minutes": 5}, timeout=10)
        assert answer["ok"] is True
        refused = luis.client.call("lock_contact", {"id": contact["id"]}, timeout=10)
        assert refused["ok"] is False
        denied = luis.wait_for("lock_denied", id=contact["id"])
        assert denied["locked_by_name"] == "ana"
        with pytest.raises(AssertionError):
            ana.wait_for("lock_denied", timeout=1.0)
        updated = luis.client.call(
            "update_contact", {"id": contact["id"], "fields": {"note": "x"}}, timeout=10
        )
        assert updated["ok"] is False
        assert updated["error"]["code"] == "locked"
    finally:
        ana.close()
        luis.close()


def test_a_stale_edit_over_socketio_is_refused_with_what_changed(embedded_server: EmbeddedServer) -> None:
    ana_key = embedded_server.create_user("ana", "Agent")
    luis_key = embedded_server.create_user("luis", "Agent")
    contact = embedded_server.client(ana_key).post("/contacts", json={"phone": "8812-3456"}).json()
    ana = Listener(embedded_server.base_url, {"api_key": ana_key})
    luis = Listener(embedded_server.base_url, {"api_key": luis_key})
    try:
        read = contact["version"]
        first = luis.client.call(
            "update_contact", {"id": contact["id"], "fields": {"name": "Luis"}, "version": read}, timeout=10
        )
        assert first["ok"] is True
        assert first["contact"]["version"] == read + 1
        stale = ana.client.call(
            "update_contact", {"id": contact["id"], "fields": {"name": "Ana"}, "version": read}, timeout=10
        )
        assert stale["ok"] is False
        error = stale["error"]
        assert error["code"] == "version_mismatch"
        assert error["current"]["name"] == "Luis"
        assert [(c["field"], c["new"], c["username"]) for c in error["changes"]] == [("name", "Luis", "luis")]
        assert ana.wait_for("error", code="version_mismatch")["event"] == "update_contact"
        bad = ana.client.call(
            "update_contact", {"id": contact["id"], "fields": {"name": "Ana"}, "version": "2"}, timeout=10
        )
        assert bad["error"]["code"] == "invalid_input"
        fresh = ana.client.call(
            "update_contact",
            {"id": contact["id"], "fields": {"name": "Ana"}, "version": read + 1},
            timeout=10,
        )
        assert fresh["ok"] is True
        assert embedded_server.client(luis_key).get(f"/contacts/{contact['id']}").json()["name"] == "Ana"
    finally:
        ana.close()
        luis.close()


def test_reconnecting_client_receives_what_it_missed(embedded_server: EmbeddedServer) -> None:
    key = embedded_server.create_user("ana", "Agent")
    http = embedded_server.client(key)
    first = Listener(embedded_server.base_url, {"api_key": key})
    contact = http.post("/contacts", json={"phone": "8812-3456"}).json()
    seen = first.wait_for("contact_created", id=contact["id"])["position"]
    first.close()

    http.put(f"/contacts/{contact['id']}", json={"note": "mientras no estaba"})
    http.post(f"/contacts/{contact['id']}/lock")
    wait_relayed(embedded_server, 3)

    again = Listener(embedded_server.base_url, {"api_key": key, "last_position": seen})
    try:
        missed = again.wait_for("contact_updated", id=contact["id"])
        assert missed["fields"] == {"note": "mientras no estaba"}
        assert missed["replayed"] is True
        assert again.wait_for("contact_locked", id=contact["id"])["position"] > missed["position"]
    finally:
        again.close()


def _updated_positions(listener: Listener, count: int, timeout: float = 20.0) -> list[int]:
    """Positions of the next ``count`` contact_updated notices a client keeps, in the order it got them.

    The client's rule (client.live.LiveFeed): a notice whose position is not above the last one seen is
    a replay already applied and is dropped. So a notice sent out of order is lost, never reordered.
    """
    positions: list[int] = []
    last = 0
    deadline = time.monotonic() + timeout
    while len(positions) < count and time.monotonic() < deadline:
        try:
            name, data = listener.events.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if data["position"] <= last:
            continue
        last = data["position"]
        if name == "contact_updated":
            positions.append(data["position"])
    return positions


def _edit_concurrently(server: EmbeddedServer, key: str, ids: list[str], rounds: int) -> None:
    """``rounds`` note edits of each contact, from one thread per contact (events in quick succession)."""

    def edit(contact_id: str) -> None:
        with server.client(key) as http:
            for n in range(rounds):
                assert http.put(f"/contacts/{contact_id}", json={"note": f"nota {n}"}).status_code == 200

    with ThreadPoolExecutor(len(ids)) as pool:
        list(pool.map(edit, ids))


def test_live_notices_arrive_in_position_order_under_concurrent_edits(
    embedded_server: EmbeddedServer,
) -> None:
    # Clients drop a notice whose position is not above the last they saw, so one sent out of order is lost.
    key = embedded_server.create_user("lider", "TeamLead")
    http = embedded_server.client(key)
    ids = [http.post("/contacts", json={"phone": f"8812-{3400 + i}"}).json()["id"] for i in range(8)]
    listener = Listener(embedded_server.base_url, {"api_key": key})
    try:
        _edit_concurrently(embedded_server, key, ids, rounds=25)
        positions = _updated_positions(listener, 200)
        assert len(positions) == 200
    finally:
        listener.close()


def test_reconnecting_during_edits_gets_every_missed_notice_once_in_order(
    embedded_server: EmbeddedServer,
) -> None:
    key = embedded_server.create_user("lider", "TeamLead")
    http = embedded_server.client(key)
    first = Listener(embedded_server.base_url, {"api_key": key})
    ids = [http.post("/contacts", json={"phone": f"8812-{3500 + i}"}).json()["id"] for i in range(4)]
    seen = max(first.wait_for("contact_created", id=cid)["position"] for cid in ids)
    first.close()
    with ThreadPoolExecutor(1) as pool:
        editing = pool.submit(_edit_concurrently, embedded_server, key, ids, 30)
        time.sleep(0.2)  # some edits are stored before the client is back, some after
        again = Listener(embedded_server.base_url, {"api_key": key, "last_position": seen})
        try:
            editing.result()
            positions = _every_position(again, "contact_updated", 120)
            # Once: the replay of what was missed and the live notices must not overlap, not even by one
            # notice a client would drop; in order: each above the one before.
            twice = sorted({p for p in positions if positions.count(p) > 1})
            behind = [b for a, b in itertools.pairwise(positions) if b <= a]
            assert not twice, f"sent twice: {twice}, all: {positions}"
            assert not behind, f"out of order: {behind}, all: {positions}"
            assert len(positions) == 120, positions
            assert positions[0] > seen
        finally:
            again.close()


def _every_position(listener: Listener, name: str, count: int, timeout: float = 20.0) -> list[int]:
    """Positions of every ``name`` notice received, duplicates and disorder kept, until ``count`` arrived
    and one more second passed quietly (so a late duplicate is seen too)."""
    positions: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wait = 1.0 if len(positions) >= count else max(0.01, deadline - time.monotonic())
        try:
            got, data = listener.events.get(timeout=wait)
        except queue.Empty:
            break
        if got == name:
            positions.append(data["position"])
    return positions


def test_an_import_is_announced_in_bulk_not_contact_by_contact(embedded_server: EmbeddedServer) -> None:
    lead = embedded_server.client(embedded_server.create_user("laura", "TeamLead"))
    listener = Listener(embedded_server.base_url, {"api_key": embedded_server.create_user("ana", "Agent")})
    try:
        rows = [{"phone": f"8812{n:04d}", "name": f"Contacto {n}"} for n in range(300)]
        answer = lead.post("/import", json=rows, params={"list": "feria"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["inserted"] == 300
        announced = 0
        notices = 0
        while announced < 300:
            name, data = listener.events.get(timeout=10)
            notices += 1
            if name == "bulk_update":
                assert data["by_type"] == {"ContactCreated": data["count"]}
                announced += data["count"]
            else:
                assert name == "contact_created"
                announced += 1
        assert announced == 300
        # Bus batches may split the import; a piece of 50 or fewer is told contact by contact.
        assert notices <= 1 + 300 // 51 + 50
        assert listener.events.empty()
    finally:
        listener.close()
