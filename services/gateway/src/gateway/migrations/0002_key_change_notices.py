"""Gateway (PostgreSQL): announce every change to who a key belongs to or whether it works.

Revision ID: gateway_0002
Revises: gateway_0001
Create Date: 2025-01-02

Gateways keep the key rows they read and use them until PostgreSQL announces a change on the
``callmanager_keys`` channel (``gateway.users``): these statement triggers send that announcement when
keys are added, removed or revoked (``last_used_at`` alone does not count) and when users change, whoever
changes them (the CLI, another replica, an operator with ``psql``). SQLite needs none: readers there ask
``PRAGMA data_version``.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "gateway_0002"
down_revision: str | Sequence[str] | None = "gateway_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS_CHANNEL = "callmanager_keys"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION callmanager_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{KEYS_CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER api_keys_changed AFTER INSERT OR DELETE OR TRUNCATE "
        "OR UPDATE OF id, user_id, secret_hash, revoked_at ON api_keys "
        "FOR EACH STATEMENT EXECUTE FUNCTION callmanager_keys_changed()"
    )
    op.execute(
        "CREATE TRIGGER users_changed AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE ON users "
        "FOR EACH STATEMENT EXECUTE FUNCTION callmanager_keys_changed()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER users_changed ON users")
    op.execute("DROP TRIGGER api_keys_changed ON api_keys")
    op.execute("DROP FUNCTION callmanager_keys_changed()")
