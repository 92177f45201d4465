"""Supervisor tools: import (dry run → confirm → progress → report), export, generator, metrics; and setup."""

from __future__ import annotations

import csv
import stat
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from client_doubles import FakeGateway, ManualScheduler, QueuedRunner
from gateway_double import USERS, call_figures_for
from openpyxl import load_workbook

from client.api import ContactQuery, Invalid, NetworkError, Unauthorized
from client.config import ClientConfig, ConfigStore, FileKeyStore, KeyStoreChoice
from client.dispatch import InlineRunner
from client.i18n import Translator
from client.models import Me
from client.viewmodels.catalogue import StatusCatalogue
from client.viewmodels.exporter import ExportState, ExportViewModel
from client.viewmodels.generator import GeneratorState, GeneratorViewModel
from client.viewmodels.importer import ImportState, ImportViewModel
from client.viewmodels.metrics import MetricsViewModel, Period, duration_text, rate_text
from client.viewmodels.setup import SetupState, SetupViewModel

DRY_REPORT = {
    "total": 5,
    "inserted": 3,
    "updated": 1,
    "duplicates_merged": 0,
    "errors": [{"row": 4, "message": "número no válido: demasiado corto"}],
}
REAL_REPORT = {**DRY_REPORT, "inserted": 3}


def build_import(tmp_path):
    api = FakeGateway()
    scheduler = ManualScheduler()
    vm = ImportViewModel(api, InlineRunner(), scheduler, Translator("es"))
    path = tmp_path / "lista.xlsx"
    path.write_bytes(b"x")
    return api, scheduler, vm, path


def finish(api, vm, report):
    api.jobs[vm.job.id] = replace(vm.job, state="finished", done=5, total=5, report=report)


def test_import_goes_dry_run_then_preview_then_confirm_then_progress_then_report(tmp_path):
    api, scheduler, vm, path = build_import(tmp_path)
    states = []
    vm.on_change = lambda: states.append(vm.state)
    vm.choose(path)
    assert api.calls[-1] == ("start_import", ("lista.xlsx", True))
    assert vm.state is ImportState.CHECKING
    assert vm.text == "Revisando lista.xlsx (sin guardar)…"
    finish(api, vm, DRY_REPORT)
    scheduler.advance(vm.poll_ms)
    assert vm.state is ImportState.PREVIEW
    assert vm.text == (
        "Revisión de lista.xlsx: 5 filas — 3 nuevas, 1 ya existentes, 0 repetidas en el archivo, "
        "1 rechazadas. Todavía no se guardó nada."
    )
    assert vm.report_rows == ((4, "", "rechazada", "número no válido: demasiado corto"),)
    assert vm.can_confirm

    vm.confirm()
    assert api.calls[-1] == ("start_import", ("lista.xlsx", False))
    assert vm.state is ImportState.IMPORTING
    vm.apply(
        "job_progress",
        {"id": vm.job.id, "state": "running", "progress": {"done": 2, "total": 5}, "position": 9},
    )
    assert vm.fraction == 0.4
    assert vm.text == "Importando lista.xlsx: 2 de 5"
    vm.apply(
        "job_progress",
        {
            "id": vm.job.id,
            "state": "finished",
            "progress": {"done": 5, "total": 5},
            "report": REAL_REPORT,
            "position": 10,
        },
    )
    assert vm.state is ImportState.DONE
    assert (
        vm.text
        == "Importación terminada: 3 nuevas, 1 actualizadas, 0 sin cambios, 0 repetidas, 1 rechazadas de 5."
    )
    assert scheduler.pending == 0, "polling stops when the job ends"
    assert ImportState.CHECKING in states
    assert ImportState.IMPORTING in states


def test_progress_of_another_job_is_ignored(tmp_path):
    _, _, vm, path = build_import(tmp_path)
    vm.choose(path)
    vm.apply(
        "job_progress",
        {"id": "otro", "state": "finished", "progress": {"done": 1, "total": 1}, "report": DRY_REPORT},
    )
    assert vm.state is ImportState.CHECKING


def test_import_refused_by_the_server_shows_its_message_not_success(tmp_path):
    api, _, vm, path = build_import(tmp_path)
    api.fail["start_import"] = Invalid("El archivo no tiene columna de teléfono. Encabezados: nombre, nota")
    vm.choose(path)
    assert vm.state is ImportState.FAILED
    assert (
        vm.text == "La importación falló: El archivo no tiene columna de teléfono. Encabezados: nombre, nota"
    )


