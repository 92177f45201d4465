"""Process entry points: the embedded system, one distributed service (HTTP or rq queue), an rq worker.

Each builds its parts from :mod:`system.bootstrap`'s infrastructure, then serves. The services' code is
the same in every mode; only what is passed in differs (a direct contacts client or an HTTP one, the
in-process bus or Redis Streams, memory or Redis rate-limit counters, one Socket.IO server or a Redis
manager shared by gateway replicas).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import os
import signal
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import anyio.to_thread
import orjson
import redis
import socketio
import structlog
import uvicorn
from fastapi import FastAPI, Response
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.aio.storage import Storage as AsyncStorage
from limits.storage import RedisStorage, Storage
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from contacts.api import create_app as create_contacts_app
from contacts.callbacks import CallbackBook
from contacts.campaignbook import CampaignBook
from contacts.client import ContactsClient, HttpContactsClient, LocalContactsClient
from contacts.dialect import read_model_dialect
from contacts.dnc import DncList
from contacts.domain import LockPolicy
from contacts.handlers import ContactsService
from contacts.queries import ContactQueries
from contacts.queue import WorkQueue
from contacts.scheduler import Ageing, CallbackSweep, CallTimeouts, LockExpiry
from contacts.schema import CONTACTS_CHANNEL
from contacts.statuses import DEFAULT_CATALOGUE
from gateway.app import GatewayDeps, create_app
from gateway.audit import AuditLog
from gateway.auth import Gate
from gateway.counters import WindowCounters
from gateway.desks import DeskRegistry, MemoryDeskRegistry, RedisDeskRegistry
from gateway.feed import EventFeed
from gateway.health import HealthCheck, run_checks
from gateway.live import BusReplay, LiveHub
from gateway.metrics import GatewayMetrics
from gateway.ratelimit import RateLimiter
from gateway.routes.generator import GeneratorConfig
from gateway.runtime import ConfigStore, RuntimeSettings, current_runtime
from gateway.users import KEYS_CHANNEL, UserDirectory, UserNames
from kernel.bus.consumer import Consumer
from kernel.bus.lease import Lease, RedisLease, SoleLease, consume_while_leading
from kernel.jobqueue import JOBS_TOPIC, JobStore
from kernel.settings import Settings
from system.backup import (
    BackupGauges,
    BackupStatus,
    MemoryBackupStatus,
    RedisBackupStatus,
    backup_health,
    run_backups,
    status_key,
)
from system.bootstrap import CONTACTS_EVENTS, ConfigurationError, Infrastructure, Mode, build_infrastructure
from system.jobregistry import (
    GENERATOR_QUEUE,
    IMPORTEXPORT_QUEUE,
    exports_dir,
    queue_name,
    service_ports,
    transfer_config,
)
from system.ownership import FolderInUse, hold_folder
from system.tuning import BulkTuning

log = structlog.get_logger(__name__)


@dataclass
class ContactsParts:
    """The contacts service of one process: command handlers and queries."""

    service: ContactsService
    queries: ContactQueries
    queue: WorkQueue
    callbacks: CallbackBook

    def client(self) -> ContactsClient:
        """A direct (in-process) client of this service."""
        return LocalContactsClient(self.service, self.queries, self.queue, self.callbacks)


def build_contacts(infra: Infrastructure) -> ContactsParts:
    """The contacts service over this process's event store, with its schedules running."""
    settings = infra.settings
    runtime, _ = current_runtime(infra.store, RuntimeSettings.from_settings(settings))
    policy = LockPolicy(runtime.default_lock_duration_minutes, runtime.max_lock_duration_minutes)
    read_model = read_model_dialect(infra.dialect)
    service = ContactsService(
        infra.engine, infra.store, policy, DEFAULT_CATALOGUE, dialect=read_model, tuning=BulkTuning()
    )
    # PostgreSQL: first pages are kept while no change to contacts is announced (contacts_0004 trigger);
    # this process's own commits count at once.
    changes = infra.change_signal(CONTACTS_CHANNEL)
    if changes is not None:
        infra.store.after_commit(changes.move)
    queries = ContactQueries(
        infra.engine, infra.store, DEFAULT_CATALOGUE, changes=changes, dialect=read_model
    )
    expiry = LockExpiry(service, infra.engine, interval_seconds=settings.lock_sweep_seconds)
    ageing = Ageing(
        service, infra.engine, DEFAULT_CATALOGUE, interval_minutes=settings.ageing_interval_minutes
    )
    infra.background.spawn("lock-expiry", expiry.run_forever)
    infra.background.spawn("runtime-settings", lambda stop: follow_runtime_settings(infra, service, stop))
    infra.background.spawn("ageing", ageing.run_forever)
    timeouts = CallTimeouts(
        service,
        infra.engine,
        start_timeout_seconds=settings.call_start_timeout_seconds,
        max_seconds=settings.call_max_seconds,
        interval_seconds=settings.lock_sweep_seconds,
    )
    infra.background.spawn("call-timeouts", timeouts.run_forever)
    callbacks = CallbackBook(infra.engine)
    campaigns = CampaignBook(infra.engine, DEFAULT_CATALOGUE)
    sweep = CallbackSweep(
        service,
        callbacks,
        reminder_minutes=settings.callback_reminder_minutes,
        grace_minutes=settings.callback_grace_minutes,
        interval_seconds=settings.callback_sweep_seconds,
        campaigns=campaigns,
    )
    infra.background.spawn("callback-sweep", sweep.run_forever)
    queue = WorkQueue(infra.engine, infra.store, service, DncList(infra.engine), campaigns)
    return ContactsParts(service, queries, queue, callbacks)


