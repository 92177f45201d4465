"""Health of the gateway's dependencies: each check raises when its dependency is down.

A check may return details to show (a time, a count). Advisory checks (backups) are shown and listed
as failing, but leave the status ``degraded`` with 200, so a load balancer keeps a gateway whose last
backup failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

HealthCheck = Callable[[], Mapping[str, Any] | None]


class CheckFailed(Exception):
    """A failing check with details that are safe to show (times, counts, an operator's message)."""

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = dict(details or {})


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Outcome of every check; ``healthy`` when all the required ones passed."""

    healthy: bool
    checks: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        failing = [name for name, result in self.checks.items() if not result["ok"]]
        status = "unhealthy" if not self.healthy else "degraded" if failing else "healthy"
        body: dict[str, Any] = {"status": status, "checks": self.checks}
        if failing:
            body["failing"] = failing
        return body


def run_checks(
    checks: Mapping[str, HealthCheck], advisory: Mapping[str, HealthCheck] | None = None
) -> HealthReport:
    """Run every check, timing it; a check that raises marks its dependency as failing.

    Only ``checks`` decide ``healthy``; ``advisory`` ones are reported beside them.
    """
    results: dict[str, dict[str, Any]] = {}
    for name, check in {**checks, **(advisory or {})}.items():
        started = time.perf_counter()
        try:
            details = check()
        except CheckFailed as exc:
            results[name] = {"ok": False, "error": str(exc), **exc.details}
        except Exception as exc:
            results[name] = {"ok": False, "error": type(exc).__name__}
        else:
            results[name] = {"ok": True, **(details or {})}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 2)
    healthy = all(results[name]["ok"] for name in checks)
    return HealthReport(healthy=healthy, checks=results)
