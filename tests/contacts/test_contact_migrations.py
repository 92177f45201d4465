"""The contacts read model comes from its own Alembic branch and matches the tables the code queries."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from contacts.schema import SEARCH_INDEX, metadata
from system.migrate import current_revisions, upgrade

_OURS = {"contacts", "contact_locks"}


def _about_contacts(difference: object) -> bool:
    if isinstance(difference, list):
        return any(_about_contacts(d) for d in difference)
    assert isinstance(difference, tuple)
    for item in difference[1:]:
        if isinstance(item, sa.Table):
            return item.name in _OURS
        if isinstance(item, sa.Column | sa.Index | sa.UniqueConstraint) and item.table is not None:
            return str(item.table.name) in _OURS
        if isinstance(item, str):
            return item in _OURS
    return False


def test_contacts_branch_is_applied_once(engine: Engine) -> None:
    upgrade(engine)

    assert "contacts_0001" in current_revisions(engine)


def test_migrated_read_model_matches_the_schema_module(engine: Engine) -> None:
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)

    ours = [d for d in differences if _about_contacts(d)]
    if engine.dialect.name == "sqlite":
        ours = [d for d in ours if not (d[0] == "add_index" and d[1].name == SEARCH_INDEX)]
    assert ours == []


def test_indexes_for_lists_lookups_locks_and_search(engine: Engine) -> None:
    indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(engine).get_indexes("contacts")}

    assert indexes["ix_contacts_order"] == ["status_priority", "age_key", "id"]
    assert indexes["ix_contacts_list_order"] == ["list", "status_priority", "age_key", "id"]
    lock_indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(engine).get_indexes("contact_locks")}
    assert lock_indexes["ix_contact_locks_until"] == ["locked_until", "id"]
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            definition = conn.execute(
                sa.text(
                    "SELECT indexdef FROM pg_indexes"
                    " WHERE indexname = :name AND schemaname = current_schema()"
                ),
                {"name": SEARCH_INDEX},
            ).scalar_one()
        assert "gin" in definition
        assert "gin_trgm_ops" in definition
