"""The call workflow without a screen: the desk's state on the Call button, the call's phases and timer,
Colgar, the wrap-up (outcome, status, note in one step) and the supervisors' desk board."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from client_doubles import NOW, FakeGateway, QueuedRunner, make_contact

from client.api import Conflict, LockedByOther, NetworkError, NoDesk, NotFound, PreconditionFailed
from client.dispatch import InlineRunner
from client.i18n import Translator
from client.models import CallRequest, DeskState, Me
from client.viewmodels.call import CallPhase, CallViewModel, Readiness, clock_text
from client.viewmodels.desks import DesksViewModel
from client.viewmodels.panel import ContactPanelViewModel, MessageKind
from client.viewmodels.session import capabilities_for

ANA = Me("ana", "Agent", "ventas", user_id="u-ana", display_name="Ana")


class Clock:
    """Monotonic seconds the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def build(runner=None, language="es"):
    contact = make_contact(1)
    api = FakeGateway([contact], ANA)
    runner = runner or InlineRunner()
    translate = Translator(language)
    panel = ContactPanelViewModel(
        api,
        runner,
        translate,
        me=lambda: ANA,
        capabilities=lambda: capabilities_for("Agent"),
        clock=lambda: NOW,
    )
    panel.open(contact)
    clock = Clock()
    calls = CallViewModel(api, runner, translate, me=lambda: ANA, panel=panel, clock=clock)
    return api, panel, calls, clock


def desk_state(state: str, call_id: str = "", user_id: str = "u-ana", desk: str = "puesto-1", **more):
    return {
        "user_id": user_id,
        "username": "ana" if user_id == "u-ana" else "beto",
        "desk": desk,
        "state": state,
        "call_id": call_id or None,
        "contact_id": more.get("contact_id"),
        "since": more.get("since", NOW.isoformat()),
    }


def last(api, name):
    """The arguments of the last ``name`` call made to the gateway."""
    return next(arg for called, arg in reversed(api.calls) if called == name)


def placed(api, calls, clock):
    """A call to contact 1 that the gateway accepted and sent to desk puesto-1."""
    calls.apply("desk_state", desk_state("ready"))
    calls.call()
    assert calls.phase is CallPhase.DIALLING
    return api.contacts["c000001"]


def test_call_button_says_there_is_no_desk_and_how_to_start_it():
    _api, _, calls, _ = build()
    calls.refresh_desks()

    assert calls.readiness is Readiness.NO_DESK
    assert calls.call_text == "📞 Llamar (F5) · sin marcador"
    assert calls.desk_text == "Sin marcador: inicie «callmanager-dialer» en este equipo (vea --check)."
    assert calls.can_call  # the server's answer still explains, should the desk have just started


def test_call_button_follows_my_desk_and_ignores_other_agents_desks():
    api, _, calls, _ = build()
    api.desks_value = [DeskState("u-beto", "beto", "puesto-9", "in_call", "call-x", "c000002")]
    calls.refresh_desks()
    assert calls.readiness is Readiness.NO_DESK

    calls.apply("desk_state", desk_state("ready"))
    assert (calls.readiness, calls.call_text, calls.desk_text) == (
        Readiness.READY,
        "📞 Llamar (F5)",
        "Puesto «puesto-1»: listo",
    )

    calls.apply("desk_state", desk_state("in_call", "call-y"))
    assert calls.desk_text == "Puesto «puesto-1»: ocupado (En llamada)"
    assert calls.call_text == "📞 Puesto ocupado"
    assert not calls.can_call

    calls.apply("desk_state", desk_state("softphone_missing"))
    assert calls.readiness is Readiness.SOFTPHONE_MISSING
    assert "teléfono de software" in calls.desk_text
    assert calls.desk_kind is MessageKind.WARNING

    calls.apply("desk_state", desk_state("offline"))
    assert calls.readiness is Readiness.NO_DESK


