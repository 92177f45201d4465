"""Contacts read model: one row per live contact, indexes for the list and search, the held locks.

Revision ID: contacts_0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "contacts_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("contacts",)
depends_on: str | Sequence[str] | None = "kernel_0001"

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("phone", sa.Text(), nullable=False),
        sa.Column("phone_e164", sa.String(20), nullable=False),
        sa.Column("phone_national", sa.Text(), nullable=False, server_default=""),
        sa.Column("name", sa.Text(), nullable=False, server_default=""),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("status_priority", sa.SmallInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("email", sa.Text(), nullable=False, server_default=""),
        sa.Column("extra", _JSON, nullable=False),
        sa.Column("list", sa.Text(), nullable=False, server_default=""),
        sa.Column("operator", sa.Text(), nullable=False, server_default=""),
        sa.Column("locked_by", sa.Text(), nullable=True),
        sa.Column("locked_by_name", sa.Text(), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_contacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("age_key", sa.DateTime(timezone=True), nullable=False),
        sa.Column("search", sa.Text(), nullable=False, server_default=""),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_contacts_order", "contacts", ["status_priority", "age_key", "id"])
    op.create_index("ix_contacts_list_order", "contacts", ["list", "status_priority", "age_key", "id"])
    op.create_table(
        "contact_status_counts",
        sa.Column("status", sa.Text(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "contact_locks",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_contact_locks_until", "contact_locks", ["locked_until", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE contacts SET (fillfactor = 90)")
        schema = _trigram_schema()
        op.execute(
            f'CREATE INDEX ix_contacts_search_trgm ON contacts USING gin (search "{schema}".gin_trgm_ops)'
        )


def downgrade() -> None:
    op.drop_table("contact_locks")
    op.drop_table("contact_status_counts")
    op.drop_table("contacts")


def _trigram_schema() -> str:
    """The schema holding ``pg_trgm`` (installed into ``public`` when missing).

    Installed once per database, outside the migrating schema: an extension living in one service's
    schema would vanish, with every trigram index of the database, if that schema were dropped.
    """
    bind = op.get_bind()
    find = sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_trgm'"
    )
    schema = bind.execute(find).scalar()
    if schema is None:
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        schema = "public"
    return str(schema)
