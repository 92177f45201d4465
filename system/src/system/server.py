"""Process entry points: the embedded system, one distributed service, an rq worker."""

from __future__ import annotations

import structlog
import uvicorn
from fastapi import FastAPI

from gateway.app import create_app as create_gateway_app
from gateway.feed import EventFeed
from gateway.metrics import GatewayMetrics
from kernel.settings import Settings
from system.bootstrap import CONTACTS_EVENTS, ConfigurationError, Infrastructure, Mode, build_infrastructure

log = structlog.get_logger(__name__)


def gateway_app(infra: Infrastructure) -> FastAPI:
    """The public gateway wired to this process's infrastructure, its live feed running."""
    metrics = GatewayMetrics()
    feed = EventFeed(infra.bus, CONTACTS_EVENTS, metrics)
    infra.background.spawn("gateway-feed", feed.consumer.run_forever)
    return create_gateway_app(
        health_checks={"database": infra.check_database, "bus": infra.check_bus}, metrics=metrics
    )


def check_bind(settings: Settings) -> None:
    """Refuse to serve without authentication on anything but loopback."""
    if not settings.enable_auth and not settings.is_loopback:
        raise ConfigurationError(
            f"ENABLE_AUTH=false sólo se permite escuchando en loopback (127.0.0.1), no en {settings.host}"
        )


def run_http(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` until SIGINT/SIGTERM."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")
    uvicorn.Server(config).run()


def serve_embedded(settings: Settings) -> None:
    """Every server service in this process: SQLite in the data dir, the in-process bus."""
    check_bind(settings)
    infra = build_infrastructure(settings, Mode.EMBEDDED)
    try:
        infra.start_relay()
        log.info("callmanager.up", host=settings.host, port=settings.port, data_dir=str(settings.data_dir))
        run_http(gateway_app(infra), settings.host, settings.port)
    finally:
        infra.close()


def serve_distributed(settings: Settings, service: str) -> None:
    """One service of the distributed deployment, against PostgreSQL and Redis."""
    if service == "gateway":
        check_bind(settings)
        infra = build_infrastructure(settings, Mode.DISTRIBUTED)
        try:
            run_http(gateway_app(infra), settings.host, settings.port)
        finally:
            infra.close()
        return
    raise ConfigurationError(f"el servicio {service!r} todavía no se puede ejecutar por separado")


def run_worker(settings: Settings, queues: list[str]) -> None:
    """An rq worker on ``queues`` (distributed mode: Redis from settings)."""
    if not settings.redis_url:
        raise ConfigurationError("el worker necesita CALLMANAGER_REDIS_URL")
    import redis
    from rq import Queue, Worker

    connection = redis.Redis.from_url(settings.redis_url)
    worker = Worker([Queue(name, connection=connection) for name in queues], connection=connection)
    worker.work(with_scheduler=False)
