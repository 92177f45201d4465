"""The InterPhone driver, with fakes that follow pywinauto's documented WindowSpecification API."""

from __future__ import annotations

from typing import Any

import pytest

from dialer_agent.interphone import InterphoneDriver, control_criteria
from dialer_agent.softphone import SoftphoneError, SoftphoneUnavailable


class FakeControl:
    """A pywinauto WindowSpecification: ``exists``, ``child_window`` and the wrapper's actions."""

    def __init__(self, desktop: FakeDesktop, criteria: dict[str, Any], present: bool = True) -> None:
        self.desktop = desktop
        self.criteria = criteria
        self.present = present

    def exists(self, timeout: float | None = None, retry_interval: float | None = None) -> bool:
        return self.present

    def child_window(self, **criteria: Any) -> FakeControl:
        key = tuple(sorted(criteria.items()))
        return self.desktop.controls.setdefault(key, FakeControl(self.desktop, criteria, present=False))

    def set_focus(self) -> FakeControl:
        self.desktop.actions.append(("focus", None))
        return self

    def set_edit_text(self, text: str) -> FakeControl:
        if self.desktop.edit_fails:
            raise RuntimeError("ValuePattern not supported")
        self.desktop.actions.append(("set_edit_text", text))
        return self

    def type_keys(self, keys: str, **options: Any) -> FakeControl:
        self.desktop.actions.append(("type_keys", keys))
        return self

    def invoke(self) -> FakeControl:
        if self.desktop.invoke_fails:
            raise RuntimeError("InvokePattern not supported")
        self.desktop.actions.append(("invoke", self.criteria.get("title_re")))
        return self

    def click_input(self) -> FakeControl:
        self.desktop.actions.append(("click_input", self.criteria.get("title_re")))
        return self


class FakeDesktop:
    """``pywinauto.Desktop(backend="uia")``: ``window(title_re=...)``."""

    def __init__(self, open_window: bool = True) -> None:
        self.open_window = open_window
        self.controls: dict[tuple[tuple[str, Any], ...], FakeControl] = {}
        self.actions: list[tuple[str, Any]] = []
        self.windows_asked: list[dict[str, Any]] = []
        self.edit_fails = False
        self.invoke_fails = False
        self.flaky = 0

    def window(self, **criteria: Any) -> FakeControl:
        self.windows_asked.append(criteria)
        if self.flaky:
            self.flaky -= 1
            raise RuntimeError("COMError: element not available")
        return FakeControl(self, criteria, present=self.open_window)

    def add(self, spec: str) -> None:
        criteria = control_criteria(spec)
        self.controls[tuple(sorted(criteria.items()))] = FakeControl(self, criteria)


NUMBER_BOX = "auto_id=txtNumero;control_type=Edit"
CALL = "title_re=(?i)^(call|llamar)$;control_type=Button"
HANGUP = "title_re=(?i)^colgar$;control_type=Button"


def driver_for(desktop: FakeDesktop, **options: Any) -> InterphoneDriver:
    return InterphoneDriver(
        title_re=".*InterPhone.*",
        number_box=NUMBER_BOX,
        call_button=CALL,
        hangup_button=HANGUP,
        retry_seconds=0,
        desktop=lambda: desktop,
        **options,
    )


def test_dial_types_the_number_and_presses_call() -> None:
    desktop = FakeDesktop()
    desktop.add(NUMBER_BOX)
    desktop.add(CALL)
    driver = driver_for(desktop)
    assert driver.reports_progress is False
    driver.dial("988123456")
    assert desktop.windows_asked[0] == {"title_re": ".*InterPhone.*"}
    assert desktop.actions == [
        ("focus", None),
        ("set_edit_text", "988123456"),
        ("invoke", "(?i)^(call|llamar)$"),
    ]


def test_without_a_call_button_enter_is_pressed_and_typing_replaces_a_stubborn_box() -> None:
    desktop = FakeDesktop()
    desktop.add(NUMBER_BOX)
    desktop.edit_fails = True
    driver_for(desktop).dial("88123456")
    assert desktop.actions == [
        ("focus", None),
        ("type_keys", "^a{BACKSPACE}88123456"),
        ("type_keys", "{ENTER}"),
    ]


def test_a_button_without_invoke_gets_a_real_click() -> None:
    desktop = FakeDesktop()
    desktop.add(NUMBER_BOX)
    desktop.add(CALL)
    desktop.invoke_fails = True
    driver_for(desktop).dial("1")
    assert desktop.actions[-1] == ("click_input", "(?i)^(call|llamar)$")


def test_a_closed_interphone_is_reported_clearly() -> None:
    driver = driver_for(FakeDesktop(open_window=False))
    with pytest.raises(SoftphoneUnavailable, match="InterPhone no está abierto"):
        driver.dial("1")
    assert "InterPhone no está abierto" in (driver.check() or "")


def test_an_open_interphone_passes_the_check() -> None:
    assert driver_for(FakeDesktop()).check() is None


def test_transient_ui_errors_are_retried() -> None:
    desktop = FakeDesktop()
    desktop.add(NUMBER_BOX)
    desktop.add(CALL)
    desktop.flaky = 2
    driver_for(desktop, attempts=3).dial("1")
    assert ("set_edit_text", "1") in desktop.actions


def test_a_missing_number_box_fails_after_the_retries() -> None:
    desktop = FakeDesktop()
    with pytest.raises(SoftphoneError, match="3 intentos"):
        driver_for(desktop).dial("1")


def test_hangup_presses_the_hangup_button() -> None:
    desktop = FakeDesktop()
    desktop.add(HANGUP)
    driver_for(desktop).hangup()
    assert desktop.actions == [("invoke", "(?i)^colgar$")]


def test_control_names_are_pywinauto_criteria() -> None:
    assert control_criteria("auto_id=txtNumero; control_type=Edit ;found_index=0") == {
        "auto_id": "txtNumero",
        "control_type": "Edit",
        "found_index": 0,
    }
    with pytest.raises(ValueError, match="control no válido"):
        control_criteria("nombre=Llamar")


def test_off_windows_the_real_desktop_says_interphone_needs_windows() -> None:
    driver = InterphoneDriver()
    message = driver.check() or ""
    assert "Windows" in message or "InterPhone" in message
