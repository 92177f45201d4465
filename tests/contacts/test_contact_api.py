"""The internal contacts API and both clients the gateway uses: same answers, same typed errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from contacts_support import (
    ANA,
    BETO,
    LAURA,
    PABLO,
    FakeClock,
    create_contact,
    delete_contact,
    end_call,
    extend_lock,
    force_release_lock,
    lock_contact,
    release_lock,
    request_call,
    start_call,
    update_contact,
)
from fastapi.testclient import TestClient

from contacts.api import create_app
from contacts.asks import (
    GetCallFigures,
    GetContact,
    GetContactByPhone,
    GetExistingPhones,
    GetHistory,
    GetLockedContacts,
    GetStats,
    ListContacts,
)
from contacts.client import ContactsClient, HttpContactsClient, LocalContactsClient
from contacts.commands import CallOutcome, ImportRow, Outcome, Source
from contacts.errors import (
    AlreadyExists,
    Forbidden,
    InvalidInput,
    InvalidStatus,
    LockDurationTooLong,
    Locked,
    NotFound,
    NotLockOwner,
    VersionMismatch,
)
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.views import ContactFilters, caller_to_data


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The API maps errors the same way on any database: SQLite keeps these tests quick."""
    return str(request.getfixturevalue("sqlite_url"))


@pytest.fixture
def http(service: ContactsService, queries: ContactQueries) -> Iterator[TestClient]:
    with TestClient(create_app(service, queries)) as client:
        yield client


@pytest.fixture(params=["local", "http"])
def client(
    request: pytest.FixtureRequest, service: ContactsService, queries: ContactQueries
) -> ContactsClient:
    if request.param == "local":
        return LocalContactsClient(service, queries)
    return HttpContactsClient(client=request.getfixturevalue("http"))


def _as(caller: object) -> dict[str, str]:
    return {"X-Caller": orjson.dumps(caller_to_data(caller)).decode()}  # type: ignore[arg-type]


def _command(
    http: TestClient, caller: object, type_name: str, expected_version: int | None = None, **data: object
) -> httpx.Response:
    body = {
        "type": f"contacts.{type_name}",
        "data": {"now": _NOW, **data},
        "expected_version": expected_version,
    }
    return http.post("/commands", json=body, headers=_as(caller))


_NOW = "2000-01-01T00:00:00+00:00"  # the service stamps every command with its own clock


def test_a_create_command_answers_the_contact_with_the_phone_the_service_parsed(http: TestClient) -> None:
    response = _command(http, ANA, "CreateContact", phone=" 8812-3456 ", name="José", list_name="feria")

    assert response.status_code == 200
    body = response.json()["result"]
    assert (body["phone"], body["phone_e164"], body["name"], body["list"], body["version"]) == (
        "8812-3456",
        "+50688123456",
        "José",
        "feria",
        1,
    )


def test_errors_are_json_with_code_message_and_details(http: TestClient) -> None:
    first = _command(http, ANA, "CreateContact", phone="8812-3456").json()["result"]
    _command(http, ANA, "LockContact", contact_id=first["id"], duration_minutes=5)

    duplicate = _command(http, BETO, "CreateContact", phone="+506 8812 3456")
    locked = _command(http, BETO, "UpdateContact", contact_id=first["id"], note="x")
    stale = _command(http, ANA, "UpdateContact", 1, contact_id=first["id"], note="x")
    wanted = {"type": "contacts.GetContact", "data": {"contact_id": "6f1d8f3a-2c4b-5e7a-9b0c-1d2e3f4a5b6c"}}
    missing = http.post("/queries", json=wanted, headers=_as(ANA))
    bad_status = _command(http, ANA, "UpdateContact", contact_id=first["id"], status="PERDIDO")
    bad_body = _command(http, ANA, "CreateContact", name="sin teléfono")
    unknown = _command(http, ANA, "RenameContact", contact_id=first["id"])
    anonymous = http.get("/contacts")

    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["existing_id"] == first["id"]
    assert locked.status_code == 423
    assert locked.json()["error"]["locked_by"] == ANA.user_id
    assert locked.json()["error"]["locked_until"]
    assert stale.status_code == 412
    assert (stale.json()["error"]["expected"], stale.json()["error"]["actual"]) == (1, 2)
    assert missing.status_code == 404
    assert bad_status.status_code == 422
    assert bad_status.json()["error"]["code"] == "invalid_status"
    assert bad_body.status_code == 422
    assert unknown.status_code == 422
    assert anonymous.status_code == 401
    for answer in (duplicate, locked, stale, missing, bad_status, bad_body, unknown, anonymous):
        assert set(answer.json()["error"]) >= {"code", "message"}


