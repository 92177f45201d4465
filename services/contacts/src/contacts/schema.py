"""Tables of the contacts read model, updated in the same transaction as the event append.

The read model is created by the contacts Alembic migrations (``contacts/migrations``); this metadata is
what the projection and the queries use, and what the migration test compares the database against.

Indexes (chosen for a million contacts, and few, because each one costs every bulk insert):

* ``ix_contacts_order (status_priority, age_key, id)`` is the default order itself: the first page of
  the list is an index range scan that stops after ``limit`` rows, and the keyset cursor
  ``(status_priority, age_key, id) > (...)`` starts the next page inside it. A status filter is a
  priority range of the same index (each status has its priority), so statuses need no index of their
  own; neither does the operator (three operators share the rows, the first page is found at once).
* ``ix_contacts_list_order (list, status_priority, age_key, id)``: lists can be small (one import).
* ``ix_contacts_queue``: the same order for unlocked contacts only (``WHERE locked_until IS NULL``),
  what the work queue's pick reads, so it never reads past contacts claimed and not yet called
  (``contacts_0010``). A lock now changes an indexed column: on PostgreSQL that update is no longer HOT.
* The primary key ``id`` is the uuid5 of the E.164 phone, so it is the phone lookup and its uniqueness.
  ``ux_contacts_phone_e164`` (unique, migration contacts_0009) holds that uniqueness even for a row whose
  id was derived otherwise (defence in depth; the projection maps a refusal to ``DuplicatePhone``).
* Held locks through the small ``contact_locks`` table (one row per lock not yet released or expired).
* ``fillfactor`` 90 on PostgreSQL leaves room on each page for HOT updates (locks, notes).
* PostgreSQL: a trigram GIN index (``pg_trgm``) on ``search`` so ``q`` (``LIKE '%...%'``) does not scan
  the table; SQLite: an FTS5 trigram table (:data:`SEARCH_TABLE`) finds the few contacts a rare ``q``
  matches, and a common one is read off the ordered index with ``LIKE``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

SEARCH_INDEX = "ix_contacts_search_trgm"
# SQLite only: FTS5 table (trigram tokenizer) over ``search``, columns ``search`` and ``id`` (unindexed,
# the contact id in SQLite's hex form); rowid = the contact row's rowid. New rows are added by the
# projection, renames and deletions by triggers. Created by the migration contacts_0002; not in this
# metadata (a virtual table).
SEARCH_TABLE = "contacts_search"

PHONE_INDEX = "ux_contacts_phone_e164"
"""The unique index on ``contacts.phone_e164`` (migration contacts_0009)."""

CONTACTS_CHANNEL = "callmanager_contacts"
"""Where PostgreSQL announces each commit that changed the contacts table (triggers of ``contacts_0004``):
processes keeping first pages of the list read them again after it."""

contacts = sa.Table(
    "contacts",
    metadata,
    # The stream id: uuid5 of the E.164 phone (``domain.contact_id_for_phone``), so the primary key is
    # also the phone's uniqueness and its lookup. Deleted contacts have no row; their stream stays.
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("phone", sa.Text(), nullable=False),
    sa.Column("phone_e164", sa.String(20), nullable=False),
    sa.Column("phone_national", sa.Text(), nullable=False, server_default=""),
    sa.Column("name", sa.Text(), nullable=False, server_default=""),
    sa.Column("status", sa.Text(), nullable=False),
    # Priority of the status in the catalogue (NC, CUELGA, SIN_GESTIONAR, ...): the first sort key.
    sa.Column("status_priority", sa.SmallInteger(), nullable=False),
    sa.Column("note", sa.Text(), nullable=False, server_default=""),
    sa.Column("email", sa.Text(), nullable=False, server_default=""),
    sa.Column("extra", Json, nullable=False),
    sa.Column("list", sa.Text(), nullable=False, server_default=""),
    # "" when the phone has no known operator, so the operator index holds every row.
    sa.Column("operator", sa.Text(), nullable=False, server_default=""),
    # The last lock taken and not yet released or expired; held only while locked_until > now.
    sa.Column("locked_by", sa.Text(), nullable=True),
    sa.Column("locked_by_name", sa.Text(), nullable=True),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_contacted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # coalesce(last_contacted_at, created_at): the second sort key (longest untouched first) and the
    # start of the ageing clock.
    sa.Column("age_key", sa.DateTime(timezone=True), nullable=False),
    # Lower-cased, accent-free name plus the E.164 digits: what ``q`` searches.
    sa.Column("search", sa.Text(), nullable=False, server_default=""),
    # Stream version of the last event folded in (the HTTP ETag).
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Index("ix_contacts_order", "status_priority", "age_key", "id"),
    sa.Index("ix_contacts_list_order", "list", "status_priority", "age_key", "id"),
    sa.Index(PHONE_INDEX, "phone_e164", unique=True),
    sa.Index(
        "ix_contacts_queue",
        "status_priority",
        "age_key",
        "id",
        postgresql_where=sa.text("locked_until IS NULL"),
        sqlite_where=sa.text("locked_until IS NULL"),
    ),
)

# How many live contacts have each status, kept by the projection in the same transactions: the
# dashboards' counts without a scan of a million rows. Writers are serialised by the event store's append
# lock, so these few hot rows add no contention.
contact_status_counts = sa.Table(
    "contact_status_counts",
    metadata,
    sa.Column("status", sa.Text(), primary_key=True),
    sa.Column("count", sa.BigInteger(), nullable=False),
)

# The contacts whose last lock was neither released nor announced as expired (a handful at any time).
# Kept apart so that taking or releasing a lock changes no indexed column of ``contacts``: on PostgreSQL
# that update is HOT (no index entry written, the trigram index included).
contact_locks = sa.Table(
    "contact_locks",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_contact_locks_until", "locked_until", "id"),
)

# One row per call (the calls read model, ``contacts.calls``), kept in the transaction that appends the
# call's events. Keyed by call id and contact: call ids come from the gateway or a desk and are only
# known to be unique within their contact's stream (a write looks its call up by the first column).
# ``placed_at`` is when the call was asked for (or first heard of, if its request is not in the stream):
# the metrics' time window filters on it, per agent through ``ix_contact_calls_user``.
# ``handling_seconds`` is requested → ended, once both are known.
contact_calls = sa.Table(
    "contact_calls",
    metadata,
    sa.Column("call_id", sa.Text(), primary_key=True),
    sa.Column("contact_id", sa.Uuid(), primary_key=True),
    sa.Column("user_id", sa.Text(), nullable=False),
    sa.Column("username", sa.Text(), nullable=False, server_default=""),
    sa.Column("desk", sa.Text(), nullable=False, server_default=""),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("outcome", sa.Text(), nullable=True),
    sa.Column("duration_seconds", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("handling_seconds", sa.Float(), nullable=True),
    sa.Index("ix_contact_calls_placed", "placed_at"),
    sa.Index("ix_contact_calls_user", "user_id", "placed_at"),
)

# PostgreSQL only: created by the migration with ``pg_trgm``'s operator class from its own schema.
sa.Index(
    SEARCH_INDEX,
    contacts.c.search,
    postgresql_using="gin",
    postgresql_ops={"search": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")

# The do-not-call list (``contacts.dnc``): one row per number that must not be called, and every change to
# it as an audit row (who added or removed which number, when and why). The work queue, the call route and
# the eligibility explanation look numbers up by the primary key.
dnc_numbers = sa.Table(
    "dnc_numbers",
    metadata,
    sa.Column("phone_e164", sa.String(20), primary_key=True),
    sa.Column("reason", sa.Text(), nullable=False, server_default=""),
    sa.Column("added_by", sa.Text(), nullable=False),
    sa.Column("added_by_name", sa.Text(), nullable=False, server_default=""),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
)

dnc_changes = sa.Table(
    "dnc_changes",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("phone_e164", sa.String(20), nullable=False),
    # "added" or "removed"
    sa.Column("action", sa.Text(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False, server_default=""),
    sa.Column("user_id", sa.Text(), nullable=False),
    sa.Column("username", sa.Text(), nullable=False, server_default=""),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_dnc_changes_phone", "phone_e164", "at"),
)

# The work queue asks, per contact, for its calls (never tried? inside a retry delay? attempts so far?).
sa.Index("ix_contact_calls_contact", contact_calls.c.contact_id, contact_calls.c.ended_at)

# Pending callbacks (``contacts.callbacks``): one per contact at most, from its last wrap-up that set one
# (``DispositionRecorded.callback_at``); a later wrap-up without one, or the contact's deletion, removes
# it. Written in the transaction that appends the event. The work queue offers due callbacks first and
# keeps a contact with a pending callback out of its other groups.
contact_callbacks = sa.Table(
    "contact_callbacks",
    metadata,
    sa.Column("contact_id", sa.Uuid(), primary_key=True),
    sa.Column("user_id", sa.Text(), nullable=False),
    sa.Column("username", sa.Text(), nullable=False, server_default=""),
    # "personal" (only user_id takes it) or "shared" (anyone)
    sa.Column("scope", sa.Text(), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    # contacts_0008: the callback's stable id ("<contact id>.<stream version of the wrap-up that set
    # it>"), its owner's team (TeamLeads list and manage their team's), when its reminder went out.
    sa.Column("callback_id", sa.Text(), nullable=False, server_default=""),
    sa.Column("team", sa.Text(), nullable=False, server_default=""),
    sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_contact_callbacks_due", "due_at"),
)

# Campaigns (``contacts.campaignbook``) and their rules; ``general`` (every contact, every team, no calling
# hours) is created by the migration, so the queue works on a fresh install.
campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),
    sa.Column("name", sa.Text(), nullable=False, unique=True),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("max_attempts", sa.Integer(), nullable=False),
    sa.Column("retry_minutes", Json, nullable=False),
    sa.Column("closed_statuses", Json, nullable=False),
    sa.Column("updated_by", sa.Text(), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # contacts_0007: the lists it holds ([]: General, every contact not in another campaign's list), the
    # teams that work it ([]: every team), time zone and calling hours (null: any time), daily cap,
    # priority among a team's campaigns (lower first), archived (inactive and hidden).
    sa.Column("lists", Json, nullable=False, server_default="[]"),
    sa.Column("teams", Json, nullable=False, server_default="[]"),
    sa.Column("timezone", sa.Text(), nullable=False, server_default="America/Costa_Rica"),
    sa.Column("calling_hours", Json, nullable=True),
    sa.Column("max_per_day", sa.Integer(), nullable=True),
    sa.Column("priority", sa.Integer(), nullable=False, server_default="100"),
    sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.false()),
)

# The lists a contact joined after its first (``contacts.list``): one row per (contact, list), from the
# ``ContactListed`` events an import or generation appends when it merges an existing contact into
# another list (``contacts.memberships``). A campaign finds its contacts by ``ix_contact_lists_list``.
contact_lists = sa.Table(
    "contact_lists",
    metadata,
    sa.Column("contact_id", sa.Uuid(), primary_key=True),
    sa.Column("list_name", sa.Text(), primary_key=True),
    sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_contact_lists_list", "list_name", "contact_id"),
)

# The daily cap counts a contact's calls since the start of its campaign's local day.
sa.Index("ix_contact_calls_contact_placed", contact_calls.c.contact_id, contact_calls.c.placed_at)