def follow_runtime_settings(
    infra: Infrastructure, service: ContactsService, stop: threading.Event, interval: float = 5.0
) -> None:
    """Apply lock durations TI changes at run time (``POST /config`` on any gateway) to this service."""
    base = RuntimeSettings.from_settings(infra.settings)
    while not stop.wait(interval):
        try:
            runtime, _ = current_runtime(infra.store, base)
        except Exception:
            log.exception("contacts.runtime_settings_unreadable")
            continue
        policy = LockPolicy(runtime.default_lock_duration_minutes, runtime.max_lock_duration_minutes)
        if policy != service.policy:
            service.set_policy(policy)
            log.info("contacts.lock_policy_changed", default=policy.default_minutes, max=policy.max_minutes)


def build_gateway(
    infra: Infrastructure,
    contacts: ContactsClient,
    *,
    rate_storage: Storage,
    async_rate_storage: AsyncStorage | None = None,
    client_manager: socketio.AsyncManager | None = None,
    contacts_service: ContactsService | None = None,
    backup_status: BackupStatus | None = None,
) -> ASGIApp:
    """The public gateway wired to this process's infrastructure, its live feed running.

    ``backup_status``: where the backups' outcome is read for ``/health`` and ``/metrics``.
    """
    settings = infra.settings
    registry = CollectorRegistry()
    if backup_status is not None:
        registry.register(BackupGauges(backup_status))
    metrics = GatewayMetrics(registry)
    # PostgreSQL: key rows are kept while no change to users or keys is announced (gateway_0002 triggers).
    changes = infra.change_signal(KEYS_CHANNEL)
    if changes is not None:
        metrics.watch_key_changes(changes)
    directory = UserDirectory(infra.engine, changes=changes, dialect=infra.dialect)
    audit = AuditLog(infra.engine)
    limiter = RateLimiter(
        rate_storage,
        rate=settings.rate_limit,
        heavy_rate=settings.rate_limit_heavy,
        unidentified_rate=settings.rate_limit_unidentified,
        async_storage=async_rate_storage,
    )
    gate = Gate(
        directory=directory,
        audit=audit,
        limiter=limiter,
        enable_auth=settings.enable_auth,
        loopback=settings.is_loopback,
        # SQLite and in-memory counters answer at once: admit passing requests on the event loop.
        inline=infra.mode is Mode.EMBEDDED and isinstance(rate_storage, WindowCounters),
    )
    names = UserNames(directory)
    desks: DeskRegistry = MemoryDeskRegistry()
    if infra.mode is Mode.DISTRIBUTED and infra.settings.redis_url is not None:
        desks = RedisDeskRegistry(redis.Redis.from_url(infra.settings.redis_url), infra.topic("desks"))
    hub = LiveHub(
        desks=desks,
        names=names,
        gate=gate,
        contacts=contacts,
        replay=BusReplay(infra.bus, infra.topic(CONTACTS_EVENTS)),
        metrics=metrics,
        client_manager=client_manager,
    )

    def apply_lock_policy(default_minutes: int, max_minutes: int) -> None:
        if contacts_service is not None:
            contacts_service.set_policy(LockPolicy(default_minutes, max_minutes))

    config = ConfigStore(settings, infra.store, limiter, apply_lock_policy)
    config.load()

    def follow_config(stop: threading.Event) -> None:
        while not stop.wait(5.0):
            try:
                if config.refresh():
                    log.info("config.runtime_changed_elsewhere", **config.current.to_dict())
            except Exception:
                log.exception("config.runtime_unreadable")

    infra.background.spawn("gateway-runtime-settings", follow_config)

    def lease(name: str) -> Lease:
        # Replicas share the fan-out through Redis; one consumes at a time so notices keep their order.
        if infra.mode is Mode.EMBEDDED or infra.settings.redis_url is None:
            return SoleLease()
        client = redis.Redis.from_url(infra.settings.redis_url)
        return RedisLease(client, infra.topic(f"gateway-lease:{name}"), ttl_ms=3000)

    feed = EventFeed(infra.bus, infra.topic(CONTACTS_EVENTS), metrics)
    feed.subscribe(hub.publish)
    infra.background.spawn(
        "gateway-feed", lambda stop: consume_while_leading(feed.consumer, lease("feed"), stop)
    )
    job_feed = Consumer(
        infra.bus,
        infra.topic(JOBS_TOPIC),
        "gateway",
        f"{socket.gethostname()}-{os.getpid()}",
        lambda deliveries: hub.publish_jobs([orjson.loads(d.body) for d in deliveries]),
        start="$",
        block_ms=500,
    )
    infra.background.spawn(
        "gateway-job-feed", lambda stop: consume_while_leading(job_feed, lease("jobs"), stop)
    )
    generator, transfer = service_ports(infra, contacts)
    deps = GatewayDeps(
        gate=gate,
        directory=directory,
        audit=audit,
        contacts=contacts,
        catalogue=DEFAULT_CATALOGUE,
        metrics=metrics,
        hub=hub,
        config=config,
        jobs=JobStore(infra.engine),
        names=names,
        generator_port=generator,
        transfer_port=transfer,
        generator=GeneratorConfig(exports_dir(settings)),
        transfer=transfer_config(settings),
        health_checks={"database": infra.check_database, "bus": infra.check_bus},
        health_advisories={"backup": backup_health(backup_status)} if backup_status is not None else {},
        desk_updates=settings.desk_updates_dir,
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
    )
    return create_app(deps)


