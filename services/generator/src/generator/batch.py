"""One generation request end to end: draw numbers clear of existing contacts and of the do-not-call list,
then save them as contacts.

The gateway (up to 1,000 numbers, answered at once), the ``generate`` job (up to 1,000,000) and the
``callmanager generate`` command all run :func:`run_generation`. Saving streams slices through the
contacts service's batch command (``ContactsClient.create_or_merge_stream``, ``Source.GENERATOR``), so a
million numbers go into the store with progress after every slice, and the existence check asks
the contacts read model in slices too (one HTTP request per slice in distributed mode).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from contacts.asks import GetExistingPhones, GetListedPhones
from contacts.client import ContactsClient
from contacts.commands import Caller, ImportRow, Outcome, Source
from generator.draw import GenerationResult, Method, parse_method
from generator.ranges import COUNTRY_CODE
from generator.service import DncLookup, ExistingLookup, GeneratorService

MAX_SYNC_COUNT = 1_000
"""The most numbers a request is answered with at once; more run as a ``generate`` job."""
MAX_COUNT = 1_000_000
"""The most numbers one request may ask for."""
LOOKUP_BATCH = 10_000
# Rows per batch command: large enough for the contacts service to pipeline its own 5,000-row chunks
# (decide the next while writing one), small enough for frequent progress and a few MB per HTTP call.
# bench/generate_save.py: 20,000 saved 45 % faster than 5,000 on SQLite, 30 % on PostgreSQL.
SAVE_BATCH = 20_000
_KEPT_ERRORS = 20
# Costa Rica keeps UTC-6 all year; list names carry the time the supervisor sees on the wall.
COSTA_RICA_TIME = timezone(timedelta(hours=-6), "America/Costa_Rica")

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``; phases: ``checking``, ``saving``, ``writing``."""


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class GenerationRequest:
    """What a user asked for: how many, how split, whether to save them (into list ``list_name``)."""

    count: int
    method: Method = Method.STRATIFIED
    save: bool = False
    seed: int | None = None
    weights: Mapping[str, float] | None = None
    list_name: str = ""

    def to_params(self) -> dict[str, Any]:
        """JSON-ready job parameters."""
        return {
            "count": self.count,
            "method": self.method.value,
            "save": self.save,
            "seed": self.seed,
            "weights": dict(self.weights) if self.weights is not None else None,
            "list": self.list_name,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> GenerationRequest:
        """The request :meth:`to_params` described."""
        weights = params.get("weights")
        seed = params.get("seed")
        return cls(
            count=int(params["count"]),
            method=parse_method(str(params.get("method") or Method.STRATIFIED.value)),
            save=bool(params.get("save")),
            seed=int(seed) if seed is not None else None,
            weights={str(k): float(v) for k, v in weights.items()} if weights else None,
            list_name=str(params.get("list") or ""),
        )


def batch_list_name(now: datetime | None = None, short_id: str | None = None) -> str:
    """``gen-YYYYMMDD-HHMMSS-<short id>`` (Costa Rica time): the list one saved generation goes into."""
    moment = (now or datetime.now(COSTA_RICA_TIME)).astimezone(COSTA_RICA_TIME)
    return f"gen-{moment:%Y%m%d-%H%M%S}-{short_id or uuid.uuid4().hex[:6]}"


def existing_lookup(
    contacts: ContactsClient, caller: Caller, progress: Progress = _no_progress, batch: int = LOOKUP_BATCH
) -> ExistingLookup:
    """The generator's existing-contacts lookup over ``contacts``, asking ``batch`` numbers at a time."""

    def lookup(phones: Sequence[str]) -> Collection[str]:
        found: set[str] = set()
        for start in range(0, len(phones), batch):
            found |= contacts.ask(GetExistingPhones(phones=tuple(phones[start : start + batch])), caller)
            progress("checking", min(start + batch, len(phones)), len(phones))
        return found

    return lookup


def dnc_lookup(contacts: ContactsClient, caller: Caller, batch: int = LOOKUP_BATCH) -> DncLookup:
    """The generator's do-not-call lookup over ``contacts``, asking ``batch`` numbers at a time."""

    def lookup(phones: Sequence[str]) -> Collection[str]:
        found: set[str] = set()
        for start in range(0, len(phones), batch):
            found |= contacts.ask(GetListedPhones(phones=tuple(phones[start : start + batch])), caller)
        return found

    return lookup


def contact_rows(result: GenerationResult, start: int, stop: int) -> list[ImportRow]:
    """The numbers ``start..stop-1`` of ``result`` as batch rows: E.164, ``NNNN-NNNN``, operator."""
    prefix = "+" + COUNTRY_CODE
    rows = []
    for index in range(start, min(stop, len(result.numbers))):
        number = result.numbers[index]
        formatted = f"{number[:4]}-{number[4:]}"
        rows.append(
            ImportRow(
                row=index + 1,
                e164=prefix + number,
                national=formatted,
                phone=formatted,
                operator=result.operators[index],
            )
        )
    return rows


@dataclass(frozen=True)
class SaveReport:
    """What saving did: contacts created, numbers that already had a contact (merged), rows refused, and
    numbers the contacts service found on the do-not-call list when saving (listed after the draw)."""

    inserted: int = 0
    merged: int = 0
    rejected: int = 0
    errors: tuple[Mapping[str, Any], ...] = ()
    dnc: int = 0

    def to_data(self) -> dict[str, Any]:
        """JSON-ready counts (and the first refused rows, if any)."""
        data: dict[str, Any] = {
            "saved": self.inserted,
            "merged": self.merged,
            "rejected": self.rejected,
            "dnc_refused": self.dnc,
        }
        if self.errors:
            data["errors"] = [dict(e) for e in self.errors]
        return data


def save_numbers(
    result: GenerationResult,
    contacts: ContactsClient,
    caller: Caller,
    list_name: str,
    *,
    job_id: str = "",
    batch: int = SAVE_BATCH,
    progress: Progress = _no_progress,
) -> SaveReport:
    """Create a contact (list ``list_name``, operator set) per number, ``batch`` rows per batch command.

    The slices go through one ``create_or_merge_stream``: the next is made while the last is written.
    """
    inserted = merged = rejected = dnc = 0
    errors: list[Mapping[str, Any]] = []
    total = len(result.numbers)
    slices = (contact_rows(result, start, start + batch) for start in range(0, total, batch))
    answers = contacts.create_or_merge_stream(
        slices, list_name, caller, source=Source.GENERATOR, job_id=job_id
    )
    with contextlib.closing(answers):
        for answer in answers:
            for row in answer.outcomes:
                if row.outcome is Outcome.INSERTED:
                    inserted += 1
                elif row.outcome is Outcome.REJECTED:
                    rejected += 1
                    if len(errors) < _KEPT_ERRORS:
                        errors.append({"row": row.row, "message": row.reason})
                elif row.outcome is Outcome.DNC:
                    dnc += 1
                else:
                    merged += 1
            progress("saving", inserted + merged + rejected + dnc, total)
    return SaveReport(inserted, merged, rejected, tuple(errors), dnc)


@dataclass(frozen=True)
class GenerationRun:
    """The numbers of one request, and what saving them did (``saved`` None when not saved)."""

    result: GenerationResult
    list_name: str = ""
    saved: SaveReport | None = None
    weights: Mapping[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Statistics (count and share per operator, method, seed, redraws) and the saving counts."""
        return {
            **self.result.stats(),
            "weights": dict(self.weights),
            **(self.saved or SaveReport()).to_data(),
            "list": self.list_name if self.saved is not None else None,
        }

    def phones(self) -> list[dict[str, str]]:
        """Every number as ``{number, formatted, e164, operator}``."""
        prefix = "+" + COUNTRY_CODE
        return [
            {"number": n, "formatted": f"{n[:4]}-{n[4:]}", "e164": prefix + n, "operator": code}
            for n, code in zip(self.result.numbers, self.result.operators, strict=True)
        ]


def run_generation(
    request: GenerationRequest,
    default_weights: Mapping[str, float],
    contacts: ContactsClient | None = None,
    caller: Caller | None = None,
    *,
    job_id: str = "",
    progress: Progress = _no_progress,
    save_batch: int = SAVE_BATCH,
) -> GenerationRun:
    """Generate the numbers of ``request``; with ``save``, none an existing contact has and none on the
    do-not-call list (skipped and replaced, counted in ``dnc_skipped``), then save them.

    Raises :class:`generator.draw.GenerationError` (Spanish message) for a request that cannot be met.
    """
    weights = dict(request.weights if request.weights is not None else default_weights)
    if not request.save:
        result = GeneratorService(weights).generate(request.count, request.method, seed=request.seed)
        return GenerationRun(result, weights=weights)
    if contacts is None or caller is None:
        raise ValueError("saving generated numbers needs a contacts client and a caller")
    service = GeneratorService(
        weights, existing=existing_lookup(contacts, caller, progress), dnc=dnc_lookup(contacts, caller)
    )
    result = service.generate(request.count, request.method, seed=request.seed, avoid_existing=True)
    list_name = request.list_name or batch_list_name()
    saved = save_numbers(
        result, contacts, caller, list_name, job_id=job_id, batch=save_batch, progress=progress
    )
    return GenerationRun(result, list_name, saved, weights)
