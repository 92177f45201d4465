"""Hardening a user notices only when it is missing: security headers, and an audited source address that
no client can choose (proxy headers believed only from configured proxies)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import EmbeddedServer, clean_env, start, start_embedded, wait_healthy


def _sources(server: EmbeddedServer, key: str) -> list[str | None]:
    with server.client(key) as http:
        items = http.get("/admin/audit", params={"limit": 50}).json()
    entries = items["items"] if isinstance(items, dict) else items
    return [e.get("source") for e in entries if e["path"] == "/contacts" and e["method"] == "POST"]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = start_embedded(tmp_path_factory.mktemp("plain"))
    server.create_user("tomas", "TI")
    yield server
    server.process.stop()


def test_every_answer_carries_the_security_headers(plain: EmbeddedServer) -> None:
    health = httpx.get(f"{plain.base_url}/health")
    with plain.client(plain.keys["tomas"]) as http:
        page = http.get("/contacts", params={"limit": 1})
    docs = httpx.get(f"{plain.base_url}/docs")

    for answer in (health, page, docs):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in answer.headers  # plain HTTP
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "script-src 'self'" in docs.headers["content-security-policy"]  # its own, not the API's


def test_a_client_cannot_choose_its_audited_address(plain: EmbeddedServer) -> None:
    with plain.client(plain.keys["tomas"]) as http:
        created = http.post("/contacts", json={"phone": "8812-5501"}, headers={"X-Forwarded-For": "6.6.6.6"})
    assert created.status_code == 201

    assert _sources(plain, plain.keys["tomas"])[0] == "127.0.0.1"


def test_a_trusted_proxy_names_the_client_and_the_scheme(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_embedded(tmp_path_factory.mktemp("proxied"), CALLMANAGER_TRUSTED_PROXIES="127.0.0.1")
    try:
        key = server.create_user("tomas", "TI")
        forwarded = {"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"}
        with server.client(key) as http:
            created = http.post("/contacts", json={"phone": "8812-5502"}, headers=forwarded)
        assert created.status_code == 201
        assert created.headers["strict-transport-security"].startswith("max-age=")
        assert _sources(server, key)[0] == "10.1.2.3"
    finally:
        server.process.stop()


def test_requests_without_a_valid_key_are_limited_per_address_and_audited_in_aggregate(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = start_embedded(tmp_path_factory.mktemp("flood"), CALLMANAGER_RATE_LIMIT_UNIDENTIFIED="20/minute")
    try:
        key = server.create_user("tomas", "TI")
        with httpx.Client(base_url=server.base_url, headers={"X-API-Key": "cm_bad_key"}) as bad:
            statuses = [bad.get("/contacts", params={"limit": 1}).status_code for _ in range(30)]
            refused = bad.get("/contacts", params={"limit": 1})
        with server.client(key) as http:
            still_fine = http.get("/contacts", params={"limit": 1})
            entries = http.get("/admin/audit", params={"outcome": "denied", "limit": 500}).json()
    finally:
        server.process.stop()

    assert statuses[:20] == [401] * 20
    assert set(statuses[20:]) == {429}
    assert int(refused.headers["Retry-After"]) >= 1
    assert still_fine.status_code == 200, "a valid key from the same address is not held back"
    rows = [
        e for e in (entries["items"] if isinstance(entries, dict) else entries) if e["path"] == "/contacts"
    ]
    assert 1 <= len(rows) <= 10, f"{len(rows)} audit rows for 31 refusals"
    assert max(int(r["detail"]["failures_in_window"]) for r in rows) >= 1


def test_an_agent_cannot_read_the_whole_base_in_one_request_and_reading_on_is_audited(
    plain: EmbeddedServer,
) -> None:
    agent = plain.create_user("ana", "Agent")
    rows = [{"phone": f"+50688{n:06d}"} for n in range(130)]
    with plain.client(plain.keys["tomas"]) as http:
        assert http.post("/import", json=rows).status_code == 200
    with plain.client(agent) as http:
        first = http.get("/contacts")
        onward = http.get(first.headers["link"].split(";")[0].strip("<>"))
        too_big = http.get("/contacts", params={"limit": 5000})
    with plain.client(plain.keys["tomas"]) as http:
        listed = http.get("/admin/audit", params={"limit": 50}).json()
    entries = listed["items"] if isinstance(listed, dict) else listed

    assert len(first.json()) == 100
    assert len(onward.json()) >= 30
    assert too_big.status_code == 422
    reads = [
        e for e in entries if e["path"] == "/contacts" and e["method"] == "GET" and e["username"] == "ana"
    ]
    assert len(reads) == 1, "the page after the first is audited, the first page is not"
    assert reads[0]["detail"]["limit"] == 100


def test_a_runtime_change_is_bounded_audited_with_old_and_new_and_reset_returns_to_the_environment(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("config")
    server = start_embedded(folder, CALLMANAGER_RATE_LIMIT="700/minute")
    try:
        key = server.create_user("tomas", "TI")
        with server.client(key) as http:
            throttled = http.post("/config", json={"rate_limit": "1/minute"})
            changed = http.post("/config", json={"rate_limit": "900/minute"})
            audit = http.get("/admin/audit", params={"limit": 20}).json()
        entries = audit["items"] if isinstance(audit, dict) else audit
        logged = [e for e in entries if e["path"] == "/config" and e["status_code"] == 200]
        server.process.stop()

        env = clean_env(CALLMANAGER_RATE_LIMIT="700/minute")
        restarted = start("up-again", _up_args(server), env, folder)
        wait_healthy(server.base_url, restarted)
        with server.client(key) as http:
            kept = http.get("/config").json()
        log_text = restarted.stop()
        reset = subprocess.run(
            [
                sys.executable,
                "-m",
                "system",
                "config",
                "reset",
                "rate_limit",
                "--data-dir",
                str(server.data_dir),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        again = start("up-third", _up_args(server), env, folder)
        wait_healthy(server.base_url, again)
        with server.client(key) as http:
            back = http.get("/config").json()
        again.stop()
    finally:
        server.process.stop()

    assert throttled.status_code == 422
    assert changed.status_code == 200
    assert logged[0]["detail"]["changes"]["rate_limit"] == {"old": "700/minute", "new": "900/minute"}
    assert (kept["rate_limit"], kept["sources"]["rate_limit"]) == ("900/minute", "runtime")
    assert "config.env_overridden_at_runtime" in log_text
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert (back["rate_limit"], back["sources"]["rate_limit"]) == ("700/minute", "env")


def _up_args(server: EmbeddedServer) -> list[str]:
    port = server.base_url.rsplit(":", 1)[1]
    return ["up", "--no-client", "--port", port, "--data-dir", str(server.data_dir)]
