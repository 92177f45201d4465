"""The whole system under a call centre's load: 200 agents and 5 supervisors on two gateways.

``python -m bench load [--duration 300] [--agents 200] [--supervisors 5] [--contacts 100000]
[--listeners 4] [--call-seconds 1.0] [--think 0] [--import-rows 2000] [--rate-limit 600/minute]
[--log-level WARNING] [--database-url URL] [--redis-url URL] [--json PATH]``

A distributed cluster as real processes (``python -m system serve contacts``, two ``serve gateway``, one
``worker``) on a fresh PostgreSQL schema and its own Redis key prefix (both removed afterwards), with the
product's rate limits. ``--contacts`` contacts are seeded first through the contacts batch path
(``ContactsService.create_or_merge``) into ten lists, all in the General campaign. Then, for
``--duration`` seconds, from this process (asyncio, aiohttp, python-socketio):

* ``--agents`` agents, each with its own Agent key, in one of the supervisors' teams, half of them on each
  gateway. Each loops as the desk client does: ``POST /queue/next`` (the next contact, locked to her) →
  ``PATCH /contacts/{id}`` (a note, ``If-Match`` the version read) → ``POST /contacts/{id}/call`` →
  the call on her desk → ``POST /contacts/{id}/disposition`` (the call's outcome and a status; every sixth
  cycle a personal callback two to four minutes ahead; every fourth cycle ``keep_lock``) →
  ``DELETE /contacts/{id}/lock`` when she still holds it. ``--think`` seconds between steps.
* Each agent's desk is a simulated ``callmanager-dialer``: a Socket.IO connection to the *other* gateway
  with the dialer's auth (``api_key``, ``desk``), so every dial crosses between gateways through Redis.
  On ``dial`` it checks the number with the dialer's own ``dial_string_of_request``, reports
  ``desk_state`` and ``call_started`` (acknowledged), "rings" and "talks" for about ``--call-seconds``,
  and reports ``call_ended`` with the outcome and seconds the dialer's own ``CallProgress`` computes from
  the scripted softphone events (answered 35 %, no answer 30 %, busy 25 %, failed 10 %). No SIP: the
  softphone is the only part simulated (``bench calls`` measures baresip and SIPp).
* ``--supervisors`` supervisors (TeamLeads and, the last, a ProjectManager) loop: import a generated file
  of ``--import-rows`` new numbers (csv and xlsx in turn) into a list of its own, wait for the job, then
  export (csv, as a job) that list or, every other turn, every ``INTERESADO`` contact, wait, download.
* ``--listeners`` Socket.IO clients (Agent keys, no desk), spread over both gateways, receive every
  notice; each agent's note edit is matched to its ``contact_updated`` notice by contact id and the note
  written (unique per edit). Lag = notice received − the edit's response received (negative when the
  notice arrived first); an edit a listener never receives within 15 s of the end is a lost notice. The
  listeners also apply the desk client's rule (``client.live``: a notice whose ``position`` is not above
  the last seen is dropped) and count the notices that rule would lose (arrived out of order).

Printed: per operation count, throughput, p50/p99 of answered requests and errors by status code; job
durations; live lag p50/p99, lost and duplicated notices; double assignments (two agents holding one
contact at once: from the agents' own hold intervals, and from the event store's lock events); events
appended; CPU of each server process and of this process; load average before and after; the servers'
error lines and warnings (and lease changes of the gateways' feed with ``--log-level INFO``).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import itertools
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import socketio
import sqlalchemy as sa
import structlog

from bench.contacts import LISTS, national, rows_for
from bench.gateway import (
    DEFAULT_PG_URL,
    DEFAULT_REDIS_URL,
    ROOT,
    Server,
    clear_redis,
    free_port,
    server_env,
    start_server,
)
from bench.machine import describe
from bench.store import postgres_schema
from contacts.commands import Caller, Source
from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.statuses import DEFAULT_CATALOGUE
from dialer_agent.dialstring import InvalidDialRequest, dial_string_of_request
from dialer_agent.outcome import ANSWERED, BUSY, FAILED, NO_ANSWER, CallProgress
from dialer_agent.softphone import CallEvent, CallState
from gateway.users import UserDirectory
from kernel.roles import Role
from kernel.store import EventStore, create_engine
from system.tuning import BulkTuning

NOTE_PREFIX = "carga "
NO_ANSWER_CODE = "no answer"
"""The code of a request (or acknowledgement) that got no answer: ``no answer: <exception>``."""
IMPORT_BASE = 1_000_000
"""Imported numbers are ``national(IMPORT_BASE + n)``: never one of the seeded contacts'."""
OUTCOMES = ((ANSWERED, 35), (NO_ANSWER, 30), (BUSY, 25), (FAILED, 10))
ANSWERED_STATUSES = ("INTERESADO", "CUELGA", "EN_PROGRESO")
LOCK_TYPES = (
    "contacts.ContactLocked",
    "contacts.LockExtended",
    "contacts.LockReleased",
    "contacts.LockForceReleased",
    "contacts.LockExpired",
)
ORDER = (
    "queue_next", "edit", "call", "desk call_started", "desk call_ended", "call round trip",
    "disposition", "release", "import", "export", "job poll", "download",
)  # fmt: skip


@dataclass(frozen=True)
class Options:
    """What to run: the cluster's size, the load and how long."""

    database_url: str = DEFAULT_PG_URL
    redis_url: str = DEFAULT_REDIS_URL
    duration: float = 300.0
    agents: int = 200
    supervisors: int = 5
    contacts: int = 100_000
    listeners: int = 4
    call_seconds: float = 1.0
    think: float = 0.0
    import_rows: int = 2000
    rate_limit: str = "600/minute"
    log_level: str = "WARNING"
    verbose: bool = True