def test_failed_job_is_reported_as_failed(tmp_path):
    api, scheduler, vm, path = build_import(tmp_path)
    vm.choose(path)
    api.jobs[vm.job.id] = replace(vm.job, state="failed", message="hoja vacía")
    scheduler.advance(vm.poll_ms)
    assert vm.state is ImportState.FAILED
    assert "hoja vacía" in vm.text


def test_report_with_rejected_rows_is_savable_as_csv_and_xlsx(tmp_path):
    api, scheduler, vm, path = build_import(tmp_path)
    vm.choose(path)
    finish(api, vm, DRY_REPORT)
    scheduler.advance(vm.poll_ms)
    vm.save_report(tmp_path / "reporte.csv")
    with (tmp_path / "reporte.csv").open(encoding="utf-8-sig") as handle:
        assert list(csv.reader(handle)) == [
            ["Fila", "Teléfono", "Resultado", "Detalle"],
            ["4", "", "rechazada", "número no válido: demasiado corto"],
        ]
    assert vm.notice == f"Reporte guardado en {tmp_path / 'reporte.csv'}."
    vm.save_report(tmp_path / "reporte.xlsx")
    sheet = load_workbook(tmp_path / "reporte.xlsx").active
    assert [c.value for c in sheet[2]] == [4, None, "rechazada", "número no válido: demasiado corto"]


def test_the_servers_report_lists_merged_rows_and_warnings_and_is_downloaded_whole(tmp_path):
    api, scheduler, vm, path = build_import(tmp_path)
    vm.choose(path)
    report = {
        "dry_run": True,
        "total": 6,
        "inserted": 0,
        "updated": 0,
        "new": 3,
        "existing": 1,
        "duplicates_merged": 1,
        "rejected": 1,
        "errors": [{"row": 4, "phone": "123", "message": "Número demasiado corto"}],
        "merged": [{"row": 7, "into": 2, "phone": "88001122"}],
        "warnings": [{"row": 3, "phone": "6100-3344", "message": "Correo no válido; se dejó vacío"}],
        "report_files": {"csv": "informe_x.csv", "xlsx": "informe_x.xlsx"},
    }
    finish(api, vm, report)
    scheduler.advance(vm.poll_ms)
    assert vm.text.startswith("Revisión de lista.xlsx: 6 filas — 3 nuevas, 1 ya existentes, 1 repetidas")
    assert vm.report_rows == (
        (3, "6100-3344", "aviso", "Correo no válido; se dejó vacío"),
        (4, "123", "rechazada", "Número demasiado corto"),
        (7, "88001122", "combinada", "mismo teléfono que la fila 2; se combinó con ella"),
    )
    vm.save_report(tmp_path / "informe.xlsx")
    assert api.calls[-1] == ("download_report", (vm.job.id, "xlsx"))
    assert (tmp_path / "informe.xlsx").read_bytes() == api.report_bytes
    assert vm.notice == f"Reporte guardado en {tmp_path / 'informe.xlsx'}."


def test_cancel_waits_for_the_server(tmp_path):
    api, _, vm, path = build_import(tmp_path)
    vm.choose(path)
    vm.confirm()  # not allowed before the preview
    assert ("start_import", ("lista.xlsx", False)) not in api.calls
    vm.cancel()
    assert api.calls[-2][0] == "cancel_job"
    assert vm.state is ImportState.CANCELLED


def test_export_writes_the_file_and_says_where(tmp_path):
    api = FakeGateway()
    vm = ExportViewModel(api, InlineRunner(), Translator("es"), post=lambda f: f())
    fractions = []
    vm.on_change = lambda: fractions.append(vm.fraction)
    vm.fmt = "xlsx"
    vm.query = ContactQuery(status="NC")
    dest = tmp_path / "contactos.csv"
    vm.start(dest)
    assert vm.state is ExportState.DONE
    assert dest.read_bytes() == api.export_bytes
    assert api.calls[-1] == ("export", ("csv", ContactQuery(status="NC")))
    assert vm.text == f"Exportación guardada en {dest} (9 B)."
    assert 0.0 < fractions[1] < 1.0


def test_export_failure_says_no_file_was_saved(tmp_path):
    api = FakeGateway()
    api.fail["export"] = NetworkError("La descarga se cortó: 10 de 99 bytes.")
    vm = ExportViewModel(api, InlineRunner(), Translator("es"), post=lambda f: f())
    vm.start(tmp_path / "x.xlsx")
    assert vm.state is ExportState.FAILED
    assert (
        vm.text == "La exportación falló: La descarga se cortó: 10 de 99 bytes. No se guardó ningún archivo."
    )
    assert not (tmp_path / "x.xlsx").exists()


