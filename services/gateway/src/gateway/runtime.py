"""Runtime settings TI may change while the system runs (lock durations, rate limits).

Each change is an event (``gateway.RuntimeSettingsChanged``) in the event store's ``config-runtime``
stream, so it is audited, survives restarts, and reaches other processes through the relay. The
effective value of a setting is the last change, else the value from ``.env``/environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from gateway.ratelimit import RateLimiter, parse_rate
from kernel.envelope import Actor, Envelope
from kernel.settings import Settings
from kernel.store import ConcurrencyError, EventStore

STREAM = "config-runtime"
CHANGED = "gateway.RuntimeSettingsChanged"


class InvalidRuntimeSettings(ValueError):
    """A requested change that cannot be applied, with a Spanish message."""


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """The settings that can change at run time."""

    default_lock_duration_minutes: int
    max_lock_duration_minutes: int
    rate_limit: str
    rate_limit_heavy: str

    @classmethod
    def from_settings(cls, settings: Settings) -> RuntimeSettings:
        return cls(
            default_lock_duration_minutes=settings.default_lock_duration_minutes,
            max_lock_duration_minutes=settings.max_lock_duration_minutes,
            rate_limit=settings.rate_limit,
            rate_limit_heavy=settings.rate_limit_heavy,
        )

    def changed(self, changes: Mapping[str, Any]) -> RuntimeSettings:
        """These settings with ``changes`` applied and validated."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise InvalidRuntimeSettings(f"No se pueden cambiar en caliente: {', '.join(sorted(unknown))}")
        updated = replace(self, **changes)
        if not 1 <= updated.default_lock_duration_minutes <= updated.max_lock_duration_minutes <= 24 * 60:
            raise InvalidRuntimeSettings(
                "La duración por defecto del bloqueo debe estar entre 1 y la máxima (máximo 1440 minutos)."
            )
        for name in ("rate_limit", "rate_limit_heavy"):
            try:
                parse_rate(getattr(updated, name))
            except ValueError as exc:
                raise InvalidRuntimeSettings(
                    f"{name}: límite no válido ({getattr(updated, name)!r})"
                ) from exc
        return updated

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def current_runtime(store: EventStore, base: RuntimeSettings) -> tuple[RuntimeSettings, int]:
    """The effective runtime settings and the config stream's version."""
    current = base
    version = 0
    for event in store.read_stream(STREAM):
        current = current.changed(event.data.get("changes", {}))
        version = event.stream_version
    return current, version


class ConfigStore:
    """Reads and changes runtime settings; applies them to this process's rate limiter and lock policy."""

    def __init__(
        self,
        settings: Settings,
        store: EventStore,
        limiter: RateLimiter,
        on_lock_policy: Callable[[int, int], None],
    ) -> None:
        self._settings = settings
        self._store = store
        self._limiter = limiter
        self._on_lock_policy = on_lock_policy
        self._base = RuntimeSettings.from_settings(settings)
        self.current = self._base

    def load(self) -> None:
        """Apply the stored changes (at start-up)."""
        self.current, _ = current_runtime(self._store, self._base)
        self._apply()

    def effective(self) -> dict[str, Any]:
        """Every setting in force, secrets left out."""
        return {**self._settings.public_view(), **self.current.to_dict()}

    def change(self, changes: Mapping[str, Any], actor: Actor) -> RuntimeSettings:
        """Validate, record as an event, and apply ``changes``."""
        for _ in range(5):
            current, version = current_runtime(self._store, self._base)
            updated = current.changed(changes)
            event = Envelope(type=CHANGED, stream_id=STREAM, data={"changes": dict(changes)}, actor=actor)
            try:
                with self._store.transaction() as conn:
                    self._store.append(conn, STREAM, version, [event])
            except ConcurrencyError:
                continue
            self.current = updated
            self._apply()
            return updated
        raise InvalidRuntimeSettings("La configuración cambió a la vez desde otro lugar; intente de nuevo.")

    def _apply(self) -> None:
        self._limiter.configure(rate=self.current.rate_limit, heavy_rate=self.current.rate_limit_heavy)
        self._on_lock_policy(
            self.current.default_lock_duration_minutes, self.current.max_lock_duration_minutes
        )
