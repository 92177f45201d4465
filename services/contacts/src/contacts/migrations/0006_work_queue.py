"""Work queue: campaigns (``general`` created here), the do-not-call list and its audit rows, pending
callbacks, the calls of one contact by index.

Revision ID: contacts_0006
Revises: contacts_0005
Create Date: 2026-12-07

``dnc_numbers`` holds the numbers that must not be called (looked up by E.164), ``dnc_changes`` every
addition and removal with who, when and why. ``contact_callbacks`` the pending callback of each contact
(from its last wrap-up). ``ix_contact_calls_contact`` lets the next-contact query
ask whether a contact was ever called, and when its retry delay ends, without scanning the calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# The default campaign's rules as this revision knows them (``contacts.campaigns`` may change its defaults
# later; the stored row keeps these until someone edits it).
GENERAL_RETRY_MINUTES = {"answered": 1440, "no_answer": 120, "busy": 30, "failed": 15, "cancelled": 5}
GENERAL_CLOSED_STATUSES = ["COMPLETADA", "SERVICIOS_ACTIVOS", "NO_EXISTE"]

revision: str = "contacts_0006"
down_revision: str | Sequence[str] | None = "contacts_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dnc_numbers",
        sa.Column("phone_e164", sa.String(20), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("added_by", sa.Text(), nullable=False),
        sa.Column("added_by_name", sa.Text(), nullable=False, server_default=""),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dnc_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("phone_e164", sa.String(20), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False, server_default=""),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dnc_changes_phone", "dnc_changes", ["phone_e164", "at"])
    op.create_index("ix_contact_calls_contact", "contact_calls", ["contact_id", "ended_at"])
    op.create_table(
        "contact_callbacks",
        sa.Column("contact_id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False, server_default=""),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_contact_callbacks_due", "contact_callbacks", ["due_at"])
    campaigns = op.create_table(
        "campaigns",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False, unique=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_minutes", Json, nullable=False),
        sa.Column("closed_statuses", Json, nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        campaigns,
        [
            {
                "id": "general",
                "name": "General",
                "active": True,
                "max_attempts": 6,
                "retry_minutes": GENERAL_RETRY_MINUTES,
                "closed_statuses": GENERAL_CLOSED_STATUSES,
                "updated_by": "system",
                "created_at": now,
                "updated_at": now,
            }
        ],
    )


def downgrade() -> None:
    op.drop_table("campaigns")
    op.drop_table("contact_callbacks")
    op.drop_index("ix_contact_calls_contact", table_name="contact_calls")
    op.drop_table("dnc_changes")
    op.drop_table("dnc_numbers")
