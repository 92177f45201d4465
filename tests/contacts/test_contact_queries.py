"""The read model as users query it: filters, default order, cursor pages, lookups, history, counts."""

from __future__ import annotations

import pytest
from contacts_support import (
    ANA,
    BETO,
    LAURA,
    PABLO,
    FakeClock,
    create_contact,
    delete_contact,
    lock_contact,
    release_lock,
    update_contact,
)
from sqlalchemy.engine import Engine

from contacts.commands import ImportRow
from contacts.errors import InvalidInput, InvalidStatus, NotFound
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.views import ContactFilters


def _rows(first: int, count: int, **fields: str) -> list[ImportRow]:
    rows = []
    for number in range(first, first + count):
        national = f"88{number:06d}"
        rows.append(
            ImportRow(row=number, e164=f"+506{national}", national=f"{national[:4]}-{national[4:]}", **fields)
        )
    return rows


def _all_ids(queries: ContactQueries, filters: ContactFilters, limit: int) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = queries.list_contacts(filters, limit, cursor)
        ids.extend(c.id for c in page.items)
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


@pytest.fixture
def crowd(service: ContactsService, clock: FakeClock) -> dict[str, list[str]]:
    """Contacts created at different times, in three lists and several statuses."""
    made: dict[str, list[str]] = {}
    for index, (list_name, status) in enumerate(
        [("norte", ""), ("norte", "NC"), ("sur", "CUELGA"), ("sur", "INTERESADO"), ("este", "COMPLETADA")]
    ):
        result = service.create_or_merge(_rows(index * 20, 20, status=status), list_name, LAURA)
        made[f"{list_name}-{status}"] = [o.contact_id for o in result.outcomes]
        clock.advance(hours=1)
    return made


def test_default_order_is_status_priority_then_longest_untouched(
    service: ContactsService, queries: ContactQueries, clock: FakeClock
) -> None:
    old_pending = create_contact(service, ANA, "8800-0001")
    clock.advance(days=1)
    new_pending = create_contact(service, ANA, "8800-0002")
    interested = create_contact(service, ANA, "8800-0003", status="INTERESADO")
    no_answer = create_contact(service, ANA, "8800-0004", status="NC")
    hung_up = create_contact(service, ANA, "8800-0005", status="CUELGA")

    page = queries.list_contacts()

    assert [c.id for c in page.items] == [
        no_answer.id,
        hung_up.id,
        old_pending.id,
        new_pending.id,
        interested.id,
    ]


@pytest.mark.parametrize("limit", [1, 7, 20, 100])
def test_cursor_pages_cover_every_contact_exactly_once(
    crowd: dict[str, list[str]], queries: ContactQueries, limit: int
) -> None:
    everyone = _all_ids(queries, ContactFilters(), limit)

    assert len(everyone) == len(set(everyone)) == 100
    assert everyone == [c.id for c in queries.list_contacts(limit=100).items]


def test_filters_by_status_list_and_operator(crowd: dict[str, list[str]], queries: ContactQueries) -> None:
    sur = queries.list_contacts(ContactFilters(list_name="sur"), limit=100).items
    no_answer = queries.list_contacts(ContactFilters(statuses=("no contesta",)), limit=100).items
    both = _all_ids(queries, ContactFilters(statuses=("INTERESADO", "NC")), 3)
    kolbi = queries.list_contacts(ContactFilters(operator="kolbi"), limit=100).items

    assert {c.id for c in sur} == set(crowd["sur-CUELGA"] + crowd["sur-INTERESADO"])
    assert [c.status for c in sur] == ["CUELGA"] * 20 + ["INTERESADO"] * 20
    assert {c.id for c in no_answer} == set(crowd["norte-NC"])
    assert both == sorted(crowd["norte-NC"]) + sorted(crowd["sur-INTERESADO"])
    assert kolbi == ()


def test_an_unknown_status_filter_is_refused(queries: ContactQueries) -> None:
    with pytest.raises(InvalidStatus):
        queries.list_contacts(ContactFilters(statuses=("PERDIDO",)))


