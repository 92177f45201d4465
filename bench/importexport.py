"""Import and export end to end: the import job on real databases against the reader alone, and exports.

``python -m bench importexport [--n 100000] [--export-n N] [--only import,export] [--no-again]
[--databases sqlite,postgres,distributed] [--batch-rows 20000] [--pg-url URL] [--keep DIR]
[--openpyxl-input] [--dnc N] [--dnc-hits 0.1] [--rounds 1] [--floor] [--floor-rounds 3]``

Import (``--n`` rows, generated here: ``bench.importfile.sample_rows``, 5 % repeated phones, 2 % invalid,
phones as floats, text and ``+506``): the xlsx is read by the reader alone (open + every row) in a fresh
process, then imported end to end by the ``import`` job as the job runner runs it — read, classify
(fast phone path), scan and merge repeats, batch commands to contacts (events appended, read model
written), report files — once per database, each in a fresh process (its peak RSS is the worker's):

* ``sqlite``: embedded mode (SQLite file, direct contacts client; the file read in a process of its own,
  as ``system.jobregistry`` sets it, whose CPU seconds and peak RSS are printed beside the worker's);
* ``postgres``: the same on PostgreSQL;
* ``distributed``: the job in this process, contacts in a ``callmanager serve contacts`` process on
  PostgreSQL, reached over HTTP as an rq worker reaches it (the RSS of both is printed).

With ``--dnc N`` every database imports the file twice, each time into a fresh database: without a
do-not-call list, then against a list of ``N`` numbers (``--dnc-hits`` of the file's rows on it, the rest
numbers the file does not hold; written before the clock starts), ``--rounds`` times alternately, and the
ratio of the best of each is printed.
Target (issue 20): 100,000 rows against 100,000 listed numbers within 10 % of the same import without.

With ``--floor`` every PostgreSQL import (``postgres``, ``distributed``) is followed, in the same run, by its
server-side floor: the events and read-model rows the import wrote, dumped with binary ``COPY … TO``, then
copied back by one backend into fresh ``CREATE TABLE … (LIKE … INCLUDING ALL)`` tables (every index, the
trigram one included) in one transaction, best of ``--floor-rounds``; the import's ratio to it is printed.
For ``postgres`` the import's line also gives the CPU seconds of its PostgreSQL backends, and the floor's
the ratio the host's cores bound the import to: its CPU (worker, reading process, backends) over the cores,
against the floor's server CPU (what the floor takes on an idle host); it holds whatever the load.
With ``--rounds R`` (and no ``--dnc``) each database imports ``R`` times, each into a fresh database,
and the best import against the best floor is printed beside every round's own ratio.
Target (issue 18): 100,000 rows on PostgreSQL within 1.5x of the floor.

Then the same file again (every row comes back unchanged). Printed: seconds, rows/s, ratio to the reader
alone, peak RSS. Targets: 100,000 rows ≤ 12 s on SQLite, ≤ 6 s on PostgreSQL; 1,000,000 ≤ 60 s on
PostgreSQL with worker RSS ≤ 800 MB (the worker's and its reading process's together); end to end ≤ 3x
the reader.

Export (``--export-n`` contacts, default ``--n``, created through the contacts service first): the
``export`` job end to end (read model → xlsx), beside openpyxl's write-only mode writing the same rows
(already in memory, so only its writing is timed), and the csv export; each in a fresh process.
Targets at 1,000,000: xlsx faster than openpyxl, RSS ≤ 300 MB; csv ≤ 15 s.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import multiprocessing
import os
import resource
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.export import peak_rss_mb
from bench.importfile import HEADERS, sample_rows
from bench.machine import describe

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def write_input(folder: Path, n: int, with_openpyxl: bool) -> Path:
    """The ``n``-row xlsx to import (kept in ``folder`` and reused)."""
    path = folder / f"import_{n}{'_openpyxl' if with_openpyxl else ''}.xlsx"
    if path.exists():
        return path
    if with_openpyxl:
        import openpyxl

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("Contactos")
        sheet.append(HEADERS)
        for row in sample_rows(n):
            sheet.append(row)
        book.save(path)
    else:
        from importexport.writers import write_xlsx

        write_xlsx(path, sample_rows(n), headers=HEADERS)
    return path


# --- children -----------------------------------------------------------------------------------------


def _read_only(path: str) -> dict[str, Any]:
    from importexport.spreadsheets import open_rows

    start = time.perf_counter()
    rows = sum(1 for _ in open_rows(path))
    return {"s": time.perf_counter() - start, "rows": rows, "rss_mb": peak_rss_mb()}


def _import(
    url: str, path: str, work: str, contacts_url: str | None, token: str | None, batch_rows: int, again: bool
) -> dict[str, Any]:
    """Two import jobs of ``path`` (the second finds every row unchanged), as the job runner runs them."""
    from contacts.client import ContactsClient, HttpContactsClient, LocalContactsClient
    from contacts.commands import Caller
    from contacts.domain import LockPolicy
    from contacts.handlers import ContactsService
    from contacts.queries import ContactQueries
    from contacts.statuses import DEFAULT_CATALOGUE
    from importexport.pipeline import IMPORT_JOB, import_job, import_params, reader_limits
    from kernel.jobqueue import JobExecutor, JobStore
    from kernel.roles import Role
    from kernel.store import EventStore, create_engine
    from system.reader import READER_COMMAND
    from system.tuning import BulkTuning

    server = _ServerCpu(url)
    engine = create_engine(server.url)
    store = EventStore(engine)
    client: ContactsClient
    if contacts_url is not None:
        client = HttpContactsClient(contacts_url, internal_token=token, timeout=600)
    else:
        service = ContactsService(engine, store, LockPolicy(), DEFAULT_CATALOGUE, tuning=BulkTuning())
        client = LocalContactsClient(service, ContactQueries(engine, store, DEFAULT_CATALOGUE))
    jobs = JobStore(engine)
    folder = Path(work)
    executor = JobExecutor(
        jobs,
        {
            IMPORT_JOB: lambda context: import_job(
                context,
                contacts=client,
                reports_dir=folder / "reports",
                limits=reader_limits(None, None),
                max_rows=None,
                batch_rows=batch_rows,
                # As system/jobregistry.py: a distributed worker reads here, contacts decides elsewhere.
                reader_process=False if contacts_url is not None else None,
                reader_command=READER_COMMAND,
            )
        },
        None,
        "jobs",
    )
    lead = Caller(user_id="u-bench", username="bench", role=Role.TEAM_LEAD)
    runs = []
    children = _ChildrenPeak()
    children.start()
    server.start()
    for attempt in range(2 if again else 1):
        upload = folder / f"upload-{attempt}.xlsx"
        shutil.copyfile(path, upload)
        job = jobs.create(
            IMPORT_JOB, import_params(upload, Path(path).name, lead, list_name="bench"), "u-bench"
        )
        start, cpu, reader_cpu = time.perf_counter(), time.process_time(), _children_cpu()
        server_cpu, polling = server.used(), server.own_cpu()
        executor.run(job.id)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        reader_cpu = _children_cpu() - reader_cpu
        server_cpu = server.used() - server_cpu
        cpu -= server.own_cpu() - polling
        done = jobs.get(job.id)
        assert done is not None, job.id
        assert done.report is not None, done
        counts = {k: done.report[k] for k in _COUNTS}
        runs.append({"s": seconds, "cpu": cpu, "reader_cpu": reader_cpu, "server_cpu": server_cpu, **counts})
    server.stop()
    engine.dispose()
    return {"runs": runs, "rss_mb": peak_rss_mb(), "reader_rss_mb": children.stop()}


class _ServerCpu(threading.Thread):
    """The CPU seconds of the PostgreSQL backends serving this process's engine (none on SQLite).

    The engine's connections get an ``application_name`` of their own; every 20 ms this thread lists
    their backends and reads each one's CPU time from ``/proc`` (the server runs on this host; a backend
    that is not readable counts 0). The thread's own CPU is told apart (:meth:`own_cpu`) so that the
    worker's figure leaves it out.
    """

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        super().__init__(name="server-cpu", daemon=True)
        self._done = threading.Event()
        self._seen: dict[int, float] = {}
        self._own = 0.0
        parsed = sa.make_url(url)
        self._postgres = parsed.get_backend_name() == "postgresql"
        self._name = f"bench-import-{uuid.uuid4().hex[:8]}"
        if self._postgres:
            parsed = parsed.update_query_dict({"application_name": self._name})
        self.url = parsed.render_as_string(hide_password=False)
        self._conninfo = _conninfo(url) if self._postgres else {}

    def run(self) -> None:
        if not self._postgres:
            return
        import psycopg

        with psycopg.connect(**self._conninfo, autocommit=True) as conn:
            while not self._done.wait(0.02):
                started = time.thread_time()
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self._name,)
                ).fetchall()
                for (pid,) in pids:
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        self._seen[pid] = _process_cpu(pid)
                self._own += time.thread_time() - started

    def used(self) -> float:
        """CPU seconds of the engine's backends so far."""
        return sum(self._seen.values())

    def own_cpu(self) -> float:
        """CPU seconds this thread has spent polling."""
        return self._own

    def stop(self) -> None:
        self._done.set()
        self.join()


