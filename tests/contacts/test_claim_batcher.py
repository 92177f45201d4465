"""The claim batcher alone: a lone ask is served at once, asks arriving meanwhile share the next batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from contacts.claims import ClaimBatcher


class _Server:
    """A ``serve`` that records its batches and can be held inside the first one."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.inside = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, asks: Sequence[str]) -> list[str | BaseException]:
        self.batches.append(list(asks))
        self.inside.set()
        assert self.release.wait(30)
        return [ValueError(ask) if ask.startswith("bad") else ask.upper() for ask in asks]


def _wait_until(check: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _start(batcher: ClaimBatcher[str, str], ask: str, answers: dict[str, object]) -> threading.Thread:
    def run() -> None:
        try:
            answers[ask] = batcher.submit(ask)
        except Exception as error:
            answers[ask] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_lone_ask_is_served_alone_at_once() -> None:
    server = _Server()
    batcher = ClaimBatcher(server)

    assert batcher.submit("ana") == "ANA"
    assert batcher.submit("beto") == "BETO"
    assert server.batches == [["ana"], ["beto"]]


def test_asks_arriving_while_a_batch_runs_are_served_together_in_arrival_order() -> None:
    server = _Server()
    server.release.clear()
    batcher = ClaimBatcher(server)
    answers: dict[str, object] = {}
    threads = [_start(batcher, "first", answers)]
    assert server.inside.wait(30)
    for n in range(20):
        threads.append(_start(batcher, f"a{n:02d}", answers))
        _wait_until(lambda n=n: batcher.waiting == n + 1)

    server.release.set()
    for thread in threads:
        thread.join(30)

    assert server.batches == [["first"], [f"a{n:02d}" for n in range(20)]]
    assert answers == {"first": "FIRST", **{f"a{n:02d}": f"A{n:02d}" for n in range(20)}}
    assert batcher.waiting == 0


def test_one_asks_error_is_raised_to_it_alone() -> None:
    server = _Server()
    server.release.clear()
    batcher = ClaimBatcher(server)
    answers: dict[str, object] = {}
    threads = [_start(batcher, "first", answers)]
    assert server.inside.wait(30)
    for n, ask in enumerate(["ana", "bad-beto", "carla"], start=1):
        threads.append(_start(batcher, ask, answers))
        _wait_until(lambda n=n: batcher.waiting == n)

    server.release.set()
    for thread in threads:
        thread.join(30)

    assert answers["ana"] == "ANA"
    assert answers["carla"] == "CARLA"
    assert isinstance(answers["bad-beto"], ValueError)


def test_a_failed_batch_fails_every_ask_in_it_and_the_next_batch_still_runs() -> None:
    def serve(asks: Sequence[str]) -> list[str | BaseException]:
        if "boom" in asks:
            raise RuntimeError("commit failed")
        return [ask.upper() for ask in asks]

    batcher = ClaimBatcher(serve)

    with pytest.raises(RuntimeError, match="commit failed"):
        batcher.submit("boom")
    assert batcher.submit("ana") == "ANA"


def test_an_ask_tried_again_goes_ahead_of_those_waiting() -> None:
    server = _Server()
    server.release.clear()
    batcher = ClaimBatcher(server)
    answers: dict[str, object] = {}
    threads = [_start(batcher, "first", answers)]
    assert server.inside.wait(30)
    threads.append(_start(batcher, "ana", answers))
    _wait_until(lambda: batcher.waiting == 1)

    def again() -> None:
        answers["again"] = batcher.submit("again", first=True)

    threads.append(threading.Thread(target=again))
    threads[-1].start()
    _wait_until(lambda: batcher.waiting == 2)
    server.release.set()
    for thread in threads:
        thread.join(30)

    assert server.batches[1] == ["again", "ana"]
