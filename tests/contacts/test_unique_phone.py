"""The read model's unique index on the E.164 phone (migration contacts_0009), on SQLite and PostgreSQL.

Row ids are the uuid5 of the phone, so only a row whose id was derived otherwise can share a phone: such a
"rogue" row is planted here by hand. A write that would give its phone to a second row is refused as
:class:`~contacts.errors.DuplicatePhone` (a typed 409) and leaves nothing behind, in one command and in a
bulk batch (PostgreSQL's ``COPY`` included); the migration runs on a database that already has contacts,
and stops, naming the phones, on one whose rows already share a phone.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from contacts_support import ANA, LAURA, create_contact
from sqlalchemy.engine import Engine

from contacts.commands import ImportRow
from contacts.domain import ContactState, contact_id_for_phone
from contacts.errors import Conflict, DuplicatePhone
from contacts.handlers import ContactsService
from contacts.projection import row_of
from contacts.schema import PHONE_INDEX, contacts
from contacts.views import error_from_data, error_to_data
from kernel.store import EventStore
from system.migrate import alembic_config, current_revisions, upgrade

_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _state(phone_e164: str, contact_id: str | None = None, name: str = "") -> ContactState:
    national = phone_e164.removeprefix("+506")
    return ContactState(
        contact_id=contact_id or contact_id_for_phone(phone_e164),
        phone=f"{national[:4]}-{national[4:]}",
        phone_e164=phone_e164,
        name=name,
        created_at=_NOW,
        updated_at=_NOW,
        version=1,
    )


def _plant_rogue_row(engine: Engine, phone_e164: str) -> str:
    """A row holding ``phone_e164`` under an id not derived from it (what the index guards against)."""
    rogue = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(contacts.insert(), [row_of(_state(phone_e164, rogue, "Fila huérfana"))])
    return rogue


def _rows_with(engine: Engine, phone_e164: str) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(contacts).where(contacts.c.phone_e164 == phone_e164)
        return int(conn.execute(query).scalar_one())


def _import_row(number: int) -> ImportRow:
    national = f"88{number:06d}"
    return ImportRow(
        row=number + 2, e164=f"+506{national}", national=f"{national[:4]}-{national[4:]}", phone=national
    )


def test_the_read_model_has_a_unique_index_on_the_phone(engine: Engine) -> None:
    indexes = {ix["name"]: ix for ix in sa.inspect(engine).get_indexes("contacts")}

    assert indexes[PHONE_INDEX]["column_names"] == ["phone_e164"]
    assert indexes[PHONE_INDEX]["unique"]
    assert "contacts_0010" in current_revisions(engine)


def test_a_second_row_with_a_phone_is_refused_as_a_typed_conflict_and_nothing_is_written(
    engine: Engine, service: ContactsService, store: EventStore
) -> None:
    _plant_rogue_row(engine, "+50688123456")

    with pytest.raises(DuplicatePhone) as refused:
        create_contact(service, ANA, "8812-3456", name="Ana")

    assert isinstance(refused.value, Conflict)  # the gateway answers 409 for every Conflict
    assert refused.value.code == "duplicate_phone"
    assert "Otro contacto ya tiene" in refused.value.message
    if engine.dialect.name == "postgresql":
        assert refused.value.phone == "+50688123456"
    assert _rows_with(engine, "+50688123456") == 1
    assert store.read_stream(contact_id_for_phone("+50688123456")) == [], "the events rolled back too"
    # Other phones are unaffected.
    assert create_contact(service, ANA, "8812-3457").phone_e164 == "+50688123457"


@pytest.mark.parametrize("rows", [10, 300], ids=["insert", "copy"])
def test_a_bulk_batch_giving_a_phone_to_a_second_row_is_refused_whole(
    engine: Engine, service: ContactsService, store: EventStore, rows: int
) -> None:
    """300 rows go through PostgreSQL's binary COPY (its driver's own error), 10 through INSERT."""
    batch = [_import_row(n) for n in range(rows)]
    _plant_rogue_row(engine, batch[rows // 2].e164)

    with pytest.raises(DuplicatePhone):
        service.create_or_merge(batch, "lista-doble", LAURA)

    assert _rows_with(engine, batch[0].e164) == 0, "the batch rolled back"
    assert store.read_stream(contact_id_for_phone(batch[0].e164)) == []


def test_the_refusal_crosses_the_internal_api_with_its_type() -> None:
    """Distributed, the contacts service sends the error as data and the gateway's client rebuilds it."""
    again = error_from_data(error_to_data(DuplicatePhone("+50688123456")))

    assert isinstance(again, DuplicatePhone)
    assert again.phone == "+50688123456"
    assert again.message == DuplicatePhone("+50688123456").message


def test_the_migration_adds_the_index_to_a_database_that_has_contacts(database_url: str) -> None:
    from kernel.store import create_engine

    engine = create_engine(database_url)
    try:
        _migrate_to_0008(engine)
        states = [_state(f"+5068800{n:04d}", name=f"Cliente {n}") for n in range(50)]
        with engine.begin() as conn:
            conn.execute(contacts.insert(), [row_of(s) for s in states])

        upgrade(engine)

        assert "contacts_0010" in current_revisions(engine)
        with engine.connect() as conn:
            kept = conn.execute(sa.select(contacts.c.id, contacts.c.name).order_by(contacts.c.name)).all()
        assert sorted((str(i), n) for i, n in kept) == sorted((s.contact_id, s.name) for s in states)
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(contacts.insert(), [row_of(_state(states[0].phone_e164, str(uuid.uuid4())))])
    finally:
        engine.dispose()


def test_the_migration_stops_on_rows_that_already_share_a_phone_and_changes_nothing(
    database_url: str,
) -> None:
    from kernel.store import create_engine

    engine = create_engine(database_url)
    try:
        _migrate_to_0008(engine)
        with engine.begin() as conn:
            conn.execute(contacts.insert(), [row_of(_state("+50688000001"))])
        _plant_rogue_row(engine, "+50688000001")

        with pytest.raises(RuntimeError, match=r"\+50688000001.*rebuild-contacts"):
            upgrade(engine)

        assert "contacts_0008" in current_revisions(engine)
        names = {ix["name"] for ix in sa.inspect(engine).get_indexes("contacts")}
        assert PHONE_INDEX not in names
        assert _rows_with(engine, "+50688000001") == 2
    finally:
        engine.dispose()


def _migrate_to_0008(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "contacts@contacts_0008")
    assert "contacts_0008" in current_revisions(engine)