def _conninfo(url: str) -> dict[str, Any]:
    """psycopg's connection arguments for a SQLAlchemy PostgreSQL URL (its schema option included)."""
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    conninfo = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
        "dbname": parsed.database,
        "options": parsed.query.get("options"),
    }
    return {key: value for key, value in conninfo.items() if value is not None}


def _floor(url: str, rounds: int) -> dict[str, Any]:
    """The server-side floor of the import just written to ``url``: what PostgreSQL alone needs to store
    its events and read-model rows.

    Both tables are dumped once with binary ``COPY … TO``; then, ``rounds`` times, one backend copies them
    back with ``COPY … FROM`` into fresh ``LIKE … INCLUDING ALL`` tables (created and dropped outside the
    clock), both in one transaction as the import must write them. Answers the best round and its parts,
    and the server CPU seconds of the backend for it (read from ``/proc``: the server is on this host).
    """
    import psycopg

    tables = ("events", "contacts")
    best: dict[str, Any] = {}
    spent: list[float] = []
    with psycopg.connect(**_conninfo(url)) as conn:
        dumps: dict[str, bytes] = {}
        counts: dict[str, int] = {}
        for table in tables:
            with conn.cursor() as cursor:
                with cursor.copy(f"COPY {table} TO STDOUT (FORMAT BINARY)") as copy:
                    dumps[table] = b"".join(bytes(block) for block in copy)
                counted = cursor.execute(f"SELECT count(*) FROM {table}").fetchone()
                counts[table] = int(counted[0]) if counted else 0
        backend = conn.info.backend_pid
        conn.commit()
        for _ in range(rounds):
            with conn.transaction():
                for table in tables:
                    conn.execute(f"CREATE TABLE floor_{table} (LIKE {table} INCLUDING ALL)")
            parts: dict[str, float] = {}
            cpu = _process_cpu(backend)
            start = time.perf_counter()
            with conn.transaction():
                for table in tables:
                    began = time.perf_counter()
                    with conn.cursor().copy(f"COPY floor_{table} FROM STDIN (FORMAT BINARY)") as copy:
                        data = memoryview(dumps[table])
                        for offset in range(0, len(data), 1 << 20):
                            copy.write(data[offset : offset + (1 << 20)])
                    parts[table] = time.perf_counter() - began
                began = time.perf_counter()
            parts["commit"] = time.perf_counter() - began
            seconds = time.perf_counter() - start
            server_cpu = _process_cpu(backend) - cpu
            with conn.transaction():
                for table in tables:
                    conn.execute(f"DROP TABLE floor_{table}")
            spent.append(seconds)
            if not best or seconds < best["s"]:
                best = {"s": seconds, "parts": parts, "server_cpu": server_cpu}
    return {**best, "all": spent, "rows": counts, "mb": {t: len(d) / 1e6 for t, d in dumps.items()}}


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process on this host has used."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _ChildrenPeak(threading.Thread):
    """The largest peak RSS (VmHWM) of this process's children (the reading process), polled.

    ``ru_maxrss`` of the children counts the pages a child shares with this process between its fork
    and its exec, so it is read from ``/proc`` instead, every 20 ms while the child runs.
    """

    def __init__(self) -> None:
        super().__init__(name="children-peak", daemon=True)
        self._done = threading.Event()
        self.peak_mb = 0.0

    def run(self) -> None:
        while not self._done.wait(0.02):
            for pid in _children():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    self.peak_mb = max(self.peak_mb, peak_rss_mb(pid))

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak_mb


