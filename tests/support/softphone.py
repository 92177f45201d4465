"""Real softphone processes for tests: SIPp as the called party, baresip headless with ctrl_tcp.

Facts behind the choices are in /work/shared/SOFTPHONE.md (baresip 1.0.0, SIPp 3.6.1, loopback only).

Typical use::

    sip_port, ctrl_port, callee_port = free_udp_port(), free_tcp_port(), free_udp_port()
    sipp = start_sipp(SCENARIOS / "busy_486.xml", tmp_path, port=callee_port)
    baresip = start_baresip(tmp_path / "baresip", sip_port=sip_port, ctrl_port=ctrl_port)
    try:
        ...  # dial f"sip:60000000@127.0.0.1:{callee_port}" through 127.0.0.1:ctrl_port
        assert sipp.wait(timeout=10) == 0, sipp.log()
    finally:
        baresip.stop()
        sipp.stop()
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

BARESIP_MODULES = ("g711.so", "aubridge.so")


def softphone_tools_or_skip(*programs: str) -> None:
    """Skip the test when a program is not on PATH; fail instead when CALLMANAGER_REQUIRE_SERVICES=1."""
    missing = [name for name in programs if shutil.which(name) is None]
    if not missing:
        return
    message = (
        f"{', '.join(missing)} not on PATH: apt-get install -y --no-install-recommends baresip-core "
        "sip-tester (CI sets CALLMANAGER_REQUIRE_SERVICES=1)"
    )
    if os.environ.get("CALLMANAGER_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def free_tcp_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    """A loopback UDP port nobody is bound to right now (SIP over UDP, RTP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SippProcess:
    """A SIPp called party; ``wait`` returns its exit code (0 when the scenario passed)."""

    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path
    workdir: Path

    def wait(self, timeout: float) -> int:
        """Wait for SIPp to finish its calls; its exit code (0: every call passed the scenario)."""
        return self.popen.wait(timeout=timeout)

    def log(self) -> str:
        """What SIPp printed, plus its error log files, for assertion messages."""
        parts = [self.log_path.read_text(errors="replace")]
        for error_file in sorted(self.workdir.glob("*_errors.log")):
            parts.append(error_file.read_text(errors="replace"))
        return "\n".join(parts)[-4000:]

    def stop(self) -> None:
        """End SIPp if it still runs (SIGTERM, then SIGKILL)."""
        _terminate(self.popen, grace=5.0)


def start_sipp(
    scenario: Path,
    workdir: Path,
    *,
    port: int,
    media_port: int | None = None,
    calls: int = 1,
    rtp_echo: bool = False,
    timeout_seconds: int = 120,
) -> SippProcess:
    """Run ``sipp -sf scenario`` on 127.0.0.1:``port`` answering ``calls`` calls, with logs in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    media = media_port if media_port is not None else free_udp_port()
    argv = [
        "sipp",
        "-sf",
        str(scenario.resolve()),
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(media),
        "-m",
        str(calls),
        "-nostdin",
        "-timeout",
        f"{timeout_seconds}s",
        "-timeout_error",
        "-trace_err",
    ]
    if rtp_echo:
        argv.append("-rtp_echo")
    log_path = workdir / f"sipp-{scenario.stem}-{port}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    _wait_udp_bound(port, popen, log_path)
    return SippProcess(popen, port, log_path, workdir)


@dataclass
class BaresipProcess:
    """A headless baresip with ctrl_tcp on 127.0.0.1:``ctrl_port`` and SIP on 127.0.0.1:``sip_port``."""

    popen: subprocess.Popen[bytes]
    config_dir: Path
    sip_port: int
    ctrl_port: int
    log_path: Path

    def log(self) -> str:
        """What baresip printed, for assertion messages."""
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Teardown per SOFTPHONE.md: ``hangup`` over ctrl_tcp, SIGTERM, wait, then SIGKILL."""
        if self.popen.poll() is None:
            with contextlib.suppress(OSError):
                send_ctrl_command(self.ctrl_port, "hangup", timeout=1.0)
        _terminate(self.popen, grace=5.0)


def write_baresip_config(config_dir: Path, *, sip_port: int, ctrl_port: int, user: str = "desk") -> Path:
    """Write a headless loopback ``config`` and ``accounts`` into ``config_dir``; return the folder."""
    config_dir.mkdir(parents=True, exist_ok=True)
    modules = "\n".join(f"module\t\t\t{name}" for name in BARESIP_MODULES)
    (config_dir / "config").write_text(
        "\n".join(
            [
                "poll_method\t\tepoll",
                f"sip_listen\t\t127.0.0.1:{sip_port}",
                "net_interface\t\t127.0.0.1",
                "audio_player\t\taubridge,nil",
                "audio_source\t\taubridge,nil",
                "audio_alert\t\taubridge,nil",
                "module_path\t\t/usr/lib/baresip/modules",
                modules,
                "module_tmp\t\tuuid.so",
                "module_tmp\t\taccount.so",
                "module_app\t\tmenu.so",
                "module_app\t\tctrl_tcp.so",
                f"ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}",
                "statmode_default\toff",
                "",
            ]
        )
    )
    (config_dir / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{sip_port}>;regint=0;audio_codecs=pcmu,pcma\n"
    )
    (config_dir / "contacts").write_text("")
    return config_dir


def start_baresip(
    config_dir: Path, *, sip_port: int, ctrl_port: int, ready_timeout: float = 10.0
) -> BaresipProcess:
    """Write the config into ``config_dir``, start ``baresip -f config_dir`` and wait for ctrl_tcp."""
    write_baresip_config(config_dir, sip_port=sip_port, ctrl_port=ctrl_port)
    log_path = config_dir / "baresip.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            ["baresip", "-f", str(config_dir)],
            cwd=config_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise AssertionError(
                f"baresip exited with {popen.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        try:
            socket.create_connection(("127.0.0.1", ctrl_port), timeout=0.5).close()
            return BaresipProcess(popen, config_dir, sip_port, ctrl_port, log_path)
        except OSError:
            time.sleep(0.05)
    _terminate(popen, grace=2.0)
    raise AssertionError(f"baresip ctrl_tcp not listening within {ready_timeout} s:\n{log_path.read_text()}")


def send_ctrl_command(ctrl_port: int, command: str, params: str | None = None, timeout: float = 2.0) -> None:
    """Send one netstring command to baresip's ctrl_tcp on its own connection (no reply awaited)."""
    message: dict[str, str] = {"command": command, "token": "fixture"}
    if params is not None:
        message["params"] = params
    payload = json.dumps(message).encode()
    with socket.create_connection(("127.0.0.1", ctrl_port), timeout=timeout) as sock:
        sock.sendall(str(len(payload)).encode() + b":" + payload + b",")
        time.sleep(0.2)


def _wait_udp_bound(port: int, popen: subprocess.Popen[bytes], log_path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise AssertionError(
                f"sipp exited with {popen.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return  # SIPp holds the port
        time.sleep(0.05)
    raise AssertionError(f"sipp did not bind UDP {port} within {timeout} s:\n{log_path.read_text()}")


def _terminate(popen: subprocess.Popen[bytes], grace: float) -> None:
    if popen.poll() is not None:
        return
    popen.send_signal(signal.SIGTERM)
    try:
        popen.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(timeout=5)
