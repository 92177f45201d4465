"""`callmanager up` serves the embedded system: a real process, a real port, a real SQLite file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            return httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def test_up_serves_health_from_a_fresh_data_dir(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMANAGER_")}
    command = [
        sys.executable,
        "-m",
        "system",
        "up",
        "--no-client",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
    ]
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        response = wait_healthy(f"http://127.0.0.1:{port}/health", process)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "healthy"
        assert body["checks"]["database"]["ok"] is True
        assert (tmp_path / "data" / "callmanager.db").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells who stopped it.
    assert process.returncode in (0, -signal.SIGTERM), stderr.decode(errors="replace")[-2000:]
    assert b"Application shutdown complete" in stderr
