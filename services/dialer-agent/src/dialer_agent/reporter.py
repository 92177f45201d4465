"""Delivers the outbox in order; an unacknowledged report waits for the next connection (or a retry delay)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from dialer_agent.link import GatewayLink, LinkError
from dialer_agent.outbox import Outbox, Report

log = structlog.get_logger(__name__)


class Reporter:
    """One thread sending ``Outbox`` reports; ``ok: true`` or a refusal removes them, silence keeps them."""

    def __init__(
        self,
        outbox: Outbox,
        link: GatewayLink,
        ack_timeout: float = 10.0,
        retry_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._outbox = outbox
        self._link = link
        self._ack_timeout = ack_timeout
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._stalled_at = 0.0
        self._wake = threading.Condition()
        self._connection = 0  # bumped on every (re)connection
        self._stalled_on = -1  # the connection a report went unacknowledged on
        self._connected = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def report(self, event: str, payload: dict[str, Any]) -> Report:
        """Write the report to disk, then let the sender thread deliver it."""
        stored = self._outbox.put(event, payload)
        with self._wake:
            self._wake.notify_all()
        return stored

    def connected(self) -> None:
        """A new connection: send everything still pending, once, in order."""
        with self._wake:
            self._connection += 1
            self._connected = True
            self._wake.notify_all()

    def disconnected(self) -> None:
        """The connection ended; hold reports until the next one."""
        with self._wake:
            self._connected = False

    def start(self) -> None:
        """Start the sender thread."""
        self._thread = threading.Thread(target=self._run, name="reporter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the sender thread (pending reports stay on disk)."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self._ack_timeout + 5)

    def deliver_pending(self) -> bool:
        """Send pending reports in order until one goes unacknowledged; True when none is left."""
        with self._wake:
            connection = self._connection
        for report in self._outbox.pending():
            try:
                ack = self._link.call(report.event, report.payload, self._ack_timeout)
            except LinkError as exc:
                log.info("report.unacknowledged", event_name=report.event, seq=report.seq, error=str(exc))
                with self._wake:
                    self._stalled_on = connection
                    self._stalled_at = self._clock()
                return False
            if isinstance(ack, dict) and ack.get("ok") is True:
                log.info(
                    "report.acknowledged", event_name=report.event, call_id=report.payload.get("call_id")
                )
            else:
                log.warning(
                    "report.refused",
                    event_name=report.event,
                    call_id=report.payload.get("call_id"),
                    error=ack.get("error") if isinstance(ack, dict) else ack,
                )
            self._outbox.remove(report.seq)
        return True

    def _ready(self) -> bool:
        # A connection that stays up but lost an acknowledgement is retried after a while, so one lost
        # ack cannot hold every later report until the next reconnect.
        fresh = self._stalled_on < self._connection
        return self._connected and (fresh or self._clock() >= self._stalled_at + self._retry_seconds)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not (self._ready() and self._outbox.pending()):
                    self._wake.wait(timeout=min(5.0, self._retry_seconds))
                if self._stopping:
                    return
            self.deliver_pending()
