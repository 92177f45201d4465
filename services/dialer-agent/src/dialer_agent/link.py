"""The desk's Socket.IO connection to the gateway (threaded ``socketio.Client``, websocket transport)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import socketio
import structlog

log = structlog.get_logger(__name__)

Handler = Callable[[Any], None]


class LinkError(RuntimeError):
    """A report could not be delivered: not connected, or no acknowledgement in time."""


class GatewayLink(Protocol):
    """What the agent needs from its connection to the gateway."""

    def call(self, event: str, payload: dict[str, Any], timeout: float) -> Any:
        """Send ``event`` and return the gateway's acknowledgement; raise LinkError without one."""
        ...

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        """Send ``event`` without waiting; a lost one is not retried."""
        ...


class SocketLink:
    """GatewayLink over python-socketio's threaded client, reconnecting by itself with backoff."""

    def __init__(self, url: str, auth: dict[str, str], *, max_backoff_seconds: float = 30.0) -> None:
        self._url = url
        self._auth = auth
        self._max_backoff = max_backoff_seconds
        self.sio = socketio.Client(
            reconnection=True, reconnection_delay=1, reconnection_delay_max=5, logger=False
        )
        self._stopping = threading.Event()

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        """Call ``handler`` for ``event`` (also ``connect``, ``disconnect``), from the client's threads."""
        self.sio.on(event, handler)

    def call(self, event: str, payload: dict[str, Any], timeout: float) -> Any:
        """Emit with an acknowledgement; raise LinkError when not connected or not acknowledged in time."""
        try:
            return self.sio.call(event, payload, timeout=timeout)
        except (socketio.exceptions.TimeoutError, socketio.exceptions.SocketIOError) as exc:
            raise LinkError(f"{event} sin confirmación: {type(exc).__name__}") from exc

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        """Emit without acknowledgement, dropping it when not connected."""
        try:
            self.sio.emit(event, payload)
        except socketio.exceptions.SocketIOError as exc:
            log.info("link.emit_dropped", event_name=event, error=type(exc).__name__)

    def run(self) -> None:
        """Connect and stay connected until ``stop``; the first connection is retried with backoff too."""
        delay = 1.0
        while not self._stopping.is_set():
            try:
                self.sio.connect(self._url, auth=self._auth, transports=["websocket"], wait_timeout=10)
            except (socketio.exceptions.ConnectionError, ValueError) as exc:
                log.warning("link.connect_failed", server=self._url, error=str(exc), retry_in=delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, self._max_backoff)
                continue
            delay = 1.0
            self.sio.wait()

    def stop(self) -> None:
        """Disconnect and stop reconnecting."""
        self._stopping.set()
        self.sio.shutdown()
