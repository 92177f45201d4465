"""The rq side of the generator and import/export ports: refusals come back typed, silence is a 503."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any, NoReturn

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.results import Result

from contacts.errors import NotFound
from gateway.ports import ServiceUnavailable
from generator.commands import GenerationRefused
from importexport.commands import ImportRefused
from system.ports import RqCalls, answer_of


def refuse(error: Exception) -> NoReturn:
    raise error


def answer(data: dict[str, Any]) -> dict[str, Any]:
    """A service-side function: answers ``data['value']`` or raises the named refusal."""
    errors: dict[str, Exception] = {
        "generation": GenerationRefused("invalid_weights", "Operador desconocido en los pesos: x."),
        "import": ImportRefused("El archivo está vacío."),
        "contacts": NotFound("c1"),
    }
    if "refuse" in data:
        return answer_of(refuse, errors[data["refuse"]])
    return answer_of(lambda: data["value"])


@pytest.fixture
def queue(redis_url: str, unique_name: str) -> Any:
    connection = redis.Redis.from_url(redis_url)
    yield Queue(unique_name, connection=connection)
    for key in connection.scan_iter(f"*{unique_name}*"):
        connection.delete(key)
    connection.close()


def test_a_call_nobody_takes_answers_service_unavailable_after_its_wait(queue: Any) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        RqCalls(queue).call("tests.system.test_service_ports.answer", {"value": 1}, seconds=1)
    assert 0.9 < time.monotonic() - started < 5


class AnsweringQueue:
    """An rq queue stand-in whose worker answers at once: the call's real reply, as rq would store it."""

    name = "answering"

    def enqueue(self, function: str, data: dict[str, Any], **options: Any) -> Any:
        assert options["at_front"]
        assert options["ttl"] == options["job_timeout"]
        reply = answer(data)
        result = SimpleNamespace(type=Result.Type.SUCCESSFUL, Type=Result.Type, return_value=reply)
        return SimpleNamespace(latest_result=lambda timeout: result)


def test_answers_and_refusals_come_back_as_the_contract_returned_and_raised_them() -> None:
    calls = RqCalls(AnsweringQueue())
    function = "tests.system.test_service_ports.answer"

    assert calls.call(function, {"value": {"n": 3}}, seconds=5) == {"n": 3}
    with pytest.raises(GenerationRefused) as generation:
        calls.call(function, {"refuse": "generation"}, seconds=5)
    with pytest.raises(ImportRefused) as refused:
        calls.call(function, {"refuse": "import"}, seconds=5)
    with pytest.raises(NotFound):
        calls.call(function, {"refuse": "contacts"}, seconds=5)
    assert (generation.value.code, generation.value.message) == (
        "invalid_weights",
        "Operador desconocido en los pesos: x.",
    )
    assert refused.value.reason == "El archivo está vacío."


def test_a_call_answered_by_a_real_worker_returns_its_value(queue: Any) -> None:
    job = queue.enqueue("tests.system.test_service_ports.answer", {"value": [1, 2]})
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert job.latest_result().return_value == {"ok": [1, 2]}


@pytest.mark.slow
def test_a_call_answered_later_than_the_redis_socket_timeout_still_returns_its_value(queue: Any) -> None:
    # redis-py's default socket timeout (5 s) is shorter than a call's wait: a worker busy with a job
    # for 6 s must not turn the wait into a redis TimeoutError (which the gateway answered 503).
    answers: list[Any] = []

    def call() -> None:
        try:
            answers.append(RqCalls(queue).call("tests.system.test_service_ports.answer", {"value": 7}, 30))
        except Exception as exc:
            answers.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(6.5)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)  # signals: main thread only
    caller.join(timeout=30)

    assert answers == [7]
