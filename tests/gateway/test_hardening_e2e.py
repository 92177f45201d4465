"""Hardening a user notices only when it is missing: security headers, and an audited source address that
no client can choose (proxy headers believed only from configured proxies)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import EmbeddedServer, start_embedded


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
    assert "content-security-policy" not in docs.headers


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
