"""Backups in both modes: taken while the system runs, verified, kept by count and age, restored safely.

Embedded: SQLite's online backup API copies a consistent snapshot page by page while writers go on.
Distributed: ``pg_dump --format=custom`` (one repeatable-read snapshot) by the ``backup`` service, restored
with ``pg_restore`` into an empty database. Every copy is verified before it takes its final name, and is
readable only by its owner (0600). The outcome of the last attempt goes to a :class:`BackupStatus` that
``/health`` and ``/metrics`` read.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
import structlog
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.health import CheckFailed, HealthCheck
from kernel.settings import Settings
from system.ownership import FolderInUse, hold_folder

log = structlog.get_logger(__name__)

_NAME = re.compile(r"^callmanager-(\d{8}-\d{6})(?:-(\d+))?\.(db|dump)$")


class BackupError(RuntimeError):
    """A backup or restore that cannot be done, with a message for the operator."""


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    taken_at: datetime
    size: int


@dataclass(frozen=True, slots=True)
class Verification:
    """What opening a copy found: SQLite counts its events and contacts, a dump lists its entries."""

    path: Path
    events: int | None = None
    contacts: int | None = None
    entries: int | None = None

    def describe(self) -> str:
        if self.entries is not None:
            return f"pg_restore --list correcto, {self.entries:,} entradas"
        return f"integridad correcta, {self.events:,} eventos, {self.contacts:,} contactos"


@dataclass(frozen=True, slots=True)
class BackupState:
    """The last good backup and the last failure, as ``/health`` shows them."""

    last_good_at: datetime | None = None
    last_good_path: str | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    @property
    def failing(self) -> bool:
        """Whether the latest attempt failed."""
        if self.last_error_at is None:
            return False
        return self.last_good_at is None or self.last_error_at >= self.last_good_at


class BackupStatus(Protocol):
    """Where the backup loop records its outcome and the gateway reads it."""

    def record_success(self, backup: Backup) -> None: ...

    def record_failure(self, message: str, at: datetime) -> None: ...

    def read(self) -> BackupState: ...


class MemoryBackupStatus:
    """The status of the backups of this process (embedded mode)."""

    def __init__(self) -> None:
        self._state = BackupState()
        self._lock = threading.Lock()

    def record_success(self, backup: Backup) -> None:
        with self._lock:
            self._state = replace(self._state, last_good_at=backup.taken_at, last_good_path=str(backup.path))

    def record_failure(self, message: str, at: datetime) -> None:
        with self._lock:
            self._state = replace(self._state, last_error=message, last_error_at=at)

    def read(self) -> BackupState:
        with self._lock:
            return self._state


class RedisBackupStatus:
    """The status of the ``backup`` service, kept in one Redis hash that every gateway reads."""

    def __init__(self, client: Any, key: str) -> None:
        self._client = client
        self._key = key

    def record_success(self, backup: Backup) -> None:
        self._client.hset(
            self._key,
            mapping={"last_good_at": backup.taken_at.isoformat(), "last_good_path": str(backup.path)},
        )

    def record_failure(self, message: str, at: datetime) -> None:
        self._client.hset(self._key, mapping={"last_error": message, "last_error_at": at.isoformat()})

    def read(self) -> BackupState:
        raw = {k.decode(): v.decode() for k, v in self._client.hgetall(self._key).items()}

        def moment(name: str) -> datetime | None:
            return datetime.fromisoformat(raw[name]) if name in raw else None

        return BackupState(
            last_good_at=moment("last_good_at"),
            last_good_path=raw.get("last_good_path"),
            last_error=raw.get("last_error"),
            last_error_at=moment("last_error_at"),
        )


def status_key(settings: Settings) -> str:
    """The Redis key of the backup status of this deployment."""
    return f"{settings.bus_prefix}:backup:status"


def backup_health(status: BackupStatus) -> HealthCheck:
    """A ``/health`` check: the last good backup's time, failing while the latest attempt failed."""

    def check() -> Mapping[str, Any]:
        state = status.read()
        details: dict[str, Any] = {
            "last_good_at": state.last_good_at.isoformat() if state.last_good_at else None,
        }
        if state.failing:
            details["last_error"] = state.last_error
            details["last_error_at"] = state.last_error_at.isoformat() if state.last_error_at else None
            raise CheckFailed("la última copia de seguridad falló", details)
        return details

    return check


