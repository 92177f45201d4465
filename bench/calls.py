"""Calls through real desks: ``python -m bench calls latency|desks [options]``.

Everything real on loopback: the server processes, ``callmanager-dialer`` desks (built in this process
from the dialer agent's own ``build_desk``, each with its baresip driver), one headless baresip per desk,
and SIPp as the called party answering ``486 Busy Here`` (a real INVITE, no media to carry).

* ``latency`` (embedded, ``callmanager up``): one desk; ``--calls`` calls one after another. For each,
  the time from sending ``POST /contacts/{id}/call`` to the INVITE arriving at SIPp (SIPp's own message
  log stamps it; the request line carries the dialled number, which names the call). Prints p50, p95,
  p99 and max. Target (issue 17): p95 ≤ 300 ms.
* ``desks`` (distributed: ``serve contacts`` and two ``serve gateway`` on PostgreSQL and Redis):
  ``--desks`` agents, each with a desk connected to the first gateway, each asking the second gateway
  for a call every ``--every`` seconds for ``--seconds``. Afterwards: calls requested, INVITEs SIPp
  received (distinct SIP Call-IDs), ``/metrics/calls`` (made, busy, in progress), and from the event
  store every call's started and ended events (lost: a requested call without exactly one end;
  duplicated: more than one start or end). Target: 0 lost, 0 duplicated, metrics equal to SIPp's count.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import structlog

from bench.machine import describe
from contacts.domain import contact_id_for_phone
from dialer_agent.bootstrap import Desk, build_desk
from dialer_agent.settings import DialerSettings
from dialer_agent.status import DeskStatus
from gateway.users import UserDirectory
from kernel.store import create_engine
from system.migrate import upgrade
from tests.support.servers import Process, clean_env, free_port, start, start_embedded, wait_healthy
from tests.support.softphone import BaresipProcess, free_tcp_port, free_udp_port, start_baresip

ROOT = Path(__file__).resolve().parents[1]
BUSY = ROOT / "tests" / "dialer" / "sipp" / "busy_486.xml"
_STAMP = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$")
_INVITE = re.compile(r"^INVITE sip:(\d+)@")
_CALL_ID = re.compile(r"^Call-ID: (\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class Invite:
    """An INVITE SIPp received: when (its clock, epoch seconds), the dialled number, the SIP Call-ID."""

    at: float
    number: str
    sip_call_id: str


def read_invites(message_log: Path) -> list[Invite]:
    """Every INVITE in SIPp's message log (``-trace_msg``), retransmissions included."""
    invites: list[Invite] = []
    stamp: float | None = None
    number: str | None = None
    for line in message_log.read_text(errors="replace").splitlines():
        if found := _STAMP.match(line):
            stamp, number = datetime.fromisoformat(found.group(1)).timestamp(), None
        elif found := _INVITE.match(line):
            number = found.group(1)
        elif (found := _CALL_ID.match(line)) and number is not None and stamp is not None:
            invites.append(Invite(stamp, number, found.group(1)))
            number = None
    return invites


class Sipp:
    """SIPp answering every call with 486, logging each message with its arrival time."""

    def __init__(self, workdir: Path, calls: int) -> None:
        self.port = free_udp_port()
        self.message_log = workdir / "sipp-messages.log"
        argv = ["sipp", "-sf", str(BUSY), "-i", "127.0.0.1", "-p", str(self.port), "-m", str(calls)]
        argv += ["-nostdin", "-trace_msg", "-message_file", str(self.message_log), "-timeout", "3600s"]
        argv += ["-max_socket", "2000"]
        self.popen = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()


class QuietView:
    """No status line: many desks share this process."""

    def show(self, status: DeskStatus) -> None:
        """Say nothing."""

    def close(self) -> None:
        """Nothing to close."""


@contextmanager
def desk(workdir: Path, server_url: str, key: str, name: str, sipp_port: int) -> Iterator[Desk]:
    """A baresip and a dialer-agent desk of the user of ``key`` that dials SIPp."""
    baresip = _baresip(workdir / f"baresip-{name}")
    ctrl_port = baresip.ctrl_port
    settings = DialerSettings(
        server=server_url,
        desk=name,
        softphone="baresip",
        baresip_ctrl=f"127.0.0.1:{ctrl_port}",
        baresip_dial_template=f"sip:{{number}}@127.0.0.1:{sipp_port}",
        data_dir=workdir / f"outbox-{name}",
    )
    running = build_desk(settings, key, QuietView())
    running.start()
    try:
        yield running
    finally:
        running.stop()
        baresip.stop()


