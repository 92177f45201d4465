"""Desk updates: the gateway's signed manifest is checked, the new bundle downloaded, verified and staged.

The manifest (``GET /desk/version``) names a version and its files with their SHA-256 and size; an ed25519
signature covers its canonical form (`canonical_manifest`). The client refuses a manifest whose signature
does not verify with its public key, a version older than its own (a rollback to an older signed release)
and a file whose size or SHA-256 differs. A good update is unpacked into its own folder under
`updates_dir` beside the running install, never over it (Windows cannot replace a running program);
``staged.json`` is written last, and the next start of the client switches to the newest staged program
(`switch_to_staged`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from client.config import config_dir

if TYPE_CHECKING:
    from client.desk import Desk

DISTRIBUTION = "callmanager-client"
PROGRAM = "callmanager-client"
STAGED = "staged.json"
PUBLIC_KEY_FILE = "update_key.pub"
VERSION = re.compile(r"^\d{1,6}(\.\d{1,6}){0,3}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 16


class UpdateRefused(Exception):
    """An update that must not be installed; the message (Spanish) says why."""


@dataclass(frozen=True, slots=True)
class UpdateFile:
    """One file of a release: its name, SHA-256 (hex), size in bytes and where to download it."""

    name: str
    sha256: str
    size: int
    url: str = ""


@dataclass(frozen=True, slots=True)
class Manifest:
    """A verified release: its version, its files, and the oldest version that may still run."""

    version: str
    files: tuple[UpdateFile, ...]
    min_version: str | None = None


def installed_version(distribution: str = DISTRIBUTION) -> str:
    """This client's version (from the distribution's metadata, collected into frozen builds too)."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "0.0.0"


def version_key(text: str) -> tuple[int, ...]:
    """``"1.2.0"`` → ``(1, 2, 0, 0)``; raises UpdateRefused for anything but dotted numbers."""
    if not VERSION.match(text):
        raise UpdateRefused(f"Versión no válida: {text!r}.")
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (4 - len(parts)))


def platform_tag(platform: str | None = None) -> str:
    """The suffix of this platform's release file: ``windows``, ``linux`` or ``macos``."""
    platform = sys.platform if platform is None else platform
    if platform.startswith("win"):
        return "windows"
    return "macos" if platform == "darwin" else "linux"


def canonical_manifest(data: Mapping[str, Any]) -> bytes:
    """The bytes the signature covers: version, min_version and each file's name, sha256 and size."""
    body: dict[str, Any] = {
        "version": data.get("version"),
        "files": [
            {"name": f.get("name"), "sha256": f.get("sha256"), "size": f.get("size")}
            if isinstance(f, Mapping)
            else f  # kept as is: anything added to a signed list breaks the signature
            for f in data.get("files") or []
        ],
    }
    if data.get("min_version") is not None:
        body["min_version"] = data["min_version"]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_public_key(text: str) -> bytes:
    """The raw 32-byte ed25519 key from its base64 text; raises UpdateRefused when it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise UpdateRefused("La llave pública de actualizaciones no es válida.") from exc
    if len(raw) != 32:
        raise UpdateRefused("La llave pública de actualizaciones no es válida.")
    return raw


def load_public_key(env: Mapping[str, str] | None = None, beside: Path | None = None) -> bytes | None:
    """The update key: ``CALLMANAGER_UPDATE_PUBLIC_KEY``, else ``update_key.pub`` in the config folder or
    beside the program (a build may bundle it); None when there is none (updates are then not checked)."""
    env = os.environ if env is None else env
    text = env.get("CALLMANAGER_UPDATE_PUBLIC_KEY", "")
    if not text:
        bundle = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
        for folder in (config_dir(env), beside or bundle):
            path = folder / PUBLIC_KEY_FILE
            if path.is_file():
                text = path.read_text(encoding="ascii")
                break
    return parse_public_key(text) if text else None


def verify_manifest(data: object, public_key: bytes) -> Manifest:
    """The manifest in ``data`` when its ed25519 signature verifies; raises UpdateRefused otherwise."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(data, Mapping):
        raise UpdateRefused("El servidor envió un manifiesto de actualización no válido.")
    try:
        signature = base64.b64decode(str(data.get("signature", "")), validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, canonical_manifest(data))
    except (ValueError, InvalidSignature) as exc:
        raise UpdateRefused(
            "La firma del manifiesto de actualización no es válida: no se instala nada. Avise a TI."
        ) from exc
    return parse_manifest(data)