class BackupGauges(Collector):
    """Prometheus gauges of the backups, read from the status at each scrape."""

    def __init__(self, status: BackupStatus) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        state = self._status.read()
        good = GaugeMetricFamily(
            "callmanager_backup_last_success_timestamp_seconds",
            "Unix time of the last backup written and verified (0: none yet).",
            value=state.last_good_at.timestamp() if state.last_good_at else 0.0,
        )
        failing = GaugeMetricFamily(
            "callmanager_backup_failing",
            "1 while the latest backup attempt failed.",
            value=int(state.failing),
        )
        yield good
        yield failing


def is_postgresql(settings: Settings) -> bool:
    return bool(settings.database_url) and not str(settings.database_url).startswith("sqlite")


def _check_embedded(settings: Settings) -> None:
    if is_postgresql(settings):
        raise BackupError("La base de datos es PostgreSQL: esta operación es del modo embebido.")


def _target(folder: Path, moment: datetime, suffix: str) -> Path:
    base = f"callmanager-{moment:%Y%m%d-%H%M%S}"
    target = folder / f"{base}{suffix}"
    n = 1
    while target.exists():
        target = folder / f"{base}-{n}{suffix}"
        n += 1
    return target


def _private_file(path: Path) -> None:
    """Create ``path`` empty and readable only by its owner, before anything is written to it."""
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.chmod(path, 0o600)


def _backup_folder(settings: Settings) -> Path:
    folder = settings.backups_path
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def take_backup(settings: Settings, now: datetime | None = None) -> Backup:
    """Copy the database (SQLite or PostgreSQL) into the backup folder while it is in use, and verify it."""
    if is_postgresql(settings):
        return take_pg_backup(settings, now)
    source = settings.sqlite_path
    if not source.exists():
        raise BackupError(f"No existe la base de datos {source}")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    target = _target(_backup_folder(settings), moment, ".db")
    partial = target.with_suffix(".partial")
    _private_file(partial)
    try:
        with sqlite3.connect(source, timeout=30) as src, sqlite3.connect(partial) as dst:
            src.backup(dst, pages=4096)
        src.close()
        dst.close()
        verification = verify_backup(partial)
    except (sqlite3.Error, BackupError) as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"La copia de {source} falló: {exc}") from exc
    partial.replace(target)
    log.info("backup.taken", path=str(target), bytes=target.stat().st_size, verified=verification.describe())
    return Backup(target, moment, target.stat().st_size)


def verify_backup(path: Path) -> Verification:
    """Open a copy and check it: SQLite's integrity check and counts, or ``pg_restore --list`` of a dump."""
    if not path.exists():
        raise BackupError(f"No existe la copia {path}")
    with path.open("rb") as head:
        magic = head.read(5)
    if magic == b"PGDMP":
        return _verify_dump(path)
    _check_sqlite_copy(path)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        events = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        contacts = (
            int(conn.execute("SELECT count(*) FROM contacts").fetchone()[0]) if "contacts" in tables else 0
        )
    conn.close()
    return Verification(path, events=events, contacts=contacts)


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
            found.append((taken, int(match.group(2) or 0), Backup(path, taken, path.stat().st_size)))
    # Within one second, callmanager-…-1.db came after callmanager-….db.
    return [backup for _, _, backup in sorted(found, key=lambda f: (f[0], f[1]), reverse=True)]


