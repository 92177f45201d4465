"""``callmanager deploy render``: the systemd units start a working system; the nginx site proxies it right.

No systemd runs the units here: the test renders them into a temporary folder, reads each unit's
``ExecStart``, ``EnvironmentFile``, ``WorkingDirectory`` and ordering, and starts the same command as a
process with the same environment — ``migrate`` to completion, then contacts, the workers, backup and two
gateway instances (the template with ``%i`` as the port).
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa
from typer.testing import CliRunner

from system.cli import app
from tests.support.servers import Process, clean_env, free_port, start, wait_healthy

EXECUTABLE = str(Path(sys.executable).with_name("callmanager"))


def read_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections as lists of (key, value): systemd allows a key more than once."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
            continue
        key, _, value = line.partition("=")
        sections[current].append((key, value))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [value for found, value in unit.get(section, []) if found == key]


def read_environment_file(path: Path) -> dict[str, str]:
    found = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key] = value
    return found


def render(out: Path, *args: str) -> None:
    result = CliRunner().invoke(app, ["deploy", "render", "--out", str(out), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture
def database(postgres_server_url: str) -> Iterator[str]:
    """A fresh database of its own: the backup unit dumps a whole database."""
    name = f"cm_systemd_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def start_unit(name: str, unit: dict[str, list[tuple[str, str]]], instance: str = "") -> Process:
    """Start a unit's ExecStart as systemd would: its environment files, working directory, %i (its log
    goes to the working directory)."""
    env = clean_env()
    for file in values(unit, "Service", "EnvironmentFile"):
        env.update(read_environment_file(Path(file.removeprefix("-"))))
    for line in values(unit, "Service", "Environment"):
        key, _, value = line.partition("=")
        env[key] = value
    (command,) = values(unit, "Service", "ExecStart")
    argv = shlex.split(command.replace("%i", instance))
    assert argv[0] == EXECUTABLE, argv
    (workdir,) = values(unit, "Service", "WorkingDirectory")
    return start(name, argv[1:], env, Path(workdir))


def test_the_rendered_units_start_a_system_that_answers_through_every_gateway_instance(
    tmp_path: Path, database: str, redis_url: str
) -> None:
    out, config, data, backups = (tmp_path / name for name in ("units", "etc", "data", "backups"))
    for folder in (config, data, backups):
        folder.mkdir()
    gateway_ports = [free_port(), free_port()]
    contacts_port = free_port()
    render(
        out,
        "--executable", EXECUTABLE,
        "--user", getpass.getuser(),
        "--config-dir", str(config),
        "--data-dir", str(data),
        "--backup-dir", str(backups),
        "--contacts-port", str(contacts_port),
        "--gateway-port", str(gateway_ports[0]),
        "--gateway-port", str(gateway_ports[1]),
    )  # fmt: skip
    shutil.copy(out / "callmanager.env", config / "callmanager.env")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    secrets = {
        "CALLMANAGER_DATABASE_URL": database,
        "CALLMANAGER_REDIS_URL": redis_url,
        "CALLMANAGER_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
        "CALLMANAGER_BUS_PREFIX": prefix,
    }
    (config / "secrets.env").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()), encoding="utf-8")
    units = {path.name: read_unit(path) for path in out.glob("*.service")}

    if shutil.which("systemd-analyze"):
        verified = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", *(str(out / name) for name in sorted(units))],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert "is not executable" not in verified.stderr, verified.stderr
        assert "Unknown key" not in verified.stderr, verified.stderr
        assert "Unknown section" not in verified.stderr, verified.stderr

    migrate = units["callmanager-migrate.service"]
    assert values(migrate, "Service", "Type") == ["oneshot"]
    for name, unit in units.items():
        if name != "callmanager-migrate.service":
            assert "callmanager-migrate.service" in values(unit, "Unit", "After")[0].split(), name
            assert values(unit, "Unit", "Requires") == ["callmanager-migrate.service"], name
    assert "callmanager-contacts.service" in values(units["callmanager-gateway@.service"], "Unit", "After")[0]

    processes: list[Process] = []
    try:
        first = start_unit("migrate", migrate)
        assert first.popen.wait(timeout=120) == 0, first.stop()
        contacts = start_unit("contacts", units["callmanager-contacts.service"])
        processes.append(contacts)
        wait_healthy(f"http://127.0.0.1:{contacts_port}", contacts)
        for service in ("generator", "importexport", "backup"):
            processes.append(start_unit(service, units[f"callmanager-{service}.service"]))
        gateways = []
        for port in gateway_ports:
            gateway = start_unit(f"gateway-{port}", units["callmanager-gateway@.service"], str(port))
            processes.append(gateway)
            gateways.append(gateway)
        for port, gateway in zip(gateway_ports, gateways, strict=True):
            wait_healthy(f"http://127.0.0.1:{port}", gateway)
            deadline = time.monotonic() + 30
            while (health := httpx.get(f"http://127.0.0.1:{port}/health")).json()["checks"]["backup"].get(
                "last_good_at"
            ) is None:  # the backup unit's first pg_dump, at its start
                assert time.monotonic() < deadline, health.text
                time.sleep(0.5)
            assert health.json()["status"] == "healthy", health.text
            # Believed from nginx's address (CALLMANAGER_TRUSTED_PROXIES=127.0.0.1): the request was TLS.
            behind_nginx = httpx.get(
                f"http://127.0.0.1:{port}/health", headers={"X-Forwarded-Proto": "https"}
            )
            assert "strict-transport-security" in behind_nginx.headers
            assert "strict-transport-security" not in health.headers
        for process in processes:
            assert process.popen.poll() is None, process.stop()
        (copy,) = backups.glob("callmanager-*.dump")
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    finally:
        for process in reversed(processes):
            process.stop()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_the_nginx_site_has_tls_the_websocket_upgrade_the_upload_limit_and_every_gateway(
    tmp_path: Path,
) -> None:
    render(tmp_path, "--server-name", "cm.lan", "--gateway-port", "5000", "--gateway-port", "5001",
           "--max-upload-mb", "100", "--metrics-allow", "10.0.0.9")  # fmt: skip
    site = (tmp_path / "nginx-callmanager.conf").read_text(encoding="utf-8")
    environment = read_environment_file(tmp_path / "callmanager.env")
    assert environment["CALLMANAGER_TRUSTED_PROXIES"] == "127.0.0.1"
    assert environment["CALLMANAGER_MAX_UPLOAD_MB"] == "100"
    for line in (
        "listen 443 ssl http2;",
        "ssl_certificate     /etc/ssl/callmanager/fullchain.pem;",
        "ssl_certificate_key /etc/ssl/callmanager/privkey.pem;",
        "ssl_protocols       TLSv1.2 TLSv1.3;",
        "return 301 https://$host$request_uri;",
        "server_name cm.lan;",
        "client_max_body_size 101m;",
        "server 127.0.0.1:5000;",
        "server 127.0.0.1:5001;",
        "ip_hash;",
        "allow 10.0.0.9;",
    ):
        assert line in site, line
    socketio = site[site.index("location /socket.io/") :]
    socketio = socketio[: socketio.index("}")]
    for line in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade    $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_read_timeout 3600s;",
    ):
        assert line in socketio, line
    assert "map $http_upgrade $connection_upgrade" in site


def test_a_remote_nginx_makes_the_gateways_listen_beyond_loopback_and_trust_only_it(tmp_path: Path) -> None:
    render(tmp_path, "--proxy", "10.0.0.2", "--upstream-host", "10.0.0.5")
    gateway = read_unit(tmp_path / "callmanager-gateway@.service")
    assert "--host 0.0.0.0" in values(gateway, "Service", "ExecStart")[0]
    contacts = read_unit(tmp_path / "callmanager-contacts.service")
    assert "--host 127.0.0.1" in values(contacts, "Service", "ExecStart")[0]
    assert read_environment_file(tmp_path / "callmanager.env")["CALLMANAGER_TRUSTED_PROXIES"] == "10.0.0.2"
    assert "server 10.0.0.5:5000;" in (tmp_path / "nginx-callmanager.conf").read_text(encoding="utf-8")


def test_nginx_accepts_the_rendered_site(tmp_path: Path) -> None:
    missing = [name for name in ("nginx", "openssl") if shutil.which(name) is None]
    if missing:
        message = f"{', '.join(missing)} not on PATH: apt-get install -y nginx-light openssl"
        if os.environ.get("CALLMANAGER_REQUIRE_SERVICES") == "1":  # CI installs them: missing is a failure
            pytest.fail(message)
        pytest.skip(message)
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=cm.lan",
         "-keyout", str(key), "-out", str(certificate)],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    render(tmp_path, "--tls-certificate", str(certificate), "--tls-certificate-key", str(key))
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\ninclude {tmp_path}/nginx-callmanager.conf;\n}}\n",
        encoding="utf-8",
    )
    checked = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
