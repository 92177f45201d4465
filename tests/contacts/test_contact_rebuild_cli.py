"""``callmanager rebuild-contacts`` repairs the embedded read model from the event store."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from contacts_support import ANA, LAURA, FakeClock, create_contact
from typer.testing import CliRunner

from contacts.commands import ImportRow
from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.schema import contacts
from kernel.settings import load_settings
from kernel.store import EventStore, create_engine
from system.cli import app
from system.migrate import upgrade


def test_the_rebuild_command_restores_a_damaged_read_model(tmp_path: Path, clock: FakeClock) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.embedded_database_url)
    upgrade(engine)
    service = ContactsService(engine, EventStore(engine), LockPolicy(), clock=clock)
    service.create_or_merge(
        [ImportRow(row=n, e164=f"+50688{n:06d}", name=f"C {n}") for n in range(20)], "l", LAURA
    )
    create_contact(service, ANA, "8812-3456", name="José")
    with engine.connect() as conn:
        before = sorted(tuple(row) for row in conn.execute(sa.select(contacts)))
    with engine.begin() as conn:
        conn.execute(contacts.delete().where(contacts.c.name == "José"))
        conn.execute(contacts.update().values(name="roto"))
    engine.dispose()

    result = CliRunner().invoke(app, ["rebuild-contacts", "--data-dir", str(settings.data_dir)])

    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        assert sorted(tuple(row) for row in conn.execute(sa.select(contacts))) == before
    engine.dispose()
