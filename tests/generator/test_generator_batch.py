"""Generation requests end to end against a stand-in contacts service: slices, rows, reports, the job."""

from __future__ import annotations

import csv
from collections.abc import Generator, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from contacts.asks import GetExistingPhones, GetListedPhones, Query
from contacts.client import ContactsClient
from contacts.commands import BatchResult, Caller, ImportRow, Outcome, RowOutcome, Source
from contacts.views import caller_to_data
from generator.batch import GenerationRequest, batch_list_name, run_generation
from generator.draw import Method
from generator.generatejob import generate_job, job_params
from importexport.writers import write_csv
from kernel.envelope import utcnow
from kernel.jobqueue import Job, JobFailed, JobState
from kernel.roles import Role

WEIGHTS = {"kolbi": 40.0, "telefonica": 35.0, "claro": 25.0}
MANAGER = Caller(user_id="u-1", username="paula", role=Role.PROJECT_MANAGER)


class ContactsStandIn:
    """Keeps phones in a set and records the batch commands and lookups it receives."""

    def __init__(self, phones: Iterable[str] = ()) -> None:
        self.phones = set(phones)
        self.batches: list[tuple[list[ImportRow], str, Source, str]] = []
        self.lookups: list[int] = []

    def ask(self, query: Query[Any], caller: Caller) -> Any:
        """The generator's two lookups: existing numbers (recorded) and listed ones (none)."""
        if isinstance(query, GetExistingPhones):
            self.lookups.append(len(query.phones))
            return {p for p in query.phones if p in self.phones}
        assert isinstance(query, GetListedPhones)
        return set()

    def create_or_merge(
        self,
        rows: Sequence[ImportRow],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
    ) -> BatchResult:
        self.batches.append((list(rows), list_name, source, job_id))
        outcomes = []
        for row in rows:
            outcome = Outcome.UPDATED if row.e164 in self.phones else Outcome.INSERTED
            self.phones.add(row.e164)
            outcomes.append(RowOutcome(row=row.row, e164=row.e164, outcome=outcome, contact_id=row.e164))
        return BatchResult(outcomes=tuple(outcomes), job_id=job_id)

    def create_or_merge_stream(
        self,
        batches: Iterable[Sequence[ImportRow]],
        list_name: str,
        caller: Caller,
        *,
        source: Source = Source.IMPORT,
        job_id: str = "",
    ) -> Generator[BatchResult]:
        for rows in batches:
            yield self.create_or_merge(rows, list_name, caller, source=source, job_id=job_id)


def client(stand_in: ContactsStandIn) -> ContactsClient:
    """The stand-in where a full contacts client is expected (only its batch and lookup are used)."""
    return cast(ContactsClient, stand_in)


class Context:
    """A job context that records progress instead of writing it to the jobs table."""

    def __init__(self, params: dict[str, Any]) -> None:
        now = utcnow()
        self.job = Job("j" * 32, "generate", JobState.RUNNING, 0, 0, params, None, None, "u-1", now, now)
        self.events: list[tuple[int, int, str]] = []

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def progress(self, done: int, total: int, *, force: bool = False, **detail: Any) -> None:
        self.events.append((done, total, str(detail.get("phase"))))


def test_a_large_save_streams_in_slices_with_the_operator_on_every_row() -> None:
    contacts = ContactsStandIn()
    seen: list[tuple[str, int, int]] = []
    request = GenerationRequest(12_000, Method.STRATIFIED, save=True, seed=3, list_name="gen-x")

    run = run_generation(
        request,
        WEIGHTS,
        client(contacts),
        MANAGER,
        job_id="job-1",
        progress=lambda *a: seen.append(a),
        save_batch=5000,
    )

    assert [len(rows) for rows, *_ in contacts.batches] == [5000, 5000, 2000]
    assert {(name, source, job) for _, name, source, job in contacts.batches} == {
        ("gen-x", Source.GENERATOR, "job-1")
    }
    rows = [row for batch in contacts.batches for row in batch[0]]
    assert [r.row for r in rows] == list(range(1, 12_001))
    first = rows[0]
    assert first.phone == first.national == f"{first.e164[4:8]}-{first.e164[8:]}"
    assert first.operator == run.result.operators[0]
    assert [s for s in seen if s[0] == "saving"] == [
        ("saving", 5000, 12_000),
        ("saving", 10_000, 12_000),
        ("saving", 12_000, 12_000),
    ]
    assert contacts.lookups == [10_000, 2000]
    assert run.summary()["saved"] == 12_000
    assert run.summary()["list"] == "gen-x"


def test_numbers_of_existing_contacts_are_redrawn_and_counted() -> None:
    taken = run_generation(GenerationRequest(500, seed=1), WEIGHTS)
    contacts = ContactsStandIn(p["e164"] for p in taken.phones())

    run = run_generation(GenerationRequest(500, save=True, seed=1), WEIGHTS, client(contacts), MANAGER)

    assert run.saved is not None
    assert run.saved.inserted == 500
    assert run.result.redraws == 500
    assert run.list_name.startswith("gen-")
    assert len(contacts.phones) == 1000


def test_job_parameters_round_trip() -> None:
    request = GenerationRequest(5000, Method.RANDOM, True, 77, {"kolbi": 1.0, "claro": 2.0}, "gen-y")
    params = job_params(request, MANAGER)
    assert GenerationRequest.from_params(params) == request
    assert params["caller"] == caller_to_data(MANAGER)


def test_list_names_carry_costa_rica_time() -> None:
    from datetime import UTC, datetime

    name = batch_list_name(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "abc123")
    assert name == "gen-20260101-210405-abc123"


def test_an_unsaved_job_writes_its_numbers_to_a_file(tmp_path: Path) -> None:
    request = GenerationRequest(2500, Method.SIMPLE, seed=4)
    context = Context(job_params(request, MANAGER))

    report = generate_job(
        context,  # type: ignore[arg-type]
        contacts=client(ContactsStandIn()),
        exports_dir=tmp_path,
        write_table=write_csv,
        weights=WEIGHTS,
    )

    assert report["count"] == 2500
    assert report["saved"] == 0
    assert report["download"] == f"/jobs/{context.job.id}/download"
    with (tmp_path / report["file"]).open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert len(rows) == 2501
    assert context.events[-1] == (2500, 2500, "done")


def test_a_job_that_cannot_be_met_fails_with_the_reason() -> None:
    request = GenerationRequest(10, Method.STRATIFIED, save=True, weights={"kolbi": -1.0})
    context = Context(job_params(request, MANAGER))
    with pytest.raises(JobFailed) as failed:
        generate_job(
            context,  # type: ignore[arg-type]
            contacts=client(ContactsStandIn()),
            exports_dir=Path("unused"),
            write_table=write_csv,
            weights=WEIGHTS,
        )
    assert "peso" in failed.value.message
