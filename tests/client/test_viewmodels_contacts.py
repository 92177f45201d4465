"""The contact list view model: debounced search, paging, filters and live patches of single rows."""

from __future__ import annotations

from dataclasses import replace

from client_doubles import NOW, FakeGateway, ManualScheduler, QueuedRunner, RecordingSink, make_contact

from client.api import ContactQuery, ServerError
from client.dispatch import InlineRunner
from client.i18n import Translator
from client.viewmodels.contacts import ContactListViewModel


def build(contacts, runner=None):
    api = FakeGateway(contacts)
    scheduler = ManualScheduler()
    vm = ContactListViewModel(api, runner or InlineRunner(), scheduler, Translator("es"), clock=lambda: NOW)
    sink = RecordingSink()
    vm.sink = sink
    return api, scheduler, vm, sink


def list_calls(api):
    return [arg for name, arg in api.calls if name == "list_contacts"]


def test_default_order_puts_no_answer_and_hang_ups_first():
    contacts = [
        make_contact(1, "INTERESADO"),
        make_contact(2, "NC"),
        make_contact(3, "SIN_GESTIONAR"),
        make_contact(4, "CUELGA"),
    ]
    _, _, vm, sink = build(contacts)
    vm.reload()
    assert [r.status for r in sink.rows] == ["NC", "CUELGA", "SIN_GESTIONAR", "INTERESADO"]
    assert sink.rows[0].status_label == "No contesta"
    assert sink.rows[0].phone == "8800-0002"


def test_search_waits_for_typing_to_pause_then_asks_the_server_once():
    contacts = [make_contact(i) for i in range(50)]
    api, scheduler, vm, sink = build(contacts)
    vm.reload()
    before = len(list_calls(api))
    for text in ("C", "Cl", "Cliente 4", "Cliente 42"):
        vm.set_search(text)
        scheduler.advance(50)
    assert len(list_calls(api)) == before
    scheduler.advance(vm.debounce_ms)
    searches = list_calls(api)[before:]
    assert [q.q for q, _, _ in searches] == ["Cliente 42"]
    assert sink.iids() == ["c000042"]


def test_typing_the_same_search_again_sends_nothing():
    api, scheduler, vm, _ = build([make_contact(1)])
    vm.set_search("Cliente")
    scheduler.advance(500)
    count = len(list_calls(api))
    vm.set_search("Cliente ")
    scheduler.advance(500)
    assert len(list_calls(api)) == count


def test_pages_load_as_the_user_scrolls_near_the_end():
    contacts = [make_contact(i) for i in range(450)]
    api, _, vm, sink = build(contacts)
    vm.reload()
    assert len(sink.rows) == 200
    assert vm.summary == "200 cargados, hay más"
    vm.visible(50)
    assert len(sink.rows) == 200, "no request while far from the end"
    vm.visible(150)
    assert len(sink.rows) == 400
    vm.visible(399)
    assert len(sink.rows) == 450
    assert vm.summary == "450 contactos"
    calls = len(list_calls(api))
    vm.visible(449)
    assert len(list_calls(api)) == calls, "no request after the last page"
    assert [op for op, _ in sink.ops] == ["reset", "append", "append"]


def test_only_one_page_request_in_flight_at_a_time():
    runner = QueuedRunner()
    _, _, vm, _ = build([make_contact(i) for i in range(450)], runner)
    vm.reload()
    runner.run_all()
    assert vm.load_more() is True
    assert vm.load_more() is False
    assert len(runner.queue) == 1


def test_an_older_search_answer_arriving_late_is_ignored():
    runner = QueuedRunner()
    contacts = [make_contact(1, name="Ana"), make_contact(2, name="Beto")]
    _, scheduler, vm, sink = build(contacts, runner)
    vm.set_search("Ana")
    scheduler.advance(200)
    vm.set_search("Beto")
    scheduler.advance(200)
    runner.run(1)  # the newer answer first
    runner.run(0)  # then the stale one
    assert sink.iids() == ["c000002"]


