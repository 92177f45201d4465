"""Callbacks as events: each pending callback's stable id, its owner's team and its reminder.

Revision ID: contacts_0008
Revises: contacts_0007
Create Date: 2026-12-07

``contact_callbacks.callback_id`` is ``<contact id>.<stream version of the wrap-up that set it>``
(``contacts.domain``), filled here for the callbacks already pending from the event store; ``team`` is
the owner's team (empty for those: wrap-ups did not record it before); ``reminded_at`` when the
``CallbackReminded`` event went out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "contacts_0008"
down_revision: str | Sequence[str] | None = "contacts_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_callbacks = sa.table(
    "contact_callbacks", sa.column("contact_id", sa.Uuid()), sa.column("callback_id", sa.Text())
)
_events = sa.table(
    "events",
    sa.column("stream_id", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("type", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("contact_callbacks") as batch:
        batch.add_column(sa.Column("callback_id", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("team", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    pending = [row.contact_id for row in bind.execute(sa.select(_callbacks.c.contact_id))]
    for contact_id in pending:
        version = bind.execute(
            sa.select(sa.func.max(_events.c.version)).where(
                _events.c.stream_id == str(contact_id), _events.c.type == "contacts.DispositionRecorded"
            )
        ).scalar()
        if version is not None:
            bind.execute(
                _callbacks.update()
                .where(_callbacks.c.contact_id == contact_id)
                .values(callback_id=f"{contact_id}.{version}")
            )


def downgrade() -> None:
    with op.batch_alter_table("contact_callbacks") as batch:
        batch.drop_column("reminded_at")
        batch.drop_column("team")
        batch.drop_column("callback_id")
