"""Socket.IO on the gateway's port: live notices out, lock/unlock/update in, desks for dialling.

* A connection needs a valid API key (``auth={"api_key": ...}`` or the ``X-API-Key`` header); identity
  comes from the key only.
* Every stored contact event reaches connected clients as a notice (:mod:`gateway.notices`) with its
  global ``position``. A client that reconnects passes ``last_position`` in its auth and receives what it
  missed, or ``resync`` when that is no longer available (then it reloads).
* ``lock_contact``, ``unlock_contact`` and ``update_contact`` go through the same contacts client, role
  checks and rules as HTTP; a refused lock answers ``lock_denied`` to the requester only. ``update_contact``
  takes the ``version`` read; a stale one is answered like HTTP's 412 (``current`` and ``changes``).
* ``queue_next`` ``{campaign?}`` is ``POST /queue/next`` over the socket: the same role check and queue
  client; the ack is the claim's JSON, or ``{"error": code, "message", "until"}`` (``queue_empty`` says why
  and when the first contact in wait comes back).
* A desk's dialer agent connects with ``auth={"api_key": ..., "desk": "<name>"}``: it joins its user's
  desk room (dial and hang-up requests for that user go there), its presence and state go to the desk
  registry (:mod:`gateway.desks`), and only such a connection may report call progress, for calls the
  gateway issued to that desk (``docs/CALLS.md``). Refused reports are audited.
* A ``CallbackReminded`` event (the contacts scheduler, ``CALLMANAGER_CALLBACK_REMINDER_MINUTES`` before a
  callback is due, once per callback) goes out as ``callback_reminder`` with :data:`REMINDER_KEYS`: to the
  owning agent's connections for a personal callback; for a shared one, to the connections of the teams
  the event names (those working the contact's campaigns: every connection joins its team's room), or to
  every connected client when it names none (a campaign every team works, such as ``General``).
* With several gateway processes, an ``AsyncRedisManager`` passed in shares fan-out between them.

Order: every emission goes through one outbox drained by one task, in the order it was queued (clients
drop an event whose position is not above the last they saw, so one sent out of order would be lost).
Emitting each batch from its own task let a later batch overtake an earlier one at the first ``await``
(seen as 1-3 % of live updates lost at 100 updates/s). A reconnecting client joins the live room only
when its replay has been sent, from the same outbox, and (embedded) its replay stops where the live
room's queued notices begin, so it gets each notice once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

import orjson
import socketio
import structlog
from starlette.types import ASGIApp

from contacts.asks import GetContact
from contacts.client import ContactsClient, ContactsUnavailable
from contacts.commands import (
    SYSTEM_CALLER,
    CallOutcome,
    ClaimNextContact,
    LockContact,
    RecordCallEnded,
    RecordCallStarted,
    ReleaseLock,
    UpdateContact,
)
from contacts.errors import CallNotOpen, ContactError, Locked, QueueEmpty, VersionMismatch
from contacts.events import CallbackReminded
from gateway.auth import ApiError, Call, Gate
from gateway.callers import caller_of, run_command
from gateway.conflicts import stale_write_body
from gateway.desks import PRESENCE_SECONDS, Desk, DeskRegistry, DeskState, MemoryDeskRegistry
from gateway.errors import domain_error_response
from gateway.metrics import GatewayMetrics
from gateway.notices import Notice, notices_for
from gateway.roles import Capability, Principal
from gateway.users import UserNames
from kernel.bus.port import Bus
from kernel.envelope import Envelope

log = structlog.get_logger(__name__)

ROOM_ALL = "contacts"
ROOM_ALL_DESKS = "desks"
"""ProjectManagers and TI: every desk's state."""
DESK_NAME_MAX = 100
CAMPAIGN_ID = re.compile(r"^[a-z0-9-]{1,100}$")
"""A campaign id as ``POST /queue/next?campaign=`` accepts it."""
LONGEST_CALL_SECONDS = 24 * 3600
# Batches of up to this many notices carry each contact's current row (one read each).
WITH_CONTACT_UP_TO = 50
_CARRY_CONTACT = frozenset({"contact_updated", "contact_locked", "contact_unlocked"})
REMINDER_KEYS = ("callback_id", "contact_id", "contact_name", "phone", "due_at", "scope", "user_id")
"""The keys of a ``callback_reminder`` (the desktop client reads exactly these)."""