def _children() -> list[int]:
    pids = []
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in (task / "children").read_text().split()]
    return pids


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


_COUNTS = ("total", "inserted", "updated", "unchanged", "duplicates_merged", "rejected", "dnc")


def _seed_dnc(url: str, n_rows: int, listed: int, hits: float) -> dict[str, Any]:
    """Put ``listed`` numbers on the do-not-call list: ``hits`` of the file's distinct valid phones (at
    most ``listed``), the rest numbers the file does not hold. Answers how many of the file's are listed."""
    import random
    from datetime import UTC, datetime

    from contacts.commands import Caller
    from contacts.dnc import DncList
    from contacts.dnc import listed as listed_among
    from kernel.phone import InvalidPhone
    from kernel.phonefast import parse_phone_fast
    from kernel.roles import Role
    from kernel.store import create_engine

    in_file: list[str] = []
    for row in sample_rows(n_rows):
        try:
            in_file.append(parse_phone_fast(row[1]).e164)
        except InvalidPhone:
            continue
    distinct = list(dict.fromkeys(in_file))
    rnd = random.Random(20)
    from_file = rnd.sample(distinct, min(listed, int(len(distinct) * hits)))
    numbers = set(from_file)
    known = set(distinct)
    while len(numbers) < listed:
        candidate = f"+5068{rnd.randrange(3, 10)}{rnd.randrange(1_000_000):06d}"
        if candidate not in known:
            numbers.add(candidate)
    engine = create_engine(url)
    manager = Caller(user_id="u-bench", username="bench", role=Role.PROJECT_MANAGER)
    added = DncList(engine).add_many(
        ((e164, "bench") for e164 in sorted(numbers)), manager, datetime.now(UTC)
    )
    # The lookups alone, as the import makes them: one per 5,000-row chunk of the file's phones.
    rounds = []
    for _ in range(3):
        start, found = time.perf_counter(), 0
        for first in range(0, len(in_file), 5_000):
            with engine.connect() as conn:
                found += len(listed_among(conn, in_file[first : first + 5_000]))
        rounds.append(time.perf_counter() - start)
    engine.dispose()
    return {
        "listed": len(added),
        "from_file": len(from_file),
        "lookup_s": min(rounds),
        "lookups": -(-len(in_file) // 5_000),
        "found": found,
    }


def _seed(url: str, n: int) -> dict[str, Any]:
    """``n`` contacts through the contacts service (ten lists, several statuses, three operators)."""
    from bench.contacts import LISTS, rows_for
    from contacts.commands import Caller, Source
    from contacts.domain import LockPolicy
    from contacts.handlers import ContactsService
    from contacts.statuses import DEFAULT_CATALOGUE
    from kernel.roles import Role
    from kernel.store import EventStore, create_engine
    from system.tuning import BulkTuning

    engine = create_engine(url)
    service = ContactsService(
        engine, EventStore(engine), LockPolicy(), DEFAULT_CATALOGUE, tuning=BulkTuning()
    )
    lead = Caller(user_id="u-bench", username="bench", role=Role.TEAM_LEAD)
    start = time.perf_counter()
    for k in range(LISTS):
        service.create_or_merge(rows_for(n, k), f"lista-{k}", lead, source=Source.IMPORT)
    seconds = time.perf_counter() - start
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    engine.dispose()
    return {"s": seconds}


def _export(url: str, target: str, export_format: str) -> dict[str, Any]:
    """The ``export`` job end to end, as the job runner runs it."""
    from contacts.client import LocalContactsClient
    from contacts.commands import Caller
    from contacts.domain import LockPolicy
    from contacts.handlers import ContactsService
    from contacts.queries import ContactQueries
    from contacts.statuses import DEFAULT_CATALOGUE
    from importexport.export import EXPORT_JOB, ExportRequest, export_job, export_params
    from kernel.jobqueue import JobExecutor, JobStore
    from kernel.roles import Role
    from kernel.store import EventStore, create_engine
    from system.tuning import BulkTuning

    engine = create_engine(url)
    store = EventStore(engine)
    client = LocalContactsClient(
        ContactsService(engine, store, LockPolicy(), DEFAULT_CATALOGUE, tuning=BulkTuning()),
        ContactQueries(engine, store, DEFAULT_CATALOGUE),
    )
    jobs = JobStore(engine)
    folder = Path(target)
    executor = JobExecutor(
        jobs,
        {EXPORT_JOB: lambda context: export_job(context, contacts=client, exports_dir=folder)},
        None,
        "jobs",
    )
    lead = Caller(user_id="u-bench", username="bench", role=Role.TEAM_LEAD)
    job = jobs.create(EXPORT_JOB, export_params(ExportRequest(export_format), lead), "u-bench")
    start = time.perf_counter()
    executor.run(job.id)
    seconds = time.perf_counter() - start
    done = jobs.get(job.id)
    assert done is not None, job.id
    assert done.report is not None, done
    size = (folder / done.report["file"]).stat().st_size
    (folder / done.report["file"]).unlink()
    engine.dispose()
    return {"s": seconds, "rows": done.report["rows"], "mb": size / 1e6, "rss_mb": peak_rss_mb()}


def _openpyxl(url: str, target: str) -> dict[str, Any]:
    """openpyxl's write-only mode writing the export's rows, loaded into memory first (not timed)."""
    import openpyxl

    from contacts.queries import ContactQueries
    from importexport.writers import CONTACT_HEADERS, COSTA_RICA_TIME, escape_formula
    from kernel.store import create_engine

    engine = create_engine(url)
    rows = list(ContactQueries(engine).iter_export())
    engine.dispose()
    loaded_mb = peak_rss_mb()
    start = time.perf_counter()
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Contactos")
    sheet.append(list(CONTACT_HEADERS))
    for row in rows:
        # openpyxl refuses aware datetimes: Costa Rica time, as our writer shows them.
        sheet.append(
            [
                escape_formula(v)
                if isinstance(v, str)
                else v.astimezone(COSTA_RICA_TIME).replace(tzinfo=None)
                if hasattr(v, "astimezone")
                else v
                for v in row
            ]
        )
    path = Path(target) / "openpyxl.xlsx"
    book.save(path)
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    path.unlink()
    return {
        "s": seconds,
        "rows": len(rows),
        "mb": size / 1e6,
        "rss_mb": peak_rss_mb(),
        "loaded_mb": loaded_mb,
    }


def _child(queue: Any, fn: Callable[..., dict[str, Any]], args: tuple[Any, ...]) -> None:
    queue.put(fn(*args))


def isolated(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh process (its peak RSS is its own)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue, fn, args))
    process.start()
    result: dict[str, Any] = queue.get()
    process.join()
    return result


