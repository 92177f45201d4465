"""Schemathesis against the running gateway's own ``/openapi.json``: no 5xx, no response off its schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import start_embedded

# Key rotation, revocation and deactivation would lock the fuzzer out with its own key, and changing the
# rate limits would throttle the rest of the run; both are covered by their own tests.
EXCLUDED = r"^/config$|/admin/.*(rotate-key|keys|deactivate)"


@pytest.mark.slow
def test_fuzzing_the_openapi_schema_finds_no_server_error(tmp_path: Path) -> None:
    server = start_embedded(
        tmp_path, CALLMANAGER_RATE_LIMIT="100000/minute", CALLMANAGER_RATE_LIMIT_HEAVY="100000/minute"
    )
    try:
        key = server.create_user("fuzzer", "TI")
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{server.base_url}/openapi.json",
                "--header",
                f"X-API-Key: {key}",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                "15",
                "--seed",
                "20261124",
                "--exclude-path-regex",
                EXCLUDED,
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=tmp_path,
        )
    finally:
        log = server.process.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Traceback" not in log
