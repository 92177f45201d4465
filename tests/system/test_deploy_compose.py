"""deploy/docker-compose.yml run without Docker: every service's command as a real process.

The test reads the compose file, interpolates it as compose would (``${VAR}`` from the ``.env`` that
``setup-secure`` writes), maps the ``postgres`` and ``redis`` hosts to the local servers (a fresh database
and bus prefix), each service's port and named volume to free ports and folders, then starts the services
in ``depends_on`` order — ``migrate`` to completion, ``contacts`` until its own healthcheck passes, every
replica of the workers — and drives the product through the gateway alone.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
import yaml

from tests.gateway.test_live_e2e import Listener
from tests.support.servers import Process, clean_env, free_port, start

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"
IMAGE_HEALTHCHECK = "/usr/local/lib/callmanager/healthcheck.py"
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``."""

    def value(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        found = variables.get(name)
        if operator and operator.endswith("?") and not found:
            raise AssertionError(f"compose would refuse to start: {argument}")
        if found is None or (operator == ":-" and not found):
            return argument or ""
        return found

    return VARIABLE.sub(value, text)


def read_compose(dotenv: dict[str, str]) -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text(encoding="utf-8"), dotenv))
    return parsed


def start_order(services: dict[str, Any]) -> list[str]:
    """Services in ``depends_on`` order (each after everything it depends on)."""
    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {(*path, name)}"
        if name in ordered:
            return
        for dependency in services[name].get("depends_on", {}):
            visit(dependency, (*path, name))
        ordered.append(name)

    for name in services:
        visit(name, ())
    return ordered


