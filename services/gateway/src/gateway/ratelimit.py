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
    count: int = 0
    """Requests counted in the current window (filled for the unidentified limit only)."""


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
        unidentified_rate: str = "120/minute",
        audited_rate: str = "10/minute",
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
        self._unidentified = _Limits(unidentified_rate, parse_rate(unidentified_rate))
        self._audited = _Limits(audited_rate, parse_rate(audited_rate))

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

    def hit_unidentified(self, source: str) -> RateDecision:
        """Count one request from ``source`` (an address) that presented no valid key, against the
        unidentified limit; ``count`` says how many it made in the window."""
        try:
            decision = self._hit(self._unidentified, "unidentified", source)
            item = self._unidentified.items[0]
            stats = self._strategy.get_window_stats(item, self._namespace, "unidentified", source)
        except Exception as exc:  # as in hit: the store being down must not lock everyone out
            log.error("ratelimit.storage_failed", error=type(exc).__name__, scope="unidentified")
            return RateDecision(allowed=True, limit=self._unidentified.text)
        return RateDecision(
            decision.allowed, decision.retry_after, decision.limit, count=item.amount - stats.remaining
        )

    def may_audit(self, source: str) -> bool:
        """Whether a denial from ``source`` gets its own audit row (a few a window; the rest are counted
        in the next row's detail and in the log), so a flood of bad keys cannot flood the audit log."""
        try:
            return self._hit(self._audited, "audited", source).allowed
        except Exception:
            return True

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