# --- databases ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def database(kind: str, folder: Path, pg_url: str) -> Iterator[str]:
    """A fresh migrated database of ``kind`` (a SQLite file, or a PostgreSQL schema dropped afterwards)."""
    if kind == "sqlite":
        from kernel.store import create_engine
        from system.migrate import upgrade

        path = folder / f"bench-{uuid.uuid4().hex[:6]}.db"
        url = f"sqlite:///{path}"
        engine = create_engine(url)
        upgrade(engine)
        engine.dispose()
        try:
            yield url
        finally:
            for leftover in folder.glob(f"{path.name}*"):
                leftover.unlink()
        return
    from bench.store import postgres_schema

    with postgres_schema(pg_url) as url:
        yield url


@contextlib.contextmanager
def contacts_service(
    url: str, folder: Path, redis_url: str
) -> Iterator[tuple[str, str, Callable[[], tuple[float, float]]]]:
    """``callmanager serve contacts`` on ``url``: base URL, internal token, a (CPU s, peak RSS MB) reader."""
    from kernel.settings import Settings
    from system.server import internal_token
    from tests.support.servers import clean_env, free_port, start, wait_healthy

    port = free_port()
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    env = clean_env(
        CALLMANAGER_DATABASE_URL=url,
        CALLMANAGER_REDIS_URL=redis_url,
        CALLMANAGER_BUS_PREFIX=f"bench-{uuid.uuid4().hex[:8]}",
        CALLMANAGER_SECRET_KEY=secret,
        CALLMANAGER_LOG_LEVEL="WARNING",
    )
    process = start("contacts", ["serve", "contacts", "--port", str(port)], env, folder)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, timeout=60)
        token = internal_token(Settings(secret_key=secret))

        def usage() -> tuple[float, float]:
            pid = process.popen.pid
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            with open(f"/proc/{pid}/status", encoding="ascii") as f:
                peak = next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:")), 0.0)
            return cpu, peak

        yield base, token, usage
    finally:
        process.stop()


