"""Unsaved edits kept on disk until saved, so a reconnect or a crash of the client loses nothing.

One small JSON file (``drafts.json`` in the config folder) maps a contact id to the fields typed, the
version they were typed over and those fields as they were then (the base a later conflict is judged by).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Draft:
    """The fields typed for one contact and what they were typed over."""

    contact_id: str
    fields: dict[str, str]
    base_version: int
    base: dict[str, str] = field(default_factory=dict)
    saved_at: str = ""

    def to_data(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "fields": self.fields,
            "base_version": self.base_version,
            "base": self.base,
            "saved_at": self.saved_at,
        }

    @classmethod
    def from_data(cls, contact_id: str, data: Any) -> Draft | None:
        """The draft stored for ``contact_id``; None when the entry is unreadable."""
        if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
            return None
        base = data.get("base") if isinstance(data.get("base"), dict) else {}
        version = data.get("base_version")
        return cls(
            contact_id,
            {str(k): str(v) for k, v in data["fields"].items()},
            version if isinstance(version, int) else 0,
            {str(k): str(v) for k, v in (base or {}).items()},
            str(data.get("saved_at") or ""),
        )


class DraftStore(Protocol):
    """Where unsaved edits wait."""

    def get(self, contact_id: str) -> Draft | None:
        """The draft kept for ``contact_id``."""
        ...

    def put(self, draft: Draft) -> None:
        """Keep ``draft`` (replacing the contact's previous one)."""
        ...

    def drop(self, contact_id: str) -> None:
        """Forget the contact's draft (saved or discarded)."""
        ...


class MemoryDrafts:
    """Drafts in memory only (tests, and clients built without a config folder)."""

    def __init__(self) -> None:
        self.drafts: dict[str, Draft] = {}

    def get(self, contact_id: str) -> Draft | None:
        """The draft kept for ``contact_id``."""
        return self.drafts.get(contact_id)

    def put(self, draft: Draft) -> None:
        """Keep ``draft``."""
        self.drafts[draft.contact_id] = draft

    def drop(self, contact_id: str) -> None:
        """Forget the contact's draft."""
        self.drafts.pop(contact_id, None)


class FileDrafts:
    """Drafts in one JSON file, rewritten whole (through a temporary file) on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        if not data:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        os.chmod(tmp, 0o600)  # notes may hold what customers said
        tmp.replace(self.path)

    def get(self, contact_id: str) -> Draft | None:
        """The draft kept for ``contact_id``."""
        return Draft.from_data(contact_id, self._read().get(contact_id))

    def put(self, draft: Draft) -> None:
        """Keep ``draft``, stamped with the time it was written."""
        data = self._read()
        stamped = Draft(
            draft.contact_id, draft.fields, draft.base_version, draft.base, datetime.now(UTC).isoformat()
        )
        data[draft.contact_id] = stamped.to_data()
        self._write(data)

    def drop(self, contact_id: str) -> None:
        """Forget the contact's draft."""
        data = self._read()
        if data.pop(contact_id, None) is not None:
            self._write(data)
