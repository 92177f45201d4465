"""Start real CallManager processes for end-to-end tests and wait until they answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.users import UserDirectory
from kernel.store import create_engine


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any CALLMANAGER_ setting of the developer's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMANAGER_")}
    env.update(extra)
    return env


@dataclass
class Process:
    """A CallManager process started by a test; ``stop`` ends it and returns what it logged."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> str:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start(name: str, args: list[str], env: dict[str, str], cwd: Path) -> Process:
    """Run ``python -m system <args>`` with its output in a log file under ``cwd``."""
    log_path = cwd / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "system", *args], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )
    return Process(name, popen, log_path)


def wait_healthy(base_url: str, process: Process, timeout: float = 30.0) -> None:
    """Poll ``/health`` until it answers 200; fail with the process log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.name} exited with {process.popen.returncode}:\n{process.stop()}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{process.name} not healthy within {timeout} s:\n{process.stop()[-3000:]}")


def wait_finished(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """The job once it finished, failed or was cancelled (polling ``GET /jobs/{id}``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("finished", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end within {timeout} s")


@dataclass
class EmbeddedServer:
    """``callmanager up`` on a free port with its own data dir."""

    base_url: str
    data_dir: Path
    process: Process
    keys: dict[str, str] = field(default_factory=dict)

    def create_user(self, username: str, role: str, team: str | None = None) -> str:
        """Create a user in the running system's database (as the CLI does); return its API key."""
        engine = create_engine(f"sqlite:///{self.data_dir / 'callmanager.db'}")
        try:
            _, issued = UserDirectory(engine).create_user(username, role, team=team)
        finally:
            engine.dispose()
        self.keys[username] = issued.plaintext
        return issued.plaintext

    def client(self, key: str) -> httpx.Client:
        """An HTTP client authenticated with ``key``."""
        return httpx.Client(base_url=self.base_url, headers={"X-API-Key": key}, timeout=30.0)


def start_embedded(tmp_path: Path, **env: str) -> EmbeddedServer:
    """Start ``callmanager up`` and wait until healthy."""
    port = free_port()
    data_dir = tmp_path / "data"
    process = start(
        "up",
        ["up", "--no-client", "--port", str(port), "--data-dir", str(data_dir)],
        clean_env(**env),
        tmp_path,
    )
    base_url = f"http://127.0.0.1:{port}"
    wait_healthy(base_url, process)
    return EmbeddedServer(base_url, data_dir, process)
