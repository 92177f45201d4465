"""One contract for the contacts read model's dialects: the same operations on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from contacts.dialect import (
    COLUMNS,
    PostgresReadModel,
    ReadModelDialect,
    SqliteReadModel,
    read_model_dialect,
)
from contacts.domain import contact_id_for_phone
from contacts.projection import search_text
from contacts.schema import contacts
from kernel.store import store_dialect, write_transaction

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def dialect(engine: Engine) -> ReadModelDialect:
    return read_model_dialect(store_dialect(engine))


def _row(n: int, name: str = "") -> tuple[object, ...]:
    e164 = f"+50688{n:06d}"
    values = {
        "id": contact_id_for_phone(e164),
        "phone": f"88{n:06d}",
        "phone_e164": e164,
        "phone_national": f"88{n:02d}-{n:04d}",
        "name": name or f"Cliente {n}",
        "status": "NC",
        "status_priority": 1,
        "note": "",
        "email": "",
        "extra": {"n": str(n)},
        "list": "lista",
        "operator": "",
        "locked_by": None,
        "locked_by_name": None,
        "locked_until": None,
        "last_contacted_at": None,
        "created_at": AT,
        "updated_at": AT,
        "age_key": AT,
        "search": search_text(name or f"Cliente {n}", e164),
        "version": 1,
    }
    return tuple(values[name] for name in COLUMNS)


def _insert(engine: Engine, dialect: ReadModelDialect, rows: list[tuple[object, ...]]) -> None:
    with write_transaction(engine, dialect.store) as conn:
        dialect.insert_rows(conn, rows)


def test_the_read_model_dialect_matches_the_event_stores(engine: Engine, dialect: ReadModelDialect) -> None:
    expected = {"sqlite": SqliteReadModel, "postgresql": PostgresReadModel}[engine.dialect.name]
    assert isinstance(dialect, expected)
    assert isinstance(read_model_dialect(engine), expected)
    assert dialect.store.name == engine.dialect.name


@pytest.mark.parametrize("count", [3, 450])  # below and above PostgreSQL's COPY threshold
def test_inserted_rows_are_found_by_id_and_by_text(
    engine: Engine, dialect: ReadModelDialect, count: int
) -> None:
    _insert(engine, dialect, [_row(n, "Ñandú Pérez" if n == 2 else "") for n in range(1, count + 1)])

    wanted = [contact_id_for_phone(f"+50688{n:06d}") for n in (1, 2, count)]
    with engine.connect() as conn:
        found = conn.execute(sa.select(contacts.c.phone).where(dialect.ids_match(wanted))).scalars().all()
        named = conn.execute(sa.select(contacts.c.name).where(contacts.c.search.like("%nandu%"))).scalars()
        extra = conn.execute(sa.select(contacts.c.extra).where(contacts.c.phone == "88000001")).scalar_one()
        total = conn.execute(sa.select(sa.func.count()).select_from(contacts)).scalar_one()

    assert sorted(found) == sorted({"88000001", "88000002", f"88{count:06d}"})
    assert list(named) == ["Ñandú Pérez"]
    assert extra == {"n": "1"}
    assert total == count


def test_a_bulk_between_prepare_and_settle_leaves_every_row_searchable(
    engine: Engine, dialect: ReadModelDialect
) -> None:
    with dialect.upkeep(engine, merge_every=0.01):
        for start in (1, 301):
            with write_transaction(engine, dialect.store) as conn:
                dialect.prepare_bulk(conn)
                dialect.insert_rows(conn, [_row(n) for n in range(start, start + 300)])

    with engine.connect() as conn:
        query = sa.select(contacts.c.phone).where(contacts.c.search.like("%cliente 577%"))
        assert conn.execute(query).scalars().all() == ["88000577"]


def test_clearing_empties_the_read_model(engine: Engine, dialect: ReadModelDialect) -> None:
    _insert(engine, dialect, [_row(n) for n in range(1, 5)])

    with write_transaction(engine, dialect.store) as conn:
        dialect.clear(conn)

    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(contacts)).scalar_one() == 0


def test_ids_that_are_not_uuids_never_reach_postgresql(dialect: ReadModelDialect) -> None:
    if isinstance(dialect, SqliteReadModel):
        pytest.skip("SQLite binds the ids as one JSON value")
    with pytest.raises(ValueError, match="uuids"):
        dialect.ids_match(["8c1f0000-0000-0000-0000-000000000000}", '{"x'])
