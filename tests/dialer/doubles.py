"""Test doubles for the dialer: a scripted ctrl_tcp server on loopback and an in-memory softphone."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

from dialer_agent.netstring import NetstringDecoder, encode_netstring
from dialer_agent.softphone import CallEvent, CallListener, CallState, SoftphoneError, SoftphoneUnavailable

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
