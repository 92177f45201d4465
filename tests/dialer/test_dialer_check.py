"""``callmanager-dialer --check`` against a tiny real HTTP server and a scripted baresip."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dialer_agent.__main__ import main
from tests.dialer.doubles import FakeCtrlTcp
from tests.support.softphone import free_tcp_port

GOOD_KEY = "cm_good_key_0123456789"


class Gateway(BaseHTTPRequestHandler):
    """``/health`` and ``/me`` as the gateway answers them."""

    healthy = True

    def do_GET(self) -> None:
        if self.path == "/health":
            self._reply(200 if self.healthy else 503, {"status": "ok" if self.healthy else "degraded"})
        elif self.path == "/me":
            if self.headers.get("X-API-Key") == GOOD_KEY:
                self._reply(200, {"username": "ana", "display_name": "Ana Mora", "role": "agent"})
            else:
                self._reply(401, {"error": {"code": "unauthorized", "message": "clave no válida"}})
        else:
            self._reply(404, {})

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateway_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def baresip_ctrl() -> Iterator[str]:
    server = FakeCtrlTcp()
    yield f"127.0.0.1:{server.port}"
    server.close()


@pytest.fixture(autouse=True)
def no_desk_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in list(os.environ):
        if name.startswith("CALLMANAGER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr("dialer_agent.settings.read_keyring", lambda server: None)


def test_all_good_says_so_in_spanish_and_exits_0(
    gateway_url: str, baresip_ctrl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--check", "--server", gateway_url, "--api-key", GOOD_KEY, "--baresip-ctrl", baresip_ctrl])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Servidor {gateway_url}: disponible" in out
    assert "Clave de API: válida, de Ana Mora (rol agent)" in out
    assert "Softphone (baresip): disponible" in out
    assert GOOD_KEY not in out


def test_a_wrong_key_exits_1(gateway_url: str, baresip_ctrl: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--check", "--server", gateway_url, "--api-key", "wrong-key-000", "--baresip-ctrl", baresip_ctrl]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "Clave de API: no válida" in out
    assert "wrong-key-000" not in out


def test_an_unreachable_server_and_softphone_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"http://127.0.0.1:{free_tcp_port()}"
    code = main(
        ["--check", "--server", dead, "--api-key", GOOD_KEY, "--baresip-ctrl", f"127.0.0.1:{free_tcp_port()}"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "no responde" in out
    assert "Softphone (baresip): baresip no responde" in out


def test_an_unhealthy_server_exits_1(
    gateway_url: str, baresip_ctrl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Gateway.healthy = False
    try:
        code = main(
            ["--check", "--server", gateway_url, "--api-key", GOOD_KEY, "--baresip-ctrl", baresip_ctrl]
        )
    finally:
        Gateway.healthy = True
    assert code == 1
    assert "responde con error 503" in capsys.readouterr().out


def test_no_key_at_all_exits_1(
    gateway_url: str, baresip_ctrl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check", "--server", gateway_url, "--baresip-ctrl", baresip_ctrl]) == 1
    assert "falta la clave" in capsys.readouterr().out


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("callmanager-dialer ")
