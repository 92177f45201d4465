"""Group commit of claims: the next-contact requests that arrive while a claim transaction runs are
served together by the next one.

One caller leads: it takes every request waiting (its own among them), serves them all with one call of
``serve`` (the work queue: one write transaction, one commit), hands each waiter its own answer, then
passes the lead to the first request that queued up meanwhile, if any, and returns. A lone request
leads at once and is served alone: there is no window to wait for, only what queued up while the
previous batch ran is batched. Fifty agents asking at the same instant pay for two or three commits
instead of fifty appends queued one behind the other on the event store's append lock.

The batcher decides nothing about who gets which contact: exactly-once comes from the transaction it
runs (row locks and the store's single writer), in one process or many.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Ask = TypeVar("Ask")
Answer = TypeVar("Answer")


class _Waiter(Generic[Ask, Answer]):
    """One request in the queue, and the answer its leader leaves for it."""

    __slots__ = ("answer", "ask", "done", "error", "leads")

    def __init__(self, ask: Ask) -> None:
        self.ask = ask
        self.done = threading.Event()
        self.leads = False
        self.answer: Answer | None = None
        self.error: BaseException | None = None

    def outcome(self) -> Answer:
        if self.error is not None:
            raise self.error
        return self.answer  # type: ignore[return-value]


class ClaimBatcher(Generic[Ask, Answer]):
    """Serves concurrent asks in batches, one ``serve`` call per batch, in arrival order.

    ``serve(asks)`` returns one answer per ask, in order: a value, or an exception to raise in that
    ask's caller. Should ``serve`` itself raise (the commit failed), every ask of the batch gets that
    error.
    """

    def __init__(self, serve: Callable[[Sequence[Ask]], Sequence[Answer | BaseException]]) -> None:
        self._serve = serve
        self._guard = threading.Lock()
        self._waiting: deque[_Waiter[Ask, Answer]] = deque()
        self._busy = False
        self._serving = 0

    @property
    def waiting(self) -> int:
        """How many asks wait for the next batch (the one running not counted)."""
        with self._guard:
            return len(self._waiting)

    @property
    def serving(self) -> int:
        """How many asks the batch running now serves (0 when none runs)."""
        with self._guard:
            return self._serving

    def submit(self, ask: Ask, *, first: bool = False) -> Answer:
        """Serve ``ask`` with whatever else is waiting, or in the next batch if one is running; its answer.

        ``first``: ahead of the asks already waiting (an ask served before that must be tried again)."""
        waiter: _Waiter[Ask, Answer] = _Waiter(ask)
        with self._guard:
            if first:
                self._waiting.appendleft(waiter)
            else:
                self._waiting.append(waiter)
            if self._busy:
                leads = False
            else:
                self._busy = leads = True
        if not leads:
            waiter.done.wait()
            if not waiter.leads:
                return waiter.outcome()
        self._lead()
        return waiter.outcome()

    def _lead(self) -> None:
        """Serve every ask waiting now, then hand the lead on (or stop being busy)."""
        with self._guard:
            batch = list(self._waiting)
            self._waiting.clear()
            self._serving = len(batch)
        try:
            answers = self._serve([w.ask for w in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers for {len(batch)} claims")
        except BaseException as error:
            answers = [error] * len(batch)
        with self._guard:
            self._serving = 0
            if self._waiting:
                heir: _Waiter[Ask, Answer] | None = self._waiting[0]
            else:
                heir = None
                self._busy = False
        if heir is not None:
            heir.leads = True
            heir.done.set()
        for waiter, answer in zip(batch, answers, strict=True):
            if isinstance(answer, BaseException):
                waiter.error = answer
            else:
                waiter.answer = answer
            waiter.done.set()


__all__ = ["ClaimBatcher"]