def test_generator_fills_the_result_table_and_shares(tmp_path):
    api = FakeGateway()
    vm = GeneratorViewModel(api, InlineRunner(), Translator("es"))
    vm.amount_text, vm.method, vm.save = "30", "simple", True
    vm.generate()
    assert api.calls[-1] == ("generate", (30, "simple", True))
    assert vm.state is GeneratorState.DONE
    assert vm.text == "30 números generados; 30 guardados como contactos."
    assert vm.rows()[0] == ("83000000", "8300-0000", "Kölbi (ICE)")
    assert vm.shares() == [
        ("Kölbi (ICE)", 10, 100 / 3),
        ("Telefónica (Liberty)", 10, 100 / 3),
        ("Claro", 10, 100 / 3),
    ]
    vm.save_result(tmp_path / "numeros.xlsx")
    sheet = load_workbook(tmp_path / "numeros.xlsx").active
    assert sheet.max_row == 31
    assert [c.value for c in sheet[1]] == ["Número", "Formato", "Operador"]


def test_generator_refuses_an_amount_outside_1_to_1000_before_asking():
    api = FakeGateway()
    vm = GeneratorViewModel(api, InlineRunner(), Translator("es"))
    for text in ("0", "1001", "diez", ""):
        vm.amount_text = text
        vm.generate()
        assert vm.text == "La cantidad debe ser un número entre 1 y 1000."
    assert "generate" not in api.names()


def test_generator_shows_configured_weights():
    api = FakeGateway()
    api.config_value = {"generator_weights": {"kolbi": 40, "telefonica": 35, "claro": 25}}
    vm = GeneratorViewModel(api, InlineRunner(), Translator("es"))
    vm.load_weights()
    assert (
        vm.shares_text() == "Reparto por operador: Kölbi (ICE) 40 % · Telefónica (Liberty) 35 % · Claro 25 %"
    )


def test_metrics_sections_from_json():
    api = FakeGateway()
    api.metrics_value = {
        "calls": {"made": 120, "successful": 80},
        "contacts": {"by_status": {"SIN_GESTIONAR": 10, "NC": 5}, "total": 15},
        "per_agent": [{"agent": "ana", "calls": 70, "success_rate": 0.6}],
        "uptime_seconds": 12.5,
    }
    vm = MetricsViewModel(api, InlineRunner(), Translator("es"), StatusCatalogue())
    vm.refresh()
    assert vm.calls == [("Realizadas", "120"), ("Exitosas", "80")]
    assert vm.by_status == [("No contesta", "5"), ("Sin gestionar", "10")]
    assert vm.agent_columns == ["agent", "calls", "success_rate"]
    assert vm.per_agent == [["ana", "70", "0.60"]]
    assert ("contacts.total", "15") in vm.other
    assert ("uptime_seconds", "12.50") in vm.other


def build_setup(tmp_path, keys=None, api=None):
    api = api or FakeGateway(me=Me("ana", "Agent"))
    configs = ConfigStore(tmp_path / "cfg")
    keys = keys or KeyStoreChoice(FileKeyStore(tmp_path / "cfg"), False, "sin servicio de llavero")
    vm = SetupViewModel(Translator("es"), InlineRunner(), lambda url, key: api, configs, keys, ClientConfig())
    return api, configs, vm


def test_setup_rejects_a_url_without_scheme_and_an_empty_key(tmp_path):
    api, _, vm = build_setup(tmp_path)
    vm.url, vm.key = "servidor:5000", "k"
    vm.submit()
    assert vm.message == "La URL debe empezar con http:// o https://"
    vm.url, vm.key = "http://servidor:5000", " "
    vm.submit()
    assert vm.message == "Escriba la llave de API."
    assert api.calls == []


def test_setup_saves_url_and_says_where_the_key_went_without_keyring(tmp_path):
    _, configs, vm = build_setup(tmp_path)
    vm.url, vm.key = "http://servidor:5000/", "llave-secreta"
    vm.submit()
    assert vm.state is SetupState.SAVED
    assert configs.load() == ClientConfig("http://servidor:5000", "es", "ana")
    keyfile = tmp_path / "cfg" / "keys.json"
    assert FileKeyStore(tmp_path / "cfg").load("http://servidor:5000") == "llave-secreta"
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert vm.message.startswith("Conectado como ana (Agente).\nNo hay llavero del sistema disponible")
    assert "llave-secreta" not in configs.path.read_text()


