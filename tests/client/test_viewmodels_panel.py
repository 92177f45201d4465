"""The contact panel view model: edit and save, locks, history and delete by role (calls: see
test_viewmodels_call.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from client_doubles import NOW, FakeGateway, make_contact

from client.api import LockedByOther, PreconditionFailed
from client.dispatch import InlineRunner
from client.drafts import Draft, FileDrafts, MemoryDrafts
from client.i18n import Translator
from client.models import HistoryEntry, Me
from client.viewmodels.panel import Choice, ContactPanelViewModel, LockState, MessageKind
from client.viewmodels.session import capabilities_for


def build(role="Agent", contact=None, clock=lambda: NOW):
    contact = contact or make_contact(1)
    me = Me("ana", role)
    api = FakeGateway([contact], me)
    vm = ContactPanelViewModel(
        api,
        InlineRunner(),
        Translator("es"),
        me=lambda: me,
        capabilities=lambda: capabilities_for(role),
        clock=clock,
    )
    vm.open(contact)
    return api, vm


def test_save_sends_only_changed_fields_with_the_version_read():
    api, vm = build()
    vm.set_field("note", "Llamar el lunes")
    vm.set_field("status", "INTERESADO")
    saved = []
    vm.on_saved = saved.append
    vm.save()
    _, (_, fields, version) = next(c for c in api.calls if c[0] == "update_contact")
    assert fields == {"note": "Llamar el lunes", "status": "INTERESADO"}
    assert version == 1
    assert vm.message == "Cambios guardados."
    assert saved[0].status == "INTERESADO"
    assert not vm.dirty


def test_nothing_to_save_sends_nothing():
    api, vm = build()
    vm.save()
    assert "update_contact" not in api.names()
    assert vm.message == "No hay cambios que guardar."


def test_save_after_someone_else_changed_it_reloads_and_warns():
    api, vm = build()
    vm.set_field("name", "Mío")
    api.fail["update_contact"] = PreconditionFailed()
    api.contacts["c000001"] = replace(api.contacts["c000001"], name="De Beto", version=2)
    vm.save()
    assert vm.message_kind is MessageKind.WARNING
    assert "Otra persona cambió este contacto" in vm.message
    assert vm.contact.version == 2
    assert vm.draft["name"] == "Mío", "the user's unsaved text is kept for review"
    assert [(r.field, r.mine, r.theirs) for r in vm.conflict] == [("name", "Mío", "De Beto")]


def _changed_meanwhile(api, **fields):
    """Someone else saves ``fields`` (the live event did not arrive yet)."""
    current = api.contacts["c000001"]
    api.contacts["c000001"] = replace(current, version=current.version + 1, **fields)
    api.changes_since["c000001"] = [
        HistoryEntry(NOW, "beto", field, getattr(current, field), value) for field, value in fields.items()
    ]


def test_a_stale_save_is_never_applied_and_each_clashing_field_is_shown_beside_mine():
    api, vm = build()
    vm.set_field("note", "Mi nota")
    vm.set_field("name", "Nombre mío")
    _changed_meanwhile(api, note="Nota de Beto", status="INTERESADO")
    vm.save()
    assert api.contacts["c000001"].note == "Nota de Beto", "never a silent overwrite"
    assert [(r.field, r.mine, r.theirs, r.who) for r in vm.conflict] == [
        ("note", "Mi nota", "Nota de Beto", "beto")
    ]
    assert vm.draft["status"] == "INTERESADO", "a field only they changed takes their value"
    assert vm.draft["name"] == "Nombre mío", "a field only I changed keeps mine"
    vm.save()
    assert "elija qué conservar" in vm.message
    assert api.names().count("update_contact") == 1

    vm.choose("note", Choice.MERGE)
    assert vm.draft["note"] == "Nota de Beto\nMi nota"
    vm.save()
    saved = api.contacts["c000001"]
    assert (saved.note, saved.name, saved.status) == ("Nota de Beto\nMi nota", "Nombre mío", "INTERESADO")
    assert not vm.conflict
    assert not vm.dirty


def test_taking_theirs_or_keeping_mine_settles_a_field():
    api, vm = build()
    vm.set_field("name", "Mío")
    _changed_meanwhile(api, name="De Beto")
    vm.save()
    vm.choose("name", Choice.THEIRS)
    assert vm.draft["name"] == "De Beto"
    vm.choose("name", Choice.MINE)
    vm.save()
    assert api.contacts["c000001"].name == "Mío"


def test_changes_to_other_fields_meanwhile_are_kept_and_mine_saved_without_asking():
    api, vm = build()
    vm.set_field("note", "Mi nota")
    _changed_meanwhile(api, name="De Beto")
    vm.save()
    assert not vm.conflict
    assert (api.contacts["c000001"].note, api.contacts["c000001"].name) == ("Mi nota", "De Beto")


def test_a_live_change_while_typing_does_not_move_the_version_a_save_sends():
    api, vm = build()
    vm.set_field("note", "Mi nota")
    _changed_meanwhile(api, note="Nota de Beto")
    vm.apply("contact_updated", {"id": "c000001", "user": "beto", "contact": _json(api.contacts["c000001"])})
    assert vm.draft["note"] == "Mi nota"
    vm.save()
    assert vm.conflict, "the save went with the version the typing started from"


def test_typing_is_kept_until_saved_and_restored_when_the_contact_opens_again():
    drafts = MemoryDrafts()
    contact = make_contact(1)
    me = Me("ana", "Agent")
    api = FakeGateway([contact], me)

    def panel():
        vm = ContactPanelViewModel(
            api,
            InlineRunner(),
            Translator("es"),
            me=lambda: me,
            capabilities=lambda: capabilities_for("Agent"),
            clock=lambda: NOW,
            drafts=drafts,
        )
        vm.open(contact)
        return vm

    first = panel()
    first.set_field("note", "a medio escribir")
    first.remember()
    assert drafts.get("c000001").fields["note"] == "a medio escribir"
    second = panel()  # the client crashed and started again
    assert second.draft["note"] == "a medio escribir"
    assert second.dirty
    assert "Se recuperaron cambios sin guardar" in second.message
    second.save()
    assert api.contacts["c000001"].note == "a medio escribir"
    assert drafts.get("c000001") is None
    third = panel()
    third.set_field("note", "otra cosa")
    third.remember()
    third.discard()
    assert drafts.get("c000001") is None
    assert third.draft["note"] == "a medio escribir"


def test_file_drafts_survive_a_new_process(tmp_path):
    path = tmp_path / "drafts.json"
    FileDrafts(path).put(Draft("c1", {"note": "hola"}, 3, {"note": ""}))
    kept = FileDrafts(path).get("c1")
    assert (kept.fields, kept.base_version, kept.base) == ({"note": "hola"}, 3, {"note": ""})
    assert kept.saved_at
    FileDrafts(path).drop("c1")
    assert not path.exists()


def test_warned_a_minute_before_my_lock_ends_and_extend_takes_it_again():
    now = [NOW]
    until = NOW + timedelta(minutes=2)
    api, vm = build(contact=make_contact(1, locked_by="ana", locked_until=until), clock=lambda: now[0])
    vm.check_expiry()
    assert not vm.expiring
    now[0] = NOW + timedelta(seconds=61)
    vm.check_expiry()
    assert vm.expiring
    assert "Su bloqueo vence a las" in vm.message
    assert "Extender" in vm.message
    vm.extend()
    assert ("lock", ("c000001", 10)) in api.calls
    assert not vm.expiring


def test_a_force_release_of_my_lock_is_told_at_once_with_who_did_it():
    until = NOW + timedelta(minutes=5)
    api, vm = build(contact=make_contact(1, locked_by="ana", locked_until=until))
    api.contacts["c000001"] = make_contact(1)
    vm.apply("contact_unlocked", {"id": "c000001", "unlocked_by": "u-marta", "user_name": "marta"})
    assert vm.message_kind is MessageKind.WARNING
    assert vm.message.startswith("marta liberó su bloqueo")
    assert vm.lock_state() is LockState.FREE


def test_save_refused_while_someone_else_holds_the_lock_names_them():
    until = NOW + timedelta(minutes=7)
    api, vm = build(contact=make_contact(1, locked_by="beto", locked_until=until))
    vm.set_field("note", "x")
    vm.save()
    assert "update_contact" not in api.names()
    assert "Bloqueado por beto" in vm.message
    assert "quedan 7:00" in vm.message
    assert not vm.can_edit


def test_server_423_on_save_shows_owner_and_expiry():
    api, vm = build()
    api.fail["update_contact"] = LockedByOther(
        "bloqueado", locked_by="carla", locked_until="2026-03-02T15:05:00Z"
    )
    vm.set_field("note", "x")
    vm.save()
    assert "Bloqueado por carla" in vm.message
    assert vm.lock_state() is LockState.OTHER


def test_lock_denied_message_names_the_owner():
    api, vm = build()
    api.fail["lock"] = LockedByOther("bloqueado", locked_by="beto", locked_until="2026-03-02T15:09:00Z")
    vm.lock()
    assert vm.message.startswith("No se pudo bloquear: lo tiene beto hasta las ")
    assert vm.message_kind is MessageKind.WARNING


def test_lock_denied_event_is_shown_with_the_servers_message():
    _, vm = build()
    vm.apply(
        "lock_denied",
        {
            "id": "c000001",
            "locked_by": "beto",
            "locked_until": "2026-03-02T15:09:00Z",
            "message": "El contacto está bloqueado por beto",
        },
    )
    assert vm.message == "El contacto está bloqueado por beto"


def test_my_lock_shows_the_time_left_and_can_be_released():
    _, vm = build()
    vm.lock(10)
    assert vm.lock_state() is LockState.MINE
    assert vm.lock_text() == "Bloqueado por usted — quedan 10:00"
    assert vm.lock_text(NOW + timedelta(minutes=3, seconds=30)) == "Bloqueado por usted — quedan 6:30"
    vm.release()
    assert vm.lock_state() is LockState.FREE
    assert vm.message == "Bloqueo liberado."


def test_force_release_offered_to_team_leads_only():
    locked = make_contact(1, locked_by="beto", locked_until=NOW + timedelta(minutes=5))
    _, agent = build("Agent", locked)
    _, lead = build("TeamLead", locked)
    assert not agent.can_force_release
    assert lead.can_force_release


def test_delete_is_offered_only_to_roles_that_may_and_asks_first():
    _, agent = build("Agent")
    _, lead = build("TeamLead")
    api, manager = build("ProjectManager")
    assert not agent.can_delete
    assert not lead.can_delete
    assert manager.can_delete
    assert (
        manager.delete_prompt()
        == "¿Eliminar el contacto Cliente 1 (8800-0001)? Esta acción queda registrada."
    )
    deleted = []
    manager.on_deleted = deleted.append
    manager.delete()
    assert deleted == ["c000001"]
    assert "c000001" not in api.contacts
    assert manager.contact is None


def test_agent_delete_does_nothing():
    api, agent = build("Agent")
    agent.delete()
    assert "delete_contact" not in api.names()


def test_history_is_shown_newest_first():
    api, vm = build()
    api.history_rows = [
        HistoryEntry(NOW - timedelta(hours=2), "ana", "status", "SIN_GESTIONAR", "NC"),
        HistoryEntry(NOW - timedelta(hours=1), "beto", "note", "", "volver a llamar"),
    ]
    vm.load_history()
    assert [h.who for h in vm.history] == ["beto", "ana"]


def test_change_by_another_user_refreshes_a_clean_form():
    _, vm = build()
    contact = {"id": "c000001", "name": "Cliente 1", "status": "NC", "note": "nota 1", "version": 2}
    vm.apply(
        "contact_updated", {"id": "c000001", "fields": {"status": "NC"}, "user": "beto", "contact": contact}
    )
    assert vm.draft["status"] == "NC"
    assert vm.message == "beto cambió este contacto."


def test_change_by_another_user_keeps_my_unsaved_edits_and_warns():
    api, vm = build()
    vm.set_field("note", "lo que escribo")
    api.contacts["c000001"] = replace(api.contacts["c000001"], status="NC", version=2)
    vm.apply("contact_updated", {"id": "c000001", "fields": {"status": "NC"}, "user": "beto"})
    assert vm.draft["note"] == "lo que escribo"
    assert vm.message_kind is MessageKind.WARNING
    assert vm.contact.status == "NC"
    assert vm.contact.version == 2


def test_events_about_other_contacts_are_ignored():
    _, vm = build()
    vm.apply("contact_deleted", {"id": "c000002", "user": "beto"})
    assert vm.contact is not None


def test_my_lock_running_out_is_announced_once():
    now = [NOW]
    _, vm = build(clock=lambda: now[0])
    vm.lock(10)
    vm.check_expiry()
    assert vm.message == "Contacto bloqueado por 10 minutos."
    now[0] = NOW + timedelta(minutes=10, seconds=1)
    vm.check_expiry()
    assert vm.message == "Su bloqueo venció."
    vm.message = ""
    vm.check_expiry()
    assert vm.message == ""


def test_a_burst_of_changes_fetches_history_at_most_twice():
    from client_doubles import QueuedRunner

    contact = make_contact(1)
    me = Me("ana", "Agent")
    api = FakeGateway([contact], me)
    runner = QueuedRunner()
    vm = ContactPanelViewModel(
        api,
        runner,
        Translator("es"),
        me=lambda: me,
        capabilities=lambda: capabilities_for("Agent"),
        clock=lambda: NOW,
    )
    vm.open(contact)
    for n in range(50):
        vm.apply("contact_updated", {"id": "c000001", "fields": {"note": f"n{n}"}, "user": "beto"})
    runner.run_all()
    assert api.names().count("history") == 2


def test_events_name_other_users_without_showing_their_ids():
    _, vm = build()
    vm.apply(
        "contact_updated",
        {"id": "c000001", "fields": {"status": "NC"}, "user": "6f1c0e7e-5d7a-4c1e-9a49-0f7d2a1b9c11"},
    )
    assert vm.message == "Otro usuario cambió este contacto."


def test_my_own_change_by_user_id_raises_no_message_and_reads_the_new_version():
    contact = make_contact(1)
    me = Me("ana", "Agent", user_id="0a0a0a0a-0000-4000-8000-00000000000a")
    api = FakeGateway([contact], me)
    vm = ContactPanelViewModel(
        api,
        InlineRunner(),
        Translator("es"),
        me=lambda: me,
        capabilities=lambda: capabilities_for("Agent"),
        clock=lambda: NOW,
    )
    vm.open(contact)
    api.contacts["c000001"] = replace(contact, note="x", version=5)
    vm.apply("contact_updated", {"id": "c000001", "fields": {"note": "x"}, "user": me.user_id})
    assert vm.message == ""
    assert vm.contact.version == 5


def test_lock_held_by_me_is_recognised_by_user_id():
    me = Me("ana", "Agent", user_id="0a0a0a0a-0000-4000-8000-00000000000a")
    contact = make_contact(
        1, locked_by=me.user_id, locked_by_name="Ana", locked_until=NOW + timedelta(minutes=4)
    )
    api = FakeGateway([contact], me)
    vm = ContactPanelViewModel(
        api,
        InlineRunner(),
        Translator("es"),
        me=lambda: me,
        capabilities=lambda: capabilities_for("Agent"),
        clock=lambda: NOW,
    )
    vm.open(contact)
    assert vm.lock_state() is LockState.MINE
    assert vm.lock_text() == "Bloqueado por usted — quedan 4:00"


def test_history_from_the_gateways_rows():
    from client.models import history_from_json

    rows = history_from_json(
        [
            {
                "position": 7,
                "version": 2,
                "event_type": "contacts.ContactUpdated",
                "field": "note",
                "old": "",
                "new": "volver",
                "user_id": "u-1",
                "role": "Agent",
                "at": "2026-03-02T14:00:00+00:00",
                "detail": {},
            },
            {
                "position": 8,
                "version": 3,
                "event_type": "contacts.ContactLocked",
                "field": "",
                "old": None,
                "new": None,
                "user_id": "u-1",
                "role": "Agent",
                "at": "2026-03-02T14:01:00+00:00",
                "detail": {"duration_minutes": "10"},
            },
        ]
    )
    assert [(r.what, r.new, r.who) for r in rows] == [
        ("note", "volver", "u-1"),
        ("ContactLocked", "duration_minutes=10", "u-1"),
    ]
    assert rows[0].when == NOW.replace(hour=14)


def test_history_names_me_and_shortens_other_users_ids():
    me = Me("ana", "Agent", user_id="0a0a0a0a-0000-4000-8000-00000000000a", display_name="Ana Mora")
    contact = make_contact(1)
    api = FakeGateway([contact], me)
    api.history_rows = [
        HistoryEntry(NOW, me.user_id, "note", "", "a"),
        HistoryEntry(
            NOW - timedelta(minutes=1), "6f1c0e7e-5d7a-4c1e-9a49-0f7d2a1b9c11", "status", "NC", "CUELGA"
        ),
    ]
    vm = ContactPanelViewModel(
        api,
        InlineRunner(),
        Translator("es"),
        me=lambda: me,
        capabilities=lambda: capabilities_for("Agent"),
        clock=lambda: NOW,
    )
    vm.open(contact)
    assert [h.who for h in vm.history] == ["Ana Mora", "Otro usuario (6f1c0e7e)"]


def test_history_rows_name_the_actor_and_the_lock_holder_instead_of_their_ids():
    from client.models import history_from_json

    ana = "22d32649-ab7d-4441-a2f3-b67bc37a1821"
    rows = history_from_json(
        [
            {
                "event_type": "contacts.ContactLocked",
                "field": "locked_by",
                "old": None,
                "new": ana,
                "user_id": ana,
                "username": "ana",
                "at": "2026-03-02T14:01:00+00:00",
                "detail": {"locked_until": "2026-03-02T14:11:00+00:00", "name": "ana"},
            },
            {
                "event_type": "contacts.LockReleased",
                "field": "locked_by",
                "old": ana,
                "new": None,
                "user_id": ana,
                "username": "ana",
                "at": "2026-03-02T14:05:00+00:00",
                "detail": {},
            },
        ]
    )
    assert [(r.who, r.what, r.old, r.new) for r in rows] == [
        ("ana", "locked_by", "", "ana"),
        ("ana", "locked_by", "ana", ""),
    ]


def test_a_lock_answer_carrying_the_contact_brings_its_new_version_so_the_next_save_matches():
    from client.api import LockInfo

    api, vm = build()
    locked = replace(api.contacts["c000001"], version=2)
    api.lock = lambda contact_id, minutes: LockInfo(
        "ana", (NOW + timedelta(minutes=10)).isoformat(), "", locked
    )
    rows = []
    vm.on_saved = rows.append
    vm.lock(10)
    assert vm.contact.version == 2
    assert rows[-1].locked_by == "ana"
    vm.set_field("note", "después del bloqueo")
    vm.save()
    _, (_, _, version) = next(c for c in api.calls if c[0] == "update_contact")
    assert version == 2


def test_a_lock_event_carrying_the_contact_brings_its_new_version():
    _, vm = build()
    contact = {"id": "c000001", "phone": "88000001", "name": vm.contact.name, "status": "NC", "version": 5}
    vm.apply(
        "contact_locked",
        {
            "id": "c000001",
            "locked_by": "u-beto",
            "locked_by_name": "beto",
            "locked_until": None,
            "contact": contact,
        },
    )
    assert vm.contact.version == 5
    assert vm.lock_state() is LockState.OTHER
    vm.apply(
        "contact_unlocked", {"id": "c000001", "unlocked_by": "u-beto", "contact": {**contact, "version": 6}}
    )
    assert vm.contact.version == 6
    assert vm.lock_state() is LockState.FREE


def test_lock_and_call_events_without_the_contact_read_its_new_version():
    """Each lock and each step of a call is an event of the contact's stream: the next save's If-Match must
    name the version after them, not the one read when the panel opened."""
    api, vm = build()
    steps = (("contact_locked", 2), ("call_requested", 3), ("call_started", 4), ("call_ended", 5))
    for name, version in steps:
        api.contacts["c000001"] = replace(api.contacts["c000001"], version=version)
        vm.apply(name, {"id": "c000001", "call_id": "call-1", "locked_by": "u-ana", "locked_until": None})
        assert vm.contact.version == version, name


def test_an_event_during_a_read_of_the_contact_reads_it_once_more():
    from client_doubles import QueuedRunner

    contact = make_contact(1)
    me = Me("ana", "Agent")
    api, runner = FakeGateway([contact], me), QueuedRunner()
    vm = ContactPanelViewModel(
        api, runner, Translator("es"), me=lambda: me, capabilities=lambda: capabilities_for("Agent")
    )
    vm.open(contact)
    runner.run_all()
    api.contacts["c000001"] = replace(contact, version=3)
    vm.apply("call_started", {"id": "c000001", "call_id": "call-1"})
    runner.run(next(i for i, job in enumerate(runner.queue) if "get_contact" in job[0].__code__.co_names))
    api.contacts["c000001"] = replace(contact, version=4)  # call_ended lands after that read was made
    vm.apply("call_ended", {"id": "c000001", "call_id": "call-1", "outcome": "busy"})
    runner.run_all()
    assert vm.contact.version == 4


def _json(contact):
    return {
        "id": contact.id,
        "phone": contact.phone,
        "name": contact.name,
        "status": contact.status,
        "note": contact.note,
        "version": contact.version,
    }
