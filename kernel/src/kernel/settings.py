"""Settings read once from the environment and ``.env``, then passed down.

Every setting has the ``CALLMANAGER_`` prefix; the seed's older names (``DATABASE_PATH``,
``LOG_LEVEL``, ``ENABLE_AUTH`` ...) keep working as aliases.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "CALLMANAGER_"


def _env(name: str, *legacy: str) -> AliasChoices:
    """Accept ``CALLMANAGER_<NAME>`` and the seed's legacy names for one setting."""
    return AliasChoices(PREFIX + name, *legacy)


class Settings(BaseSettings):
    """Effective configuration of one CallManager process."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    environment: Literal["development", "production"] = Field(
        "development", validation_alias=_env("ENVIRONMENT", "FLASK_ENV")
    )
    host: str = Field("127.0.0.1", validation_alias=_env("HOST"))
    port: int = Field(5000, ge=1, le=65535, validation_alias=_env("PORT"))
    data_dir: Path = Field(Path("./var"), validation_alias=_env("DATA_DIR"))

    database_path: Path | None = Field(None, validation_alias=_env("DATABASE_PATH", "DATABASE_PATH"))
    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))
    bus_maxlen: int = Field(1_000_000, ge=1000, validation_alias=_env("BUS_MAXLEN"))
    bus_prefix: str = Field(
        "callmanager",
        min_length=1,
        max_length=50,
        pattern=r"^[A-Za-z0-9_.-]+$",
        validation_alias=_env("BUS_PREFIX"),
    )

    secret_key: SecretStr | None = Field(None, validation_alias=_env("SECRET_KEY"))
    metrics_token: SecretStr | None = Field(
        None,
        min_length=24,
        validation_alias=_env("METRICS_TOKEN"),
        description="Bearer token that lets a Prometheus scrape read /metrics without a user's key.",
    )
    enable_auth: bool = Field(True, validation_alias=_env("ENABLE_AUTH", "ENABLE_AUTH"))

    backup_dir: Path | None = Field(None, validation_alias=_env("BACKUP_DIR", "BACKUP_DIR"))
    backup_interval_minutes: int = Field(
        30, ge=0, validation_alias=_env("BACKUP_INTERVAL_MINUTES", "BACKUP_INTERVAL_MINUTES")
    )
    backup_keep_days: int = Field(7, ge=0, validation_alias=_env("BACKUP_KEEP_DAYS", "BACKUP_KEEP_DAYS"))
    backup_keep_count: int = Field(0, ge=0, validation_alias=_env("BACKUP_KEEP_COUNT", "BACKUP_KEEP_COUNT"))

    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL", "LOG_LEVEL"))
    log_file: Path | None = Field(None, validation_alias=_env("LOG_FILE", "LOG_FILE"))
    log_format: Literal["json", "console", "auto"] = Field("auto", validation_alias=_env("LOG_FORMAT"))

    default_lock_duration_minutes: int = Field(
        10,
        ge=1,
        validation_alias=_env("DEFAULT_LOCK_DURATION_MINUTES", "DEFAULT_LOCK_DURATION_MINUTES"),
    )
    max_lock_duration_minutes: int = Field(
        60, ge=1, validation_alias=_env("MAX_LOCK_DURATION_MINUTES", "MAX_LOCK_DURATION_MINUTES")
    )
    lock_sweep_seconds: float = Field(5.0, gt=0, validation_alias=_env("LOCK_SWEEP_SECONDS"))
    ageing_interval_minutes: int = Field(60, ge=1, validation_alias=_env("AGEING_INTERVAL_MINUTES"))
    call_start_timeout_seconds: int = Field(
        60, ge=5, le=3600, validation_alias=_env("CALL_START_TIMEOUT_SECONDS")
    )
    call_max_seconds: int = Field(4 * 3600, ge=60, le=86400, validation_alias=_env("CALL_MAX_SECONDS"))
    callback_reminder_minutes: int = Field(
        5,
        ge=0,
        le=1440,
        validation_alias=_env("CALLBACK_REMINDER_MINUTES"),
        description="Minutes before a callback is due that its live reminder goes out (0: at the due time).",
    )
    callback_grace_minutes: int = Field(
        30,
        ge=1,
        le=7 * 24 * 60,
        validation_alias=_env("CALLBACK_GRACE_MINUTES"),
        description="Minutes after its due time that a personal callback still pending becomes shared.",
    )
    callback_sweep_seconds: float = Field(
        15.0,
        gt=0,
        le=3600,
        validation_alias=_env("CALLBACK_SWEEP_SECONDS"),
        description="Seconds between passes of the callbacks' schedule (reminders, personal to shared).",
    )
    trusted_proxies: str = Field(
        "",
        max_length=2000,
        validation_alias=_env("TRUSTED_PROXIES"),
        description="Comma-separated addresses or networks whose X-Forwarded-For/-Proto are believed.",
    )

    generator_weight_kolbi: float = Field(40, ge=0, validation_alias=_env("GENERATOR_WEIGHT_KOLBI"))
    generator_weight_telefonica: float = Field(35, ge=0, validation_alias=_env("GENERATOR_WEIGHT_TELEFONICA"))
    generator_weight_claro: float = Field(25, ge=0, validation_alias=_env("GENERATOR_WEIGHT_CLARO"))

    max_upload_mb: int = Field(100, ge=1, validation_alias=_env("MAX_UPLOAD_MB"))
    max_import_rows: int = Field(1_000_000, ge=1, validation_alias=_env("MAX_IMPORT_ROWS"))
    job_lease_seconds: float = Field(
        30,
        ge=0.5,
        le=600,
        validation_alias=_env("JOB_LEASE_SECONDS"),
        description="A job's lease: a job whose process died is run again within about 4/3 of this.",
    )

    rate_limit: str = Field("600/minute", validation_alias=_env("RATE_LIMIT"))
    rate_limit_heavy: str = Field("20/minute", validation_alias=_env("RATE_LIMIT_HEAVY"))
    rate_limit_unidentified: str = Field("120/minute", validation_alias=_env("RATE_LIMIT_UNIDENTIFIED"))

    desk_updates_dir: Path | None = Field(
        None,
        validation_alias=_env("DESK_UPDATES_DIR"),
        description="Folder of the signed desk release (desk/publish.py) served at /desk/version.",
    )

    contacts_url: str = Field("http://127.0.0.1:5101", validation_alias=_env("CONTACTS_URL"))

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @model_validator(mode="after")
    def _lock_bounds(self) -> Settings:
        if self.default_lock_duration_minutes > self.max_lock_duration_minutes:
            raise ValueError("DEFAULT_LOCK_DURATION_MINUTES must not exceed MAX_LOCK_DURATION_MINUTES")
        return self

    @property
    def sqlite_path(self) -> Path:
        """Where the embedded database lives."""
        return self.database_path or self.data_dir / "callmanager.db"

    @property
    def embedded_database_url(self) -> str:
        """The SQLAlchemy URL of the embedded SQLite database."""
        return f"sqlite:///{self.sqlite_path.resolve()}"

    @property
    def backups_path(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"

    @property
    def uploads_path(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def is_loopback(self) -> bool:
        """Whether the server binds only to this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def public_view(self) -> dict[str, object]:
        """The effective settings with every secret left out."""
        hidden = {"secret_key", "metrics_token", "database_url", "redis_url"}
        return {
            k: (str(v) if isinstance(v, Path) else v) for k, v in self.model_dump().items() if k not in hidden
        }


def environment_name(field: str) -> str:
    """The ``CALLMANAGER_`` name of the setting ``field``."""
    return PREFIX + field.upper()


def _mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def masked_view(settings: Settings) -> dict[str, str]:
    """Every setting by its ``CALLMANAGER_`` name with its effective value; secrets masked."""
    view: dict[str, str] = {}
    for field in Settings.model_fields:
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            text = "***" if value.get_secret_value() else ""
        elif value is None:
            text = ""
        elif field in {"database_url", "redis_url"}:
            text = _mask_url(str(value))
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
        view[environment_name(field)] = text
    return view


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``.env``, with ``overrides`` taking precedence."""
    return Settings(**overrides)
