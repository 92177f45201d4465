"""Tables of the event store: one append-only ``events`` table and the consumers' positions.

The tables are created by the kernel's Alembic migrations (``kernel/store/migrations``); this metadata is
what the code queries and what the migration test compares the migrated database against.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

STREAM_VERSION_CONSTRAINT = "uq_events_stream_version"

metadata = sa.MetaData()

# JSONB on PostgreSQL, JSON text on SQLite.
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
StreamId = sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql")

events = sa.Table(
    "events",
    metadata,
    # BIGINT identity on PostgreSQL; INTEGER PRIMARY KEY (the rowid) on SQLite.
    sa.Column(
        "position",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.Identity(),
        primary_key=True,
    ),
    sa.Column("id", sa.Uuid(), nullable=False),
    # Compared byte by byte on PostgreSQL (kernel_0003): ids, never sorted for people.
    sa.Column("stream_id", StreamId, nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("schema_version", sa.SmallInteger(), nullable=False, server_default="1"),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", Json, nullable=False),
    sa.Column("correlation_id", sa.Uuid(), nullable=True),
    sa.Column("causation_id", sa.Uuid(), nullable=True),
    sa.Column("data", Json, nullable=False),
    sa.UniqueConstraint("id", name="uq_events_id"),
    sa.UniqueConstraint("stream_id", "version", name=STREAM_VERSION_CONSTRAINT),
)

positions = sa.Table(
    "positions",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("position", sa.BigInteger(), nullable=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("done", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("total", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("params", Json, nullable=False),
    sa.Column("report", Json, nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Index("ix_jobs_created_by", "created_by", "created_at"),
    sa.Index("ix_jobs_state_lease", "state", "lease_until"),
)