def parse_manifest(data: Mapping[str, Any]) -> Manifest:
    """The typed manifest; raises UpdateRefused when a field is missing or malformed."""
    release = str(data.get("version", ""))
    version_key(release)
    minimum = data.get("min_version")
    if minimum is not None:
        version_key(str(minimum))
    files: list[UpdateFile] = []
    for item in data.get("files") or []:
        if not isinstance(item, Mapping):
            raise UpdateRefused("El manifiesto de actualización tiene un archivo no válido.")
        name, digest, size = item.get("name"), item.get("sha256"), item.get("size")
        if (
            not isinstance(name, str)
            or not FILE_NAME.match(name)
            or not isinstance(digest, str)
            or not SHA256.match(digest)
            or not isinstance(size, int)
            or size <= 0
        ):
            raise UpdateRefused("El manifiesto de actualización tiene un archivo no válido.")
        files.append(UpdateFile(name, digest, size, str(item.get("url") or f"/desk/files/{name}")))
    if not files:
        raise UpdateRefused("El manifiesto de actualización no lista archivos.")
    return Manifest(release, tuple(files), None if minimum is None else str(minimum))


def updates_dir(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """Where updates are staged: ``CALLMANAGER_CLIENT_UPDATES_DIR``, else %LOCALAPPDATA%\\CallManager\\updates
    on Windows (not the roaming profile), else ``updates`` in the config folder."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    override = env.get("CALLMANAGER_CLIENT_UPDATES_DIR")
    if override:
        return Path(override)
    local = env.get("LOCALAPPDATA")
    if platform.startswith("win") and local:
        return Path(local) / "CallManager" / "updates"
    return config_dir(env, platform) / "updates"


class Updater:
    """Checks the gateway for a newer signed release, downloads and stages it."""

    def __init__(
        self,
        server_url: str,
        api_key: str,
        public_key: bytes,
        *,
        current: str | None = None,
        folder: Path | None = None,
        platform: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.public_key = public_key
        self.current = current or installed_version()
        self.folder = folder or updates_dir()
        self.tag = platform_tag(platform)
        self.timeout = timeout
        self._session = session or requests.Session()
        self._session.headers["X-API-Key"] = api_key

    def check(self) -> Manifest | None:
        """The newer release for this platform, None when there is none; raises UpdateRefused for a bad
        signature or a version older than this one."""
        response = self._session.get(f"{self.server_url}/desk/version", timeout=self.timeout)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        try:
            data = response.json()
        except ValueError as exc:
            raise UpdateRefused("El servidor envió un manifiesto de actualización no válido.") from exc
        manifest = verify_manifest(data, self.public_key)
        offered, mine = version_key(manifest.version), version_key(self.current)
        if offered < mine:
            raise UpdateRefused(
                f"El servidor ofrece la versión {manifest.version}, anterior a la instalada "
                f"({self.current}): no se vuelve a una versión anterior."
            )
        if offered == mine or self.release_file(manifest) is None:
            return None
        return manifest

    def release_file(self, manifest: Manifest) -> UpdateFile | None:
        """The manifest's file for this platform (``…-windows.zip``), if it has one."""
        return next((f for f in manifest.files if f.name.endswith(f"-{self.tag}.zip")), None)

    def download(self, manifest: Manifest, progress: Callable[[int, int], None] | None = None) -> Path:
        """Download, verify and unpack the release; returns the staged folder. A file whose size or SHA-256
        differs from the signed manifest is deleted and refused."""
        item = self.release_file(manifest)
        if item is None:
            raise UpdateRefused("La actualización no trae archivo para este sistema.")
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.folder / f"{item.name}.part"
        digest = hashlib.sha256()
        size = 0
        url = item.url if item.url.startswith(("http://", "https://")) else self.server_url + item.url
        with self._session.get(url, stream=True, timeout=self.timeout) as response:
            response.raise_for_status()
            with part.open("wb") as out:
                for chunk in response.iter_content(CHUNK):
                    size += len(chunk)
                    if size > item.size:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    if progress is not None:
                        progress(size, item.size)
        if size != item.size or digest.hexdigest() != item.sha256:
            part.unlink(missing_ok=True)
            raise UpdateRefused(
                f"El archivo {item.name} no coincide con el manifiesto firmado (tamaño o SHA-256): "
                "se descartó."
            )
        return self.stage(manifest.version, part)

    def stage(self, release: str, archive: Path) -> Path:
        """Unpack a verified archive into ``<folder>/<version>`` and record it in ``staged.json`` last."""
        target = self.folder / release
        unpacking = self.folder / f"{release}.unpacking"
        shutil.rmtree(unpacking, ignore_errors=True)
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():
                path = (unpacking / member.filename).resolve()
                if not path.is_relative_to(unpacking.resolve()):
                    raise UpdateRefused(f"La actualización trae una ruta no permitida: {member.filename}")
            bundle.extractall(unpacking)
        for unpacked in unpacking.rglob("*"):  # Python's extractall keeps no execute bit
            if unpacked.is_file() and unpacked.name in (PROGRAM, "callmanager-dialer"):
                unpacked.chmod(0o755)
        shutil.rmtree(target, ignore_errors=True)
        unpacking.rename(target)
        archive.unlink(missing_ok=True)
        record = {"version": release, "folder": target.name}
        tmp = self.folder / f"{STAGED}.tmp"
        tmp.write_text(json.dumps(record), encoding="utf-8")
        tmp.replace(self.folder / STAGED)
        return target


def program_in(folder: Path, platform: str | None = None, program: str = PROGRAM) -> Path:
    """A program (the client unless told) inside an unpacked release."""
    platform = sys.platform if platform is None else platform
    name = program + (".exe" if platform.startswith("win") else "")
    return folder / program / name


def staged_program(folder: Path, current: str, program: str = PROGRAM) -> Path | None:
    """The staged program when its release is newer than ``current`` and complete, else None."""
    try:
        record = json.loads((folder / STAGED).read_text(encoding="utf-8"))
        newer = version_key(str(record["version"])) > version_key(current)
        path = program_in(folder / Path(str(record["folder"])).name, program=program)
    except (OSError, ValueError, KeyError, TypeError, UpdateRefused):
        return None
    return path if newer and path.is_file() else None


def switch_to_staged(argv: Sequence[str], program: str = PROGRAM, distribution: str = DISTRIBUTION) -> bool:
    """In a frozen program (the client, or the dialer agent from its entry script): start the newer staged
    release of it with the same arguments; True when it did (the caller then exits). A program run from
    source never switches."""
    if not getattr(sys, "frozen", False):
        return False
    staged = staged_program(updates_dir(), installed_version(distribution), program)
    if staged is None or staged.resolve() == Path(sys.executable).resolve():
        return False
    subprocess.Popen([str(staged), *argv])  # noqa: S603 - a program we verified and staged ourselves
    return True


def offer_update(desk: Desk, updater: Updater) -> None:
    """Check in the background; when a newer signed release exists, ask (in Spanish) and stage it."""
    from tkinter import messagebox

    def ask(manifest: Manifest | None) -> None:
        if manifest is None or not desk.root.winfo_exists():
            return
        wanted = messagebox.askyesno(
            "Actualización disponible",
            f"Hay una versión nueva de CallManager: {manifest.version} (la instalada es "
            f"{updater.current}).\n\n¿Descargarla ahora? Se usará la próxima vez que abra el programa.",
            parent=desk.root,
        )
        if wanted:
            desk.window.show_notice(f"Descargando la versión {manifest.version}…")
            desk.runner.submit(lambda: updater.download(manifest), staged, failed)

    def staged(folder: Path) -> None:
        desk.window.show_notice(
            f"Versión {folder.name} descargada y verificada: se usará al volver a abrir CallManager."
        )

    def failed(exc: Exception) -> None:
        if isinstance(exc, UpdateRefused):
            desk.window.show_notice(str(exc))
        elif not isinstance(exc, requests.RequestException):
            desk.window.show_notice("No se pudo comprobar si hay actualizaciones.")

    desk.runner.submit(updater.check, ask, failed)


def watch_updates(desk: Desk, server_url: str, api_key: str, env: Mapping[str, str] | None = None) -> bool:
    """Start the background check on a frozen desk (or with ``CALLMANAGER_UPDATE_CHECK=1``) that has an
    update key; True when it was started. A client installed from source is updated by its installer."""
    env = os.environ if env is None else env
    if not getattr(sys, "frozen", False) and env.get("CALLMANAGER_UPDATE_CHECK") != "1":
        return False
    try:
        public_key = load_public_key(env)
    except (OSError, UpdateRefused) as exc:
        print(f"callmanager-client: actualizaciones desactivadas: {exc}", file=sys.stderr)
        return False
    if public_key is None:
        return False
    offer_update(desk, Updater(server_url, api_key, public_key))
    return True
