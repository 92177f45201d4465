"""The live feed: a Socket.IO client on a background thread that reconnects by itself and, on reconnect,
asks the gateway for the events it missed by sending the last global position it saw."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

EVENTS: tuple[str, ...] = (
    "contact_created",
    "contact_updated",
    "contact_locked",
    "contact_unlocked",
    "contact_deleted",
    "bulk_update",
    "job_progress",
    "lock_denied",
    "call_updated",
    "call_requested",
    "call_started",
    "call_ended",
    "desk_state",
    "callback_reminder",
    "callback_changed",
    "resync",
    "error",
)

EventCallback = Callable[[str, Mapping[str, Any]], None]


class ConnectionState(StrEnum):
    """Where the live connection stands (shown in the status bar)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


StateCallback = Callable[[ConnectionState, str], None]


class SocketLike(Protocol):
    """The part of ``socketio.Client`` the feed uses."""

    def on(self, event: str, handler: Callable[..., Any]) -> Any:
        """Register ``handler`` for ``event``."""

    def connect(
        self, url: str, *, auth: Mapping[str, Any], transports: Sequence[str], wait_timeout: float
    ) -> None:
        """Connect; raises on failure."""

    def wait(self) -> None:
        """Block until disconnected."""

    def disconnect(self) -> None:
        """Close the connection."""

    def call(self, event: str, data: Any = None, *, timeout: float = 60) -> Any:
        """Send ``event`` and wait for its acknowledgement; raises on timeout or when disconnected."""


def real_socket() -> SocketLike:
    """A ``socketio.Client`` without its own reconnection (the feed does it, with the position)."""
    import socketio

    client: SocketLike = socketio.Client(reconnection=False, handle_sigint=False)
    return client


def backoff_delay(attempt: int, *, base: float = 0.5, ceiling: float = 10.0) -> float:
    """Seconds to wait before reconnection attempt ``attempt`` (1, 2, ...): doubling, capped."""
    return float(min(ceiling, base * 2.0 ** max(0, attempt - 1)))


class NotConnected(Exception):
    """A request over the live connection could not be sent or answered (the caller falls back to HTTP)."""


class LiveFeed:
    """Keeps one Socket.IO connection alive, tracks the last event position and drops replays already seen."""

    def __init__(
        self,
        url: str,
        api_key: str,
        on_event: EventCallback,
        on_state: StateCallback,
        *,
        socket_factory: Callable[[], SocketLike] = real_socket,
        wait: Callable[[float], bool] | None = None,
        transports: Sequence[str] = ("websocket", "polling"),
        on_fresh: Callable[[], None] = lambda: None,
    ) -> None:
        self.url = url
        self._api_key = api_key
        self._on_event = on_event
        self._on_state = on_state
        self._on_fresh = on_fresh
        self._factory = socket_factory
        self._stopped = threading.Event()
        self._wait = wait or self._stopped.wait
        self._transports = list(transports)
        self._lock = threading.Lock()
        self._last_position: int | None = None
        self._socket: SocketLike | None = None
        self._thread: threading.Thread | None = None
        self.attempts = 0
        self._connected = False

    @property
    def last_position(self) -> int | None:
        """The highest event position received (None before the first)."""
        with self._lock:
            return self._last_position

    def auth(self) -> dict[str, Any]:
        """The connect auth: the key, and the last position when one was seen."""
        data: dict[str, Any] = {"api_key": self._api_key}
        position = self.last_position
        if position is not None:
            data["last_position"] = position
        return data

    @property
    def connected(self) -> bool:
        """Whether the connection is up now."""
        return self._connected

    def request(self, event: str, data: Mapping[str, Any], timeout: float = 10.0) -> Any:
        """Send a client → server request and return its acknowledgement (from any thread but the socket's);
        ``NotConnected`` when the connection is down or no answer came."""
        socket = self._socket
        if socket is None or not self._connected:
            raise NotConnected(event)
        try:
            return socket.call(event, dict(data), timeout=timeout)
        except Exception as exc:  # socketio raises TimeoutError and BadNamespaceError
            raise NotConnected(event) from exc

    def start(self) -> None:
        """Run the connection loop on a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="callmanager-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the connection and end the loop."""
        self._stopped.set()
        self._connected = False
        socket = self._socket
        if socket is not None:
            with contextlib.suppress(Exception):  # closing a broken socket may fail; we are leaving
                socket.disconnect()

    def run(self) -> None:
        """Connect, wait for a drop, back off, reconnect with the last position; until stopped."""
        failures = 0
        connected_before = False
        while not self._stopped.is_set():
            state = (
                ConnectionState.RECONNECTING if connected_before or failures else ConnectionState.CONNECTING
            )
            self._on_state(state, "")
            socket = self._factory()
            for name in EVENTS:
                socket.on(name, self._handler(name))
            self._socket = socket
            self.attempts += 1
            auth = self.auth()
            try:
                socket.connect(self.url, auth=auth, transports=self._transports, wait_timeout=5)
            except Exception as exc:  # socketio raises ConnectionError and transport errors
                failures += 1
                rejected = "401" in str(exc) or "unauthor" in str(exc).lower() or "rechaz" in str(exc).lower()
                self._on_state(
                    ConnectionState.DISCONNECTED if rejected else ConnectionState.RECONNECTING, str(exc)
                )
                if self._wait(backoff_delay(failures)):
                    break
                continue
            failures = 0
            connected_before = True
            self._connected = True
            self._on_state(ConnectionState.CONNECTED, "")
            if "last_position" not in auth:
                self._on_fresh()  # nothing to resume from: whatever happened before now must be read again
            socket.wait()
            self._connected = False
            if self._stopped.is_set():
                break
            self._on_state(ConnectionState.RECONNECTING, "")
            if self._wait(backoff_delay(1)):
                break
        self._on_state(ConnectionState.DISCONNECTED, "")

    def _handler(self, name: str) -> Callable[..., None]:
        def handle(data: Any = None, *_: Any) -> None:
            self.receive(name, data if isinstance(data, Mapping) else {"data": data})

        return handle

    def receive(self, name: str, payload: Mapping[str, Any]) -> None:
        """Record the event's position and pass it on, unless it is a replay of one already seen."""
        position = payload.get("position")
        if isinstance(position, int) and not isinstance(position, bool):
            with self._lock:
                if name == "resync":
                    self._last_position = position
                elif self._last_position is not None and position <= self._last_position:
                    return
                else:
                    self._last_position = position
        self._on_event(name, payload)
