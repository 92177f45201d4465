"""The generator's public contract: the one command it takes, its limits, its typed refusal.

The gateway builds a :class:`GenerateNumbers` from a request and hands it to its generator port; the
port runs it in process (embedded) or sends it to ``callmanager serve generator`` over rq (distributed).
The command travels as :meth:`GenerateNumbers.to_data` (plain JSON), never as a pickled object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from contacts.commands import Caller
from contacts.views import caller_from_data, caller_to_data
from generator.batch import MAX_COUNT, MAX_SYNC_COUNT, batch_list_name
from generator.draw import GenerationError, Method, check_weights, new_seed, parse_method
from generator.generatejob import GENERATE_JOB

__all__ = [
    "GENERATE_JOB",
    "MAX_COUNT",
    "MAX_SYNC_COUNT",
    "GenerateNumbers",
    "GenerationRefused",
]

_AMOUNT_MESSAGE = (
    "La cantidad debe ser un número entero entre 1 y 1.000.000 "
    "(hasta 1.000 con respuesta inmediata; más, como trabajo en segundo plano)."
)


class GenerationRefused(ValueError):
    """A generation that cannot be run: ``code`` for programs, ``message`` (Spanish) for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class GenerateNumbers:
    """Draw ``count`` Costa Rican mobile numbers; with ``save``, create them as contacts in ``list_name``.

    ``weights`` None means the generator's configured weights; ``seed`` None a fresh one.
    """

    caller: Caller
    count: int
    method: str = Method.STRATIFIED.value
    save: bool = False
    seed: int | None = None
    weights: Mapping[str, float] | None = None
    list_name: str = ""

    def checked(self) -> GenerateNumbers:
        """This command with its method normalised; :class:`GenerationRefused` if it cannot be run."""
        if not 1 <= self.count <= MAX_COUNT:
            raise GenerationRefused("invalid_amount", _AMOUNT_MESSAGE)
        try:
            method = parse_method(self.method.strip().lower())
        except GenerationError as exc:
            raise GenerationRefused("invalid_method", str(exc)) from exc
        if self.weights is not None:
            try:
                check_weights(self.weights)
            except GenerationError as exc:
                raise GenerationRefused("invalid_weights", str(exc)) from exc
        return replace(self, method=method.value)

    def pinned(self) -> GenerateNumbers:
        """This command with its seed and (when saved) its list chosen now, so a job can repeat it."""
        return replace(
            self,
            seed=self.seed if self.seed is not None else new_seed(),
            list_name=self.list_name or (batch_list_name() if self.save else ""),
        )

    def to_data(self) -> dict[str, Any]:
        """JSON-ready: the ``generate`` job's parameters."""
        return {
            "count": self.count,
            "method": self.method,
            "save": self.save,
            "seed": self.seed,
            "weights": dict(self.weights) if self.weights is not None else None,
            "list": self.list_name,
            "caller": caller_to_data(self.caller),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> GenerateNumbers:
        """The command :meth:`to_data` wrote."""
        weights = data.get("weights")
        seed = data.get("seed")
        return cls(
            caller=caller_from_data(data["caller"]),
            count=int(data["count"]),
            method=str(data.get("method") or Method.STRATIFIED.value),
            save=bool(data.get("save")),
            seed=int(seed) if seed is not None else None,
            weights={str(k): float(v) for k, v in weights.items()} if weights else None,
            list_name=str(data.get("list") or ""),
        )
