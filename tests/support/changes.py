"""Waiting for PostgreSQL's change announcements the way a running process hears them."""

from __future__ import annotations

import time
from collections.abc import Callable

from kernel.store.changes import ChangeSignal


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` every 5 ms; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.005)


def settle(signal: ChangeSignal, quiet: float = 0.2) -> None:
    """Wait until earlier commits have been announced: the version stays put for ``quiet`` seconds."""
    deadline = time.monotonic() + 5.0
    while True:
        version = signal.version
        time.sleep(quiet)
        if version is not None and signal.version == version:
            return
        assert time.monotonic() < deadline, "the signal never settled"
