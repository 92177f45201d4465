"""Tables the gateway owns: users, their hashed API keys, and the audit log.

Created by the gateway's Alembic migrations (``gateway/migrations``, branch ``gateway``); this metadata is
what the code queries and what the migration test compares the migrated database against. No column ever
holds a plaintext API key: ``api_keys.secret_hash`` is the SHA-256 of the whole key (see
:mod:`gateway.users` for why a fast hash is the right one here).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

# JSONB on PostgreSQL, JSON text on SQLite.
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

USERNAME_LENGTH = 64
KEY_ID_LENGTH = 12

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("username", sa.String(USERNAME_LENGTH), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("team", sa.String(100), nullable=True),
    sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("username", name="uq_users_username"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    # The public part of the key (``cm_<id>_<secret>``): safe to log, show and audit.
    sa.Column("id", sa.String(KEY_ID_LENGTH), primary_key=True),
    sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", name="fk_api_keys_user_id"), nullable=False),
    # Hex SHA-256 of the whole presented key.
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_api_keys_user_id", "user_id"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.Identity(),
        primary_key=True,
    ),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("user_id", sa.Uuid(), nullable=True),
    sa.Column("username", sa.String(USERNAME_LENGTH), nullable=True),
    sa.Column("key_id", sa.String(KEY_ID_LENGTH), nullable=True),
    sa.Column("role", sa.String(32), nullable=True),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("action", sa.String(100), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("status_code", sa.SmallInteger(), nullable=False),
    sa.Column("source", sa.String(64), nullable=True),
    sa.Column("detail", Json, nullable=False),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_username", "username"),
)
