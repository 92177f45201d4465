"""The distributed deployment as real processes, for the tests that run it end to end.

``run_cluster`` migrates the PostgreSQL schema, starts ``callmanager serve contacts``, one or more gateways
and the job workers asked for (``generator``, ``importexport``), all with one Redis key prefix of their
own, and stops them and deletes that prefix's keys afterwards. The working folder is shared by every
process, as a volume would be in docker compose (uploads, reports and exports live there).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
import rq

from gateway.users import UserDirectory
from kernel.store import create_engine
from system.migrate import upgrade
from tests.support.servers import Process, clean_env, free_port, start, wait_finished, wait_healthy

__all__ = ["TIMEOUT", "Cluster", "run_cluster", "wait_finished", "wait_for_worker"]

TIMEOUT = 30.0
"""Seconds one HTTP request to a gateway may take: a synchronous generation or a first import takes
several seconds on a loaded shared host (httpx's default of 5 s timed out there)."""


@dataclass
class Cluster:
    """The running processes, their URLs and environment."""

    env: dict[str, str]
    folder: Path
    database_url: str
    redis_url: str
    prefix: str
    contacts_url: str = ""
    gateway_urls: list[str] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)

    @property
    def contacts(self) -> Process:
        """The contacts service's process (the last one started, when a test started it again)."""
        return next(p for p in reversed(self.processes) if p.name == "contacts")

    def start(self, name: str, args: list[str]) -> Process:
        """Start ``python -m system <args>`` with the cluster's environment; stopped with the cluster."""
        process = start(name, args, self.env, self.folder)
        self.processes.append(process)
        return process

    def start_worker(self, service: str) -> Process:
        """One more job worker of ``service`` (``generator`` or ``importexport``), once it listens."""
        worker = self.start(f"{service}-{len(self.processes)}", ["serve", service])
        wait_for_worker(self.redis_url, f"{self.prefix}-{service}")
        return worker

    def create_key(self, role: str, username: str | None = None, team: str | None = None) -> str:
        """A new user's API key (plaintext), written straight to the user directory."""
        engine = create_engine(self.database_url)
        try:
            name = username or f"u{uuid.uuid4().hex[:8]}"
            _, issued = UserDirectory(engine).create_user(name, role, team=team)
        finally:
            engine.dispose()
        return issued.plaintext

    def client(self, key: str, gateway: int = 0, timeout: float = TIMEOUT) -> httpx.Client:
        """An HTTP client of one gateway with ``key``."""
        return httpx.Client(base_url=self.gateway_urls[gateway], headers={"X-API-Key": key}, timeout=timeout)


@contextmanager
def run_cluster(
    postgres_url: str,
    redis_url: str,
    folder: Path,
    *,
    gateways: int = 1,
    workers: Sequence[str] = (),
    **settings: str,
) -> Iterator[Cluster]:
    """contacts, ``gateways`` gateways and one worker per name in ``workers`` as processes; ``settings``
    are more ``CALLMANAGER_`` variables (without the prefix). Fails if any process logged a traceback."""
    engine = create_engine(postgres_url)
    upgrade(engine)
    engine.dispose()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    contacts_port = free_port()
    env = clean_env(
        CALLMANAGER_DATABASE_URL=postgres_url,
        CALLMANAGER_REDIS_URL=redis_url,
        CALLMANAGER_BUS_PREFIX=prefix,
        CALLMANAGER_CONTACTS_URL=f"http://127.0.0.1:{contacts_port}",
        CALLMANAGER_LOG_FORMAT="json",
        CALLMANAGER_SECRET_KEY=uuid.uuid4().hex + uuid.uuid4().hex,
        **{f"CALLMANAGER_{name}": value for name, value in settings.items()},
    )
    system = Cluster(env, folder, postgres_url, redis_url, prefix, f"http://127.0.0.1:{contacts_port}")
    logs: list[str] = []
    try:
        contacts = system.start("contacts", ["serve", "contacts", "--port", str(contacts_port)])
        wait_healthy(system.contacts_url, contacts)
        for n in range(1, gateways + 1):
            port = free_port()
            name = "gateway" if gateways == 1 else f"gateway{n}"
            gateway = system.start(name, ["serve", "gateway", "--port", str(port)])
            system.gateway_urls.append(f"http://127.0.0.1:{port}")
            wait_healthy(system.gateway_urls[-1], gateway)
        for service in workers:
            system.start_worker(service)
        yield system
    finally:
        logs = [process.stop() for process in system.processes]
        bus = redis.Redis.from_url(redis_url)
        keys = list(bus.scan_iter(f"{prefix}*"))
        if keys:
            bus.delete(*keys)
        bus.close()
    crashed = [log for log in logs if "Traceback" in log]
    assert not crashed, crashed[0][-3000:]


def wait_for_worker(redis_url: str, queue_name: str, timeout: float = 90.0) -> None:
    """Until an rq worker listens on ``queue_name`` (its start-up takes seconds on a loaded machine, and
    the gateway's calls to it wait less than that for their answer)."""
    bus = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if rq.Worker.all(connection=bus, queue=rq.Queue(queue_name, connection=bus)):
                return
            time.sleep(0.2)
    finally:
        bus.close()
    raise AssertionError(f"no worker on {queue_name} within {timeout} s")
