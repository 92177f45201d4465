"""The audit log: every mutating request and every denied one (who, what, when, outcome, from where).

It records the public key id, never the key; paths without their query string (where a careless client
might have put one).
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from gateway.roles import Principal
from gateway.schema import audit_log
from kernel.envelope import utcnow
from kernel.store import write_transaction

log = structlog.get_logger(__name__)

LONGEST_PAGE = 1000


class Outcome(StrEnum):
    """What became of an audited request."""

    ALLOWED = "allowed"
    DENIED = "denied"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited request."""

    method: str
    path: str
    outcome: Outcome
    status_code: int
    action: str | None = None
    user_id: uuid.UUID | None = None
    username: str | None = None
    key_id: str | None = None
    role: str | None = None
    source: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def by(cls, principal: Principal | None, **fields: Any) -> AuditEntry:
        """An entry whose who-fields come from ``principal`` (none for an anonymous caller)."""
        if principal is not None:
            fields.setdefault("user_id", principal.user_id)
            fields.setdefault("username", principal.username)
            fields.setdefault("key_id", principal.key_id)
            fields.setdefault("role", principal.role.value)
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored entry with its id and time."""

    id: int
    at: datetime
    entry: AuditEntry

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        e = self.entry
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "user_id": str(e.user_id) if e.user_id else None,
            "username": e.username,
            "key_id": e.key_id,
            "role": e.role,
            "method": e.method,
            "path": e.path,
            "action": e.action,
            "outcome": e.outcome.value,
            "status_code": e.status_code,
            "source": e.source,
            "detail": dict(e.detail),
        }


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries to read; ``before_id`` pages backwards from the newest."""

    username: str | None = None
    key_id: str | None = None
    outcome: Outcome | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None


class AuditSink(Protocol):
    """Where audit entries go."""

    def record(self, entry: AuditEntry) -> None: ...


class AuditLog:
    """The ``audit_log`` table over one engine."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    def record(self, entry: AuditEntry) -> None:
        """Append one entry; a failure is logged, never raised (the request's answer stands)."""
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(
                    audit_log.insert().values(
                        at=self._clock(),
                        user_id=entry.user_id,
                        username=entry.username,
                        key_id=entry.key_id,
                        role=entry.role,
                        method=entry.method[:16],
                        path=entry.path[:500],
                        action=entry.action,
                        outcome=entry.outcome.value,
                        status_code=entry.status_code,
                        source=(entry.source or "")[:64] or None,
                        detail=dict(entry.detail),
                    )
                )
        except sa.exc.SQLAlchemyError as exc:
            log.error(
                "audit.write_failed",
                error=type(exc).__name__,
                method=entry.method,
                path=entry.path,
                outcome=entry.outcome.value,
                username=entry.username,
                key_id=entry.key_id,
            )

    def list(self, filters: AuditFilter | None = None, limit: int = 100) -> builtins.list[AuditRecord]:
        """Entries matching ``filters``, newest first, at most ``limit`` (≤ 1000)."""
        filters = filters or AuditFilter()
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(max(1, min(limit, LONGEST_PAGE)))
        if filters.username is not None:
            query = query.where(audit_log.c.username == filters.username.strip().lower())
        if filters.key_id is not None:
            query = query.where(audit_log.c.key_id == filters.key_id)
        if filters.outcome is not None:
            query = query.where(audit_log.c.outcome == filters.outcome.value)
        if filters.action is not None:
            query = query.where(audit_log.c.action == filters.action)
        if filters.since is not None:
            query = query.where(audit_log.c.at >= _utc(filters.since))
        if filters.until is not None:
            query = query.where(audit_log.c.at < _utc(filters.until))
        if filters.before_id is not None:
            query = query.where(audit_log.c.id < filters.before_id)
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _record(row: sa.RowMapping) -> AuditRecord:
    at: datetime = row["at"]
    return AuditRecord(
        id=row["id"],
        at=at.replace(tzinfo=UTC) if at.tzinfo is None else at,
        entry=AuditEntry(
            method=row["method"],
            path=row["path"],
            outcome=Outcome(row["outcome"]),
            status_code=row["status_code"],
            action=row["action"],
            user_id=row["user_id"],
            username=row["username"],
            key_id=row["key_id"],
            role=row["role"],
            source=row["source"],
            detail=row["detail"] or {},
        ),
    )
