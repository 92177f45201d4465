"""Where a page of the contact list is read: on the event loop when that is cheap, else in a worker thread.

A worker thread costs more than the read it carries when the read is a first page from the in-process
contacts service (embedded mode: an index range on SQLite, a few hundred microseconds): under load the
hand-off and the fight for the GIL doubled the CPU time of each request. Those reads run on the event
loop. Anything that may take long stays off it: text searches (they can scan the table), later pages
and big pages. Over HTTP (distributed mode) the page is awaited on the loop with aiohttp.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from contacts.client import ContactsClient, HttpContactsClient, LocalContactsClient
from contacts.commands import Caller
from contacts.views import ContactFilters

INLINE_LIMIT = 200
"""Largest first page read on the event loop."""


async def read_page(
    client: ContactsClient, caller: Caller, filters: ContactFilters, limit: int, cursor: str | None
) -> tuple[bytes, str | None]:
    """The page as a JSON array of contacts and the next cursor (``ContactsClient.list_contacts_json``)."""
    if isinstance(client, LocalContactsClient) and is_cheap(filters, limit, cursor):
        return client.list_contacts_json(caller, filters, limit, cursor)
    if isinstance(client, HttpContactsClient):
        return await client.list_contacts_json_async(caller, filters, limit, cursor)
    return await run_in_threadpool(client.list_contacts_json, caller, filters, limit, cursor)


def is_cheap(filters: ContactFilters, limit: int, cursor: str | None) -> bool:
    """Whether an in-process read of this page is short enough for the event loop."""
    return cursor is None and not filters.q and limit <= INLINE_LIMIT
