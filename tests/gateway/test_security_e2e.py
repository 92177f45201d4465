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