# Measurements.


@dataclass
class Operation:
    """One kind of request: latencies of answered (2xx) requests and every outcome by code."""

    seconds: list[float] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        """Requests made (answered or not)."""
        return sum(self.codes.values())


@dataclass
class Hold:
    """When one agent certainly held one contact: from the claim's answer to the release request sent."""

    contact_id: str
    agent: int
    start: float
    end: float


@dataclass
class Edit:
    """A note edit whose notice the listeners should receive."""

    sent: float
    answered: float
    gateway: int


@dataclass
class Job:
    """A supervisor's job: what, how long from the 202 to seeing it end, its end state, rows."""

    kind: str
    seconds: float
    state: str
    rows: int
    server_seconds: float


class Metrics:
    """Everything the load measures, shared by every task of the loop."""

    def __init__(self) -> None:
        self.operations: dict[str, Operation] = defaultdict(Operation)
        self.holds: list[Hold] = []
        self.edits: dict[tuple[str, str], Edit] = {}
        self.jobs: list[Job] = []
        self.problems: Counter[str] = Counter()
        self.claim_reasons: Counter[str] = Counter()
        self.call_outcomes: Counter[str] = Counter()
        self.answers: dict[tuple[str, str], str] = {}

    def record(self, name: str, code: str, seconds: float) -> None:
        """One request of ``name`` ended with ``code`` (an HTTP status, ``ok``, or an error's name)."""
        operation = self.operations[name]
        operation.codes[code] += 1
        if code == "ok" or code.startswith("2"):
            operation.seconds.append(seconds)


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (``share`` in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


# The cluster.


@dataclass
class Cluster:
    """The processes of one run and the keys of its users."""

    gateways: list[str]
    servers: list[Server]
    agent_keys: list[str]
    supervisor_keys: list[str]
    listener_keys: list[str]
    database_url: str
    log_errors: dict[str, int] = field(default_factory=dict)
    log_warnings: dict[str, dict[str, str]] = field(default_factory=dict)


def seed(url: str, options: Options) -> tuple[list[str], list[str], list[str]]:
    """Contacts through the batch path, then the users: (agent keys, supervisor keys, listener keys)."""
    engine = create_engine(url)
    try:
        service = ContactsService(
            engine, EventStore(engine), LockPolicy(), DEFAULT_CATALOGUE, tuning=BulkTuning()
        )
        importer = Caller(user_id="u-bench", username="bench", role=Role.PROJECT_MANAGER)
        for k in range(LISTS):
            service.create_or_merge(
                rows_for(options.contacts, k), f"lista-{k}", importer, source=Source.GENERATOR
            )
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        directory = UserDirectory(engine)
        teams = max(options.supervisors, 1)
        supervisors = [
            directory.create_user(
                f"supervisor{s}",
                "ProjectManager" if s == options.supervisors - 1 and s > 0 else "TeamLead",
                team=f"equipo-{s % teams}",
            )[1].plaintext
            for s in range(options.supervisors)
        ]
        agents = [
            directory.create_user(f"agente{a:03d}", "Agent", team=f"equipo-{a % teams}")[1].plaintext
            for a in range(options.agents)
        ]
        listeners = [
            directory.create_user(f"escucha{n}", "Agent", team="escuchas")[1].plaintext
            for n in range(options.listeners)
        ]
        return agents, supervisors, listeners
    finally:
        engine.dispose()


@contextmanager
def cluster(options: Options, folder: Path) -> Iterator[Cluster]:
    """Seed a fresh schema, start contacts, two gateways and a worker; stop and clean everything after."""
    with postgres_schema(options.database_url) as url:
        started = time.perf_counter()
        agents, supervisors, listeners = seed(url, options)
        say(options, f"seeded {options.contacts:,} contacts and {len(agents) + len(supervisors)} users "
                     f"in {time.perf_counter() - started:.0f} s")  # fmt: skip
        contacts_port = free_port()
        prefix = f"load{uuid.uuid4().hex[:8]}"
        data_dir = folder / "data"
        data_dir.mkdir()
        env = server_env(
            CALLMANAGER_DATABASE_URL=url,
            CALLMANAGER_REDIS_URL=options.redis_url,
            CALLMANAGER_BUS_PREFIX=prefix,
            CALLMANAGER_CONTACTS_URL=f"http://127.0.0.1:{contacts_port}",
            CALLMANAGER_SECRET_KEY=uuid.uuid4().hex + uuid.uuid4().hex,
            CALLMANAGER_DATA_DIR=str(data_dir),
            CALLMANAGER_RATE_LIMIT=options.rate_limit,
            CALLMANAGER_LOG_LEVEL=options.log_level,
        )
        servers: list[Server] = []
        system: Cluster | None = None
        try:
            command = ["system", "serve", "contacts", "--port", str(contacts_port)]
            servers.append(start_server("contacts", command, env, folder, contacts_port))
            gateways = []
            for n in (1, 2):
                port = free_port()
                command = ["system", "serve", "gateway", "--port", str(port)]
                servers.append(start_server(f"gateway-{n}", command, env, folder, port))
                gateways.append(servers[-1].url)
            servers.append(start_worker(env, folder))
            system = Cluster(gateways, servers, agents, supervisors, listeners, url)
            yield system
        finally:
            for server in reversed(servers):
                server.stop()
            findings = {server.name: log_findings(server.log_path) for server in servers}
            if system is not None:
                system.log_errors = {name: errors for name, (errors, _) in findings.items()}
                system.log_warnings = {name: warned for name, (_, warned) in findings.items() if warned}
            for server in servers:
                if errors := findings[server.name][0]:
                    tail = "\n".join(server.log_path.read_text(errors="replace").splitlines()[-20:])
                    print(f"  {server.name}: {errors} error lines in its log; its end:\n{tail}")
            clear_redis(options.redis_url, prefix)


def start_worker(env: dict[str, str], folder: Path) -> Server:
    """``python -m system worker`` (generator and import/export queues), logging to a file."""
    log_path = folder / "worker.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "system", "worker"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Server("worker", "", popen, log_path)


def log_findings(path: Path) -> tuple[int, dict[str, str]]:
    """A server log's error lines (JSON ``level`` error or critical, tracebacks, plain ``ERROR`` lines),
    and its warnings: each event name with its count and first line."""
    errors = 0
    warnings: Counter[str] = Counter()
    first: dict[str, str] = {}
    text = path.read_text(errors="replace") if path.exists() else ""
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            errors += "Traceback" in line or line.lstrip().startswith(("ERROR", "CRITICAL"))
            continue
        level = str(entry.get("level", "")).lower()
        if level in ("error", "critical", "exception"):
            errors += 1
        elif level == "warning" or entry.get("event") == "lease.changed":
            event = str(entry.get("event"))
            warnings[event] += 1
            first.setdefault(event, line[:300])
    return errors, {event: f"×{n}: {first[event]}" for event, n in warnings.items()}


def say(options: Options, text: str) -> None:
    """Print a progress line when verbose."""
    if options.verbose:
        print(text, flush=True)


# The simulated clients.


class Http:
    """Requests to the gateways through one aiohttp session each, recorded in the metrics."""

    def __init__(self, urls: Sequence[str], metrics: Metrics) -> None:
        self.urls = list(urls)
        self.metrics = metrics
        self.sessions: list[aiohttp.ClientSession] = []

    async def open(self) -> None:
        """One session per gateway, without a connection cap (every agent keeps its own)."""
        timeout = aiohttp.ClientTimeout(total=120)
        # Idle connections are dropped before uvicorn's keep-alive (5 s) would close them under a request.
        self.sessions = [
            aiohttp.ClientSession(
                url, connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=3), timeout=timeout
            )
            for url in self.urls
        ]

    async def close(self) -> None:
        """Close the sessions."""
        for session in self.sessions:
            await session.close()

    async def send(
        self, name: str, gateway: int, key: str, method: str, path: str, **kwargs: Any
    ) -> tuple[int, Any]:
        """Make one request; return (status, parsed JSON or bytes), status 0 when none came back."""
        headers = {"X-API-Key": key, **kwargs.pop("headers", {})}
        started = time.perf_counter()
        try:
            async with self.sessions[gateway].request(method, path, headers=headers, **kwargs) as answer:
                raw = await answer.read()
                status = answer.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.metrics.record(
                name, f"{NO_ANSWER_CODE}: {type(exc).__name__}", time.perf_counter() - started
            )
            return 0, None
        self.metrics.record(name, str(status), time.perf_counter() - started)
        if status >= 400:
            self.metrics.answers.setdefault((name, str(status)), raw[:300].decode(errors="replace"))
        if answer.content_type == "application/json":
            return status, json.loads(raw) if raw else None
        return status, raw


