"""Contacts (PostgreSQL): announce every commit that changes the contacts table.

Revision ID: contacts_0004
Revises: contacts_0003
Create Date: 2025-01-04

Contacts services keep the first pages of the list they served and serve them again until PostgreSQL
announces a change on the ``callmanager_contacts`` channel (``contacts.queries``). A statement trigger, so
a bulk ``COPY`` of thousands of rows notifies once, and PostgreSQL folds the identical
notifications of one transaction into one. SQLite needs none: readers there ask ``PRAGMA data_version``.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "contacts_0004"
down_revision: str | Sequence[str] | None = "contacts_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTACTS_CHANNEL = "callmanager_contacts"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION callmanager_contacts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CONTACTS_CHANNEL}', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER contacts_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON contacts "
        "FOR EACH STATEMENT EXECUTE FUNCTION callmanager_contacts_changed()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER contacts_changed ON contacts")
    op.execute("DROP FUNCTION callmanager_contacts_changed()")
