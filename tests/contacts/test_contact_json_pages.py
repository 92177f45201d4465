"""The pre-serialised list page the gateway sends is exactly the contacts page, field for field."""

from __future__ import annotations

import orjson
import pytest
from contacts_support import ANA, BETO, LAURA, FakeClock, create_contact, end_call, lock_contact, request_call

from contacts.commands import CallOutcome, ImportRow
from contacts.errors import InvalidInput
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.views import ContactFilters


def _rows(count: int, **fields: str) -> list[ImportRow]:
    return [ImportRow(row=n, e164=f"+50688{n:06d}", national=f"8800-{n:04d}", **fields) for n in range(count)]


def _same_pages(queries: ContactQueries, filters: ContactFilters, limit: int) -> int:
    """Walk every page both ways; assert body and cursor agree; return how many contacts were seen."""
    cursor: str | None = None
    seen = 0
    while True:
        page = queries.list_contacts(filters, limit, cursor)
        body, next_cursor = queries.list_contacts_json(filters, limit, cursor)
        assert orjson.loads(body) == [c.to_data() for c in page.items]
        assert next_cursor == page.next_cursor
        seen += len(page.items)
        if next_cursor is None:
            return seen
        cursor = next_cursor


@pytest.fixture
def varied(service: ContactsService, clock: FakeClock) -> None:
    """Contacts with every field set somewhere: statuses, extra fields, held and lapsed locks, calls."""
    service.create_or_merge(_rows(30, name="Fila", status="NC"), "norte", LAURA)
    clock.advance(seconds=1.25)
    rich = create_contact(service,
        ANA, "8712-3456", name="José Álvarez", note="llamar\n\"tarde\"", email="j@x.cr",
        extra={"cédula": "1-234-567", "empresa": "Café ☕"}, list_name="sur",
    )  # fmt: skip
    lapsed = create_contact(service, BETO, "6012-3456", status="INTERESADO")
    held = create_contact(service, BETO, "7012-3456")
    lock_contact(service, ANA, lapsed.id, 1)
    lock_contact(service, BETO, held.id, 30)
    lock_contact(service, ANA, rich.id, 30)
    request_call(service, ANA, rich.id, "c1")
    end_call(service, ANA, rich.id, "c1", CallOutcome.ANSWERED, 42)
    clock.advance(minutes=2)


@pytest.mark.parametrize(
    "filters",
    [
        ContactFilters(),
        ContactFilters(statuses=("NC",)),
        ContactFilters(statuses=("NC", "INTERESADO", "SIN_GESTIONAR")),
        ContactFilters(list_name="sur"),
        ContactFilters(locked=True),
        ContactFilters(locked=False),
        ContactFilters(q="jose"),
    ],
)
@pytest.mark.parametrize("limit", [1, 7, 100])
def test_json_page_is_the_contacts_page(
    varied: None, queries: ContactQueries, filters: ContactFilters, limit: int
) -> None:
    assert _same_pages(queries, filters, limit) > 0


def test_json_page_refuses_what_the_page_refuses(queries: ContactQueries) -> None:
    with pytest.raises(InvalidInput):
        queries.list_contacts_json(ContactFilters(), 0)
    with pytest.raises(InvalidInput):
        queries.list_contacts_json(ContactFilters(), 10, "not-a-cursor")