class Desk:
    """A simulated ``callmanager-dialer``: acknowledges dials and reports the call as the dialer does."""

    def __init__(self, url: str, key: str, name: str, metrics: Metrics, call_seconds: float, seed: int):
        self.url = url
        self.key = key
        self.name = name
        self.metrics = metrics
        self.call_seconds = call_seconds
        self.random = random.Random(seed)
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=1)
        self.sio.on("dial", self._dial)
        self._ends: dict[str, asyncio.Future[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        """Connect as a desk (the dialer's auth)."""
        auth = {"api_key": self.key, "desk": self.name, "agent": "callmanager-dialer/bench-load"}
        await self.sio.connect(self.url, auth=auth, transports=["websocket"], wait_timeout=60)

    async def ended(self, call_id: str, timeout: float) -> str | None:
        """The outcome the desk reported for ``call_id``, None when it did not end within ``timeout``."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._future(call_id)), timeout)
        except TimeoutError:
            return None
        finally:
            self._ends.pop(call_id, None)

    def _future(self, call_id: str) -> asyncio.Future[str]:
        if call_id not in self._ends:
            self._ends[call_id] = asyncio.get_running_loop().create_future()
        return self._ends[call_id]

    async def _dial(self, payload: Any) -> None:
        task = asyncio.create_task(self._call(payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ack(self, name: str, payload: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            ack = await self.sio.call(name, payload, timeout=60)
        except socketio.exceptions.SocketIOError as exc:
            self.metrics.record(
                f"desk {name}", f"{NO_ANSWER_CODE}: {type(exc).__name__}", time.perf_counter() - started
            )
            return
        ok = isinstance(ack, dict) and ack.get("ok") is True
        code = "ok" if ok else str((ack or {}).get("error", {}).get("code", "refused"))
        self.metrics.record(f"desk {name}", code, time.perf_counter() - started)

    async def _state(self, state: str, call_id: str | None, contact_id: str | None) -> None:
        message: dict[str, Any] = {"state": state}
        if call_id:
            message.update(call_id=call_id, contact_id=contact_id)
        await self.sio.emit("desk_state", message)

    async def _call(self, payload: Any) -> None:
        if not isinstance(payload, dict) or payload.get("desk") != self.name:
            return
        call_id, contact_id = str(payload["call_id"]), str(payload.get("contact_id"))
        loop = asyncio.get_running_loop()
        progress = CallProgress(dialled_at=loop.time())
        try:
            dial_string_of_request(payload.get("phone_e164"), payload.get("dial"))
        except InvalidDialRequest as exc:
            progress.record(CallEvent(CallState.CLOSED, str(exc)), loop.time())
        else:
            await self._state("dialling", call_id, contact_id)
            await self._ack("call_started", {"id": contact_id, "call_id": call_id})
            await self._play(progress, call_id, contact_id)
        result = progress.result(loop.time())
        report = {
            "id": contact_id,
            "call_id": call_id,
            "outcome": result.outcome,
            "ring_seconds": result.ring_seconds,
            "talk_seconds": result.talk_seconds,
        }
        if result.reason:
            report["reason"] = result.reason
        await self._ack("call_ended", report)
        await self._state("ready", None, None)
        self.metrics.call_outcomes[result.outcome] += 1
        future = self._future(call_id)
        if not future.done():
            future.set_result(result.outcome)

    async def _play(self, progress: CallProgress, call_id: str, contact_id: str) -> None:
        """The softphone's events for a drawn outcome, spread over about ``call_seconds``."""
        loop = asyncio.get_running_loop()
        draw = self.random
        outcome = draw.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
        ring = self.call_seconds * draw.uniform(0.2, 0.6)
        if outcome in (FAILED, BUSY):
            await asyncio.sleep(ring / 2)
            reason = "486 Busy Here" if outcome == BUSY else "503 Service Unavailable"
            progress.record(CallEvent(CallState.CLOSED, reason), loop.time())
            return
        progress.record(CallEvent(CallState.RINGING), loop.time())
        await self._state("ringing", call_id, contact_id)
        await asyncio.sleep(ring)
        if outcome == NO_ANSWER:
            progress.timed_out = True
            progress.record(CallEvent(CallState.CLOSED), loop.time())
            return
        progress.record(CallEvent(CallState.ESTABLISHED), loop.time())
        await self._state("in_call", call_id, contact_id)
        await asyncio.sleep(self.call_seconds * draw.uniform(0.5, 1.5) - ring)
        progress.record(CallEvent(CallState.CLOSED, "200 OK"), loop.time())


class Listener:
    """A live client (no desk) that notes when each of the bench's note edits reached it.

    It also applies the desk client's rule (``client.live``): a notice whose ``position`` is not above the
    last one seen is dropped. A notice so dropped that was not a repeat is one the desk client loses.
    """

    NOTICES = (
        "contact_created", "contact_updated", "contact_locked", "contact_unlocked", "contact_deleted",
        "bulk_update", "call_requested", "call_started", "call_ended",
    )  # fmt: skip

    def __init__(self, url: str, key: str, gateway: int) -> None:
        self.url = url
        self.key = key
        self.gateway = gateway
        self.seen: dict[tuple[str, str], float] = {}
        self.in_order: set[tuple[str, str]] = set()
        self.duplicates = 0
        self.notices = 0
        self.out_of_order = 0
        self.resyncs = 0
        self.disconnects = 0
        self.closing = False
        self._last_position = 0
        self._positions: set[int] = set()
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=1)
        self.sio.on("resync", self._resync)
        self.sio.on("disconnect", self._disconnected)
        for name in self.NOTICES:
            self.sio.on(name, self._receiver(name))

    async def connect(self) -> None:
        """Connect as a desk client's live connection does."""
        await self.sio.connect(
            self.url, auth={"api_key": self.key}, transports=["websocket"], wait_timeout=60
        )

    async def _resync(self, data: Any) -> None:
        self.resyncs += 1

    async def _disconnected(self, *_: Any) -> None:
        self.disconnects += 0 if self.closing else 1

    def _receiver(self, name: str) -> Any:
        async def receive(data: Any) -> None:
            self.received(name, data if isinstance(data, dict) else {}, time.perf_counter())

        return receive

    def received(self, name: str, data: dict[str, Any], now: float) -> None:
        """Count a notice, check its order as the desk client does, note a bench edit's arrival."""
        self.notices += 1
        position = data.get("position")
        in_order = True
        if isinstance(position, int):
            # A bulk notice's and a contact notice's positions differ, so a repeat is a position seen.
            in_order = position > self._last_position
            if not in_order and position not in self._positions:
                self.out_of_order += 1
            self._positions.add(position)
            self._last_position = max(self._last_position, position)
        note = (data.get("fields") or {}).get("note") if name == "contact_updated" else None
        if not isinstance(note, str) or not note.startswith(NOTE_PREFIX):
            return
        key = (str(data.get("id")), note)
        if key in self.seen:
            self.duplicates += 1
        else:
            self.seen[key] = now
        if in_order:
            self.in_order.add(key)


@dataclass
class Load:
    """What the tasks of one run share."""

    options: Options
    cluster: Cluster
    http: Http
    metrics: Metrics
    desks: list[Desk]
    deadline: float
    numbers: Iterator[int] = field(default_factory=itertools.count)


async def pause(load: Load) -> None:
    """The agent's think time between steps."""
    if load.options.think > 0:
        await asyncio.sleep(load.options.think)


async def agent(load: Load, n: int) -> None:
    """One agent's loop: next contact, note, call, disposition, release; until the deadline."""
    key = load.cluster.agent_keys[n]
    gateway = n % 2
    http, metrics, desk = load.http, load.metrics, load.desks[n]
    draw = random.Random(n)
    for cycle in itertools.count():
        if time.perf_counter() >= load.deadline:
            return
        status, claim = await http.send("queue_next", gateway, key, "POST", "/queue/next")
        if status != 200:
            await asyncio.sleep(1.0 if status == 404 else 0.5)
            continue
        contact = claim["contact"]
        contact_id = str(contact["id"])
        metrics.claim_reasons[str(claim.get("reason"))] += 1
        hold = Hold(contact_id, n, time.perf_counter(), 0.0)
        await pause(load)
        note = f"{NOTE_PREFIX}{n} {cycle}"
        sent = time.perf_counter()
        status, _ = await http.send(
            "edit", gateway, key, "PATCH", f"/contacts/{contact_id}",
            json={"note": note}, headers={"If-Match": f'"{contact["version"]}"'},
        )  # fmt: skip
        if status == 200:
            metrics.edits[(contact_id, note)] = Edit(sent, time.perf_counter(), gateway)
        await pause(load)
        outcome = FAILED
        asked = time.perf_counter()
        status, placed = await http.send("call", gateway, key, "POST", f"/contacts/{contact_id}/call")
        if status == 202:
            reported = await desk.ended(str(placed["call_id"]), timeout=60 + 10 * load.options.call_seconds)
            ended = "ok" if reported else f"{NO_ANSWER_CODE}: call not ended"
            metrics.record("call round trip", ended, time.perf_counter() - asked)
            outcome = reported or FAILED
        await pause(load)
        keep = cycle % 4 == 1
        body: dict[str, Any] = {"outcome": outcome, "note": f"gestión {cycle}", "keep_lock": keep}
        if cycle % 6 == 2:
            due = datetime.now(UTC) + timedelta(seconds=draw.uniform(120, 240))
            body.update(status="PENDIENTE", callback_at=due.isoformat())
        else:
            body["status"] = draw.choice(ANSWERED_STATUSES) if outcome == ANSWERED else "NC"
        hold.end = time.perf_counter()
        path = f"/contacts/{contact_id}/disposition"
        status, _ = await http.send("disposition", gateway, key, "POST", path, json=body)
        if status != 200 or keep:
            await pause(load)
            hold.end = time.perf_counter()
            await http.send("release", gateway, key, "DELETE", f"/contacts/{contact_id}/lock")
        metrics.holds.append(hold)


def import_file(kind: str, first: int, rows: int) -> bytes:
    """A file of ``rows`` new numbers (``national(IMPORT_BASE + first + i)``), csv or xlsx."""
    lines = [(national(IMPORT_BASE + first + i), f"Cliente carga {first + i}") for i in range(rows)]
    if kind == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(("Teléfono", "Nombre"))
        writer.writerows(lines)
        return out.getvalue().encode()
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["Teléfono", "Nombre"])
    for line in lines:
        sheet.append(list(line))
    content = io.BytesIO()
    book.save(content)
    return content.getvalue()


