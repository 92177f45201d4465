"""The public contact API on a real embedded system (``callmanager up`` as a process)."""

from __future__ import annotations

import httpx

from tests.support.servers import EmbeddedServer


def create(client: httpx.Client, phone: str, **fields: object) -> dict[str, object]:
    response = client.post("/contacts", json={"phone": phone, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_agent_creates_reads_and_pages_contacts(embedded_server: EmbeddedServer) -> None:
    agent = embedded_server.client(embedded_server.create_user("ana", "Agent"))
    created = create(agent, "8812-3456", name="Ana Pérez")
    assert created["phone_e164"] == "+50688123456"
    assert created["phone_national"] == "8812-3456"
    assert created["operator"] == "kolbi"
    for n in range(5):
        create(agent, f"8312-000{n}")

    one = agent.get(f"/contacts/{created['id']}")
    assert one.status_code == 200
    assert one.headers["etag"] == '"1"'

    first = agent.get("/contacts", params={"limit": 4})
    assert first.status_code == 200
    assert len(first.json()) == 4
    link = first.headers["link"]
    assert 'rel="next"' in link
    next_url = link.split(";")[0].strip("<>")
    second = agent.get(next_url)
    ids = {c["id"] for c in first.json()} | {c["id"] for c in second.json()}
    assert len(ids) == 6
    assert "link" not in second.headers
    assert first.headers["x-total-count"] == "6"  # the status bar's real total, for an agent too
    assert "x-total-count" not in second.headers
    by_status = agent.get("/contacts", params={"limit": 2, "status": "SIN_GESTIONAR"})
    assert by_status.headers["x-total-count"] == "6"
    searched = agent.get("/contacts", params={"limit": 2, "q": "8312"})
    assert "x-total-count" not in searched.headers  # no kept count for a search: the client counts pages

    first_page = agent.get("/contacts")  # no limit: one page of the default size, never the whole base
    assert len(first_page.json()) == 6
    assert "link" not in first_page.headers


def test_same_phone_typed_differently_is_refused_with_the_existing_id(
    embedded_server: EmbeddedServer,
) -> None:
    agent = embedded_server.client(embedded_server.create_user("ana", "Agent"))
    created = create(agent, "88123456")
    again = agent.post("/contacts", json={"phone": "+506 8812 3456"})
    assert again.status_code == 409
    assert again.json()["error"]["existing_id"] == created["id"]


def test_invalid_phone_and_unknown_status_are_refused_with_a_reason(embedded_server: EmbeddedServer) -> None:
    agent = embedded_server.client(embedded_server.create_user("ana", "Agent"))
    bad_phone = agent.post("/contacts", json={"phone": "12"})
    assert bad_phone.status_code == 422
    assert bad_phone.json()["error"]["message"]
    created = create(agent, "8812-3456")
    bad_status = agent.put(f"/contacts/{created['id']}", json={"status": "VOLADO"})
    assert bad_status.status_code == 422
    assert bad_status.json()["error"]["code"] == "invalid_status"
    legacy = agent.put(f"/contacts/{created['id']}", json={"status": "EN PROGRESO"})
    assert legacy.json()["status"] == "EN_PROGRESO"


def test_second_agent_cannot_edit_a_contact_locked_by_the_first(embedded_server: EmbeddedServer) -> None:
    ana = embedded_server.client(embedded_server.create_user("ana", "Agent"))
    luis = embedded_server.client(embedded_server.create_user("luis", "Agent"))
    contact = create(ana, "8812-3456")
    locked = ana.post(f"/contacts/{contact['id']}/lock", json={"duration_minutes": 5})
    assert locked.status_code == 200
    assert locked.json()["locked_by_name"] == "ana"

    refused = luis.put(f"/contacts/{contact['id']}", json={"note": "lo llamé"})
    assert refused.status_code == 423
    error = refused.json()["error"]
    assert error["locked_by_name"] == "ana"
    assert error["locked_until"]
    assert luis.post(f"/contacts/{contact['id']}/lock").status_code == 423
    assert luis.delete(f"/contacts/{contact['id']}/lock").status_code == 403

    assert ana.put(f"/contacts/{contact['id']}", json={"note": "interesada"}).status_code == 200
    assert ana.delete(f"/contacts/{contact['id']}/lock").status_code == 200
    assert luis.put(f"/contacts/{contact['id']}", json={"note": "ahora yo"}).status_code == 200


def test_team_lead_force_releases_an_agents_lock(embedded_server: EmbeddedServer) -> None:
    ana = embedded_server.client(embedded_server.create_user("ana", "Agent"))
    lead = embedded_server.client(embedded_server.create_user("marta", "TeamLead"))
    contact = create(ana, "8812-3456")
    ana.post(f"/contacts/{contact['id']}/lock")
    released = lead.delete(f"/contacts/{contact['id']}/lock")
    assert released.status_code == 200
    assert released.json()["locked_by"] is None
    history = ana.get(f"/contacts/{contact['id']}/history").json()
    assert "contacts.LockForceReleased" in {h["event_type"] for h in history}
    assert {h["username"] for h in history} == {"ana", "marta"}
    released = [
        h for h in history if h["event_type"] == "contacts.LockForceReleased" and h["field"] == "locked_by"
    ]
    assert released[0]["old_name"] == "ana"


def test_if_match_on_a_stale_version_is_412(embedded_server: EmbeddedServer) -> None:
    agent = embedded_server.client(embedded_server.create_user("ana", "Agent"))
    contact = create(agent, "8812-3456")
    assert agent.put(f"/contacts/{contact['id']}", json={"name": "A"}, headers={"If-Match": '"1"'}).is_success
    stale = agent.put(f"/contacts/{contact['id']}", json={"name": "B"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["error"]["actual"] == 2


def test_a_stale_write_is_refused_with_the_contact_now_and_every_change_since(
    embedded_server: EmbeddedServer,
) -> None:
    ana = embedded_server.client(embedded_server.create_user("ana", "Agent"))
    luis = embedded_server.client(embedded_server.create_user("luis", "Agent"))
    contact = create(ana, "8812-3456", name="Ana", note="primera")
    read = int(str(contact["version"]))
    assert luis.patch(f"/contacts/{contact['id']}", json={"note": "de Luis", "version": read}).is_success
    assert luis.put(f"/contacts/{contact['id']}", json={"status": "INTERESADO"}).is_success

    for stale in (
        ana.put(f"/contacts/{contact['id']}", json={"note": "de Ana"}, headers={"If-Match": f'"{read}"'}),
        ana.patch(f"/contacts/{contact['id']}", json={"note": "de Ana", "version": read}),
        ana.put(f"/contacts/{contact['id']}", json={"note": "de Ana", "version": read}),
    ):
        assert stale.status_code == 412, stale.text
        error = stale.json()["error"]
        assert error["code"] == "version_mismatch"
        assert (error["expected"], error["actual"]) == (read, read + 2)
        assert error["current"]["note"] == "de Luis"
        assert error["current"]["status"] == "INTERESADO"
        assert stale.headers["ETag"] == f'"{read + 2}"'
        changed = [(c["field"], c["old"], c["new"], c["username"]) for c in error["changes"]]
        assert changed == [
            ("note", "primera", "de Luis", "luis"),
            ("status", "SIN_GESTIONAR", "INTERESADO", "luis"),
        ]
        assert "Otra persona" in error["message"]
    assert ana.get(f"/contacts/{contact['id']}").json()["note"] == "de Luis"  # never applied

    both = ana.put(
        f"/contacts/{contact['id']}",
        json={"note": "x", "version": read + 2},
        headers={"If-Match": f'"{read}"'},
    )
    assert both.status_code == 400
    fresh = ana.patch(f"/contacts/{contact['id']}", json={"note": "de Ana", "version": read + 2})
    assert fresh.status_code == 200
    assert (fresh.json()["note"], fresh.json()["status"]) == ("de Ana", "INTERESADO")


def test_only_project_manager_and_ti_delete(embedded_server: EmbeddedServer) -> None:
    agent = embedded_server.client(embedded_server.create_user("ana", "Agent"))
    pm = embedded_server.client(embedded_server.create_user("pablo", "ProjectManager"))
    contact = create(agent, "8812-3456")
    assert agent.delete(f"/contacts/{contact['id']}").status_code == 403
    assert pm.delete(f"/contacts/{contact['id']}").status_code == 204
    assert agent.get(f"/contacts/{contact['id']}").status_code == 404
    history = pm.get(f"/contacts/{contact['id']}/history")
    assert "contacts.ContactDeleted" in {h["event_type"] for h in history.json()}


def test_errors_never_leak_internals_and_bad_input_is_422(embedded_server: EmbeddedServer) -> None:
    agent = embedded_server.client(embedded_server.create_user("ana", "Agent"))
    response = agent.post("/contacts", json={"phone": "8812-3456", "unexpected": 1})
    assert response.status_code == 422
    assert set(response.json()) == {"error"}
    missing = agent.get("/contacts/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert "Traceback" not in missing.text


def test_ti_changes_lock_duration_at_run_time(embedded_server: EmbeddedServer) -> None:
    ti = embedded_server.client(embedded_server.create_user("root", "TI"))
    agent = embedded_server.client(embedded_server.create_user("ana", "Agent"))
    assert agent.post("/config", json={"max_lock_duration_minutes": 5}).status_code == 403
    too_short = ti.post("/config", json={"default_lock_duration_minutes": 1})
    assert too_short.status_code == 422  # one request cannot shorten every lock to a minute
    changed = ti.post("/config", json={"default_lock_duration_minutes": 5, "max_lock_duration_minutes": 5})
    assert changed.status_code == 200
    assert changed.json()["max_lock_duration_minutes"] == 5
    effective = ti.get("/config").json()
    assert "secret_key" not in effective
    assert effective["sources"]["max_lock_duration_minutes"] == "runtime"
    assert effective["sources"]["rate_limit"] in ("env", "default")
    contact = create(agent, "8812-3456")
    too_long = agent.post(f"/contacts/{contact['id']}/lock", json={"duration_minutes": 30})
    assert too_long.status_code == 422
    assert agent.post(f"/contacts/{contact['id']}/lock", json={"duration_minutes": 5}).status_code == 200


def test_me_names_the_key_owner_and_openapi_is_served(embedded_server: EmbeddedServer) -> None:
    agent = embedded_server.client(embedded_server.create_user("ana", "Agent", team="norte"))
    me = agent.get("/me").json()
    assert (me["username"], me["role"], me["team"]) == ("ana", "Agent", "norte")
    assert "import" not in me["capabilities"]
    spec = httpx.get(f"{embedded_server.base_url}/openapi.json").json()
    assert {"/contacts", "/contacts/{contact_id}/lock", "/health", "/config"} <= set(spec["paths"])


def test_call_without_a_desk_agent_says_so_plainly(embedded_server: EmbeddedServer) -> None:
    agent = embedded_server.client(embedded_server.create_user("ana", "Agent"))
    contact = create(agent, "8812-3456")
    response = agent.post(f"/contacts/{contact['id']}/call")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_desk"
