"""Shared fixtures: real PostgreSQL and Redis when their URLs are set, a fresh SQLite file otherwise.

``CALLMANAGER_TEST_DATABASE_URL`` (a PostgreSQL URL) and ``CALLMANAGER_TEST_REDIS_URL`` point the tests
at real servers. Without them those tests skip with a reason, unless ``CALLMANAGER_REQUIRE_SERVICES=1``
(CI), where a missing service is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import EmbeddedServer, start_embedded

REQUIRE_SERVICES = os.environ.get("CALLMANAGER_REQUIRE_SERVICES") == "1"


def _service_url(name: str, what: str) -> str:
    url = os.environ.get(name)
    if url:
        return url
    message = f"{what} not configured: set {name} (CI sets it and CALLMANAGER_REQUIRE_SERVICES=1)"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of the PostgreSQL server the tests may create schemas in."""
    url = _service_url("CALLMANAGER_TEST_DATABASE_URL", "PostgreSQL")
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"PostgreSQL at {url} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {url} is unreachable")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose connections use a fresh schema of their own, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(postgres_server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL of a fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'callmanager.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each database the event store supports, in turn (contract tests)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """URL of the Redis server; tests use unique key names so they never collide."""
    url = _service_url("CALLMANAGER_TEST_REDIS_URL", "Redis")
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis at {url} is unreachable: {exc}")
        pytest.skip(f"Redis at {url} is unreachable")
    finally:
        client.close()
    return url


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    return redis_server_url


@pytest.fixture
def unique_name() -> str:
    """A name no other test uses (topics, groups, key prefixes)."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def embedded_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """``callmanager up`` running as a real process on a free port, with its own data dir."""
    server = start_embedded(tmp_path)
    try:
        yield server
    finally:
        server.process.stop()