def add_health(app: FastAPI, checks: Mapping[str, HealthCheck]) -> None:
    """``GET /health`` on an internal service's app: 200, or 503 naming the failing dependency."""

    @app.get("/health", include_in_schema=False)
    def health() -> Response:
        report = run_checks(checks)
        return Response(
            orjson.dumps(report.to_dict()),
            status_code=200 if report.healthy else 503,
            media_type="application/json",
        )


def internal_token(settings: Settings) -> str:
    """The token services of one deployment show each other, derived from its secret key."""
    if settings.secret_key is None or len(settings.secret_key.get_secret_value()) < 16:
        raise ConfigurationError(
            "el modo distribuido necesita CALLMANAGER_SECRET_KEY (al menos 16 caracteres): "
            "ejecute callmanager setup-secure"
        )
    secret = settings.secret_key.get_secret_value().encode()
    return hmac.new(secret, b"callmanager internal api", hashlib.sha256).hexdigest()


def check_bind(settings: Settings) -> None:
    """Refuse to serve without authentication on anything but loopback."""
    if not settings.enable_auth and not settings.is_loopback:
        raise ConfigurationError(
            f"ENABLE_AUTH=false sólo se permite escuchando en loopback (127.0.0.1), no en {settings.host}"
        )


HttpServer = Literal["uvicorn", "granian"]