async def wait_job(load: Load, gateway: int, key: str, job_id: str, kind: str) -> dict[str, Any] | None:
    """Poll ``GET /jobs/{id}`` until it ends (at most 10 minutes); record its duration."""
    started = time.perf_counter()
    while time.perf_counter() < started + 600:
        await asyncio.sleep(0.5)
        status, job = await load.http.send("job poll", gateway, key, "GET", f"/jobs/{job_id}")
        if status == 200 and job["state"] in ("finished", "failed", "cancelled"):
            report = job.get("report") or {}
            rows = int(report.get("rows") or report.get("inserted") or 0)
            spent = (
                datetime.fromisoformat(job["updated_at"]) - datetime.fromisoformat(job["created_at"])
            ).total_seconds()
            load.metrics.jobs.append(Job(kind, time.perf_counter() - started, job["state"], rows, spent))
            return dict(job)
    load.metrics.problems[f"{kind} job not ended in 10 minutes"] += 1
    return None


async def supervisor(load: Load, s: int) -> None:
    """One supervisor's loop: import a file into a new list, export (that list or a status), download."""
    key = load.cluster.supervisor_keys[s]
    gateway = s % 2
    rows = load.options.import_rows
    for turn in itertools.count():
        if time.perf_counter() >= load.deadline:
            return
        kind = "xlsx" if turn % 2 else "csv"
        first = next(load.numbers) * rows
        content = await asyncio.to_thread(import_file, kind, first, rows)
        list_name = f"carga-s{s}-{turn}"
        form = aiohttp.FormData()
        form.add_field("file", content, filename=f"{list_name}.{kind}")
        form.add_field("list", list_name)
        status, started = await load.http.send("import", gateway, key, "POST", "/import", data=form)
        if status == 202:
            job = await wait_job(load, gateway, key, str(started["id"]), "import")
            inserted = (job or {}).get("report", {}).get("inserted")
            if job is not None and (job["state"] != "finished" or inserted != rows):
                load.metrics.problems[f"import {job['state']}, inserted {inserted} of {rows}"] += 1
        params = {"format": "csv", "async": "true"}
        params.update({"list": list_name} if turn % 2 == 0 else {"status": "INTERESADO"})
        status, exported = await load.http.send("export", gateway, key, "GET", "/export", params=params)
        if status != 202:
            await asyncio.sleep(1.0)
            continue
        job = await wait_job(load, gateway, key, str(exported["id"]), "export")
        if job is None or job["state"] != "finished":
            load.metrics.problems[f"export {(job or {}).get('state')}"] += 1
            continue
        status, body = await load.http.send("download", gateway, key, "GET", str(exported["download"]))
        if status == 200:
            lines = len(body.decode("utf-8-sig").splitlines()) - 1 if isinstance(body, bytes) else -1
            if turn % 2 == 0 and lines != rows:
                load.metrics.problems[f"export of a list of {rows} gave {lines} rows"] += 1


