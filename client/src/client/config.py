"""Where the client keeps its settings: the server URL and language in the user's config dir, the key in
the OS keyring when one is available (else in a file only the user may read, and the user is told so)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

APP_NAME = "CallManager"
KEYRING_SERVICE = "callmanager-client"


def config_dir(
    env: Mapping[str, str] | None = None, platform: str | None = None, home: Path | None = None
) -> Path:
    """The per-user config folder: %APPDATA%, ~/Library/Application Support or $XDG_CONFIG_HOME."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else home
    override = env.get("CALLMANAGER_CLIENT_CONFIG_DIR")
    if override:
        return Path(override)
    if platform.startswith("win"):
        base = env.get("APPDATA")
        return Path(base) / APP_NAME if base else home / "AppData" / "Roaming" / APP_NAME
    if platform == "darwin":
        return home / "Library" / "Application Support" / APP_NAME
    xdg = env.get("XDG_CONFIG_HOME")
    base_dir = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".config"
    return base_dir / "callmanager"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """What the client remembers between runs (never the key itself)."""

    server_url: str = ""
    language: str = "es"
    username: str = ""

    @property
    def complete(self) -> bool:
        """Whether a server URL was saved."""
        return bool(self.server_url)

    def with_server(self, url: str) -> ClientConfig:
        """This config with ``url`` (trailing slash removed)."""
        return replace(self, server_url=url.rstrip("/"))


class KeyStore(Protocol):
    """Keeps the API key for one server URL."""

    def load(self, server_url: str) -> str | None:
        """The saved key, or None."""

    def save(self, server_url: str, key: str) -> str:
        """Save the key; returns a Spanish/English-neutral description of where (for the user)."""

    def delete(self, server_url: str) -> None:
        """Forget the key."""


class ConfigStore:
    """Reads and writes ``config.json`` in the config dir."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "config.json"

    def load(self) -> ClientConfig:
        """The saved config, or defaults when none (or an unreadable file, which is left in place)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ClientConfig()
        if not isinstance(data, dict):
            return ClientConfig()
        return ClientConfig(
            server_url=str(data.get("server_url", "")),
            language=str(data.get("language", "es")),
            username=str(data.get("username", "")),
        )

    def save(self, config: ClientConfig) -> None:
        """Write the config atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(config), indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.path)


class FileKeyStore:
    """Keys in ``keys.json`` with mode 0600: the fallback when the OS has no keyring."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "keys.json"

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write(self, data: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.chmod(self.path, 0o600)

    def load(self, server_url: str) -> str | None:
        """The saved key for ``server_url``, or None."""
        return self._read().get(server_url)

    def save(self, server_url: str, key: str) -> str:
        """Save the key in the file; returns the file path."""
        data = self._read()
        data[server_url] = key
        self._write(data)
        return str(self.path)

    def delete(self, server_url: str) -> None:
        """Forget the key for ``server_url``."""
        data = self._read()
        if data.pop(server_url, None) is not None:
            self._write(data)


class KeyringKeyStore:
    """Keys in the OS keyring (Windows Credential Manager, macOS Keychain, Secret Service)."""

    def __init__(self, keyring_module: object) -> None:
        self._keyring = keyring_module

    def load(self, server_url: str) -> str | None:
        """The saved key for ``server_url``, or None."""
        value = self._keyring.get_password(KEYRING_SERVICE, server_url)  # type: ignore[attr-defined]
        return str(value) if value else None

    def save(self, server_url: str, key: str) -> str:
        """Save the key in the keyring; returns the keyring's name."""
        self._keyring.set_password(KEYRING_SERVICE, server_url, key)  # type: ignore[attr-defined]
        return "keyring"

    def delete(self, server_url: str) -> None:
        """Forget the key for ``server_url`` (absent is fine)."""
        try:
            self._keyring.delete_password(KEYRING_SERVICE, server_url)  # type: ignore[attr-defined]
        except Exception:  # keyring backends raise their own PasswordDeleteError types
            return


@dataclass(frozen=True, slots=True)
class KeyStoreChoice:
    """The key store in use, and why the keyring was not used when it was not."""

    store: KeyStore
    in_keyring: bool
    fallback_reason: str = ""


def choose_key_store(folder: Path) -> KeyStoreChoice:
    """The OS keyring when a usable backend exists, else the 0600 file with the reason."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError as exc:
        return KeyStoreChoice(FileKeyStore(folder), False, f"keyring no instalado ({exc})")
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # any backend init failure means "no keyring"
        return KeyStoreChoice(FileKeyStore(folder), False, str(exc))
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
        return KeyStoreChoice(
            FileKeyStore(folder), False, f"sin servicio de llavero ({type(backend).__name__})"
        )
    return KeyStoreChoice(KeyringKeyStore(keyring), True)


def load_key(choice: KeyStoreChoice, folder: Path, server_url: str) -> str | None:
    """The saved key for ``server_url``: from the keyring, else from the fallback file."""
    if choice.in_keyring:
        try:
            key = choice.store.load(server_url)
        except Exception:  # a locked or broken keyring means "look in the file"
            key = None
        if key:
            return key
    return FileKeyStore(folder).load(server_url)
