"""Reports kept on disk until the gateway acknowledges them: a small SQLite file, synced on every write."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS report (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL,
    payload TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Report:
    """One event for the gateway, numbered in the order it was written."""

    seq: int
    event: str
    payload: dict[str, Any]


class Outbox:
    """Durable, ordered reports: ``put`` before sending, ``remove`` once acknowledged or refused."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute("PRAGMA synchronous=FULL")  # each commit is fsynced before put() returns
        self._db.execute(_SCHEMA)

    def put(self, event: str, payload: dict[str, Any]) -> Report:
        """Write a report durably; return it with its sequence number."""
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
        with self._lock:
            cursor = self._db.execute("INSERT INTO report (event, payload) VALUES (?, ?)", (event, text))
        return Report(int(cursor.lastrowid or 0), event, payload)

    def pending(self) -> list[Report]:
        """Every report not yet acknowledged, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT seq, event, payload FROM report ORDER BY seq").fetchall()
        return [Report(int(seq), str(event), json.loads(payload)) for seq, event, payload in rows]

    def remove(self, seq: int) -> None:
        """Forget a report the gateway acknowledged or refused."""
        with self._lock:
            self._db.execute("DELETE FROM report WHERE seq = ?", (seq,))

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
