"""The gateway under load: list throughput through the gateway and on the contacts service directly, and
Socket.IO fan-out latency.

``python -m bench gateway [--contacts 100000] [--duration 15] [--connections 64] [--rounds 3]
[--server uvicorn|granian] [--mode embedded|distributed|all] [--database-url URL] [--redis-url URL]
[--writes 50] [--sockets 200] [--locks 50]``

Every mode seeds ``--contacts`` contacts straight into the database with the contacts batch path
(``ContactsService.create_or_merge``) before any server starts, creates an Agent with an API key, then
starts the real server processes and measures with ``wrk --latency`` (``--connections`` connections,
``--duration`` seconds per round, ``--rounds`` rounds; best and spread printed):

* ``embedded``: ``serve_embedded`` (one process: gateway + contacts over SQLite, in-process bus), and the
  internal contacts app over the same SQLite file served the same way in a second process. ``GET
  /contacts?limit=50`` through the gateway (with the key) and on the contacts app (with ``X-Caller``), in
  the same run; the gateway's overhead is ``1 - gateway/direct`` req/s. Targets: ≥ 1,500 req/s, p99 ≤
  30 ms, overhead ≤ 35 %. Then the Socket.IO fan-out: ``--sockets`` python-socketio clients in this
  process, ``--locks`` locks made over HTTP one after another; each client's receive time of
  ``contact_locked`` minus the monotonic time the HTTP call started (target p99 ≤ 100 ms).
* ``distributed``: ``serve contacts`` and ``serve gateway`` as separate processes on a fresh PostgreSQL
  schema (``--database-url``, else ``CALLMANAGER_TEST_DATABASE_URL``) and Redis. Target ≥ 800 req/s.

Each round also measures the gateway while ``--writes`` note edits a second (default 50) are saved through
it by another user (from 16 threads; the achieved rate is printed): every edit is a commit, so the
first pages the gateway keeps are read again.

The servers run with a rate limit far above what the bench sends (the limiter still counts every
request). ``wrk`` is the Debian package ``wrk`` (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.contacts import LISTS, rows_for
from bench.machine import describe
from contacts.commands import Caller, Source
from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.statuses import DEFAULT_CATALOGUE
from contacts.views import caller_to_data
from gateway.users import UserDirectory
from kernel.roles import Role
from kernel.store import EventStore, create_engine
from system.migrate import upgrade
from system.tuning import BulkTuning

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PATH = "/contacts?limit=50"
SERVERS = ("uvicorn", "granian")
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles and failures."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int

    def line(self) -> str:
        """The result as printed."""
        failed = f", {self.failures} failed" if self.failures else ""
        return (
            f"{self.requests_per_s:8,.0f} req/s  p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:6.1f} ms"
            f"  ({self.requests:,} requests{failed})"
        )


def _duration_ms(text: str) -> float:
    """A wrk duration (``812.00us``, ``3.21ms``, ``1.02s``, ``2.00m``) in milliseconds."""
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(output: str) -> WrkResult:
    """The figures in ``wrk --latency`` output."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    if not (rate and p50 and p99 and total):
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    failures = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    failures += int(non_2xx.group(1)) if non_2xx else 0
    return WrkResult(
        float(rate.group(1)), _duration_ms(p50.group(1)), _duration_ms(p99.group(1)), int(total.group(1)),
        failures,
    )  # fmt: skip


@dataclass(frozen=True)
class Target:
    """What wrk hits: a URL with fixed headers, or with a script that sets them per request."""

    label: str
    url: str
    headers: dict[str, str]
    script: Path | None = None


