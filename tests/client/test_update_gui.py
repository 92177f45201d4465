"""The real client window under Xvfb offers a newer signed release from a real gateway, in Spanish, and
stages it once the user says yes; a tampered manifest is refused with a plain notice.

Only the yes/no question box is answered by the test (``messagebox.askyesno`` is a native modal); the
window, the background check, the download and the staging are the client's own, against
``callmanager up`` serving a release published with ``desk/publish.py``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tkdrive import pump

from client.update import STAGED, installed_version
from desk.publish import new_key, release
from tests.support.servers import EmbeddedServer, start_embedded

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("desk-release")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, published: Path) -> Iterator[EmbeddedServer]:
    running = start_embedded(tmp_path_factory.mktemp("server"), CALLMANAGER_DESK_UPDATES_DIR=str(published))
    try:
        running.create_user("ana", "Agent")
        yield running
    finally:
        running.process.stop()


def publish_next(published: Path, tmp_path: Path) -> str:
    """Publish the version after this client's as a Linux release; returns that version."""
    major, minor, *_ = installed_version().split(".")
    newer = f"{major}.{int(minor) + 1}.0"
    archive = tmp_path / f"callmanager-desk-{newer}-linux.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("callmanager-client/callmanager-client", "#!/bin/sh\n")
    new_key(tmp_path / "desk.key", tmp_path / "update_key.pub")
    for old in published.iterdir():
        old.unlink()
    release(tmp_path / "desk.key", newer, None, published, [archive])
    return newer


def open_window(server: EmbeddedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from client.__main__ import open_desk, parse_args

    monkeypatch.setenv("CALLMANAGER_CLIENT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CALLMANAGER_CLIENT_UPDATES_DIR", str(tmp_path / "updates"))
    monkeypatch.setenv("CALLMANAGER_API_KEY", server.keys["ana"])
    monkeypatch.setenv("CALLMANAGER_UPDATE_CHECK", "1")
    monkeypatch.setenv("CALLMANAGER_UPDATE_PUBLIC_KEY", (tmp_path / "update_key.pub").read_text())
    desk = open_desk(parse_args(["--url", server.base_url, "--no-live"]))
    assert desk is not None
    desk.start()
    return desk


def test_a_newer_release_is_offered_in_spanish_and_staged(
    display: str, server: EmbeddedServer, published: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    newer = publish_next(published, tmp_path)
    questions: list[tuple[str, str]] = []

    def answer_yes(title: str, message: str, **_: Any) -> bool:
        questions.append((title, message))
        return True

    monkeypatch.setattr("tkinter.messagebox.askyesno", answer_yes)
    desk = open_window(server, tmp_path, monkeypatch)
    try:
        pump(
            desk.root,
            lambda: "descargada y verificada" in desk.window.notice.cget("text"),
            what="the staging",
        )
        notice = desk.window.notice.cget("text")
    finally:
        desk.close()
    assert questions == [
        (
            "Actualización disponible",
            f"Hay una versión nueva de CallManager: {newer} (la instalada es {installed_version()}).\n\n"
            "¿Descargarla ahora? Se usará la próxima vez que abra el programa.",
        )
    ]
    assert notice == f"Versión {newer} descargada y verificada: se usará al volver a abrir CallManager."
    assert json.loads((tmp_path / "updates" / STAGED).read_text()) == {"version": newer, "folder": newer}


def test_a_tampered_manifest_is_refused_with_a_plain_notice(
    display: str, server: EmbeddedServer, published: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_next(published, tmp_path)
    manifest = json.loads((published / "manifest.json").read_text())
    manifest["files"][0]["size"] += 1
    (published / "manifest.json").write_text(json.dumps(manifest))
    asked: list[str] = []
    monkeypatch.setattr("tkinter.messagebox.askyesno", lambda title, *_a, **_k: asked.append(title) or True)
    desk = open_window(server, tmp_path, monkeypatch)
    try:
        pump(desk.root, lambda: "firma" in desk.window.notice.cget("text"), what="the refusal")
        notice = desk.window.notice.cget("text")
    finally:
        desk.close()
    assert asked == []
    assert notice == "La firma del manifiesto de actualización no es válida: no se instala nada. Avise a TI."
    assert not (tmp_path / "updates").exists()
