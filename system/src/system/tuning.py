"""Process-wide interpreter switches for bulk work, set only from here (the composition root).

Python's cyclic garbage collector and the GIL's switch interval belong to the whole process, so no
service flips them itself: the composition root hands :class:`BulkTuning` to the contacts service, which
enters it around a pipelined bulk write (``ContactsService(..., tuning=BulkTuning())``), and the import's
reading process turns its collector off in its own entry point (:mod:`system.reader`).
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class BulkTuning:
    """While any bulk write runs: the cyclic collector paused and the GIL handed over every 0.5 ms.

    **Collector.** A million-row batch allocates millions of small acyclic objects that live for a chunk
    or for the whole batch (the outcomes); the collector's generation scans over them cost as much as
    deciding the rows. Reference counting still frees everything.

    **Switch interval.** The writing thread waits on the database between short bursts of Python (a round
    trip, a ``COPY`` flush); each time it wakes, the deciding thread holds the GIL and lets go only at the
    switch interval. At Python's 5 ms a million-contact batch on PostgreSQL spent 2-5 s of its writer's
    time waiting so (writer 47.3 s, then 42.9 s; ``last_position`` alone 2.4 s, then 0.8 s).

    Both are the process's: the first bulk write in sets them, the last one out puts back what it found,
    whichever instance they entered through (nested or concurrent bulks are safe).
    """

    INTERVAL = 0.000_5

    _lock = threading.Lock()
    _running = 0
    _found_interval = 0.005
    _found_collector = True

    @contextmanager
    def __call__(self) -> Iterator[None]:
        """Hold the switches for one bulk write."""
        cls = type(self)
        with cls._lock:
            if cls._running == 0:
                cls._found_interval = sys.getswitchinterval()
                cls._found_collector = gc.isenabled()
                sys.setswitchinterval(min(cls._found_interval, self.INTERVAL))
                gc.disable()
            cls._running += 1
        try:
            yield
        finally:
            with cls._lock:
                cls._running -= 1
                if cls._running == 0:
                    sys.setswitchinterval(cls._found_interval)
                    if cls._found_collector:
                        gc.enable()
