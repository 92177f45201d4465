"""A small in-process stand-in for the gateway (FastAPI + python-socketio, served by uvicorn on a thread) that
implements just the HTTP and Socket.IO contract of PRODUCT.md the desktop client uses. The GUI test and
``bench/client.py`` run the real client window against it until they are pointed at the embedded server."""

from __future__ import annotations

import asyncio
import csv
import io
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
import socketio
import uvicorn
from fastapi import FastAPI, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse

from contacts.statuses import DEFAULT_CATALOGUE

# The server's own status catalogue, never a copy of it (a copy drifted once: 12 statuses against 13).
PRIORITY = {status.code: status.priority for status in DEFAULT_CATALOGUE.statuses}
LABELS = {status.code: status.label_es for status in DEFAULT_CATALOGUE.statuses}
AGENT_CAPS = ["contacts.create", "contacts.lock_own", "contacts.read", "contacts.update"]
LEAD_CAPS = [*AGENT_CAPS, "contacts.export", "contacts.force_release", "contacts.import", "metrics.team"]
PM_CAPS = [
    *LEAD_CAPS,
    "campaigns.manage",
    "config.read",
    "contacts.delete",
    "contacts.generate",
    "metrics.all",
]
# As the real gateway: events and locks name users by id; locks also carry the display name.
USERS = {
    "key-agent": {
        "user_id": "0a0a0a0a-0000-4000-8000-00000000000a",
        "username": "ana",
        "display_name": "ana",
        "role": "Agent",
        "team": "ventas",
        "capabilities": AGENT_CAPS,
    },
    "key-lead": {
        "user_id": "0a0a0a0a-0000-4000-8000-00000000000b",
        "username": "lucia",
        "display_name": "lucia",
        "role": "TeamLead",
        "team": "ventas",
        "capabilities": LEAD_CAPS,
    },
    "key-pm": {
        "user_id": "0a0a0a0a-0000-4000-8000-00000000000c",
        "username": "pedro",
        "display_name": "pedro",
        "role": "ProjectManager",
        "team": None,
        "capabilities": PM_CAPS,
    },
}
OTHER_USER_ID = "0a0a0a0a-0000-4000-8000-0000000000ff"
FIRST = [
    "Ana",
    "Luis",
    "María",
    "José",
    "Carla",
    "Jorge",
    "Sofía",
    "Diego",
    "Laura",
    "Andrés",
    "Valeria",
    "Pablo",
]
LAST = ["Mora", "Jiménez", "Rojas", "Vargas", "Solano", "Castro", "Quesada", "Araya", "Chaves", "Calderón"]
NOTES = [
    "",
    "Llamar después de las 3 pm",
    "Interesado en plan pospago",
    "No contesta en la mañana",
    "Pidió información por correo",
    "",
]
OPERATORS = [("kolbi", "8"), ("telefonica", "6"), ("claro", "7")]


def error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    """The contract's error body."""
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


# (username, team, made, answered, no_answer, busy, talk seconds, handling seconds in total)
CALL_FIGURES = [
    ("ana", "ventas", 12, 7, 3, 1, 1830, 2400.0),
    ("beto", "ventas", 9, 4, 4, 0, 960, 1500.0),
    ("carla", "soporte", 5, 4, 1, 0, 1210, 1400.0),
]


def _figures(
    made: int, answered: int, no_answer: int, busy: int, talk: int, handling: float
) -> dict[str, Any]:
    """One row's figures in the gateway's shape (every call here has ended but one)."""
    ended = answered + no_answer + busy
    failed = no_answer + busy
    return {
        "made": made,
        "successful": answered,
        "failed": failed,
        "cancelled": 0,
        "in_progress": made - ended,
        "average_handling_seconds": round(handling / ended, 2) if ended else None,
        "talk_seconds": talk,
        "success_rate": round(answered / (answered + failed), 4) if answered + failed else None,
        "by_outcome": {
            "answered": answered,
            "no_answer": no_answer,
            "busy": busy,
            "failed": 0,
            "cancelled": 0,
        },
        "handling_seconds_total": handling,
        "handled_calls": ended,
    }


def call_figures_for(user: dict[str, Any], since: str | None, until: str | None) -> dict[str, Any]:
    """``GET /metrics/calls`` as the real gateway scopes it: own row, the team's rows, or everyone's."""
    caps = user.get("capabilities", [])
    if "metrics.all" in caps:
        scope, team, rows = "all", None, CALL_FIGURES
    elif "metrics.team" in caps:
        scope, team = "team", user.get("team")
        rows = [row for row in CALL_FIGURES if row[1] == team]
    else:
        scope, team = "own", None
        rows = [row for row in CALL_FIGURES if row[0] == user.get("username")]
    agents = [
        {
            "user_id": f"u-{name}",
            "username": name,
            "display_name": name,
            "team": team_name,
            **_figures(*numbers),
        }
        for name, team_name, *numbers in rows
    ]
    teams = []
    if scope != "own":
        for name in dict.fromkeys(row[1] for row in rows):
            members = [row for row in rows if row[1] == name]
            sums = [sum(row[i] for row in members) for i in range(2, 8)]
            teams.append({"team": name, "agents": len(members), **_figures(*sums)})
    sums = [sum(row[i] for row in rows) for i in range(2, 8)]
    return {
        "scope": scope,
        "team": team,
        "since": since,
        "until": until,
        "agents": agents,
        "teams": teams,
        "totals": _figures(*sums),
    }