async def connect_all(clients: Sequence[Desk | Listener], batch: int = 20) -> None:
    """Connect the clients a batch at a time."""
    for start in range(0, len(clients), batch):
        await asyncio.gather(*(c.connect() for c in clients[start : start + batch]))


@dataclass
class Run:
    """What one run measured."""

    options: Options
    seconds: float
    metrics: Metrics
    listeners: list[Listener]
    cpu: dict[str, float]
    double_by_agents: list[tuple[str, int, int]]
    double_by_events: list[str]
    events_appended: int
    load_before: str
    load_after: str
    log_errors: dict[str, int]
    log_warnings: dict[str, dict[str, str]]


@dataclass
class Phase:
    """The load phase's wall time, CPU cores used per process, and the machine's load around it."""

    seconds: float
    cpu: dict[str, float]
    uptime_before: str
    uptime_after: str


async def drive(options: Options, system: Cluster, metrics: Metrics) -> tuple[Phase, list[Listener]]:
    """Connect every client, run the load for ``duration``, let the last notices arrive."""
    http = Http(system.gateways, metrics)
    await http.open()
    desks = [
        Desk(system.gateways[(n + 1) % 2], key, f"puesto-{n:03d}", metrics, options.call_seconds, n)
        for n, key in enumerate(system.agent_keys)
    ]
    listeners = [Listener(system.gateways[n % 2], key, n % 2) for n, key in enumerate(system.listener_keys)]
    try:
        await connect_all(desks)
        await connect_all(listeners)
        await warm_up(http, system)
        say(options, f"{len(desks)} desks and {len(listeners)} listeners connected; load for "
                     f"{options.duration:.0f} s")  # fmt: skip
        uptime_before = uptime()
        cpu_before = {s.name: process_cpu(s.popen.pid) for s in system.servers}
        own_before = time.process_time()
        started = time.perf_counter()
        load = Load(options, system, http, metrics, desks, started + options.duration)
        tasks = [agent(load, n) for n in range(options.agents)]
        tasks += [supervisor(load, s) for s in range(options.supervisors)]
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - started
        cpu = {s.name: (process_cpu(s.popen.pid) - cpu_before[s.name]) / seconds for s in system.servers}
        cpu["bench (this process)"] = (time.process_time() - own_before) / seconds
        phase = Phase(seconds, cpu, uptime_before, uptime())
        await settle(metrics, listeners)
        return phase, listeners
    finally:
        for listener in listeners:
            listener.closing = True
        await asyncio.gather(*(c.sio.disconnect() for c in [*desks, *listeners]), return_exceptions=True)
        await http.close()


