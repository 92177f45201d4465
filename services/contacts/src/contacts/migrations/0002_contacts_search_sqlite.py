"""SQLite: a trigram full-text index (FTS5) over the contacts' ``search`` text, so ``q`` is not a scan.

Revision ID: contacts_0002
Revises: contacts_0001
Create Date: 2025-01-02

Its rowid is the contact row's rowid and its ``id`` column the contact id, which is what queries read.
New rows are added by the projection in one ``INSERT ... SELECT`` per write (an insert trigger made
bulk writes five times slower); triggers carry renames and deletions.
A manual ``VACUUM`` may renumber SQLite rowids: ``callmanager rebuild-contacts`` rebuilds this table
with the rest of the read model. PostgreSQL has its trigram GIN index since contacts_0001.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "contacts_0002"
down_revision: str | Sequence[str] | None = "contacts_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATEMENTS = (
    "CREATE VIRTUAL TABLE contacts_search USING fts5(search, id UNINDEXED, tokenize='trigram')",
    "INSERT INTO contacts_search (rowid, search, id) SELECT rowid, search, id FROM contacts",
    """CREATE TRIGGER contacts_search_update AFTER UPDATE OF search ON contacts
    WHEN new.search IS NOT old.search BEGIN
        UPDATE contacts_search SET search = new.search WHERE rowid = old.rowid;
    END""",
    """CREATE TRIGGER contacts_search_delete AFTER DELETE ON contacts BEGIN
        DELETE FROM contacts_search WHERE rowid = old.rowid;
    END""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in ("contacts_search_delete", "contacts_search_update"):
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE contacts_search")
