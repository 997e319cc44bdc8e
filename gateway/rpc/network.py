"""Client, network and fee methods: what a wallet asks before anything else."""

from __future__ import annotations

from typing import Any

from eth_hash.auto import keccak

from evm_runtime.chain import decode_header, next_base_fee
from evm_runtime.fees import blob_base_fee, percentile_rewards
from ledger.store import StoredBlock

from .. import params as p
from ..hexcodec import address, data, quantity
from ..node import Node
from .registry import Param, rpc

CLIENT_VERSION = "Conclave/v0.1.0/python"
DEV_CLIENT_VERSION = f"anvil-compatible {CLIENT_VERSION}"
"""A dev node's: Hardhat's network helpers serve only nodes whose version starts with
"anvil" (or "hardhat"), and a dev node serves the Anvil methods they call."""
MAX_FEE_HISTORY_BLOCKS = 1024
MAX_REWARD_PERCENTILES = 100


# -- client and network ---------------------------------------------------------------


@rpc("web3_clientVersion")
def web3_client_version(node: Node) -> str:
    return DEV_CLIENT_VERSION if node.config.dev_mode else CLIENT_VERSION


@rpc("web3_sha3", Param("data", p.data))
def web3_sha3(node: Node, payload: bytes) -> str:
    return data(keccak(payload))


@rpc("net_version")
def net_version(node: Node) -> str:
    return str(node.params.chain_id)


@rpc("net_listening")
def net_listening(node: Node) -> bool:
    return True


@rpc("net_peerCount")
def net_peer_count(node: Node) -> str:
    return quantity(0)


@rpc("eth_chainId")
def eth_chain_id(node: Node) -> str:
    return quantity(node.params.chain_id)


@rpc("eth_syncing")
def eth_syncing(node: Node) -> bool:
    return False


@rpc("eth_blockNumber")
def eth_block_number(node: Node) -> str:
    return quantity(node.head.number)


@rpc("eth_accounts")
def eth_accounts(node: Node) -> list[str | None]:
    return [address(account) for account in node.config.dev_accounts]


@rpc("eth_coinbase")
def eth_coinbase(node: Node) -> str | None:
    return address(node.config.coinbase)


# -- fees -----------------------------------------------------------------------------


@rpc("eth_gasPrice")
def eth_gas_price(node: Node) -> str:
    return quantity(max(node.enclave.next_base_fee() + node.suggested_tip(), node.minimum_gas_price()))


@rpc("eth_baseFee")
def eth_base_fee(node: Node) -> str:
    return quantity(node.enclave.next_base_fee())


@rpc("eth_blobBaseFee")
def eth_blob_base_fee(node: Node) -> str:
    return quantity(blob_base_fee(decode_header(node.head.header).excess_blob_gas))


@rpc("eth_maxPriorityFeePerGas")
def eth_max_priority_fee(node: Node) -> str:
    return quantity(node.suggested_tip())


def _rewards(node: Node, block: StoredBlock, base_fee: int, percentiles: list[float]) -> list[str]:
    receipts = node.store.receipts_of_block(block.number) if block.transaction_count else []
    tips = [(r.effective_gas_price - base_fee, r.gas_used) for r in receipts]
    return [quantity(reward) for reward in percentile_rewards(tips, percentiles)]


def _percentiles(value: Any) -> list[float]:
    if not isinstance(value, list) or len(value) > MAX_REWARD_PERCENTILES:
        raise ValueError(f"expected an array of at most {MAX_REWARD_PERCENTILES} percentiles")
    previous = -1.0
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not 0 <= item <= 100:
            raise ValueError("each percentile must be a number from 0 to 100")
        if item < previous:
            raise ValueError("percentiles must be in ascending order")
        previous = item
    return [float(item) for item in value]


def _block_count(value: Any) -> int:
    count = int(value) if isinstance(value, int) and not isinstance(value, bool) else p.quantity(value)
    if not 1 <= count <= MAX_FEE_HISTORY_BLOCKS:
        raise ValueError(f"blockCount must be from 1 to {MAX_FEE_HISTORY_BLOCKS}")
    return count


@rpc(
    "eth_feeHistory",
    Param("blockCount", _block_count),
    Param("newestBlock", p.block_number_or_tag),
    Param("rewardPercentiles", _percentiles, required=False),
)
def eth_fee_history(
    node: Node, count: int, newest_ref: p.BlockRef, percentiles: list[float] | None
) -> dict[str, Any]:
    newest = node.block(newest_ref)
    oldest = max(0, newest.number - count + 1)
    base_fees, ratios, rewards = [], [], []
    for number in range(oldest, newest.number + 1):
        block = newest if number == newest.number else node.store.block_by_number(number)
        assert block is not None
        header = decode_header(block.header)
        base_fees.append(quantity(header.base_fee_per_gas))
        ratios.append(header.gas_used / header.gas_limit)
        if percentiles:
            rewards.append(_rewards(node, block, header.base_fee_per_gas, percentiles))
    base_fees.append(quantity(next_base_fee(decode_header(newest.header))))
    result: dict[str, Any] = {
        "oldestBlock": quantity(oldest),
        "baseFeePerGas": base_fees,
        "gasUsedRatio": ratios,
        "baseFeePerBlobGas": [quantity(0)] * len(base_fees),
        "blobGasUsedRatio": [0.0] * len(ratios),
    }
    if percentiles is not None:
        result["reward"] = rewards
    return result
