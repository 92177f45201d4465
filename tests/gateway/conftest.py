"""Gateway security fixtures: a migrated database, the directory and audit over it, and a small app.

The app mounts one probe route per capability (``GET /probe/<capability>``), one mutating route
(``POST /notes``), ``GET /me`` and the real admin router, all guarded by :mod:`gateway.auth`.
"""

# No ``from __future__ import annotations`` here: the probe routes are built in a loop and FastAPI must
# see their ``Annotated`` dependency objects, not strings naming a loop variable.

from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from limits.storage import MemoryStorage

from gateway.admin import admin_router
from gateway.audit import AuditLog
from gateway.auth import Authenticated, CanCreateContact, Gate, install_security, require
from gateway.ratelimit import RateLimiter
from gateway.roles import Capability, Principal
from gateway.users import UserDirectory
from kernel.store import create_engine
from kernel.store.changes import ChangeSignal
from system.migrate import upgrade

LOOPBACK_CLIENT = ("127.0.0.1", 50000)


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sa.Engine]:
    """A migrated SQLite database."""
    engine = create_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def any_engine(database_url: str) -> Iterator[sa.Engine]:
    """A migrated database, SQLite and PostgreSQL in turn."""
    engine = create_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def directory(engine: sa.Engine) -> UserDirectory:
    return UserDirectory(engine)


@pytest.fixture
def audit(engine: sa.Engine) -> AuditLog:
    return AuditLog(engine)


def generous_limiter() -> RateLimiter:
    return RateLimiter(MemoryStorage(), rate="10000/minute", heavy_rate="10000/minute")


def build_app(
    engine: sa.Engine,
    *,
    limiter: RateLimiter | None = None,
    enable_auth: bool = True,
    loopback: bool = False,
    inline: bool = False,
    changes: ChangeSignal | None = None,
) -> FastAPI:
    """A gateway-like app over ``engine`` guarded by the real dependencies."""
    directory = UserDirectory(engine, changes=changes)
    audit = AuditLog(engine)
    app = FastAPI()
    gate = Gate(
        directory=directory,
        audit=audit,
        limiter=limiter or generous_limiter(),
        enable_auth=enable_auth,
        loopback=loopback,
        inline=inline,
    )
    install_security(app, gate)
    for capability in Capability:
        _add_probe(app, capability)

    @app.post("/notes", status_code=201)
    def add_note(principal: CanCreateContact) -> dict[str, Any]:
        return {"by": principal.username}

    @app.post("/broken")
    def broken(principal: CanCreateContact) -> dict[str, Any]:
        raise RuntimeError("boom: internal detail")

    @app.get("/me")
    def me(principal: Authenticated) -> dict[str, Any]:
        return {"username": principal.username, "role": principal.role.value, "key_id": principal.key_id}

    app.include_router(admin_router(directory, audit))
    return app


def _add_probe(app: FastAPI, capability: Capability) -> None:
    @app.get(f"/probe/{capability.value}")
    def probe(principal: Annotated[Principal, Depends(require(capability))]) -> dict[str, Any]:
        return {"capability": capability.value, "username": principal.username}


@pytest.fixture
def make_client(engine: sa.Engine) -> Iterator[Callable[..., TestClient]]:
    """Build a TestClient on a fresh app over the test database (keyword arguments go to build_app)."""
    clients: list[TestClient] = []

    def make(*, client: tuple[str, int] = LOOPBACK_CLIENT, **options: Any) -> TestClient:
        test_client = TestClient(build_app(engine, **options), client=client, raise_server_exceptions=False)
        clients.append(test_client)
        return test_client

    yield make
    for test_client in clients:
        test_client.close()


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def app_over() -> Callable[..., FastAPI]:
    """:func:`build_app`, for tests that bring their own engine."""
    return build_app