def test_status_filter_is_sent_to_the_server():
    contacts = [make_contact(1, "NC"), make_contact(2, "INTERESADO")]
    api, _, vm, sink = build(contacts)
    vm.set_filters(status="INTERESADO", operator="kolbi")
    query, _, _ = list_calls(api)[-1]
    assert query == ContactQuery(status="INTERESADO", operator="kolbi")
    assert sink.iids() == ["c000002"]


def test_live_update_patches_only_that_row():
    contacts = [make_contact(i) for i in range(300)]
    _, _, vm, sink = build(contacts)
    vm.reload()
    sink.ops.clear()
    payload = {
        "id": "c000007",
        "fields": {"note": "volver a llamar"},
        "user": "beto",
        "position": 10,
        "contact": {**_json(make_contact(7)), "note": "volver a llamar"},
    }
    vm.apply("contact_updated", payload)
    assert sink.ops == [("update", "c000007")]
    assert sink.rows[7].note == "volver a llamar"


def test_live_update_with_fields_only_merges_them():
    _, _, vm, sink = build([make_contact(1)])
    vm.reload()
    vm.apply("contact_updated", {"id": "c000001", "fields": {"name": "Nuevo"}, "user": "beto", "position": 3})
    assert sink.rows[0].name == "Nuevo"
    assert sink.rows[0].note == "nota 1"


def test_update_that_leaves_the_status_filter_removes_just_that_row():
    contacts = [make_contact(1, "NC"), make_contact(2, "NC")]
    _, _, vm, sink = build(contacts)
    vm.set_filters(status="NC")
    sink.ops.clear()
    vm.apply("contact_updated", {"id": "c000001", "fields": {"status": "INTERESADO"}, "position": 4})
    assert sink.ops == [("remove", "c000001")]


def test_lock_events_show_and_clear_the_owner():
    _, _, vm, sink = build([make_contact(1)])
    vm.reload()
    vm.apply(
        "contact_locked",
        {
            "id": "c000001",
            "locked_by": "beto",
            "locked_until": "2026-03-02T15:10:00Z",
            "duration_minutes": 10,
            "position": 5,
        },
    )
    assert sink.rows[0].lock_owner == "beto"
    vm.apply("contact_unlocked", {"id": "c000001", "unlocked_by": "beto", "position": 6})
    assert sink.rows[0].lock_owner == ""


def test_an_expired_lock_is_not_shown():
    _, _, vm, sink = build([make_contact(1, locked_by="beto", locked_until=NOW.replace(hour=14))])
    vm.reload()
    assert sink.rows[0].lock_owner == ""


def test_created_contact_is_inserted_among_its_status_priority():
    contacts = [make_contact(1, "NC"), make_contact(2, "SIN_GESTIONAR")]
    _, _, vm, sink = build(contacts)
    vm.reload()
    vm.apply("contact_created", {"id": "c000009", "contact": _json(make_contact(9, "CUELGA")), "position": 7})
    assert sink.iids() == ["c000001", "c000009", "c000002"]
    assert vm.summary == "3 contactos"


def test_created_contact_outside_the_search_is_not_shown():
    _, scheduler, vm, sink = build([make_contact(1, name="Ana")])
    vm.set_search("Ana")
    scheduler.advance(200)
    vm.apply(
        "contact_created", {"id": "c000009", "contact": _json(make_contact(9, name="Zoe")), "position": 7}
    )
    assert sink.iids() == ["c000001"]


def test_deleted_contact_disappears():
    _, _, vm, sink = build([make_contact(1), make_contact(2)])
    vm.reload()
    vm.apply("contact_deleted", {"id": "c000001", "position": 8})
    assert sink.iids() == ["c000002"]
    assert vm.summary == "1 contacto"


def test_resync_reloads_from_the_server():
    api, _, vm, sink = build([make_contact(1)])
    vm.reload()
    api.contacts["c000002"] = make_contact(2)
    vm.apply("resync", {"position": 99})
    assert sink.iids() == ["c000001", "c000002"]
    assert sink.ops[-1] == ("reset", 2)


