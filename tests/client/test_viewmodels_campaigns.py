"""«Campañas»' whole form without a screen (lists, teams, time zone, calling hours per weekday, caps, retry
delays, priority, active, archive): what is sent, every field checked with its Spanish message, the
server's 409/422 put beside the fields it names with what was typed kept; and «Rellamadas» following live
``callback_changed`` notices."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import requests
from client_doubles import NOW, FakeGateway, QueuedRunner

from client.api import Conflict, Invalid, error_from_response
from client.dispatch import InlineRunner
from client.i18n import Translator
from client.models import Callback, Campaign, Me
from client.viewmodels.callbacks import CallbacksViewModel
from client.viewmodels.campaigns import CampaignsViewModel, error_key, split_names, with_name

ES = Translator("es")
LUCIA = Me("lucia", "TeamLead", "ventas", user_id="u-lucia")
ANA = Me("ana", "Agent", "ventas", user_id="u-ana", display_name="Ana")
GENERAL = Campaign("general", "General", True, 6, {"busy": 30, "no_answer": 120, "failed": 15})
RENOVACIONES = Campaign(
    "renovaciones",
    "Renovaciones",
    True,
    4,
    {"busy": 20, "no_answer": 60, "callback": 5},
    lists=("feria-2026",),
    teams=("ventas",),
    calling_hours={"mon": (("08:00", "12:00"), ("13:00", "17:00"), ("18:00", "19:00"))},
    max_per_day=2,
    priority=10,
)


def campaigns_vm(*campaigns: Campaign, known_lists=("importados", "feria-2026")):
    api = FakeGateway([], LUCIA)
    api.campaigns_value = list(campaigns or (GENERAL,))
    vm = CampaignsViewModel(
        api, InlineRunner(), ES, known_lists=lambda: known_lists, known_teams=lambda: ["ventas"]
    )
    vm.refresh()
    return api, vm


def fill(vm: CampaignsViewModel, **fields: str | bool) -> None:
    for name, value in fields.items():
        vm.set_form(name.replace("__", "."), value)


def last_save(api: FakeGateway):
    return next(call for call in reversed(api.calls) if call[0] == "save_campaign")[1]


def test_a_new_campaign_sends_every_rule_typed():
    api, vm = campaigns_vm()
    vm.new()
    fill(
        vm,
        name="  Cobros   marzo ",
        priority="5",
        lists="feria-2026, importados,feria-2026",
        teams="",
        timezone="America/Guatemala",
        hours_limited=True,
        max_attempts="8",
        max_per_day="2",
        retry__busy="15",
        retry__no_answer="90",
        retry__failed="0",
    )
    fill(vm, day__mon__start2="13:00", day__mon__end2="18:00", day__mon__end="12:00")
    fill(vm, day__sat__enabled=True, day__sun__enabled=False, day__fri__end="24:00")
    vm.save()

    campaign_id, body = last_save(api)
    assert campaign_id is None
    assert body == {
        "name": "Cobros marzo",
        "active": True,
        "priority": 5,
        "lists": ["feria-2026", "importados"],
        "teams": [],
        "timezone": "America/Guatemala",
        "calling_hours": {
            "mon": [["08:00", "12:00"], ["13:00", "18:00"]],
            "tue": [["08:00", "17:00"]],
            "wed": [["08:00", "17:00"]],
            "thu": [["08:00", "17:00"]],
            "fri": [["08:00", "24:00"]],
            "sat": [["08:00", "12:00"]],
        },
        "max_attempts": 8,
        "max_per_day": 2,
        "retry_minutes": {"busy": 15, "no_answer": 90, "failed": 0},
    }
    assert "archived" not in body  # POST /campaigns takes no archive flag
    assert vm.message == "Campaña «Cobros marzo» guardada."
    saved = next(c for c in api.campaigns_value if c.id == "cobros-marzo")
    assert saved.calling_hours is not None
    assert saved.calling_hours["mon"][1] == ("13:00", "18:00")
    assert vm.form.hours_limited
    assert vm.form.days["mon"].start2 == "13:00"


def test_every_wrong_field_is_named_in_spanish_and_nothing_is_sent_nor_lost():
    api, vm = campaigns_vm()
    vm.new()
    fill(
        vm,
        name="",
        priority="mil",
        lists=", ".join(f"lista-{n}" for n in range(51)),
        timezone="America/Atlantida",
        hours_limited=True,
        day__mon__start="8",
        day__tue__start="17:00",
        day__tue__end="08:00",
        day__wed__start2="11:00",
        day__wed__end2="12:00",
        max_attempts="0",
        max_per_day="101",
        retry__busy="-5",
    )
    vm.save()

    assert "save_campaign" not in api.names()
    assert vm.error
    assert vm.errors == {
        "name": "Escriba un nombre de campaña (hasta 100 caracteres).",
        "priority": "La prioridad debe ser un número de 0 a 1000.",
        "lists": "Hasta 50 listas, cada nombre de hasta 100 caracteres.",
        "timezone": "Zona horaria desconocida: «America/Atlantida». Elija una de la lista (p. ej. "
        "America/Costa_Rica).",
        "hours.mon": "Lunes: escriba las horas como HH:MM (de 00:00 a 24:00).",
        "hours.tue": "Martes: la franja 17:00-08:00 termina antes de empezar.",
        "hours.wed": "Miércoles: la segunda franja debe empezar cuando termina la primera o después.",
        "max_attempts": "Intentos máx. debe ser un número entre 1 y 100.",
        "max_per_day": "Intentos por día debe ser un número de 1 a 100, o quedar vacío (sin límite).",
        "retry.busy": "La espera tras «ocupado» debe ser de 0 a 10080 minutos.",
    }
    assert vm.message == (
        "Hay 10 campos por corregir (en rojo). El primero: Escriba un nombre de campaña (hasta 100 "
        "caracteres)."
    )
    assert vm.form.timezone == "America/Atlantida"
    assert vm.form.days["tue"].end == "08:00"

    fill(vm, name="Ok", priority="1", lists="a", timezone="UTC", max_attempts="3", max_per_day="")
    fill(vm, retry__busy="5", hours_limited=False)
    vm.save()
    assert vm.errors == {}
    assert vm.message == "Campaña «Ok» guardada."
    assert last_save(api)[1]["calling_hours"] is None  # no limit: the day rows are not checked


def test_limited_hours_need_a_day_and_an_archived_campaign_cannot_stay_active():
    api, vm = campaigns_vm(GENERAL, RENOVACIONES)
    vm.select("renovaciones")
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        vm.set_form(f"day.{day}.enabled", False)
    vm.set_form("archived", True)
    vm.save()
    assert vm.errors == {
        "active": "Una campaña archivada no puede estar activa: desmarque «Activa» o «Archivada».",
        "calling_hours": "Marque al menos un día o quite «Limitar el horario de llamadas».",
    }
    assert "save_campaign" not in api.names()


def test_editing_sends_only_the_rules_changed_and_keeps_what_the_form_does_not_show():
    api, vm = campaigns_vm(GENERAL, RENOVACIONES)
    vm.select("renovaciones")
    form = vm.form
    assert (form.lists, form.teams, form.priority, form.max_per_day) == ("feria-2026", "ventas", "10", "2")
    assert form.hours_limited
    assert form.days["mon"].extra == (("18:00", "19:00"),)
    assert not form.days["tue"].enabled

    vm.save()
    assert vm.message == "No hay cambios que guardar."
    assert "save_campaign" not in api.names()

    fill(vm, teams="ventas, cobros", day__tue__enabled=True, retry__busy="25", active=False, archived=True)
    vm.save()
    assert last_save(api) == (
        "renovaciones",
        {
            "active": False,
            "teams": ["ventas", "cobros"],
            "calling_hours": {
                "mon": [["08:00", "12:00"], ["13:00", "17:00"], ["18:00", "19:00"]],
                "tue": [["08:00", "17:00"]],
            },
            "retry_minutes": {"callback": 5, "busy": 25, "no_answer": 60},
            "archived": True,
        },
    )
    saved = next(c for c in api.campaigns_value if c.id == "renovaciones")
    assert (saved.archived, saved.active) == (True, False)
    assert vm.rows() == [("general", "General", "activa", "6")]  # archived: hidden until asked
    vm.set_archived(True)
    assert ("renovaciones", "Renovaciones", "archivada", "4") in vm.rows()


def test_general_takes_no_lists_teams_or_archive():
    api, vm = campaigns_vm()
    assert vm.selected == "general"
    assert vm.form.is_general
    vm.set_form("lists", "feria-2026")
    vm.save()
    assert vm.errors == {
        "lists": "La campaña General no lleva listas ni equipos: tiene todos los contactos sin otra campaña."
    }
    vm.set_form("lists", "")
    vm.set_form("hours_limited", True)
    vm.save()
    body = last_save(api)[1]
    assert set(body) == {"calling_hours"}


def test_the_servers_refusal_is_shown_beside_its_fields_and_the_typing_stays():
    api, vm = campaigns_vm(GENERAL, RENOVACIONES)
    vm.new()
    fill(vm, name="Renovaciones", lists="nueva", max_attempts="3")
    api.fail["save_campaign"] = Conflict("Ya existe una campaña «Renovaciones»", code="campaign_exists")
    vm.save()
    assert vm.errors == {"name": "Ya existe una campaña «Renovaciones»"}
    assert vm.message == "No se guardó la campaña: Ya existe una campaña «Renovaciones»"
    assert (vm.form.name, vm.form.lists, vm.form.max_attempts) == ("Renovaciones", "nueva", "3")
    assert vm.selected is None
    assert vm.creating

    api.fail["save_campaign"] = Invalid(
        "Datos de entrada no válidos.",
        fields={"calling_hours.mon.0.0": "", "timezone": "Zona horaria desconocida: «X»"},
    )
    vm.set_form("name", "Otra")
    vm.save()
    assert vm.errors == {
        "hours.mon": "El servidor no aceptó este valor.",
        "timezone": "Zona horaria desconocida: «X»",
    }
    assert vm.form.name == "Otra"
    vm.refresh()  # a reload while a new campaign is typed does not replace the form
    assert (vm.form.name, vm.selected) == ("Otra", None)


def test_a_422_names_its_fields_and_field_keys_map_to_the_form():
    answer = requests.Response()
    answer.status_code = 422
    answer._content = (
        b'{"error": {"code": "invalid_input", "message": "Datos de entrada no v\\u00e1lidos.", '
        b'"problems": [{"field": "calling_hours.tue.0.1", "message": "String should match pattern"}, '
        b'{"field": "priority", "message": "Input should be less than or equal to 1000"}]}}'
    )
    error = error_from_response(answer)
    assert isinstance(error, Invalid)
    assert error.fields == {"calling_hours.tue.0.1": "", "priority": ""}
    answer._content = (
        b'{"error": {"code": "invalid_input", "message": "Zona horaria desconocida", "field": "timezone"}}'
    )
    error = error_from_response(answer)
    assert isinstance(error, Invalid)
    assert error.fields == {"timezone": "Zona horaria desconocida"}
    assert [error_key(k) for k in ("calling_hours.tue.0.1", "retry_minutes.busy", "lists.3", "name")] == [
        "hours.tue",
        "retry.busy",
        "lists",
        "name",
    ]


def test_known_lists_and_teams_are_offered_and_added_once():
    _api, vm = campaigns_vm(GENERAL, RENOVACIONES, known_lists=("importados", "", "Feria-2027"))
    assert vm.list_choices() == ["feria-2026", "Feria-2027", "importados"]
    assert vm.team_choices() == ["ventas"]
    assert with_name("a, b", "c") == "a, b, c"
    assert with_name("a, c", "c") == "a, c"
    assert split_names(" uno ,dos;\ntres  cuatro,,uno") == ["uno", "dos", "tres cuatro"]


# -- «Rellamadas» following live changes ----------------------------------------------------------------


def callbacks_vm(api, runner=None):
    return CallbacksViewModel(api, runner or InlineRunner(), ES, me=lambda: ANA, now=lambda: NOW)


def change(callback_id: str, what: str, **fields: object) -> dict[str, object]:
    return {
        "id": "c1",
        "position": 7,
        "user": "u-lucia",
        "user_name": "lucia",
        "callback_id": callback_id,
        "change": what,
        "due_at": None,
        "scope": None,
        "user_id": None,
        **fields,
    }


@pytest.fixture
def agenda():
    api = FakeGateway([], ANA)
    api.callbacks_value = [
        Callback(
            "c1", NOW + timedelta(hours=1), "personal", "Olga", "+50688000001", "u-ana", callback_id="cb-1"
        )
    ]
    return api


def test_another_users_reschedule_or_cancel_rereads_the_list_and_says_so(agenda):
    vm = callbacks_vm(agenda)
    vm.refresh()
    later = NOW + timedelta(hours=3)
    agenda.callbacks_value = [Callback("c1", later, "personal", "Olga", "+50688000001", callback_id="cb-1")]
    vm.apply("callback_changed", change("cb-1", "rescheduled", due_at=later.isoformat(), user_id="u-ana"))
    assert vm.rows()[0][0] == "02/03/2026 12:00"
    assert vm.message == "lucia reprogramó la rellamada a Olga (02/03/2026 12:00); la lista se actualizó."
    assert agenda.names().count("callbacks") == 2

    agenda.callbacks_value = []
    vm.apply("callback_changed", change("cb-1", "cancelled", user_name=None))
    assert vm.callbacks == []
    assert vm.message == "Otro usuario canceló la rellamada a Olga; la lista se actualizó."


def test_a_shared_one_appears_and_someone_elses_personal_one_is_ignored(agenda):
    vm = callbacks_vm(agenda)
    vm.refresh()
    vm.apply("callback_changed", change("cb-8", "rescheduled", scope="personal", user_id="u-beto"))
    assert agenda.names().count("callbacks") == 1  # not mine, not shown, not shared: nothing read

    agenda.callbacks_value.append(Callback("c8", NOW, "shared", "Pedro", "+50688000008", callback_id="cb-8"))
    vm.apply("callback_changed", {**change("cb-8", "shared", scope="shared"), "user": "system"})
    assert [c.id for c in vm.callbacks] == ["cb-8", "cb-1"]
    assert vm.message == (
        "La rellamada a Pedro pasó a compartida (nadie la atendió a tiempo); la lista se actualizó."
    )

    vm.apply("callback_changed", {**change("cb-99", "shared", scope="shared"), "user": "system"})
    assert vm.message == (  # due after today: not in the list, so no name to give
        "La rellamada a un contacto pasó a compartida (nadie la atendió a tiempo); la lista se actualizó."
    )

    vm.apply("bulk_update", {"by_type": {"CallbackShared": 60}, "count": 60})
    assert agenda.names().count("callbacks") == 4
    vm.apply("bulk_update", {"by_type": {"ContactCreated": 60}, "count": 60})
    assert agenda.names().count("callbacks") == 4


def test_my_own_change_keeps_the_line_that_says_what_i_did_and_nothing_is_read_before_the_window(agenda):
    vm = callbacks_vm(agenda)
    vm.apply("callback_changed", change("cb-1", "rescheduled", user_id="u-ana"))
    assert agenda.names() == []  # the window is not open yet: it reads the list when it opens

    vm.refresh()
    vm.reschedule("cb-1", "02/03/2026", "17:45")
    vm.apply("callback_changed", {**change("cb-1", "rescheduled", user_id="u-ana"), "user": "u-ana"})
    assert vm.message == "Rellamada movida al 02/03/2026 17:45."


def test_a_change_arriving_while_the_list_is_read_reads_it_again_afterwards(agenda):
    runner = QueuedRunner()
    vm = callbacks_vm(agenda, runner)
    vm.refresh()
    runner.run()
    vm.refresh()  # a read under way (e.g. the reload button)
    vm.apply("callback_changed", change("cb-1", "cancelled"))
    assert len(runner.queue) == 1
    agenda.callbacks_value = []
    runner.run()  # the first read answers, then the list is read again for the change
    assert len(runner.queue) == 1
    runner.run()
    assert vm.callbacks == []
    assert vm.message == "lucia canceló la rellamada a Olga; la lista se actualizó."


def test_the_form_knows_when_it_was_changed_and_runs_what_follows_only_once_saved():
    api, vm = campaigns_vm(GENERAL, RENOVACIONES)
    vm.select("renovaciones")
    assert not vm.has_changes
    vm.set_form("day.tue.enabled", True)
    assert vm.has_changes
    assert vm.form_title == "Renovaciones"

    followed = []
    vm.set_form("max_attempts", "0")
    vm.save(then=lambda: followed.append("next"))
    assert followed == []  # refused here: the form stays
    vm.set_form("max_attempts", "4")
    api.fail["save_campaign"] = Invalid("Datos de entrada no válidos.", fields={"calling_hours": ""})
    vm.save(then=lambda: followed.append("next"))
    assert followed == []  # refused by the server: the form stays
    del api.fail["save_campaign"]
    vm.save(then=lambda: followed.append("next"))
    assert followed == ["next"]
    assert not vm.has_changes


def test_someone_elses_change_meanwhile_to_another_rule_is_not_sent_back():
    api, vm = campaigns_vm(GENERAL, RENOVACIONES)
    vm.select("renovaciones")
    api.campaigns_value = [GENERAL, dataclasses.replace(RENOVACIONES, priority=1)]  # pedro, meanwhile
    vm.refresh()
    vm.set_form("max_attempts", "5")
    vm.save()
    assert last_save(api) == ("renovaciones", {"max_attempts": 5})
    assert next(c for c in api.campaigns_value if c.id == "renovaciones").priority == 1