async def warm_up(http: Http, system: Cluster) -> None:
    """One small import through the worker and a request to each gateway, before the clock starts."""
    key = system.supervisor_keys[0] if system.supervisor_keys else system.agent_keys[0]
    for gateway in range(len(system.gateways)):
        await http.send("warm-up", gateway, key, "GET", "/me")
    if system.supervisor_keys:
        form = aiohttp.FormData()
        form.add_field("file", import_file("csv", 7_000_000 - IMPORT_BASE, 10), filename="warm.csv")
        form.add_field("list", "carga-warm")
        status, job = await http.send("warm-up", 0, key, "POST", "/import", data=form)
        deadline = time.perf_counter() + 120
        while status == 202 and time.perf_counter() < deadline:
            await asyncio.sleep(0.5)
            _, seen = await http.send("warm-up", 0, key, "GET", f"/jobs/{job['id']}")
            if seen and seen["state"] in ("finished", "failed", "cancelled"):
                break
    http.metrics.operations.pop("warm-up", None)


async def settle(metrics: Metrics, listeners: Sequence[Listener], timeout: float = 15.0) -> None:
    """Wait (up to ``timeout``) until every listener has every edit's notice."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if all(all(key in listener.seen for key in metrics.edits) for listener in listeners):
            return
        await asyncio.sleep(0.25)


def doubles_by_agents(holds: Sequence[Hold]) -> list[tuple[str, int, int]]:
    """Contacts two agents certainly held at once, by the agents' own hold intervals."""
    by_contact: dict[str, list[Hold]] = defaultdict(list)
    for hold in holds:
        by_contact[hold.contact_id].append(hold)
    found = []
    for contact_id, intervals in by_contact.items():
        intervals.sort(key=lambda h: h.start)
        for earlier, later in itertools.pairwise(intervals):
            if later.agent != earlier.agent and later.start < earlier.end:
                found.append((contact_id, earlier.agent, later.agent))
    return found


