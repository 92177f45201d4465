"""Starting the desktop client from another program (``callmanager up`` beside the embedded server)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def display_available(env: Mapping[str, str] | None = None, platform: str | None = None) -> tuple[bool, str]:
    """Whether a window can open here, and why not when it cannot (Windows and macOS always can)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform.startswith("win") or platform == "darwin":
        return True, ""
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return True, ""
    return False, "no hay pantalla (DISPLAY/WAYLAND_DISPLAY no definidos)"


def client_command(url: str, language: str = "") -> list[str]:
    """The command line that opens the client on ``url``: in a frozen (PyInstaller) program
    ``sys.executable`` is the program itself, which takes the client's arguments directly."""
    frozen = getattr(sys, "frozen", False)
    command = [sys.executable, "--url", url] if frozen else [sys.executable, "-m", "client", "--url", url]
    return [*command, "--lang", language] if language else command


def spawn(url: str, api_key: str = "", language: str = "") -> subprocess.Popen[bytes] | None:
    """Open the client in its own process (key via ``CALLMANAGER_API_KEY``); None without a display."""
    available, _reason = display_available()
    if not available:
        return None
    env = dict(os.environ)
    if api_key:
        env["CALLMANAGER_API_KEY"] = api_key
    return subprocess.Popen(client_command(url, language), env=env)  # noqa: S603 - our own interpreter and module
