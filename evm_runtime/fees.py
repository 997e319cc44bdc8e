"""Fee suggestions and fee history, as geth computes them."""

from __future__ import annotations

from collections.abc import Sequence

from eth._utils.calculations import fake_exponential
from eth.vm.forks.cancun.constants import MIN_BLOB_BASE_FEE
from eth.vm.forks.prague.constants import BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE

DEFAULT_PRIORITY_FEE = 1_000_000_000
"""The tip suggested to senders (1 gwei), as Anvil and Hardhat suggest."""


def percentile_rewards(tips: Sequence[tuple[int, int]], percentiles: Sequence[float]) -> list[int]:
    """The tip paid at each gas-weighted percentile of a block.

    `tips` holds (effective tip, gas used) for each transaction of the block. A block
    without transactions rewards 0 at every percentile.
    """
    if not tips:
        return [0] * len(percentiles)
    ordered = sorted(tips)
    total_gas = sum(gas for _, gas in ordered)
    rewards = []
    for percentile in percentiles:
        threshold = total_gas * percentile / 100
        accumulated = 0
        chosen = ordered[-1][0]
        for tip, gas in ordered:
            accumulated += gas
            if accumulated >= threshold:
                chosen = tip
                break
        rewards.append(max(chosen, 0))
    return rewards


def blob_base_fee(excess_blob_gas: int) -> int:
    """The price of blob gas after a block with `excess_blob_gas` (EIP-4844, Prague's fraction).

    Conclave keeps no blobs, so the excess stays 0 and the price stays at its minimum.
    """
    return int(fake_exponential(MIN_BLOB_BASE_FEE, excess_blob_gas, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE))
