"""Test doubles for the dialer: a scripted ctrl_tcp server on loopback and an in-memory softphone."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import socketio
import uvicorn

from dialer_agent.netstring import NetstringDecoder, encode_netstring
from dialer_agent.softphone import CallEvent, CallListener, CallState, SoftphoneError, SoftphoneUnavailable

KEY = "cm_desk_key_0123456789"

Responder = Callable[[dict[str, Any]], dict[str, Any] | None]


def answer_ok(command: dict[str, Any]) -> dict[str, Any] | None:
    """baresip's reply to a command it accepted."""
    return {"response": True, "ok": True, "data": "", "token": command.get("token")}


class FakeCtrlTcp:
    """A ctrl_tcp server on a real loopback socket: records commands, answers them, sends scripted events."""

    def __init__(self, port: int = 0, responder: Responder = answer_ok) -> None:
        self.listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.port = int(self.listener.getsockname()[1])
        self.responder = responder
        self.commands: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self.command_seen = threading.Condition()
        self._conn: socket.socket | None = None
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._conn = conn
            self.connected.set()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        decoder = NetstringDecoder()
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            for frame in decoder.feed(data):
                command = json.loads(frame)
                with self.command_seen:
                    self.commands.append(command)
                    self.command_seen.notify_all()
                reply = self.responder(command)
                if reply is not None:
                    self.send(reply)

    def wait_command(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until ``count`` commands arrived; return them all."""
        with self.command_seen:
            self.command_seen.wait_for(lambda: len(self.commands) >= count, timeout)
        return list(self.commands)

    def send(self, message: dict[str, Any]) -> None:
        """Send one frame to the connected driver."""
        assert self._conn is not None
        self._conn.sendall(encode_netstring(json.dumps(message).encode()))

    def event(self, kind: str, param: str = "", call_id: str = "c1") -> None:
        """Send a baresip call event."""
        self.send({"event": True, "class": "call", "type": kind, "id": call_id, "param": param})

    def drop(self) -> None:
        """Close the current connection, as a baresip that exits."""
        self.connected.clear()
        if self._conn is not None:
            self._conn.shutdown(socket.SHUT_RDWR)
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Stop listening and drop the connection."""
        self._stop = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() so the port is really free
        self.listener.close()
        self.drop()


class FakeSoftphone:
    """An in-memory softphone: records dials and hangups; tests push call states."""

    def __init__(self, reports_progress: bool = True) -> None:
        self.reports_progress = reports_progress
        self.dialled: list[str] = []
        self.hangups = 0
        self.problem: str | None = None
        self.refuse: SoftphoneError | None = None
        self.close_on_hangup = True
        self._listeners: list[CallListener] = []
        self.changed = threading.Condition()

    def watch(self, listener: CallListener) -> None:
        self._listeners.append(listener)

    def push(self, state: CallState, reason: str = "", ref: str = "") -> None:
        for listener in self._listeners:
            listener(CallEvent(state, reason, ref))

    def dial(self, number: str) -> None:
        if self.problem is not None:
            raise SoftphoneUnavailable(self.problem)
        if self.refuse is not None:
            raise self.refuse
        with self.changed:
            self.dialled.append(number)
            self.changed.notify_all()

    def hangup(self) -> None:
        with self.changed:
            self.hangups += 1
            self.changed.notify_all()
        if self.reports_progress and self.close_on_hangup:
            self.push(CallState.CLOSED, "Connection reset by user")

    def check(self) -> str | None:
        return self.problem

    def close(self) -> None:
        pass

    def wait_dialled(self, count: int = 1, timeout: float = 5.0) -> list[str]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.dialled) >= count, timeout)
        return list(self.dialled)


Ack = Callable[[dict[str, Any]], dict[str, Any] | None]


def ok(_: dict[str, Any]) -> dict[str, Any] | None:
    return {"ok": True}


class GatewayDouble:
    """A real Socket.IO server in a thread: records reports, acknowledges as told, sends dial/hangup."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.auths: list[dict[str, Any]] = []
        self.acks: dict[str, Ack] = {}
        self.changed = threading.Condition()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sids: list[str] = []
        self.sio.on("connect", self._connect)
        for event in ("call_started", "call_ended", "desk_state"):
            self.sio.on(event, self._recorder(event))
        config = uvicorn.Config(
            socketio.ASGIApp(self.sio),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        self.loop = asyncio.get_running_loop()
        if not isinstance(auth, dict) or auth.get("api_key") != KEY:
            return False
        with self.changed:
            self.auths.append(auth)
            self.sids.append(sid)
            self.changed.notify_all()
        return True

    def _recorder(self, event: str) -> Callable[[str, Any], Any]:
        async def record(sid: str, payload: Any) -> Any:
            with self.changed:
                self.received.append((event, payload))
                self.changed.notify_all()
            return self.acks.get(event, ok)(payload)

        return record

    def start(self) -> GatewayDouble:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def send(self, event: str, payload: dict[str, Any]) -> None:
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self.sio.emit(event, payload), self.loop).result(5)

    def wait_connected(self, count: int = 1, timeout: float = 15) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.auths) >= count, timeout), (
                "the desk never connected"
            )

    def reports(self, event: str) -> list[dict[str, Any]]:
        with self.changed:
            return [p for e, p in self.received if e == event]

    def wait_report(self, event: str, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        with self.changed:
            self.changed.wait_for(lambda: len([1 for e, _ in self.received if e == event]) >= count, timeout)
        found = self.reports(event)
        assert len(found) >= count, f"{event}: {self.received}"
        return found

    def wait_state(self, state: str, timeout: float = 10) -> None:
        with self.changed:
            reached = self.changed.wait_for(
                lambda: any(e == "desk_state" and p["state"] == state for e, p in self.received), timeout
            )
        assert reached, f"no desk_state {state}: {self.received}"
