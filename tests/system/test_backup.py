"""Backups of the embedded database: taken while writers run, pruned by age, restored by the CLI."""

from __future__ import annotations

import sqlite3
import stat
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from gateway.health import CheckFailed
from kernel.envelope import Envelope
from kernel.settings import Settings, load_settings
from kernel.store import EventStore, create_engine
from system.backup import (
    Backup,
    BackupError,
    MemoryBackupStatus,
    backup_health,
    list_backups,
    prune_backups,
    restore_backup,
    run_backups,
    take_backup,
    verify_backup,
)
from system.cli import app
from system.migrate import upgrade
from tests.support.servers import start_embedded


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


def migrated(tmp_path: Path, **overrides: object) -> Settings:
    settings = load_settings(data_dir=tmp_path / "data", **overrides)
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.embedded_database_url)
    upgrade(engine)
    store = EventStore(engine)
    with store.transaction() as conn:
        store.append(conn, "s-1", 0, [Envelope(type="t.Happened", stream_id="s-1", data={})])
    engine.dispose()
    return settings


def test_backups_are_private_verified_and_listed(tmp_path: Path) -> None:
    settings = migrated(tmp_path)
    taken = take_backup(settings)
    assert stat.S_IMODE(taken.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.backups_path.stat().st_mode) == 0o700
    checked = verify_backup(taken.path)
    assert (checked.events, checked.contacts) == (1, 0)

    runner = CliRunner()
    listed = runner.invoke(app, ["backup", "list", "--data-dir", str(settings.data_dir)])
    assert listed.exit_code == 0, listed.output
    assert str(taken.path) in listed.output
    verified = runner.invoke(app, ["backup", "verify", str(taken.path)])
    assert verified.exit_code == 0, verified.output
    assert "1 eventos, 0 contactos" in verified.output

    broken = settings.backups_path / "callmanager-20260101-000000.db"
    broken.write_bytes(taken.path.read_bytes()[:4096] + b"\0" * 4096)
    refused = runner.invoke(app, ["backup", "verify", str(broken)])
    assert refused.exit_code == 1


def test_retention_keeps_the_newest_by_count_and_by_age(tmp_path: Path) -> None:
    settings = migrated(tmp_path, backup_keep_days=30, backup_keep_count=3)
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    for hours in (100 * 24, 5, 4, 3, 2, 1):
        take_backup(settings, now - timedelta(hours=hours))
    removed = prune_backups(settings, now)
    assert len(removed) == 3
    assert [b.taken_at for b in list_backups(settings)] == [now - timedelta(hours=h) for h in (1, 2, 3)]


def test_backup_loop_takes_one_at_start_and_reports_a_failure(tmp_path: Path) -> None:
    settings = migrated(tmp_path, backup_interval_minutes=60)
    status = MemoryBackupStatus()
    stop = threading.Event()
    stop.set()  # the loop still takes its first backup before looking at stop
    run_backups(settings, stop, status)
    state = status.read()
    assert state.last_good_at is not None
    assert not state.failing
    assert backup_health(status)()["last_good_at"] == state.last_good_at.isoformat()

    def failing(_: Settings) -> Backup:
        raise BackupError("disco lleno")

    run_backups(settings, stop, status, take=failing)
    assert status.read().failing
    with pytest.raises(CheckFailed) as failure:
        backup_health(status)()
    assert failure.value.details["last_error"] == "disco lleno"
    assert failure.value.details["last_good_at"] == state.last_good_at.isoformat()


def test_up_backs_up_at_start_and_shows_it_in_health_and_metrics(tmp_path: Path) -> None:
    server = start_embedded(tmp_path)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            backup = httpx.get(f"{server.base_url}/health").json()["checks"]["backup"]
            if backup["last_good_at"]:
                break
            time.sleep(0.2)
        assert backup["ok"] is True
        copies = list((server.data_dir / "backups").glob("callmanager-*.db"))
        assert len(copies) == 1
        assert stat.S_IMODE(copies[0].stat().st_mode) == 0o600
        key = server.create_user("tomas", "TI")
        with server.client(key) as http:
            text = http.get("/metrics").text
        line = next(x for x in text.splitlines() if x.startswith("callmanager_backup_last_success_timestamp"))
        taken = datetime.fromisoformat(backup["last_good_at"])
        assert float(line.split()[-1]) == pytest.approx(taken.timestamp())
        assert "callmanager_backup_failing 0.0" in text
    finally:
        server.process.stop()


def test_a_failing_backup_is_logged_and_shown_in_health(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the backup folder should be")
    server = start_embedded(tmp_path, CALLMANAGER_BACKUP_DIR=str(blocked))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            response = httpx.get(f"{server.base_url}/health")
            if not response.json()["checks"]["backup"]["ok"]:
                break
            time.sleep(0.2)
        body = response.json()
        assert response.status_code == 200
        assert body["status"] == "degraded"
        assert body["failing"] == ["backup"]
        assert body["checks"]["backup"]["last_error"]
        assert body["checks"]["backup"]["last_good_at"] is None
    finally:
        logged = server.process.stop()
    assert "backup.failed" in logged
    assert "error" in logged.lower()
