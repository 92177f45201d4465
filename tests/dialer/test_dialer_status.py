"""The desk's status reads as one Spanish line; without a terminal it is logged only when it changes."""

from __future__ import annotations

import io

from rich.console import Console

from dialer_agent.status import DeskStatus, LiveStatus, LogStatus, describe


def test_the_status_line_says_state_number_and_last_call_in_spanish() -> None:
    line = describe(
        DeskStatus("puesto-7", "ringing", True, number="988123456", last_call="922223333 ocupado")
    )
    assert (
        line == "Puesto puesto-7 · servidor conectado · sonando 988123456 · última llamada: 922223333 ocupado"
    )
    missing = describe(DeskStatus("p", "softphone_missing", False, detail="baresip no responde"))
    assert "servidor desconectado" in missing
    assert "softphone no disponible · baresip no responde" in missing


def test_the_live_line_is_drawn_on_the_terminal() -> None:
    out = io.StringIO()
    view = LiveStatus(Console(file=out, force_terminal=True, width=200))
    view.show(DeskStatus("puesto-7", "in_call", True, number="988123456"))
    view.close()
    assert "en llamada 988123456" in out.getvalue()


def test_log_status_logs_changes_only(capsys: object) -> None:
    view = LogStatus()
    shown: list[dict[str, object]] = []
    view._log = type("Log", (), {"info": lambda self, event, **kw: shown.append(kw)})()  # type: ignore[assignment]
    status = DeskStatus("p", "ready", True)
    view.show(status)
    view.show(status)
    view.show(DeskStatus("p", "dialling", True))
    assert [s["state"] for s in shown] == ["ready", "dialling"]
