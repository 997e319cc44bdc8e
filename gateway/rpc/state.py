"""Account state at a block, calls and gas estimates."""

from __future__ import annotations

from evm_runtime.exceptions import InvalidRequest
from evm_runtime.transactions import CallRequest
from evm_runtime.types import ZERO_ADDRESS

from .. import params as p
from ..hexcodec import data, quantity
from ..node import Node
from .registry import BLOCK, Param, rpc

# -- state ----------------------------------------------------------------------------


@rpc("eth_getBalance", Param("address", p.address), BLOCK)
def eth_get_balance(node: Node, account: bytes, ref: p.BlockRef) -> str:
    return quantity(node.enclave.balance(account, node.block_number_of(ref)))


@rpc("eth_getCode", Param("address", p.address), BLOCK)
def eth_get_code(node: Node, account: bytes, ref: p.BlockRef) -> str:
    return data(node.enclave.code(account, node.block_number_of(ref)))


@rpc("eth_getStorageAt", Param("address", p.address), Param("slot", p.storage_slot), BLOCK)
def eth_get_storage_at(node: Node, account: bytes, slot: int, ref: p.BlockRef) -> str:
    return data(node.enclave.storage_at(account, slot, node.block_number_of(ref)))


@rpc("eth_getTransactionCount", Param("address", p.address), BLOCK)
def eth_get_transaction_count(node: Node, account: bytes, ref: p.BlockRef) -> str:
    if ref.tag == "pending":
        return quantity(node.pending_nonce(account))
    return quantity(node.enclave.nonce(account, node.block_number_of(ref)))


def call_request(node: Node, call: p.CallObject) -> CallRequest:
    return CallRequest(
        sender=call.sender or ZERO_ADDRESS,
        to=call.to,
        gas=call.gas if call.gas is not None else node.params.gas_limit,
        value=call.value,
        data=call.data,
        gas_price=call.gas_price,
        max_fee_per_gas=call.max_fee_per_gas,
        max_priority_fee_per_gas=call.max_priority_fee_per_gas,
        access_list=call.access_list,
        nonce=call.nonce,
    )


def check_call_gas(node: Node, call: p.CallObject) -> None:
    if call.gas is not None and call.gas > node.params.gas_limit:
        raise InvalidRequest(f"gas {call.gas} exceeds the block gas limit {node.params.gas_limit}")


@rpc("eth_call", Param("transaction", p.call_object), BLOCK)
def eth_call(node: Node, call: p.CallObject, ref: p.BlockRef) -> str:
    check_call_gas(node, call)
    return data(node.enclave.call(call_request(node, call), node.block_number_of(ref)))


@rpc("eth_estimateGas", Param("transaction", p.call_object), BLOCK)
def eth_estimate_gas(node: Node, call: p.CallObject, ref: p.BlockRef) -> str:
    check_call_gas(node, call)
    return quantity(node.enclave.estimate_gas(call_request(node, call), node.block_number_of(ref)))
