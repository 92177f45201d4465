"""The entry point of an import's reading process (:func:`importexport.classification.read_apart`), tuned.

The cyclic collector is off: classifying makes no reference cycles, and its passes over the growing heap
cost a third of the reading time. (The process's low priority is the reading's own: ``serve_reading``.)
"""

from __future__ import annotations

import gc

from importexport.classification import serve_reading

READER_COMMAND = (
    "-c",
    "import sys\nfrom system.reader import serve_reading_tuned\nserve_reading_tuned(int(sys.argv[1]))",
)
"""The interpreter arguments that run :func:`serve_reading_tuned` (the reading socket's fd follows)."""


def serve_reading_tuned(fd: int) -> None:
    """:func:`~importexport.classification.serve_reading` with the cyclic collector off."""
    gc.disable()
    serve_reading(fd)
