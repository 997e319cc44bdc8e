"""Where the ordering service executes a block (`Ordering._executing`)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ledger.mempool import Mempool
from ledger.ordering import Ordering


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
