"""Backups of the embedded database: consistent while the system runs, kept for a number of days.

SQLite's online backup API copies a consistent snapshot page by page while writers go on, so a backup
never needs the server stopped. In distributed mode PostgreSQL is backed up with its own tools
(``pg_dump``, base backups); these commands say so instead of pretending.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from kernel.settings import Settings
from system.ownership import FolderInUse, hold_folder

log = structlog.get_logger(__name__)

_NAME = re.compile(r"^callmanager-(\d{8}-\d{6})\.db$")


class BackupError(RuntimeError):
    """A backup or restore that cannot be done, with a message for the operator."""


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    taken_at: datetime
    size: int


def _check_embedded(settings: Settings) -> None:
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        raise BackupError(
            "La base de datos es PostgreSQL: use pg_dump o las copias de seguridad del servidor "
            "de base de datos."
        )


def take_backup(settings: Settings, now: datetime | None = None) -> Backup:
    """Copy the embedded database to ``<backup dir>/callmanager-YYYYMMDD-HHMMSS.db`` while it is in use."""
    _check_embedded(settings)
    source = settings.sqlite_path
    if not source.exists():
        raise BackupError(f"No existe la base de datos {source}")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    folder = settings.backups_path
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"callmanager-{moment:%Y%m%d-%H%M%S}.db"
    partial = target.with_suffix(".partial")
    with sqlite3.connect(source, timeout=30) as src, sqlite3.connect(partial) as dst:
        src.backup(dst, pages=4096)
    src.close()
    dst.close()
    partial.replace(target)
    log.info("backup.taken", path=str(target), bytes=target.stat().st_size)
    return Backup(target, moment, target.stat().st_size)


def list_backups(settings: Settings) -> list[Backup]:
    """Backups in the backup folder, newest first."""
    folder = settings.backups_path
    if not folder.exists():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            taken = datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
            found.append(Backup(path, taken, path.stat().st_size))
    return sorted(found, key=lambda b: b.taken_at, reverse=True)


def prune_backups(settings: Settings, now: datetime | None = None) -> list[Path]:
    """Delete backups older than ``BACKUP_KEEP_DAYS`` (the newest one is always kept)."""
    moment = now or datetime.now(UTC)
    limit = moment - timedelta(days=settings.backup_keep_days)
    backups = list_backups(settings)
    removed = []
    for backup in backups[1:]:
        if backup.taken_at < limit:
            backup.path.unlink()
            removed.append(backup.path)
    return removed


def restore_backup(settings: Settings, backup: Path, now: datetime | None = None) -> Path | None:
    """Put ``backup`` in place of the embedded database; the current one is renamed aside and returned.

    Refused while any process holds the data folder (``callmanager up``). None when there was no database.
    """
    _check_embedded(settings)
    if not backup.exists():
        raise BackupError(f"No existe la copia {backup}")
    _check_sqlite_copy(backup)
    try:
        owner = hold_folder(settings.data_dir)
    except FolderInUse as exc:
        raise BackupError(f"{exc} Deténgalo antes de restaurar.") from exc
    with owner:
        target = settings.sqlite_path
        target.parent.mkdir(parents=True, exist_ok=True)
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        previous: Path | None = None
        if target.exists():
            # Fold the write-ahead log into the file so the renamed copy is whole on its own.
            with sqlite3.connect(target, timeout=5) as live:
                live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            live.close()
            previous = target.with_name(f"{target.name}.before-restore-{moment:%Y%m%d-%H%M%S}")
            target.replace(previous)
        for suffix in ("-wal", "-shm"):
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        partial = target.with_name(target.name + ".restoring")
        partial.unlink(missing_ok=True)
        with sqlite3.connect(backup) as src, sqlite3.connect(partial) as dst:
            src.backup(dst)
        src.close()
        dst.close()
        partial.replace(target)
    log.info("backup.restored", source=str(backup), previous=str(previous) if previous else None)
    return previous


def _check_sqlite_copy(backup: Path) -> None:
    try:
        with sqlite3.connect(f"file:{backup}?mode=ro", uri=True) as check:
            result = check.execute("PRAGMA integrity_check").fetchone()
            tables = {row[0] for row in check.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        check.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{backup} no es una copia válida de CallManager") from exc
    if result is None or result[0] != "ok" or "events" not in tables:
        raise BackupError(f"{backup} no es una copia válida de CallManager")


def run_backups(settings: Settings, stop: threading.Event) -> None:
    """Take a backup every ``BACKUP_INTERVAL_MINUTES`` and prune old ones, until ``stop`` is set."""
    interval = settings.backup_interval_minutes * 60
    if interval <= 0:
        return
    while not stop.wait(interval):
        try:
            take_backup(settings)
            prune_backups(settings)
        except Exception:
            log.exception("backup.failed")
