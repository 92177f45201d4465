"""InterPhone (Windows) driven through its window with pywinauto's UI Automation backend.

InterPhone has no public API: the driver finds its window by a title pattern, types the number in the
number box and presses the call button (Enter when the button is not found). Control names come from
the settings as ``key=value;key=value`` pywinauto criteria, e.g. ``auto_id=txtNumero;control_type=Edit``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from dialer_agent.softphone import CallListener, SoftphoneError, SoftphoneUnavailable

log = structlog.get_logger(__name__)

_CRITERIA = {"title", "title_re", "auto_id", "class_name", "control_type", "found_index", "best_match"}


class Control(Protocol):
    """The part of pywinauto's WindowSpecification the driver uses."""

    def exists(self, timeout: float | None = None, retry_interval: float | None = None) -> bool: ...

    def child_window(self, **criteria: Any) -> Control: ...


class Desktop(Protocol):
    """The part of ``pywinauto.Desktop(backend="uia")`` the driver uses."""

    def window(self, **criteria: Any) -> Control: ...


def control_criteria(spec: str) -> dict[str, Any]:
    """``"auto_id=txtNumero;control_type=Edit"`` → pywinauto ``child_window`` keyword arguments."""
    criteria: dict[str, Any] = {}
    for part in spec.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in _CRITERIA:
            raise ValueError(f"control no válido {part!r}: use clave=valor con {sorted(_CRITERIA)}")
        criteria[key] = int(value) if key == "found_index" else value.strip()
    if not criteria:
        raise ValueError("falta el nombre del control")
    return criteria


def uia_desktop() -> Desktop:
    """pywinauto's UIA desktop, imported only when needed and only on Windows."""
    if sys.platform != "win32":
        raise SoftphoneUnavailable("el controlador InterPhone solo funciona en Windows")
    try:
        from pywinauto import Desktop as PywinautoDesktop
    except ImportError as exc:
        raise SoftphoneUnavailable("falta pywinauto: instale callmanager-dialer en Windows") from exc
    desktop: Desktop = PywinautoDesktop(backend="uia")
    return desktop


class InterphoneDriver:
    """The Softphone port over InterPhone's window (no call progress: the agent ends each call)."""

    reports_progress = False

    def __init__(
        self,
        *,
        title_re: str = r".*InterPhone.*",
        number_box: str = "control_type=Edit",
        call_button: str = "title_re=(?i)^(call|llamar|marcar)$;control_type=Button",
        hangup_button: str | None = None,
        attempts: int = 3,
        retry_seconds: float = 0.5,
        desktop: Callable[[], Desktop] = uia_desktop,
    ) -> None:
        self._title_re = title_re
        self._number_box = control_criteria(number_box)
        self._call_button = control_criteria(call_button)
        self._hangup_button = control_criteria(hangup_button) if hangup_button else None
        self._attempts = attempts
        self._retry_seconds = retry_seconds
        self._desktop = desktop

    def watch(self, listener: CallListener) -> None:
        """Nothing to watch: InterPhone's window does not tell the call's progress."""

    def dial(self, number: str) -> None:
        """Type ``number`` in the number box and press call, retrying; raise when InterPhone is closed."""
        last: Exception | None = None
        for attempt in range(1, self._attempts + 1):
            try:
                self._dial_once(number)
                return
            except SoftphoneUnavailable:
                raise
            except Exception as exc:  # pywinauto raises many kinds (ElementNotFound, COMError, timeouts)
                last = exc
                log.warning("interphone.dial_retry", attempt=attempt, error=str(exc))
                time.sleep(self._retry_seconds)
        raise SoftphoneError(f"no se pudo marcar en InterPhone tras {self._attempts} intentos: {last}")

    def hangup(self) -> None:
        """Press the hang-up button when configured and present."""
        if self._hangup_button is None:
            return
        window = self._window()
        button = window.child_window(**self._hangup_button)
        if button.exists(timeout=1):
            _press(button)
        else:
            log.warning("interphone.no_hangup_button", criteria=self._hangup_button)

    def check(self) -> str | None:
        """None when InterPhone's window is open, else a Spanish message."""
        try:
            self._window()
        except SoftphoneUnavailable as exc:
            return str(exc)
        return None

    def close(self) -> None:
        """Nothing to release."""

    def _window(self) -> Any:
        window = self._desktop().window(title_re=self._title_re)
        if not window.exists(timeout=2):
            raise SoftphoneUnavailable(
                f"InterPhone no está abierto (ninguna ventana con título que coincida con {self._title_re!r})"
            )
        return window

    def _dial_once(self, number: str) -> None:
        window = self._window()
        window.set_focus()
        box = window.child_window(**self._number_box)
        if not box.exists(timeout=2):
            raise SoftphoneError(f"no se encontró la casilla del número en InterPhone ({self._number_box})")
        try:
            box.set_edit_text(number)
        except Exception:  # some edit boxes refuse ValuePattern; typing works on all of them
            box.type_keys("^a{BACKSPACE}" + number, with_spaces=False, set_foreground=True)
        button = window.child_window(**self._call_button)
        if button.exists(timeout=1):
            _press(button)
        else:
            box.type_keys("{ENTER}", set_foreground=True)


def _press(button: Any) -> None:
    try:
        button.invoke()
    except Exception:  # buttons without InvokePattern still take a real click
        button.click_input()
