"""Backups of the embedded database: taken while writers run, pruned by age, restored by the CLI."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kernel.envelope import Envelope
from kernel.settings import load_settings
from kernel.store import EventStore, create_engine
from system.backup import BackupError, list_backups, prune_backups, restore_backup, take_backup
from system.cli import app
from system.migrate import upgrade


def event_count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        count = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    conn.close()
    return count


def test_backup_taken_while_writing_is_consistent_and_restores(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.embedded_database_url)
    upgrade(engine)
    store = EventStore(engine)
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            with store.transaction() as conn:
                store.append(
                    conn, f"s-{n}", 0, [Envelope(type="t.Happened", stream_id=f"s-{n}", data={"n": n})]
                )
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        backup = take_backup(settings)
    finally:
        stop.set()
        writer.join()
    engine.dispose()
    with sqlite3.connect(backup.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    in_backup = event_count(backup.path)
    assert event_count(settings.sqlite_path) >= in_backup

    result = CliRunner().invoke(
        app,
        ["restore", str(backup.path), "--data-dir", str(settings.data_dir), "--yes"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert event_count(settings.sqlite_path) == in_backup


def test_old_backups_are_pruned_but_the_newest_is_kept(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", backup_keep_days=7)
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.embedded_database_url)
    upgrade(engine)
    engine.dispose()
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    for days in (30, 10, 1):
        take_backup(settings, now - timedelta(days=days))
    removed = prune_backups(settings, now)
    assert len(removed) == 2
    assert [b.taken_at for b in list_backups(settings)] == [now - timedelta(days=1)]
    assert prune_backups(settings, now + timedelta(days=365)) == []


def test_restore_refuses_a_file_that_is_not_a_backup(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"not a database at all")
    with pytest.raises(BackupError):
        restore_backup(settings, bogus)


def test_backup_of_a_postgresql_system_says_to_use_its_tools(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, database_url="postgresql+psycopg://x@127.0.0.1/db")
    with pytest.raises(BackupError, match="pg_dump"):
        take_backup(settings)
