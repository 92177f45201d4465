"""Desk updates over real HTTP against a running gateway (``callmanager up``) serving a published release.

Keys are made by the tests; releases are published with ``desk/publish.py`` into the gateway's
``CALLMANAGER_DESK_UPDATES_DIR`` and fetched, verified and staged by the client's ``Updater``.
"""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from client.update import (
    STAGED,
    Updater,
    UpdateRefused,
    load_public_key,
    program_in,
    staged_program,
    switch_to_staged,
    watch_updates,
)
from desk.publish import new_key, release
from tests.support.servers import EmbeddedServer, start_embedded


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("desk-release")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, release_dir: Path) -> Iterator[EmbeddedServer]:
    server = start_embedded(
        tmp_path_factory.mktemp("update-gateway"),
        CALLMANAGER_DESK_UPDATES_DIR=str(release_dir),
        CALLMANAGER_RATE_LIMIT="100000/minute",
    )
    try:
        server.create_user("ana", "Agent")
        yield server
    finally:
        server.process.stop()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A signing key made for these tests: the private key's file and the raw public key."""
    folder = tmp_path_factory.mktemp("keys")
    new_key(folder / "desk.key", folder / "update_key.pub")
    public = load_public_key({"CALLMANAGER_UPDATE_PUBLIC_KEY": (folder / "update_key.pub").read_text()})
    assert public is not None
    return folder / "desk.key", public


def make_zip(folder: Path, version: str, platform: str = "linux") -> Path:
    """A desk release zip holding a client program that prints its version."""
    path = folder / f"callmanager-desk-{version}-{platform}.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr(
            "callmanager-client/callmanager-client", f"#!/bin/sh\necho callmanager-client {version}\n"
        )
        bundle.writestr("callmanager-client/_internal/base_library.zip", b"x" * 4096)
        bundle.writestr("callmanager-dialer/callmanager-dialer", "#!/bin/sh\n")
    return path


def publish(key: Path, release_dir: Path, tmp_path: Path, version: str) -> None:
    for old in release_dir.iterdir():
        old.unlink()
    release(key, version, None, release_dir, [make_zip(tmp_path, version)])


def updater(gateway: EmbeddedServer, public: bytes, folder: Path, current: str = "0.1.0") -> Updater:
    return Updater(
        gateway.base_url, gateway.keys["ana"], public, current=current, folder=folder, platform="linux"
    )


def test_a_newer_signed_release_is_downloaded_verified_and_staged(
    gateway: EmbeddedServer, keys: tuple[Path, bytes], release_dir: Path, tmp_path: Path
) -> None:
    publish(keys[0], release_dir, tmp_path, "0.2.0")
    updates = tmp_path / "updates"
    desk = updater(gateway, keys[1], updates)
    manifest = desk.check()
    assert manifest is not None
    assert manifest.version == "0.2.0"
    assert manifest.files[0].url == "/desk/files/callmanager-desk-0.2.0-linux.zip"
    staged = desk.download(manifest)
    assert staged == updates / "0.2.0"
    program = program_in(staged, "linux")
    assert program.read_text().endswith("echo callmanager-client 0.2.0\n")
    assert program.stat().st_mode & 0o100
    assert json.loads((updates / STAGED).read_text()) == {"version": "0.2.0", "folder": "0.2.0"}
    assert staged_program(updates, "0.1.0") == program
    assert staged_program(updates, "0.2.0") is None  # the staged one is not newer than itself
    assert not list(updates.glob("*.part"))


def test_the_same_version_is_no_update(
    gateway: EmbeddedServer, keys: tuple[Path, bytes], release_dir: Path, tmp_path: Path
) -> None:
    publish(keys[0], release_dir, tmp_path, "0.2.0")
    assert updater(gateway, keys[1], tmp_path / "updates", current="0.2.0").check() is None


def test_an_older_release_is_refused(
    gateway: EmbeddedServer, keys: tuple[Path, bytes], release_dir: Path, tmp_path: Path
) -> None:
    publish(keys[0], release_dir, tmp_path, "0.2.0")
    with pytest.raises(UpdateRefused, match="anterior a la instalada"):
        updater(gateway, keys[1], tmp_path / "updates", current="0.3.0").check()


def test_a_tampered_manifest_is_refused(
    gateway: EmbeddedServer, keys: tuple[Path, bytes], release_dir: Path, tmp_path: Path
) -> None:
    publish(keys[0], release_dir, tmp_path, "0.2.0")
    manifest = json.loads((release_dir / "manifest.json").read_text())
    manifest["version"] = "9.0.0"  # a newer number on the same signature
    (release_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UpdateRefused, match="firma"):
        updater(gateway, keys[1], tmp_path / "updates").check()


