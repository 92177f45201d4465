"""Change signals: a number that moves whenever PostgreSQL announces a change (``LISTEN``/``NOTIFY``).

A process that keeps rows read from PostgreSQL (API keys, first pages of the contact list) tags each with
:attr:`ChangeSignal.version` read *before* reading the rows, and uses a kept row only while the version
is the same. Writers announce changes with ``pg_notify(channel, ...)`` in their transaction (a trigger, or
the writing code), so every process listening hears of a commit within milliseconds, whichever process
made it. While the listening connection is down the version is ``None``: nothing may be kept, and
everything kept before the next version is stale (a reconnect moves it too, since notifications sent
while nobody listened are lost).

The listening connection also asks for its channels every ``check_every`` seconds, so a connection that died
silently stops the keeping within that time.
"""

from __future__ import annotations

import threading

import structlog
from psycopg import sql
from sqlalchemy.engine import Engine

from kernel.store.dialect import store_dialect

log = structlog.get_logger(__name__)


class ChangeSignal:
    """The version of what ``channel`` announces, moved by a listening thread (:meth:`run_forever`)."""

    def __init__(self, engine: Engine, channel: str, *, check_every: float = 1.0, retry_every: float = 1.0):
        if not store_dialect(engine).announces_changes:
            raise ValueError("ChangeSignal listens on PostgreSQL only (SQLite has PRAGMA data_version)")
        self._engine = engine
        self._channel = channel
        self._check_every = check_every
        self._retry_every = retry_every
        self._lock = threading.Lock()
        self._moves = 0
        self._version: int | None = None

    @property
    def channel(self) -> str:
        return self._channel

    @property
    def version(self) -> int | None:
        """The current version; ``None`` while not listening (keep nothing then)."""
        return self._version

    def move(self) -> None:
        """Count a change this process made: its own later reads must not use what was kept before.

        The notification of its commit moves the version too, a few milliseconds later.
        """
        self._move(listening=self._version is not None)

    def run_forever(self, stop: threading.Event) -> None:
        """Listen until ``stop`` is set; after a failure, connect again ``retry_every`` seconds later."""
        while not stop.is_set():
            try:
                self._listen(stop)
            except Exception as exc:  # any failure of the connection: keep nothing, try again
                log.warning("changes.listen_failed", channel=self._channel, error=type(exc).__name__)
            finally:
                self._move(listening=False)
            stop.wait(self._retry_every)

    def _listen(self, stop: threading.Event) -> None:
        pooled = self._engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()  # held for as long as it listens: not the pool's any more
        try:
            assert connection is not None
            connection.autocommit = True
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._move(listening=True)  # what was kept before may have changed unheard
            log.info("changes.listening", channel=self._channel)
            while not stop.is_set():
                for _ in connection.notifies(timeout=self._check_every):
                    self._move(listening=True)
                connection.execute("SELECT pg_listening_channels()")  # raises on a dead connection
        finally:
            pooled.close()

    def _move(self, *, listening: bool) -> None:
        with self._lock:
            self._moves += 1
            self._version = self._moves if listening else None
