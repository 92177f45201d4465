"""Campaign rules: lists, teams, calling hours, daily cap, priority, archive; contacts in several lists.

Revision ID: contacts_0007
Revises: contacts_0006
Create Date: 2026-12-07

``campaigns`` gains the lists it holds (none: ``General``, every contact not in another campaign's list),
the teams that work it (none: every team), its time zone and calling hours (None: any time), a per-day
attempt cap, a priority among a team's campaigns and the archive flag. ``contact_lists`` holds the lists a
contact joined after its first one (``contacts.list``), from ``ContactListed`` events: a campaign asks
"is this contact in one of my lists" by ``ix_contact_lists_list``. ``ix_contact_calls_contact_placed``
counts a contact's calls of today for the daily cap.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "contacts_0007"
down_revision: str | Sequence[str] | None = "contacts_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("lists", Json, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("teams", Json, nullable=False, server_default="[]"))
        batch.add_column(
            sa.Column("timezone", sa.Text(), nullable=False, server_default="America/Costa_Rica")
        )
        batch.add_column(sa.Column("calling_hours", Json, nullable=True))
        batch.add_column(sa.Column("max_per_day", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="100"))
        batch.add_column(sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "contact_lists",
        sa.Column("contact_id", sa.Uuid(), primary_key=True),
        sa.Column("list_name", sa.Text(), primary_key=True),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_contact_lists_list", "contact_lists", ["list_name", "contact_id"])
    op.create_index("ix_contact_calls_contact_placed", "contact_calls", ["contact_id", "placed_at"])


def downgrade() -> None:
    op.drop_index("ix_contact_calls_contact_placed", table_name="contact_calls")
    op.drop_table("contact_lists")
    with op.batch_alter_table("campaigns") as batch:
        for column in ("archived", "priority", "max_per_day", "calling_hours", "timezone", "teams", "lists"):
            batch.drop_column(column)
