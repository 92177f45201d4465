"""``callmanager up`` may open the desktop client beside the embedded server when there is a screen."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import structlog

from kernel.settings import Settings

log = structlog.get_logger(__name__)


def display_available() -> bool:
    """Whether a window can be shown: always on Windows and macOS, with X11 or Wayland on Linux."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def start_client_beside(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Start ``python -m client`` pointed at this server, or None (no screen, or no client installed)."""
    if not display_available():
        log.info("client.not_started", reason="no display")
        return None
    if importlib.util.find_spec("client") is None:
        log.info("client.not_started", reason="callmanager-client is not installed")
        return None
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104 (comparing)
    url = f"http://{host}:{settings.port}"
    log.info("client.started", url=url)
    return subprocess.Popen([sys.executable, "-m", "client", "--url", url])  # noqa: S603 (our own module)
