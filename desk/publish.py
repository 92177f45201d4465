"""Publish a desk release: copy its zip files into the gateway's desk update folder with a signed manifest.

    python desk/publish.py new-key --private ~/callmanager-desk.key --public update_key.pub
    python desk/publish.py release --key ~/callmanager-desk.key --version 0.2.0 \\
        --dir /srv/callmanager/desk callmanager-desk-0.2.0-windows.zip

The private key never goes into the repository or onto the server: keep it on the machine (or CI secret)
that signs releases. ``update_key.pub`` (base64 of the raw ed25519 public key) goes to the desks: bundled at
build time (``CALLMANAGER_DESK_PUBLIC_KEY`` for ``pyinstaller desk/client.spec``), in the client's config
folder, or in ``CALLMANAGER_UPDATE_PUBLIC_KEY``. The gateway serves the folder named by
``CALLMANAGER_DESK_UPDATES_DIR``; manifest.json is replaced last and atomically, so a desk never sees a
manifest whose files are not there yet.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client.update import FILE_NAME, canonical_manifest, version_key

MANIFEST = "manifest.json"


def new_key(private: Path, public: Path) -> None:
    """Write a new ed25519 key pair: the private key as PEM (mode 0600), the public one as base64."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    public.write_text(base64.b64encode(raw).decode("ascii") + "\n", encoding="ascii")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The ed25519 private key in a PEM file."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"publish: {path} is not an ed25519 private key")
    return key


def file_entry(path: Path) -> dict[str, object]:
    """Name, SHA-256 and size of one release file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return {"name": path.name, "sha256": digest.hexdigest(), "size": path.stat().st_size}


def sign(manifest: dict[str, object], key: Ed25519PrivateKey) -> dict[str, object]:
    """The manifest with its base64 ed25519 signature over `canonical_manifest`."""
    signature = key.sign(canonical_manifest(manifest))
    return {**manifest, "signature": base64.b64encode(signature).decode("ascii")}


def release(
    key_path: Path, version: str, min_version: str | None, folder: Path, files: Sequence[Path]
) -> Path:
    """Copy ``files`` into ``folder`` and write its signed manifest last; returns the manifest's path."""
    version_key(version)
    if min_version is not None:
        version_key(min_version)
    for path in files:
        if (
            not path.is_file()
            or not FILE_NAME.match(path.name)
            or not re.search(r"-(windows|linux|macos)\.zip$", path.name)
        ):
            raise SystemExit(f"publish: {path} must be a zip named …-windows.zip, …-linux.zip or …-macos.zip")
    key = load_private_key(key_path)
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        if path.resolve() != (folder / path.name).resolve():
            shutil.copyfile(path, folder / f"{path.name}.tmp")
            (folder / f"{path.name}.tmp").replace(folder / path.name)
    manifest: dict[str, object] = {"version": version, "files": [file_entry(folder / p.name) for p in files]}
    if min_version is not None:
        manifest["min_version"] = min_version
    tmp = folder / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(sign(manifest, key), indent=2), encoding="utf-8")
    tmp.replace(folder / MANIFEST)
    return folder / MANIFEST


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``new-key`` or ``release``."""
    parser = argparse.ArgumentParser(prog="publish", description="Publish a signed desk release.")
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("new-key", help="make an ed25519 key pair")
    keys.add_argument("--private", type=Path, required=True, help="private key file to create (PEM, 0600)")
    keys.add_argument("--public", type=Path, required=True, help="public key file to write (base64)")
    out = commands.add_parser("release", help="copy the files and write the signed manifest")
    out.add_argument("--key", type=Path, required=True, help="the private key (PEM)")
    out.add_argument("--version", required=True, help="the release's version, e.g. 0.2.0")
    out.add_argument("--min-version", help="oldest version that may still run (informative)")
    out.add_argument("--dir", type=Path, required=True, help="the gateway's CALLMANAGER_DESK_UPDATES_DIR")
    out.add_argument("files", type=Path, nargs="+", help="the release zips (…-windows.zip)")
    args = parser.parse_args(argv)
    if args.command == "new-key":
        new_key(args.private, args.public)
        print(f"private key: {args.private} (keep it off the repository and the server)")
        print(f"public key:  {args.public}")
        return 0
    manifest = release(args.key, args.version, args.min_version, args.dir, args.files)
    print(f"published {args.version}: {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
