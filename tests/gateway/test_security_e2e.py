"""What a running ``callmanager up`` shows of itself: ``/metrics`` only to the roles that see every metric
and to the Prometheus scrape token (every refusal audited), and the API documentation pages served from
the gateway's own assets under a content security policy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest

from client.api import GatewayApi
from client.dispatch import InlineRunner
from client.i18n import Translator
from client.viewmodels.catalogue import StatusCatalogue
from client.viewmodels.metrics import MetricsViewModel
from client.viewmodels.session import capabilities_from_names
from kernel.roles import USER_ROLES
from tests.support.servers import EmbeddedServer, start_embedded

SCRAPE_TOKEN = "prometheus-scrape-" + "7" * 24


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    running = start_embedded(tmp_path_factory.mktemp("security"), CALLMANAGER_METRICS_TOKEN=SCRAPE_TOKEN)
    try:
        for role in USER_ROLES:
            running.create_user(f"user-{role.value.lower()}", role.value, "Norte")
        yield running
    finally:
        running.process.stop()


def _metric_denials(server: EmbeddedServer) -> list[dict[str, object]]:
    with server.client(server.keys["user-ti"]) as http:
        answer = http.get("/admin/audit", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    entries = data["items"] if isinstance(data, dict) else data
    return [e for e in entries if e["path"] == "/metrics" and e["outcome"] == "denied"]


@pytest.mark.parametrize("role", ["ProjectManager", "TI"])
def test_the_roles_that_see_every_metric_read_the_exposition_and_the_json(
    server: EmbeddedServer, role: str
) -> None:
    with server.client(server.keys[f"user-{role.lower()}"]) as http:
        text = http.get("/metrics")
        stats = http.get("/metrics", headers={"Accept": "application/json"})

    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert "# TYPE callmanager_http_requests_total counter" in text.text
    assert stats.status_code == 200
    assert stats.headers["content-type"] == "application/json"
    assert "callmanager_http_requests" in stats.json()


@pytest.mark.parametrize("role", ["Agent", "TeamLead"])
def test_the_other_roles_are_refused_and_each_refusal_is_audited(server: EmbeddedServer, role: str) -> None:
    username = f"user-{role.lower()}"
    before = [e for e in _metric_denials(server) if e.get("username") == username]

    with server.client(server.keys[username]) as http:
        answer = http.get("/metrics")

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert "callmanager_" not in answer.text
    after = [e for e in _metric_denials(server) if e.get("username") == username]
    assert len(after) == len(before) + 1
    assert after[0]["status_code"] == 403
    assert after[0]["action"] == "metrics.all"


def test_prometheus_reads_with_the_scrape_token_and_a_wrong_token_is_refused(server: EmbeddedServer) -> None:
    scraped = httpx.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    wrong = httpx.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}x"})
    anonymous = httpx.get(f"{server.base_url}/metrics")

    assert scraped.status_code == 200
    assert "callmanager_http_requests" in scraped.text
    assert (wrong.status_code, anonymous.status_code) == (401, 401)
    assert "callmanager_" not in wrong.text + anonymous.text
    reasons = [e["status_code"] for e in _metric_denials(server) if e.get("username") is None]
    assert reasons.count(401) >= 2


def test_the_scrape_token_opens_nothing_but_the_metrics(server: EmbeddedServer) -> None:
    bearer = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
    for path in ("/contacts", "/stats", "/config", "/me"):
        assert httpx.get(f"{server.base_url}{path}", headers=bearer).status_code == 401, path


@pytest.mark.parametrize("role", ["Agent", "TeamLead", "ProjectManager", "TI"])
def test_the_clients_metrics_window_reads_what_each_role_may_see_and_meets_no_refusal(
    server: EmbeddedServer, role: str
) -> None:
    api = GatewayApi(server.base_url, server.keys[f"user-{role.lower()}"])
    try:
        me = api.me()
        assert me.capabilities is not None
        capabilities = capabilities_from_names(me.capabilities)
        vm = MetricsViewModel(
            api,
            InlineRunner(),
            Translator("es"),
            StatusCatalogue(),
            supervisor=capabilities.metrics,
            server_figures=capabilities.all_metrics,
        )
        vm.refresh()
    finally:
        api.close()

    assert vm.error == ""
    assert vm.calls, "every role sees call figures"
    assert bool(vm.by_status or any(label == "Contactos en total" for label, _ in vm.other)) == (
        role != "Agent"
    )
    server_figures = any(label == "Solicitudes atendidas" for label, _ in vm.other)
    assert server_figures == (role in ("ProjectManager", "TI"))


class _References(HTMLParser):
    """Every URL a page makes the browser load, and any inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for attribute in ("src", "href", "spec-url", "data-openapi-url"):
            if named.get(attribute):
                self.urls.append(str(named[attribute]))
        self._in_script_without_src = tag == "script" and not named.get("src")

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script_without_src = False


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_the_gateways_own_assets_under_a_strict_policy(
    server: EmbeddedServer, page: str
) -> None:
    answer = httpx.get(f"{server.base_url}{page}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert not re.search(r"(https?:)?//", answer.text), "the page names another origin"
    refs = _References()
    refs.feed(answer.text)
    assert refs.inline_scripts == 0
    assert refs.urls
    assert all(url.startswith("/") and not url.startswith("//") for url in refs.urls)

    policy = dict(part.strip().split(" ", 1) for part in answer.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    # Nothing but the gateway itself (and data: images): ReDoc's bundle still names its logo on its
    # maker's CDN, which this policy keeps the browser from loading.
    assert "http" not in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"

    for url in refs.urls:
        loaded = httpx.get(f"{server.base_url}{url}")
        assert loaded.status_code == 200, url
        assert loaded.content, url
        if url.endswith(".js"):
            assert loaded.headers["content-type"].startswith("text/javascript")
        if url == "/openapi.json":
            assert loaded.json()["info"]["title"] == "CallManager"


def test_the_swagger_bundle_is_the_full_library_and_starts_from_the_gateways_spec(
    server: EmbeddedServer,
) -> None:
    bundle = httpx.get(f"{server.base_url}/docs/assets/swagger-ui-bundle.js")
    start = httpx.get(f"{server.base_url}/docs/assets/swagger-start.js")
    redoc = httpx.get(f"{server.base_url}/docs/assets/redoc.standalone.js")

    assert "SwaggerUIBundle" in bundle.text
    assert len(bundle.content) > 500_000
    assert "Redoc" in redoc.text
    assert len(redoc.content) > 500_000
    assert "data-openapi-url" in start.text
    assert "validatorUrl: null" in start.text
    assert httpx.get(f"{server.base_url}/docs/assets/..%2f..%2fsettings.py").status_code == 404
    assert httpx.get(f"{server.base_url}/docs/assets/unknown.js").status_code == 404


def test_parameters_outside_their_type_are_refused_not_guessed(server: EmbeddedServer) -> None:
    with server.client(server.keys["user-ti"]) as http:
        half_second = http.get("/metrics/calls", params={"until": "0.5"})
        iso_day = http.get("/metrics/calls", params={"until": "2026-01-01"})
        audit_number = http.get("/admin/audit", params={"since": "1700000000"})
        huge_cursor = http.get("/admin/audit", params={"before": str(2**70)})
        zero_flag = http.post("/api/generate_contacts", json={"amount": 3, "background": 0})
        false_seed = http.post("/api/generate_contacts", json={"amount": 3, "seed": False})
        flag = http.post("/api/generate_contacts", json={"amount": 3, "background": False, "seed": 7})

    for refused in (half_second, audit_number, huge_cursor, zero_flag, false_seed):
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "invalid_input"
    assert iso_day.status_code == 200, iso_day.text
    assert flag.status_code == 200, flag.text


def test_a_method_a_path_does_not_serve_is_405_naming_every_method_it_does(server: EmbeddedServer) -> None:
    with server.client(server.keys["user-ti"]) as http:
        contacts = http.request("TRACE", "/contacts")
        one = http.request("OPTIONS", f"/contacts/{'0' * 8}-0000-0000-0000-{'0' * 12}")

    assert contacts.status_code == 405
    assert contacts.headers["Allow"] == "GET, POST"
    assert contacts.json()["error"]["code"] == "http_405"
    assert set(one.headers["Allow"].split(", ")) == {"DELETE", "GET", "PATCH", "PUT"}


def test_the_openapi_description_declares_the_common_answers_of_every_route(server: EmbeddedServer) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    metrics = spec["paths"]["/metrics"]["get"]["responses"]
    update = spec["paths"]["/contacts/{contact_id}"]["put"]["responses"]

    assert set(metrics["200"]["content"]) == {"text/plain", "application/json"}
    assert {"401", "403", "429", "503"} <= set(metrics)
    assert {"400", "401", "403", "404", "409", "412", "422", "423", "429", "503"} <= set(update)
    assert update["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "Retry-After" in update["429"]["headers"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if operation.get("security"):
                assert {"401", "429", "503"} <= set(operation["responses"]), f"{method} {path}"
    assert "403" not in spec["paths"]["/me"]["get"]["responses"]  # any valid key: no capability asked
