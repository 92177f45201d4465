"""Every route of the real gateway × every role: the capability each route needs comes from one table
here, the roles holding each capability from PRODUCT.md's Roles table (``ROWS`` of the capability test),
and each cell is checked through HTTP against a running ``callmanager up``.

A route the table does not name fails the first test, so a new route cannot ship without saying who
may call it. A role lacking the capability must get 403 (audited); a role holding it must get past the
role check (any answer but 401/403: a 404 or 422 for the made-up ids and bodies is fine).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from kernel.roles import USER_ROLES
from tests.gateway.test_roles_matrix import EXPECTED
from tests.support.servers import EmbeddedServer, start_embedded

PUBLIC = "public"
SIGNED_IN = "signed-in"
# (method, path) → the capability the route needs, or PUBLIC (no key), or SIGNED_IN (any valid key).
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): "metrics.all",
    ("GET", "/me"): SIGNED_IN,
    ("GET", "/jobs/{job_id}"): SIGNED_IN,
    ("DELETE", "/jobs/{job_id}"): SIGNED_IN,
    ("GET", "/jobs/{job_id}/download"): SIGNED_IN,
    ("GET", "/jobs/{job_id}/report"): SIGNED_IN,
    ("GET", "/statuses"): "contacts.read",
    ("GET", "/contacts"): "contacts.read",
    ("GET", "/contacts/{contact_id}"): "contacts.read",
    ("GET", "/contacts/{contact_id}/history"): "contacts.read",
    ("GET", "/desks"): "contacts.read",
    ("GET", "/metrics/calls"): "contacts.read",
    ("POST", "/contacts"): "contacts.create",
    ("PUT", "/contacts/{contact_id}"): "contacts.update",
    ("PATCH", "/contacts/{contact_id}"): "contacts.update",
    ("POST", "/contacts/{contact_id}/lock"): "contacts.lock_own",
    ("DELETE", "/contacts/{contact_id}/lock"): "contacts.lock_own",
    ("POST", "/contacts/{contact_id}/call"): "contacts.lock_own",
    ("POST", "/calls/{call_id}/hangup"): "contacts.lock_own",
    ("GET", "/contacts/{contact_id}/eligibility"): "contacts.read",
    ("GET", "/campaigns"): "contacts.read",
    ("POST", "/queue/next"): "queue.next",
    ("GET", "/callbacks"): "queue.next",
    ("PATCH", "/callbacks/{callback_id}"): "contacts.disposition",
    ("DELETE", "/callbacks/{callback_id}"): "contacts.disposition",
    ("POST", "/contacts/{contact_id}/disposition"): "contacts.disposition",
    ("POST", "/campaigns"): "campaigns.manage",
    ("PATCH", "/campaigns/{campaign_id}"): "campaigns.manage",
    ("GET", "/campaigns/{campaign_id}/progress"): "metrics.team",
    ("GET", "/dnc"): "dnc.manage",
    ("POST", "/dnc"): "dnc.manage",
    ("DELETE", "/dnc/{phone}"): "dnc.manage",
    ("POST", "/dnc/import"): "dnc.manage",
    ("GET", "/dnc/export"): "dnc.manage",
    ("GET", "/stats"): "metrics.team",
    ("POST", "/import"): "contacts.import",
    ("GET", "/export"): "contacts.export",
    ("POST", "/api/generate_contacts"): "contacts.generate",
    ("DELETE", "/contacts/{contact_id}"): "contacts.delete",
    ("GET", "/config"): "config.read",
    ("POST", "/config"): "config.change",
    ("GET", "/admin/audit"): "audit.read",
    ("GET", "/admin/users"): "users.manage",
    ("POST", "/admin/users"): "users.manage",
    ("GET", "/admin/users/{username}"): "users.manage",
    ("POST", "/admin/users/{username}/deactivate"): "users.manage",
    ("POST", "/admin/users/{username}/keys"): "users.manage",
    ("POST", "/admin/users/{username}/rotate-key"): "users.manage",
    ("DELETE", "/admin/keys/{key_id}"): "users.manage",
    ("GET", "/desk/version"): SIGNED_IN,
    ("GET", "/desk/files/{name}"): SIGNED_IN,
}
CELLS = [(method, path, role) for method, path in ROUTES for role in USER_ROLES]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    running = start_embedded(tmp_path_factory.mktemp("roles"), CALLMANAGER_RATE_LIMIT="100000/minute")
    try:
        for role in USER_ROLES:
            running.create_user(f"user-{role.value.lower()}", role.value, "Norte")
        yield running
    finally:
        running.process.stop()


def test_every_route_of_the_gateway_is_in_the_table(server: EmbeddedServer) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    served = {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations}
    assert served == set(ROUTES), f"not in the table: {served - set(ROUTES)}; gone: {set(ROUTES) - served}"


@pytest.mark.parametrize(("method", "path", "role"), CELLS, ids=lambda v: str(getattr(v, "value", v)))
def test_each_role_reaches_exactly_the_routes_its_capabilities_open(
    server: EmbeddedServer, method: str, path: str, role: object
) -> None:
    needed = ROUTES[(method, path)]
    role_name = str(getattr(role, "value", role))
    url = _url(path)
    body = {} if method in ("POST", "PUT", "PATCH") else None
    with server.client(server.keys[f"user-{role_name.lower()}"]) as http:
        answer = http.request(method, url, json=body, params={"limit": 1} if url == "/contacts" else None)

    allowed = needed in (PUBLIC, SIGNED_IN) or (needed, role_name) in EXPECTED
    if allowed:
        assert answer.status_code not in (401, 403), f"{role_name} refused {method} {path}: {answer.text}"
    else:
        assert answer.status_code == 403, f"{role_name} let through {method} {path}: {answer.status_code}"
        assert answer.json()["error"]["code"] == "forbidden"


def test_a_route_that_needs_a_key_refuses_a_request_without_one(server: EmbeddedServer) -> None:
    for (method, path), needed in ROUTES.items():
        if needed == PUBLIC:
            continue
        url = _url(path)
        answer = httpx.request(method, f"{server.base_url}{url}", json={} if method != "GET" else None)
        assert answer.status_code == 401, f"{method} {path} answered {answer.status_code} without a key"


def _url(path: str) -> str:
    """``path`` with made-up ids of nobody's objects, so no cell changes what another cell sees."""
    return path.format(
        contact_id=str(uuid.uuid4()),
        call_id="c" + uuid.uuid4().hex,
        job_id=uuid.uuid4().hex,
        username="nadie",
        key_id="0" * 12,
        campaign_id=str(uuid.uuid4()),
        phone="+50688887777",
        callback_id=f"{uuid.uuid4()}.2",
        name="callmanager-desk-0.0.1-windows.zip",
    )