WORKER_THREADS = 8
"""Threads for sync routes and dependencies (AnyIO's default is 40). Past a few they only fight over the
GIL: 40 → 8 took a distributed gateway from about 220 to 400 list requests/s on 2 cores."""


def run_http(
    app: ASGIApp, host: str, port: int, server: HttpServer = "uvicorn", trusted_proxies: str = ""
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM: uvicorn (uvloop + httptools) or granian, one process either way.

    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from ``trusted_proxies`` (addresses or
    networks, comma-separated); by default from nobody, so a client cannot choose the audited address.
    """
    app = _with_worker_threads(app, WORKER_THREADS)
    if server == "granian":
        asyncio.run(_serve_granian(app, host, port))
        return
    trusted = trusted_proxies.strip()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )
    uvicorn.Server(config).run()


def _with_worker_threads(app: ASGIApp, threads: int) -> ASGIApp:
    """``app``, with the loop's worker-thread limit set and the heap frozen when the server starts it."""
    # gc.freeze(): what is alive at start (modules, metadata, routes, the caught-up relay's data) moves to
    # the permanent generation, so full collections skip it; they paused the loop ~200 ms at 100,000
    # contacts (a lock's live notice waited for them), ~10 ms once frozen.

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
            gc.freeze()
        await app(scope, receive, send)

    return limited


async def _serve_granian(app: ASGIApp, host: str, port: int) -> None:
    """Granian's embedded server on this event loop: the app object keeps its in-process bus and SQLite."""
    from granian.constants import Interfaces
    from granian.server.embed import Server

    server = Server(app, address=host, port=port, interface=Interfaces.ASGI, log_enabled=False)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.stop)
    await server.serve()
    log.info("http.stopped", server="granian")


def serve_embedded(settings: Settings, *, http_server: HttpServer = "uvicorn") -> None:
    """Every server service in this process: SQLite in the data dir, the in-process bus."""
    check_bind(settings)
    try:
        owner = hold_folder(settings.data_dir)
    except FolderInUse as exc:
        raise ConfigurationError(
            f"{exc} Deténgalo antes de iniciar otro, o use otra carpeta con --data-dir."
        ) from exc
    with owner:
        _serve_embedded(settings, http_server)


def _serve_embedded(settings: Settings, http_server: HttpServer) -> None:
    infra = build_infrastructure(settings, Mode.EMBEDDED)
    try:
        contacts = build_contacts(infra)
        backups = MemoryBackupStatus()
        app = build_gateway(
            infra,
            contacts.client(),
            rate_storage=WindowCounters(),
            contacts_service=contacts.service,
            backup_status=backups,
        )
        infra.start_relay()
        infra.background.spawn("backups", lambda stop: run_backups(settings, stop, backups))
        log.info("callmanager.up", host=settings.host, port=settings.port, data_dir=str(settings.data_dir))
        run_http(app, settings.host, settings.port, http_server, settings.trusted_proxies)
    finally:
        infra.close()


SERVICE_QUEUES = {"generator": GENERATOR_QUEUE, "importexport": IMPORTEXPORT_QUEUE}
"""The services that take their commands and jobs from an rq queue of their own."""


