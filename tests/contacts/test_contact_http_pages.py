"""The gateway's event-loop read of a list page over the real internal API: the same page, the same errors."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
import uvicorn
from contacts_support import ANA, LAURA

from contacts.api import create_app
from contacts.client import HttpContactsClient
from contacts.commands import ImportRow
from contacts.errors import InvalidInput
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.views import ContactFilters


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url"))


@pytest.fixture
def contacts_url(service: ContactsService, queries: ContactQueries) -> Iterator[str]:
    """The internal contacts app served by uvicorn on a free port, in a thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    app = create_app(service, queries, internal_token="t" * 64)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_the_async_page_is_the_page_the_service_answers(
    contacts_url: str, service: ContactsService, queries: ContactQueries
) -> None:
    rows = [ImportRow(row=n, e164=f"+50688{n:06d}", national=f"8800-{n:04d}") for n in range(30)]
    service.create_or_merge(rows, "feria", LAURA)
    client = HttpContactsClient(contacts_url, internal_token="t" * 64)

    async def pages() -> list[tuple[bytes, str | None]]:
        try:
            first = await client.list_contacts_json_async(ANA, ContactFilters(list_name="feria"), 20)
            second = await client.list_contacts_json_async(
                ANA, ContactFilters(list_name="feria"), 20, first[1]
            )
            return [first, second]
        finally:
            await client.aclose()

    (first, cursor), (second, last) = asyncio.run(pages())

    expected, expected_cursor = queries.list_contacts_json(ContactFilters(list_name="feria"), 20)
    assert orjson.loads(first) == orjson.loads(expected)
    assert cursor == expected_cursor
    assert len(orjson.loads(second)) == 10
    assert last is None


def test_a_refused_page_raises_the_typed_error(contacts_url: str) -> None:
    client = HttpContactsClient(contacts_url, internal_token="t" * 64)

    async def bad_cursor() -> None:
        try:
            await client.list_contacts_json_async(ANA, ContactFilters(), 10, "not-a-cursor")
        finally:
            await client.aclose()

    with pytest.raises(InvalidInput):
        asyncio.run(bad_cursor())
