"""What the generator answers: the JSON of a generation run (``POST /api/generate_contacts``)."""

from __future__ import annotations

from typing import Any

from generator.batch import GenerationRun

__all__ = ["generation_view"]


def generation_view(run: GenerationRun) -> dict[str, Any]:
    """``{success, count, saved, merged, rejected, method, seed, redraws, weights, operators, phones,
    list}``."""
    return {"success": True, **run.summary(), "phones": run.phones()}
