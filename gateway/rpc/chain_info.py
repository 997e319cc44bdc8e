"""What the chain is and what the node keeps: eth_config (EIP-7910), eth_capabilities and
the block access lists (EIP-7928).

eth_config answers the fork configuration in force (`evm_runtime.fork_config`): Prague from
genesis, with no fork scheduled after it, so `next` and `last` are null; addresses are in
lower case, as EIP-7910 writes them.
eth_capabilities tells routers what history the node serves: everything, from block 0,
since nothing is ever pruned (no delete strategy). eth_getBlockAccessList and
debug_getRawBlockAccessList answer a block's EIP-7928 access list, which the enclave
records by replaying the block (`evm_runtime.block_access_list`): as JSON (null for an
unknown block), or as its RLP encoding (-32001 for an unknown block).
"""

from __future__ import annotations

from typing import Any

from evm_runtime.block_access_list import AccountChanges, encode_block_access_list
from evm_runtime.fork_config import ForkConfig, current_config
from evm_runtime.types import Address, Hash32
from governance.system_contract import GOVERNANCE_ADDRESS

from .. import params as p
from ..hexcodec import address, data, quantity
from ..node import Node
from .registry import Param, rpc

CHAIN_SYSTEM_CONTRACTS: tuple[tuple[str, Address], ...] = (
    ("CONCLAVE_GOVERNANCE_ADDRESS", GOVERNANCE_ADDRESS),
)
"""Conclave's own system contracts, listed when the chain's genesis holds them."""

CAPABILITY_RESOURCES = ("state", "tx", "logs", "receipts", "blocks", "stateproofs")


# -- eth_config -----------------------------------------------------------------------


def _config_view(config: ForkConfig) -> dict[str, Any]:
    return {
        "activationTime": config.activation_time,
        "blobSchedule": {
            "baseFeeUpdateFraction": config.blob_schedule.base_fee_update_fraction,
            "max": config.blob_schedule.max,
            "target": config.blob_schedule.target,
        },
        "chainId": quantity(config.chain_id),
        "forkId": data(config.fork_id),
        "precompiles": {name: data(at) for name, at in config.precompiles},
        "systemContracts": {name: data(at) for name, at in config.system_contracts},
    }


@rpc("eth_config")
def eth_config(node: Node) -> dict[str, Any]:
    genesis = node.store.block_by_number(0)
    assert genesis is not None  # a node starts by making or finding its genesis block
    present = {name: at for name, at in CHAIN_SYSTEM_CONTRACTS if node.enclave.code(at, genesis.number)}
    config = current_config(node.params.chain_id, Hash32(genesis.hash), present)
    return {"current": _config_view(config), "next": None, "last": None}


# -- eth_capabilities -----------------------------------------------------------------


@rpc("eth_capabilities")
def eth_capabilities(node: Node) -> dict[str, Any]:
    head = node.head
    kept_from_genesis = {"disabled": False, "oldestBlock": quantity(0)}
    return {
        "head": {"number": quantity(head.number), "hash": data(head.hash)},
        **{resource: dict(kept_from_genesis) for resource in CAPABILITY_RESOURCES},
    }


# -- block access lists ---------------------------------------------------------------


def _word(value: int) -> str:
    return data(value.to_bytes(32, "big"))


def _account_view(account: AccountChanges) -> dict[str, Any]:
    return {
        "address": address(account.address),
        "storageChanges": [
            {
                "key": _word(slot),
                "changes": [{"index": quantity(index), "value": _word(value)} for index, value in changes],
            }
            for slot, changes in account.storage_changes
        ],
        "storageReads": [_word(slot) for slot in account.storage_reads],
        "balanceChanges": [
            {"index": quantity(index), "value": quantity(value)} for index, value in account.balance_changes
        ],
        "nonceChanges": [
            {"index": quantity(index), "value": quantity(value)} for index, value in account.nonce_changes
        ],
        "codeChanges": [
            {"index": quantity(index), "code": data(code)} for index, code in account.code_changes
        ],
    }


@rpc("eth_getBlockAccessList", Param("block", p.block_ref))
def eth_get_block_access_list(node: Node, ref: p.BlockRef) -> list[dict[str, Any]] | None:
    block = node.find_block(ref)
    if block is None:
        return None
    return [_account_view(account) for account in node.enclave.block_access_list(block.number)]


@rpc("debug_getRawBlockAccessList", Param("block", p.block_number_or_tag))
def debug_get_raw_block_access_list(node: Node, ref: p.BlockRef) -> str:
    return data(encode_block_access_list(node.enclave.block_access_list(node.block(ref).number)))