def test_a_release_signed_with_another_key_is_refused(
    gateway: EmbeddedServer, keys: tuple[Path, bytes], release_dir: Path, tmp_path: Path
) -> None:
    new_key(tmp_path / "other.key", tmp_path / "other.pub")
    publish(tmp_path / "other.key", release_dir, tmp_path, "0.2.0")
    with pytest.raises(UpdateRefused, match="firma"):
        updater(gateway, keys[1], tmp_path / "updates").check()


def test_a_file_with_the_wrong_hash_is_refused_and_discarded(
    gateway: EmbeddedServer, keys: tuple[Path, bytes], release_dir: Path, tmp_path: Path
) -> None:
    publish(keys[0], release_dir, tmp_path, "0.2.0")
    served = release_dir / "callmanager-desk-0.2.0-linux.zip"
    data = bytearray(served.read_bytes())
    data[-1] ^= 0xFF  # same size, one byte changed
    served.write_bytes(bytes(data))
    updates = tmp_path / "updates"
    desk = updater(gateway, keys[1], updates)
    manifest = desk.check()
    assert manifest is not None
    with pytest.raises(UpdateRefused, match="SHA-256"):
        desk.download(manifest)
    assert sorted(p.name for p in updates.iterdir()) == []
    assert staged_program(updates, "0.1.0") is None


def test_nothing_published_means_no_update(
    gateway: EmbeddedServer, keys: tuple[Path, bytes], release_dir: Path
) -> None:
    for old in release_dir.iterdir():
        old.unlink()
    with gateway.client(gateway.keys["ana"]) as http:
        answer = http.get("/desk/version")
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "No hay una versión de escritorio publicada en este servidor."
    assert updater(gateway, keys[1], release_dir / "never").check() is None


def test_only_listed_files_are_served_and_only_with_a_key(
    gateway: EmbeddedServer, keys: tuple[Path, bytes], release_dir: Path, tmp_path: Path
) -> None:
    publish(keys[0], release_dir, tmp_path, "0.2.0")
    (release_dir / "secret.txt").write_text("not part of the release")
    name = "callmanager-desk-0.2.0-linux.zip"
    with gateway.client(gateway.keys["ana"]) as http:
        assert http.get(f"/desk/files/{name}").content == (release_dir / name).read_bytes()
        assert http.get("/desk/files/secret.txt").status_code == 404
        assert http.get("/desk/files/manifest.json").status_code == 404
        assert http.get("/desk/files/..%2Fmanifest.json").status_code in (404, 422)
        assert http.get("/desk/files/.hidden").status_code == 422
    assert httpx.get(f"{gateway.base_url}/desk/files/{name}").status_code == 401
    assert httpx.get(f"{gateway.base_url}/desk/version").status_code == 401


def test_a_broken_manifest_is_a_clear_error(gateway: EmbeddedServer, release_dir: Path) -> None:
    for old in release_dir.iterdir():
        old.unlink()
    (release_dir / "manifest.json").write_text("{not json")
    with gateway.client(gateway.keys["ana"]) as http:
        answer = http.get("/desk/version")
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "desk_manifest_invalid"


def test_a_client_run_from_source_neither_switches_nor_checks(tmp_path: Path) -> None:
    assert switch_to_staged(["--url", "http://x"]) is False
    assert watch_updates(None, "http://x", "k", {"CALLMANAGER_UPDATE_PUBLIC_KEY": "x"}) is False  # type: ignore[arg-type]


def test_a_malformed_public_key_is_refused() -> None:
    with pytest.raises(UpdateRefused):
        load_public_key({"CALLMANAGER_UPDATE_PUBLIC_KEY": base64.b64encode(b"short").decode()})


def test_an_entry_added_to_a_signed_file_list_breaks_the_signature(
    gateway: EmbeddedServer, keys: tuple[Path, bytes], release_dir: Path, tmp_path: Path
) -> None:
    publish(keys[0], release_dir, tmp_path, "0.2.0")
    manifest = json.loads((release_dir / "manifest.json").read_text())
    manifest["files"].append("callmanager-desk-6.6.6-linux.zip")
    (release_dir / "manifest.json").write_text(json.dumps(manifest))
    with gateway.client(gateway.keys["ana"]) as http:
        assert http.get("/desk/version").status_code == 503  # the gateway checks the shape it serves
    manifest["files"][-1] = {"name": "extra-linux.zip", "sha256": "0" * 64, "size": 1}
    (release_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UpdateRefused, match="firma"):
        updater(gateway, keys[1], tmp_path / "updates").check()