def test_call_without_a_desk_says_so_in_plain_spanish():
    api, panel, calls, _ = build()
    api.fail["call"] = NoDesk("No hay ningún agente de puesto conectado para su usuario.", code="no_desk")

    calls.call()

    assert panel.message == (
        "Su puesto no tiene el marcador conectado. Inicie «callmanager-dialer» en este equipo (vea --check)."
    )
    assert panel.message_kind is MessageKind.WARNING
    assert calls.phase is CallPhase.IDLE
    assert calls.can_call


def test_call_in_english():
    api, panel, calls, _ = build(language="en")
    api.fail["call"] = NoDesk()
    calls.call()
    assert panel.message.startswith("Your desk has no dialer connected.")


def test_call_to_a_contact_someone_else_holds_names_them():
    api, panel, calls, _ = build()
    api.fail["call"] = LockedByOther(
        locked_by="u-beto", locked_by_name="beto", locked_until=(NOW + timedelta(minutes=5)).isoformat()
    )

    calls.call()

    assert panel.message.startswith("No se puede llamar: el contacto lo tiene beto hasta las ")
    assert calls.phase is CallPhase.IDLE


def test_accepted_request_without_a_connected_desk_is_not_reported_as_success():
    api, panel, calls, _ = build()
    api.call_answer = CallRequest("call-9", False)
    calls.call()
    assert "la llamada no se hizo" in panel.message
    assert calls.phase is CallPhase.IDLE


def test_call_goes_dialling_ringing_in_call_with_a_running_timer_then_wrap_up():
    api, panel, calls, clock = build()
    contact = placed(api, calls, clock)
    assert ("call", "c000001") in api.calls
    assert panel.message == "Llamada enviada a su puesto «puesto-1» (8800-0001)."
    assert (calls.phase_text, calls.timer_text()) == ("Marcando…", "00:00")

    clock.now += 7
    calls.apply("desk_state", desk_state("dialling", "call-1"))
    assert (calls.phase_text, calls.timer_text()) == ("Marcando…", "00:07")
    calls.apply("call_started", {"id": contact.id, "call_id": "call-1", "user": "u-ana", "position": 5})
    calls.apply("desk_state", desk_state("ringing", "call-1"))
    assert calls.phase_text == "Sonando…"
    clock.now += 5
    calls.apply("desk_state", desk_state("in_call", "call-1"))
    assert (calls.phase_text, calls.timer_text()) == ("En llamada", "00:00")
    clock.now += 65
    assert calls.timer_text() == "01:05"
    assert calls.call_text == "📞 En llamada"
    assert not calls.can_call
    assert calls.can_hangup

    calls.hangup()
    assert api.calls[-1] == ("hangup", ("call-1", None))
    assert calls.phase is CallPhase.HANGING_UP
    assert calls.phase_text == "Colgando…"

    calls.apply(
        "call_ended",
        {"id": contact.id, "call_id": "call-1", "user": "u-ana", "outcome": "answered", "talk_seconds": 65},
    )
    wrap = calls.wrapup
    assert calls.phase is CallPhase.WRAP_UP
    assert (wrap.outcome, wrap.outcome_editable, wrap.hangup_pending) == ("answered", False, False)
    assert calls.wrapup_title == "Cierre de la llamada con Cliente 1 (01:05 en llamada)"
    assert calls.wrapup_hint == "Resultado informado por su puesto."
    assert calls.wrapup_button == "💾 Guardar cierre"

    calls.set_wrapup("outcome", "busy")  # the desk reported it: not the agent's to change
    calls.set_wrapup("status", "INTERESADO")
    calls.set_wrapup("note", "Quiere el plan de 20 GB")
    saved = []
    calls.on_saved = saved.append
    calls.save_wrapup()

    assert wrap.outcome == "answered"
    assert last(api, "disposition") == (
        "c000001",
        {"outcome": "answered", "status": "INTERESADO", "note": "Quiere el plan de 20 GB"},
    )
    assert "update_contact" not in api.names()  # one request: the disposition
    assert api.names().count("hangup") == 1  # the wrap-up does not hang up a second time
    assert calls.phase is CallPhase.IDLE
    assert calls.wrapup is None
    assert panel.message == (
        "Cierre de la llamada guardado. Pulse «Siguiente» (F6) para el próximo contacto."
    )
    assert panel.draft["note"] == "nota 1\nQuiere el plan de 20 GB"  # the server adds the note
    assert panel.contact.status == "INTERESADO"
    assert [c.id for c in saved] == ["c000001"]


