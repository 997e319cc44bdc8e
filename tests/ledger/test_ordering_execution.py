"""Where and when the ordering service executes a block (`Ordering._executing`, `_gather`)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ledger.mempool import Mempool
from ledger.ordering import MAX_GATHER_SECONDS, Ordering


def _alone(execute_apart: bool) -> Ordering:
    """An ordering service with no validator set yet (one validator or none: alone)."""
    return Ordering(None, Mempool(), None, None, dict, execute_apart=execute_apart)  # type: ignore[arg-type]


@pytest.mark.parametrize(("execute_apart", "on_the_loop"), [(False, True), (True, False)])
def test_alone_a_block_executes_on_the_loop_unless_the_executor_is_another_process(
    execute_apart: bool, on_the_loop: bool
) -> None:
    async def executed_on_the_loop() -> bool:
        ordering = _alone(execute_apart)
        return await ordering._executing(threading.get_ident) == threading.get_ident()

    assert asyncio.run(executed_on_the_loop()) is on_the_loop


def test_gathering_waits_for_an_admission_call_in_flight_and_no_longer() -> None:
    in_flight = [True]

    async def gathered_for() -> tuple[float, float]:
        ordering = Ordering(
            None, Mempool(), None, None, dict, execute_apart=True, admissions_pending=lambda: in_flight[0]
        )  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, in_flight.__setitem__, 0, False)  # the call answers after 20 ms
        started = loop.time()
        await ordering._gather()
        answered = loop.time() - started
        in_flight[0] = True  # and now one that never answers
        started = loop.time()
        await ordering._gather()
        return answered, loop.time() - started

    answered, stuck = asyncio.run(gathered_for())
    assert answered >= 0.02, "it waited for the call's transactions"
    assert MAX_GATHER_SECONDS <= stuck < 1, "and gave up on a call that does not answer"
