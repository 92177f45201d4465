"""The gateway's view of the contacts service: one protocol, a direct and an HTTP implementation.

:class:`LocalContactsClient` calls the service in-process (embedded mode: no socket, no JSON);
:class:`HttpContactsClient` calls the internal API (distributed mode) and raises the same typed
domain errors. No SQLAlchemy here: the gateway imports this module.
"""

from __future__ import annotations

import json as json_module
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import httpx
import orjson

from contacts.commands import BatchResult, Caller, ContactCommand, ImportRow, MergeMode, Source
from contacts.errors import ContactError
from contacts.message import encode_dataclass
from contacts.views import (
    AgentCalls,
    Contact,
    ContactFilters,
    ContactRow,
    HistoryEntry,
    Page,
    caller_to_data,
    error_from_data,
)

if TYPE_CHECKING:
    import aiohttp

    from contacts.handlers import ContactsService
    from contacts.queries import ContactQueries

CALLER_HEADER = "X-Caller"
POOL_SIZE = 64
"""Connections to the contacts service kept open: more than the gateway's worker threads (40)."""
_UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 (a header name, not a secret)


class ContactsUnavailable(RuntimeError):
    """The contacts service did not answer (down, restarting, unreachable): worth trying again shortly."""


class ContactsClient(Protocol):
    """The contacts service as the other services call it: one door for a contact's commands
    (:meth:`execute`), the batch commands of import and generation, and the queries."""

    def execute(self, command: ContactCommand, expected_version: int | None = None) -> Contact | None:
        """Run one contact command (stamped with the service's clock); the contact after it, None when gone.

        The one door for every single-contact command (``CreateContact`` with its phone as typed, updates,
        locks, deletes, calls): a new command is its class, its branch of ``decide`` and, if public, its
        gateway route. ``expected_version`` (HTTP ``If-Match``) must be the contact's version, else
        VersionMismatch.
        """
        ...

    def create_or_merge(
        self,
        rows: Sequence[ImportRow],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
        merge: MergeMode = MergeMode.FILL,
        dry_run: bool = False,
    ) -> BatchResult:
        """Create or merge rows (import, generator); one outcome per row, existing contacts by ``merge``.

        ``dry_run``: the same code, its transactions rolled back: what the real run would answer.
        """
        ...

    def create_or_merge_stream(
        self,
        batches: Iterable[Sequence[ImportRow]],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
        merge: MergeMode = MergeMode.FILL,
        dry_run: bool = False,
    ) -> Generator[BatchResult]:
        """:meth:`create_or_merge` of each of ``batches``, one result per batch in order, the next batch
        taken from ``batches`` while the one before is written (an import reads on meanwhile)."""
        ...

    def list_contacts(
        self,
        caller: Caller,
        filters: ContactFilters = ContactFilters(),
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """One page of the filtered, ordered list."""
        ...

    def list_contacts_json(
        self,
        caller: Caller,
        filters: ContactFilters = ContactFilters(),
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[bytes, str | None]:
        """The same page as the JSON array of its contacts' ``to_data()``, and the next cursor."""
        ...

    def export_contacts(
        self, caller: Caller, filters: ContactFilters = ContactFilters(), batch_size: int = 5000
    ) -> Iterator[ContactRow]:
        """Every contact matching ``filters`` as an export row, in list order, streamed (importexport)."""
        ...

    def get(self, caller: Caller, contact_id: str) -> Contact:
        """One contact; NotFound when missing."""
        ...

    def get_by_phone(self, caller: Caller, phone: str) -> Contact:
        """The contact with this phone typed any way; NotFound when none."""
        ...

    def history(self, caller: Caller, contact_id: str) -> list[HistoryEntry]:
        """The contact's changes from its events, oldest first."""
        ...

    def locked_contacts(self, caller: Caller) -> list[Contact]:
        """Contacts whose lock is held now."""
        ...

    def existing_phones(self, caller: Caller, phones_e164: Iterable[str]) -> set[str]:
        """Those E.164 numbers that already belong to a contact."""
        ...

    def dnc_listed(self, caller: Caller, phones_e164: Iterable[str]) -> set[str]:
        """Those E.164 numbers that are on the do-not-call list (one lookup)."""
        ...

    def stats(self, caller: Caller) -> dict[str, Any]:
        """Totals: contacts, held locks, counts by status."""
        ...

    def call_figures(
        self,
        caller: Caller,
        since: datetime | None = None,
        until: datetime | None = None,
        user_ids: Sequence[str] | None = None,
    ) -> list[AgentCalls]:
        """Per-agent call figures for calls placed in ``[since, until)``; ``user_ids`` None means everyone."""
        ...


class LocalContactsClient:
    """Direct calls into the service and its queries (embedded mode)."""

    def __init__(self, service: ContactsService, queries: ContactQueries) -> None:
        self._service = service
        self._queries = queries

    def execute(self, command: ContactCommand, expected_version: int | None = None) -> Contact | None:
        """Run the command in process."""
        return self._service.handle(command, expected_version)

    def create_or_merge(
        self,
        rows: Sequence[ImportRow],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
        merge: MergeMode = MergeMode.FILL,
        dry_run: bool = False,
    ) -> BatchResult:
        """Create or merge rows."""
        return self._service.create_or_merge(
            rows, list_name, caller, source=source, job_id=job_id, merge=merge, dry_run=dry_run
        )

    def create_or_merge_stream(
        self,
        batches: Iterable[Sequence[ImportRow]],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
        merge: MergeMode = MergeMode.FILL,
        dry_run: bool = False,
    ) -> Generator[BatchResult]:
        """One pipeline of the service's chunks through every batch."""
        return self._service.create_or_merge_stream(
            batches, list_name, caller, source=source, job_id=job_id, merge=merge, dry_run=dry_run
        )

    def list_contacts(
        self,
        caller: Caller,
        filters: ContactFilters = ContactFilters(),
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """One page of contacts."""
        return self._queries.list_contacts(filters, limit, cursor)

    def list_contacts_json(
        self,
        caller: Caller,
        filters: ContactFilters = ContactFilters(),
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[bytes, str | None]:
        """One page of contacts, serialised once by the queries."""
        return self._queries.list_contacts_json(filters, limit, cursor)

    def export_contacts(
        self, caller: Caller, filters: ContactFilters = ContactFilters(), batch_size: int = 5000
    ) -> Iterator[ContactRow]:
        """Export rows from one streamed query."""
        return self._queries.iter_export(filters, batch_size)

    def get(self, caller: Caller, contact_id: str) -> Contact:
        """One contact."""
        return self._queries.get(contact_id)

    def get_by_phone(self, caller: Caller, phone: str) -> Contact:
        """The contact with this phone."""
        return self._queries.get_by_phone(phone)

    def history(self, caller: Caller, contact_id: str) -> list[HistoryEntry]:
        """The contact's history."""
        return self._queries.history(contact_id)

    def locked_contacts(self, caller: Caller) -> list[Contact]:
        """Contacts locked now."""
        return self._queries.locked_contacts()

    def existing_phones(self, caller: Caller, phones_e164: Iterable[str]) -> set[str]:
        """Existing phones among those given."""
        return self._queries.existing_phones(phones_e164)

    def dnc_listed(self, caller: Caller, phones_e164: Iterable[str]) -> set[str]:
        """Listed phones among those given."""
        return self._queries.dnc_listed(phones_e164)

    def stats(self, caller: Caller) -> dict[str, Any]:
        """Totals."""
        return self._queries.stats()

    def call_figures(
        self,
        caller: Caller,
        since: datetime | None = None,
        until: datetime | None = None,
        user_ids: Sequence[str] | None = None,
    ) -> list[AgentCalls]:
        """Per-agent call figures."""
        return self._queries.call_figures(since, until, user_ids)


class HttpContactsClient:
    """Calls the internal contacts API over a pooled ``httpx.Client`` and re-raises its typed errors."""

    def __init__(
        self,
        base_url: str = "",
        *,
        client: httpx.Client | None = None,
        timeout: float = 30.0,
        internal_token: str | None = None,
    ) -> None:
        headers = {INTERNAL_TOKEN_HEADER: internal_token} if internal_token else {}
        self._base_url = base_url
        self._headers = headers
        self._timeout = timeout
        self._async_session: aiohttp.ClientSession | None = None
        # Every worker thread of the gateway may hold a connection: keep them all alive (httpx keeps 20
        # by default and closes the rest after each use, so a busy gateway reconnected constantly).
        limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
        self._client = client or httpx.Client(
            base_url=base_url, timeout=timeout, headers=headers, limits=limits
        )
        self._owned = client is None

    def close(self) -> None:
        """Close the connection pool (when this client created it)."""
        if self._owned:
            self._client.close()

    async def aclose(self) -> None:
        """Close the event loop's connection pool (:meth:`list_contacts_json_async`), if one was opened."""
        if self._async_session is not None:
            await self._async_session.close()
            self._async_session = None

    async def list_contacts_json_async(
        self,
        caller: Caller,
        filters: ContactFilters = ContactFilters(),
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[bytes, str | None]:
        """:meth:`list_contacts_json` from the event loop, over aiohttp: no worker thread, no httpx.

        The list is the gateway's hottest read; a thread hand-off plus httpx cost it about 1 ms of CPU
        per request; ``python -m bench httpclients`` measures aiohttp at 0.11 ms of client CPU per 100-contact
        page against 2.4 ms for ``httpx.AsyncClient`` (docs/PERFORMANCE.md).
        """
        import aiohttp  # the gateway's dependency: only the gateway's event loop calls this

        if self._async_session is None:
            self._async_session = aiohttp.ClientSession(
                base_url=self._base_url or None,
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=POOL_SIZE),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        params = [*filters.to_params(), ("limit", str(limit))]
        if cursor:
            params.append(("cursor", cursor))
        caller_header = json_module.dumps(caller_to_data(caller), ensure_ascii=True)
        try:
            async with self._async_session.get(
                "/contacts", params=params, headers={CALLER_HEADER: caller_header}
            ) as response:
                status, content = response.status, await response.read()
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise ContactsUnavailable(f"GET /contacts: {type(exc).__name__}") from exc
        if status in _UNAVAILABLE_STATUSES:
            raise ContactsUnavailable(f"GET /contacts: {status}")
        body: Any = orjson.loads(content) if content else None
        if not 200 <= status < 300:
            raise _error_of(status, body)
        return orjson.dumps(body["items"]), body.get("next_cursor")

    def execute(self, command: ContactCommand, expected_version: int | None = None) -> Contact | None:
        """``POST /commands`` with the command's type and data; the same typed errors as in process."""
        body = {"type": command.TYPE, "data": command.to_data(), "expected_version": expected_version}
        data = self._call("POST", "/commands", command.caller, json=body)
        return Contact.from_data(data["contact"]) if data.get("contact") else None

    def create_or_merge(
        self,
        rows: Sequence[ImportRow],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
        merge: MergeMode = MergeMode.FILL,
        dry_run: bool = False,
    ) -> BatchResult:
        """Create or merge rows."""
        body = {
            "rows": [encode_dataclass(row) for row in rows],
            "list": list_name,
            "source": source.value,
            "job_id": job_id,
            "merge": merge.value,
            "dry_run": dry_run,
        }
        return BatchResult.from_data(self._call("POST", "/contacts/batch", caller, json=body))

    def create_or_merge_stream(
        self,
        batches: Iterable[Sequence[ImportRow]],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
        merge: MergeMode = MergeMode.FILL,
        dry_run: bool = False,
    ) -> Generator[BatchResult]:
        """Each batch posted from a sending thread while the caller makes the next; one in flight."""
        with ThreadPoolExecutor(1, thread_name_prefix="contacts-send") as sender:
            in_flight: Future[BatchResult] | None = None
            for rows in batches:
                if in_flight is not None:
                    yield in_flight.result()
                in_flight = sender.submit(
                    self.create_or_merge,
                    rows,
                    list_name,
                    caller,
                    source=source,
                    job_id=job_id,
                    merge=merge,
                    dry_run=dry_run,
                )
            if in_flight is not None:
                yield in_flight.result()

    def list_contacts(
        self,
        caller: Caller,
        filters: ContactFilters = ContactFilters(),
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """One page of contacts."""
        params = [*filters.to_params(), ("limit", str(limit))]
        if cursor:
            params.append(("cursor", cursor))
        return Page.from_data(self._call("GET", "/contacts", caller, params=params))

    def list_contacts_json(
        self,
        caller: Caller,
        filters: ContactFilters = ContactFilters(),
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[bytes, str | None]:
        """One page of contacts: the service's items re-dumped as they came (no Contact objects)."""
        params = [*filters.to_params(), ("limit", str(limit))]
        if cursor:
            params.append(("cursor", cursor))
        data = self._call("GET", "/contacts", caller, params=params)
        return orjson.dumps(data["items"]), data.get("next_cursor")

    def export_contacts(
        self, caller: Caller, filters: ContactFilters = ContactFilters(), batch_size: int = 5000
    ) -> Iterator[ContactRow]:
        """Export rows, read page by page (the internal API's largest page) with the list cursor."""
        cursor: str | None = None
        limit = min(batch_size, 1000)
        while True:
            page = self.list_contacts(caller, filters, limit, cursor)
            for contact in page.items:
                yield ContactRow.of(contact)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get(self, caller: Caller, contact_id: str) -> Contact:
        """One contact."""
        return Contact.from_data(self._call("GET", f"/contacts/{contact_id}", caller))

    def get_by_phone(self, caller: Caller, phone: str) -> Contact:
        """The contact with this phone."""
        path = f"/contacts/by-phone/{quote(phone, safe='')}"
        return Contact.from_data(self._call("GET", path, caller))

    def history(self, caller: Caller, contact_id: str) -> list[HistoryEntry]:
        """The contact's history."""
        return [
            HistoryEntry.from_data(item)
            for item in self._call("GET", f"/contacts/{contact_id}/history", caller)
        ]

    def locked_contacts(self, caller: Caller) -> list[Contact]:
        """Contacts locked now."""
        return [Contact.from_data(item) for item in self._call("GET", "/contacts/locked", caller)]

    def existing_phones(self, caller: Caller, phones_e164: Iterable[str]) -> set[str]:
        """Existing phones among those given."""
        data = self._call("POST", "/contacts/existing", caller, json={"phones": list(phones_e164)})
        return set(data["existing"])

    def dnc_listed(self, caller: Caller, phones_e164: Iterable[str]) -> set[str]:
        """Listed phones among those given (``POST /contacts/dnc``)."""
        data = self._call("POST", "/contacts/dnc", caller, json={"phones": list(phones_e164)})
        return set(data["listed"])

    def stats(self, caller: Caller) -> dict[str, Any]:
        """Totals."""
        result: dict[str, Any] = self._call("GET", "/stats", caller)
        return result

    def call_figures(
        self,
        caller: Caller,
        since: datetime | None = None,
        until: datetime | None = None,
        user_ids: Sequence[str] | None = None,
    ) -> list[AgentCalls]:
        """Per-agent call figures."""
        params: list[tuple[str, str]] = []
        if since is not None:
            params.append(("since", since.isoformat()))
        if until is not None:
            params.append(("until", until.isoformat()))
        if user_ids is not None:
            params.append(("only_users", "true"))
            params.extend(("user_id", user_id) for user_id in user_ids)
        data = self._call("GET", "/calls/figures", caller, params=params)
        return [AgentCalls.from_data(item) for item in data]

    def request(
        self, method: str, path: str, caller: Caller, *, json: object = None, params: Any = None
    ) -> Any:
        """One call to the internal API as ``caller``: the decoded JSON answer (None for 204); the same
        typed errors as in process (the work queue's client, ``contacts.queueclient``, calls through it)."""
        return self._call(method, path, caller, json=json, params=params)

    def _call(
        self,
        method: str,
        path: str,
        caller: Caller,
        *,
        json: object = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        # ASCII-only JSON: header values are Latin-1 on the wire and user names may have accents.
        sent = {
            CALLER_HEADER: json_module.dumps(caller_to_data(caller), ensure_ascii=True),
            **(headers or {}),
        }
        content = orjson.dumps(json) if json is not None else None
        if content is not None:
            sent["Content-Type"] = "application/json"
        try:
            response = self._client.request(method, path, content=content, params=params, headers=sent)
        except httpx.TransportError as exc:
            raise ContactsUnavailable(f"{method} {path}: {type(exc).__name__}") from exc
        if response.status_code in _UNAVAILABLE_STATUSES:
            raise ContactsUnavailable(f"{method} {path}: {response.status_code}")
        if response.status_code == 204:
            return None
        body = orjson.loads(response.content) if response.content else None
        if response.is_success:
            return body
        raise _error_of(response.status_code, body)


def _error_of(status: int, body: Any) -> ContactError:
    """The typed error of a failed answer (a plain ContactError when the body is not ours)."""
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return error_from_data(body["error"])
    return ContactError(f"El servicio de contactos respondió {status}")
