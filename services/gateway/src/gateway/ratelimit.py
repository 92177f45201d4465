"""Per-key request rates with the ``limits`` library.

The storage is chosen by the composition root: ``limits.storage.MemoryStorage()`` in embedded mode,
``limits.storage.storage_from_string(redis_url)`` in distributed mode so every gateway replica counts
against the same windows. Two limits per key: the general one (``rate_limit``) for every request, and a
stricter one (``rate_limit_heavy``) that import and generation requests also pay. Both can be changed
while the process runs (:meth:`RateLimiter.configure`).

Given an asyncio twin of the same storage (``limits.aio``, e.g. Redis through redis-py's asyncio client),
:meth:`RateLimiter.passes` counts on the event loop against the same counters, so a gateway on Redis
admits a request without handing it to a worker thread.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import structlog
from limits import RateLimitItem, parse_many
from limits.aio import strategies as aio_strategies
from limits.aio.storage import Storage as AsyncStorage
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from limits.strategies import RateLimiter as Strategy

log = structlog.get_logger(__name__)

Window = Literal["moving", "fixed"]


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether one request may pass; when not, how many seconds to wait (``Retry-After``)."""

    allowed: bool
    retry_after: int = 0
    limit: str = ""


@dataclass(frozen=True, slots=True)
class _Limits:
    text: str
    items: tuple[RateLimitItem, ...]


def parse_rate(text: str) -> tuple[RateLimitItem, ...]:
    """The limits in ``text`` (``600/minute``, ``10/second;600/minute``), or ``ValueError`` in Spanish."""
    try:
        items = tuple(parse_many(text))
    except ValueError as exc:
        raise ValueError(
            f"límite de peticiones inválido {text!r}: use por ejemplo '600/minute' o '10/second;600/minute'"
        ) from exc
    if not items or any(item.amount < 1 for item in items):
        raise ValueError(f"límite de peticiones inválido {text!r}: debe permitir al menos 1 petición")
    return items


class RateLimiter:
    """Counts requests per key id against the general or the heavy limit."""

    def __init__(
        self,
        storage: Storage,
        *,
        rate: str,
        heavy_rate: str,
        window: Window = "moving",
        namespace: str = "callmanager",
        async_storage: AsyncStorage | None = None,
    ) -> None:
        self._strategy: Strategy = (
            MovingWindowRateLimiter(storage) if window == "moving" else FixedWindowRateLimiter(storage)
        )
        self._async_strategy: aio_strategies.RateLimiter | None = None
        if async_storage is not None:
            self._async_strategy = (
                aio_strategies.MovingWindowRateLimiter(async_storage)
                if window == "moving"
                else aio_strategies.FixedWindowRateLimiter(async_storage)
            )
        self._namespace = namespace
        self._general = _Limits(rate, parse_rate(rate))
        self._heavy = _Limits(heavy_rate, parse_rate(heavy_rate))

    @property
    def counts_async(self) -> bool:
        """Whether :meth:`passes` can count (an asyncio storage was given)."""
        return self._async_strategy is not None

    @property
    def rate(self) -> str:
        return self._general.text

    @property
    def heavy_rate(self) -> str:
        return self._heavy.text

    def configure(self, *, rate: str | None = None, heavy_rate: str | None = None) -> None:
        """Change either limit from now on; both are validated before either changes."""
        general = _Limits(rate, parse_rate(rate)) if rate is not None else self._general
        heavy = _Limits(heavy_rate, parse_rate(heavy_rate)) if heavy_rate is not None else self._heavy
        self._general, self._heavy = general, heavy

    def hit(self, identity: str, *, heavy: bool = False) -> RateDecision:
        """Count one request of ``identity`` (a key id) against the general limit, or the heavy one."""
        limits = self._heavy if heavy else self._general
        scope = "heavy" if heavy else "general"
        try:
            return self._hit(limits, scope, identity)
        except Exception as exc:
            # Availability over throttling: the rate store being down (StorageError, a Redis client
            # error, whatever the storage raises) must not lock everyone out; /health reports it.
            log.error("ratelimit.storage_failed", error=type(exc).__name__, scope=scope)
            return RateDecision(allowed=True, limit=limits.text)

    async def passes(self, identity: str) -> bool:
        """Count one request of ``identity`` against the general limit on the event loop; True if it passes.

        False also when there is no asyncio storage or it fails: the caller then takes :meth:`hit`, which
        tells why (``Retry-After``) or lets the request through while the store is down. A refused hit
        adds no count, so nothing is counted twice.
        """
        strategy = self._async_strategy
        if strategy is None:
            return False
        try:
            for item in self._general.items:
                if not await strategy.hit(item, self._namespace, "general", identity):
                    return False
        except Exception as exc:
            log.warning("ratelimit.async_storage_failed", error=type(exc).__name__)
            return False
        return True

    def _hit(self, limits: _Limits, scope: str, identity: str) -> RateDecision:
        for item in limits.items:
            if not self._strategy.hit(item, self._namespace, scope, identity):
                return RateDecision(
                    allowed=False, retry_after=self._retry_after(item, scope, identity), limit=str(item)
                )
        return RateDecision(allowed=True, limit=limits.text)

    def _retry_after(self, item: RateLimitItem, scope: str, identity: str) -> int:
        stats = self._strategy.get_window_stats(item, self._namespace, scope, identity)
        return max(1, math.ceil(stats.reset_time - time.time()))
