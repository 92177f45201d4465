"""The Redis Streams bus for distributed mode: XADD / XREADGROUP / XACK / XAUTOCLAIM on a client passed in.

Each message is one stream entry with a single field ``m`` holding the body. Batches go through pipelines
(``transaction=False``) so a batch costs one round trip. The client must keep redis-py's default
(legacy) response shapes and must not decode responses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from kernel.bus.port import Delivery

_FIELD = b"m"
_CHUNK = 10_000
_NOT_ABOVE_TOP = "equal or smaller than the target stream top item"

Command = Callable[..., Any]


def _number(message_id: bytes) -> int:
    return int(message_id.partition(b"-")[0])


class RedisStreamsBus:
    """A :class:`~kernel.bus.port.Bus` on Redis Streams; topics are trimmed to about ``maxlen`` entries.

    The client belongs to the caller unless ``owns_client`` is true, in which case ``close`` closes it.
    A long ``read`` blocks in slices shorter than the client's socket timeout (redis-py's default is 5 s),
    so it never times out the connection and notices ``close`` within a slice.
    """

    def __init__(self, client: redis.Redis, maxlen: int = 1_000_000, *, owns_client: bool = False) -> None:
        options = client.get_connection_kwargs()
        if options.get("decode_responses") or options.get("legacy_responses", True) is False:
            raise ValueError(
                "RedisStreamsBus needs a client with decode_responses=False and legacy responses"
            )
        socket_timeout = options.get("socket_timeout")
        self._client = client
        self._maxlen = maxlen
        self._owns_client = owns_client
        self._block_slice_ms = 1000 if not socket_timeout else max(1, min(1000, int(socket_timeout * 500)))
        self._closed = False

    def _redis(self) -> redis.Redis:
        if self._closed:
            raise RuntimeError("the bus is closed")
        return self._client

    def _command(self) -> Command:
        command: Command = self._redis().execute_command
        return command

    def publish(self, topic: str, bodies: Sequence[bytes]) -> list[str]:
        """Append ``bodies`` to ``topic`` in order (pipelined XADD, approximate MAXLEN); return their ids."""
        client = self._redis()
        ids: list[str] = []
        maxlen = self._maxlen
        for start in range(0, len(bodies), _CHUNK):
            with client.pipeline(transaction=False) as pipe:
                add: Command = pipe.execute_command
                for body in bodies[start : start + _CHUNK]:
                    add("XADD", topic, "MAXLEN", "~", maxlen, "*", _FIELD, body)
                ids.extend(i.decode() for i in pipe.execute())
        return ids

    def publish_at(self, topic: str, items: Sequence[tuple[int, bytes]]) -> int:
        """Append bodies under ids ``<n>-0``; ids not above the stream's top are skipped; count appended."""
        client = self._redis()
        appended = 0
        maxlen = self._maxlen
        for start in range(0, len(items), _CHUNK):
            with client.pipeline(transaction=False) as pipe:
                sent = 0
                add: Command = pipe.execute_command
                for n, body in items[start : start + _CHUNK]:
                    if n <= 0:
                        continue
                    add("XADD", topic, "MAXLEN", "~", maxlen, f"{n}-0", _FIELD, body)
                    sent += 1
                if not sent:
                    continue
                for result in pipe.execute(raise_on_error=False):
                    if isinstance(result, redis.ResponseError):
                        if _NOT_ABOVE_TOP in str(result):
                            continue
                        raise result
                    appended += 1
        return appended

    def last_id(self, topic: str) -> int:
        """The numeric part of the stream's last generated id (0 for a missing stream)."""
        try:
            info: dict[str, Any] = self._redis().xinfo_stream(topic)
        except redis.ResponseError as exc:
            if "no such key" in str(exc):
                return 0
            raise
        return _number(info["last-generated-id"])

    def ensure_group(self, topic: str, group: str, start: str = "0") -> None:
        """XGROUP CREATE with MKSTREAM; an existing group is left as it is."""
        try:
            self._command()("XGROUP", "CREATE", topic, group, start, "MKSTREAM")
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, topic: str, group: str, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """XREADGROUP ``>``: up to ``count`` new messages, blocking at most ``block_ms`` (0: not at all)."""
        if block_ms <= 0:
            response = self._command()(
                "XREADGROUP", "GROUP", group, consumer, "COUNT", count, "STREAMS", topic, ">"
            )
        else:
            deadline = time.monotonic() + block_ms / 1000
            while True:
                wait_ms = min(self._block_slice_ms, max(1, int((deadline - time.monotonic()) * 1000)))
                response = self._command()(
                    "XREADGROUP",
                    "GROUP",
                    group,
                    consumer,
                    "COUNT",
                    count,
                    "BLOCK",
                    wait_ms,
                    "STREAMS",
                    topic,
                    ">",
                )
                if response or time.monotonic() >= deadline or self._closed:
                    break
        if not response:
            return []
        return [Delivery(i.decode(), fields[_FIELD]) for i, fields in response[0][1]]

    def claim_stale(
        self, topic: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        """XAUTOCLAIM up to ``count`` messages idle ≥ ``min_idle_ms``; deliveries counted by XPENDING."""
        client = self._redis()
        command: Command = client.execute_command
        claimed: list[tuple[bytes, bytes]] = []
        cursor: bytes | str = "0-0"
        while len(claimed) < count:
            response = command(
                "XAUTOCLAIM", topic, group, consumer, min_idle_ms, cursor, "COUNT", count - len(claimed)
            )
            cursor = response[0]
            claimed.extend((i, fields[_FIELD]) for i, fields in response[1] if i is not None)
            if cursor == b"0-0":
                break
        if not claimed:
            return []
        details = client.xpending_range(
            topic, group, claimed[0][0], claimed[-1][0], 2 * len(claimed) + 100, consumername=consumer
        )
        times = {row["message_id"]: int(row["times_delivered"]) for row in details}
        return [Delivery(i.decode(), body, times.get(i, 2)) for i, body in claimed]

    def ack(self, topic: str, group: str, ids: Sequence[str]) -> None:
        """XACK ``ids`` (one command per 10,000 ids, pipelined)."""
        if not ids:
            return
        client = self._redis()
        if len(ids) <= _CHUNK:
            self._command()("XACK", topic, group, *ids)
            return
        with client.pipeline(transaction=False) as pipe:
            add: Command = pipe.execute_command
            for start in range(0, len(ids), _CHUNK):
                add("XACK", topic, group, *ids[start : start + _CHUNK])
            pipe.execute()

    def pending_count(self, topic: str, group: str) -> int:
        """XPENDING summary: how many messages of ``group`` are read but not acknowledged."""
        summary: dict[str, Any] = self._redis().xpending(topic, group)
        return int(summary["pending"])

    def read_range(self, topic: str, after: int, count: int) -> list[tuple[int, bytes]]:
        """XRANGE from ``<after + 1>-0``: up to ``count`` messages with numeric id above ``after``."""
        entries = self._command()("XRANGE", topic, f"{after + 1}-0", "+", "COUNT", count)
        return [(_number(i), fields[_FIELD]) for i, fields in entries]

    def close(self) -> None:
        """Refuse later calls; close the client too when this bus owns it."""
        self._closed = True
        if self._owns_client:
            self._client.close()
