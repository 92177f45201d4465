"""The other services' view of the contacts service: one protocol, a direct and an HTTP implementation.

Two doors carry the whole contract: :meth:`ContactsClient.execute` for every command
(``contacts.commands``) and :meth:`ContactsClient.ask` for every query (``contacts.asks``). Beside them
sit the bulk paths that stream large bodies: batches of an import or a generation, the list page as ready
JSON, the export. :class:`LocalContactsClient` calls the service's :class:`~contacts.messagebus.MessageBus`
in process (embedded mode: no socket, no JSON); :class:`HttpContactsClient` calls the internal API
(distributed mode: ``POST /commands``, ``POST /queries``) and raises the same typed domain errors. No
SQLAlchemy here: the gateway imports this module.
"""

from __future__ import annotations

import json as json_module
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx
import orjson

from contacts.asks import Query
from contacts.commands import BatchResult, Caller, Command, ImportRow, MergeMode, Source
from contacts.errors import ContactError
from contacts.message import encode_dataclass
from contacts.views import ContactFilters, ContactRow, Page, caller_to_data, error_from_data

if TYPE_CHECKING:
    import aiohttp

    from contacts.callbacks import CallbackBook
    from contacts.handlers import ContactsService
    from contacts.messagebus import MessageBus
    from contacts.queries import ContactQueries
    from contacts.queue import WorkQueue

R = TypeVar("R")

CALLER_HEADER = "X-Caller"
POOL_SIZE = 64
"""Connections to the contacts service kept open: more than the gateway's worker threads (40)."""
_UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 (a header name, not a secret)


class ContactsUnavailable(RuntimeError):
    """The contacts service did not answer (down, restarting, unreachable): worth trying again shortly."""


class ContactsClient(Protocol):
    """The contacts service as the other services call it: one door for commands (:meth:`execute`), one
    for queries (:meth:`ask`), and the bulk paths of import, generation, the list page and export."""

    def execute(self, command: Command[R], expected_version: int | None = None) -> R:
        """Run one command (stamped with the service's clock); its ``RESULT`` (a contact command's: the
        contact after it, None when gone), or its typed domain error.

        The one door for every command (``CreateContact`` with its phone as typed, updates, locks, calls,
        dispositions, the work queue's claim, campaigns, the do-not-call list): a new command is its class,
        its handler and, if public, its gateway route. ``expected_version`` (HTTP ``If-Match``) must be the
        contact's version, else VersionMismatch (single-contact commands only).
        """
        ...

    def ask(self, query: Query[R], caller: Caller) -> R:
        """Answer one query (``contacts.asks``) for ``caller``: its ``RESULT``, or its typed domain error."""
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

    def list_contacts_json(
        self,
        caller: Caller,
        filters: ContactFilters = ContactFilters(),
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[bytes, str | None]:
        """One page of the filtered, ordered list as the JSON array of its contacts' ``to_data()``, and the
        next cursor: the gateway's hottest read, kept off the query door (no objects, no second encoding)."""
        ...

    def export_contacts(
        self, caller: Caller, filters: ContactFilters = ContactFilters(), batch_size: int = 5000
    ) -> Iterator[ContactRow]:
        """Every contact matching ``filters`` as an export row, in list order, streamed (importexport)."""
        ...


class LocalContactsClient:
    """Direct calls into the service's message bus and its bulk paths (embedded mode)."""

    def __init__(
        self,
        service: ContactsService,
        queries: ContactQueries,
        queue: WorkQueue | None = None,
        callbacks: CallbackBook | None = None,
    ) -> None:
        # Imported here: the bus pulls in the service's storage, which the HTTP client's users never need.
        from contacts.messagebus import MessageBus

        self._service = service
        self._queries = queries
        self._bus: MessageBus = MessageBus(service, queries, queue, callbacks)

    def execute(self, command: Command[R], expected_version: int | None = None) -> R:
        """Run the command in process."""
        return self._bus.execute(command, expected_version)

    def ask(self, query: Query[R], caller: Caller) -> R:
        """Answer the query in process."""
        return self._bus.ask(query, caller)

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

    def execute(self, command: Command[R], expected_version: int | None = None) -> R:
        """``POST /commands`` with the command's type and data; the same result and typed errors as in
        process."""
        body = {"type": command.TYPE, "data": command.to_data(), "expected_version": expected_version}
        data = self._call("POST", "/commands", command.caller, json=body)
        return command.result_from_data(data["result"])

    def ask(self, query: Query[R], caller: Caller) -> R:
        """``POST /queries`` with the query's type and data; the same result and typed errors as in
        process."""
        body = {"type": query.TYPE, "data": query.to_data()}
        data = self._call("POST", "/queries", caller, json=body)
        return query.result_from_data(data["result"])

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
            params = [*filters.to_params(), ("limit", str(limit))]
            if cursor:
                params.append(("cursor", cursor))
            page = Page.from_data(self._call("GET", "/contacts", caller, params=params))
            for contact in page.items:
                yield ContactRow.of(contact)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

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
