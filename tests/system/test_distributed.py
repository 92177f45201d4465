"""Distributed mode as separate processes on PostgreSQL and Redis, as docker compose would run them.

``callmanager serve contacts`` appends events and relays them to Redis Streams; two ``callmanager serve
gateway`` processes call it over HTTP and share Socket.IO fan-out through Redis. A change made through
one gateway reaches live clients of both. ``callmanager serve generator`` and ``serve importexport`` run
alone too, taking their commands and jobs from their own rq queues.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.gateway.test_live_e2e import Listener
from tests.support.cluster import TIMEOUT, Cluster, run_cluster, wait_finished
from tests.support.servers import clean_env, wait_healthy


class CallbackListener(Listener):
    """A real Socket.IO client that also records ``callback_reminder``."""

    NAMES = (*Listener.NAMES, "callback_reminder")


@pytest.fixture
def deployment(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with run_cluster(
        postgres_url,
        redis_url,
        tmp_path,
        gateways=2,
        workers=["generator", "importexport"],
        # A callback set 30 minutes ahead is owed its reminder at once (test_callback_reminder...).
        CALLBACK_REMINDER_MINUTES="60",
        CALLBACK_SWEEP_SECONDS="0.5",
    ) as running:
        yield running


def test_an_event_from_the_contacts_process_reaches_clients_of_both_gateways(deployment: Cluster) -> None:
    ana = deployment.create_key("Agent", "ana")
    luis = deployment.create_key("Agent", "luis")
    first = Listener(deployment.gateway_urls[0], {"api_key": luis})
    second = Listener(deployment.gateway_urls[1], {"api_key": luis})
    try:
        with httpx.Client(
            base_url=deployment.gateway_urls[0], headers={"X-API-Key": ana}, timeout=TIMEOUT
        ) as http:
            created = http.post("/contacts", json={"phone": "8812-3456", "name": "Ana"})
            assert created.status_code == 201, created.text
            contact_id = created.json()["id"]
            assert http.post(f"/contacts/{contact_id}/lock").status_code == 200
        for listener in (first, second):
            assert listener.wait_for("contact_created", id=contact_id)["contact"]["name"] == "Ana"
            assert listener.wait_for("contact_locked", id=contact_id)["locked_by_name"] == "ana"
        with httpx.Client(
            base_url=deployment.gateway_urls[1], headers={"X-API-Key": luis}, timeout=TIMEOUT
        ) as other:
            seen = other.get(f"/contacts/{contact_id}")
            wanted = {"type": "contacts.GetContact", "data": {"contact_id": contact_id}}
            bypass = httpx.post(f"{deployment.contacts_url}/queries", json=wanted, headers={"X-Caller": "{}"})
            assert bypass.status_code == 401
            assert seen.json()["locked_by_name"] == "ana"
            assert other.put(f"/contacts/{contact_id}", json={"note": "x"}).status_code == 423
    finally:
        first.close()
        second.close()


def test_a_callback_set_through_one_gateway_is_listed_moved_and_reminded_through_the_other(
    deployment: Cluster,
) -> None:
    ana = deployment.create_key("Agent", "ana")
    reminders = CallbackListener(deployment.gateway_urls[1], {"api_key": ana})
    try:
        due = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
        with httpx.Client(
            base_url=deployment.gateway_urls[0], headers={"X-API-Key": ana}, timeout=TIMEOUT
        ) as http:
            contact_id = http.post("/contacts", json={"phone": "8812-3999", "name": "Eva"}).json()["id"]
            assert http.post(f"/contacts/{contact_id}/lock").status_code == 200
            wrapped = http.post(
                f"/contacts/{contact_id}/disposition",
                json={"outcome": "callback", "status": "PENDIENTE", "callback_at": due},
            )
            assert wrapped.status_code == 200, wrapped.text
        reminder = reminders.wait_for("callback_reminder", timeout=20, contact_id=contact_id)
        assert (reminder["contact_name"], reminder["phone"], reminder["scope"]) == (
            "Eva",
            "+50688123999",
            "personal",
        )
        with httpx.Client(
            base_url=deployment.gateway_urls[1], headers={"X-API-Key": ana}, timeout=TIMEOUT
        ) as other:
            [listed] = other.get("/callbacks").json()
            assert listed["callback_id"] == reminder["callback_id"]
            moved = other.patch(f"/callbacks/{listed['callback_id']}", json={"scope": "shared"})
            assert moved.status_code == 200, moved.text
            assert moved.json()["scope"] == "shared"
            assert other.delete(f"/callbacks/{listed['callback_id']}").status_code == 204
            assert other.get("/callbacks").json() == []
    finally:
        reminders.close()


def test_a_shared_reminder_reaches_the_campaigns_team_through_either_gateway_and_no_other_team(
    deployment: Cluster,
) -> None:
    pm = deployment.create_key("ProjectManager", "pablo")
    ana = deployment.create_key("Agent", "ana", team="norte")
    beto = deployment.create_key("Agent", "beto", team="norte")
    carlos = deployment.create_key("Agent", "carlos", team="sur")
    with httpx.Client(
        base_url=deployment.gateway_urls[0], headers={"X-API-Key": pm}, timeout=TIMEOUT
    ) as http:
        made = http.post("/campaigns", json={"name": "Renovaciones", "lists": ["renov"], "teams": ["norte"]})
        assert made.status_code == 201, made.text
        created = http.post("/contacts", json={"phone": "8812-3998", "name": "Rita", "list": "renov"})
        contact_id = created.json()["id"]
    north = CallbackListener(deployment.gateway_urls[1], {"api_key": beto})
    south = [CallbackListener(url, {"api_key": carlos}) for url in deployment.gateway_urls]
    try:
        due = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
        with httpx.Client(base_url=deployment.gateway_urls[0], headers={"X-API-Key": ana}) as http:
            assert http.post(f"/contacts/{contact_id}/lock").status_code == 200
            wrapped = http.post(
                f"/contacts/{contact_id}/disposition",
                json={"outcome": "callback", "callback_at": due, "callback_scope": "shared"},
            )
            assert wrapped.status_code == 200, wrapped.text
        heard = north.wait_for("callback_reminder", timeout=20, contact_id=contact_id)
        assert (heard["contact_name"], heard["scope"]) == ("Rita", "shared")
        for listener in south:
            with pytest.raises(AssertionError):
                listener.wait_for("callback_reminder", timeout=1.5, contact_id=contact_id)
    finally:
        for listener in (north, *south):
            listener.close()


def test_a_user_deactivated_from_the_cli_is_refused_by_both_running_gateways(
    deployment: Cluster, tmp_path: Path
) -> None:
    """Gateways keep key rows; the CLI's change reaches them through PostgreSQL's notification."""
    ana = deployment.create_key("Agent", "ana")
    clients = [
        httpx.Client(base_url=url, headers={"X-API-Key": ana}, timeout=TIMEOUT)
        for url in deployment.gateway_urls
    ]
    try:
        for _ in range(3):  # read, then served from the kept row
            assert [c.get("/contacts?limit=5").status_code for c in clients] == [200, 200]
        env = clean_env(CALLMANAGER_DATABASE_URL=deployment.database_url)
        cli = subprocess.run(
            [sys.executable, "-m", "system", "users", "deactivate", "ana"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stdout + cli.stderr
        done = time.monotonic()
        refused_after = []
        for client in clients:
            while client.get("/contacts?limit=5").status_code != 401:
                assert time.monotonic() - done < 2.0, "a running gateway still admitted the user after 2 s"
                time.sleep(0.005)
            refused_after.append(time.monotonic() - done)
        assert max(refused_after) < 2.0
    finally:
        for client in clients:
            client.close()


def test_an_edit_through_one_gateway_is_in_the_next_list_read_through_another(deployment: Cluster) -> None:
    """The contacts process keeps first pages; its own commits count before any notification."""
    ana = deployment.create_key("Agent", "ana")
    first = httpx.Client(base_url=deployment.gateway_urls[0], headers={"X-API-Key": ana}, timeout=TIMEOUT)
    second = httpx.Client(base_url=deployment.gateway_urls[1], headers={"X-API-Key": ana}, timeout=TIMEOUT)
    try:
        created = first.post("/contacts", json={"phone": "8812-3457", "name": "Ana"})
        assert created.status_code == 201, created.text
        contact_id = created.json()["id"]
        for note in ("uno", "dos", "tres"):
            second.get("/contacts?limit=50")  # kept by the contacts process
            second.get("/contacts?limit=50")
            assert first.put(f"/contacts/{contact_id}", json={"note": note}).status_code == 200
            listed = second.get("/contacts?limit=50").json()
            assert [c["note"] for c in listed if c["id"] == contact_id] == [note]
    finally:
        first.close()
        second.close()


def test_a_desk_on_one_gateway_places_and_reports_a_call_requested_through_the_other(
    deployment: Cluster,
) -> None:
    ana = deployment.create_key("Agent", "ana")
    tomas = deployment.create_key("TI", "tomas")
    desk = Listener(deployment.gateway_urls[0], {"api_key": ana, "desk": "puesto-1"})
    try:
        with httpx.Client(
            base_url=deployment.gateway_urls[1], headers={"X-API-Key": ana}, timeout=TIMEOUT
        ) as http:
            contact_id = http.post("/contacts", json={"phone": "8812-3456"}).json()["id"]
            listed = http.get("/desks").json()
            placed = http.post(f"/contacts/{contact_id}/call")
        assert [d["desk"] for d in listed] == ["puesto-1"]
        assert placed.status_code == 202, placed.text
        call_id = placed.json()["call_id"]
        dial = desk.wait_for("dial", call_id=call_id)
        assert (dial["dial"], dial["desk"]) == ("88123456", "puesto-1")
        report = {"id": contact_id, "call_id": call_id}
        assert desk.client.call("call_started", report, timeout=10) == {"ok": True}
        ended = {**report, "outcome": "busy", "ring_seconds": 0, "talk_seconds": 0}
        assert desk.client.call("call_ended", ended, timeout=10) == {"ok": True}
        with httpx.Client(
            base_url=deployment.gateway_urls[1], headers={"X-API-Key": tomas}, timeout=TIMEOUT
        ) as http:
            totals = http.get("/metrics/calls").json()["totals"]
        assert (totals["made"], totals["failed"], totals["by_outcome"]["busy"]) == (1, 1, 1)
    finally:
        desk.close()
    with httpx.Client(
        base_url=deployment.gateway_urls[1], headers={"X-API-Key": ana}, timeout=TIMEOUT
    ) as http:
        deadline = time.monotonic() + 10
        while http.get("/desks").json() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert http.get("/desks").json() == []
        gone = http.post(f"/contacts/{contact_id}/call")
    assert gone.status_code == 409
    assert gone.json()["error"]["code"] == "no_desk"


def test_generate_and_import_through_the_gateway_reach_the_generator_and_importexport_processes(
    deployment: Cluster,
) -> None:
    manager = deployment.create_key("ProjectManager", "marta")
    progress = Listener(deployment.gateway_urls[1], {"api_key": manager})
    try:
        with httpx.Client(
            base_url=deployment.gateway_urls[0], headers={"X-API-Key": manager}, timeout=TIMEOUT
        ) as http:
            now = http.post("/api/generate_contacts", json={"amount": 40, "save": True, "seed": 3})
            refused = http.post("/api/generate_contacts", json={"amount": 5, "weights": {"x": 1}})
            queued = http.post("/api/generate_contacts", json={"amount": 1500, "save": True})
            records = http.post("/import", json=[{"phone": "8899-0001", "name": "Uno"}, {"phone": "12"}])
            upload = http.post(
                "/import", files={"file": ("l.csv", "telefono;nombre\n8899-0002;Dos\n8899-0003;Tres\n")}
            )
            unreadable = http.post("/import", files={"file": ("l.csv", b"\x00\x01 nada")})
            assert queued.status_code == 202, queued.text
            assert upload.status_code == 202, upload.text
            generated = wait_finished(http, queued.json()["id"])
            imported = wait_finished(http, upload.json()["id"])
            exported = http.get("/export", params={"format": "csv", "list": imported["report"]["list"]})
        assert now.status_code == 200, now.text
        assert (now.json()["count"], now.json()["saved"]) == (40, 40)
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "invalid_weights"
        assert queued.status_code == 202, queued.text
        assert (generated["state"], generated["report"]["saved"]) == ("finished", 1500)
        assert progress.wait_for("job_progress", id=queued.json()["id"], state="finished")
        assert records.status_code == 200, records.text
        assert (records.json()["inserted"], records.json()["rejected"]) == (1, 1)
        assert upload.status_code == 202, upload.text
        assert upload.json()["headers"]["phone"]
        assert (imported["state"], imported["report"]["inserted"]) == ("finished", 2)
        assert unreadable.status_code == 422
        assert exported.status_code == 200
        assert len(exported.content.decode("utf-8-sig").splitlines()) == 3
    finally:
        progress.close()


def test_while_the_contacts_service_is_down_the_gateway_says_so_with_503_and_retry_after(
    deployment: Cluster,
) -> None:
    ana = deployment.create_key("Agent", "ana")
    with httpx.Client(
        base_url=deployment.gateway_urls[0], headers={"X-API-Key": ana}, timeout=TIMEOUT
    ) as http:
        assert http.get("/contacts", params={"limit": 1}).status_code == 200
        deployment.contacts.stop()
        down_list = http.get("/contacts", params={"limit": 1})
        down_create = http.post("/contacts", json={"phone": "8812-3456"})
        port = deployment.contacts_url.rsplit(":", 1)[1]
        deployment.start("contacts", ["serve", "contacts", "--port", port])
        wait_healthy(deployment.contacts_url, deployment.contacts)
        back = http.post("/contacts", json={"phone": "8812-3456"})

    for answer in (down_list, down_create):
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "service_unavailable"
        assert int(answer.headers["Retry-After"]) >= 1
    assert back.status_code == 201