def doubles_by_events(url: str, after: int) -> tuple[list[str], int]:
    """:func:`doubles_in` the event store's lock events; and how many events came after ``after``."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT stream_id, type, occurred_at, data FROM events "
                    "WHERE type = ANY(:types) ORDER BY position"
                ),
                {"types": list(LOCK_TYPES)},
            ).all()
            appended = int(
                conn.execute(sa.text("SELECT coalesce(max(position), 0) FROM events")).scalar_one()
            )
    finally:
        engine.dispose()
    return doubles_in(rows), appended - after


def doubles_in(rows: Iterable[Sequence[Any]]) -> list[str]:
    """Where one user locked a contact while another's lock on it had not ended, from lock events
    ``(stream id, type, occurred at, data)`` in position order."""
    holders: dict[str, tuple[str, datetime]] = {}
    found = []
    for stream_id, kind, at, data in rows:
        data = data if isinstance(data, dict) else json.loads(data)
        if kind in ("contacts.ContactLocked", "contacts.LockExtended"):
            held = holders.get(stream_id)
            if held is not None and held[0] != data["locked_by"] and held[1] > at:
                found.append(f"{stream_id}: {data['locked_by']} locked it while {held[0]} held it")
            holders[stream_id] = (data["locked_by"], datetime.fromisoformat(str(data["locked_until"])))
        else:
            holders.pop(stream_id, None)
    return found


def last_position(url: str) -> int:
    """The event store's last position."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT coalesce(max(position), 0) FROM events")).scalar_one())
    finally:
        engine.dispose()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and of its children it has waited for (a reading process)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def uptime() -> str:
    """``uptime``'s line (load averages over 1, 5 and 15 minutes)."""
    done = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or " ".join(f"{x:.2f}" for x in os.getloadavg())


def run(options: Options) -> Run:
    """Start the cluster, run the load, check it; the measurements."""
    import uvloop

    metrics = Metrics()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as name, cluster(options, Path(name)) as system:
        before = last_position(system.database_url)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            phase, listeners = runner.run(drive(options, system, metrics))
        by_events, appended = doubles_by_events(system.database_url, before)
    return Run(
        options, phase.seconds, metrics, listeners, phase.cpu, doubles_by_agents(metrics.holds), by_events,
        appended, phase.uptime_before, phase.uptime_after, system.log_errors, system.log_warnings,
    )  # fmt: skip


# The report.


def is_server_error(code: str) -> bool:
    """A 5xx, a request or acknowledgement that got no answer, or a service said to be unavailable."""
    return code.startswith(("5", NO_ANSWER_CODE)) or code == "service_unavailable"


def server_errors(result: Run) -> dict[str, int]:
    """Server errors (:func:`is_server_error`) by operation."""
    found = {}
    for name, operation in result.metrics.operations.items():
        bad = sum(n for code, n in operation.codes.items() if is_server_error(code))
        if bad:
            found[name] = bad
    return found


def lag_figures(result: Run) -> dict[str, Any]:
    """Live lag per gateway of the listeners: samples, p50/p99 (ms) from the response, lost, duplicated."""
    figures: dict[str, Any] = {}
    edits = result.metrics.edits
    for gateway in sorted({listener.gateway for listener in result.listeners}):
        lags, from_request, lost, duplicates, early, dropped, out_of_order = [], [], 0, 0, 0, 0, 0
        for listener in (x for x in result.listeners if x.gateway == gateway):
            duplicates += listener.duplicates
            out_of_order += listener.out_of_order
            for key, edit in edits.items():
                seen = listener.seen.get(key)
                if seen is None:
                    lost += 1
                    continue
                dropped += key not in listener.in_order
                lags.append((seen - edit.answered) * 1000)
                from_request.append((seen - edit.sent) * 1000)
                early += seen < edit.answered
        figures[f"gateway-{gateway + 1}"] = {
            "samples": len(lags),
            "p50_ms": percentile(lags, 0.5) if lags else None,
            "p99_ms": percentile(lags, 0.99) if lags else None,
            "from_request_p50_ms": percentile(from_request, 0.5) if from_request else None,
            "from_request_p99_ms": percentile(from_request, 0.99) if from_request else None,
            "before_response": early,
            "lost": lost,
            "duplicates": duplicates,
            "lost_by_the_desk_client": dropped,
            "out_of_order": out_of_order,
        }
    return figures


