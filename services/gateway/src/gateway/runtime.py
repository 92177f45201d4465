"""Runtime settings TI may change while the system runs (lock durations, rate limits).

Each change is an event (``gateway.RuntimeSettingsChanged``) in the event store's ``config-runtime``
stream, so it is audited, survives restarts, and reaches other processes through the relay; a reset
(``gateway.RuntimeSettingsReset``, from ``callmanager config reset KEY``) hands a setting back to the
environment. Precedence, highest first: a runtime change not reset since, the environment (``.env``),
the default. ``GET /config`` says which one each value comes from, and a start whose environment value
a runtime change overrides says so in the log. Every value is bounded (:data:`BOUNDS`): one request
cannot shorten every lock to a minute or throttle everyone to a request a minute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog

from gateway.ratelimit import RateLimiter, parse_rate
from kernel.envelope import Actor, Envelope
from kernel.settings import Settings
from kernel.store import ConcurrencyError, EventStore

STREAM = "config-runtime"
CHANGED = "gateway.RuntimeSettingsChanged"
RESET = "gateway.RuntimeSettingsReset"

LOCK_MINUTES = (5, 24 * 60)
"""Lock durations TI may set at run time, in minutes (inclusive)."""
RATE_FLOOR_PER_MINUTE = {"rate_limit": 60, "rate_limit_heavy": 5}
"""The fewest requests a minute each rate limit may allow once changed at run time."""

log = structlog.get_logger(__name__)


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
        """These settings with ``changes`` applied, each within its bounds (InvalidRuntimeSettings)."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise InvalidRuntimeSettings(f"No se pueden cambiar en caliente: {', '.join(sorted(unknown))}")
        updated = replace(self, **changes)
        low, high = LOCK_MINUTES
        minutes = (updated.default_lock_duration_minutes, updated.max_lock_duration_minutes)
        if any(
            name in changes for name in ("default_lock_duration_minutes", "max_lock_duration_minutes")
        ) and (not low <= minutes[0] <= minutes[1] <= high):
            raise InvalidRuntimeSettings(
                f"La duración por defecto del bloqueo debe estar entre {low} minutos y la máxima, "
                f"y la máxima ser como mucho {high} minutos."
            )
        for name, floor in RATE_FLOOR_PER_MINUTE.items():
            if name not in changes:
                continue
            try:
                items = parse_rate(getattr(updated, name))
            except ValueError as exc:
                raise InvalidRuntimeSettings(
                    f"{name}: límite no válido ({getattr(updated, name)!r})"
                ) from exc
            per_minute = min(item.amount * 60 / item.get_expiry() for item in items)
            if per_minute < floor:
                text = getattr(updated, name)
                raise InvalidRuntimeSettings(
                    f"{name}: debe permitir al menos {floor} peticiones por minuto ({text!r})"
                )
        return updated

    def without(self, names: Iterable[str], base: RuntimeSettings) -> RuntimeSettings:
        """These settings with ``names`` back at ``base``'s values."""
        return replace(
            self, **{name: getattr(base, name) for name in names if name in self.__dataclass_fields__}
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def current_runtime(store: EventStore, base: RuntimeSettings) -> tuple[RuntimeSettings, int]:
    """The effective runtime settings and the config stream's version."""
    current, _, version = runtime_with_sources(store, base)
    return current, version


def runtime_with_sources(store: EventStore, base: RuntimeSettings) -> tuple[RuntimeSettings, set[str], int]:
    """The effective runtime settings, the names a runtime change sets now, and the stream's version.

    A stored change now outside the bounds (made before they existed) is left out, with a warning.
    """
    current = base
    changed: set[str] = set()
    version = 0
    for event in store.read_stream(STREAM):
        version = event.stream_version
        if event.type == RESET:
            names = [str(name) for name in event.data.get("names", [])]
            current = current.without(names, base)
            changed -= set(names)
            continue
        changes = dict(event.data.get("changes", {}))
        try:
            current = current.changed(changes)
        except InvalidRuntimeSettings as exc:
            log.warning("config.stored_change_ignored", changes=changes, reason=str(exc))
            continue
        changed |= set(changes)
    return current, changed, version


def reset_runtime(store: EventStore, names: Iterable[str], actor: Actor) -> list[str]:
    """Hand ``names`` back to the environment (an event); the names that were overridden."""
    wanted = list(dict.fromkeys(names))
    unknown = [name for name in wanted if name not in RuntimeSettings.__dataclass_fields__]
    if unknown:
        raise InvalidRuntimeSettings(f"No son ajustes de tiempo de ejecución: {', '.join(unknown)}")
    for _ in range(5):
        _, changed, version = runtime_with_sources(store, _placeholder_base())
        event = Envelope(type=RESET, stream_id=STREAM, data={"names": wanted}, actor=actor)
        try:
            with store.transaction() as conn:
                store.append(conn, STREAM, version, [event])
        except ConcurrencyError:
            continue
        return [name for name in wanted if name in changed]
    raise InvalidRuntimeSettings("La configuración cambió a la vez desde otro lugar; intente de nuevo.")


def _placeholder_base() -> RuntimeSettings:
    """Any valid base: :func:`reset_runtime` needs only which names are overridden, not their values."""
    return RuntimeSettings(10, 60, "600/minute", "20/minute")


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
        self._overridden: set[str] = set()

    def load(self) -> None:
        """Apply the stored changes (at start-up); say which environment values they override."""
        self.current, self._overridden, _ = runtime_with_sources(self._store, self._base)
        from_env = self._settings.model_fields_set
        for name in sorted(self._overridden & from_env):
            log.warning(
                "config.env_overridden_at_runtime",
                setting=name,
                env=getattr(self._base, name),
                runtime=getattr(self.current, name),
                undo=f"callmanager config reset {name}",
            )
        self._apply()

    def refresh(self) -> bool:
        """Take up changes and resets made elsewhere (another gateway, the CLI); True when any."""
        current, overridden, _ = runtime_with_sources(self._store, self._base)
        if (current, overridden) == (self.current, self._overridden):
            return False
        self.current, self._overridden = current, overridden
        self._apply()
        return True

    def effective(self) -> dict[str, Any]:
        """Every setting in force, secrets left out, and where each runtime setting comes from."""
        from_env = self._settings.model_fields_set
        sources = {
            name: "runtime" if name in self._overridden else "env" if name in from_env else "default"
            for name in self.current.to_dict()
        }
        return {**self._settings.public_view(), **self.current.to_dict(), "sources": sources}

    def describe_change(self, changes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """``{name: {old, new}}`` of ``changes`` against the values in force (for the audit)."""
        return {
            name: {"old": getattr(self.current, name, None), "new": value} for name, value in changes.items()
        }

    def change(self, changes: Mapping[str, Any], actor: Actor) -> RuntimeSettings:
        """Validate, record as an event, and apply ``changes``."""
        for _ in range(5):
            current, overridden, version = runtime_with_sources(self._store, self._base)
            updated = current.changed(changes)
            event = Envelope(type=CHANGED, stream_id=STREAM, data={"changes": dict(changes)}, actor=actor)
            try:
                with self._store.transaction() as conn:
                    self._store.append(conn, STREAM, version, [event])
            except ConcurrencyError:
                continue
            self.current = updated
            self._overridden = overridden | set(changes)
            self._apply()
            return updated
        raise InvalidRuntimeSettings("La configuración cambió a la vez desde otro lugar; intente de nuevo.")

    def _apply(self) -> None:
        self._limiter.configure(rate=self.current.rate_limit, heavy_rate=self.current.rate_limit_heavy)
        self._on_lock_policy(
            self.current.default_lock_duration_minutes, self.current.max_lock_duration_minutes
        )