def test_setup_with_a_keyring_that_fails_on_write_falls_back_and_says_so(tmp_path):
    class BrokenKeyring:
        def save(self, url, key):
            raise RuntimeError("dbus no disponible")

    _, _, vm = build_setup(tmp_path, keys=KeyStoreChoice(BrokenKeyring(), True))
    vm.url, vm.key = "http://servidor:5000", "k"
    vm.submit()
    assert "el llavero del sistema no aceptó la llave" in vm.message
    assert "RuntimeError" not in vm.message
    assert FileKeyStore(tmp_path / "cfg").load("http://servidor:5000") == "k"


def test_setup_with_a_bad_key_saves_nothing(tmp_path):
    api = FakeGateway()
    api.fail["me"] = Unauthorized("Llave de API inválida")
    _, configs, vm = build_setup(tmp_path, api=api)
    vm.url, vm.key = "http://servidor:5000", "mala"
    vm.submit()
    assert vm.state is SetupState.FAILED
    assert vm.message == "Llave de API inválida"
    assert not configs.path.exists()


def test_generator_shows_the_weights_the_server_used():
    from client.models import Generation

    result = Generation.from_json(
        {
            "success": True,
            "count": 1,
            "saved": 0,
            "weights": {"kolbi": 40.0, "telefonica": 35.0, "claro": 25.0},
            "phones": [{"number": "71913142", "formatted": "7191-3142", "operator": "claro"}],
        }
    )
    api = FakeGateway()
    api.generate = lambda amount, method, save: result
    vm = GeneratorViewModel(api, InlineRunner(), Translator("es"))
    vm.generate()
    assert vm.shares_text() == (
        "Claro 1 (100.0 %)\nReparto por operador: Kölbi (ICE) 40 % · Telefónica (Liberty) 35 % · Claro 25 %"
    )


def test_generator_reads_the_gateways_flat_weight_settings():
    api = FakeGateway()
    api.config_value = {
        "generator_weight_kolbi": 40.0,
        "generator_weight_telefonica": 35.0,
        "generator_weight_claro": 25.0,
        "rate_limit": "600/minute",
    }
    vm = GeneratorViewModel(api, InlineRunner(), Translator("es"))
    vm.load_weights()
    assert vm.configured_weights == {"kolbi": 40.0, "telefonica": 35.0, "claro": 25.0}


def test_metrics_read_the_gateways_prometheus_families_as_plain_figures():
    api = FakeGateway()
    api.metrics_value = {
        "callmanager_http_requests": {
            "callmanager_http_requests_total{method=GET,route=/contacts,status=200}": 40.0,
            "callmanager_http_requests_total{method=POST,route=/contacts,status=422}": 3.0,
            "callmanager_http_requests_total{method=GET,route=/stats,status=500}": 1.0,
        },
        "callmanager_http_request_seconds": {
            "callmanager_http_request_seconds_count{route=/contacts}": 44.0,
            "callmanager_http_request_seconds_sum{route=/contacts}": 0.2,
        },
        "callmanager_socket_connections": {"callmanager_socket_connections": 2.0},
        "callmanager_events_relayed": {
            "callmanager_events_relayed_total{type=contacts.ContactCreated}": 20.0,
            "callmanager_events_relayed_total{type=contacts.ContactLocked}": 2.0,
        },
    }
    vm = MetricsViewModel(api, InlineRunner(), Translator("es"), StatusCatalogue())
    vm.refresh()
    assert ("Solicitudes atendidas", "44") in vm.other
    assert ("Solicitudes rechazadas (4xx)", "3") in vm.other
    assert ("Errores del servidor (5xx)", "1") in vm.other
    assert ("Respuesta promedio (ms)", "4.55") in vm.other
    assert ("Clientes en vivo conectados", "2") in vm.other
    assert ("Cambios enviados en vivo", "22") in vm.other
    assert not any(key.startswith("callmanager_") for key, _ in vm.other)
    assert vm.calls == []


# --- call metrics (GET /metrics/calls) -------------------------------------------------------------------

COSTA_RICA = timezone(timedelta(hours=-6))
DESK_NOW = datetime(2026, 3, 2, 15, 30, tzinfo=COSTA_RICA)


def build_metrics(who: str, *, supervisor: bool, server_figures: bool = True, runner=None):
    api = FakeGateway()
    api.call_metrics_value = call_figures_for(USERS[who], None, None)
    vm = MetricsViewModel(
        api,
        runner or InlineRunner(),
        Translator("es"),
        StatusCatalogue(),
        supervisor=supervisor,
        server_figures=server_figures,
        clock=lambda: DESK_NOW,
    )
    return api, vm