def summary(result: Run) -> dict[str, Any]:
    """The run's figures as plain data (printed, and written with ``--json``)."""
    operations = {}
    for name in [*ORDER, *sorted(set(result.metrics.operations) - set(ORDER))]:
        operation = result.metrics.operations.get(name)
        if operation is None:
            continue
        seconds = operation.seconds
        operations[name] = {
            "count": operation.count,
            "per_second": operation.count / result.seconds,
            "p50_ms": percentile(seconds, 0.5) * 1000 if seconds else None,
            "p99_ms": percentile(seconds, 0.99) * 1000 if seconds else None,
            "codes": dict(operation.codes),
        }
    jobs = {}
    for kind in ("import", "export"):
        done = [j for j in result.metrics.jobs if j.kind == kind]
        if done:
            spent = [j.seconds for j in done]
            jobs[kind] = {
                "count": len(done),
                "states": dict(Counter(j.state for j in done)),
                "p50_s": percentile(spent, 0.5),
                "p99_s": percentile(spent, 0.99),
                "max_s": max(spent),
                "server_p50_s": statistics.median(j.server_seconds for j in done),
                "rows_mean": statistics.mean(j.rows for j in done),
            }
    options = result.options
    return {
        "machine": describe(),
        "options": {
            k: v for k, v in vars(options).items() if k not in ("database_url", "redis_url", "verbose")
        },
        "seconds": result.seconds,
        "operations": operations,
        "jobs": jobs,
        "live": lag_figures(result),
        "notices_per_listener": statistics.mean(x.notices for x in result.listeners)
        if result.listeners
        else 0,
        "listener_resyncs": sum(x.resyncs for x in result.listeners),
        "listener_disconnects": sum(x.disconnects for x in result.listeners),
        "holds": len(result.metrics.holds),
        "claim_reasons": dict(result.metrics.claim_reasons),
        "call_outcomes": dict(result.metrics.call_outcomes),
        "double_assignments_by_agents": len(result.double_by_agents),
        "double_assignments_by_events": len(result.double_by_events),
        "double_assignment_examples": [*map(str, result.double_by_agents[:5]), *result.double_by_events[:5]],
        "events_appended": result.events_appended,
        "cpu_cores": result.cpu,
        "server_errors": server_errors(result),
        "log_errors": {name: n for name, n in result.log_errors.items() if n},
        "log_warnings": result.log_warnings,
        "problems": dict(result.metrics.problems),
        "error_answers": {f"{name} {code}": text for (name, code), text in result.metrics.answers.items()},
        "uptime_before": result.load_before,
        "uptime_after": result.load_after,
    }


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def report(figures: dict[str, Any]) -> str:
    """The figures as printed."""
    options = figures["options"]
    lines = [
        f"load: {options['agents']} agents, {options['supervisors']} supervisors, {options['listeners']} "
        f"listeners, two gateways, {options['contacts']:,} contacts, {figures['seconds']:.0f} s "
        f"(call ≈ {options['call_seconds']} s, think {options['think']} s, imports of "
        f"{options['import_rows']} rows, rate limit {options['rate_limit']})",
        f"{'operation':<18} {'count':>7} {'per s':>7} {'p50 ms':>8} {'p99 ms':>8}  answers",
    ]
    for name, op in figures["operations"].items():
        codes = ", ".join(f"{code} ×{n:,}" for code, n in sorted(op["codes"].items()))
        lines.append(
            f"{name:<18} {op['count']:>7,} {op['per_second']:>7.1f} {_ms(op['p50_ms']):>8} "
            f"{_ms(op['p99_ms']):>8}  {codes}"
        )
    for kind, job in figures["jobs"].items():
        lines.append(
            f"{kind} jobs: {job['count']} ({job['states']}), 202 → seen ended p50 {job['p50_s']:.1f} s, "
            f"p99 {job['p99_s']:.1f} s, max {job['max_s']:.1f} s; server p50 {job['server_p50_s']:.1f} s; "
            f"{job['rows_mean']:,.0f} rows on average"
        )
    for gateway, live in figures["live"].items():
        lines.append(
            f"live lag, listeners on {gateway}: {live['samples']:,} notices, from the write's response "
            f"p50 {_ms(live['p50_ms'])} ms, p99 {_ms(live['p99_ms'])} ms (from its request p50 "
            f"{_ms(live['from_request_p50_ms'])}, p99 {_ms(live['from_request_p99_ms'])} ms; "
            f"{live['before_response']:,} before the response); lost {live['lost']}, "
            f"duplicated {live['duplicates']}; arrived out of order (a desk client drops them) "
            f"{live['lost_by_the_desk_client']} of these, {live['out_of_order']:,} of all notices"
        )
    lines.append(
        f"listeners: {figures['notices_per_listener']:,.0f} notices each, {figures['listener_resyncs']} "
        f"resyncs, {figures['listener_disconnects']} disconnects"
    )
    lines.append(
        f"double assignments: {figures['double_assignments_by_agents']} by the agents' holds "
        f"({figures['holds']:,} holds), {figures['double_assignments_by_events']} in the event store's "
        f"lock events {figures['double_assignment_examples'] or ''}"
    )
    lines.append(f"claims by reason: {figures['claim_reasons']}; call outcomes: {figures['call_outcomes']}")
    lines.append(
        f"events appended: {figures['events_appended']:,} "
        f"({figures['events_appended'] / figures['seconds']:,.0f}/s)"
    )
    lines.append(
        "CPU (cores): " + ", ".join(f"{name} {cores:.2f}" for name, cores in figures["cpu_cores"].items())
    )
    lines.append(f"server errors (5xx or no answer): {figures['server_errors'] or 'none'}")
    lines.append(f"error lines in the server logs: {figures['log_errors'] or 'none'}")
    for name, warned in figures["log_warnings"].items():
        for event, text in warned.items():
            lines.append(f"warning in {name}'s log, {event} {text}")
    if figures["problems"]:
        lines.append(f"problems: {figures['problems']}")
    for what, text in figures["error_answers"].items():
        lines.append(f"first {what} answer: {text}")
    lines.append(f"uptime before: {figures['uptime_before']}")
    lines.append(f"uptime after:  {figures['uptime_after']}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench load")
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--supervisors", type=int, default=5)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--listeners", type=int, default=4)
    parser.add_argument("--call-seconds", type=float, default=1.0, help="a call's mean length (ring + talk)")
    parser.add_argument("--think", type=float, default=0.0, help="an agent's pause between steps")
    parser.add_argument("--import-rows", type=int, default=2000)
    parser.add_argument("--rate-limit", default="600/minute", help="CALLMANAGER_RATE_LIMIT of the gateways")
    parser.add_argument(
        "--database-url", default=os.environ.get("CALLMANAGER_TEST_DATABASE_URL", DEFAULT_PG_URL)
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("CALLMANAGER_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    )
    parser.add_argument("--log-level", default="WARNING", help="CALLMANAGER_LOG_LEVEL of the servers")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    options = Options(
        database_url=args.database_url, redis_url=args.redis_url, duration=args.duration, agents=args.agents,
        supervisors=args.supervisors, contacts=args.contacts, listeners=args.listeners,
        call_seconds=args.call_seconds, think=args.think, import_rows=args.import_rows,
        rate_limit=args.rate_limit, log_level=args.log_level,
    )  # fmt: skip
    # This process's own log lines (users created while seeding) say nothing about the load.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(describe())
    figures = summary(run(options))
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0