# --- main ---------------------------------------------------------------------------------------------


def run_imports(args: argparse.Namespace, folder: Path) -> None:
    start = time.perf_counter()
    path = write_input(folder, args.n, args.openpyxl_input)
    written = time.perf_counter() - start
    print(f"input: {args.n:,} rows, xlsx {path.stat().st_size / 1e6:.1f} MB ({written:.1f} s)")
    reader = isolated(_read_only, str(path))
    print(
        f"reader alone (calamine: open + every row): {reader['rows']:,} rows in {reader['s']:.2f} s "
        f"({reader['rows'] / reader['s']:,.0f} rows/s), peak RSS {reader['rss_mb']:.0f} MB"
    )
    for kind in args.databases.split(","):
        # Without and with the list alternate, round after round, so that load from elsewhere falls on both.
        spent: dict[int, list[_Spent]] = {0: [], args.dnc: []}
        for _ in range(args.rounds):
            for listed in [0, args.dnc] if args.dnc else [0]:
                spent[listed].append(_import_once(args, folder, path, reader["s"], kind, listed))
        if args.dnc:
            with_s, without_s = min(t.s for t in spent[args.dnc]), min(t.s for t in spent[0])
            with_cpu, without_cpu = min(t.cpu for t in spent[args.dnc]), min(t.cpu for t in spent[0])
            ratio, cpu_ratio = with_s / without_s, with_cpu / without_cpu
            print(
                f"{kind:>11} against {args.dnc:,} listed numbers, best of {args.rounds}: {with_s:.2f} s, "
                f"without {without_s:.2f} s: {ratio:.3f}x ({(ratio - 1) * 100:+.1f} %); CPU (worker + "
                f"reading process) {with_cpu:.1f} s against {without_cpu:.1f} s: {cpu_ratio:.3f}x"
            )
        floors = [t for t in spent[0] if t.floor_s is not None]
        if len(floors) > 1:
            best_s = min(t.s for t in floors)
            best_floor = min(t.floor_s for t in floors if t.floor_s is not None)
            each = ", ".join(f"{t.s / t.floor_s:.2f}x" for t in floors if t.floor_s is not None)
            print(
                f"{kind:>11} best of {len(floors)}: import {best_s:.2f} s / floor {best_floor:.2f} s = "
                f"{best_s / best_floor:.2f}x the floor (each round: {each}; target ≤ 1.5x)"
            )


