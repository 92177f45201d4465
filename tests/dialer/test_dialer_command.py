"""The command driver runs the desk's own command (no shell) or hands a tel:/sip: link to the OS."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from dialer_agent.command import CommandDriver, command_for
from dialer_agent.softphone import SoftphoneError, SoftphoneUnavailable


def recorder(tmp_path: Path, name: str = "argv.json") -> str:
    """A template running Python that writes its arguments to a file."""
    script = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    out = tmp_path / name
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} {shlex.quote(str(out))} dial {{number}}"


def test_the_template_runs_as_a_real_process_with_the_number(tmp_path: Path) -> None:
    driver = CommandDriver(template=recorder(tmp_path))
    assert driver.reports_progress is False
    driver.dial("988123456")
    assert json.loads((tmp_path / "argv.json").read_text()) == ["dial", "988123456"]


def test_no_shell_sees_the_number() -> None:
    assert command_for("linphonecsh dial {number}", "8812; rm -rf /") == [
        "linphonecsh",
        "dial",
        "8812; rm -rf /",
    ]
    assert command_for("'C:/Program Files/x/sip.exe' {number}", "1") == ["C:/Program Files/x/sip.exe", "1"]


def test_a_failing_command_is_a_softphone_error_with_its_output(tmp_path: Path) -> None:
    script = "import sys; sys.exit(sys.stderr.write('sin línea'))"
    failing = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} {{number}}"
    with pytest.raises(SoftphoneError, match="sin línea"):
        CommandDriver(template=failing).dial("1")


def test_a_missing_program_is_reported_by_dial_and_check() -> None:
    driver = CommandDriver(template="no-such-softphone-xyz dial {number}")
    with pytest.raises(SoftphoneUnavailable):
        driver.dial("1")
    assert "no-such-softphone-xyz" in (driver.check() or "")


def test_check_is_fine_when_the_program_exists(tmp_path: Path) -> None:
    assert CommandDriver(template=recorder(tmp_path)).check() is None


def test_hangup_runs_the_hangup_command_when_there_is_one(tmp_path: Path) -> None:
    script = "import sys; open(sys.argv[1], 'w').write('colgado')"
    hangup = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} {shlex.quote(str(tmp_path / 'h'))}"
    CommandDriver(template=recorder(tmp_path), hangup_template=hangup).hangup()
    assert (tmp_path / "h").read_text() == "colgado"
    CommandDriver(template=recorder(tmp_path)).hangup()  # nothing configured: nothing happens


def test_links_go_to_the_os_handler() -> None:
    opened: list[str] = []
    CommandDriver(uri_scheme="tel", opener=opened.append).dial("988123456")
    CommandDriver(uri_scheme="sip", opener=opened.append).dial("988123456")
    assert opened == ["tel:988123456", "sip:988123456"]
