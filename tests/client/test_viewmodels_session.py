"""Who is logged in, which tools each role sees, the status catalogue and the connection line."""

from __future__ import annotations

import dataclasses

import pytest
from client_doubles import FakeGateway

from client.api import Forbidden, NetworkError, NotFound
from client.dispatch import InlineRunner
from client.i18n import Translator
from client.live import ConnectionState
from client.models import Me, StatusOption
from client.viewmodels.session import SessionViewModel
from contacts.statuses import DEFAULT_CATALOGUE


def build(me=None, language="es"):
    api = FakeGateway([], me)
    vm = SessionViewModel(api, InlineRunner(), Translator(language))
    return api, vm


@pytest.mark.parametrize(
    ("role", "tools"),
    [
        ("Agent", set()),
        ("TeamLead", {"import_export", "metrics", "force_release"}),
        (
            "ProjectManager",
            {
                "import_export",
                "metrics",
                "force_release",
                "generate",
                "delete",
                "all_metrics",
                "manage_campaigns",
            },
        ),
        (
            "TI",
            {
                "import_export",
                "metrics",
                "force_release",
                "generate",
                "delete",
                "all_metrics",
                "manage_campaigns",
            },
        ),
    ],
)
def test_each_role_sees_only_the_tools_it_may_use(role, tools):
    _, vm = build(Me("u", role))
    vm.start()
    shown = {f.name for f in dataclasses.fields(vm.capabilities) if getattr(vm.capabilities, f.name)}
    assert shown == tools


def test_user_line_names_the_user_role_and_team():
    _, vm = build(Me("ana", "TeamLead", "ventas"))
    vm.start()
    assert vm.user_text == "ana (Líder de equipo) · ventas"
    _, en = build(Me("ana", "TeamLead"), "en")
    en.start()
    assert en.user_text == "ana (Team lead)"


def test_without_me_endpoint_a_key_that_reads_config_gets_manager_tools():
    api, vm = build()
    api.fail["me"] = NotFound()
    vm.start()
    assert vm.capabilities.generate
    assert "(/me)" in vm.notice
    assert vm.user_text == "usuario desconocido"


def test_without_me_endpoint_a_key_refused_config_gets_no_manager_tools():
    api, vm = build()
    api.fail["me"] = NotFound()
    api.fail["config"] = Forbidden()
    vm.start()
    assert not vm.capabilities.generate
    assert not vm.capabilities.delete


def test_catalogue_comes_from_the_server():
    api, vm = build()
    api.statuses_value = [StatusOption("NUEVO", "Nuevo", "New", 0), StatusOption("NC", "No contesta", "", 1)]
    seen = []
    vm.catalogue_listeners.append(seen.append)
    vm.start()
    assert vm.catalogue.codes() == ["NUEVO", "NC"]
    assert not vm.catalogue.bundled
    assert seen == [vm.catalogue]


def test_bundled_catalogue_is_used_and_said_when_the_server_has_none():
    api, vm = build()
    api.fail["statuses"] = NotFound()
    vm.start()
    assert vm.catalogue.bundled
    assert len(vm.catalogue.codes()) == len(DEFAULT_CATALOGUE.codes)
    assert vm.catalogue_notice.startswith("Catálogo de estados local")


def test_the_bundled_catalogue_is_the_servers() -> None:
    """The desk cannot import the server's catalogue, so it carries one: it must be the same."""
    from client.models import DEFAULT_STATUSES

    bundled = [(s.code, s.label_es, s.label_en, s.priority) for s in DEFAULT_STATUSES]
    server = [(s.code, s.label_es, s.label_en, s.priority) for s in DEFAULT_CATALOGUE.statuses]
    assert bundled == server


def test_connection_line():
    _, vm = build()
    vm.set_connection(ConnectionState.CONNECTED)
    assert vm.connection_text == "conectado"
    vm.set_connection(ConnectionState.RECONNECTING)
    assert vm.connection_text == "reconectando…"
    vm.set_connection(ConnectionState.DISCONNECTED, "llave rechazada")
    assert vm.connection_text == "desconectado: llave rechazada"


def test_me_failure_is_reported():
    api, vm = build()
    api.fail["me"] = NetworkError("No se pudo conectar con http://x")
    vm.start()
    assert vm.notice == "No se pudo conectar con http://x"


def test_server_capabilities_decide_the_tools_when_sent():
    _, vm = build(Me("u", "Agent", capabilities=("contacts.read", "contacts.export")))
    vm.start()
    assert vm.capabilities.import_export
    assert not vm.capabilities.generate
