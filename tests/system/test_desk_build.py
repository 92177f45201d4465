"""PyInstaller builds of the client and the dialer agent, made from the desk-only lock, actually run.

A desk-only venv (``requirements/desk.txt`` plus the three desk distributions, no server package) is kept
under ``build/desk-venv-<lock hash>`` so reruns skip the install; both spec files are built into
``build/desk/dist`` on every run. Then: ``--version`` on both programs, the websocket transport and no
server package inside the bundles, the built client's window under Xvfb against a real gateway, and the
built dialer agent's ``--check`` against that gateway and against nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.client.xscreen import Xvfb
from tests.support.servers import EmbeddedServer, free_port, start_embedded
from tests.system.test_desk_lock import OFFLINE

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
DESK_LOCK = ROOT / "requirements" / "desk.txt"
REQUIRE = os.environ.get("CALLMANAGER_REQUIRE_SERVICES") == "1"
SERVER_MODULES = ("sqlalchemy", "psycopg", "redis", "fastapi", "uvicorn", "uvloop", "aiohttp", "alembic")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@dataclass(frozen=True)
class Builds:
    """The desk venv's interpreter and the two built programs."""

    python: Path
    client: Path
    dialer: Path


def project_version(folder: str) -> str:
    data = tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def run(command: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``command``; fail the test with its output when it fails (skip when pip found no network,
    outside CI)."""
    result = subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-5000:]
        offline = OFFLINE.search(output)
        if offline and not REQUIRE:
            pytest.skip(f"no network to install the desk lock: {offline.group(0)}")
        pytest.fail(f"{command[0]} {command[1:4]} exited {result.returncode}:\n{output}")
    return result


def desk_venv() -> Path:
    """The desk-only venv for the current lock (made once per lock hash); returns its interpreter."""
    digest = hashlib.sha256(DESK_LOCK.read_bytes()).hexdigest()[:12]
    venv = BUILD / f"desk-venv-{digest}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists():
        for stale in BUILD.glob("desk-venv-*"):  # made for an older lock
            shutil.rmtree(stale, ignore_errors=True)
        run([sys.executable, "-m", "venv", venv])
        run([python, "-m", "pip", "install", "--quiet", "-r", DESK_LOCK], timeout=1200)
        stamp.touch()
    # The desk distributions themselves, as built packages (their metadata goes into the bundles).
    run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--force-reinstall",
            ROOT / "kernel",
            ROOT / "client",
            ROOT / "services" / "dialer-agent",
        ],
        timeout=600,
    )
    return python


@pytest.fixture(scope="module")
def builds() -> Builds:
    """Both programs built with their spec files from the desk venv."""
    python = desk_venv()
    installed = run([python, "-m", "pip", "list", "--format=freeze"]).stdout.lower()
    assert not [m for m in SERVER_MODULES if f"\n{m}==" in f"\n{installed}"], (
        "server package in the desk venv"
    )
    dist, work = BUILD / "desk" / "dist", BUILD / "desk" / "work"
    for spec in ("client.spec", "dialer.spec"):
        run(
            [
                python,
                "-m",
                "PyInstaller",
                "--noconfirm",
                "--log-level",
                "WARN",
                "--distpath",
                dist,
                "--workpath",
                work,
                ROOT / "desk" / spec,
            ],
            cwd=ROOT,
            timeout=1200,
        )
    return Builds(
        python,
        dist / "callmanager-client" / "callmanager-client",
        dist / "callmanager-dialer" / "callmanager-dialer",
    )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """A real gateway (``callmanager up``) for the built programs to talk to."""
    server = start_embedded(tmp_path_factory.mktemp("desk-gateway"))
    try:
        yield server
    finally:
        server.process.stop()


def bundle_modules(builds: Builds, program: Path) -> str:
    """Every module name inside a built program's archives (PyInstaller's archive viewer)."""
    viewer = builds.python.parent / "pyi-archive_viewer"
    return run([viewer, "--list", "--recursive", "--brief", program]).stdout


def test_both_programs_report_their_version(builds: Builds) -> None:
    client = run([builds.client, "--version"], timeout=60)
    dialer = run([builds.dialer, "--version"], timeout=60)
    assert client.stdout.strip() == f"callmanager-client {project_version('client')}"
    assert dialer.stdout.strip() == f"callmanager-dialer {project_version('services/dialer-agent')}"


def test_bundles_carry_the_websocket_transport_and_no_server_package(builds: Builds) -> None:
    for program in (builds.client, builds.dialer):
        modules = set(bundle_modules(builds, program).split())
        assert {"websocket", "websocket._app", "engineio.client", "socketio.client"} <= modules, program.name
        leaked = sorted(m for m in modules if m.split(".")[0] in (*SERVER_MODULES, "gateway", "system"))
        assert leaked == [], f"{program.name} carries server modules: {leaked[:10]}"
        assert not list(program.parent.glob("_internal/uvloop*")), program.name
    client_modules = set(bundle_modules(builds, builds.client).split())
    assert {"client.update", "cryptography.hazmat.primitives.asymmetric.ed25519"} <= client_modules
    assert (builds.client.parent / "_internal" / "customtkinter").is_dir()  # themes and fonts as files


def test_built_dialer_checks_a_real_gateway(builds: Builds, gateway: EmbeddedServer, tmp_path: Path) -> None:
    key = gateway.create_user("desk-agent", "Agent")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMANAGER_")}
    result = subprocess.run(
        [
            str(builds.dialer),
            "--check",
            "--server",
            gateway.base_url,
            "--api-key",
            key,
            "--desk",
            "puesto-1",
            "--softphone",
            "command",
            "--command-template",
            "true {number}",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"✔ Servidor {gateway.base_url}: disponible" in result.stdout
    assert "✔ Clave de API: válida, de desk-agent (rol Agent)" in result.stdout
    assert "✔ Softphone (command): disponible" in result.stdout


def test_built_dialer_says_in_spanish_when_nothing_answers(builds: Builds, tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMANAGER_")}
    result = subprocess.run(
        [
            str(builds.dialer),
            "--check",
            "--server",
            nowhere,
            "--api-key",
            "k" * 32,
            "--softphone",
            "command",
            "--command-template",
            "true {number}",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert f"✘ Servidor {nowhere}: no responde (ConnectionError)" in result.stdout
    assert "✘ Clave de API: no se pudo comprobar (ConnectionError)" in result.stdout


def window_names(display: str) -> list[str]:
    """The names of every window on ``display`` (libX11 through ctypes)."""
    x11 = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultRootWindow.restype = ctypes.c_ulong
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong] + [ctypes.c_void_p] * 3 + [ctypes.c_void_p]
    x11.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_char_p)]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = x11.XOpenDisplay(display.encode())
    assert handle, f"cannot open X display {display}"
    names: list[str] = []
    try:
        pending = [x11.XDefaultRootWindow(handle)]
        while pending:
            window = pending.pop()
            name = ctypes.c_char_p()
            if x11.XFetchName(handle, window, ctypes.byref(name)) and name.value:
                names.append(name.value.decode("utf-8", "replace"))
            root, parent = ctypes.c_ulong(), ctypes.c_ulong()
            children, count = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
            if x11.XQueryTree(
                handle,
                window,
                ctypes.byref(root),
                ctypes.byref(parent),
                ctypes.byref(children),
                ctypes.byref(count),
            ):
                pending.extend(children[i] for i in range(count.value))
    finally:
        x11.XCloseDisplay(handle)
    return names


@pytest.mark.gui
def test_built_client_opens_its_window_on_a_real_gateway(
    builds: Builds, gateway: EmbeddedServer, tmp_path: Path
) -> None:
    if not Xvfb.available():
        message = "Xvfb is not installed (apt-get install xvfb); the built client needs a virtual display"
        if REQUIRE:
            pytest.fail(message)
        pytest.skip(message)
    key = gateway.create_user("desk-lead", "TeamLead")
    screen = Xvfb().start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMANAGER_")}
    env.update(DISPLAY=screen.display, CALLMANAGER_API_KEY=key, CALLMANAGER_CLIENT_CONFIG_DIR=str(tmp_path))
    client = subprocess.Popen(
        [str(builds.client), "--url", gateway.base_url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        names: list[str] = []
        while time.monotonic() < deadline and client.poll() is None:
            names = window_names(screen.display)
            if "CallManager" in names:
                break
            time.sleep(0.2)
        alive = client.poll() is None
    finally:
        client.terminate()
        try:
            output = client.communicate(timeout=15)[0].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            client.kill()
            output = client.communicate()[0].decode("utf-8", "replace")
        screen.stop()
    assert alive, f"the built client exited {client.returncode}:\n{output[-3000:]}"
    assert "CallManager" in names, f"no CallManager window among {names}:\n{output[-3000:]}"


def test_a_built_release_goes_through_the_gateway_and_the_installed_client_switches_to_it(
    builds: Builds, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from client.update import Updater, load_public_key, program_in
    from desk.publish import new_key, release

    # The release zip as the Windows workflow makes it (python -m zipfile -c), signed and published.
    archive = tmp_path / "callmanager-desk-0.1.1-linux.zip"
    run(
        [sys.executable, "-m", "zipfile", "-c", archive, builds.client.parent, builds.dialer.parent],
        timeout=300,
    )
    new_key(tmp_path / "desk.key", tmp_path / "update_key.pub")
    published = tmp_path / "published"
    release(tmp_path / "desk.key", "0.1.1", None, published, [archive])
    server = start_embedded(
        tmp_path_factory.mktemp("release-gateway"), CALLMANAGER_DESK_UPDATES_DIR=str(published)
    )
    try:
        key = server.create_user("desk-ana", "Agent")
        public = load_public_key({"CALLMANAGER_UPDATE_PUBLIC_KEY": (tmp_path / "update_key.pub").read_text()})
        assert public is not None
        updates = tmp_path / "updates"
        updater = Updater(server.base_url, key, public, current="0.1.0", folder=updates, platform="linux")
        manifest = updater.check()
        assert manifest is not None
        staged = updater.download(manifest)
    finally:
        server.process.stop()
    program = program_in(staged, "linux")
    assert (
        run([program, "--version"], timeout=60).stdout.strip()
        == f"callmanager-client {project_version('client')}"
    )

    # The installed (older) program hands over to the staged one: the staged client is what reports the
    # missing display, while the installed one exits 0 at once.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMANAGER_") and k != "DISPLAY"}
    env.pop("WAYLAND_DISPLAY", None)
    env.update(CALLMANAGER_CLIENT_UPDATES_DIR=str(updates), CALLMANAGER_CLIENT_CONFIG_DIR=str(tmp_path))
    switched = subprocess.run(
        [str(builds.client), "--url", "http://127.0.0.1:9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert switched.returncode == 0, switched.stderr
    assert "no hay pantalla" in switched.stderr
    # Without a staged release the installed program runs itself and says so with exit code 2.
    (updates / "staged.json").unlink()
    itself = subprocess.run(
        [str(builds.client), "--url", "http://127.0.0.1:9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert itself.returncode == 2
    assert "no hay pantalla" in itself.stderr


def test_both_installed_programs_hand_over_to_a_newer_staged_release(builds: Builds, tmp_path: Path) -> None:
    updates = tmp_path / "updates"
    for name in ("callmanager-client", "callmanager-dialer"):
        staged = updates / "9.0.0" / name / name
        staged.parent.mkdir(parents=True)
        staged.write_text(f'#!/bin/sh\necho "staged {name} $*"\n')
        staged.chmod(0o755)
    (updates / "staged.json").write_text(json.dumps({"version": "9.0.0", "folder": "9.0.0"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMANAGER_")}
    env.update(CALLMANAGER_CLIENT_UPDATES_DIR=str(updates), CALLMANAGER_CLIENT_CONFIG_DIR=str(tmp_path))
    dialer = run([builds.dialer, "--check", "--server", "http://127.0.0.1:9"], env=env, timeout=120)
    assert dialer.stdout.strip() == "staged callmanager-dialer --check --server http://127.0.0.1:9"
    client = run([builds.client, "--url", "http://127.0.0.1:9"], env=env, timeout=120)
    assert client.stdout.strip() == "staged callmanager-client --url http://127.0.0.1:9"
    # An older staged release is never started.
    (updates / "staged.json").write_text(json.dumps({"version": "0.0.1", "folder": "9.0.0"}))
    assert run([builds.dialer, "--version"], env=env, timeout=120).stdout.startswith("callmanager-dialer 0.1")
