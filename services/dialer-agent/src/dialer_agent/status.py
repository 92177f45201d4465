"""What the desk shows: a live status line in a terminal, log lines otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog
from rich.console import Console
from rich.live import Live
from rich.text import Text

STATE_LABELS = {
    "ready": "listo",
    "dialling": "marcando",
    "ringing": "sonando",
    "in_call": "en llamada",
    "softphone_missing": "softphone no disponible",
}

OUTCOME_LABELS = {
    "answered": "contestada",
    "no_answer": "sin respuesta",
    "busy": "ocupado",
    "failed": "fallida",
    "cancelled": "cancelada",
}


@dataclass(frozen=True, slots=True)
class DeskStatus:
    """One moment of the desk: its state, whether the gateway is connected, the last call's result."""

    desk: str
    state: str
    connected: bool
    number: str = ""
    detail: str = ""
    last_call: str = ""


class StatusView(Protocol):
    """Where the agent shows its status."""

    def show(self, status: DeskStatus) -> None:
        """Show ``status`` (replacing the previous one)."""
        ...

    def close(self) -> None:
        """Stop showing."""
        ...


def describe(status: DeskStatus) -> str:
    """The status as one Spanish line."""
    parts = [
        f"Puesto {status.desk}",
        "servidor conectado" if status.connected else "servidor desconectado",
        STATE_LABELS.get(status.state, status.state) + (f" {status.number}" if status.number else ""),
    ]
    if status.detail:
        parts.append(status.detail)
    if status.last_call:
        parts.append(f"última llamada: {status.last_call}")
    return " · ".join(parts)


class LiveStatus:
    """A rich Live status line, for a desk running in a terminal."""

    def __init__(self, console: Console | None = None) -> None:
        self._live = Live(Text("iniciando…"), console=console, refresh_per_second=4, transient=False)
        self._live.start()

    def show(self, status: DeskStatus) -> None:
        """Redraw the line."""
        style = "green" if status.connected and status.state != "softphone_missing" else "yellow"
        self._live.update(Text(describe(status), style=style))

    def close(self) -> None:
        """Leave the last line on screen."""
        self._live.stop()


class LogStatus:
    """Log lines through structlog, for a desk running as a service (no terminal)."""

    def __init__(self) -> None:
        self._log = structlog.get_logger("dialer_agent.status")
        self._last: DeskStatus | None = None

    def show(self, status: DeskStatus) -> None:
        """Log the status when it changed."""
        if status != self._last:
            self._last = status
            self._log.info(
                "desk.status",
                desk=status.desk,
                state=status.state,
                connected=status.connected,
                detail=status.detail or None,
                last_call=status.last_call or None,
            )

    def close(self) -> None:
        """Nothing to release."""
