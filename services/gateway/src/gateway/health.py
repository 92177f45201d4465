"""Health of the gateway's dependencies: each check raises when its dependency is down."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

HealthCheck = Callable[[], None]


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Outcome of every check; ``healthy`` only when all passed."""

    healthy: bool
    checks: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        failing = [name for name, result in self.checks.items() if not result["ok"]]
        body: dict[str, Any] = {"status": "healthy" if self.healthy else "unhealthy", "checks": self.checks}
        if failing:
            body["failing"] = failing
        return body


def run_checks(checks: Mapping[str, HealthCheck]) -> HealthReport:
    """Run every check, timing it; a check that raises marks its dependency as failing."""
    results: dict[str, dict[str, Any]] = {}
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:
            results[name] = {"ok": False, "error": type(exc).__name__}
        else:
            results[name] = {"ok": True}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 2)
    return HealthReport(healthy=all(r["ok"] for r in results.values()), checks=results)