def test_the_per_operation_routes_are_gone(http: TestClient) -> None:
    contact_id = _command(http, ANA, "CreateContact", phone="8812-3456").json()["result"]["id"]

    answers = [
        http.post("/contacts", json={"phone": "8812-3457"}, headers=_as(ANA)),
        http.put(f"/contacts/{contact_id}", json={"note": "x"}, headers=_as(ANA)),
        http.delete(f"/contacts/{contact_id}", headers=_as(PABLO)),
        http.post(f"/contacts/{contact_id}/lock", headers=_as(ANA)),
        http.delete(f"/contacts/{contact_id}/lock", headers=_as(ANA)),
        http.get(f"/contacts/{contact_id}", headers=_as(ANA)),
        http.get(f"/contacts/{contact_id}/history", headers=_as(ANA)),
        http.get("/stats", headers=_as(ANA)),
        http.post("/queue/next", headers=_as(ANA)),
        http.get("/campaigns", headers=_as(ANA)),
        http.get("/dnc", headers=_as(ANA)),
    ]

    assert [answer.status_code for answer in answers] == [405] + [404] * 10


def test_list_pages_with_filters_and_cursor(http: TestClient, service: ContactsService) -> None:
    rows = [ImportRow(row=n, e164=f"+50688{n:06d}", status="NC" if n % 2 else "") for n in range(25)]
    service.create_or_merge(rows, "lista", LAURA)

    seen: list[str] = []
    params: dict[str, str | int] = {"status": "NC,SIN_GESTIONAR", "limit": 10}
    while True:
        page = http.get("/contacts", params=params, headers=_as(ANA)).json()
        seen.extend(item["id"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    nc_only = http.get(
        "/contacts", params={"status": "NC", "list": "lista", "limit": 100}, headers=_as(ANA)
    ).json()

    assert len(seen) == len(set(seen)) == 25
    assert len(nc_only["items"]) == 12
    assert http.get("/contacts", params={"limit": 5000}, headers=_as(ANA)).status_code == 422


def test_every_client_creates_locks_edits_and_reads(client: ContactsClient, clock: FakeClock) -> None:
    created = create_contact(client, ANA, "8812-3456", name="José", extra={"ciudad": "Cartago"})
    locked = lock_contact(client, ANA, created.id, 15)
    edited = update_contact(
        client, ANA, created.id, note="llamar mañana", status="nc", expected_version=locked.version
    )
    request_call(client, ANA, created.id, "call-1", "desk-3")
    start_call(client, ANA, created.id, "call-1", "desk-3")
    called = end_call(client, ANA, created.id, "call-1", CallOutcome.NO_ANSWER, 0, desk="desk-3")
    released = release_lock(client, ANA, created.id)

    assert locked.locked_by == ANA.user_id
    assert (edited.note, edited.status, edited.version) == ("llamar mañana", "NC", 4)
    assert called is not None
    assert called.last_contacted_at == clock.now
    assert released.locked_by is None
    assert client.ask(GetContact(contact_id=created.id), ANA) == released
    assert client.ask(GetContactByPhone(phone="+506 8812-3456"), ANA) == released
    assert client.ask(ListContacts(filters=ContactFilters(q="jose")), ANA).items == (released,)
    fields = [h.field for h in client.ask(GetHistory(contact_id=created.id), ANA)]
    assert fields[-4:] == ["call", "call", "call", "locked_by"]
    assert client.ask(GetStats(), ANA)["by_status"]["NC"] == 1
    assert client.ask(GetExistingPhones(phones=("+50688123456", "+50688123457")), ANA) == {"+50688123456"}


def test_every_client_raises_the_same_typed_errors(client: ContactsClient, clock: FakeClock) -> None:
    created = create_contact(client, ANA, "8812-3456")
    lock_contact(client, ANA, created.id, 5)

    with pytest.raises(AlreadyExists) as duplicate:
        create_contact(client, BETO, "88123456")
    with pytest.raises(Locked) as locked:
        lock_contact(client, BETO, created.id)
    with pytest.raises(NotLockOwner):
        extend_lock(client, BETO, created.id)
    with pytest.raises(VersionMismatch) as stale:
        update_contact(client, ANA, created.id, name="x", expected_version=1)
    with pytest.raises(LockDurationTooLong) as too_long:
        lock_contact(client, ANA, created.id, 120)
    with pytest.raises(InvalidStatus):
        update_contact(client, ANA, created.id, status="PERDIDO")
    with pytest.raises(InvalidInput) as bad_phone:
        create_contact(client, ANA, "12")
    with pytest.raises(Forbidden):
        delete_contact(client, ANA, created.id)
    with pytest.raises(Forbidden):
        client.create_or_merge([ImportRow(row=1, e164="+50688000001")], "x", ANA)
    with pytest.raises(NotFound):
        client.ask(GetContact(contact_id="6f1d8f3a-2c4b-5e7a-9b0c-1d2e3f4a5b6c"), ANA)

    assert duplicate.value.existing_id == created.id
    assert (locked.value.locked_by, locked.value.locked_until) == (ANA.user_id, clock.now.replace(minute=5))
    assert "ana" in locked.value.message
    assert (stale.value.expected, stale.value.actual) == (1, 2)
    assert too_long.value.max_minutes == 60
    assert bad_phone.value.field == "phone"


def test_every_client_streams_batches_and_answers_each_in_order(client: ContactsClient) -> None:
    rows = [ImportRow(row=n + 2, e164=f"+50688{n:06d}", name=f"Cliente {n}") for n in range(30)]
    batches = [rows[:12], [], rows[12:], rows[:5]]

    results = list(client.create_or_merge_stream(batches, "generados", PABLO, job_id="job-2"))

    assert [[o.row for o in r.outcomes] for r in results] == [[row.row for row in b] for b in batches]
    assert [r.count(Outcome.INSERTED) for r in results] == [12, 0, 18, 0]
    assert results[3].count(Outcome.UNCHANGED) == 5
    assert {r.job_id for r in results} == {"job-2"}


def test_every_client_runs_batches_and_force_releases(client: ContactsClient) -> None:
    rows = [ImportRow(row=n + 2, e164=f"+50688{n:06d}", name=f"Cliente {n}") for n in range(30)]

    result = client.create_or_merge(rows, "generados", PABLO, source=Source.GENERATOR, job_id="job-1")
    again = client.create_or_merge(rows, "generados", PABLO, source=Source.GENERATOR, job_id="job-1")
    contact_id = result.outcomes[0].contact_id
    lock_contact(client, ANA, contact_id)
    freed = force_release_lock(client, LAURA, contact_id)
    delete_contact(client, PABLO, contact_id, "prueba")

    assert (result.count(Outcome.INSERTED), result.job_id) == (30, "job-1")
    assert again.count(Outcome.UNCHANGED) == 30
    assert freed.locked_by is None
    assert client.ask(GetLockedContacts(), ANA) == []
    with pytest.raises(NotFound):
        client.ask(GetContact(contact_id=contact_id), ANA)


def test_a_caller_with_an_accented_name_travels_in_the_header(client: ContactsClient) -> None:
    from contacts.commands import Caller
    from kernel.roles import Role

    josefina = Caller(user_id="u-jo", username="Josefina Núñez", role=Role.AGENT)
    created = create_contact(client, josefina, "8812-3456")

    locked = lock_contact(client, josefina, created.id)

    assert locked.locked_by_name == "Josefina Núñez"


def test_every_client_reads_the_call_figures_of_a_window_and_of_chosen_agents(
    client: ContactsClient, clock: FakeClock
) -> None:
    contact = create_contact(client, ANA, "8812-3456")
    start = clock.now
    request_call(client, ANA, contact.id, "c-1", "desk-1")
    start_call(client, ANA, contact.id, "c-1", "desk-1")
    clock.advance(seconds=50)
    end_call(client, ANA, contact.id, "c-1", CallOutcome.ANSWERED, 45)
    clock.advance(hours=1)
    later = clock.now
    request_call(client, BETO, contact.id, "c-2")
    end_call(client, BETO, contact.id, "c-2", CallOutcome.BUSY, 0)

    everyone = client.ask(GetCallFigures(), PABLO)
    first_hour = client.ask(GetCallFigures(since=start, until=later), PABLO)
    only_beto = client.ask(GetCallFigures(user_ids=(BETO.user_id,)), PABLO)

    assert [(a.username, a.figures.made, a.figures.successful, a.figures.failed) for a in everyone] == [
        ("ana", 1, 1, 0),
        ("beto", 1, 0, 1),
    ]
    assert everyone[0].figures.talk_seconds == 45
    assert everyone[0].figures.average_handling_seconds == 50.0
    assert [a.username for a in first_hour] == ["ana"]
    assert [a.username for a in only_beto] == ["beto"]
    assert client.ask(GetCallFigures(user_ids=()), PABLO) == []
    with pytest.raises(InvalidInput):
        client.ask(GetCallFigures(since=later, until=start), PABLO)