def user_room(user_id: str) -> str:
    """The room of every connection of one user (job progress goes there)."""
    return f"user:{user_id}"


def team_room(team: str) -> str:
    """The room of every connection of one team's users (shared callbacks' reminders go there)."""
    return f"team:{team}"


def desk_room(user_id: str) -> str:
    """The room of one user's desk agents."""
    return f"desk:{user_id}"


def team_desks_room(team: str) -> str:
    """The room of a team's leads: the state of that team's desks."""
    return f"desks:{team}"


class ReplaySource(Protocol):
    """Stored events after a position, or None when they are no longer all available."""

    def events_after(self, position: int, limit: int) -> list[Envelope] | None: ...


class BusReplay:
    """Replays from the bus topic the relay publishes by position (it keeps ``bus_maxlen`` messages)."""

    def __init__(self, bus: Bus, topic: str) -> None:
        self._bus = bus
        self._topic = topic

    def events_after(self, position: int, limit: int) -> list[Envelope] | None:
        """Up to ``limit`` events after ``position``; None if more are missing than that or were trimmed."""
        oldest = self._bus.read_range(self._topic, 0, 1)
        if oldest and position + 1 < oldest[0][0] and position > 0:
            return None
        items = self._bus.read_range(self._topic, position, limit + 1)
        if len(items) > limit:
            return None
        return [Envelope.from_json(body) for _, body in items]