def prune_backups(settings: Settings, now: datetime | None = None) -> list[Path]:
    """Delete backups older than ``BACKUP_KEEP_DAYS`` or past the newest ``BACKUP_KEEP_COUNT`` (0: no
    limit by count); the newest one is always kept."""
    moment = now or datetime.now(UTC)
    limit = moment - timedelta(days=settings.backup_keep_days)
    keep_count = settings.backup_keep_count or None
    removed = []
    for index, backup in enumerate(list_backups(settings)):
        if index == 0:
            continue
        if backup.taken_at < limit or (keep_count is not None and index >= keep_count):
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


def run_backups(
    settings: Settings,
    stop: threading.Event,
    status: BackupStatus,
    take: Callable[[Settings], Backup] = take_backup,
) -> None:
    """Take a backup now and then every ``BACKUP_INTERVAL_MINUTES``, pruning old ones, until ``stop``."""
    interval = settings.backup_interval_minutes * 60
    if interval <= 0:
        return
    while True:
        try:
            status.record_success(take(settings))
            prune_backups(settings)
        except Exception as exc:
            log.exception("backup.failed", error=str(exc))
            status.record_failure(str(exc) or type(exc).__name__, datetime.now(UTC))
        if stop.wait(interval):
            return


# --- PostgreSQL -------------------------------------------------------------------------------------


def _libpq_env(database_url: str) -> dict[str, str]:
    """The libpq environment naming the database of ``database_url`` (the password stays off argv)."""
    url = sa.engine.make_url(database_url)
    env = dict(os.environ)
    for name, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
        ("PGSSLMODE", url.query.get("sslmode")),
    ):
        if value is not None:
            env[name] = str(value)
    return env


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"No se encuentra {name}: instale las herramientas cliente de PostgreSQL.")
    return found


def _run(command: list[str], env: dict[str, str]) -> str:
    # The PostgreSQL tools by absolute path, arguments built here: nothing from a request reaches them.
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} falló: {result.stderr.strip()[-500:]}")
    return result.stdout


def take_pg_backup(settings: Settings, now: datetime | None = None) -> Backup:
    """``pg_dump --format=custom`` of the configured database into the backup folder, verified."""
    assert settings.database_url is not None
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    target = _target(_backup_folder(settings), moment, ".dump")
    partial = target.with_suffix(".partial")
    _private_file(partial)
    try:
        _run([_pg_tool("pg_dump"), "--format=custom", f"--file={partial}"], _libpq_env(settings.database_url))
        os.chmod(partial, 0o600)
        verification = _verify_dump(partial)
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    log.info("backup.taken", path=str(target), bytes=target.stat().st_size, verified=verification.describe())
    return Backup(target, moment, target.stat().st_size)


def _verify_dump(path: Path) -> Verification:
    listing = _run([_pg_tool("pg_restore"), "--list", str(path)], dict(os.environ))
    entries = [line for line in listing.splitlines() if line and not line.startswith(";")]
    if not any("TABLE DATA public events " in line for line in entries):
        raise BackupError(f"{path} no es una copia válida de CallManager (no tiene la tabla events)")
    return Verification(path, entries=len(entries))


def restore_pg_backup(settings: Settings, backup: Path) -> None:
    """``pg_restore`` a dump into the configured database, which must be empty (no table in any schema)."""
    assert settings.database_url is not None
    if not backup.exists():
        raise BackupError(f"No existe la copia {backup}")
    _verify_dump(backup)
    engine = sa.create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                sa.text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    database = sa.engine.make_url(settings.database_url).database
    if tables:
        raise BackupError(
            f"La base de datos {database} no está vacía ({tables} tablas): cree una vacía (createdb), "
            "apunte CALLMANAGER_DATABASE_URL a ella y restaure allí."
        )
    _run(
        [
            _pg_tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={database}",
            str(backup),
        ],
        _libpq_env(settings.database_url),
    )
    log.info("backup.restored", source=str(backup), database=database)