def test_bulk_update_reloads_once_after_a_pause():
    api, scheduler, vm, _ = build([make_contact(1)])
    vm.reload()
    before = len(list_calls(api))
    for position in range(5):
        vm.apply("bulk_update", {"count": 100, "position": position})
    scheduler.advance(2000)
    assert len(list_calls(api)) == before + 1


def test_a_failed_load_shows_the_server_message_and_keeps_old_rows():
    api, _, vm, sink = build([make_contact(1)])
    errors = []
    vm.on_error = errors.append
    vm.reload()
    api.fail["list_contacts"] = ServerError("Base de datos no disponible")
    vm.reload()
    assert errors == ["Base de datos no disponible"]
    assert sink.iids() == ["c000001"]


def test_next_contact_walks_the_list_and_loads_more_near_the_end():
    contacts = [make_contact(i) for i in range(250)]
    _, _, vm, _ = build(contacts)
    vm.reload()
    assert vm.next_id(None) == "c000000"
    assert vm.next_id("c000000") == "c000001"
    assert vm.next_id("c000199") == "c000200"


def test_without_filters_the_count_comes_from_stats():
    api, _, vm, _ = build([make_contact(i) for i in range(450)])
    api.stats_value = {"total": 450, "locked": 0, "by_status": {"SIN_GESTIONAR": 450}}
    vm.reload()
    assert vm.summary == "450 contactos"
    vm.set_filters(status="NC")
    assert vm.summary == "0 contactos"
    assert [n for n in api.names() if n == "stats"] == ["stats"], "no totals asked for a filtered list"


def test_lock_event_shows_the_holders_name_not_their_id():
    _, _, vm, sink = build([make_contact(1)])
    vm.reload()
    vm.apply(
        "contact_locked",
        {
            "id": "c000001",
            "locked_by": "6f1c0e7e-5d7a-4c1e-9a49-0f7d2a1b9c11",
            "locked_by_name": "Beto Mora",
            "locked_until": "2026-03-02T15:10:00Z",
            "position": 5,
        },
    )
    assert sink.rows[0].lock_owner == "Beto Mora"


def _json(contact):
    return {
        "id": contact.id,
        "phone": contact.phone,
        "phone_e164": contact.phone_e164,
        "phone_national": contact.phone_national,
        "name": contact.name,
        "status": contact.status,
        "note": contact.note,
        "list": contact.list,
        "operator": contact.operator,
        "version": contact.version,
    }


def test_a_save_answer_without_the_holders_name_keeps_the_name_shown():
    _, _, vm, sink = build([make_contact(1)])
    vm.reload()
    holder = "6f1c0e7e-5d7a-4c1e-9a49-0f7d2a1b9c11"
    vm.apply(
        "contact_locked",
        {
            "id": "c000001",
            "locked_by": holder,
            "locked_by_name": "Pedro Solís",
            "locked_until": "2026-03-02T15:10:00Z",
            "position": 5,
        },
    )
    saved = replace(vm.contacts["c000001"], locked_by_name="", note="nueva")
    vm.patch(saved)
    assert sink.rows[0].lock_owner == "Pedro Solís"
    assert sink.rows[0].note == "nueva"


def test_a_change_arriving_while_the_list_reloads_is_not_lost_when_the_older_page_lands():
    api = FakeGateway([make_contact(n) for n in range(1, 6)])
    runner = QueuedRunner()
    vm = ContactListViewModel(api, runner, ManualScheduler(), Translator("es"))
    vm.reload()
    runner.run_all()
    vm.reload()  # e.g. the live feed connected afresh
    call, on_done, _ = runner.queue.pop(0)
    page = call()  # the server reads the page before beto's lock ...
    vm.apply(
        "contact_locked",
        {"id": "c000002", "locked_by": "u-beto", "locked_by_name": "beto", "locked_until": None},
    )
    on_done(page)  # ... and the answer lands after the lock event
    runner.run_all()
    assert vm.contacts["c000002"].locked_by_name == "beto"
    assert vm.row(vm.contacts["c000002"]).lock_owner == "beto"
