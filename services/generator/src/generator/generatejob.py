"""The ``generate`` job: a large generation (up to 1,000,000 numbers) off the request path, with progress.

The composition root binds :func:`generate_job`'s dependencies (a contacts client, the exports folder, a
table writer, the default weights) and registers it as job kind :data:`GENERATE_JOB`. The acting user
travels in the job's parameters (written by the gateway from the API key), so the job saves contacts
as that user whichever process runs it. Without ``save`` the numbers go to a CSV file in the exports
folder, named in the report (``file``, and ``download`` for ``GET /jobs/{id}/download``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from contacts.client import ContactsClient
from contacts.commands import Caller
from contacts.views import caller_from_data, caller_to_data
from generator.batch import GenerationRequest, GenerationRun, run_generation
from generator.draw import GenerationError
from generator.ranges import COUNTRY_CODE
from kernel.jobqueue import JobContext, JobFailed

GENERATE_JOB = "generate"
EXPORT_HEADERS = ("numero", "formateado", "e164", "operador")
_WRITE_PROGRESS_EVERY = 50_000

TableWriter = Callable[[Path, Iterable[Sequence[str]], Sequence[str]], int]
"""Writes ``rows`` under ``headers`` to a file and returns the row count (``importexport.writers``)."""


def job_params(request: GenerationRequest, caller: Caller) -> dict[str, Any]:
    """The parameters of a ``generate`` job for ``request`` made by ``caller``."""
    return {**request.to_params(), "caller": caller_to_data(caller)}


def export_name(job_id: str) -> str:
    """The file name of an unsaved job's numbers in the exports folder."""
    return f"numeros_{job_id}.csv"


def number_rows(run: GenerationRun) -> Iterator[tuple[str, str, str, str]]:
    """Every number as ``(number, NNNN-NNNN, E.164, operator)``, in output order."""
    prefix = "+" + COUNTRY_CODE
    for number, code in zip(run.result.numbers, run.result.operators, strict=True):
        yield number, f"{number[:4]}-{number[4:]}", prefix + number, code


def generate_job(
    context: JobContext,
    *,
    contacts: ContactsClient,
    exports_dir: Path,
    write_table: TableWriter,
    weights: Mapping[str, float],
) -> dict[str, Any]:
    """Run the generation in ``context.params`` as its caller; the report holds the statistics."""
    request = GenerationRequest.from_params(context.params)
    caller = caller_from_data(context.params["caller"])

    def progress(phase: str, done: int, total: int) -> None:
        # Every slice reports (a few hundred for a million numbers), so progress never looks stuck.
        context.progress(done, total, force=True, phase=phase)

    try:
        run = run_generation(request, weights, contacts, caller, job_id=context.job.id, progress=progress)
    except GenerationError as exc:
        raise JobFailed(str(exc)) from exc
    report = run.summary()
    if not request.save:
        report["file"] = write_numbers(run, exports_dir / export_name(context.job.id), write_table, progress)
        report["download"] = f"/jobs/{context.job.id}/download"
    context.progress(len(run.result), len(run.result), force=True, phase="done")
    return report


def write_numbers(
    run: GenerationRun, path: Path, write_table: TableWriter, progress: Callable[[str, int, int], None]
) -> str:
    """Write the numbers to ``path`` (removed again if the job stops half-way); return the file name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    total = len(run.result)

    def rows() -> Iterator[tuple[str, str, str, str]]:
        for done, row in enumerate(number_rows(run)):
            if done % _WRITE_PROGRESS_EVERY == 0:
                progress("writing", done, total)
            yield row

    try:
        write_table(path, rows(), EXPORT_HEADERS)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path.name