def run_wrk(target: Target, duration: int, connections: int, threads: int) -> WrkResult:
    """Run wrk against ``target`` and parse what it prints."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    if target.script is not None:
        command += ["-s", str(target.script)]
    done = subprocess.run([*command, target.url], capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(url: str, n: int, agents: int) -> list[str]:
    """Create ``n`` contacts with the batch path and ``agents`` Agents; return their API keys."""
    engine = create_engine(url)
    try:
        upgrade(engine)
        service = ContactsService(
            engine, EventStore(engine), LockPolicy(), DEFAULT_CATALOGUE, tuning=BulkTuning()
        )
        importer = Caller(user_id="u-bench", username="bench", role=Role.PROJECT_MANAGER)
        for k in range(LISTS):
            service.create_or_merge(rows_for(n, k), f"lista-{k}", importer, source=Source.GENERATOR)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        directory = UserDirectory(engine)
        return [directory.create_user(f"agente{a:03d}", "Agent")[1].plaintext for a in range(agents)]
    finally:
        engine.dispose()


def key_rotation(folder: Path, keys: Sequence[str]) -> Path:
    """A wrk script sending each request with the next of ``keys`` (per-key limits stay realistic)."""
    script = folder / "keys.lua"
    listed = ",\n".join(f'  "{key}"' for key in keys)
    script.write_text(
        f"local keys = {{\n{listed}\n}}\n"
        "local requests = {}\n"
        "local i = 0\n"
        "init = function(args)\n"
        "  for k, key in ipairs(keys) do requests[k] = wrk.format(nil, nil, {['X-API-Key'] = key}) end\n"
        "end\n"
        "request = function()\n"
        "  i = i % #requests + 1\n"
        "  return requests[i]\n"
        "end\n"
    )
    return script


@dataclass
class Server:
    """A server process started by the bench."""

    name: str
    url: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        """SIGTERM, then wait (kill after 20 s)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


def start_server(name: str, args: list[str], env: dict[str, str], folder: Path, port: int) -> Server:
    """Start ``python -m <args>`` and wait until ``/health`` answers 200 and it has gone quiet."""
    log_path = folder / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", *args], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(name, f"http://127.0.0.1:{port}", popen, log_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                wait_quiet(popen.pid)
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} not healthy:\n{log_path.read_text(errors='replace')[-3000:]}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_quiet(pid: int, timeout: float = 120.0) -> None:
    """Wait until the process uses under 10 % of a core for two seconds (start-up catch-up finished)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        quiet = quiet + 1 if cpu_seconds(pid) - before < 0.1 else 0


def server_env(**extra: str) -> dict[str, str]:
    """The environment without the developer's CALLMANAGER_ settings, a bench-sized rate limit, ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLMANAGER_")}
    env.update(
        CALLMANAGER_RATE_LIMIT="100000000/minute",
        CALLMANAGER_LOG_LEVEL="WARNING",
        CALLMANAGER_LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def summarise(label: str, results: Sequence[WrkResult]) -> WrkResult:
    """Print the best round and the spread; return the best."""
    best = max(results, key=lambda r: r.requests_per_s)
    rates = [r.requests_per_s for r in results]
    p99s = [r.p99_ms for r in results]
    print(
        f"{label:<28} best {best.requests_per_s:8,.0f} req/s (rounds {min(rates):,.0f}–{max(rates):,.0f}), "
        f"p99 best {min(p99s):.1f} ms (rounds {min(p99s):.1f}–{max(p99s):.1f} ms)"
    )
    return best


class Writer:
    """Another user's note edits on the first page's contacts, ``rate`` a second through the gateway.

    Each edit is a commit: the next list request reads the page again instead of serving the one it
    kept, as in a call centre where agents keep saving. Edits go out from several threads (an edit
    waits its turn for the GIL behind the saturated event loop), each on its own schedule; an edit that
    is not answered 200 fails the run.
    """

    THREADS = 16

    def __init__(self, base_url: str, key: str, rate: int) -> None:
        self.rate = rate
        self.done = 0
        self._client = httpx.Client(
            base_url=base_url,
            headers={"X-API-Key": key},
            timeout=30,
            limits=httpx.Limits(max_connections=self.THREADS),
        )
        self._ids = [c["id"] for c in self._client.get(PATH).raise_for_status().json()]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"bench-writer-{n}", daemon=True)
            for n in range(self.THREADS)
        ]
        self._failure: str | None = None

    def __enter__(self) -> Writer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._client.close()
        if self._failure:
            raise RuntimeError(f"a write during the bench failed: {self._failure}")

    def _run(self, offset: int) -> None:
        start = time.perf_counter()
        for n in itertools.count(offset, self.THREADS):  # edit n is due at start + n / rate
            if self._stop.wait(max(start + n / self.rate - time.perf_counter(), 0)):
                return
            contact_id = self._ids[n % len(self._ids)]
            answer = self._client.put(f"/contacts/{contact_id}", json={"note": f"nota {n}"})
            if answer.status_code != 200:
                self._failure = f"{answer.status_code} {answer.text[:200]}"
                return
            with self._lock:
                self.done += 1