@dataclass
class Compose:
    """The compose file's services running here as processes."""

    gateway_url: str
    env: dict[str, str]
    volumes: dict[str, Path]
    workdir: Path
    processes: dict[str, list[Process]] = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        """``docker compose exec gateway callmanager ARGS``: a command with the gateway's environment."""
        done = subprocess.run(
            [sys.executable, "-m", "system", *args],
            env=self.env, cwd=self.workdir, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def create_user(self, username: str, role: str) -> str:
        created = json.loads(self.cli("users", "create", "-u", username, "-r", role, "--json"))
        key: str = created["api_key"]
        return key


def wait_until_healthy(test: list[str], process: Process, timeout: float = 30.0) -> None:
    """Run a compose healthcheck command until it succeeds, as Docker would before ``service_healthy``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.name} exited with {process.popen.returncode}:\n{process.stop()}")
        if subprocess.run(test, capture_output=True, timeout=10, check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{process.name} not healthy within {timeout} s:\n{process.stop()[-3000:]}")


def local_healthcheck(service: dict[str, Any], ports: dict[int, int]) -> list[str]:
    """The service's healthcheck ``test`` with the image's paths and ports mapped to this machine."""
    test = list(service["healthcheck"]["test"])
    assert test[:3] == ["CMD", "python", IMAGE_HEALTHCHECK], test
    return [sys.executable, str(HEALTHCHECK), *(str(ports.get(int(a), a)) for a in test[3:])]


@pytest.fixture
def compose(postgres_server_url: str, redis_url: str, tmp_path: Path) -> Iterator[Compose]:
    dotenv = {
        "POSTGRES_PASSWORD": uuid.uuid4().hex,
        "CALLMANAGER_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
    }
    spec = read_compose(dotenv)
    services: dict[str, Any] = spec["services"]
    database = f"cm_compose_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
    local_database = sa.make_url(postgres_server_url).set(database=database)
    prefix = f"t{uuid.uuid4().hex[:10]}"
    volumes = {name: tmp_path / "volumes" / name for name in spec["volumes"]}
    for folder in volumes.values():
        folder.mkdir(parents=True)

    ports: dict[str, dict[int, int]] = {}  # service -> container port -> local port
    for name, service in services.items():
        command = service.get("command", [])
        if "--port" in command:
            ports[name] = {int(command[command.index("--port") + 1]): free_port()}

    def local_value(name: str, key: str, value: str) -> str:
        if key == "CALLMANAGER_DATABASE_URL":
            url = sa.make_url(value)
            assert (url.host, url.database) == ("postgres", "callmanager"), value
            return local_database.render_as_string(hide_password=False)
        if key == "CALLMANAGER_REDIS_URL":
            assert value == "redis://redis:6379/0", value
            return redis_url
        for other, mapped in ports.items():
            for inside, outside in mapped.items():
                value = value.replace(f"http://{other}:{inside}", f"http://127.0.0.1:{outside}")
        for mount in services[name].get("volumes", []):
            volume, target = mount.split(":")[:2]
            if value == target:
                return str(volumes[volume])
        if value in ("/data", "/backups"):  # the container's own filesystem
            own = tmp_path / "containers" / name / value.strip("/")
            own.mkdir(parents=True, exist_ok=True)
            return str(own)
        return value

    def environment(name: str) -> dict[str, str]:
        env = clean_env(**dotenv, CALLMANAGER_BUS_PREFIX=prefix)  # env_file: ../.env
        for key, value in services[name].get("environment", {}).items():
            env[key] = local_value(name, key, str(value))
        return env

    def local_command(name: str) -> list[str]:
        command = [str(part) for part in services[name]["command"]]
        assert command[0] == "callmanager", command
        args = command[1:]
        if "--host" in args:
            args[args.index("--host") + 1] = "127.0.0.1"
        if "--port" in args:
            at = args.index("--port") + 1
            args[at] = str(ports[name][int(args[at])])
        return args

    gateway_port = ports["gateway"][5000]
    running = Compose(f"http://127.0.0.1:{gateway_port}", environment("gateway"), volumes, tmp_path)
    try:
        for name in start_order(services):
            service = services[name]
            if name in ("postgres", "redis"):
                continue  # the local servers stand in for these containers
            replicas = int(service.get("deploy", {}).get("replicas", 1))
            started = []
            for n in range(replicas):
                log_name = name if replicas == 1 else f"{name}-{n + 1}"
                process = start(log_name, local_command(name), environment(name), tmp_path)
                started.append(process)
            running.processes[name] = started
            if service.get("restart") == "no":  # a one-shot that others wait to complete
                assert started[0].popen.wait(timeout=120) == 0, started[0].stop()
            elif not service["healthcheck"].get("disable"):
                wait_until_healthy(local_healthcheck(service, ports[name]), started[0])
        yield running
    finally:
        for processes in reversed(list(running.processes.values())):
            for process in processes:
                process.stop()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def test_compose_publishes_only_the_gateway_and_gives_postgres_and_redis_healthchecks_and_volumes() -> None:
    services = read_compose({"POSTGRES_PASSWORD": "x" * 32})["services"]
    assert [name for name, service in services.items() if "ports" in service] == ["gateway"]
    assert services["gateway"]["ports"] == ["5000:5000"]
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["volumes"], name
    assert {"gateway", "contacts", "generator", "importexport", "backup", "migrate"} <= set(services)
    assert services["migrate"]["restart"] == "no"
    for name in ("contacts", "gateway", "generator", "importexport", "backup"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["backup"]["environment"]["CALLMANAGER_BACKUP_DIR"] == "/backups"
    assert "backups:/backups" in services["backup"]["volumes"]


def test_compose_refuses_to_start_without_the_postgres_password() -> None:
    with pytest.raises(AssertionError, match="set POSTGRES_PASSWORD"):
        read_compose({})


def wait_job(client: httpx.Client, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("finished", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not done within {timeout} s")


def test_every_compose_service_runs_and_the_product_works_through_the_gateway(compose: Compose) -> None:
    assert [len(compose.processes[name]) for name in ("generator", "importexport")] == [2, 2]
    marta = compose.create_user("marta", "ProjectManager")
    ana = compose.create_user("ana", "Agent")
    luis = compose.create_user("luis", "Agent")
    live = Listener(compose.gateway_url, {"api_key": luis})
    try:
        with (
            httpx.Client(base_url=compose.gateway_url, headers={"X-API-Key": ana}, timeout=30) as agent,
            httpx.Client(base_url=compose.gateway_url, headers={"X-API-Key": marta}, timeout=30) as manager,
            httpx.Client(base_url=compose.gateway_url, headers={"X-API-Key": luis}, timeout=30) as other,
        ):
            created = agent.post("/contacts", json={"phone": "8812-3456", "name": "Ana Pérez"})
            assert created.status_code == 201, created.text
            contact_id = created.json()["id"]
            assert live.wait_for("contact_created", id=contact_id)["contact"]["name"] == "Ana Pérez"

            locked = agent.post(f"/contacts/{contact_id}/lock")
            assert locked.status_code == 200, locked.text
            assert live.wait_for("contact_locked", id=contact_id)["locked_by_name"] == "ana"
            assert other.put(f"/contacts/{contact_id}", json={"note": "no"}).status_code == 423
            updated = agent.put(f"/contacts/{contact_id}", json={"note": "llamar el lunes"})
            assert updated.status_code == 200, updated.text
            assert live.wait_for("contact_updated", id=contact_id)

            upload = manager.post(
                "/import", files={"file": ("l.csv", "telefono;nombre\n8899-0002;Dos\n8899-0003;Tres\n")}
            )
            assert upload.status_code == 202, upload.text
            imported = wait_job(manager, upload.json()["id"])
            assert (imported["state"], imported["report"]["inserted"]) == ("finished", 2), imported

            now = manager.post("/api/generate_contacts", json={"amount": 40, "save": True, "seed": 3})
            assert now.status_code == 200, now.text
            assert now.json()["saved"] == 40
            queued = manager.post("/api/generate_contacts", json={"amount": 1200, "save": True})
            assert queued.status_code == 202, queued.text
            generated = wait_job(manager, queued.json()["id"])
            assert (generated["state"], generated["report"]["saved"]) == ("finished", 1200), generated

            exported = manager.get("/export", params={"format": "csv", "list": imported["report"]["list"]})
            assert exported.status_code == 200, exported.text
            assert len(exported.content.decode("utf-8-sig").splitlines()) == 3

            deadline = time.monotonic() + 60
            while (backup := httpx.get(f"{compose.gateway_url}/health").json()["checks"]["backup"]).get(
                "last_good_at"
            ) is None:
                assert time.monotonic() < deadline, f"no backup reported in /health: {backup}"
                time.sleep(0.5)
    finally:
        live.close()
    copies = list(compose.volumes["backups"].glob("callmanager-*.dump"))
    assert len(copies) == 1, copies
    assert stat.S_IMODE(copies[0].stat().st_mode) == 0o600
    assert "last_error" not in backup, backup
