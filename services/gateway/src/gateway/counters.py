"""Rate-limit counters in this process's memory (embedded mode), for :class:`gateway.ratelimit.RateLimiter`.

``limits``' own ``MemoryStorage`` expires old entries from a timer thread it starts anew every 10 ms
while requests arrive; each start waits for the thread to run, on the caller's thread, which in the
gateway is the event loop (several percent of every request under load). Here a key's moving window is
a deque of hit times trimmed as it is counted: constant time per hit, no thread. Fixed windows are a
count and an expiry per key. Keys are API key ids (a few hundred at most), so they are kept.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from limits.storage import MovingWindowSupport, Storage


class WindowCounters(Storage, MovingWindowSupport):
    """Moving and fixed windows per key, in memory, safe across threads."""

    STORAGE_SCHEME = None

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}
        self._counts: dict[str, tuple[int, float]] = {}

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Count ``amount`` hits now unless that would put more than ``limit`` in the last ``expiry`` s."""
        if amount > limit:
            return False
        now = time.time()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - expiry:
                hits.popleft()
            if len(hits) + amount > limit:
                return False
            hits.extend([now] * amount)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The time of the oldest hit still in the window and how many hits it holds."""
        now = time.time()
        with self._lock:
            hits = [moment for moment in self._hits.get(key, ()) if moment > now - expiry]
        return (hits[0], len(hits)) if hits else (now, 0)

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` to the key's fixed window (a new window of ``expiry`` s when none is open)."""
        now = time.time()
        with self._lock:
            count, ends = self._counts.get(key, (0, now + expiry))
            if ends <= now:
                count, ends = 0, now + expiry
            self._counts[key] = (count + amount, ends)
            return count + amount

    def get(self, key: str) -> int:
        """The key's count in its open fixed window."""
        with self._lock:
            count, ends = self._counts.get(key, (0, 0.0))
        return count if ends > time.time() else 0

    def get_expiry(self, key: str) -> float:
        """When the key's fixed window closes."""
        with self._lock:
            return self._counts.get(key, (0, time.time()))[1]

    def check(self) -> bool:
        """Always available."""
        return True

    def reset(self) -> int | None:
        """Forget every key; return how many there were."""
        with self._lock:
            dropped = len(self._hits) + len(self._counts)
            self._hits.clear()
            self._counts.clear()
        return dropped

    def clear(self, key: str) -> None:
        """Forget one key."""
        with self._lock:
            self._hits.pop(key, None)
            self._counts.pop(key, None)