@dataclasses.dataclass(frozen=True, slots=True)
class _Spent:
    """One import's seconds, CPU seconds (worker and reading process), and its floor's seconds if measured."""

    s: float
    cpu: float
    floor_s: float | None = None


def _import_once(
    args: argparse.Namespace, folder: Path, path: Path, reader_s: float, kind: str, listed: int
) -> _Spent:
    """One import of the file into a fresh database of ``kind`` (``listed`` numbers on the list first),
    then its floor (``--floor``, PostgreSQL); prints its lines and answers what it spent."""
    with database("sqlite" if kind == "sqlite" else "postgres", folder, args.pg_url) as url:
        work = folder / f"work-{kind}"
        work.mkdir(exist_ok=True)
        label = kind
        if listed:
            seeded = isolated(_seed_dnc, url, args.n, listed, args.dnc_hits)
            label = f"{kind}+dnc"
            print(
                f"{label:>11} list: {seeded['listed']:,} numbers, {seeded['from_file']:,} of them in the "
                f"file (written before the clock starts); the lookups alone: {seeded['lookups']} of 5,000 "
                f"phones in {seeded['lookup_s'] * 1000:.0f} ms (best of 3), {seeded['found']:,} found"
            )
        if kind == "distributed":
            with contacts_service(url, work, args.redis_url) as (base, token, usage):
                before, _ = usage()
                result = isolated(
                    _import, url, str(path), str(work), base, token, args.batch_rows, args.again
                )
                cpu, peak = usage()
                extra = f"; contacts service CPU {cpu - before:.1f} s, peak RSS {peak:.0f} MB"
        else:
            result = isolated(_import, url, str(path), str(work), None, None, args.batch_rows, args.again)
            extra = ""
        first = result["runs"][0]
        # The worker's own backends: in distributed mode contacts writes through the service's, not counted.
        server = f" + PostgreSQL {first['server_cpu']:.1f} s" if kind == "postgres" else ""
        print(
            f"{label:>11} import: {first['s']:.2f} s ({args.n / first['s']:,.0f} rows/s, "
            f"{first['s'] / reader_s:.1f}x the reader; worker CPU {first['cpu']:.1f} s"
            f" + reading process {first['reader_cpu']:.1f} s"
            f"{server}), "
            f"worker peak RSS {result['rss_mb']:.0f} MB"
            f" + reading process {result['reader_rss_mb']:.0f} MB"
            f"{extra}; "
            f"inserted {first['inserted']:,}, merged {first['duplicates_merged']:,}, "
            f"rejected {first['rejected']:,}, dnc {first['dnc']:,}"
        )
        for again in result["runs"][1:]:
            print(
                f"{'':>11} again:  {again['s']:.2f} s "
                f"(CPU {again['cpu']:.1f} + {again['reader_cpu']:.1f} s), "
                f"unchanged {again['unchanged']:,}, inserted {again['inserted']:,}, "
                f"updated {again['updated']:,}, dnc {again['dnc']:,}"
            )
        shutil.rmtree(work, ignore_errors=True)
        spent = _Spent(float(first["s"]), float(first["cpu"] + first["reader_cpu"]))
        if args.floor and kind != "sqlite" and not listed:
            floor = isolated(_floor, url, args.floor_rounds)
            parts = floor["parts"]
            print(
                f"{'':>11} floor: {floor['s']:.2f} s (best of {args.floor_rounds}: "
                f"{', '.join(f'{s:.2f}' for s in floor['all'])}) = events {parts['events']:.2f} s "
                f"({floor['rows']['events']:,} rows, {floor['mb']['events']:.0f} MB) + contacts "
                f"{parts['contacts']:.2f} s ({floor['rows']['contacts']:,} rows, "
                f"{floor['mb']['contacts']:.0f} MB) + commit {parts['commit']:.2f} s, server CPU "
                f"{floor['server_cpu']:.2f} s; the import is {spent.s / floor['s']:.2f}x the floor "
                f"(target ≤ 1.5x)"
            )
            if kind == "postgres":
                # Load-independent: on an idle host the floor takes about its server CPU (one backend),
                # and the import at least its CPU seconds (worker, reading process, its backends) spread
                # over every core.
                used = first["cpu"] + first["reader_cpu"] + first["server_cpu"]
                cores = os.cpu_count() or 1
                print(
                    f"{'':>11} CPU: import {used:.1f} s (worker + reading process + PostgreSQL) over {cores} "
                    f"cores = {used / cores:.2f} s at the least, against the floor's "
                    f"{floor['server_cpu']:.2f} s: the import cannot come under "
                    f"{used / cores / floor['server_cpu']:.2f}x the floor here"
                )
            spent = dataclasses.replace(spent, floor_s=float(floor["s"]))
        return spent


