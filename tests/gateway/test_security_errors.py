"""A dependency that is down or too slow is a 503 with ``Retry-After``, never a 500 with a class name.

The job queue's Redis timed out under load in the fault suite and the upload got a 500; the handlers of
:mod:`gateway.errors` now map Redis and database connection failures like a service that is down.
"""

from __future__ import annotations

import pytest
import redis
import sqlalchemy
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.errors import RETRY_AFTER_SECONDS, install_error_handlers

FAILURES: dict[str, Exception] = {
    "redis-timeout": redis.exceptions.TimeoutError("Timeout reading from socket"),
    "redis-down": redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379."),
    "database-down": sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("connection refused")),
}


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/fails/{name}")
    def fails(name: str) -> None:
        raise FAILURES[name]

    @app.get("/bug")
    def bug() -> None:
        raise KeyError("internal detail")

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_a_dependency_down_is_a_503_with_retry_after_and_no_internals(client: TestClient, name: str) -> None:
    answer = client.get(f"/fails/{name}")

    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert answer.json()["error"]["code"] == "service_unavailable"
    for leak in ("Timeout", "Error", "connection", "SELECT", "6379"):
        assert leak not in answer.json()["error"]["message"]


def test_a_bug_is_still_a_500_without_its_details(client: TestClient) -> None:
    answer = client.get("/bug")

    assert answer.status_code == 500
    assert answer.json() == {"error": {"code": "internal", "message": "Error interno del servidor."}}
