"""The composition root: builds every adapter from settings and hands it to the services.

This is the only place that knows which mode runs. Embedded mode is a SQLite file in the data dir and the
in-process bus; distributed mode is PostgreSQL and Redis Streams. Everything else is the same code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from kernel.bus.memory import InProcessBus
from kernel.bus.port import Bus
from kernel.relay import Relay
from kernel.settings import Settings
from kernel.store import EventStore, PositionStore, StoreDialect, create_engine, store_dialect
from kernel.store.changes import ChangeSignal
from system.migrate import upgrade

log = structlog.get_logger(__name__)

CONTACTS_EVENTS = "contacts.events"
# The relay's pause between polls once caught up: the floor of every live notice's delay. At 50 ms a
# lock reached 200 sockets in up to ~120 ms; 10 ms costs about 1 % of a core in idle polls.
RELAY_IDLE_SECONDS = 0.01


class Mode(StrEnum):
    EMBEDDED = "embedded"
    DISTRIBUTED = "distributed"


class ConfigurationError(RuntimeError):
    """Settings do not allow the requested mode (a message for the operator)."""


@dataclass
class Background:
    """Loops that run beside the servers (relay, schedulers), each on its own thread, stopped together."""

    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def spawn(self, name: str, loop: Callable[[threading.Event], None]) -> None:
        """Start ``loop(stop)`` on a daemon thread."""
        thread = threading.Thread(target=loop, args=(self.stop,), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Ask every loop to stop and wait for them."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)


@dataclass
class Infrastructure:
    """The adapters one process uses, built once from settings."""

    settings: Settings
    mode: Mode
    engine: Engine
    dialect: StoreDialect
    store: EventStore
    positions: PositionStore
    bus: Bus
    background: Background = field(default_factory=Background)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` when the infrastructure closes (before connections are released)."""
        self.closers.append(closer)

    def check_database(self) -> None:
        """Raise when the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def topic(self, name: str) -> str:
        """The bus topic ``name`` of this deployment (prefixed, so deployments can share a Redis)."""
        return f"{self.settings.bus_prefix}:{name}"

    def check_bus(self) -> None:
        """Raise when the bus does not answer."""
        self.bus.last_id(self.topic(CONTACTS_EVENTS))

    def start_relay(self) -> None:
        """Publish the event store to the bus from a background thread."""
        relay = Relay(self.store, self.positions, self.bus, self.topic(CONTACTS_EVENTS))
        self.background.spawn("relay", lambda stop: relay.run_forever(stop, idle_sleep=RELAY_IDLE_SECONDS))

    def change_signal(self, channel: str) -> ChangeSignal | None:
        """On PostgreSQL, a :class:`ChangeSignal` on ``channel`` listening from a background thread; on
        SQLite None (readers there ask ``PRAGMA data_version``)."""
        if not self.dialect.announces_changes:
            return None
        signal = ChangeSignal(self.engine, channel)
        self.background.spawn(f"changes-{channel}", signal.run_forever)
        return signal

    def close(self) -> None:
        """Stop background loops and release connections."""
        self.background.shutdown()
        for closer in reversed(self.closers):
            closer()
        self.bus.close()
        self.engine.dispose()


def build_infrastructure(settings: Settings, mode: Mode, *, migrate: bool = True) -> Infrastructure:
    """Build the engine, event store and bus of ``mode`` from ``settings``."""
    if mode is Mode.EMBEDDED:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.database_url or settings.embedded_database_url)
        bus: Bus = InProcessBus(maxlen=settings.bus_maxlen)
    else:
        if not settings.database_url or not settings.redis_url:
            raise ConfigurationError(
                "distributed mode needs CALLMANAGER_DATABASE_URL (PostgreSQL) and CALLMANAGER_REDIS_URL"
            )
        import redis

        from kernel.bus.redis import RedisStreamsBus

        engine = create_engine(settings.database_url)
        bus = RedisStreamsBus(redis.Redis.from_url(settings.redis_url), maxlen=settings.bus_maxlen)
    # Chosen here once: every SQLite/PostgreSQL difference of the stores is in this object.
    dialect = store_dialect(engine)
    if migrate:
        upgrade(engine)
    log.info("infrastructure.ready", mode=mode.value, database=dialect.name)
    return Infrastructure(
        settings=settings,
        mode=mode,
        engine=engine,
        dialect=dialect,
        store=EventStore(engine, dialect),
        positions=PositionStore(dialect),
        bus=bus,
    )