def run_exports(args: argparse.Namespace, folder: Path) -> None:
    n = args.export_n or args.n
    for kind in args.export_databases.split(","):
        with database(kind, folder, args.pg_url) as url:
            seeded = isolated(_seed, url, n)
            print(
                f"{kind:>8} export: {n:,} contacts created in {seeded['s']:.1f} s (not part of the figures)"
            )
            mine = isolated(_export, url, str(folder), "xlsx")
            theirs = isolated(_openpyxl, url, str(folder))
            as_csv = isolated(_export, url, str(folder), "csv")
            print(
                f"{'':>8} xlsx end to end (export job: read model → file): {mine['s']:.2f} s "
                f"({mine['rows'] / mine['s']:,.0f} rows/s), {mine['mb']:.1f} MB, "
                f"peak RSS {mine['rss_mb']:.0f} MB"
            )
            print(
                f"{'':>8} openpyxl write-only, same rows already in memory: {theirs['s']:.2f} s, "
                f"{theirs['mb']:.1f} MB (ours is {theirs['s'] / mine['s']:.1f}x faster)"
            )
            print(
                f"{'':>8} csv end to end: {as_csv['s']:.2f} s ({as_csv['rows'] / as_csv['s']:,.0f} rows/s), "
                f"{as_csv['mb']:.1f} MB, peak RSS {as_csv['rss_mb']:.0f} MB"
            )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench importexport")
    parser.add_argument("--n", type=int, default=100_000, help="rows of the imported file")
    parser.add_argument("--export-n", type=int, default=0, help="contacts to export (default: --n)")
    parser.add_argument("--batch-rows", type=int, default=20_000, help="rows per batch message to contacts")
    parser.add_argument("--only", default="import,export")
    parser.add_argument("--databases", default="sqlite,postgres,distributed", help="for the import")
    parser.add_argument("--export-databases", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument(
        "--again", action=argparse.BooleanOptionalAction, default=True, help="import the file a second time"
    )
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep (and reuse) the input in")
    parser.add_argument("--openpyxl-input", action="store_true", help="write the input with openpyxl")
    parser.add_argument(
        "--dnc", type=int, default=0, help="also import against a do-not-call list of this many numbers"
    )
    parser.add_argument(
        "--dnc-hits", type=float, default=0.1, help="share of the file's phones on the do-not-call list"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="imports per database (with --dnc: of both), best kept"
    )
    parser.add_argument(
        "--floor", action="store_true", help="measure PostgreSQL's floor after each PostgreSQL import"
    )
    parser.add_argument("--floor-rounds", type=int, default=3, help="copies of the floor (best kept)")
    args = parser.parse_args(argv)
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if "import" in args.only:
            run_imports(args, folder)
        if "export" in args.only:
            run_exports(args, folder)
    return 0
