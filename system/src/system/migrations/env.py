"""Alembic environment: runs on the connection :func:`system.migrate.upgrade` passes in.

Run by Alembic itself (``alembic`` executes this file for every command). Without a connection in
``config.attributes`` it opens one on ``sqlalchemy.url``; offline mode prints the SQL instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from kernel.store import create_engine


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=None,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline(url: str) -> None:
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url to migrate")
    if context.is_offline_mode():
        _run_offline(url)
        return
    engine = create_engine(url)
    try:
        with engine.connect() as own:
            _run_on(own)
    finally:
        engine.dispose()


_run()