class LiveHub:
    """The Socket.IO server of one gateway process."""

    def __init__(
        self,
        *,
        gate: Gate,
        contacts: ContactsClient,
        replay: ReplaySource,
        metrics: GatewayMetrics,
        client_manager: socketio.AsyncManager | None = None,
        max_replay: int = 5000,
        names: UserNames | None = None,
        desks: DeskRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=client_manager,
            cors_allowed_origins=[],
            logger=False,
            engineio_logger=False,
        )
        self._gate = gate
        self._contacts = contacts
        self._replay = replay
        self._metrics = metrics
        self._max_replay = max_replay
        self._names = names
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[Callable[[], Awaitable[None]]] | None = None
        self._sender: asyncio.Task[None] | None = None
        self.desks: DeskRegistry = desks if desks is not None else MemoryDeskRegistry()
        self._clock = clock
        self._own_desks: set[str] = set()
        self._renewer: asyncio.Task[None] | None = None
        # The highest event position handed to the outbox (read and written on the loop only). When this
        # process emits every notice itself (no client manager: embedded mode), a reconnecting client's
        # replay stops there, and the live room brings the rest: each notice reaches it exactly once.
        self._queued_through = 0
        self._sole_emitter = client_manager is None
        self._register()

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """``app`` with Socket.IO served beside it at ``/socket.io``."""
        wrapped: ASGIApp = socketio.ASGIApp(self.sio, other_asgi_app=app)
        return wrapped

    async def start(self) -> None:
        """Remember the server's event loop and start the task that sends the outbox in order."""
        self._outbox = asyncio.Queue()
        self._sender = asyncio.create_task(self._send_in_order(self._outbox), name="live-outbox")
        self._renewer = asyncio.create_task(self._renew_desks(), name="live-desks")
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        """Stop accepting notices and stop the sender (what is still queued is dropped)."""
        self._loop = None
        self._outbox = None
        for task in (self._sender, self._renewer):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._sender = self._renewer = None
        for sid in list(self._own_desks):
            await asyncio.to_thread(self.desks.left, sid)
        self._own_desks.clear()

    async def _renew_desks(self) -> None:
        """Keep this process's desks present in the shared registry."""
        while True:
            await asyncio.sleep(PRESENCE_SECONDS / 3)
            try:
                await asyncio.to_thread(self.desks.renew, list(self._own_desks))
            except Exception:  # the next round tries again; presence lapses only after PRESENCE_SECONDS
                log.exception("live.desk_renew_failed")

    def _queue(self, send: Callable[[], Awaitable[None]]) -> None:
        """Queue ``send`` behind everything queued before it; from any thread."""
        loop, outbox = self._loop, self._outbox
        if loop is None or outbox is None:
            return
        loop.call_soon_threadsafe(outbox.put_nowait, send)

    @staticmethod
    async def _send_in_order(outbox: asyncio.Queue[Callable[[], Awaitable[None]]]) -> None:
        while True:
            send = await outbox.get()
            try:
                await send()
            except Exception:  # one failed emission must not stop the ones after it
                log.exception("live.emit_failed")

    def publish(self, events: Sequence[Envelope]) -> None:
        """Relay stored events to connected clients; safe to call from any thread."""
        loop = self._loop
        if loop is None or not events:
            return
        reminders = [(reminder_of(e), reminder_rooms(e)) for e in events if e.type == CallbackReminded.TYPE]
        if reminders:
            self._queue(partial(self._emit_reminders, reminders))
        notices = self._with_names(notices_for(events))
        if len(notices) <= WITH_CONTACT_UP_TO:
            notices = [self._with_contact(n) for n in notices]
        send = partial(self._emit_all, notices) if notices else None
        loop.call_soon_threadsafe(self._enqueue_live, send, max(e.position for e in events))

    def _enqueue_live(self, send: Callable[[], Awaitable[None]] | None, through: int) -> None:
        """On the loop: queue a batch's notices and note how far the queued events go."""
        self._queued_through = max(self._queued_through, through)
        if send is not None and self._outbox is not None:
            self._outbox.put_nowait(send)

    def _with_names(self, notices: list[Notice]) -> list[Notice]:
        """Notices carrying ``user_name`` beside the acting ``user`` id."""
        if self._names is None:
            return notices
        try:
            known = self._names.lookup(str(n.payload.get("user")) for n in notices)
        except Exception:  # names are a courtesy: a notice without one still goes out
            log.warning("live.user_names_unavailable")
            return notices
        return [
            Notice(n.name, {**n.payload, "user_name": known.get(str(n.payload.get("user")))}, n.contact_id)
            for n in notices
        ]

    def _with_contact(self, notice: Notice) -> Notice:
        """The notice carrying the contact as it is now (PRODUCT.md's ``contact`` field), when it exists."""
        if notice.name not in _CARRY_CONTACT or notice.contact_id is None:
            return notice
        try:
            contact = self._contacts.ask(GetContact(contact_id=notice.contact_id), SYSTEM_CALLER)
        except ContactError:
            return notice
        return Notice(notice.name, {**notice.payload, "contact": contact.to_data()}, notice.contact_id)

    def publish_jobs(self, messages: Sequence[Mapping[str, Any]]) -> None:
        """Relay ``job_progress`` messages to the connections of each job's creator; any thread."""
        if messages:
            self._queue(partial(self._emit_jobs, list(messages)))

    async def _emit_reminders(self, reminders: Sequence[tuple[dict[str, Any], list[str]]]) -> None:
        for reminder, rooms in reminders:
            if rooms:
                await self.sio.emit("callback_reminder", reminder, room=rooms)

    async def _emit_jobs(self, messages: Sequence[Mapping[str, Any]]) -> None:
        for message in messages:
            await self.sio.emit("job_progress", dict(message), room=user_room(str(message.get("created_by"))))

    async def desks_of(self, user_id: str) -> list[Desk]:
        """The user's connected desks (through any gateway process), the most recent first."""
        return await asyncio.to_thread(self.desks.of_user, user_id)

    async def dial(self, user_id: str, payload: Mapping[str, Any]) -> None:
        """Send a dial request to the desk agents of ``user_id`` (the payload names the desk it is for)."""
        await self.sio.emit("dial", dict(payload), room=desk_room(user_id))

    async def hangup(self, user_id: str, payload: Mapping[str, Any]) -> None:
        """Ask the desk agents of ``user_id`` to end a call."""
        await self.sio.emit("hangup", dict(payload), room=desk_room(user_id))

    async def _announce_desk(self, desk: Desk, state: DeskState | None = None) -> None:
        """Tell the desk's user, their team's leads and the managers what the desk is doing."""
        payload = desk.to_data() if state is None else {**desk.to_data(), "state": state.value}
        rooms = [user_room(desk.user_id), ROOM_ALL_DESKS]
        if desk.team:
            rooms.append(team_desks_room(desk.team))
        await self.sio.emit("desk_state", payload, room=rooms)

    async def _emit_all(self, notices: Sequence[Notice]) -> None:
        for notice in notices:
            await self.sio.emit(notice.name, notice.payload, room=ROOM_ALL)

    def _register(self) -> None:
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("lock_contact", self._guarded("lock_contact", Capability.LOCK_OWN, self._lock))
        self.sio.on("unlock_contact", self._guarded("unlock_contact", Capability.LOCK_OWN, self._unlock))
        self.sio.on(
            "update_contact", self._guarded("update_contact", Capability.UPDATE_CONTACT, self._update)
        )
        self.sio.on("call_started", self._guarded("call_started", Capability.LOCK_OWN, self._call_started))
        self.sio.on("call_ended", self._guarded("call_ended", Capability.LOCK_OWN, self._call_ended))
        self.sio.on("desk_state", self._desk_state)
        self.sio.on("queue_next", self._queue_next)

    async def _on_connect(self, sid: str, environ: Mapping[str, Any], auth: Any = None) -> None:
        auth = auth if isinstance(auth, dict) else {}
        presented = auth.get("api_key") or environ.get("HTTP_X_API_KEY")
        bearer = str(environ.get("HTTP_AUTHORIZATION", ""))
        if not presented and bearer.lower().startswith("bearer "):
            presented = bearer[7:].strip()
        call = Call("SOCKET", "/socket.io/connect", environ.get("REMOTE_ADDR"))
        try:
            principal = await asyncio.to_thread(self._gate.identify, presented, call)
            await asyncio.to_thread(self._gate.admit, principal, call)
        except ApiError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                {"code": exc.code, "message": exc.message}
            ) from None
        desk = _desk_name(auth.get("desk"))
        await self.sio.save_session(sid, {"principal": principal, "desk": desk})
        self._metrics.sockets.inc()
        if desk:
            # A desk hears only its dial and hang-up requests, never the contacts' notices.
            await self._desk_joined(sid, principal, desk)
            log.info("socket.connected", username=principal.username, desk=desk)
            return
        await self.sio.enter_room(sid, user_room(str(principal.user_id)))
        if principal.team:
            await self.sio.enter_room(sid, team_room(principal.team))
        if principal.can(Capability.ALL_METRICS):
            await self.sio.enter_room(sid, ROOM_ALL_DESKS)
        elif principal.can(Capability.TEAM_METRICS) and principal.team:
            await self.sio.enter_room(sid, team_desks_room(principal.team))
        last = auth.get("last_position")
        if isinstance(last, int) and not isinstance(last, bool) and last >= 0 and self._outbox is not None:
            # Live notices queued before this reach the client through the replay, not before it.
            through = self._queued_through if self._sole_emitter else None
            self._outbox.put_nowait(partial(self._replay_then_join, sid, last, through))
        else:
            await self.sio.enter_room(sid, ROOM_ALL)
        log.info("socket.connected", username=principal.username)

    async def _on_disconnect(self, sid: str, *_: Any) -> None:
        if sid in self._own_desks:
            self._own_desks.discard(sid)
            desk = await asyncio.to_thread(self.desks.left, sid)
            if desk is not None:
                await self._announce_desk(desk, DeskState.OFFLINE)
                log.info("desk.disconnected", username=desk.username, desk=desk.desk)
        self._metrics.sockets.dec()

    async def _desk_joined(self, sid: str, principal: Principal, name: str) -> None:
        user_id = str(principal.user_id)
        now = self._clock()
        desk = Desk(
            sid=sid,
            user_id=user_id,
            username=principal.username,
            team=principal.team,
            desk=name,
            state=DeskState.READY,
            since=now,
            connected_at=now,
        )
        await self.sio.enter_room(sid, desk_room(user_id))
        await asyncio.to_thread(self.desks.joined, desk)
        self._own_desks.add(sid)
        await self._announce_desk(desk)

    async def _desk_state(self, sid: str, data: Any = None) -> dict[str, Any]:
        """A desk reports what it is doing: recorded in the registry and announced."""
        if sid not in self._own_desks:
            return {"ok": False, "error": {"code": "not_a_desk", "message": "Esta conexión no es un puesto."}}
        body = data if isinstance(data, dict) else {}
        try:
            state = DeskState(str(body.get("state") or ""))
        except ValueError:
            state = DeskState.OFFLINE
        if state is DeskState.OFFLINE:
            return {"ok": False, "error": {"code": "invalid_input", "message": "Estado de puesto no válido."}}
        call_id, contact_id = _short_text(body.get("call_id")), _short_text(body.get("contact_id"))
        desk = await asyncio.to_thread(self.desks.moved, sid, state, call_id, contact_id, self._clock())
        if desk is not None:
            await self._announce_desk(desk)
        return {"ok": True}

    async def _replay_then_join(self, sid: str, after: int, through: int | None) -> None:
        """Send a reconnecting client what it missed (or ``resync``), then let it into the live room.

        ``through``: the last position queued for the live room before this replay was queued; events
        after it are still to be emitted there, after the client joins, so the replay leaves them out.
        None when other processes emit too (a Redis client manager): the replay then sends all it finds,
        and a notice may arrive twice (clients drop one whose position is not above the last they saw).
        """
        try:
            events = await asyncio.to_thread(self._replay.events_after, after, self._max_replay)
            if events is None:
                await self.sio.emit("resync", {"reason": "too_old", "last_position": after}, to=sid)
                return
            missed = [e for e in events if e.position > after and (through is None or e.position <= through)]
            for notice in notices_for(missed):
                await self.sio.emit(notice.name, {**notice.payload, "replayed": True}, to=sid)
        finally:
            if self.sio.manager.is_connected(sid, "/"):
                await self.sio.enter_room(sid, ROOM_ALL)

    def _guarded(
        self,
        name: str,
        capability: Capability,
        action: Callable[[str, Principal, dict[str, Any]], Awaitable[dict[str, Any]]],
    ) -> Callable[[str, Any], Awaitable[dict[str, Any]]]:
        """Wrap a client → server event: role check, input check, domain errors answered to the sender."""

        async def handler(sid: str, data: Any = None) -> dict[str, Any]:
            session = await self.sio.get_session(sid)
            principal: Principal = session["principal"]
            call = Call("SOCKET", f"/socket.io/{name}", None)
            try:
                await asyncio.to_thread(self._gate.admit, principal, call)
                await asyncio.to_thread(self._gate.authorize, principal, capability, call)
                if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
                    raise ApiError(422, "invalid_input", "Falta el id del contacto.")
                return await action(sid, principal, data)
            except ApiError as exc:
                await self.sio.emit(
                    "error", {"code": exc.code, "message": exc.message, "event": name}, to=sid
                )
                return {"ok": False, "error": {"code": exc.code, "message": exc.message}}
            except ContactsUnavailable:
                message = "Un servicio interno no respondió a tiempo; intente de nuevo."
                await self.sio.emit(
                    "error", {"code": "service_unavailable", "message": message, "event": name}, to=sid
                )
                return {"ok": False, "error": {"code": "service_unavailable", "message": message}}
            except ContactError as exc:
                body = domain_error_response(exc).body
                await self.sio.emit(
                    "error", {"code": exc.code, "message": exc.message, "event": name}, to=sid
                )
                return {"ok": False, **_json(body)}

        return handler

    async def _queue_next(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``POST /queue/next`` over the socket: the claim's JSON, or ``{"error", "message", "until"}``."""
        session = await self.sio.get_session(sid)
        principal: Principal = session["principal"]
        call = Call("SOCKET", "/socket.io/queue_next", None)
        try:
            await asyncio.to_thread(self._gate.admit, principal, call)
            await asyncio.to_thread(self._gate.authorize, principal, Capability.TAKE_NEXT, call)
            if session.get("desk"):
                await self._refuse(principal, "queue_next", {"reason": "desk_connection"})
                raise ApiError(403, "not_an_agent", "El marcador de un puesto no pide contactos.")
            body = data if isinstance(data, dict) else {}
            campaign = body.get("campaign")
            if campaign is not None and (not isinstance(campaign, str) or not CAMPAIGN_ID.match(campaign)):
                raise ApiError(422, "invalid_input", "campaign debe ser el id de una campaña.")
            claim_next = ClaimNextContact(caller=caller_of(principal), now=self._clock(), campaign=campaign)
            claim = await asyncio.to_thread(self._contacts.execute, claim_next)
        except QueueEmpty as exc:
            until = exc.until.isoformat() if exc.until is not None else None
            return {"error": exc.code, "message": exc.message, "until": until}
        except ApiError as exc:
            return {"error": exc.code, "message": exc.message, "until": None}
        except ContactsUnavailable:
            message = "Un servicio interno no respondió a tiempo; intente de nuevo."
            return {"error": "service_unavailable", "message": message, "until": None}
        except ContactError as exc:
            return {"error": exc.code, "message": exc.message, "until": None}
        log.info("queue.next", username=principal.username, contact_id=claim.contact.id)
        return claim.to_data()

    async def _lock(self, sid: str, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
        duration = data.get("duration_minutes")
        if duration is not None and (not isinstance(duration, int) or isinstance(duration, bool)):
            raise ApiError(422, "invalid_input", "duration_minutes debe ser un número entero.")
        try:
            command = LockContact(
                caller=caller_of(principal),
                now=self._clock(),
                contact_id=data["id"],
                duration_minutes=duration,
            )
            contact = await asyncio.to_thread(run_command, self._contacts, command)
        except Locked as exc:
            payload = {
                "id": data["id"],
                "locked_by": exc.locked_by,
                "locked_by_name": exc.locked_by_name,
                "locked_until": exc.locked_until.isoformat(),
                "message": exc.message,
            }
            await self.sio.emit("lock_denied", payload, to=sid)
            return {"ok": False, "error": {"code": exc.code, "message": exc.message}}
        return {"ok": True, "contact": contact.to_data()}

    async def _unlock(self, sid: str, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
        command = ReleaseLock(caller=caller_of(principal), now=self._clock(), contact_id=data["id"])
        contact = await asyncio.to_thread(run_command, self._contacts, command)
        return {"ok": True, "contact": contact.to_data()}

    async def _update(self, sid: str, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
        fields = data.get("fields")
        allowed = {"name", "status", "note", "email", "extra"}
        if not isinstance(fields, dict) or not fields or not set(fields) <= allowed:
            raise ApiError(422, "invalid_input", "fields debe tener name, status, note, email o extra.")
        for key, value in fields.items():
            valid = isinstance(value, dict) if key == "extra" else isinstance(value, str)
            if not valid or (isinstance(value, str) and len(value) > 10_000):
                raise ApiError(422, "invalid_input", f"Valor no válido para {key}.")
        version = data.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
            raise ApiError(422, "invalid_input", "version debe ser la versión leída del contacto.")
        caller = caller_of(principal)
        command = UpdateContact(caller=caller, now=self._clock(), contact_id=data["id"], **fields)
        try:
            contact = await asyncio.to_thread(run_command, self._contacts, command, version)
        except VersionMismatch as exc:
            body, _ = await asyncio.to_thread(stale_write_body, self._contacts, self._names, caller, exc)
            error = body["error"]
            await self.sio.emit(
                "error", {"code": exc.code, "message": error["message"], "event": "update_contact"}, to=sid
            )
            return {"ok": False, **body}
        return {"ok": True, "contact": contact.to_data()}

    async def _call_started(self, sid: str, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
        desk = await self._reporting_desk(sid, principal, "call_started")
        command = RecordCallStarted(
            caller=caller_of(principal),
            now=self._clock(),
            contact_id=data["id"],
            call_id=_call_id(data),
            desk=desk,
        )
        await self._report(sid, principal, "call_started", command)
        return {"ok": True}

    async def _call_ended(self, sid: str, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
        desk = await self._reporting_desk(sid, principal, "call_ended")
        try:
            outcome = CallOutcome(str(data.get("outcome") or ""))
        except ValueError:
            raise ApiError(422, "invalid_input", "outcome no válido.") from None
        talk = data.get("talk_seconds", data.get("duration_seconds", 0))
        ring = data.get("ring_seconds", 0)
        command = RecordCallEnded(
            caller=caller_of(principal),
            now=self._clock(),
            contact_id=data["id"],
            call_id=_call_id(data),
            outcome=outcome,
            duration_seconds=_seconds(talk, "talk_seconds"),
            ring_seconds=_seconds(ring, "ring_seconds"),
            reason=str(data.get("reason") or "")[:200],
            desk=desk,
        )
        await self._report(sid, principal, "call_ended", command)
        return {"ok": True}

    async def _reporting_desk(self, sid: str, principal: Principal, name: str) -> str:
        """The desk name of connection ``sid``; a refusal (audited) when it is not a desk."""
        session = await self.sio.get_session(sid)
        desk = str(session.get("desk") or "")
        if not desk:
            await self._refuse(principal, name, {"reason": "not_a_desk"})
            raise ApiError(403, "not_a_desk", "Solo el marcador de un puesto puede informar llamadas.")
        return desk

    async def _report(
        self, sid: str, principal: Principal, name: str, command: RecordCallStarted | RecordCallEnded
    ) -> None:
        """Record a desk's report; a report on a call not open for this desk is refused and audited."""
        try:
            await asyncio.to_thread(self._contacts.execute, command)
        except CallNotOpen:
            detail = {"reason": "call_not_open", "call_id": command.call_id, "contact_id": command.contact_id}
            await self._refuse(principal, name, detail)
            raise

    async def _refuse(self, principal: Principal, name: str, detail: dict[str, Any]) -> None:
        call = Call("SOCKET", f"/socket.io/{name}", None)
        await asyncio.to_thread(self._gate.refuse, principal, call, 403, detail)


def reminder_of(event: Envelope) -> dict[str, Any]:
    """The ``callback_reminder`` payload of a stored ``CallbackReminded`` event."""
    data = event.data
    payload = {key: data.get(key) for key in REMINDER_KEYS}
    payload["contact_id"] = str(data.get("contact_id", event.stream_id))
    payload["contact_name"] = data.get("contact_name", "")
    payload["phone"] = data.get("phone", "")
    return payload


def reminder_rooms(event: Envelope) -> list[str]:
    """The rooms a stored ``CallbackReminded`` goes to: the owner's for a personal callback; for a shared
    one, the rooms of the teams it names, or every client's when it names none (``teams`` null or absent:
    a campaign every team works, or an event stored before reminders named teams)."""
    data = event.data
    if data.get("scope") != "shared":
        return [user_room(str(data.get("user_id")))]
    teams = data.get("teams")
    if not isinstance(teams, list):
        return [ROOM_ALL]
    return [team_room(str(team)) for team in teams if team]


def _desk_name(value: object) -> str:
    """A desk name from the connection's auth: printable, trimmed, at most DESK_NAME_MAX characters."""
    text = "".join(ch for ch in str(value or "") if ch.isprintable()).strip()
    return text[:DESK_NAME_MAX]


def _short_text(value: object) -> str | None:
    text = str(value or "").strip()[:64]
    return text or None


def _call_id(data: Mapping[str, Any]) -> str:
    call_id = str(data.get("call_id") or "").strip()
    if not call_id or len(call_id) > 64:
        raise ApiError(422, "invalid_input", "Falta call_id o no es válido.")
    return call_id


def _seconds(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= LONGEST_CALL_SECONDS:
        raise ApiError(422, "invalid_input", f"{name} debe ser un número entero de segundos.")
    return value


def _json(body: bytes | memoryview) -> dict[str, Any]:
    value = orjson.loads(bytes(body))
    return value if isinstance(value, dict) else {}
