"""Which desks are connected, to which user, and what each is doing: the desk registry.

A desk is a ``callmanager-dialer`` connection to a gateway's Socket.IO. The gateway that holds the
connection writes its presence and state here; every gateway reads it, so a call requested through one
gateway process finds a desk connected to another (the dial itself crosses over Socket.IO's Redis
manager). Embedded mode keeps the registry in memory; distributed mode in one Redis hash, each entry
with an expiry the holding gateway renews, so a gateway that dies takes its desks with it within
:data:`PRESENCE_SECONDS`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import orjson
import redis

PRESENCE_SECONDS = 45
"""How long a desk entry lives without its gateway renewing it (renewed every third of that)."""


class DeskState(StrEnum):
    """What a desk reports it is doing (``offline`` is the gateway's word for a desk that left)."""

    READY = "ready"
    DIALLING = "dialling"
    RINGING = "ringing"
    IN_CALL = "in_call"
    SOFTPHONE_MISSING = "softphone_missing"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Desk:
    """One connected desk: whose, its name, its connection, its state and since when (server clock)."""

    sid: str
    user_id: str
    username: str
    team: str | None
    desk: str
    state: DeskState
    since: datetime
    connected_at: datetime
    call_id: str | None = None
    contact_id: str | None = None

    def to_data(self) -> dict[str, Any]:
        """The ``desk_state`` payload (and a row of ``GET /desks``)."""
        return {
            "user_id": self.user_id,
            "username": self.username,
            "team": self.team,
            "desk": self.desk,
            "state": self.state.value,
            "call_id": self.call_id,
            "contact_id": self.contact_id,
            "since": self.since.isoformat(),
            "connected_at": self.connected_at.isoformat(),
        }


class DeskRegistry(Protocol):
    """Presence and state of the connected desks, shared by every gateway process of a deployment."""

    def joined(self, desk: Desk) -> None:
        """A desk connected (through this gateway)."""
        ...

    def left(self, sid: str) -> Desk | None:
        """The desk of connection ``sid`` disconnected; the desk as it was, None when unknown."""
        ...

    def moved(
        self, sid: str, state: DeskState, call_id: str | None, contact_id: str | None, at: datetime
    ) -> Desk | None:
        """The desk of ``sid`` reports ``state``; the desk after it, None when unknown."""
        ...

    def of_user(self, user_id: str) -> list[Desk]:
        """The user's connected desks, the most recently connected first."""
        ...

    def every(self) -> list[Desk]:
        """Every connected desk."""
        ...

    def renew(self, sids: Iterable[str]) -> None:
        """Keep the given connections' entries alive (the holding gateway calls it periodically)."""
        ...


class MemoryDeskRegistry:
    """The registry of one process (embedded mode)."""

    def __init__(self) -> None:
        self._desks: dict[str, Desk] = {}
        self._lock = threading.Lock()

    def joined(self, desk: Desk) -> None:
        """Record the desk."""
        with self._lock:
            self._desks[desk.sid] = desk

    def left(self, sid: str) -> Desk | None:
        """Forget the desk."""
        with self._lock:
            return self._desks.pop(sid, None)

    def moved(
        self, sid: str, state: DeskState, call_id: str | None, contact_id: str | None, at: datetime
    ) -> Desk | None:
        """Record the desk's new state."""
        with self._lock:
            desk = self._desks.get(sid)
            if desk is None:
                return None
            self._desks[sid] = desk = _moved(desk, state, call_id, contact_id, at)
            return desk

    def of_user(self, user_id: str) -> list[Desk]:
        """The user's desks."""
        with self._lock:
            return _newest_first(d for d in self._desks.values() if d.user_id == user_id)

    def every(self) -> list[Desk]:
        """Every desk."""
        with self._lock:
            return _newest_first(self._desks.values())

    def renew(self, sids: Iterable[str]) -> None:
        """Nothing to renew: entries live as long as this process."""


class RedisDeskRegistry:
    """The registry in one Redis hash (distributed mode): field = connection id, value = the desk and
    the moment its entry lapses unless renewed."""

    def __init__(
        self,
        client: redis.Redis,
        key: str = "callmanager:desks",
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        presence_seconds: int = PRESENCE_SECONDS,
    ) -> None:
        self._redis = client
        self._key = key
        self._clock = clock
        self._presence = timedelta(seconds=presence_seconds)

    def joined(self, desk: Desk) -> None:
        """Record the desk."""
        self._redis.hset(self._key, desk.sid, self._encode(desk))

    def left(self, sid: str) -> Desk | None:
        """Forget the desk."""
        pipe = self._redis.pipeline()
        pipe.hget(self._key, sid)
        pipe.hdel(self._key, sid)
        raw, _ = pipe.execute()
        return _decode(raw)[0] if raw else None

    def moved(
        self, sid: str, state: DeskState, call_id: str | None, contact_id: str | None, at: datetime
    ) -> Desk | None:
        """Record the desk's new state (only the holding gateway writes a desk's entry)."""
        raw = self._redis.hget(self._key, sid)
        if not raw:
            return None
        desk = _moved(_decode(raw)[0], state, call_id, contact_id, at)
        self._redis.hset(self._key, sid, self._encode(desk))
        return desk

    def of_user(self, user_id: str) -> list[Desk]:
        """The user's live desks."""
        return [desk for desk in self.every() if desk.user_id == user_id]

    def every(self) -> list[Desk]:
        """Every live desk; lapsed entries (their gateway died) are dropped on the way."""
        now = self._clock()
        live: list[Desk] = []
        lapsed: list[str] = []
        for sid, raw in self._redis.hgetall(self._key).items():
            desk, until = _decode(raw)
            (
                live.append(desk)
                if until > now
                else lapsed.append(sid if isinstance(sid, str) else sid.decode())
            )
        if lapsed:
            self._redis.hdel(self._key, *lapsed)
        return _newest_first(live)

    def renew(self, sids: Iterable[str]) -> None:
        """Push back the lapse of the given connections' entries."""
        wanted = list(sids)
        if not wanted:
            return
        found = self._redis.hmget(self._key, wanted)
        fresh: dict[Any, Any] = {
            sid: self._encode(_decode(raw)[0]) for sid, raw in zip(wanted, found, strict=True) if raw
        }
        if fresh:
            self._redis.hset(self._key, mapping=fresh)

    def _encode(self, desk: Desk) -> bytes:
        return orjson.dumps({**asdict(desk), "until": (self._clock() + self._presence).isoformat()})


def _decode(raw: bytes | str) -> tuple[Desk, datetime]:
    data = orjson.loads(raw)
    until = datetime.fromisoformat(data.pop("until"))
    for name in ("since", "connected_at"):
        data[name] = datetime.fromisoformat(data[name])
    data["state"] = DeskState(data["state"])
    return Desk(**data), until


def _moved(desk: Desk, state: DeskState, call_id: str | None, contact_id: str | None, at: datetime) -> Desk:
    since = desk.since if state is desk.state and call_id == desk.call_id else at
    return replace(desk, state=state, call_id=call_id, contact_id=contact_id, since=since)


def _newest_first(desks: Iterable[Desk]) -> list[Desk]:
    return sorted(desks, key=lambda d: d.connected_at, reverse=True)


__all__ = [
    "PRESENCE_SECONDS",
    "Desk",
    "DeskRegistry",
    "DeskState",
    "MemoryDeskRegistry",
    "RedisDeskRegistry",
]
