"""The schema comes from Alembic migrations, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from kernel.store import create_engine
from kernel.store.schema import metadata
from system.migrate import applied_revisions, current_revisions, known_revisions, upgrade, version_locations


def _schema_snapshot(engine: sa.Engine) -> dict[str, list[str]]:
    inspector = sa.inspect(engine)
    return {
        table: sorted(c["name"] for c in inspector.get_columns(table))
        + sorted(str(u["name"]) for u in inspector.get_unique_constraints(table))
        for table in inspector.get_table_names()
    }


def test_migrating_twice_changes_nothing(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        upgrade(engine)
        first = _schema_snapshot(engine)
        revisions = current_revisions(engine)
        upgrade(engine)
        assert _schema_snapshot(engine) == first
        assert current_revisions(engine) == revisions
        assert "kernel_0001" in applied_revisions(engine)
        assert applied_revisions(engine) == known_revisions()
        assert {"events", "positions", "alembic_version"} <= set(first)
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_tables_the_store_queries(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
        kernel_tables = {t.name for t in metadata.sorted_tables}
        ours = [d for d in differences if _table_of(d) in kernel_tables]
        assert ours == []
    finally:
        engine.dispose()


def test_migrations_accept_a_url(sqlite_url: str) -> None:
    assert applied_revisions(sqlite_url) == set()

    upgrade(sqlite_url)

    assert "kernel_0001" in applied_revisions(sqlite_url)
    assert applied_revisions(sqlite_url) == known_revisions()


def test_migration_bookkeeping_stays_in_the_connections_schema(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
            placed = dict(
                conn.execute(
                    sa.text(
                        "SELECT table_name, table_schema FROM information_schema.tables "
                        "WHERE table_name IN ('alembic_version', 'events', 'positions')"
                        " AND table_schema = :schema"
                    ),
                    {"schema": schema},
                ).all()
            )
        assert placed == {"alembic_version": schema, "events": schema, "positions": schema}
    finally:
        engine.dispose()


def test_kernel_versions_are_found_and_missing_services_are_skipped() -> None:
    folders = version_locations(("kernel.store", "no_such_service", "kernel.envelope"))
    assert [f.parts[-3:] for f in folders] == [("kernel", "store", "migrations")]


def _table_of(difference: object) -> str | None:
    """The table a difference reported by ``compare_metadata`` is about."""
    if isinstance(difference, list):
        return _table_of(difference[0]) if difference else None
    assert isinstance(difference, tuple)
    for item in difference[1:]:
        if isinstance(item, sa.Table):
            return item.name
        if isinstance(item, sa.Column | sa.Index | sa.UniqueConstraint) and item.table is not None:
            return str(item.table.name)
        if isinstance(item, str):
            return item if item != "" else None
    return None


def test_stream_ids_compare_byte_by_byte_on_postgres(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            collation = conn.execute(
                sa.text(
                    "SELECT collation_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'events' "
                    "AND column_name = 'stream_id'"
                )
            ).scalar_one()
        assert collation == "C"
    finally:
        engine.dispose()
