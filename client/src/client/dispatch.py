"""Threads meet Tk here: network calls run on worker threads, their results are queued and the Tk thread
drains the queue with ``after()``. View models only see the ``Runner`` and ``Scheduler`` protocols."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Runner(Protocol):
    """Runs a blocking call away from the UI and delivers its outcome on the UI thread."""

    def submit(
        self, call: Callable[[], T], on_done: Callable[[T], None], on_error: Callable[[Exception], None]
    ) -> None:
        """Run ``call``; later, on the UI thread, ``on_done(result)`` or ``on_error(exc)``."""


class Scheduler(Protocol):
    """Timers on the UI thread."""

    def call_later(self, delay_ms: int, callback: Callable[[], None]) -> object:
        """Run ``callback`` on the UI thread after ``delay_ms``; returns a handle for ``cancel``."""

    def cancel(self, handle: object) -> None:
        """Cancel a pending callback (a fired or unknown handle is ignored)."""

    def now(self) -> float:
        """Monotonic seconds."""


class Dispatcher:
    """A thread-safe inbox of callables, run on the Tk thread by ``drain`` (polled with ``after``)."""

    def __init__(self) -> None:
        self._inbox: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]]] = queue.SimpleQueue()
        self._widget: Any = None
        self._interval_ms = 15
        self._after_id: str | None = None
        self.on_error: Callable[[BaseException], None] | None = None

    def post(self, callback: Callable[..., None], *args: Any) -> None:
        """Queue ``callback(*args)`` for the UI thread (any thread may call this)."""
        self._inbox.put((callback, args))

    def drain(self, budget_s: float = 0.05) -> int:
        """Run queued callbacks until empty or ``budget_s`` spent; returns how many ran."""
        deadline = time.perf_counter() + budget_s
        ran = 0
        while True:
            try:
                callback, args = self._inbox.get_nowait()
            except queue.Empty:
                return ran
            try:
                callback(*args)
            except Exception as exc:  # one bad callback must not stop the UI loop
                if self.on_error is None:
                    raise
                self.on_error(exc)
            ran += 1
            if time.perf_counter() >= deadline:
                return ran

    def attach(self, widget: Any, interval_ms: int = 15) -> None:
        """Start draining on ``widget``'s Tk loop every ``interval_ms``."""
        self._widget = widget
        self._interval_ms = interval_ms
        self._tick()

    def detach(self) -> None:
        """Stop draining."""
        if self._widget is not None and self._after_id is not None:
            self._widget.after_cancel(self._after_id)
        self._widget = None

    def _tick(self) -> None:
        if self._widget is None:
            return
        self.drain()
        self._after_id = self._widget.after(self._interval_ms, self._tick)


class ThreadRunner:
    """A small thread pool whose results come back through the dispatcher."""

    def __init__(self, dispatcher: Dispatcher, workers: int = 4) -> None:
        self._dispatcher = dispatcher
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="callmanager-net")

    def submit(
        self, call: Callable[[], T], on_done: Callable[[T], None], on_error: Callable[[Exception], None]
    ) -> None:
        """Run ``call`` on a worker; deliver the outcome through the dispatcher."""

        def work() -> None:
            try:
                result = call()
            except Exception as exc:  # every failure is reported to the view model
                self._dispatcher.post(on_error, exc)
                return
            self._dispatcher.post(on_done, result)

        self._pool.submit(work)

    def shutdown(self) -> None:
        """Stop accepting work; running calls finish on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)


class TkScheduler:
    """``Scheduler`` over a Tk widget's ``after``."""

    def __init__(self, widget: Any) -> None:
        self._widget = widget

    def call_later(self, delay_ms: int, callback: Callable[[], None]) -> object:
        """Run ``callback`` after ``delay_ms`` on the Tk thread."""
        return self._widget.after(delay_ms, callback)

    def cancel(self, handle: object) -> None:
        """Cancel a pending ``after``."""
        try:
            self._widget.after_cancel(handle)
        except Exception:  # Tk raises TclError for an already fired id
            return

    def now(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()


class InlineRunner:
    """Runs calls at once on the calling thread (tests, and scripts without a UI)."""

    def submit(
        self, call: Callable[[], T], on_done: Callable[[T], None], on_error: Callable[[Exception], None]
    ) -> None:
        """Run ``call`` now and report its outcome now."""
        try:
            result = call()
        except Exception as exc:  # every failure is reported to the view model
            on_error(exc)
            return
        on_done(result)
