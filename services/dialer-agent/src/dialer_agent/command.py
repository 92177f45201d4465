"""Softphones driven by a command line (``linphonecsh dial {number}``) or a ``tel:``/``sip:`` link."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable

from dialer_agent.softphone import CallListener, SoftphoneError, SoftphoneUnavailable

Opener = Callable[[str], None]


def command_for(template: str, number: str) -> list[str]:
    """``template`` split like a shell would (no shell runs), ``{number}`` filled in each word."""
    return [word.replace("{number}", number) for word in shlex.split(template, posix=os.name != "nt")]


def open_with_os(uri: str) -> None:
    """Hand ``uri`` to the program the OS registered for its scheme."""
    if sys.platform == "win32":
        os.startfile(uri)  # type: ignore[attr-defined]  # noqa: S606 — the OS handler is the point
        return
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    program = shutil.which(opener)
    if program is None:
        raise SoftphoneUnavailable(f"no se encontró {opener} para abrir {uri}")
    subprocess.Popen([program, uri], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


class CommandDriver:
    """The Softphone port over a command template or an OS link handler (no call progress)."""

    reports_progress = False

    def __init__(
        self,
        *,
        template: str | None = None,
        hangup_template: str | None = None,
        uri_scheme: str | None = None,
        opener: Opener = open_with_os,
        timeout: float = 15.0,
    ) -> None:
        if (template is None) == (uri_scheme is None):
            raise ValueError("give exactly one of template or uri_scheme")
        self._template = template
        self._hangup_template = hangup_template
        self._scheme = uri_scheme
        self._opener = opener
        self._timeout = timeout

    def watch(self, listener: CallListener) -> None:
        """Nothing to watch: a command says nothing about the call after it started."""

    def dial(self, number: str) -> None:
        """Run the dial command (or open the link); raise SoftphoneError when it fails."""
        if self._template is not None:
            self._run(command_for(self._template, number))
        else:
            try:
                self._opener(f"{self._scheme}:{number}")
            except OSError as exc:
                raise SoftphoneUnavailable(f"no se pudo abrir el enlace {self._scheme}: {exc}") from exc

    def hangup(self) -> None:
        """Run the hangup command when one is configured; otherwise the person hangs up on the phone."""
        if self._hangup_template is not None:
            self._run(command_for(self._hangup_template, ""))

    def check(self) -> str | None:
        """None when the program (or the link opener) can be found, else a Spanish message."""
        if self._template is not None:
            words = command_for(self._template, "0")
            if not words or shutil.which(words[0]) is None:
                return f"no se encontró el programa del softphone: {words[0] if words else '(vacío)'}"
            return None
        if sys.platform not in ("win32", "darwin") and shutil.which("xdg-open") is None:
            return "no se encontró xdg-open para abrir enlaces tel:/sip:"
        return None

    def close(self) -> None:
        """Nothing to release."""

    def _run(self, argv: list[str]) -> None:
        try:
            done = subprocess.run(  # noqa: S603 — argv from the desk's own settings, no shell
                argv, capture_output=True, timeout=self._timeout, check=False
            )
        except FileNotFoundError as exc:
            raise SoftphoneUnavailable(f"no se encontró el programa del softphone: {argv[0]}") from exc
        except subprocess.TimeoutExpired as exc:
            raise SoftphoneError(f"{argv[0]} no terminó en {self._timeout:g} s") from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).decode("utf-8", "replace").strip()[:200]
            raise SoftphoneError(f"{argv[0]} terminó con código {done.returncode}: {detail}")