def test_a_desk_that_cannot_see_the_call_lets_the_agent_choose_the_outcome_sent_with_the_hangup():
    api, _panel, calls, clock = build()
    contact = placed(api, calls, clock)
    calls.apply("call_started", {"id": contact.id, "call_id": "call-1", "user": "u-ana"})
    assert calls.phase_text == "En llamada"

    calls.hangup()
    assert "hangup" not in api.names()  # it goes out with the outcome the agent picks
    wrap = calls.wrapup
    assert (wrap.outcome_editable, wrap.hangup_pending) == (True, True)
    assert calls.wrapup_button == "📵 Colgar y guardar"
    assert "elija el resultado" in calls.wrapup_hint

    calls.set_wrapup("outcome", "no_answer")
    calls.set_wrapup("status", "NC")
    calls.save_wrapup()

    names = [name for name in api.names() if name in ("hangup", "disposition")]
    assert names == ["hangup", "disposition"]
    assert last(api, "hangup") == ("call-1", "no_answer")
    assert last(api, "disposition")[1] == {"outcome": "no_answer", "status": "NC", "note": ""}
    assert calls.phase is CallPhase.IDLE


def test_the_wrap_up_keeps_the_note_typed_during_the_call_and_after_a_conflict():
    api, panel, calls, clock = build()
    contact = placed(api, calls, clock)
    panel.set_field("note", "nota 1\nPidió que lo llamen el viernes")
    calls.apply(
        "call_ended", {"id": contact.id, "call_id": "call-1", "outcome": "no_answer", "talk_seconds": 0}
    )
    assert calls.wrapup.note == "Pidió que lo llamen el viernes"  # what she added: the server appends it
    assert calls.wrapup.outcome == "no_answer"

    calls.set_wrapup("note", "Pidió que lo llamen el viernes a las 3")
    api.contacts[contact.id] = replace(contact, version=7, name="Cambiado por beto")
    api.fail["disposition"] = PreconditionFailed()
    calls.save_wrapup()

    assert calls.phase is CallPhase.WRAP_UP
    assert calls.wrapup.note == "Pidió que lo llamen el viernes a las 3"
    assert not calls.wrapup.saving
    assert panel.message.startswith("Otro usuario cambió este contacto")
    assert panel.draft["note"] == "nota 1\nPidió que lo llamen el viernes"  # the panel's draft is kept

    api.fail["disposition"] = Conflict("Un agente no puede volver a «Sin gestionar».", code="transition")
    calls.set_wrapup("status", "SIN_GESTIONAR")
    calls.save_wrapup()
    assert calls.phase is CallPhase.WRAP_UP
    assert panel.message == (
        "El servidor no aceptó el cierre: Un agente no puede volver a «Sin gestionar». Lo escrito se "
        "conserva; corrija y guarde de nuevo."
    )
    assert (calls.wrapup.status, calls.wrapup.note) == (
        "SIN_GESTIONAR",
        "Pidió que lo llamen el viernes a las 3",
    )

    del api.fail["disposition"]
    calls.set_wrapup("status", "NC")
    calls.save_wrapup()
    assert last(api, "disposition") == (
        contact.id,
        {"outcome": "no_answer", "status": "NC", "note": "Pidió que lo llamen el viernes a las 3"},
    )
    assert calls.phase is CallPhase.IDLE


