"""Backups of a running system while agents write, restored into an empty one and compared row by row.

Both modes: `callmanager up` on SQLite, and the distributed services on a PostgreSQL database of their own
with `callmanager serve backup` beside them. A copy taken during writes must hold an exact prefix of the
event store and a read model that `rebuild-contacts` reproduces; a copy of a quiet system must restore to
exactly the same rows in every table.
"""

from __future__ import annotations

import hashlib
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa
from typer.testing import CliRunner

from gateway.users import UserDirectory
from kernel.settings import Settings
from kernel.store import create_engine
from system.backup import list_backups
from system.cli import app
from system.migrate import upgrade
from tests.support.servers import Process, clean_env, free_port, start, start_embedded, wait_healthy

Snapshot = dict[str, tuple[int, str]]


def snapshot(url: str, only: str | None = None, up_to: int | None = None) -> Snapshot:
    """Every table's row count and a SHA-256 of its sorted rows (or only ``only``'s, up to a position)."""
    engine = create_engine(url)
    try:
        tables = sorted(sa.inspect(engine).get_table_names())
        found: Snapshot = {}
        with engine.connect() as conn:
            for table in tables:
                if only is not None and table != only:
                    continue
                query = f'SELECT * FROM "{table}"'
                if up_to is not None:
                    query += f" WHERE position <= {int(up_to)}"
                rows = sorted(repr(tuple(row)) for row in conn.execute(sa.text(query)))
                found[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    finally:
        engine.dispose()
    return found


def last_position(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT coalesce(max(position), 0) FROM events")).scalar_one())
    finally:
        engine.dispose()


class Agents:
    """Agents creating and editing contacts through the gateway from a thread until stopped."""

    def __init__(self, base_url: str, key: str) -> None:
        self.written = 0
        self._stop = threading.Event()
        self._http = httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=30.0)
        self._thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            created = self._http.post("/contacts", json={"phone": f"88{n:06d}", "name": f"Cliente {n}"})
            if created.status_code == 201:
                self.written += 1
                if n % 3 == 0:
                    contact = created.json()["id"]
                    if self._http.put(f"/contacts/{contact}", json={"note": f"nota {n}"}).status_code == 200:
                        self.written += 1

    def __enter__(self) -> Agents:
        self._thread.start()
        deadline = time.monotonic() + 30
        while self.written < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.written >= 20, "the agents could not write"
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._http.close()


def back_up_during_writes(events_in: Callable[[], int], take: Callable[[], Path]) -> Path:
    """Take backups until one was taken while events were being committed; return it."""
    for _ in range(40):
        before = events_in()
        copy = take()
        after = events_in()
        if after > before:
            return copy
    raise AssertionError("no backup overlapped a write")


def invoke(args: list[str], **env: str) -> str:
    result = CliRunner().invoke(app, args, env=env or None, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_embedded_backup_during_writes_restores_exactly(tmp_path: Path) -> None:
    server = start_embedded(tmp_path, CALLMANAGER_RATE_LIMIT="100000/minute")
    live = f"sqlite:///{server.data_dir / 'callmanager.db'}"
    try:
        key = server.create_user("ana", "Agent")
        with Agents(server.base_url, key):

            def take() -> Path:
                invoke(["backup", "--data-dir", str(server.data_dir)])
                return newest(server.data_dir / "backups")

            copy = back_up_during_writes(lambda: last_position(live), take)
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    finally:
        server.process.stop()

    restored_dir = tmp_path / "restored"
    invoke(["restore", str(copy), "--data-dir", str(restored_dir), "--yes"])
    restored = f"sqlite:///{restored_dir / 'callmanager.db'}"
    expected = snapshot(f"sqlite:///{copy}")
    assert snapshot(restored) == expected
    assert expected["events"][0] > 0
    assert expected["contacts"][0] > 0
    # The copy holds every event up to its last one, exactly as the live system stored them.
    upto = last_position(restored)
    assert snapshot(live, "events", upto) == snapshot(restored, "events")
    assert last_position(live) > upto

    invoke(["rebuild-contacts", "--data-dir", str(restored_dir)])
    rebuilt = snapshot(restored)
    assert without_fts_segments(rebuilt) == without_fts_segments(expected)


FTS_SEGMENTS = {"contacts_search_data", "contacts_search_idx"}
"""SQLite FTS5's b-tree segments: their layout follows the order of writes (one by one live, in bulk by a
rebuild); the indexed text itself is compared through ``contacts_search`` and its other tables."""


def without_fts_segments(tables: Snapshot) -> Snapshot:
    return {name: value for name, value in tables.items() if name not in FTS_SEGMENTS}


def newest(folder: Path) -> Path:
    """The newest backup in ``folder``."""
    return list_backups(Settings(backup_dir=folder))[0].path


def agent_key(url: str) -> str:
    """An agent's key in the database ``url`` (as `callmanager users create` makes one)."""
    engine = create_engine(url)
    try:
        _, issued = UserDirectory(engine).create_user("ana", "Agent")
    finally:
        engine.dispose()
    return issued.plaintext


@pytest.fixture
def new_database(postgres_server_url: str) -> Iterator[Callable[[], str]]:
    """Makes empty PostgreSQL databases of their own (pg_dump copies a whole database); drops them after."""
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"cm_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return sa.make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)

    try:
        yield make
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_distributed_backup_service_and_restore_into_an_empty_database(
    new_database: Callable[[], str], redis_url: str, tmp_path: Path
) -> None:
    source = new_database()
    engine = create_engine(source)
    upgrade(engine)
    engine.dispose()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    backups = tmp_path / "backups"
    contacts_url = f"http://127.0.0.1:{free_port()}"
    gateway_port = free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    settings = {
        "CALLMANAGER_DATABASE_URL": source,
        "CALLMANAGER_REDIS_URL": redis_url,
        "CALLMANAGER_BUS_PREFIX": prefix,
        "CALLMANAGER_BACKUP_DIR": str(backups),
        "CALLMANAGER_RATE_LIMIT": "100000/minute",
        "CALLMANAGER_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
    }
    env = clean_env(CALLMANAGER_CONTACTS_URL=contacts_url, CALLMANAGER_LOG_FORMAT="json", **settings)
    processes: list[Process] = []
    try:
        contacts = start(
            "contacts", ["serve", "contacts", "--port", contacts_url.rsplit(":", 1)[1]], env, tmp_path
        )
        processes.append(contacts)
        wait_healthy(contacts_url, contacts)
        gateway = start("gateway", ["serve", "gateway", "--port", str(gateway_port)], env, tmp_path)
        processes.append(gateway)
        wait_healthy(gateway_url, gateway)
        service = start("backup", ["serve", "backup"], env, tmp_path)
        processes.append(service)

        # The backup service dumps at start; every gateway shows it.
        deadline = time.monotonic() + 30
        health: dict[str, object] = {}
        while time.monotonic() < deadline:
            health = httpx.get(f"{gateway_url}/health").json()["checks"]["backup"]
            if health.get("last_good_at"):
                break
            time.sleep(0.2)
        assert health["ok"] is True, health
        assert health["last_good_at"], health
        first = next(backups.glob("callmanager-*.dump"))
        assert stat.S_IMODE(first.stat().st_mode) == 0o600
        assert "entradas" in invoke(["backup", "verify", str(first)])
        with Agents(gateway_url, agent_key(source)):

            def take() -> Path:
                invoke(["backup"], **settings)
                return newest(backups)

            during = back_up_during_writes(lambda: last_position(source), take)
    finally:
        for process in processes:
            log = process.stop()
            assert process.popen.returncode in (0, -15), f"{process.name}:\n{log[-3000:]}"
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()

    target = new_database()
    restore_env = {**settings, "CALLMANAGER_DATABASE_URL": target}
    invoke(["restore", str(during), "--yes"], **restore_env)
    refused = CliRunner().invoke(app, ["restore", str(during), "--yes"], env=restore_env)
    assert refused.exit_code == 1
    assert "no está vacía" in refused.output

    upto = last_position(target)
    assert upto > 0
    assert snapshot(source, "events", upto) == snapshot(target, "events")
    assert last_position(source) > upto
    restored = snapshot(target)
    assert restored["contacts"][0] > 0
    invoke(["rebuild-contacts"], **restore_env)
    assert snapshot(target) == restored

    # A copy of the quiet system restores to exactly the same rows in every table.
    invoke(["backup"], **settings)
    quiet = newest(backups)
    second = new_database()
    invoke(["restore", str(quiet), "--yes"], **{**settings, "CALLMANAGER_DATABASE_URL": second})
    assert snapshot(second) == snapshot(source)
