"""Desk updates: ``GET /desk/version`` (the signed manifest of the current desk release) and
``GET /desk/files/{name}`` (one of its files, streamed).

The release lives in ``CALLMANAGER_DESK_UPDATES_DIR``: ``manifest.json`` as ``desk/publish.py`` writes it
(version, files with SHA-256 and size, ed25519 signature) and the files beside it. The gateway does not
hold the signing key and does not need to trust the folder: desks check the signature and every file's
hash themselves. It reads the manifest on each request, so publishing needs no restart. Only files the
manifest lists are served, and only from that folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel

from gateway.auth import ApiError, Authenticated, note_audit

MANIFEST = "manifest.json"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
FileName = Annotated[str, PathParam(pattern=NAME_PATTERN)]

log = structlog.get_logger(__name__)


class DeskFile(BaseModel):
    """One file of the release."""

    name: str
    sha256: str
    size: int
    url: str


class DeskVersion(BaseModel):
    """The current desk release; ``signature`` (base64 ed25519) covers version, min_version and files."""

    version: str
    min_version: str | None = None
    files: list[DeskFile]
    signature: str


def read_manifest(folder: Path | None) -> dict[str, Any]:
    """The published manifest; 404 when none is published, 503 when it cannot be read."""
    if folder is None or not (folder / MANIFEST).is_file():
        raise ApiError(404, "not_found", "No hay una versión de escritorio publicada en este servidor.")
    try:
        data = orjson.loads((folder / MANIFEST).read_bytes())
    except (OSError, ValueError) as exc:
        data = None
        log.error("desk.manifest_unreadable", folder=str(folder), error=repr(exc))
    if not well_formed(data):
        raise ApiError(
            503, "desk_manifest_invalid", "La versión de escritorio publicada no es válida; avise a TI."
        )
    assert isinstance(data, dict)
    return data


def well_formed(data: object) -> bool:
    """Whether ``data`` has the manifest's shape (the desks check its signature, not the gateway)."""
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        return False
    files = data.get("files")
    if not isinstance(data.get("signature"), str) or not isinstance(files, list) or not files:
        return False
    return all(
        isinstance(item, dict)
        and isinstance(item.get("name"), str)
        and re.match(NAME_PATTERN, item["name"]) is not None
        and isinstance(item.get("sha256"), str)
        and isinstance(item.get("size"), int)
        for item in files
    )


def deskupdates_router(folder: Path | None) -> APIRouter:
    """The two desk update routes over ``folder`` (None: nothing published, both answer 404)."""
    router = APIRouter(tags=["desk"])

    @router.get(
        "/desk/version",
        response_model=DeskVersion,
        response_model_exclude_none=True,
        summary="Versión actual de los programas del puesto y sus archivos (manifiesto firmado)",
        responses={404: {"description": "No hay ninguna versión de escritorio publicada."}},
    )
    def desk_version(principal: Authenticated) -> dict[str, Any]:
        data = read_manifest(folder)
        data["files"] = [
            {
                "name": item["name"],
                "sha256": item["sha256"],
                "size": item["size"],
                "url": f"/desk/files/{item['name']}",
            }
            for item in data["files"]
        ]
        return data

    @router.get(
        "/desk/files/{name}",
        response_class=FileResponse,
        summary="Descargar un archivo de la versión de escritorio publicada",
    )
    def desk_file(request: Request, principal: Authenticated, name: FileName) -> FileResponse:
        note_audit(request, desk_file=name)
        data = read_manifest(folder)
        assert folder is not None
        listed = {str(item["name"]) for item in data["files"]}
        path = (folder / name).resolve()
        if name not in listed or path.parent != folder.resolve() or not path.is_file():
            raise ApiError(404, "not_found", "Ese archivo no forma parte de la versión publicada.")
        return FileResponse(path, media_type="application/octet-stream", filename=name)

    return router