def test_an_agent_sees_only_their_own_call_figures_for_today():
    api, vm = build_metrics("key-agent", supervisor=False)

    vm.refresh()

    assert api.calls == [("call_metrics", (datetime(2026, 3, 2, tzinfo=COSTA_RICA), None))]
    assert vm.calls_title == "Sus llamadas"
    assert vm.calls == [
        ("Realizadas", "12"),
        ("Exitosas", "7"),
        ("Fallidas", "4"),
        ("Canceladas", "0"),
        ("En curso", "1"),
        ("Tasa de éxito", "63.6 %"),
        ("Atención promedio", "3:38"),
        ("Tiempo en llamada", "30:30"),
    ]
    assert (vm.per_agent, vm.per_team, vm.agent_columns, vm.team_columns) == ([], [], [], [])
    assert (vm.error, vm.loading) == ("", False)


def test_a_team_lead_sees_a_row_per_agent_and_the_team_totals():
    api, vm = build_metrics("key-lead", supervisor=True, server_figures=False)
    api.stats_value = {"total": 15, "locked": 1, "by_status": {"NC": 5, "SIN_GESTIONAR": 10}}

    vm.refresh()

    assert set(api.names()) == {"call_metrics", "stats"}  # /metrics refuses a TeamLead: not even asked
    assert vm.calls_title == "Llamadas del equipo ventas"
    assert ("Realizadas", "21") in vm.calls
    assert ("Tasa de éxito", "57.9 %") in vm.calls
    assert vm.agent_columns[:3] == ["agent", "team", "made"]
    assert vm.per_agent == [
        ["ana", "ventas", "12", "7", "4", "63.6 %", "3:38", "30:30"],
        ["beto", "ventas", "9", "4", "4", "50.0 %", "3:08", "16:00"],
    ]
    assert vm.per_team == [["ventas", "2", "21", "11", "8", "57.9 %", "3:25", "46:30"]]
    assert vm.by_status == [("No contesta", "5"), ("Sin gestionar", "10")]


def test_a_project_manager_sees_every_team_and_the_servers_totals_do_not_replace_them():
    runner = QueuedRunner()
    api, vm = build_metrics("key-pm", supervisor=True, runner=runner)
    api.metrics_value = {
        "calls": {"made": 999},
        "callmanager_calls_placed": {"callmanager_calls_placed_total": 999},
    }
    vm.refresh()

    runner.run(1)  # GET /metrics answers before GET /metrics/calls
    assert vm.loading
    runner.run_all()

    assert vm.calls_title == "Llamadas de todos los equipos"
    assert ("Realizadas", "26") in vm.calls
    assert [row[0] for row in vm.per_team] == ["ventas", "soporte"]
    assert [row[:3] for row in vm.per_agent] == [
        ["ana", "ventas", "12"],
        ["beto", "ventas", "9"],
        ["carla", "soporte", "5"],
    ]
    assert not any("999" in value for _, value in vm.other)
    assert not vm.loading


def test_choosing_a_period_asks_for_that_window_only():
    api, vm = build_metrics("key-agent", supervisor=False)
    assert [label for _, label in vm.periods()] == [
        "Hoy",
        "Esta semana",
        "Últimos 7 días",
        "Últimos 30 días",
        "Todo",
    ]

    vm.set_period(Period.WEEK)
    vm.set_period(Period.THIS_WEEK)
    vm.set_period(Period.ALL)

    assert api.calls == [
        ("call_metrics", (datetime(2026, 2, 24, tzinfo=COSTA_RICA), None)),
        ("call_metrics", (datetime(2026, 3, 2, tzinfo=COSTA_RICA), None)),  # Monday
        ("call_metrics", (None, None)),
    ]


def test_call_metrics_that_cannot_be_read_say_why():
    api, vm = build_metrics("key-agent", supervisor=False)
    api.fail["call_metrics"] = NetworkError()

    vm.refresh()

    assert vm.error == "No se pudieron leer las métricas: No se pudo conectar con el servidor."
    assert vm.calls == []
    assert not vm.loading


def test_durations_and_rates_read_as_people_say_them():
    assert [duration_text(s) for s in (0, 59.6, 65, 3600, 4000.2, None)] == [
        "0:00",
        "1:00",
        "1:05",
        "1:00:00",
        "1:06:40",
        "—",
    ]
    assert [rate_text(r) for r in (0, 0.5, 1 / 3, None)] == ["0.0 %", "50.0 %", "33.3 %", "—"]
