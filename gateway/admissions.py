"""Admissions gathered into one enclave call while another is in flight.

When the enclave runs in a process of its own, each admission is a round trip to it. The
`AdmissionQueue` sends one `admit_many` call at a time, on a worker thread (the event loop
goes on serving meanwhile); the transactions that arrive while it is in flight wait, and go
together in the next call. The rules:

- each submission keeps what its caller sent: the raw transaction, `private_for` and the
  caller's login token (`Submission`);
- submissions are admitted in the order they arrived, and their outcomes are settled on the
  event loop in that same order (so one sender's transactions reach the pool in order);
- each caller gets its own outcome: what settling its admitted transaction returned, or the
  `ConclaveError` the enclave (or settling) raised for it alone; an error of the call itself
  (the enclave process lost twice, say) reaches every caller of that call;
- at most `MAX_WAITING` submissions wait; past that a submission is refused at once (the
  pool, which holds more, is the place for transactions, not this queue).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from enclave.interface import Admitted, Submission
from evm_runtime.exceptions import ConclaveError, LimitExceeded

T = TypeVar("T")

Outcome = Admitted | ConclaveError
MAX_WAITING = 10_000


class AdmissionQueue(Generic[T]):
    """One `admit_many` call in flight at a time; later submissions wait for the next.

    `admit_many` runs on a worker thread; `settle(outcomes, epoch)` runs on the event loop
    with the outcomes of one call, in submission order, and the `epoch()` read on the loop
    just before that call was sent (so it can tell what changed meanwhile); it returns, per
    outcome, the caller's result or the `ConclaveError` to raise to that caller.
    """

    def __init__(
        self,
        admit_many: Callable[[Sequence[Submission]], Sequence[Outcome]],
        settle: Callable[[Sequence[Outcome], int], Sequence[T | ConclaveError]],
        epoch: Callable[[], int] = lambda: 0,
    ) -> None:
        self._admit_many = admit_many
        self._settle = settle
        self._epoch = epoch
        self._waiting: list[tuple[Submission, asyncio.Future[T]]] = []
        self._sending: asyncio.Task[None] | None = None
        self.calls = 0
        """How many `admit_many` calls were made (for metrics and tests)."""

    @property
    def pending(self) -> bool:
        """Whether an `admit_many` call is in flight (or submissions wait for one)."""
        return self._sending is not None

    async def admit(self, submission: Submission) -> T:
        """The settled result of admitting `submission`; its `ConclaveError` if refused."""
        if len(self._waiting) >= MAX_WAITING:
            raise LimitExceeded(
                f"{MAX_WAITING} transactions are waiting for admission: send this one again shortly"
            )
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((submission, future))
        if self._sending is None:
            self._sending = asyncio.create_task(self._send())
        return await future

    async def _send(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                submissions = [submission for submission, _ in batch]
                epoch = self._epoch()
                self.calls += 1
                try:
                    outcomes = await asyncio.to_thread(self._admit_many, submissions)
                    if len(outcomes) != len(batch):
                        raise RuntimeError(f"{len(outcomes)} outcomes for {len(batch)} submissions")
                    results = self._settle(outcomes, epoch)
                except Exception as failed:  # the call itself failed: every caller hears of it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(failed)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # its caller went away; its transaction is settled anyway
                        continue
                    if isinstance(result, ConclaveError):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._sending = None