def _baresip(config: Path, attempts: int = 5) -> BaresipProcess:
    """A baresip on fresh ports; again on other ports when one was taken meanwhile (it also binds SIP
    over TCP on the UDP port chosen, and fifty of them open random DNS sockets)."""
    for attempt in range(attempts):
        try:
            return start_baresip(config, sip_port=free_udp_port(), ctrl_port=free_tcp_port())
        except AssertionError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def wait_for_desks(http: httpx.Client, count: int, timeout: float = 60.0) -> None:
    """Until ``count`` desks are connected and ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desks = http.get("/desks").json()
        if sum(d["state"] == "ready" for d in desks) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"only {len(desks)} of {count} desks ready")


def wait_ended(http: httpx.Client, contact_id: str, call_id: str, timeout: float = 30.0) -> str:
    """The outcome of the call once it ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in http.get(f"/contacts/{contact_id}/history").json():
            ended = row["field"] == "call" and row["new"] not in ("requested", "started")
            if ended and row["detail"].get("call_id") == call_id:
                return str(row["new"])
        time.sleep(0.02)
    raise RuntimeError(f"call {call_id} never ended")


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_latency(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-calls-") as folder, ExitStack() as stack:
        workdir = Path(folder)
        server = start_embedded(
            workdir, CALLMANAGER_RATE_LIMIT="100000000/minute", CALLMANAGER_LOG_LEVEL="WARNING"
        )
        stack.callback(server.process.stop)
        key = server.create_user("agente", "Agent")
        sipp = Sipp(workdir, args.warmup + args.calls)
        stack.callback(sipp.stop)
        stack.enter_context(desk(workdir, server.base_url, key, "puesto-1", sipp.port))
        sent: dict[str, float] = {}
        with server.client(key) as http:
            wait_for_desks(http, 1)
            for n in range(args.warmup + args.calls):
                number = f"88{n:06d}"
                contact = http.post("/contacts", json={"phone": number}).json()
                started = time.time()
                placed = http.post(f"/contacts/{contact['id']}/call")
                placed.raise_for_status()
                if n >= args.warmup:
                    sent[number] = started
                wait_ended(http, contact["id"], placed.json()["call_id"])
        time.sleep(0.5)
        arrivals = {i.number: i.at for i in read_invites(sipp.message_log) if i.number in sent}
        lost = set(sent) - set(arrivals)
        if lost:
            print(f"INVITEs missing at SIPp for {len(lost)} calls")
            return 1
        delays = [(arrivals[number] - sent[number]) * 1000 for number in sent]
    print(describe())
    print(
        f"click → INVITE at SIPp, {len(delays)} calls (embedded, 1 desk, baresip): "
        f"p50 {statistics.median(delays):.1f} ms, p95 {percentile(delays, 0.95):.1f} ms, "
        f"p99 {percentile(delays, 0.99):.1f} ms, max {max(delays):.1f} ms"
    )
    return 0


def run_desks(args: argparse.Namespace) -> int:
    database_url = args.database_url or os.environ.get("CALLMANAGER_TEST_DATABASE_URL")
    redis_url = args.redis_url or os.environ.get("CALLMANAGER_TEST_REDIS_URL")
    if not database_url or not redis_url:
        print("desks needs --database-url and --redis-url (or CALLMANAGER_TEST_DATABASE_URL/_REDIS_URL)")
        return 2
    engine = create_engine(database_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE events, contacts, contact_calls RESTART IDENTITY CASCADE"))
    rounds = int(args.seconds / args.every)
    with tempfile.TemporaryDirectory(prefix="bench-desks-") as folder, ExitStack() as stack:
        workdir = Path(folder)
        env = clean_env(
            CALLMANAGER_DATABASE_URL=database_url,
            CALLMANAGER_REDIS_URL=redis_url,
            CALLMANAGER_BUS_PREFIX=f"bench{uuid.uuid4().hex[:8]}",
            CALLMANAGER_CONTACTS_URL=f"http://127.0.0.1:{(contacts_port := free_port())}",
            CALLMANAGER_SECRET_KEY=uuid.uuid4().hex * 2,
            CALLMANAGER_RATE_LIMIT="100000000/minute",
            CALLMANAGER_LOG_LEVEL="WARNING",
            CALLMANAGER_LOG_FORMAT="json",
        )
        processes: list[Process] = []
        stack.callback(lambda: [p.stop() for p in processes])
        processes.append(start("contacts", ["serve", "contacts", "--port", str(contacts_port)], env, workdir))
        wait_healthy(f"http://127.0.0.1:{contacts_port}", processes[-1])
        gateways = []
        for n in (1, 2):
            port = free_port()
            processes.append(start(f"gateway{n}", ["serve", "gateway", "--port", str(port)], env, workdir))
            gateways.append(f"http://127.0.0.1:{port}")
            wait_healthy(gateways[-1], processes[-1])
        directory = UserDirectory(engine)
        keys = [
            directory.create_user(f"agente{n:02d}-{uuid.uuid4().hex[:4]}", "Agent")[1].plaintext
            for n in range(args.desks)
        ]
        sipp = Sipp(workdir, args.desks * rounds)
        stack.callback(sipp.stop)
        for n, key in enumerate(keys):
            stack.enter_context(desk(workdir, gateways[0], key, f"puesto-{n:02d}", sipp.port))
        with httpx.Client(base_url=gateways[1], headers={"X-API-Key": keys[0]}) as probe:
            for key in keys:
                probe.headers["X-API-Key"] = key
                wait_for_desks(probe, 1)
        ti_key = _ti_key(directory)
        phones = [[f"+50688{n:02d}{r:04d}" for r in range(rounds)] for n in range(args.desks)]
        with httpx.Client(base_url=gateways[1], headers={"X-API-Key": ti_key}, timeout=120) as http:
            answer = http.post("/import", json=[{"phone": p} for row in phones for p in row])
            answer.raise_for_status()
        contacts = [[contact_id_for_phone(p) for p in row] for row in phones]
        requested: Counter[str] = Counter()
        refused: Counter[int] = Counter()
        lock = threading.Lock()
        begin = time.monotonic() + 1.0

        def agent(n: int) -> None:
            with httpx.Client(base_url=gateways[1], headers={"X-API-Key": keys[n]}, timeout=30) as http:
                for r in range(rounds):
                    pause = begin + r * args.every + (n / args.desks) * args.every - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    answer = http.post(f"/contacts/{contacts[n][r]}/call")
                    with lock:
                        if answer.status_code == 202:
                            requested[answer.json()["call_id"]] += 1
                        else:
                            refused[answer.status_code] += 1

        threads = [threading.Thread(target=agent, args=(n,)) for n in range(args.desks)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 60
        figures: dict[str, Any] = {}
        with httpx.Client(base_url=gateways[1], headers={"X-API-Key": ti_key}) as http:
            while time.monotonic() < deadline:
                figures = http.get("/metrics/calls").json()["totals"]
                if figures["in_progress"] == 0 and figures["made"] >= len(requested):
                    break
                time.sleep(0.5)
        time.sleep(1.0)
        invites = read_invites(sipp.message_log)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT data->>'call_id', type, count(*) FROM events WHERE type LIKE 'contacts.Call%' "
                    "GROUP BY 1, 2"
                )
            ).all()
    per_call: dict[str, Counter[str]] = {}
    for call_id, kind, count in rows:
        per_call.setdefault(call_id, Counter())[kind] = int(count)
    lost = [c for c in requested if per_call.get(c, Counter())["contacts.CallEnded"] != 1]
    duplicated = [
        c
        for c, kinds in per_call.items()
        if kinds["contacts.CallStarted"] > 1 or kinds["contacts.CallEnded"] > 1
    ]
    sip_calls = len({i.sip_call_id for i in invites})
    print(describe())
    print(
        f"{args.desks} desks on gateway 1, calls asked through gateway 2, one every {args.every:g} s each "
        f"for {elapsed:.0f} s: requested {len(requested)} (refused {dict(refused) or 0}), "
        f"INVITEs at SIPp {sip_calls}, /metrics/calls made {figures.get('made')} "
        f"{figures.get('by_outcome')} in progress {figures.get('in_progress')}, "
        f"lost {len(lost)}, duplicated {len(duplicated)}"
    )
    expected = args.desks * rounds
    ok = (
        not lost
        and not duplicated
        and not refused
        and figures.get("made") == sip_calls == len(requested) == expected
    )
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


def _ti_key(directory: UserDirectory) -> str:
    return directory.create_user(f"ti-{uuid.uuid4().hex[:6]}", "TI")[1].plaintext


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench calls", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    latency = sub.add_parser("latency", help="click → INVITE at SIPp, embedded, one desk")
    latency.add_argument("--calls", type=int, default=200)
    latency.add_argument("--warmup", type=int, default=10)
    desks = sub.add_parser("desks", help="many desks through two gateways (distributed)")
    desks.add_argument("--desks", type=int, default=50)
    desks.add_argument("--every", type=float, default=2.0)
    desks.add_argument("--seconds", type=float, default=120.0)
    desks.add_argument("--database-url")
    desks.add_argument("--redis-url")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return run_latency(args) if args.what == "latency" else run_desks(args)