def test_events_that_arrive_before_the_gateway_answers_are_not_lost():
    runner = QueuedRunner()
    _api, _panel, calls, _clock = build(runner)
    runner.run_all()
    calls.apply("desk_state", desk_state("ready"))
    calls.call()
    assert calls.phase is CallPhase.REQUESTING
    assert calls.phase_text == "Marcando…"
    calls.apply("call_requested", {"id": "c000001", "call_id": "call-1", "user": "u-ana"})
    calls.apply("desk_state", desk_state("ringing", "call-1"))
    calls.apply("call_started", {"id": "c000001", "call_id": "call-1", "user": "u-ana"})

    runner.run_all()

    assert calls.phase is CallPhase.RINGING
    assert calls.active.started
    assert calls.active.progress_seen


def test_a_call_that_ends_on_its_own_opens_the_wrap_up_and_others_calls_are_ignored():
    api, panel, calls, clock = build()
    contact = placed(api, calls, clock)
    calls.apply("call_ended", {"id": contact.id, "call_id": "someone-else", "outcome": "busy"})
    assert calls.phase is CallPhase.DIALLING

    calls.apply(
        "call_ended", {"id": contact.id, "call_id": "call-1", "outcome": "failed", "reason": "timeout"}
    )
    assert calls.phase is CallPhase.WRAP_UP
    assert calls.wrapup.outcome == "failed"

    calls.call()
    assert panel.message == "Termine el cierre de la llamada anterior antes de llamar de nuevo."
    assert api.names().count("call") == 1


def test_hangup_that_fails_keeps_the_call_and_says_why():
    api, panel, calls, clock = build()
    contact = placed(api, calls, clock)
    calls.apply("desk_state", desk_state("in_call", "call-1"))
    api.fail["hangup"] = NetworkError()

    calls.hangup()

    assert calls.phase is CallPhase.IN_CALL
    assert panel.message == "No se pudo colgar: No se pudo conectar con el servidor."
    assert contact.id == "c000001"


def test_clock_text_reads_minutes_and_seconds():
    assert [clock_text(s) for s in (0, 5.9, 65, 3599, 3661)] == [
        "00:00",
        "00:05",
        "01:05",
        "59:59",
        "1:01:01",
    ]


def test_desk_board_lists_every_desk_live_with_its_contact_and_since_when():
    api = FakeGateway([make_contact(1), make_contact(2)], Me("lucia", "TeamLead"))
    started = NOW - timedelta(minutes=2, seconds=31)
    api.desks_value = [
        DeskState("u-beto", "beto", "puesto-9", "in_call", "call-x", "c000002", started),
        DeskState("u-ana", "ana", "puesto-1", "ready", since=NOW),
    ]
    known = {"c000001": make_contact(1, name="María Vargas")}
    board = DesksViewModel(api, InlineRunner(), Translator("es"), known_contact=known.get, clock=lambda: NOW)
    changes = []
    board.on_change = lambda: changes.append(1)
    board.refresh()

    local = started.astimezone().strftime("%H:%M:%S")
    assert board.summary == "2 puestos conectados"
    assert board.rows() == [
        ("ana", "puesto-1", "Listo", "", f"{NOW.astimezone().strftime('%H:%M:%S')} (00:00)", "—", "—"),
        ("beto", "puesto-9", "En llamada", "Cliente 2", f"{local} (02:31)", "—", "—"),
    ]
    assert ("get_contact", "c000002") in api.calls

    board.apply("desk_state", desk_state("dialling", "call-z", contact_id="c000001", since=NOW.isoformat()))
    assert board.rows()[0][2:4] == ("Marcando", "María Vargas")
    board.apply("desk_state", desk_state("offline", user_id="u-beto", desk="puesto-9"))
    assert [row[1] for row in board.rows()] == ["puesto-1"]
    assert changes