def test_locked_filter_follows_the_clock(
    service: ContactsService, queries: ContactQueries, clock: FakeClock
) -> None:
    held = create_contact(service, ANA, "8800-0001")
    free = create_contact(service, ANA, "8800-0002")
    lock_contact(service, ANA, held.id, 5)

    locked_now = queries.list_contacts(ContactFilters(locked=True)).items
    unlocked_now = queries.list_contacts(ContactFilters(locked=False)).items
    clock.advance(minutes=6)
    locked_later = queries.list_contacts(ContactFilters(locked=True)).items

    assert [c.id for c in locked_now] == [held.id]
    assert [c.id for c in unlocked_now] == [free.id]
    assert locked_later == ()


def test_a_lapsed_lock_is_shown_free_without_writing(
    service: ContactsService, queries: ContactQueries, clock: FakeClock, engine: Engine
) -> None:
    contact = create_contact(service, ANA, "8800-0001")
    lock_contact(service, ANA, contact.id, 5)
    assert queries.get(contact.id).locked_by == ANA.user_id
    assert [c.id for c in queries.locked_contacts()] == [contact.id]

    clock.advance(minutes=5)
    shown = queries.get(contact.id)

    assert (shown.locked_by, shown.locked_until) == (None, None)
    assert queries.locked_contacts() == []
    assert shown.version == 2


def test_text_search_finds_names_without_accents_and_phones_in_any_form(
    service: ContactsService, queries: ContactQueries
) -> None:
    jose = create_contact(service, ANA, "8812-3456", name="José Álvarez")
    create_contact(service, ANA, "6012-9999", name="María Jiménez")

    def found(q: str) -> list[str]:
        return [c.id for c in queries.list_contacts(ContactFilters(q=q)).items]

    assert found("jose") == [jose.id]
    assert found("ÁLVAREZ josé") == [jose.id]
    assert found("8812") == [jose.id]
    assert found("8812-3456") == [jose.id]
    assert found("+506 8812 3456") == [jose.id]
    assert found("100%") == []
    assert len(found("")) == 2


def test_lookup_by_phone_accepts_every_form(service: ContactsService, queries: ContactQueries) -> None:
    contact = create_contact(service, ANA, "8812-3456")

    for typed in ("8812-3456", "88123456", "+506 8812 3456", "506-8812-3456"):
        assert queries.get_by_phone(typed).id == contact.id
    with pytest.raises(NotFound):
        queries.get_by_phone("+1 650 253 0000")
    with pytest.raises(InvalidInput):
        queries.get_by_phone("hola")


def test_unknown_ids_are_not_found(queries: ContactQueries) -> None:
    with pytest.raises(NotFound):
        queries.get("no-es-un-uuid")
    with pytest.raises(NotFound):
        queries.get("6f1d8f3a-2c4b-5e7a-9b0c-1d2e3f4a5b6c")
    with pytest.raises(NotFound):
        queries.history("6f1d8f3a-2c4b-5e7a-9b0c-1d2e3f4a5b6c")


def test_bad_cursor_or_limit_is_refused(queries: ContactQueries) -> None:
    with pytest.raises(InvalidInput):
        queries.list_contacts(cursor="no-es-un-cursor")
    with pytest.raises(InvalidInput):
        queries.list_contacts(limit=0)
    with pytest.raises(InvalidInput):
        queries.list_contacts(limit=1001)


def test_history_lists_every_change_with_who_and_when(
    service: ContactsService, queries: ContactQueries, clock: FakeClock
) -> None:
    contact = create_contact(service, ANA, "8812-3456", name="Ana")
    clock.advance(minutes=1)
    lock_contact(service, BETO, contact.id)
    update_contact(service, BETO, contact.id, name="Ana María", note="volver a llamar", status="NC")
    release_lock(service, BETO, contact.id)
    delete_contact(service, PABLO, contact.id, "duplicado")

    rows = [(h.event_type, h.field, h.old, h.new, h.user_id) for h in queries.history(contact.id)]

    assert rows == [
        ("contacts.ContactCreated", "phone", None, "+50688123456", "u-ana"),
        ("contacts.ContactCreated", "name", None, "Ana", "u-ana"),
        ("contacts.ContactCreated", "status", None, "SIN_GESTIONAR", "u-ana"),
        ("contacts.ContactCreated", "operator", None, "kolbi", "u-ana"),
        ("contacts.ContactLocked", "locked_by", None, "u-beto", "u-beto"),
        ("contacts.ContactUpdated", "name", "Ana", "Ana María", "u-beto"),
        ("contacts.StatusChanged", "status", "SIN_GESTIONAR", "NC", "u-beto"),
        ("contacts.NoteEdited", "note", "", "volver a llamar", "u-beto"),
        ("contacts.LockReleased", "locked_by", "u-beto", None, "u-beto"),
        ("contacts.ContactDeleted", "deleted", None, "true", "u-pablo"),
    ]
    assert queries.history(contact.id)[4].at == clock.now


