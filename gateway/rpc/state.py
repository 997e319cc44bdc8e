"""Account state at a block, calls and gas estimates."""

from __future__ import annotations

from typing import Any

from evm_runtime.exceptions import InvalidRequest
from evm_runtime.overrides import NO_OVERRIDES, StateOverrides
from evm_runtime.state_proofs import MAX_PROOF_SLOTS
from evm_runtime.transactions import CallRequest
from evm_runtime.types import ZERO_ADDRESS, Address

from .. import params as p
from ..caller import current_token
from ..hexcodec import address, data, quantity
from ..node import Node
from .registry import BLOCK, Param, rpc

# -- state ----------------------------------------------------------------------------


@rpc("eth_getBalance", Param("address", p.address), BLOCK)
def eth_get_balance(node: Node, account: bytes, ref: p.BlockRef) -> str:
    return quantity(node.enclave.balance(account, node.block_number_of(ref), current_token()))


@rpc("eth_getCode", Param("address", p.address), BLOCK)
def eth_get_code(node: Node, account: bytes, ref: p.BlockRef) -> str:
    return data(node.enclave.code(account, node.block_number_of(ref), current_token()))


@rpc("eth_getStorageAt", Param("address", p.address), Param("slot", p.storage_slot), BLOCK)
def eth_get_storage_at(node: Node, account: bytes, slot: int, ref: p.BlockRef) -> str:
    return data(node.enclave.storage_at(account, slot, node.block_number_of(ref), current_token()))


def _slots(value: Any) -> list[int]:
    return p.list_of(p.storage_slot, max_items=MAX_PROOF_SLOTS)(value)  # type: ignore[no-any-return]


def _storage_requests(value: Any) -> dict[Address, list[int]]:
    """{address: [slot, ...]}, at most `MAX_PROOF_SLOTS` slots in all."""
    if not isinstance(value, dict):
        raise ValueError("expected an object from addresses to arrays of storage slots")
    requests = {Address(p.address(account)): _slots(slots) for account, slots in value.items()}
    if sum(map(len, requests.values())) > MAX_PROOF_SLOTS:
        raise ValueError(f"at most {MAX_PROOF_SLOTS} storage slots in one request")
    return requests


@rpc("eth_getStorageValues", Param("requests", _storage_requests), BLOCK)
def eth_get_storage_values(
    node: Node, requests: dict[Address, list[int]], ref: p.BlockRef
) -> dict[str, list[str]]:
    values = node.enclave.storage_values(requests, node.block_number_of(ref), current_token())
    return {address(account): [data(value) for value in slots] for account, slots in values.items()}


@rpc("eth_getProof", Param("address", p.address), Param("storageKeys", _slots), BLOCK)
def eth_get_proof(node: Node, account: bytes, slots: list[int], ref: p.BlockRef) -> dict[str, Any]:
    proof = node.enclave.prove_account(Address(account), slots, node.block_number_of(ref), current_token())
    return {
        "address": address(proof.address),
        "accountProof": [data(item) for item in proof.proof],
        "balance": quantity(proof.balance),
        "codeHash": data(proof.code_hash),
        "nonce": quantity(proof.nonce),
        "storageHash": data(proof.storage_root),
        "storageProof": [
            {
                "key": quantity(slot.slot),
                "value": quantity(slot.value),
                "proof": [data(item) for item in slot.proof],
            }
            for slot in proof.storage
        ],
    }


@rpc("eth_getTransactionCount", Param("address", p.address), BLOCK)
def eth_get_transaction_count(node: Node, account: bytes, ref: p.BlockRef) -> str:
    if ref.tag == "pending":
        return quantity(node.pending_nonce(account))
    return quantity(node.enclave.nonce(account, node.block_number_of(ref), current_token()))


def call_request(node: Node, call: p.CallObject) -> CallRequest:
    return CallRequest(
        sender=call.sender or ZERO_ADDRESS,
        to=call.to,
        gas=call.gas if call.gas is not None else node.block_gas_limit(),
        value=call.value,
        data=call.data,
        gas_price=call.gas_price,
        max_fee_per_gas=call.max_fee_per_gas,
        max_priority_fee_per_gas=call.max_priority_fee_per_gas,
        access_list=call.access_list,
        nonce=call.nonce,
    )


def check_call_gas(node: Node, call: p.CallObject) -> None:
    limit = node.block_gas_limit()
    if call.gas is not None and call.gas > limit:
        raise InvalidRequest(f"gas {call.gas} exceeds the block gas limit {limit}")


OVERRIDES = Param("stateOverrides", p.state_overrides, required=False, default=NO_OVERRIDES)
"""geth's third parameter of eth_call and eth_estimateGas: accounts replaced for the call."""


@rpc("eth_call", Param("transaction", p.call_object), BLOCK, OVERRIDES)
def eth_call(node: Node, call: p.CallObject, ref: p.BlockRef, overrides: StateOverrides) -> str:
    check_call_gas(node, call)
    return data(
        node.enclave.call(call_request(node, call), node.block_number_of(ref), overrides, current_token())
    )


@rpc("eth_createAccessList", Param("transaction", p.call_object), BLOCK)
def eth_create_access_list(node: Node, call: p.CallObject, ref: p.BlockRef) -> dict[str, Any]:
    check_call_gas(node, call)
    outcome = node.enclave.create_access_list(
        call_request(node, call), node.block_number_of(ref), current_token()
    )
    result: dict[str, Any] = {
        "accessList": [
            {"address": address(account), "storageKeys": [data(slot.to_bytes(32, "big")) for slot in slots]}
            for account, slots in outcome.access_list
        ],
        "gasUsed": quantity(outcome.gas_used),
    }
    if outcome.error is not None:
        result["error"] = outcome.error
    return result


@rpc("eth_estimateGas", Param("transaction", p.call_object), BLOCK, OVERRIDES)
def eth_estimate_gas(node: Node, call: p.CallObject, ref: p.BlockRef, overrides: StateOverrides) -> str:
    check_call_gas(node, call)
    block_number = node.block_number_of(ref)
    return quantity(
        node.enclave.estimate_gas(call_request(node, call), block_number, overrides, current_token())
    )
