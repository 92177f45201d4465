"""Waiting for PostgreSQL's change announcements the way a running process hears them."""

from __future__ import annotations

import threading
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


class Listening:
    """``signal.run_forever`` on a daemon thread, as ``Infrastructure.change_signal`` runs it."""

    def __init__(self, signal: ChangeSignal) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=signal.run_forever, args=(self._stop,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and wait for the thread to end."""
        self._stop.set()
        self._thread.join(5)
        assert not self._thread.is_alive()
