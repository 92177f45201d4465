"""``callmanager dnc``: list, add, remove, import and export on a real data folder (SQLite) and on
PostgreSQL, each change audited with the CLI user; ``callmanager import`` then leaves listed rows out."""

from __future__ import annotations

import csv
import getpass
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from typer.testing import CliRunner, Result

from kernel.settings import Settings
from kernel.store import create_engine
from system.cli import app

Run = Callable[..., Result]


@pytest.fixture(params=["data-folder", "postgres"])
def run(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``callmanager`` in an empty directory: on the SQLite file of ``./var``, or on PostgreSQL."""
    for name, field in Settings.model_fields.items():
        for alias in getattr(field.validation_alias, "choices", [name]):
            monkeypatch.delenv(str(alias), raising=False)
    monkeypatch.chdir(tmp_path)
    if request.param == "postgres":
        monkeypatch.setenv("CALLMANAGER_DATABASE_URL", str(request.getfixturevalue("postgres_url")))
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        root = logging.getLogger()
        handlers, level, config = root.handlers[:], root.level, structlog.get_config()
        try:
            return runner.invoke(app, list(args))
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
            structlog.reset_defaults()
            structlog.configure(**config)

    return invoke


def _database(tmp_path: Path) -> sa.Engine:
    url = Settings().database_url or f"sqlite:///{tmp_path / 'var' / 'callmanager.db'}"
    return create_engine(url)


def _rows(engine: sa.Engine, query: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(query))]


def test_add_list_remove_and_every_change_audited_with_the_cli_user(run: Run, tmp_path: Path) -> None:
    cli_user = f"cli:{getpass.getuser()}"

    added = run("dnc", "add", "8850 0001", "--reason", "Pidió no ser llamado")
    again = run("dnc", "add", "+50688500002")
    listed = run("dnc", "list")
    removed = run("dnc", "remove", "8850-0002", "--reason", "error de captura")
    absent = run("dnc", "remove", "8850-0002")

    assert added.exit_code == 0, added.output
    assert "+50688500001" in added.output
    assert again.exit_code == 0
    assert listed.exit_code == 0
    assert "+50688500001" in listed.output
    assert "Pidió no ser llamado" in listed.output
    assert removed.exit_code == 0, removed.output
    assert absent.exit_code == 1
    assert "no está en la lista" in absent.output
    engine = _database(tmp_path)
    try:
        changes = _rows(engine, "SELECT phone_e164, action, reason, username FROM dnc_changes ORDER BY id")
        audit = _rows(engine, "SELECT method, path, action, username FROM audit_log ORDER BY id")
        numbers = _rows(engine, "SELECT phone_e164 FROM dnc_numbers")
    finally:
        engine.dispose()
    assert changes == [
        ("+50688500001", "added", "Pidió no ser llamado", cli_user),
        ("+50688500002", "added", "", cli_user),
        ("+50688500002", "removed", "error de captura", cli_user),
    ]
    assert audit == [
        ("CLI", "callmanager dnc add", "dnc.manage", cli_user),
        ("CLI", "callmanager dnc add", "dnc.manage", cli_user),
        ("CLI", "callmanager dnc remove", "dnc.manage", cli_user),
    ]
    assert numbers == [("+50688500001",)]


def test_import_a_file_export_it_and_a_contacts_import_leaves_listed_rows_out(
    run: Run, tmp_path: Path
) -> None:
    source = tmp_path / "no_llamar.csv"
    source.write_text(
        "Teléfono;Motivo\r\n8851-0001;abogado\r\n88510002;\r\nxx;malo\r\n8851-0001;otra\r\n", "utf-8"
    )
    contacts = tmp_path / "clientes.csv"
    contacts.write_text("Teléfono;Nombre\r\n8851-0001;Ana\r\n8851-0003;Beto\r\n", "utf-8")
    exported = tmp_path / "lista.csv"

    imported = run("dnc", "import", str(source), "--reason", "campaña de enero")
    twice = run("dnc", "import", str(source))
    written = run("dnc", "export", str(exported))
    contacts_import = run("import", str(contacts))

    assert imported.exit_code == 0, imported.output
    assert "2 añadidos" in imported.output
    assert "1 filas no válidas" in imported.output
    assert "1 repetidas" in imported.output
    assert "0 añadidos" in twice.output
    assert "2 ya estaban" in twice.output
    assert written.exit_code == 0, written.output
    with exported.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.reader(file, delimiter=";"))
    assert rows[0] == ["telefono", "motivo", "agregado_por", "agregado_el"]
    assert sorted((row[0], row[1]) for row in rows[1:]) == [
        ("8851-0001", "abogado"),
        ("8851-0002", "campaña de enero"),
    ]
    assert contacts_import.exit_code == 0, contacts_import.output
    assert "no llamar" in contacts_import.output
    engine = _database(tmp_path)
    try:
        saved = _rows(engine, "SELECT phone_e164 FROM contacts")
        audit = _rows(engine, "SELECT path FROM audit_log ORDER BY id")
    finally:
        engine.dispose()
    assert saved == [("+50688510003",)]
    assert audit == [("callmanager dnc import",), ("callmanager dnc import",), ("callmanager dnc export",)]
