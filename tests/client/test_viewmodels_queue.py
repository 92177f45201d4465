"""The work queue in the client without a screen: «Siguiente» (socket first, HTTP fallback, empty queue
with why and until), the wrap-up's callback in Costa Rica time, the do-not-call badge, «Rellamadas» and
«Campañas»."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from client_doubles import NOW, FakeGateway, make_contact

from client.api import ApiError, DoNotCall, NotFound, QueueEmpty
from client.centretime import BadTime, end_of_local_day, local_parts, parse_local
from client.dispatch import InlineRunner
from client.i18n import Translator
from client.live import LiveFeed, NotConnected
from client.models import Callback, Campaign, CampaignProgress, Claim, Eligibility, Finding, Me
from client.viewmodels.call import CallPhase, CallViewModel
from client.viewmodels.callbacks import CallbacksViewModel
from client.viewmodels.campaigns import CampaignsViewModel
from client.viewmodels.panel import ContactPanelViewModel, MessageKind
from client.viewmodels.queue import NextContactViewModel, claim_from_ack
from client.viewmodels.session import capabilities_for

ANA = Me("ana", "Agent", "ventas", user_id="u-ana", display_name="Ana")
ES = Translator("es")


def build(live=None, contacts=(), blocked=lambda: ""):
    api = FakeGateway(list(contacts), ANA)
    runner = InlineRunner()
    panel = ContactPanelViewModel(
        api, runner, ES, me=lambda: ANA, capabilities=lambda: capabilities_for("Agent"), clock=lambda: NOW
    )
    queue = NextContactViewModel(api, runner, ES, panel=panel, live=live, blocked=blocked)
    return api, panel, queue


def claimed(n: int) -> Claim:
    contact = make_contact(
        n, locked_by="u-ana", locked_by_name="Ana", locked_until=NOW + timedelta(minutes=10)
    )
    return Claim(contact, "General", "never_tried", "Nunca se ha llamado.", 0)


def ack_of(claim: Claim) -> dict:
    c = claim.contact
    return {
        "contact": {
            "id": c.id,
            "phone": c.phone,
            "phone_e164": c.phone_e164,
            "name": c.name,
            "status": c.status,
            "note": c.note,
            "locked_by": c.locked_by,
            "locked_by_name": c.locked_by_name,
            "locked_until": c.locked_until.isoformat(),
            "version": 3,
        },
        "campaign": claim.campaign,
        "reason": claim.reason,
        "message": claim.message,
        "attempts": claim.attempts,
    }


# -- «Siguiente» ---------------------------------------------------------------------------------------


def test_siguiente_over_the_socket_opens_the_contact_locked_to_me_and_says_why():
    sent = []

    def live(data):
        sent.append(dict(data))
        return ack_of(claimed(7))

    api, panel, queue = build(live)
    opened = []
    queue.on_opened = opened.append
    queue.next()

    assert sent == [{}]
    assert "next_contact" not in api.names()  # the socket answered: no HTTP request
    assert queue.via_socket
    assert panel.contact.id == "c000007"
    assert panel.lock_text(NOW) == "Bloqueado por usted — quedan 10:00"
    assert panel.message == ("Siguiente de «General»: Nunca se ha llamado (intentos: 0).")
    assert [c.contact.id for c in opened] == ["c000007"]
    assert not queue.busy


def test_siguiente_falls_back_to_http_when_the_live_connection_is_down():
    def live(_data):
        raise NotConnected("queue_next")

    api, panel, queue = build(live)
    api.queue = [claimed(3)]
    queue.next()

    assert api.names().count("next_contact") == 1
    assert not queue.via_socket
    assert panel.contact.id == "c000003"


def test_an_empty_queue_says_why_and_until_when_as_a_warning_not_an_error():
    until = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)
    api, panel, queue = build(
        lambda _d: {
            "error": "queue_empty",
            "message": "Todos en espera de reintento.",
            "until": until.isoformat(),
        }
    )
    queue.next()

    local = until.astimezone().strftime("%H:%M")
    assert panel.message == (
        f"No hay contactos para llamar ahora. Todos en espera de reintento. El próximo vuelve a las {local}."
    )
    assert panel.message_kind is MessageKind.WARNING
    assert queue.empty_text == panel.message
    assert panel.contact is None
    assert "next_contact" not in api.names()


def test_an_empty_queue_over_http_without_until_says_only_why():
    api, panel, queue = build()
    api.queue_empty_value = QueueEmpty("No hay campañas activas.")
    queue.next()
    assert panel.message == "No hay contactos para llamar ahora. No hay campañas activas."
    assert panel.message_kind is MessageKind.WARNING


def test_siguiente_waits_while_a_call_or_its_wrap_up_is_open():
    api, panel, queue = build(blocked=lambda: ES("queue.finish_call"))
    api.queue = [claimed(1)]
    queue.next()
    assert "next_contact" not in api.names()
    assert panel.message == "Termine la llamada y guarde el cierre antes de pedir el siguiente contacto."


def test_other_socket_refusals_are_errors_with_the_servers_message():
    _api, panel, queue = build(lambda _d: {"error": "forbidden", "message": "Su rol no permite esta acción."})
    queue.next()
    assert panel.message == "No se pudo pedir el siguiente contacto: Su rol no permite esta acción."
    assert panel.message_kind is MessageKind.ERROR


def test_claim_from_ack_reads_both_error_shapes():
    with pytest.raises(QueueEmpty) as empty:
        claim_from_ack({"error": {"code": "queue_empty", "message": "Vacía"}, "until": None})
    assert empty.value.message == "Vacía"
    with pytest.raises(ApiError) as other:
        claim_from_ack({"error": "invalid_input", "message": "campaign no válida"})
    assert other.value.code == "invalid_input"
    with pytest.raises(ApiError):
        claim_from_ack(["no", "es", "un", "objeto"])


def test_the_live_feed_refuses_requests_while_it_is_not_connected():
    feed = LiveFeed("http://127.0.0.1:9", "key", lambda *_: None, lambda *_: None)
    with pytest.raises(NotConnected):
        feed.request("queue_next", {})


# -- do not call ---------------------------------------------------------------------------------------


def test_a_contact_on_the_do_not_call_list_shows_the_badge_and_llamar_is_disabled_with_the_reason():
    contact = make_contact(4)
    api, panel, _queue = build(contacts=[contact])
    api.eligibility_value[contact.id] = Eligibility(
        contact.id, False, (Finding("dnc", "En la lista de no llamar: pidió no ser llamado"),)
    )
    calls = CallViewModel(api, InlineRunner(), ES, me=lambda: ANA, panel=panel)
    panel.open(contact)

    assert panel.dnc == "En la lista de no llamar: pidió no ser llamado"
    assert not calls.can_call
    assert calls.call_text == "📞 No llamar"
    calls.call()
    assert "call" not in api.names()
    assert panel.message == "No se puede llamar: En la lista de no llamar: pidió no ser llamado"

    panel.open(make_contact(5))
    assert panel.dnc == ""  # another contact: no badge


def test_a_call_refused_as_dnc_by_the_gateway_marks_the_contact():
    contact = make_contact(4)
    api, panel, _queue = build(contacts=[contact])
    calls = CallViewModel(api, InlineRunner(), ES, me=lambda: ANA, panel=panel)
    panel.open(contact)
    assert panel.dnc == ""
    api.fail["call"] = DoNotCall("El número +50688000004 está en la lista de no llamar (fraude)")
    calls.call()

    assert calls.phase is CallPhase.IDLE
    assert panel.dnc == "El número +50688000004 está en la lista de no llamar (fraude)"
    assert panel.message_kind is MessageKind.ERROR
    assert not calls.can_call


# -- the wrap-up's callback ----------------------------------------------------------------------------


def last_call(api, name):
    return next(call for call in reversed(api.calls) if call[0] == name)


def wrapped_up(api, panel):
    calls = CallViewModel(api, InlineRunner(), ES, me=lambda: ANA, panel=panel, now=lambda: NOW)
    calls.apply("desk_state", {"user_id": "u-ana", "username": "ana", "desk": "puesto-1", "state": "ready"})
    calls.call()
    calls.apply("call_ended", {"id": panel.contact.id, "call_id": "call-1", "outcome": "no_answer"})
    assert calls.phase is CallPhase.WRAP_UP
    return calls


def test_the_wrap_up_sends_the_callback_typed_in_costa_rica_time_as_utc_with_its_scope():
    contact = make_contact(1)
    api, panel, _queue = build(contacts=[contact])
    panel.open(contact)
    calls = wrapped_up(api, panel)
    assert (calls.wrapup.callback_date, calls.wrapup.callback_time) == local_parts(NOW + timedelta(days=1))

    calls.set_wrapup("status", "PENDIENTE")
    calls.set_wrapup("note", "Llamar el martes")
    calls.set_wrapup("callback", "1")
    calls.set_wrapup("callback_date", "03/03/2026")
    calls.set_wrapup("callback_time", "10:30")
    calls.set_wrapup("callback_scope", "shared")
    wrapped = []
    calls.on_wrapped = wrapped.append
    calls.save_wrapup()

    assert last_call(api, "disposition") == (
        "disposition",
        (
            contact.id,
            {
                "outcome": "no_answer",
                "status": "PENDIENTE",
                "note": "Llamar el martes",
                "callback_at": "2026-03-03T16:30:00+00:00",  # 10:30 in Costa Rica (UTC-6)
                "callback_scope": "shared",
            },
        ),
    )
    assert [c.id for c in wrapped] == [contact.id]
    assert panel.message.endswith("Pulse «Siguiente» (F6) para el próximo contacto.")
    assert api.callbacks_value[0].scope == "shared"


def test_a_callback_in_the_past_or_unreadable_is_refused_before_anything_is_sent():
    contact = make_contact(1)
    api, panel, _queue = build(contacts=[contact])
    panel.open(contact)
    calls = wrapped_up(api, panel)
    calls.set_wrapup("note", "algo")
    calls.set_wrapup("callback", "1")
    calls.set_wrapup("callback_date", "31/02/2026")
    calls.save_wrapup()
    assert "disposition" not in api.names()
    assert panel.message == "La fecha «31/02/2026» no es válida: escríbala como dd/mm/aaaa."
    calls.set_wrapup("callback_date", "01/03/2026")
    calls.set_wrapup("callback_time", "09:00")
    calls.save_wrapup()
    assert "disposition" not in api.names()
    assert panel.message == "La rellamada debe quedar en el futuro."
    assert calls.phase is CallPhase.WRAP_UP
    assert calls.wrapup.note == "algo"


def test_a_name_typed_in_the_panel_during_the_call_survives_the_wrap_up():
    contact = make_contact(1)
    api, panel, _queue = build(contacts=[contact])
    panel.open(contact)
    panel.set_field("name", "Cliente Uno Corregido")
    calls = wrapped_up(api, panel)
    calls.save_wrapup()
    assert calls.phase is CallPhase.IDLE
    assert panel.draft["name"] == "Cliente Uno Corregido"
    assert panel.dirty  # still to be saved: nothing typed was thrown away


def test_local_time_helpers_read_and_write_costa_rica_time():
    assert parse_local("02/03/2026", "16:00", NOW) == datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    assert end_of_local_day(NOW) == datetime(2026, 3, 3, 5, 59, 59, tzinfo=UTC)
    assert local_parts(datetime(2026, 3, 3, 0, 15, tzinfo=UTC)) == ("02/03/2026", "18:15")
    with pytest.raises(BadTime, match="HH:MM"):
        parse_local("02/03/2026", "25:00", NOW)


# -- «Rellamadas» --------------------------------------------------------------------------------------


def callbacks_vm(api):
    return CallbacksViewModel(api, InlineRunner(), ES, me=lambda: ANA, now=lambda: NOW)


def test_rellamadas_lists_todays_callbacks_soonest_first_and_opens_one_with_a_click():
    api = FakeGateway([], ANA)
    api.callbacks_value = [
        Callback("c2", NOW + timedelta(hours=2), "shared", "Luis", "+50688000002", callback_id="cb-2"),
        Callback("c1", NOW - timedelta(minutes=5), "personal", "Ana M.", "+50688000001", callback_id="cb-1"),
        Callback("c3", NOW + timedelta(days=2), "personal", "Mañana", "+50688000003", callback_id="cb-3"),
    ]
    vm = callbacks_vm(api)
    opened = []
    vm.open_contact = opened.append
    vm.refresh()

    assert api.calls[-1] == ("callbacks", datetime(2026, 3, 3, 5, 59, 59, tzinfo=UTC))
    assert vm.message == "2 rellamadas para hoy"
    assert vm.rows() == [
        ("02/03/2026 08:55 (vencida)", "Ana M.", "8800-0001", "Personal (solo yo)"),
        ("02/03/2026 11:00", "Luis", "8800-0002", "Compartida (cualquiera)"),
    ]
    vm.open("cb-2")
    assert opened == ["c2"]


def test_rellamadas_reschedules_and_cancels_and_says_when_one_is_gone():
    api = FakeGateway([], ANA)
    api.callbacks_value = [
        Callback("c1", NOW + timedelta(hours=1), "personal", "Ana M.", "+506", callback_id="cb-1")
    ]
    vm = callbacks_vm(api)
    vm.refresh()

    vm.reschedule("cb-1", "02/03/2026", "17:45", "shared")
    assert ("reschedule_callback", ("cb-1", datetime(2026, 3, 2, 23, 45, tzinfo=UTC), "shared")) in api.calls
    assert vm.rows()[0][0] == "02/03/2026 17:45"
    assert vm.message == "Rellamada movida al 02/03/2026 17:45."  # the list read again keeps the line
    vm.reschedule("cb-1", "02/03/2026", "7:77")
    assert vm.error
    assert "no es válida" in vm.message

    vm.cancel("cb-1")
    assert vm.callbacks == []
    assert vm.message == "Rellamada a Ana M. cancelada."
    vm.refresh()
    assert vm.message == "No tiene rellamadas pendientes para hoy."

    api.callbacks_value = [Callback("c9", NOW, "personal", "X", "+506", callback_id="cb-9")]
    vm.refresh()
    api.callbacks_value = []
    vm.cancel("cb-9")  # someone else took it meanwhile
    assert vm.callbacks == []
    assert vm.message == "Esa rellamada ya no existe; se leyó la lista de nuevo."


def test_a_callback_reminder_is_a_notice_and_rereads_the_list_but_not_for_someone_elses_personal_one():
    api = FakeGateway([], ANA)
    vm = callbacks_vm(api)
    notices = []
    vm.on_reminder = notices.append
    reminder = {
        "callback_id": "cb-1",
        "contact_id": "c1",
        "contact_name": "Ana M.",
        "phone": "+50688000001",
        "due_at": (NOW + timedelta(minutes=5)).isoformat(),
        "scope": "personal",
        "user_id": "u-ana",
    }
    vm.apply("callback_reminder", reminder)
    assert notices == ["⏰ Rellamada a las 02/03/2026 09:05: Ana M. (8800-0001)"]
    assert api.names() == ["callbacks"]

    vm.apply("callback_reminder", {**reminder, "user_id": "u-beto"})
    assert len(notices) == 1
    vm.apply("callback_reminder", {**reminder, "user_id": "u-beto", "scope": "shared"})
    assert len(notices) == 2


# -- «Campañas» ----------------------------------------------------------------------------------------


def campaigns_api():
    api = FakeGateway([], Me("lucia", "TeamLead"))
    api.campaigns_value = [
        Campaign("general", "General", True, 6, {"busy": 30, "no_answer": 120}),
        Campaign("vieja", "Vieja", False, 3),
    ]
    api.progress_value["general"] = CampaignProgress(
        "general",
        {
            "total": 1000,
            "never_tried": 588,
            "in_retry": 100,
            "reached": 200,
            "closed": 90,
            "dnc": 12,
            "capped": 10,
            "locked": 3,
        },
    )
    return api


def test_campaigns_lists_active_ones_archived_on_demand_and_shows_progress():
    api = campaigns_api()
    vm = CampaignsViewModel(api, InlineRunner(), ES)
    vm.refresh()

    assert vm.rows() == [("general", "General", "activa", "6")]
    assert vm.selected == "general"
    assert vm.worked_text == "412 de 1000 contactos trabajados (41 %)"
    assert vm.worked_share == pytest.approx(0.412)
    assert vm.progress_lines()[:3] == [
        ("Total", 1000),
        ("Nunca llamados", 588),
        ("En espera de reintento", 100),
    ]
    vm.set_archived(True)
    assert [row[0] for row in vm.rows()] == ["general", "vieja"]

    vm.select("vieja")
    assert vm.form.active is False
    assert vm.worked_text == "El servidor aún no da el avance de las campañas."


def test_campaign_form_is_checked_then_created_and_edited():
    api = campaigns_api()
    vm = CampaignsViewModel(api, InlineRunner(), ES)
    vm.refresh()
    vm.new()
    vm.set_form("name", "Renovaciones")
    vm.set_form("max_attempts", "0")
    vm.save()
    assert vm.error
    assert vm.message == "Intentos máx. debe ser un número entre 1 y 100."
    assert "save_campaign" not in api.names()

    vm.set_form("max_attempts", "4")
    vm.set_form("retry.busy", "abc")
    vm.save()
    assert vm.message == "La espera tras «ocupado» debe ser de 0 a 10080 minutos."

    vm.set_form("retry.busy", "45")
    vm.save()
    created = last_call(api, "save_campaign")[1]
    assert created[0] is None
    assert (created[1]["name"], created[1]["active"], created[1]["max_attempts"]) == ("Renovaciones", True, 4)
    assert created[1]["retry_minutes"] == {"busy": 45}
    assert vm.selected == "renovaciones"
    assert vm.message == "Campaña «Renovaciones» guardada."

    vm.set_form("active", False)
    vm.save()
    assert last_call(api, "save_campaign") == ("save_campaign", ("renovaciones", {"active": False}))
    assert next(c for c in api.campaigns_value if c.id == "renovaciones").active is False


def test_a_refused_campaign_keeps_what_was_typed():
    api = campaigns_api()
    api.fail["save_campaign"] = NotFound("La campaña x no existe")
    vm = CampaignsViewModel(api, InlineRunner(), ES)
    vm.refresh()
    vm.set_form("name", "Otra")
    vm.save()
    assert vm.error
    assert vm.message == "No se guardó la campaña: La campaña x no existe"
    assert vm.form.name == "Otra"


def test_a_queue_contact_skipped_without_a_wrap_up_is_released_when_the_next_one_comes():
    api, panel, queue = build()
    api.queue = [claimed(1), claimed(2)]
    queue.next()
    assert panel.contact.id == "c000001"
    queue.next()
    assert panel.contact.id == "c000002"
    assert ("unlock", "c000001") in api.calls

    api.queue = [claimed(3)]
    panel.open(make_contact(9))  # she opened another contact herself: nothing of hers is released
    queue.next()
    assert ("unlock", "c000002") not in api.calls


def test_the_reason_falls_back_to_the_clients_words_when_the_server_sends_none():
    _api, _panel, queue = build()
    claim = Claim(make_contact(1), "Renovaciones", "retry_due", "", 2)
    assert (
        queue.reason_text(claim)
        == "Siguiente de «Renovaciones»: terminó su espera para reintentar (intentos: 2)."
    )
