"""The gateway's tables come from its own Alembic branch and match what the code queries."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.schema import metadata
from system.migrate import current_revisions, upgrade


def test_migrated_gateway_tables_match_the_schema_module(any_engine: sa.Engine) -> None:
    assert "gateway_0002" in current_revisions(any_engine)
    with any_engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = {t.name for t in metadata.sorted_tables}
    assert [d for d in differences if _mentions(d, ours)] == []


def test_migrating_again_changes_nothing(any_engine: sa.Engine) -> None:
    before = current_revisions(any_engine)
    upgrade(any_engine)
    assert current_revisions(any_engine) == before
    assert {"users", "api_keys", "audit_log"} <= set(sa.inspect(any_engine).get_table_names())


def _mentions(difference: object, tables: set[str]) -> bool:
    if isinstance(difference, list):
        return any(_mentions(d, tables) for d in difference)
    assert isinstance(difference, tuple)
    for item in difference[1:]:
        if isinstance(item, sa.Table) and item.name in tables:
            return True
        if isinstance(item, sa.Column | sa.Index | sa.UniqueConstraint | sa.ForeignKeyConstraint):
            table = item.table
            if table is not None and table.name in tables:
                return True
        if isinstance(item, str) and item in tables:
            return True
    return False
