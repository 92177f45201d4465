"""Driving a Tk window from a test: run its loop until something holds, read a table row, take a shot."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xscreen import screenshot


def pump(root: Any, until: Callable[[], bool], timeout: float = 15.0, what: str = "the window") -> None:
    """Run the Tk loop until ``until()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        root.update()
        time.sleep(0.01)


def settle(root: Any, seconds: float = 0.3) -> None:
    """Run the Tk loop for ``seconds`` (lets layout and redraws finish)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        root.update()
        time.sleep(0.01)


def cells(tree: Any, iid: str) -> tuple[str, ...]:
    """The shown values of one Treeview row."""
    return tuple(str(v) for v in tree.item(iid, "values"))


def shot(display: str, window: Any, name: str, folder: Path) -> Path:
    """Save ``window`` as ``<name>.png`` in ``$CALLMANAGER_SCREENSHOT_DIR`` when set, else in ``folder``."""
    target = Path(os.environ.get("CALLMANAGER_SCREENSHOT_DIR") or folder)
    window.update()
    box = (window.winfo_rootx(), window.winfo_rooty(), window.winfo_width(), window.winfo_height())
    return screenshot(target / f"{name}.png", display, box)
