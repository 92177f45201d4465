"""Queries the contacts service answers (its read contract with the gateway, importexport and generator).

Each query is a frozen dataclass on the :class:`~contacts.message.Message` base with a stable ``TYPE``;
``RESULT`` names what it answers and how that crosses the wire. They all go through one door:
``ContactsClient.ask(query, caller)`` in process, ``POST /queries`` over HTTP. The rows of the read
model themselves are read by :mod:`contacts.queries`, behind the service's handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from contacts.agenda import CallbackView
from contacts.campaigns import Campaign, DncEntry, Eligibility, Progress
from contacts.message import NOTHING, PLAIN, STRINGS, Request, decode_message, many, one, registry
from contacts.views import AgentCalls, Contact, ContactFilters, HistoryEntry, Page

R_co = TypeVar("R_co", covariant=True)

MAX_DNC_PAGE = 1000
"""Largest page of the do-not-call list one query answers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Query(Request[R_co]):
    """Base of every query: ``RESULT`` says what it answers (``R_co``) and how that crosses the wire
    (``contacts.client.ContactsClient.ask``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GetContact(Query[Contact]):
    """One contact; NotFound when missing or deleted."""

    TYPE = "contacts.GetContact"
    RESULT = one(Contact.from_data)
    contact_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetContactByPhone(Query[Contact]):
    """The contact with this phone typed any way (``8812-3456``, ``+506 8812 3456``); NotFound when none."""

    TYPE = "contacts.GetContactByPhone"
    RESULT = one(Contact.from_data)
    phone: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetHistory(Query[list[HistoryEntry]]):
    """The contact's changes from its events, oldest first; NotFound when it has none."""

    TYPE = "contacts.GetHistory"
    RESULT = many(HistoryEntry.from_data)
    contact_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListContacts(Query[Page]):
    """One page of the filtered, ordered list (``limit`` 1..1000) after ``cursor``.

    The gateway's list route reads its pages as ready JSON instead (``ContactsClient.list_contacts_json``).
    """

    TYPE = "contacts.ListContacts"
    RESULT = one(Page.from_data)
    filters: ContactFilters = field(default_factory=ContactFilters)
    limit: int = 100
    cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetLockedContacts(Query[list[Contact]]):
    """The contacts whose lock is held now, soonest expiry first."""

    TYPE = "contacts.GetLockedContacts"
    RESULT = many(Contact.from_data)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetExistingPhones(Query[set[str]]):
    """Those of the E.164 ``phones`` that already belong to a contact (the generator's lookup)."""

    TYPE = "contacts.GetExistingPhones"
    RESULT = STRINGS
    phones: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GetListedPhones(Query[set[str]]):
    """Those of the E.164 ``phones`` on the do-not-call list (one lookup)."""

    TYPE = "contacts.GetListedPhones"
    RESULT = STRINGS
    phones: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GetStats(Query[dict[str, Any]]):
    """Totals: ``total`` contacts, ``locked`` (held now) and ``by_status`` (every status, zeros too)."""

    TYPE = "contacts.GetStats"
    RESULT = PLAIN


@dataclass(frozen=True, slots=True, kw_only=True)
class GetCallFigures(Query[list[AgentCalls]]):
    """Per-agent call figures for the calls placed in ``[since, until)``; ``user_ids`` None: everyone."""

    TYPE = "contacts.GetCallFigures"
    RESULT = many(AgentCalls.from_data)
    since: datetime | None = None
    until: datetime | None = None
    user_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListCampaigns(Query[list[Campaign]]):
    """Every campaign, by name (the archived ones too with ``archived``)."""

    TYPE = "contacts.ListCampaigns"
    RESULT = many(Campaign.from_data)
    archived: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class GetProgress(Query[Progress]):
    """How far the campaign's contacts are worked; CampaignNotFound when there is no such campaign."""

    TYPE = "contacts.GetProgress"
    RESULT = one(Progress.from_data)
    campaign_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetEligibility(Query[Eligibility]):
    """Whether the contact would be offered to the caller now in ``campaign`` (None: the caller's team's
    active campaigns), and why or why not."""

    TYPE = "contacts.GetEligibility"
    RESULT = one(Eligibility.from_data)
    contact_id: str
    campaign: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListCallbacks(Query[list[CallbackView]]):
    """Pending callbacks the caller may see, soonest first (``contacts.agenda.visibility``): with ``mine``
    their personal ones and the shared, with ``team`` that team's; Forbidden for a team they may not see."""

    TYPE = "contacts.ListCallbacks"
    RESULT = many(CallbackView.from_data)
    mine: bool = True
    team: str | None = None
    due_before: datetime | None = None
    contact_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListDnc(Query[list[DncEntry]]):
    """Numbers on the do-not-call list, newest first (``limit`` 1..1000 from ``offset``)."""

    TYPE = "contacts.ListDnc"
    RESULT = many(DncEntry.from_data)
    limit: int = MAX_DNC_PAGE
    offset: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckDnc(Query[None]):
    """Nothing when the E.164 number may be called; DoNotCall when it is on the list."""

    TYPE = "contacts.CheckDnc"
    RESULT = NOTHING
    phone_e164: str


QUERY_TYPES: Mapping[str, type[Query[Any]]] = registry(
    GetContact,
    GetContactByPhone,
    GetHistory,
    ListContacts,
    GetLockedContacts,
    GetExistingPhones,
    GetListedPhones,
    GetStats,
    GetCallFigures,
    ListCampaigns,
    GetProgress,
    GetEligibility,
    ListCallbacks,
    ListDnc,
    CheckDnc,
)


def decode_query(type_name: str, data: Mapping[str, Any], schema_version: int = 1) -> Query[Any]:
    """The query named ``type_name`` from its data; ValueError for unknown types or newer schemas."""
    return decode_message("query", QUERY_TYPES, type_name, data, schema_version)
