"""The contacts read model comes from its own Alembic branch and matches the tables the code queries."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from contacts.schema import SEARCH_INDEX, metadata
from system.migrate import current_revisions, upgrade

_OURS = {
    "contacts",
    "contact_locks",
    "contact_calls",
    "dnc_numbers",
    "dnc_changes",
    "contact_callbacks",
    "campaigns",
}


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

    assert "contacts_0010" in current_revisions(engine)


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
    assert indexes["ix_contacts_queue"] == ["status_priority", "age_key", "id"]
    lock_indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(engine).get_indexes("contact_locks")}
    assert lock_indexes["ix_contact_locks_until"] == ["locked_until", "id"]
    inspector = sa.inspect(engine)
    call_indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("contact_calls")}
    assert call_indexes["ix_contact_calls_placed"] == ["placed_at"]
    assert call_indexes["ix_contact_calls_user"] == ["user_id", "placed_at"]
    assert inspector.get_pk_constraint("contact_calls")["constrained_columns"] == ["call_id", "contact_id"]
    assert call_indexes["ix_contact_calls_contact_placed"] == ["contact_id", "placed_at"]
    list_indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("contact_lists")}
    assert list_indexes["ix_contact_lists_list"] == ["list_name", "contact_id"]
    assert inspector.get_pk_constraint("contact_lists")["constrained_columns"] == ["contact_id", "list_name"]
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
        with engine.connect() as conn:
            target = conn.execute(
                sa.text(
                    "SELECT attstattarget FROM pg_attribute"
                    " WHERE attrelid = CAST('contacts' AS regclass) AND attname = 'search'"
                )
            ).scalar_one()
        assert target == 1000  # stable plans for text search (migration contacts_0005)


def test_sqlite_search_index_is_filled_for_contacts_made_before_it(sqlite_url: str) -> None:
    from datetime import UTC, datetime

    from alembic import command

    from contacts.domain import ContactState, contact_id_for_phone
    from contacts.projection import row_of
    from contacts.queries import ContactQueries
    from contacts.schema import contacts
    from contacts.views import ContactFilters
    from kernel.store import create_engine
    from system.migrate import alembic_config

    engine = create_engine(sqlite_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "contacts@contacts_0001")
        now = datetime(2026, 3, 2, tzinfo=UTC)
        older = ContactState(
            contact_id=contact_id_for_phone("+50688000001"),
            phone="8800-0001",
            phone_e164="+50688000001",
            name="Rodolfo Matarrita",
            created_at=now,
            updated_at=now,
            version=1,
        )
        with engine.begin() as conn:
            conn.execute(contacts.insert(), [row_of(older)])

        upgrade(engine)

        found = ContactQueries(engine).list_contacts(ContactFilters(q="matarrita")).items
        assert [c.id for c in found] == [older.contact_id]
    finally:
        engine.dispose()
