"""`callmanager up` opens the desktop client only where a window can be shown."""

from __future__ import annotations

import sys

import pytest

from kernel.settings import load_settings
from system.desk import display_available, start_client_beside


@pytest.mark.skipif(sys.platform != "linux", reason="the X11/Wayland rule is Linux's")
def test_no_client_is_started_without_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert display_available() is False
    assert start_client_beside(load_settings()) is None


@pytest.mark.skipif(sys.platform != "linux", reason="the X11/Wayland rule is Linux's")
def test_a_display_makes_the_client_startable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":99")
    assert display_available() is True
