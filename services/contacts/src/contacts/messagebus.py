"""The contacts service's two doors in process: every command through :meth:`MessageBus.execute`, every
query through :meth:`MessageBus.ask`, each type mapped to its handler in one table.

``contacts.client.LocalContactsClient`` calls it directly (embedded mode); the internal API's
``POST /commands`` and ``POST /queries`` (``contacts.api``) decode the message and call the same bus, so
both transports run the same handlers. A new command or query is its class (``contacts.commands``,
``contacts.asks``) and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar, cast

from contacts.agenda import visibility
from contacts.asks import (
    MAX_DNC_PAGE,
    QUERY_TYPES,
    CheckDnc,
    GetCallFigures,
    GetContact,
    GetContactByPhone,
    GetEligibility,
    GetExistingPhones,
    GetHistory,
    GetListedPhones,
    GetLockedContacts,
    GetProgress,
    GetStats,
    ListCallbacks,
    ListCampaigns,
    ListContacts,
    ListDnc,
    Query,
)
from contacts.callbacks import CallbackBook
from contacts.campaignbook import FIELDS, CampaignBook
from contacts.campaigns import Campaign
from contacts.commands import (
    COMMAND_TYPES,
    AddDnc,
    AddDncMany,
    Caller,
    ClaimNextContact,
    Command,
    ContactCommand,
    CreateOrMergeContacts,
    RemoveDnc,
    SaveCampaign,
)
from contacts.dnc import DncList
from contacts.errors import InvalidInput
from contacts.handlers import ContactsService
from contacts.queries import MAX_LIMIT, ContactQueries
from contacts.queue import WorkQueue

R = TypeVar("R")
CommandHandler = Callable[..., Any]
QueryHandler = Callable[[Any, Caller], Any]


class MessageBus:
    """Runs any contacts command or query in process, with the same typed errors the HTTP door answers."""

    def __init__(
        self,
        service: ContactsService,
        queries: ContactQueries,
        queue: WorkQueue | None = None,
        callbacks: CallbackBook | None = None,
    ) -> None:
        # queue, callbacks: the composition root's; built over the queries' database when not given.
        self.service = service
        self.queries = queries
        self.queue = queue or WorkQueue(
            queries.engine,
            queries.store,
            service,
            DncList(queries.engine),
            CampaignBook(queries.engine, queries.catalogue),
        )
        self.callbacks = callbacks or CallbackBook(queries.engine)
        self.command_handlers: Mapping[type[Command[Any]], CommandHandler] = {
            # One contact's commands: decided by contacts.domain, with the expected version (If-Match).
            **{cls: service.handle for cls in COMMAND_TYPES.values() if issubclass(cls, ContactCommand)},
            CreateOrMergeContacts: service.handle_batch,
            ClaimNextContact: self._claim_next,
            SaveCampaign: self._save_campaign,
            AddDnc: self._add_dnc,
            AddDncMany: self._add_dnc_many,
            RemoveDnc: self._remove_dnc,
        }
        self.query_handlers: Mapping[type[Query[Any]], QueryHandler] = {
            GetContact: lambda q, _: queries.get(q.contact_id),
            GetContactByPhone: lambda q, _: queries.get_by_phone(q.phone),
            GetHistory: lambda q, _: queries.history(q.contact_id),
            ListContacts: self._list_contacts,
            GetLockedContacts: lambda q, _: queries.locked_contacts(),
            GetExistingPhones: lambda q, _: queries.existing_phones(q.phones),
            GetListedPhones: lambda q, _: queries.dnc_listed(q.phones),
            GetStats: lambda q, _: queries.stats(),
            GetCallFigures: lambda q, _: queries.call_figures(q.since, q.until, q.user_ids),
            ListCampaigns: lambda q, _: self.queue.campaigns.all(archived=q.archived),
            GetProgress: lambda q, _: self.queue.progress(q.campaign_id),
            GetEligibility: lambda q, caller: self.queue.eligibility(caller, q.contact_id, q.campaign),
            ListCallbacks: self._list_callbacks,
            ListDnc: self._list_dnc,
            CheckDnc: lambda q, _: self.queue.dnc.check(q.phone_e164),
        }
        # Every registered type has a handler (the contract suite checks the reverse as well).
        missing = [
            cls.TYPE
            for cls in (*COMMAND_TYPES.values(), *QUERY_TYPES.values())
            if cls not in self.command_handlers and cls not in self.query_handlers
        ]
        if missing:
            raise TypeError(f"contacts messages without a handler: {', '.join(missing)}")

    def execute(self, command: Command[R], expected_version: int | None = None) -> R:
        """Run ``command`` stamped with the service's clock; its result, or its domain error.

        ``expected_version`` (HTTP ``If-Match``) applies to single-contact commands only.
        """
        handler = self.command_handlers.get(type(command))
        if handler is None:
            raise InvalidInput("command", f"Comando desconocido: {command.TYPE or type(command).__name__}")
        if isinstance(command, ContactCommand):
            return cast(R, handler(command, expected_version))
        if expected_version is not None:
            raise InvalidInput("expected_version", f"{command.TYPE} no es un comando de un contacto")
        return cast(R, handler(replace(command, now=self.service.now())))

    def ask(self, query: Query[R], caller: Caller) -> R:
        """Answer ``query`` for ``caller``; its result, or its domain error."""
        handler = self.query_handlers.get(type(query))
        if handler is None:
            raise InvalidInput("query", f"Consulta desconocida: {query.TYPE or type(query).__name__}")
        return cast(R, handler(query, caller))

    def _claim_next(self, command: ClaimNextContact) -> Any:
        return self.queue.next_contact(command.caller, command.campaign)

    def _save_campaign(self, command: SaveCampaign) -> Campaign:
        unknown = sorted(set(command.fields) - FIELDS)
        if unknown:
            raise InvalidInput(unknown[0], f"Campo de campaña desconocido: {unknown[0]}")
        book = self.queue.campaigns
        if command.campaign_id is not None:
            return book.update(command.caller, command.now, command.campaign_id, command.fields)
        if command.fields.get("name") is None:
            raise InvalidInput("name", "Falta el nombre de la campaña")
        given = {key: value for key, value in command.fields.items() if value is not None}
        return book.create(command.caller, command.now, **given)

    def _add_dnc(self, command: AddDnc) -> Any:
        return self.queue.dnc.add(command.phone, command.reason, command.caller, command.now)

    def _add_dnc_many(self, command: AddDncMany) -> Any:
        if any(len(entry) != 2 for entry in command.entries):
            raise InvalidInput("entries", "Cada número va con su motivo: [teléfono, motivo]")
        return self.queue.dnc.add_many(command.entries, command.caller, command.now)

    def _remove_dnc(self, command: RemoveDnc) -> Any:
        return self.queue.dnc.remove(command.phone, command.reason, command.caller, command.now)

    def _list_contacts(self, query: ListContacts, _: Caller) -> Any:
        if not 1 <= query.limit <= MAX_LIMIT:
            raise InvalidInput("limit", f"limit debe estar entre 1 y {MAX_LIMIT}")
        return self.queries.list_contacts(query.filters, query.limit, query.cursor)

    def _list_callbacks(self, query: ListCallbacks, caller: Caller) -> Any:
        seen = visibility(caller, mine=query.mine, team=query.team)
        return self.callbacks.listed(seen, query.due_before, contact_id=query.contact_id)

    def _list_dnc(self, query: ListDnc, _: Caller) -> Any:
        if not 1 <= query.limit <= MAX_DNC_PAGE:
            raise InvalidInput("limit", f"limit debe estar entre 1 y {MAX_DNC_PAGE}")
        if query.offset < 0:
            raise InvalidInput("offset", "offset no puede ser negativo")
        return self.queue.dnc.entries(query.limit, query.offset)
