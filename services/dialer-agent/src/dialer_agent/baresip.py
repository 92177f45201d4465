"""baresip driven through its ``ctrl_tcp`` module: netstring JSON commands, responses and call events.

One background thread keeps the TCP connection (reconnecting while baresip restarts), reads frames,
hands responses to the command that waits for its token and call events to the listener.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

import structlog

from dialer_agent.netstring import NetstringDecoder, NetstringError, encode_netstring
from dialer_agent.softphone import CallEvent, CallListener, CallState, SoftphoneError, SoftphoneUnavailable

log = structlog.get_logger(__name__)

_EVENT_STATES = {
    "CALL_RINGING": CallState.RINGING,
    "CALL_PROGRESS": CallState.RINGING,
    "CALL_REMOTE_SDP": CallState.MEDIA,
    "CALL_ESTABLISHED": CallState.ESTABLISHED,
    "CALL_CLOSED": CallState.CLOSED,
}

LOST_REASON = "conexión con baresip perdida"


def baresip_target(number: str, template: str = "{number}") -> str:
    """What baresip is asked to dial: a ``sip:`` URI as given, else the number in ``template``."""
    if number.startswith(("sip:", "sips:")):
        return number
    return template.format(number=number)


class _Pending:
    """A command waiting for the response with its token."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.response: dict[str, Any] | None = None


class BaresipDriver:
    """The Softphone port over baresip's ``ctrl_tcp`` (reports progress)."""

    reports_progress = True

    def __init__(
        self,
        address: tuple[str, int],
        dial_template: str = "{number}",
        *,
        command_timeout: float = 5.0,
        reconnect_seconds: float = 1.0,
        connect: Callable[[tuple[str, int], float], socket.socket] = socket.create_connection,
    ) -> None:
        self._address = address
        self._template = dial_template
        self._command_timeout = command_timeout
        self._reconnect_seconds = reconnect_seconds
        self._connect = connect
        self._listeners: list[CallListener] = []
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._connected = threading.Event()
        self._pending: dict[str, _Pending] = {}
        self._tokens = itertools.count(1)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._in_call = False

    @property
    def where(self) -> str:
        """``host:port`` of ctrl_tcp, for messages."""
        return f"{self._address[0]}:{self._address[1]}"

    def watch(self, listener: CallListener) -> None:
        """Send every call event to ``listener`` (called from the reader thread)."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Start the connection thread; it keeps reconnecting until ``close``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="baresip-ctrl", daemon=True)
            self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        """Wait until ctrl_tcp is connected; False on timeout."""
        return self._connected.wait(timeout)

    def dial(self, number: str) -> None:
        """Send ``dial``; return when baresip answered ``ok``."""
        self._in_call = True
        try:
            self._command("dial", baresip_target(number, self._template))
        except SoftphoneError:
            self._in_call = False
            raise

    def hangup(self) -> None:
        """Send ``hangup`` (baresip 1.0.0 ends its current call)."""
        self._command("hangup", None)

    def check(self) -> str | None:
        """None when ctrl_tcp answers, else a Spanish message."""
        if self._connected.is_set():
            return None
        if self._thread is not None:
            return f"baresip no responde en {self.where} (¿está abierto con el módulo ctrl_tcp?)"
        try:
            self._connect(self._address, 2.0).close()
        except OSError as exc:
            return f"baresip no responde en {self.where}: {exc.strerror or exc}"
        return None

    def close(self) -> None:
        """Stop the connection thread and close the socket."""
        self._stopping.set()
        self._drop_socket()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _command(self, command: str, params: str | None) -> dict[str, Any]:
        token = f"cm{next(self._tokens)}"
        message: dict[str, Any] = {"command": command, "token": token}
        if params is not None:
            message["params"] = params
        pending = _Pending()
        with self._lock:
            sock = self._sock
            if sock is None:
                raise SoftphoneUnavailable(f"baresip no está disponible en {self.where}")
            self._pending[token] = pending
            try:
                sock.sendall(encode_netstring(json.dumps(message).encode("utf-8")))
            except OSError as exc:
                self._pending.pop(token, None)
                raise SoftphoneUnavailable(f"baresip no está disponible en {self.where}: {exc}") from exc
        if not pending.done.wait(self._command_timeout):
            with self._lock:
                self._pending.pop(token, None)
            raise SoftphoneError(f"baresip no respondió a {command} en {self._command_timeout:g} s")
        response = pending.response
        if response is None:
            raise SoftphoneUnavailable(f"se perdió la conexión con baresip durante {command}")
        if not response.get("ok"):
            raise SoftphoneError(f"baresip rechazó {command}: {response.get('data') or 'sin detalle'}")
        return response

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                sock = self._connect(self._address, 2.0)
            except OSError:
                self._stopping.wait(self._reconnect_seconds)
                continue
            sock.settimeout(None)
            with self._lock:
                self._sock = sock
            self._connected.set()
            log.info("baresip.connected", ctrl=self.where)
            self._read(sock)
            self._connected.clear()
            self._drop_socket()
            if not self._stopping.is_set():
                log.warning("baresip.disconnected", ctrl=self.where)
                if self._in_call:
                    self._in_call = False
                    self._emit(CallEvent(CallState.CLOSED, LOST_REASON))
                self._stopping.wait(self._reconnect_seconds)

    def _read(self, sock: socket.socket) -> None:
        decoder = NetstringDecoder()
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                frames = decoder.feed(data)
            except NetstringError as exc:
                log.warning("baresip.bad_frame", error=str(exc))
                return
            for frame in frames:
                self._dispatch(frame)

    def _dispatch(self, frame: bytes) -> None:
        try:
            message = json.loads(frame)
        except ValueError:
            log.warning("baresip.bad_json", frame=frame[:200].decode("utf-8", "replace"))
            return
        if not isinstance(message, dict):
            return
        if message.get("response"):
            with self._lock:
                pending = self._pending.pop(str(message.get("token")), None)
            if pending is not None:
                pending.response = message
                pending.done.set()
            return
        if message.get("event") and message.get("class") == "call":
            state = _EVENT_STATES.get(str(message.get("type")))
            if state is None:
                return
            if state is CallState.CLOSED:
                self._in_call = False
            self._emit(CallEvent(state, str(message.get("param") or ""), str(message.get("id") or "")))

    def _emit(self, event: CallEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug must not kill the reader thread
                log.exception("baresip.listener_failed")

    def _drop_socket(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
            waiting = list(self._pending.values())
            self._pending.clear()
        for pending in waiting:
            pending.done.set()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