def compare(
    gateway: Target, direct: Target, servers: Sequence[Server], args: argparse.Namespace, writer_key: str
) -> None:
    """Interleaved rounds through the gateway and on the contacts service; print both and the overhead.

    Each round also prints the CPU time the server processes spent per request (all their threads),
    which the other work on a shared machine disturbs much less than the rates.
    """
    through: list[WrkResult] = []
    straight: list[WrkResult] = []
    written: list[WrkResult] = []
    for round_ in range(args.rounds):
        for target, sink in ((gateway, through), (direct, straight)):
            before = [cpu_seconds(server.popen.pid) for server in servers]
            result = run_wrk(target, args.duration, args.connections, args.threads)
            spent = [cpu_seconds(s.popen.pid) - b for s, b in zip(servers, before, strict=True)]
            per_request = " + ".join(
                f"{s.name} {cpu / max(result.requests, 1) * 1e6:,.0f}"
                for s, cpu in zip(servers, spent, strict=True)
            )
            print(f"  {target.label:<16} round {round_ + 1}: {result.line()}  CPU µs/request: {per_request}")
            sink.append(result)
        if args.latency_connections:
            result = run_wrk(gateway, args.duration, args.latency_connections, args.threads)
            print(
                f"  {'gateway':<16} round {round_ + 1}: {result.line()}  "
                f"at {args.latency_connections} connections"
            )
        if args.writes:
            with Writer(gateway.url.removesuffix(PATH), writer_key, args.writes) as writer:
                result = run_wrk(gateway, args.duration, args.connections, args.threads)
            print(
                f"  {'gateway':<16} round {round_ + 1}: {result.line()}  while {writer.done:,} note edits "
                f"were saved ({writer.done / args.duration:.0f}/s)"
            )
            written.append(result)
    if written:
        summarise(f"gateway, {args.writes} edits/s", written)
    best_gateway = summarise("GET /contacts?limit=50 gateway", through)
    best_direct = summarise("same query, contacts direct", straight)
    overhead = 1 - best_gateway.requests_per_s / best_direct.requests_per_s
    pairs = [1 - g.requests_per_s / d.requests_per_s for g, d in zip(through, straight, strict=True)]
    print(
        f"gateway overhead {overhead:.0%} of direct throughput (best vs best; per round "
        f"{min(pairs):.0%} to {max(pairs):.0%})",
        flush=True,
    )


def check_response(url: str, headers: dict[str, str], expected: int) -> None:
    """Fail early when the measured URL does not answer ``expected`` contacts."""
    response = httpx.get(url + PATH, headers=headers, timeout=10)
    response.raise_for_status()
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    if len(items) != expected:
        raise RuntimeError(f"{url}{PATH} answered {len(items)} contacts, not {expected}")


def embedded(args: argparse.Namespace, folder: Path) -> None:
    """Embedded mode: gateway vs contacts direct over one SQLite file, then Socket.IO fan-out."""
    data_dir = folder / "data"
    data_dir.mkdir()
    started = time.perf_counter()
    keys = seed(f"sqlite:///{data_dir / 'callmanager.db'}", args.contacts, args.keys)
    print(f"embedded: seeded {args.contacts:,} contacts in {time.perf_counter() - started:.0f} s")
    env = server_env(CALLMANAGER_DATA_DIR=str(data_dir))
    servers: list[Server] = []
    try:
        for name, what in (("gateway", "embedded"), ("contacts", "contacts-sqlite")):
            port = free_port()
            command = ["bench", "gateway", "serve", what, "--port", str(port), "--server", args.server]
            servers.append(start_server(name, command, env, folder, port))
        gateway, direct = targets(servers[0].url, servers[1].url, keys, {}, folder)
        print(f"embedded ({args.server}, {args.connections} connections, {args.duration} s rounds):")
        if args.rounds:
            compare(gateway, direct, servers, args, keys[-1])
        # The contacts process stays up (idle): its exit checkpoints the shared SQLite file, which would
        # hold the write lock while the fan-out's first locks wait for it.
        if args.sockets:
            fan_out(servers[0].url, keys[0], args.sockets, args.locks)
    finally:
        for server in servers:
            server.stop()