def make_contacts(count: int) -> list[dict[str, Any]]:
    """``count`` deterministic contacts with realistic names, statuses and CR mobile numbers."""
    statuses = list(PRIORITY)
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).isoformat()
    rows = []
    for n in range(count):
        operator, lead = OPERATORS[(n // 7) % 3]
        digits = f"{lead}{(n * 7919) % 10_000_000:07d}"
        rows.append(
            {
                "id": str(uuid.UUID(int=n + 1)),
                "phone": digits,
                "phone_e164": f"+506{digits}",
                "phone_national": f"{digits[:4]}-{digits[4:]}",
                "name": f"{FIRST[n % len(FIRST)]} {LAST[(n // 12) % len(LAST)]} {n}",
                "status": statuses[(n // 3) % len(statuses)] if n % 3 else "SIN_GESTIONAR",
                "note": NOTES[n % len(NOTES)],
                "email": f"cliente{n}@correo.cr" if n % 4 == 0 else "",
                "extra": {"Cédula": f"1-{n % 10_000:04d}-{(n * 37) % 10_000:04d}", "Zona": "Norte"}
                if n % 2 == 0
                else {},
                "list": f"lista-{n % 5 + 1}",
                "operator": operator,
                "locked_by": None,
                "locked_by_name": None,
                "locked_until": None,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        )
    return rows


class GatewayDouble:
    """The fake gateway: contacts in memory, events with global positions, replay on reconnect."""

    def __init__(self, contacts: int = 500, *, replay_window: int = 10_000) -> None:
        self.rows = make_contacts(contacts)
        self.by_id = {row["id"]: row for row in self.rows}
        self.desks: dict[tuple[str, str], dict[str, Any]] = {}  # (user_id, desk name) → as GET /desks
        self.calls: dict[str, dict[str, Any]] = {}
        self.hangups: list[tuple[str, str | None]] = []
        self.end_on_hangup = True  # act as the desk: a hang-up ends the call (with the outcome it carried)
        self.sid_users: dict[str, dict[str, Any]] = {}
        self.position = 0
        self.log: list[tuple[int, str, dict[str, Any]]] = []
        self.replay_window = replay_window
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.export_as_job = False  # answer /export with a finished job (as the gateway does past its limit)
        self.connects: list[dict[str, Any]] = []
        self.call_metric_windows: list[tuple[str | None, str | None]] = []
        self._cache: tuple[tuple[str, ...], list[dict[str, Any]]] | None = None
        # The work queue (issue 20): what «Siguiente» hands out, in order, and what the agent recorded.
        self.queue_ids: list[str] = []
        self.queue_asks: list[str] = []  # "socket" or "http", one per request for the next contact
        self.queue_empty_until: str | None = None
        self.dnc: dict[str, str] = {}  # contact id → reason
        self.dispositions: list[tuple[str, dict[str, Any]]] = []
        self.callbacks: dict[str, dict[str, Any]] = {}
        self.campaigns: dict[str, dict[str, Any]] = {
            "general": {
                "id": "general",
                "name": "General",
                "active": True,
                "max_attempts": 6,
                "retry_minutes": {"busy": 30, "no_answer": 120, "failed": 15},
                "closed_statuses": ["COMPLETADA"],
                "teams": [],
                "lists": [],
                "calling_hours": None,
                "archived": False,
                "priority": 100,
                "max_per_day": None,
                "timezone": "America/Costa_Rica",
            }
        }
        self.campaign_progress: dict[str, dict[str, Any]] = {}
        self.campaign_bodies: list[tuple[str | None, dict[str, Any]]] = []  # (id or None for POST, body)
        # The next campaign save is refused as the gateway's 422 would: (field, Spanish message).
        self.refuse_campaign: tuple[str, str] | None = None
        self.sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
        self.app = FastAPI()
        self.asgi = socketio.ASGIApp(self.sio, other_asgi_app=self.app)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.port = 0
        self._routes()
        self._socket_handlers()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- serving ------------------------------------------------------------------------------------

    def start(self) -> GatewayDouble:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            self.asgi,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
        )
        self.server = uvicorn.Server(config)

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self.loop = loop
            loop.run_until_complete(self.server.serve())

        self.thread = threading.Thread(target=serve, name="gateway-double", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("gateway double did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the server loop from another thread and wait for it."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    # -- events -------------------------------------------------------------------------------------

    async def _broadcast(self, name: str, payload: dict[str, Any]) -> None:
        self.position += 1
        payload = {**payload, "position": self.position}
        self.log.append((self.position, name, payload))
        del self.log[: max(0, len(self.log) - self.replay_window)]
        await self.sio.emit(name, payload)

    def emit(self, name: str, payload: dict[str, Any]) -> None:
        """Broadcast one event with the next position (from any thread)."""
        self.run(self._broadcast(name, payload))

    def update(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        """Change a contact as another user would, and broadcast ``contact_updated`` (fields only, as the
        real gateway does)."""
        row = self.by_id[contact_id]
        row.update(fields)
        row["version"] += 1
        self._cache = None
        self.emit(
            "contact_updated",
            {"id": contact_id, "fields": fields, "user": OTHER_USER_ID, "ts": datetime.now(UTC).isoformat()},
        )
        return row

    def lock(self, contact_id: str, user: str, minutes: int = 10) -> None:
        """Lock a contact as ``user`` and broadcast ``contact_locked``."""
        row = self.by_id[contact_id]
        row["locked_by"], row["locked_by_name"] = OTHER_USER_ID, user
        row["locked_until"] = (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()
        self.emit(
            "contact_locked",
            {
                "id": contact_id,
                "user": OTHER_USER_ID,
                "locked_by": OTHER_USER_ID,
                "locked_by_name": user,
                "locked_until": row["locked_until"],
                "duration_minutes": minutes,
            },
        )

    def stream_updates(self, ids: list[str], per_second: int, seconds: float) -> None:
        """Start broadcasting ``per_second`` ``contact_updated`` events over ``seconds`` (returns at once)."""
        total = int(per_second * seconds)

        async def run() -> None:
            loop = asyncio.get_running_loop()
            start = loop.time()
            for n in range(total):
                delay = start + n / per_second - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                contact_id = ids[n % len(ids)]
                row = self.by_id[contact_id]
                row["note"] = f"actualización {n}"
                row["version"] += 1
                await self._broadcast(
                    "contact_updated",
                    {"id": contact_id, "fields": {"note": row["note"]}, "user": OTHER_USER_ID, "ts": ""},
                )

        assert self.loop is not None
        if self.loop is _running_loop():
            self.loop.create_task(run())
        else:
            asyncio.run_coroutine_threadsafe(run(), self.loop)

    # -- desks and calls (the double plays the desk agent) ------------------------------------------

    def _desk_targets(self, owner: dict[str, Any]) -> list[str]:
        """Sockets that see ``owner``'s desk: her own, her team's lead, ProjectManager and TI."""
        targets = []
        for sid, user in self.sid_users.items():
            caps = user.get("capabilities", [])
            if (
                user["user_id"] == owner["user_id"]
                or "metrics.all" in caps
                or ("metrics.team" in caps and user.get("team") == owner.get("team"))
            ):
                targets.append(sid)
        return targets

    async def _desk_state(
        self, key: str, desk: str, state: str, call_id: str = "", contact_id: str = ""
    ) -> None:
        owner = USERS[key]
        row = {
            "user_id": owner["user_id"],
            "username": owner["username"],
            "desk": desk,
            "state": state,
            "call_id": call_id or None,
            "contact_id": contact_id or None,
            "since": datetime.now(UTC).isoformat(),
        }
        if state == "offline":
            self.desks.pop((owner["user_id"], desk), None)
        else:
            self.desks[(owner["user_id"], desk)] = {**row, "team": owner.get("team")}
        for sid in self._desk_targets(owner):
            await self.sio.emit("desk_state", row, to=sid)

    def desk_state(self, key: str, desk: str, state: str, call_id: str = "", contact_id: str = "") -> None:
        """The desk ``desk`` of the user with API key ``key`` reports ``state`` (``offline``: it left)."""
        self.run(self._desk_state(key, desk, state, call_id, contact_id))

    def connect_desk(self, key: str, desk: str = "puesto-1") -> None:
        """A ``callmanager-dialer`` of that user connects, ready."""
        self.desk_state(key, desk, "ready")

    def progress(self, call_id: str, state: str) -> None:
        """The call's desk reports ``dialling``, ``ringing`` or ``in_call``."""
        call = self.calls[call_id]
        if state in ("ringing", "in_call"):
            call["progress"] = True
        self.desk_state(call["key"], call["desk"], state, call_id, call["contact_id"])

    async def _call_notice(self, name: str, call_id: str, **extra: Any) -> None:
        call = self.calls[call_id]
        await self._broadcast(
            name,
            {
                "id": call["contact_id"],
                "call_id": call_id,
                "user": USERS[call["key"]]["user_id"],
                "desk": call["desk"],
                "ts": datetime.now(UTC).isoformat(),
                **extra,
            },
        )

    def start_call(self, call_id: str) -> None:
        """The desk reports ``call_started``; every client gets the notice."""
        self.calls[call_id]["state"] = "started"
        self.run(self._call_notice("call_started", call_id))

    async def _end_call(self, call_id: str, outcome: str, talk_seconds: int) -> None:
        call = self.calls[call_id]
        if call["state"] == "ended":
            return
        call["state"], call["outcome"] = "ended", outcome
        await self._call_notice(
            "call_ended", call_id, outcome=outcome, talk_seconds=talk_seconds, ring_seconds=4
        )
        await self._desk_state(call["key"], call["desk"], "ready")

    def end_call(self, call_id: str, outcome: str = "answered", talk_seconds: int = 0) -> None:
        """The desk reports ``call_ended``; the notice goes to every client and the desk is ready again."""
        self.run(self._end_call(call_id, outcome, talk_seconds))

    def drop_clients(self) -> None:
        """Disconnect every Socket.IO client (they should reconnect and resume)."""

        async def drop() -> None:
            for sid in list(self.sio.manager.get_participants("/", None)):
                await self.sio.disconnect(sid[0] if isinstance(sid, tuple) else sid)

        self.run(drop())

    def _socket_handlers(self) -> None:
        @self.sio.event
        async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None = None) -> bool:
            auth = auth or {}
            if auth.get("api_key") not in USERS:
                raise socketio.exceptions.ConnectionRefusedError("401 llave de API no válida")
            self.connects.append(dict(auth))
            self.sid_users[sid] = USERS[auth["api_key"]]
            last = auth.get("last_position")
            if isinstance(last, int):
                oldest = self.log[0][0] if self.log else self.position + 1
                if last + 1 < oldest and last < self.position:
                    self.sio.start_background_task(
                        self.sio.emit, "resync", {"reason": "too_old", "last_position": last}, to=sid
                    )
                else:
                    missed = [(n, p) for pos, n, p in self.log if pos > last]

                    async def replay() -> None:
                        for name, payload in missed:
                            await self.sio.emit(name, payload, to=sid)

                    self.sio.start_background_task(replay)
            return True

        @self.sio.event
        async def disconnect(sid: str, *_: Any) -> None:
            self.sid_users.pop(sid, None)

        @self.sio.on("queue_next")
        async def queue_next(sid: str, data: Any = None) -> dict[str, Any]:
            user = self.sid_users.get(sid)
            if user is None:
                return {"error": "unauthorized", "message": "Sin sesión.", "until": None}
            self.queue_asks.append("socket")
            status, body = await self._claim(user)
            if status == 200:
                return body
            error_body = body["error"]
            return {
                "error": error_body["code"],
                "message": error_body["message"],
                "until": error_body.get("until"),
            }

    # -- the work queue -----------------------------------------------------------------------------

    async def _claim(self, user: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The next queued contact not locked by someone else, locked to ``user``; or 404 queue_empty."""
        now = datetime.now(UTC)
        while self.queue_ids:
            contact_id = self.queue_ids.pop(0)
            row = self.by_id.get(contact_id)
            if row is None or contact_id in self.dnc:
                continue
            if (
                row["locked_by"]
                and row["locked_by"] != user["user_id"]
                and (row["locked_until"] or "") > now.isoformat()
            ):
                continue
            row["locked_by"], row["locked_by_name"] = user["user_id"], user["display_name"]
            row["locked_until"] = (now + timedelta(minutes=10)).isoformat()
            row["version"] += 1
            await self._broadcast(
                "contact_locked",
                {
                    "id": contact_id,
                    "user": user["user_id"],
                    "locked_by": user["user_id"],
                    "locked_by_name": user["display_name"],
                    "locked_until": row["locked_until"],
                    "duration_minutes": 10,
                },
            )
            attempts = sum(1 for c in self.calls.values() if c["contact_id"] == contact_id)
            reason = "never_tried" if not attempts else "retry_due"
            message = "Nunca se ha llamado." if not attempts else "Terminó su espera."
            return 200, {
                "contact": dict(row),
                "campaign": "General",
                "reason": reason,
                "message": message,
                "attempts": attempts,
            }
        until = self.queue_empty_until
        why = "Todos los contactos están en espera de reintento." if until else "No hay contactos pendientes."
        return 404, {"error": {"code": "queue_empty", "message": why, "until": until}}

    def remind(self, callback_id: str) -> None:
        """Send the ``callback_reminder`` of one callback to every client (the real gateway sends it a few
        minutes before it is due)."""
        callback = self.callbacks[callback_id]
        payload = {
            "callback_id": callback_id,
            "contact_id": callback["contact_id"],
            "contact_name": callback["name"],
            "phone": callback["phone_e164"],
            "due_at": callback["due_at"],
            "scope": callback["scope"],
            "user_id": callback["user_id"],
        }
        self.run(self.sio.emit("callback_reminder", payload))

    # -- HTTP ---------------------------------------------------------------------------------------

    def _campaign_refused(self, campaign_id: str | None, body: dict[str, Any]) -> Response | None:
        """Record a campaign save's body; the gateway's 422 for it when one was asked for."""
        self.campaign_bodies.append((campaign_id, dict(body)))
        if self.refuse_campaign is None:
            return None
        field, message = self.refuse_campaign
        self.refuse_campaign = None
        return error(422, "invalid_input", message, field=field)

    async def _callback_changed(self, callback: dict[str, Any], change: str, user: dict[str, Any]) -> None:
        """``callback_changed`` to every client, as the gateway relays a callback's event."""
        cancelled = change == "cancelled"
        await self._broadcast(
            "callback_changed",
            {
                "id": callback["contact_id"],
                "user": user.get("user_id"),
                "user_name": user.get("username"),
                "ts": datetime.now(UTC).isoformat(),
                "callback_id": callback["callback_id"],
                "change": change,
                "due_at": None if cancelled else callback["due_at"],
                "scope": None if cancelled else callback["scope"],
                "user_id": None if cancelled else callback["user_id"],
            },
        )

    def change_callback(self, callback_id: str, change: str, **fields: Any) -> None:
        """Another user (lucia, the team lead) or the schedule changes a callback: ``rescheduled`` with
        ``due_at``/``scope``, ``shared`` or ``cancelled``; broadcast as the gateway does."""
        callback = self.callbacks[callback_id]
        if change == "cancelled":
            del self.callbacks[callback_id]
        else:
            callback.update(fields, **({"scope": "shared"} if change == "shared" else {}))
        actor = {} if change == "shared" else USERS["key-lead"]
        self.run(self._callback_changed(callback, change, actor))

    def _user(self, request: Request) -> dict[str, str] | None:
        return USERS.get(request.headers.get("x-api-key", ""))

    def _filtered(self, params: dict[str, str]) -> list[dict[str, Any]]:
        key = tuple(params.get(k, "") for k in ("status", "list", "operator", "q", "locked"))
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        status, list_name, operator, q, locked = key
        needle = q.strip().lower()
        digits = "" if any(ch.isalpha() for ch in needle) else "".join(ch for ch in needle if ch.isdigit())
        rows = self.rows
        if status:
            rows = [r for r in rows if r["status"] == status]
        if list_name:
            rows = [r for r in rows if r["list"] == list_name]
        if operator:
            rows = [r for r in rows if r["operator"] == operator]
        if locked:
            rows = [r for r in rows if bool(r["locked_by"]) == (locked == "true")]
        if needle:
            rows = [r for r in rows if needle in r["name"].lower() or (digits and digits in r["phone_e164"])]
        rows = sorted(rows, key=lambda r: PRIORITY.get(r["status"], 99))
        self._cache = (key, rows)
        return rows

    def _routes(self) -> None:
        app = self.app

        @app.get("/health")
        def health() -> dict[str, str]:
            return {"status": "healthy"}

        @app.middleware("http")
        async def auth(request: Request, call_next: Any) -> Response:
            if request.url.path != "/health" and self._user(request) is None:
                return error(401, "unauthorized", "La llave de API no es válida.")
            return await call_next(request)

        @app.get("/me")
        def me(request: Request) -> dict[str, Any]:
            return self._user(request) or {}

        @app.get("/statuses")
        def statuses() -> list[dict[str, Any]]:
            return [{"code": c, "label": LABELS[c], "priority": p} for c, p in PRIORITY.items()]

        @app.get("/contacts")
        def contacts(request: Request) -> Response:
            params = dict(request.query_params)
            rows = self._filtered(params)
            limit = min(int(params.get("limit", "1000")), 1000)
            start = int(params.get("cursor", "0") or 0)
            page = rows[start : start + limit]
            headers = {}
            if start + limit < len(rows):
                query = {k: v for k, v in params.items() if k != "cursor"}
                query["cursor"] = str(start + limit)
                headers["Link"] = f'</contacts?{urlencode(query)}>; rel="next"'
                if start == 0 and not any(params.get(k) for k in ("list", "operator", "q", "locked")):
                    headers["X-Total-Count"] = str(len(rows))  # as the gateway: counted by status
            return Response(orjson.dumps(page), media_type="application/json", headers=headers)

        @app.get("/contacts/{contact_id}")
        def one(contact_id: str) -> Response:
            row = self.by_id.get(contact_id)
            if row is None:
                return error(404, "not_found", "El contacto no existe.")
            return JSONResponse(row, headers={"ETag": f'"{row["version"]}"'})

        @app.put("/contacts/{contact_id}")
        async def put(contact_id: str, request: Request) -> Response:
            row = self.by_id.get(contact_id)
            if row is None:
                return error(404, "not_found", "El contacto no existe.")
            user = self._user(request) or {}
            if row["locked_by"] and row["locked_by"] != user.get("user_id"):
                return error(
                    423,
                    "locked",
                    f"El contacto está bloqueado por {row['locked_by_name']}",
                    locked_by=row["locked_by"],
                    locked_by_name=row["locked_by_name"],
                    locked_until=row["locked_until"],
                )
            match = request.headers.get("if-match", "").strip('"')
            if match and match != str(row["version"]):
                since = [h for h in self.history.get(contact_id, []) if int(h["version"]) > int(match)]
                return error(412, "version_mismatch", "El contacto cambió.", current=dict(row), changes=since)
            fields = {
                k: v for k, v in (await request.json()).items() if k in {"name", "status", "note", "email"}
            }
            old = {k: row[k] for k in fields}
            row.update(fields)
            row["version"] += 1
            self._cache = None
            now = datetime.now(UTC).isoformat()
            self.history.setdefault(contact_id, []).extend(
                {
                    "position": self.position + 1,
                    "version": row["version"],
                    "event_type": "contacts.ContactUpdated",
                    "field": k,
                    "old": old[k],
                    "new": v,
                    "user_id": user.get("user_id"),
                    "username": user.get("username"),
                    "role": user.get("role"),
                    "at": now,
                    "detail": {},
                }
                for k, v in fields.items()
            )
            await self._broadcast(
                "contact_updated",
                {"id": contact_id, "fields": fields, "user": user.get("user_id"), "ts": now},
            )
            return JSONResponse(row, headers={"ETag": f'"{row["version"]}"'})

        @app.delete("/contacts/{contact_id}")
        async def delete(contact_id: str, request: Request) -> Response:
            user = self._user(request) or {}
            if user.get("role") not in {"ProjectManager", "TI"}:
                return error(403, "forbidden", "Su rol no puede eliminar contactos.")
            row = self.by_id.pop(contact_id, None)
            if row is None:
                return error(404, "not_found", "El contacto no existe.")
            self.rows.remove(row)
            self._cache = None
            await self._broadcast("contact_deleted", {"id": contact_id, "user": user.get("user_id")})
            return Response(status_code=204)

        @app.get("/contacts/{contact_id}/history")
        def history(contact_id: str) -> list[dict[str, Any]]:
            return self.history.get(contact_id, [])

        @app.post("/contacts/{contact_id}/lock")
        async def lock(contact_id: str, request: Request) -> Response:
            row = self.by_id[contact_id]
            who = self._user(request) or {}
            user, name = who.get("user_id"), who.get("display_name")
            until = row["locked_until"]
            if (
                row["locked_by"]
                and row["locked_by"] != user
                and until
                and until > datetime.now(UTC).isoformat()
            ):
                return error(
                    423,
                    "locked",
                    f"El contacto está bloqueado por {row['locked_by_name']}",
                    locked_by=row["locked_by"],
                    locked_by_name=row["locked_by_name"],
                    locked_until=until,
                )
            minutes = int((await request.json()).get("duration_minutes", 10))
            row["locked_by"], row["locked_by_name"] = user, name
            row["locked_until"] = (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()
            await self._broadcast(
                "contact_locked",
                {
                    "id": contact_id,
                    "user": user,
                    "locked_by": user,
                    "locked_by_name": name,
                    "locked_until": row["locked_until"],
                    "duration_minutes": minutes,
                },
            )
            return JSONResponse(row, headers={"ETag": f'"{row["version"]}"'})

        @app.delete("/contacts/{contact_id}/lock")
        async def unlock(contact_id: str, request: Request) -> Response:
            row = self.by_id[contact_id]
            row["locked_by"], row["locked_by_name"], row["locked_until"] = None, None, None
            user = (self._user(request) or {}).get("user_id")
            await self._broadcast(
                "contact_unlocked",
                {
                    "id": contact_id,
                    "user": user,
                    "unlocked_by": user,
                    "user_name": (self._user(request) or {}).get("username"),
                    "expired": False,
                },
            )
            return JSONResponse(row)

        @app.post("/contacts/{contact_id}/call")
        async def call(contact_id: str, request: Request) -> Response:
            key = request.headers.get("x-api-key", "")
            user = USERS[key]
            row = self.by_id.get(contact_id)
            if row is None:
                return error(404, "not_found", "El contacto no existe.")
            if contact_id in self.dnc:
                return error(
                    409,
                    "dnc",
                    f"El número {row['phone_e164']} está en la lista de no llamar ({self.dnc[contact_id]})",
                    phone=row["phone_e164"],
                )
            mine = [desk for (owner, desk) in self.desks if owner == user["user_id"]]
            if not mine:
                return error(409, "no_desk", "No hay ningún agente de puesto conectado para su usuario.")
            until = row["locked_until"]
            if (
                row["locked_by"]
                and row["locked_by"] != user["user_id"]
                and (not until or until > datetime.now(UTC).isoformat())
            ):
                return error(
                    423,
                    "locked",
                    f"El contacto está bloqueado por {row['locked_by_name']}",
                    locked_by=row["locked_by"],
                    locked_by_name=row["locked_by_name"],
                    locked_until=until,
                )
            if row["locked_by"] != user["user_id"]:
                row["locked_by"], row["locked_by_name"] = user["user_id"], user["display_name"]
                row["locked_until"] = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
                await self._broadcast(
                    "contact_locked",
                    {
                        "id": contact_id,
                        "user": user["user_id"],
                        "locked_by": user["user_id"],
                        "locked_by_name": user["display_name"],
                        "locked_until": row["locked_until"],
                        "duration_minutes": 10,
                    },
                )
            call_id = uuid.uuid4().hex
            desk = mine[0]
            self.calls[call_id] = {
                "key": key,
                "contact_id": contact_id,
                "desk": desk,
                "state": "requested",
                "progress": False,
            }
            await self._call_notice("call_requested", call_id)
            dial = row["phone_e164"].removeprefix("+506")
            return JSONResponse(
                {
                    "call_id": call_id,
                    "contact_id": contact_id,
                    "dial": dial,
                    "desk": desk,
                    "desk_connected": True,
                },
                status_code=202,
            )

        @app.post("/calls/{call_id}/hangup")
        async def hangup(call_id: str, request: Request) -> Response:
            key = request.headers.get("x-api-key", "")
            call = self.calls.get(call_id)
            if call is None or call["key"] != key:
                return error(404, "call_not_found", "Esa llamada no existe o no es suya.")
            if call["state"] == "ended":
                return error(409, "call_not_open", "La llamada ya terminó.")
            body = await request.body()
            outcome = orjson.loads(body).get("outcome") if body else None
            self.hangups.append((call_id, outcome))
            if self.end_on_hangup:
                ended = "answered" if call["progress"] else outcome or "cancelled"
                self.sio.start_background_task(
                    self._end_call, call_id, ended, 42 if ended == "answered" else 0
                )
            return Response(status_code=202)

        @app.get("/desks")
        def desks(request: Request) -> list[dict[str, Any]]:
            user = self._user(request) or {}
            caps = user.get("capabilities", [])
            rows = list(self.desks.values())
            if "metrics.all" not in caps:
                if "metrics.team" in caps:
                    rows = [r for r in rows if r["team"] == user.get("team")]
                else:
                    rows = [r for r in rows if r["user_id"] == user.get("user_id")]
            return [{k: v for k, v in r.items() if k != "team"} for r in rows]

        @app.post("/import")
        async def start_import(file: UploadFile, request: Request) -> Response:
            form = await request.form()
            dry_run = str(form.get("dry_run", "false")).lower() == "true"
            text = (await file.read()).decode("utf-8-sig")
            rows = list(csv.reader(io.StringIO(text)))[1:]
            errors = [
                {"row": i + 2, "message": "número no válido: demasiado corto"}
                for i, r in enumerate(rows)
                if len("".join(ch for ch in r[0] if ch.isdigit())) < 8
            ]
            job_id = uuid.uuid4().hex
            report = {
                "total": len(rows),
                "inserted": len(rows) - len(errors),
                "updated": 0,
                "duplicates_merged": 0,
                "errors": errors,
            }
            job = {
                "id": job_id,
                "kind": "import",
                "state": "running",
                "progress": {"done": 0, "total": len(rows)},
                "report": None,
            }
            self.jobs[job_id] = job

            async def work() -> None:
                steps = 1 if dry_run else 5
                for step in range(1, steps + 1):
                    await asyncio.sleep(0.15)
                    job["progress"] = {"done": len(rows) * step // steps, "total": len(rows)}
                    if step < steps:
                        await self._broadcast(
                            "job_progress", {"id": job_id, "state": "running", "progress": job["progress"]}
                        )
                job["state"], job["report"] = "finished", report
                await self._broadcast(
                    "job_progress",
                    {"id": job_id, "state": "finished", "progress": job["progress"], "report": report},
                )

            self.sio.start_background_task(work)
            return JSONResponse(job, status_code=202)

        @app.get("/jobs/{job_id}")
        def job(job_id: str) -> Response:
            return JSONResponse({k: v for k, v in self.jobs[job_id].items() if k != "file"})

        @app.get("/jobs/{job_id}/download")
        def download(job_id: str) -> Response:
            return Response(self.jobs[job_id]["file"], media_type="text/csv")

        @app.get("/export")
        def export(request: Request) -> Response:
            rows = self._filtered(dict(request.query_params))

            def body() -> Iterator[bytes]:
                yield b"id,phone,name,status,note\n"
                for row in rows:
                    line = ",".join(str(row[k]) for k in ("id", "phone_e164", "name", "status", "note"))
                    yield (line + "\n").encode()

            if self.export_as_job:
                job_id = uuid.uuid4().hex
                self.jobs[job_id] = {
                    "id": job_id,
                    "kind": "export",
                    "state": "finished",
                    "progress": {"done": len(rows), "total": len(rows)},
                    "report": {"rows": len(rows)},
                    "file": b"".join(body()),
                }
                job = {k: v for k, v in self.jobs[job_id].items() if k != "file"}
                return JSONResponse({**job, "download": f"/jobs/{job_id}/download"}, status_code=202)

            return StreamingResponse(
                body(),
                media_type="text/csv",
                headers={"Content-Disposition": "attachment; filename=contactos.csv"},
            )

        @app.post("/api/generate_contacts")
        async def generate(request: Request) -> Response:
            data = await request.json()
            amount = int(data.get("amount", 0))
            if not 1 <= amount <= 1000:
                return error(422, "invalid", "La cantidad debe estar entre 1 y 1000.")
            phones = []
            for i in range(amount):
                operator, lead = OPERATORS[0 if i % 20 < 8 else 1 if i % 20 < 15 else 2]
                number = f"{lead}{(i * 104729) % 10_000_000:07d}"
                phones.append(
                    {"number": number, "operator": operator, "formatted": f"{number[:4]}-{number[4:]}"}
                )
            save = bool(data.get("save"))
            return JSONResponse(
                {"success": True, "count": amount, "saved": amount if save else 0, "phones": phones}
            )

        @app.get("/metrics")
        def metrics(request: Request) -> Response:
            if "metrics.all" not in (self._user(request) or {}).get("capabilities", []):
                return error(403, "forbidden", "Su rol no permite ver todas las métricas.")
            by_status: dict[str, int] = {}
            for row in self.rows:
                by_status[row["status"]] = by_status.get(row["status"], 0) + 1
            return JSONResponse(
                {
                    "calls": {
                        "made": 412,
                        "successful": 268,
                        "failed": 144,
                        "success_rate": 0.65,
                        "average_handling_seconds": 184.2,
                    },
                    "contacts": {"total": len(self.rows), "by_status": by_status},
                    "per_agent": [
                        {"agent": "ana", "calls": 150, "successful": 101, "talk_seconds": 16320},
                        {"agent": "beto", "calls": 138, "successful": 85, "talk_seconds": 14105},
                        {"agent": "carla", "calls": 124, "successful": 82, "talk_seconds": 15002},
                    ],
                }
            )

        @app.get("/metrics/calls")
        def call_metrics(request: Request, since: str | None = None, until: str | None = None) -> Response:
            self.call_metric_windows.append((since, until))
            return JSONResponse(call_figures_for(self._user(request) or {}, since, until))

        @app.post("/_test/stream_updates")
        async def stream(request: Request) -> dict[str, int]:
            data = await request.json()
            self.stream_updates(list(data["ids"]), int(data["per_second"]), float(data["seconds"]))
            return {"queued": int(data["per_second"] * data["seconds"])}

        @app.post("/queue/next")
        async def queue_next(request: Request) -> Response:
            self.queue_asks.append("http")
            status, body = await self._claim(self._user(request) or {})
            return JSONResponse(body, status_code=status)

        @app.post("/contacts/{contact_id}/disposition")
        async def disposition(contact_id: str, request: Request) -> Response:
            user = self._user(request) or {}
            row = self.by_id.get(contact_id)
            if row is None:
                return error(404, "not_found", "El contacto no existe.")
            body = await request.json()
            if not isinstance(body, dict) or not body.get("outcome"):
                return error(422, "invalid_input", "Datos de entrada no válidos.")
            if row["locked_by"] and row["locked_by"] != user["user_id"]:
                return error(423, "locked", "Otro usuario tiene el contacto.", locked_by=row["locked_by"])
            status = body.get("status")
            if status and status not in PRIORITY:
                return error(422, "invalid_status", f"Estado desconocido: {status}")
            self.dispositions.append((contact_id, body))
            if status:
                row["status"] = status
            if body.get("note"):
                row["note"] = f"{row['note']}\n{body['note']}".strip()
            row["locked_by"], row["locked_by_name"], row["locked_until"] = None, None, None
            row["version"] += 1
            self._cache = None
            if body.get("callback_at"):
                callback_id = uuid.uuid4().hex[:12]
                self.callbacks[callback_id] = {
                    "callback_id": callback_id,
                    "contact_id": contact_id,
                    "phone_e164": row["phone_e164"],
                    "name": row["name"],
                    "user_id": user["user_id"],
                    "username": user["username"],
                    "scope": body.get("callback_scope", "personal"),
                    "due_at": datetime.fromisoformat(body["callback_at"]).astimezone(UTC).isoformat(),
                    "set_at": datetime.now(UTC).isoformat(),
                }
            await self._broadcast(
                "contact_updated",
                {
                    "id": contact_id,
                    "fields": {"status": row["status"], "note": row["note"]},
                    "user": user["user_id"],
                },
            )
            return JSONResponse(row, headers={"ETag": f'"{row["version"]}"'})

        @app.get("/contacts/{contact_id}/eligibility")
        def eligibility(contact_id: str) -> Response:
            if contact_id not in self.by_id:
                return error(404, "not_found", "El contacto no existe.")
            reasons = []
            if contact_id in self.dnc:
                reasons.append(
                    {
                        "reason": "dnc",
                        "message": f"En la lista de no llamar: {self.dnc[contact_id]}",
                        "until": None,
                    }
                )
            return JSONResponse(
                {
                    "contact_id": contact_id,
                    "campaign": "General",
                    "eligible": not reasons,
                    "reasons": reasons
                    or [{"reason": "never_tried", "message": "Nunca llamado.", "until": None}],
                    "attempts": 0,
                    "checked_at": datetime.now(UTC).isoformat(),
                }
            )

        @app.get("/callbacks")
        def callbacks(request: Request, mine: bool = True, due_before: str | None = None) -> Response:
            user = self._user(request) or {}
            rows = [
                c
                for c in self.callbacks.values()
                if c["scope"] == "shared" or c["user_id"] == user["user_id"] or not mine
            ]
            if due_before is not None:
                limit = datetime.fromisoformat(due_before)
                rows = [c for c in rows if datetime.fromisoformat(c["due_at"]) <= limit]
            return JSONResponse(sorted(rows, key=lambda c: c["due_at"]))

        @app.patch("/callbacks/{callback_id}")
        async def reschedule(callback_id: str, request: Request) -> Response:
            callback = self.callbacks.get(callback_id)
            if callback is None:
                return error(404, "callback_not_found", "La rellamada no existe.")
            body = await request.json()
            if body.get("due_at"):
                callback["due_at"] = datetime.fromisoformat(body["due_at"]).astimezone(UTC).isoformat()
            if body.get("scope") in ("personal", "shared"):
                callback["scope"] = body["scope"]
            await self._callback_changed(callback, "rescheduled", self._user(request) or {})
            return JSONResponse(callback)

        @app.delete("/callbacks/{callback_id}")
        async def cancel_callback(callback_id: str, request: Request) -> Response:
            callback = self.callbacks.pop(callback_id, None)
            if callback is None:
                return error(404, "callback_not_found", "La rellamada no existe.")
            await self._callback_changed(callback, "cancelled", self._user(request) or {})
            return Response(status_code=204)

        @app.get("/campaigns")
        def campaigns() -> list[dict[str, Any]]:
            return sorted(self.campaigns.values(), key=lambda c: c["name"])

        @app.post("/campaigns")
        async def create_campaign(request: Request) -> Response:
            if "campaigns.manage" not in (self._user(request) or {}).get("capabilities", []):
                return error(403, "forbidden", "Su rol no permite esta acción.")
            body = await request.json()
            refused = self._campaign_refused(None, body)
            if refused is not None:
                return refused
            campaign_id = str(body["name"]).lower().replace(" ", "-")
            if campaign_id in self.campaigns:
                return error(409, "campaign_exists", f"Ya existe la campaña {body['name']}")
            self.campaigns[campaign_id] = {**self.campaigns["general"], **body, "id": campaign_id}
            return JSONResponse(self.campaigns[campaign_id], status_code=201)

        @app.patch("/campaigns/{campaign_id}")
        async def update_campaign(campaign_id: str, request: Request) -> Response:
            if "campaigns.manage" not in (self._user(request) or {}).get("capabilities", []):
                return error(403, "forbidden", "Su rol no permite esta acción.")
            campaign = self.campaigns.get(campaign_id)
            if campaign is None:
                return error(404, "campaign_not_found", f"La campaña {campaign_id} no existe")
            body = await request.json()
            refused = self._campaign_refused(campaign_id, body)
            if refused is not None:
                return refused
            campaign.update(body)  # only the rules sent change, each replaced whole (retry_minutes too)
            if campaign.get("archived"):
                campaign["active"] = False
            return JSONResponse(campaign)

        @app.get("/campaigns/{campaign_id}/progress")
        def progress(campaign_id: str) -> Response:
            if campaign_id not in self.campaign_progress:
                return error(404, "campaign_not_found", f"La campaña {campaign_id} no existe")
            return JSONResponse({"campaign": campaign_id, **self.campaign_progress[campaign_id]})

        @app.get("/stats")
        def stats(request: Request) -> Response:
            if "metrics.team" not in (self._user(request) or {}).get("capabilities", []):
                return error(403, "forbidden", "Su rol no permite ver métricas.")
            by_status: dict[str, int] = {}
            for row in self.rows:
                by_status[row["status"]] = by_status.get(row["status"], 0) + 1
            locked = sum(1 for row in self.rows if row["locked_by"])
            return JSONResponse({"total": len(self.rows), "locked": locked, "by_status": by_status})

        @app.get("/config")
        def config() -> dict[str, Any]:
            return {
                "generator_weights": {"kolbi": 40, "telefonica": 35, "claro": 25},
                "lock_default_minutes": 10,
            }


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def serve_forever(argv: list[str]) -> None:
    """``python gateway_double.py [contacts]``: serve in this process, print the URL, run until killed."""
    double = GatewayDouble(contacts=int(argv[0]) if argv else 100_000).start()
    print(double.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    import sys

    serve_forever(sys.argv[1:])
