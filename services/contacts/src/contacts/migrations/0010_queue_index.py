"""The work queue's index: the contacts order of ``ix_contacts_order``, for unlocked contacts only.

Revision ID: contacts_0010
Revises: contacts_0009
Create Date: 2026-12-07

``ix_contacts_queue (status_priority, age_key, id) WHERE locked_until IS NULL`` is what the next-contact
pick reads: a contact leaves it when it is locked and comes back when the lock is released or announced
as lapsed, so a pick no longer reads past every contact claimed and not yet called (the 100,000-claim run
read past ~49,000 of them at the head of ``ix_contacts_order``, 150 ms a pick). Partial indexes are
supported by both databases; the queue's query states the same predicate so both planners use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "contacts_0010"
down_revision: str | Sequence[str] | None = "contacts_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNLOCKED = sa.text("locked_until IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_contacts_queue",
        "contacts",
        ["status_priority", "age_key", "id"],
        postgresql_where=_UNLOCKED,
        sqlite_where=_UNLOCKED,
    )


def downgrade() -> None:
    op.drop_index("ix_contacts_queue", table_name="contacts")