def serve_distributed(settings: Settings, service: str, *, http_server: HttpServer = "uvicorn") -> None:
    """One service of the distributed deployment, against PostgreSQL and Redis.

    contacts and gateway serve HTTP; generator and importexport consume their own rq queue.
    """
    if service == "backup":
        serve_backups(settings)
        return
    if service in SERVICE_QUEUES:
        infra = build_infrastructure(settings, Mode.DISTRIBUTED)  # migrated, as every ``serve`` does
        infra.close()
        internal_token(settings)  # refused at start, not at the first job, without a secret key
        run_worker(settings, [SERVICE_QUEUES[service]])
        return
    infra = build_infrastructure(settings, Mode.DISTRIBUTED)
    try:
        if service == "contacts":
            contacts = build_contacts(infra)
            infra.start_relay()
            internal = create_contacts_app(
                contacts.service,
                contacts.queries,
                internal_token(settings),
                queue=contacts.queue,
                callbacks=contacts.callbacks,
            )
            add_health(internal, {"database": infra.check_database, "bus": infra.check_bus})
            run_http(internal, settings.host, settings.port, http_server, settings.trusted_proxies)
        elif service == "gateway":
            check_bind(settings)
            assert settings.redis_url is not None
            http_contacts = HttpContactsClient(settings.contacts_url, internal_token=internal_token(settings))
            app = build_gateway(
                infra,
                http_contacts,
                rate_storage=RedisStorage(settings.redis_url),
                # The same counters through redis-py's asyncio client: requests are counted on the loop.
                async_rate_storage=AsyncRedisStorage(f"async+{settings.redis_url}", implementation="redispy"),
                client_manager=socketio.AsyncRedisManager(
                    settings.redis_url, channel=f"{settings.bus_prefix}:socketio"
                ),
                backup_status=RedisBackupStatus(
                    redis.Redis.from_url(settings.redis_url), status_key(settings)
                ),
            )
            run_http(app, settings.host, settings.port, http_server, settings.trusted_proxies)
        else:
            raise ConfigurationError(f"el servicio {service!r} todavía no se puede ejecutar por separado")
    finally:
        infra.close()


def serve_backups(settings: Settings) -> None:
    """The ``backup`` service: ``pg_dump`` now and every ``BACKUP_INTERVAL_MINUTES`` until SIGTERM/SIGINT,
    its outcome in Redis for every gateway's ``/health`` and ``/metrics``."""
    if not settings.database_url or not settings.redis_url:
        raise ConfigurationError(
            "el servicio backup necesita CALLMANAGER_DATABASE_URL y CALLMANAGER_REDIS_URL"
        )
    if settings.backup_interval_minutes <= 0:
        raise ConfigurationError("el servicio backup necesita BACKUP_INTERVAL_MINUTES mayor que 0")
    status = RedisBackupStatus(redis.Redis.from_url(settings.redis_url), status_key(settings))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log.info(
        "backup.service_ready",
        folder=str(settings.backups_path),
        every_minutes=settings.backup_interval_minutes,
    )
    run_backups(settings, stop, status)
    log.info("backup.service_stopped")


def run_worker(settings: Settings, services: list[str]) -> None:
    """An rq worker on the queues of ``services`` (generator, importexport; both when none are named).

    A ``SimpleWorker``: messages run in this process, which keeps its contacts client and connections
    between them, so an immediate call costs milliseconds rather than a fork and a rebuild. A job that
    kills the interpreter takes the process with it; the supervisor (compose) restarts it, and the
    job's lease lapses: a reaper thread of every worker queues it again (or fails it after its last
    attempt).
    """
    if not settings.redis_url:
        raise ConfigurationError("el worker necesita CALLMANAGER_REDIS_URL")
    import redis
    from rq import Queue, SimpleWorker

    unknown = sorted(set(services) - set(SERVICE_QUEUES))
    if unknown:
        raise ConfigurationError(f"servicio sin cola: {', '.join(unknown)} (use generator o importexport)")
    connection = redis.Redis.from_url(settings.redis_url)
    names = [queue_name(settings, service) for service in services or SERVICE_QUEUES.values()]
    from system.worker import start_reaper

    start_reaper()
    log.info("worker.ready", queues=names)
    worker = SimpleWorker([Queue(name, connection=connection) for name in names], connection=connection)
    worker.work(with_scheduler=False)