def targets(
    gateway_url: str, contacts_url: str, keys: Sequence[str], internal: dict[str, str], folder: Path
) -> tuple[Target, Target]:
    """The list page through the gateway (keys in turn) and on the contacts service (as one agent)."""
    caller = Caller(user_id="u-bench", username="agente000", role=Role.AGENT)
    direct_headers = {"X-Caller": orjson.dumps(caller_to_data(caller)).decode(), **internal}
    check_response(gateway_url, {"X-API-Key": keys[0]}, 50)
    check_response(contacts_url, direct_headers, 50)
    gateway = Target("gateway", gateway_url + PATH, {}, key_rotation(folder, keys))
    return gateway, Target("contacts direct", contacts_url + PATH, direct_headers)


def distributed(args: argparse.Namespace, folder: Path) -> None:
    """Distributed mode: serve contacts + serve gateway on PostgreSQL and Redis."""
    from kernel.settings import Settings
    from system.server import internal_token

    secret = uuid.uuid4().hex
    token = internal_token(Settings(secret_key=secret))
    with postgres_schema(args.database_url) as url:
        started = time.perf_counter()
        keys = seed(url, args.contacts, args.keys)
        print(f"distributed: seeded {args.contacts:,} contacts in {time.perf_counter() - started:.0f} s")
        contacts_port, gateway_port = free_port(), free_port()
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        env = server_env(
            CALLMANAGER_DATABASE_URL=url,
            CALLMANAGER_REDIS_URL=args.redis_url,
            CALLMANAGER_BUS_PREFIX=prefix,
            CALLMANAGER_CONTACTS_URL=f"http://127.0.0.1:{contacts_port}",
            CALLMANAGER_SECRET_KEY=secret,
        )
        servers: list[Server] = []
        try:
            for name, port in (("contacts", contacts_port), ("gateway", gateway_port)):
                command = ["bench", "gateway", "serve", name, "--port", str(port), "--server", args.server]
                servers.append(start_server(name, command, env, folder, port))
            internal = {"X-Internal-Token": token}
            gateway, direct = targets(servers[1].url, servers[0].url, keys, internal, folder)
            print(f"distributed ({args.server}, {args.connections} connections, {args.duration} s rounds):")
            if args.rounds:
                compare(gateway, direct, servers, args, keys[-1])
        finally:
            for server in reversed(servers):
                server.stop()
            clear_redis(args.redis_url, prefix)


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for the run, dropped afterwards (URL with its search_path)."""
    from bench.store import postgres_schema as store_schema

    with store_schema(url) as scoped:
        yield scoped


def clear_redis(url: str, prefix: str) -> None:
    """Delete the keys of this run's deployment."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def fan_out(base_url: str, key: str, sockets: int, locks: int) -> None:
    """Socket.IO: ``sockets`` clients, ``locks`` HTTP locks; receive latency per client and lock."""
    latencies = asyncio.run(_fan_out(base_url, key, sockets, locks))
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(
        f"Socket.IO fan-out: {locks} locks to {sockets} clients, {len(latencies):,} receipts: "
        f"p50 {statistics.median(ordered):.1f} ms  p99 {p99:.1f} ms  max {ordered[-1]:.1f} ms"
    )


async def _fan_out(base_url: str, key: str, sockets: int, locks: int) -> list[float]:
    import socketio

    received: dict[str, list[float]] = {}

    def listener() -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)

        @client.on("contact_locked")  # type: ignore[misc]
        async def locked(data: dict[str, Any]) -> None:
            received.setdefault(str(data["id"]), []).append(time.monotonic())

        return client

    clients = [listener() for _ in range(sockets)]
    for start in range(0, sockets, 20):
        await asyncio.gather(
            *(
                c.connect(base_url, auth={"api_key": key}, transports=["websocket"])
                for c in clients[start : start + 20]
            )
        )
    latencies: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}, timeout=10) as http:
            page = (await http.get("/contacts", params={"limit": locks, "locked": "false"})).json()
            for contact in page:
                sent = time.monotonic()
                response = await http.post(f"/contacts/{contact['id']}/lock")
                response.raise_for_status()
                deadline = time.monotonic() + 5
                while len(received.get(contact["id"], ())) < sockets and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)
                times = received.get(contact["id"], [])
                if len(times) < sockets:
                    print(f"  lock {contact['id']}: only {len(times)} of {sockets} clients told within 5 s")
                latencies.extend((t - sent) * 1000 for t in times)
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients))
    return latencies