def test_desk_board_shows_each_agents_calls_today_and_success_rate_and_rereads_them_after_a_call():
    api = FakeGateway([make_contact(2)], Me("lucia", "TeamLead"))
    api.desks_value = [DeskState("u-beto", "beto", "puesto-9", "in_call", "call-x", "c000002", NOW)]
    api.call_metrics_value = {
        "agents": [
            {"user_id": "u-beto", "username": "beto", "made": 12, "success_rate": 0.4167},
            {"user_id": "u-ana", "username": "ana", "made": 0, "success_rate": None},
        ]
    }
    board = DesksViewModel(api, InlineRunner(), Translator("es"), clock=lambda: NOW.astimezone())
    board.refresh()

    since, _until = last(api, "call_metrics")
    assert (since.hour, since.minute, since.second) == (0, 0, 0)  # today, from the local midnight
    assert board.rows()[0][3:] == ("Cliente 2", board.rows()[0][4], "12", "42 %")

    api.call_metrics_value = {
        "agents": [{"user_id": "u-beto", "username": "beto", "made": 13, "success_rate": 0.5}]
    }
    board.apply("desk_state", desk_state("ready", user_id="u-beto", desk="puesto-9"))
    assert board.rows()[0][5:] == ("13", "50 %")
    board.apply("desk_state", desk_state("ready", user_id="u-ana"))
    assert board.rows()[0][5:] == ("—", "—")  # ana: no figures in the last answer


def test_desk_board_says_why_it_could_not_read_the_desks():
    api = FakeGateway([], Me("lucia", "TeamLead"))
    api.fail["desks"] = NetworkError()
    board = DesksViewModel(api, InlineRunner(), Translator("es"))
    board.refresh()
    assert board.error == "No se pudieron leer los puestos: No se pudo conectar con el servidor."


def test_this_week_starts_on_monday():
    from client.viewmodels.metrics import Period, period_window

    thursday = datetime(2026, 3, 5, 16, 0).astimezone()
    since, until = period_window(Period.THIS_WEEK, thursday)
    assert (since.date().isoformat(), since.hour, until) == ("2026-03-02", 0, None)


def test_the_call_names_its_contact_when_the_panel_shows_another():
    api, panel, calls, clock = build()
    placed(api, calls, clock)
    api.contacts["c000002"] = make_contact(2)
    panel.open(api.contacts["c000002"])
    assert calls.phase_text == "Marcando… · Cliente 1"


def test_a_desk_that_drops_during_the_call_is_reported_and_the_call_kept():
    api, panel, calls, clock = build()
    placed(api, calls, clock)
    calls.apply("desk_state", desk_state("in_call", "call-1"))
    calls.apply("desk_state", desk_state("offline"))
    assert panel.message.startswith("Su puesto se desconectó durante la llamada")
    assert calls.phase is CallPhase.IN_CALL
    assert calls.readiness is Readiness.NO_DESK


def test_a_wrap_up_saved_while_only_the_calls_own_events_moved_the_version_is_saved_again_silently():
    """On a server without the disposition route the wrap-up goes by ``PUT``. The call's lock and steps
    move the contact's version; when no field changed the wrap-up is not a
    conflict: it is read again and saved with the new version, without «Otro usuario cambió»."""
    api, panel, calls, clock = build()
    contact = placed(api, calls, clock)
    sent = []

    def update_contact(contact_id, fields, version):
        sent.append(version)
        if version != api.contacts[contact_id].version:
            raise PreconditionFailed()
        return FakeGateway.update_contact(api, contact_id, fields, version)

    api.update_contact = update_contact
    api.fail["disposition"] = NotFound()  # a server from before POST /contacts/{id}/disposition
    api.contacts[contact.id] = replace(contact, version=contact.version + 3)  # requested, started, ended
    calls.apply("call_ended", {"id": contact.id, "call_id": "call-1", "outcome": "busy", "talk_seconds": 0})
    calls.set_wrapup("status", "NC")
    calls.save_wrapup()
    assert sent == [contact.version, contact.version + 3]
    assert calls.phase is CallPhase.IDLE
    assert panel.message.startswith("Cierre de la llamada guardado.")
    assert api.contacts[contact.id].status == "NC"
