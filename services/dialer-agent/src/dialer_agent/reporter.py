"""Delivers the outbox to the gateway in order; an unacknowledged report waits for the next connection."""

from __future__ import annotations

import threading
from typing import Any

import structlog

from dialer_agent.link import GatewayLink, LinkError
from dialer_agent.outbox import Outbox, Report

log = structlog.get_logger(__name__)


class Reporter:
    """One thread sending ``Outbox`` reports; ``ok: true`` or a refusal removes them, silence keeps them."""

    def __init__(self, outbox: Outbox, link: GatewayLink, ack_timeout: float = 10.0) -> None:
        self._outbox = outbox
        self._link = link
        self._ack_timeout = ack_timeout
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
        return self._connected and self._stalled_on < self._connection

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not (self._ready() and self._outbox.pending()):
                    self._wake.wait(timeout=5)
                if self._stopping:
                    return
            self.deliver_pending()
