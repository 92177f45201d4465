"""Calls read model: one row per call (who, when requested, started and ended, outcome, duration).

Revision ID: contacts_0003
Revises: contacts_0002
Create Date: 2025-01-03

Filled from here on by the handlers, in the transaction that appends each call event. Calls recorded
before this revision reach the table with ``callmanager rebuild-contacts`` (the rebuild replays every
call event too).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "contacts_0003"
down_revision: str | Sequence[str] | None = "contacts_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_calls",
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
    )
    op.create_index("ix_contact_calls_placed", "contact_calls", ["placed_at"])
    op.create_index("ix_contact_calls_user", "contact_calls", ["user_id", "placed_at"])


def downgrade() -> None:
    op.drop_table("contact_calls")
