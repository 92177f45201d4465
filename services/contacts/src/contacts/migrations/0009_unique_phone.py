"""A unique index on the read model's E.164 phone: defence in depth.

Revision ID: contacts_0009
Revises: contacts_0008
Create Date: 2026-12-07

A contact's row id is the uuid5 of its E.164 phone, so the primary key already keeps one row per phone
as long as every writer derives the id the same way. This index holds even if one does not (a bug, a
hand-made row): a second row with a phone already in the table is refused, and the projection turns the
refusal into ``contacts.errors.DuplicatePhone`` (409). A full index, not a partial one: a deleted contact
has no row (its stream stays), so every row is a live contact.

A database that already holds two rows with one phone cannot take the index: the migration stops before
changing anything and names the phones (``callmanager rebuild-contacts`` rebuilds the rows from the
events).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "contacts_0009"
down_revision: str | Sequence[str] | None = "contacts_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ux_contacts_phone_e164"

_contacts = sa.table("contacts", sa.column("phone_e164", sa.String()))


def upgrade() -> None:
    shared = (
        sa.select(_contacts.c.phone_e164)
        .group_by(_contacts.c.phone_e164)
        .having(sa.func.count() > 1)
        .order_by(_contacts.c.phone_e164)
        .limit(10)
    )
    duplicated = list(op.get_bind().execute(shared).scalars())
    if duplicated:
        raise RuntimeError(
            f"contacts_0009: {len(duplicated)} phone(s) appear in more than one contact row "
            f"({', '.join(duplicated)}); run `callmanager rebuild-contacts` and migrate again"
        )
    op.create_index(INDEX, "contacts", ["phone_e164"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="contacts")
