"""The virtual display the GUI tests share (one ``Xvfb`` per session): a failure, not a skip, in CI."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from xscreen import Xvfb, use_display

REQUIRE = os.environ.get("CALLMANAGER_REQUIRE_SERVICES") == "1"


def missing(message: str) -> None:
    """Fail when CI requires every service, skip otherwise."""
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """``DISPLAY`` of an Xvfb started for the tests (restored afterwards)."""
    if not Xvfb.available():
        missing("Xvfb is not installed (apt-get install xvfb); the GUI tests need a virtual display")
    try:
        import tkinter  # noqa: F401
    except ImportError as exc:
        missing(f"tkinter missing: {exc}")
    server = Xvfb().start()
    previous = os.environ.get("DISPLAY")
    use_display(server.display)
    yield server.display
    server.stop()
    if previous is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = previous