def test_counts_by_status_include_every_status(crowd: dict[str, list[str]], queries: ContactQueries) -> None:
    counts = queries.counts_by_status()

    assert counts["SIN_GESTIONAR"] == counts["NC"] == counts["CUELGA"] == 20
    assert counts["INTERESADO"] == counts["COMPLETADA"] == 20
    assert counts["NO_CONTACTO"] == 0
    assert queries.stats()["total"] == 100


def test_existing_phones_are_found_in_bulk(crowd: dict[str, list[str]], queries: ContactQueries) -> None:
    asked = ["+50688000003", "+50688000099", "+50688000100", "+50660000000"]

    assert queries.existing_phones(asked) == {"+50688000003", "+50688000099"}


def test_iterating_returns_everything_in_order(crowd: dict[str, list[str]], queries: ContactQueries) -> None:
    streamed = [c.id for c in queries.iter_contacts(page_size=9)]

    assert streamed == [c.id for c in queries.list_contacts(limit=100).items]


def test_text_search_follows_renames_and_deletions(service: ContactsService, queries: ContactQueries) -> None:
    renamed = create_contact(service, ANA, "8812-3456", name="Rodolfo Matarrita")
    gone = create_contact(service, ANA, "8812-3457", name="Rodolfo Ovares")
    update_contact(service, ANA, renamed.id, name="Rodolfo Saborío")
    delete_contact(service, PABLO, gone.id)

    def found(q: str) -> list[str]:
        return [c.id for c in queries.list_contacts(ContactFilters(q=q)).items]

    assert found("saborio") == [renamed.id]
    assert found("matarrita") == []
    assert found("ovares") == []
    assert found("rodolfo") == [renamed.id]


@pytest.mark.parametrize("few", [0, 1, 2000])
def test_common_and_rare_terms_give_the_same_pages(
    crowd: dict[str, list[str]], queries: ContactQueries, monkeypatch: pytest.MonkeyPatch, few: int
) -> None:
    monkeypatch.setattr("contacts.queries.SEARCH_FEW", few)

    for q in ("8800001", "88000", "0 8", "+506 88"):
        expected = [c.id for c in queries.iter_contacts(page_size=100) if _digits_in(q, c.phone_e164)]
        assert _all_ids(queries, ContactFilters(q=q), 7) == expected


def _digits_in(q: str, e164: str) -> bool:
    """What a phone-looking ``q`` matches: its digits anywhere in the E.164 digits."""
    return "".join(ch for ch in q if ch.isdigit()) in e164.lstrip("+")


def test_a_contact_holding_every_trigram_tile_but_not_the_term_is_not_found(
    service: ContactsService, queries: ContactQueries
) -> None:
    # "rodriguez" is probed by its tiles rod, rig, uez: this name holds all three, never the word.
    decoy = create_contact(service, ANA, "8812-3456", name="Rodolfo Riggs Vázquez")
    rodriguez = create_contact(service, ANA, "8812-3457", name="Ana Rodríguez")
    matches = create_contact(service, ANA, "8812-3458", name="María Rodríguez Matarrita")

    def found(q: str) -> set[str]:
        return {c.id for c in queries.list_contacts(ContactFilters(q=q)).items}

    assert found("rodriguez") == {rodriguez.id, matches.id}
    assert found("maria rodriguez") == {matches.id}
    assert found("rod rig uez") == {decoy.id, rodriguez.id, matches.id}  # each a substring of all three
    assert found("matarrita rodriguez maria") == {matches.id}