def bare_app() -> Any:
    """The host reference: FastAPI with one async route answering 50 pre-serialised contacts.

    No database, no key, no middleware: what this machine and server do at best with FastAPI, the
    figure the gateway issue's targets were set against (about 4,400 req/s under uvicorn there).
    """
    from fastapi import FastAPI, Response

    contact = {
        "phone": "88123456", "phone_e164": "+50688123456", "phone_national": "8812-3456",
        "name": "María Rodríguez Chaves", "status": "SIN_GESTIONAR", "note": "", "email": "", "extra": {},
        "list": "lista-3", "operator": "kolbi", "locked_by": None, "locked_by_name": None,
        "locked_until": None, "last_contacted_at": None, "created_at": "2026-11-25T01:00:00+00:00",
        "updated_at": "2026-11-25T01:00:00+00:00", "version": 1,
    }  # fmt: skip
    body = orjson.dumps([{"id": str(uuid.UUID(int=i)), **contact} for i in range(50)])
    app = FastAPI()

    @app.get("/contacts")
    async def contacts(limit: int = 50) -> Response:
        return Response(body, media_type="application/json")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    return app


def host_reference(args: argparse.Namespace, folder: Path) -> None:
    """Print the bare FastAPI app's throughput on this machine, measured like the gateway."""
    port = free_port()
    command = ["bench", "gateway", "serve", "bare", "--port", str(port), "--server", args.server]
    reference = start_server("bare", command, server_env(), folder, port)
    try:
        result = run_wrk(Target("bare FastAPI", reference.url + PATH, {}), args.duration, args.connections,
                         args.threads)  # fmt: skip
        print(
            f"host reference, bare FastAPI async route, 50 pre-serialised contacts ({args.server}): "
            f"{result.line()}",
            flush=True,
        )
    finally:
        reference.stop()


def serve(argv: list[str]) -> int:
    """One server process of the bench (``serve embedded|contacts-sqlite|contacts|gateway --port P``)."""
    parser = argparse.ArgumentParser(prog="python -m bench gateway serve")
    parser.add_argument("what", choices=("embedded", "contacts-sqlite", "contacts", "gateway", "bare"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=SERVERS, default="uvicorn")
    args = parser.parse_args(argv)
    from contacts.api import create_app
    from kernel.logs import configure_logging
    from kernel.settings import Settings
    from system import server
    from system.bootstrap import Mode, build_infrastructure

    settings = Settings(port=args.port)
    configure_logging(settings)
    if args.what == "bare":
        server.run_http(bare_app(), settings.host, settings.port, args.server)
        return 0
    if args.what == "embedded":
        server.serve_embedded(settings, http_server=args.server)
    elif args.what == "contacts-sqlite":
        # The internal contacts app over the embedded SQLite file, served as distributed mode serves it.
        infra = build_infrastructure(settings, Mode.EMBEDDED)
        try:
            parts = server.build_contacts(infra)
            internal = create_app(parts.service, parts.queries)
            server.add_health(internal, {"database": infra.check_database})
            server.run_http(internal, settings.host, settings.port, args.server)
        finally:
            infra.close()
    else:
        server.serve_distributed(settings, args.what, http_server=args.server)
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "serve":
        return serve(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench gateway")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--latency-connections", type=int, default=16, help="also measure the gateway at this many (0: no)"
    )
    parser.add_argument("--server", choices=SERVERS, default="uvicorn")
    parser.add_argument("--mode", choices=("embedded", "distributed", "all"), default="all")
    parser.add_argument(
        "--database-url", default=os.environ.get("CALLMANAGER_TEST_DATABASE_URL", DEFAULT_PG_URL)
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("CALLMANAGER_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    )
    parser.add_argument("--keys", type=int, default=200, help="agents whose keys wrk sends in turn")
    parser.add_argument(
        "--writes",
        type=int,
        default=50,
        help="also measure the gateway while this many note edits a second are saved (0: no)",
    )
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--locks", type=int, default=50)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench gateway needs wrk on the PATH: apt-get install wrk (Debian/Ubuntu package 'wrk')")
        return 2
    print(describe())
    print(
        f"{args.contacts:,} contacts, GET {PATH}, wrk {args.connections} connections, {args.threads} thread"
    )
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as name:
        folder = Path(name)
        host_reference(args, folder)
        if args.mode in ("embedded", "all"):
            embedded(args, folder)
        if args.mode in ("distributed", "all"):
            distributed(args, folder)
    return 0
