"""The desk's settings: defaults < settings file < ``CALLMANAGER_DIALER_*`` environment < command line.

The settings file uses the environment's names, one ``NAME=value`` a line (dotenv format), so a desk can
be configured by copying lines between the two. The API key comes from ``--api-key`` (or the
environment), else from a key file readable by its owner only, else from the OS keyring.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CALLMANAGER_DIALER_"
KEYRING_SERVICE = "callmanager-dialer"

SoftphoneKind = Literal["interphone", "baresip", "command"]


class SettingsError(ValueError):
    """Settings that cannot work, with the reason in Spanish."""


def default_desk_name() -> str:
    """The machine's host name, the usual desk name."""
    return socket.gethostname() or "puesto"


def default_data_dir() -> Path:
    """A per-user state folder: ``%LOCALAPPDATA%`` on Windows, ``$XDG_STATE_HOME`` or ``~/.local/state``."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "callmanager-dialer"


def default_settings_file() -> Path:
    """Where the desk's settings file lives when none is named."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "callmanager-dialer" / "settings.env"


class DialerSettings(BaseSettings):
    """Effective configuration of one desk dialer agent."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file_encoding="utf-8", extra="ignore", validate_default=True
    )

    server: str = "http://127.0.0.1:8000"
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    desk: str = Field(default_factory=default_desk_name, min_length=1, max_length=100)
    softphone: SoftphoneKind = "baresip"
    prefix: str = ""
    data_dir: Path = Field(default_factory=default_data_dir)
    ack_timeout_seconds: float = Field(default=10.0, gt=0)

    baresip_ctrl: str = "127.0.0.1:4444"
    baresip_dial_template: str = "{number}"
    no_answer_seconds: float = Field(default=30.0, gt=0)
    max_call_seconds: float = Field(default=4 * 3600.0, gt=0)

    interphone_title: str = r".*InterPhone.*"
    interphone_number_box: str = "control_type=Edit"
    interphone_call_button: str = "title_re=(?i)^(call|llamar|marcar)$;control_type=Button"
    interphone_hangup_button: str = "title_re=(?i)^(hang ?up|colgar|terminar)$;control_type=Button"
    interphone_attempts: int = Field(default=3, ge=1, le=10)

    command_template: str | None = None
    hangup_template: str | None = None
    uri_scheme: Literal["tel", "sip"] | None = None

    @field_validator("prefix")
    @classmethod
    def _prefix_is_digits(cls, value: str) -> str:
        value = value.strip()
        if value and not value.isdigit():
            raise ValueError("el prefijo de línea externa solo puede tener dígitos")
        return value

    @field_validator("server")
    @classmethod
    def _server_is_http(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("la dirección del servidor debe empezar por http:// o https://")
        return value

    @field_validator("baresip_ctrl")
    @classmethod
    def _ctrl_is_host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("baresip_ctrl debe ser HOST:PUERTO, p. ej. 127.0.0.1:4444")
        return value

    @field_validator("baresip_dial_template", "command_template")
    @classmethod
    def _template_has_number(cls, value: str | None) -> str | None:
        if value is not None and "{number}" not in value:
            raise ValueError("la plantilla debe contener {number}")
        return value

    @field_validator("interphone_title")
    @classmethod
    def _title_is_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"expresión regular no válida: {exc}") from exc
        return value

    @property
    def baresip_address(self) -> tuple[str, int]:
        """``baresip_ctrl`` as a (host, port) pair."""
        host, _, port = self.baresip_ctrl.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def outbox_path(self) -> Path:
        """The outbox file inside the data folder."""
        return self.data_dir / "outbox.sqlite3"


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    settings_file: Path | None = None,
) -> DialerSettings:
    """Settings from ``overrides`` (the command line) over the environment over ``settings_file``."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    env_file = settings_file if settings_file is not None and settings_file.is_file() else None
    return DialerSettings(_env_file=env_file, **given)  # type: ignore[call-arg]


def read_key_file(path: Path) -> str:
    """The key in ``path``; refuse a file that others than its owner may read (POSIX)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise SettingsError(f"no se puede leer el archivo de la clave {path}: {exc.strerror}") from exc
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(
            f"el archivo de la clave {path} lo pueden leer otros usuarios "
            f"(permisos {stat.filemode(info.st_mode)}); ejecute: chmod 600 {path}"
        )
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise SettingsError(f"el archivo de la clave {path} está vacío")
    return key


def read_keyring(server: str) -> str | None:
    """The key saved in the OS keyring for ``server``, or None (also when ``keyring`` is not installed)."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        return None
    try:
        found = keyring.get_password(KEYRING_SERVICE, server)
    except (KeyringError, RuntimeError):
        return None
    return found or None


def resolve_api_key(settings: DialerSettings) -> str:
    """The desk's API key: explicit, else the key file, else the keyring; raise SettingsError if none."""
    if settings.api_key is not None and settings.api_key.get_secret_value().strip():
        return settings.api_key.get_secret_value().strip()
    if settings.api_key_file is not None:
        return read_key_file(settings.api_key_file)
    from_keyring = read_keyring(settings.server)
    if from_keyring:
        return from_keyring
    raise SettingsError(
        "falta la clave de API: use --api-key, --api-key-file (permisos 600) o guárdela en el llavero "
        f"del sistema (servicio {KEYRING_SERVICE!r}, usuario = dirección del servidor)"
    )
