"""Filling and signing transactions as a wallet would.

A transaction is filled with what the caller left out: the chain id, the pending nonce
(counting the pool's waiting transactions), an estimated gas limit, a type and fees.
The type is the one asked for (`type`), else legacy when only `gasPrice` is given (EIP-2930
with an access list), else EIP-1559. Fees are the node's suggestions: tip 1 gwei
(eth_maxPriorityFeePerGas), fee cap twice the next base fee plus the tip, gas price the
next base fee plus the tip (eth_gasPrice).

eth_fillTransaction answers the filled transaction unsigned, on any node; the rest is
`conclave dev` only, as Anvil and Hardhat do: eth_sendTransaction and eth_signTransaction
sign the filled transaction with a dev account's key, eth_sign and personal_sign sign
EIP-191 personal messages, eth_signTypedData_v4 signs EIP-712 data. Only the dev accounts
(eth_accounts) are unlocked; others are refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth.abc import SignedTransactionAPI
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils import ValidationError, to_checksum_address

from evm_runtime.chain import VM
from evm_runtime.exceptions import InvalidRequest
from evm_runtime.transactions import (
    ACCESS_LIST_TYPE,
    BLOB_TYPE,
    DYNAMIC_FEE_TYPE,
    LEGACY_TYPE,
    SET_CODE_TYPE,
    decode_signed_transaction,
)
from evm_runtime.types import ZERO_ADDRESS

from .. import params as p
from ..hexcodec import data
from ..node import Node
from ..views import Json, pending_view, transaction_view
from .registry import Param, rpc
from .state import call_request, check_call_gas

MAX_TYPED_DATA_BYTES = 64 * 1024
_FILLABLE_TYPES = (LEGACY_TYPE, ACCESS_LIST_TYPE, DYNAMIC_FEE_TYPE)
_builder = VM.get_transaction_builder()


# -- filling --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillRequest:
    """A GenericTransaction to fill: the call's fields plus the type and chain id asked for."""

    call: p.CallObject
    type: int | None = None
    chain_id: int | None = None


def fill_request(value: Any) -> FillRequest:
    """A GenericTransaction for eth_fillTransaction, eth_signTransaction, eth_sendTransaction."""
    call = p.call_object(value)
    kind = p.optional(p.quantity)(value.get("type"))
    if kind == BLOB_TYPE or value.get("blobVersionedHashes") or value.get("blobs"):
        raise ValueError("blob (0x3) transactions cannot be filled: this chain carries no blobs")
    if kind == SET_CODE_TYPE or value.get("authorizationList"):
        raise ValueError("set-code (0x4) transactions cannot be filled: sign the authorizations yourself")
    if kind is not None and kind not in _FILLABLE_TYPES:
        raise ValueError(f"unknown transaction type {hex(kind)}: expected 0x0, 0x1 or 0x2")
    fee_market = call.max_fee_per_gas is not None or call.max_priority_fee_per_gas is not None
    if kind in (LEGACY_TYPE, ACCESS_LIST_TYPE) and fee_market:
        raise ValueError(
            f"a type {hex(kind)} transaction takes gasPrice, not maxFeePerGas/maxPriorityFeePerGas"
        )
    if kind == DYNAMIC_FEE_TYPE and call.gas_price is not None:
        raise ValueError("a type 0x2 transaction takes maxFeePerGas/maxPriorityFeePerGas, not gasPrice")
    if kind == LEGACY_TYPE and call.access_list:
        raise ValueError("a legacy (0x0) transaction has no accessList: use type 0x1 or 0x2")
    tip, fee_cap = call.max_priority_fee_per_gas, call.max_fee_per_gas
    if tip is not None and fee_cap is not None and tip > fee_cap:
        raise ValueError(f"maxPriorityFeePerGas {tip} is above maxFeePerGas {fee_cap}")
    return FillRequest(call, kind, p.optional(p.quantity)(value.get("chainId")))


@dataclass(frozen=True, slots=True)
class Filled:
    """A complete transaction, ready to sign."""

    type: int
    chain_id: int
    nonce: int
    gas: int
    to: bytes | None
    value: int
    data: bytes
    access_list: tuple[tuple[bytes, tuple[int, ...]], ...]
    gas_price: int | None
    max_fee_per_gas: int | None
    max_priority_fee_per_gas: int | None


def _type_of(request: FillRequest) -> int:
    """The type asked for; else legacy (or EIP-2930 with an access list) for a gasPrice, else EIP-1559."""
    call = request.call
    if request.type is not None:
        return request.type
    if call.gas_price is not None and call.max_fee_per_gas is None and call.max_priority_fee_per_gas is None:
        return ACCESS_LIST_TYPE if call.access_list else LEGACY_TYPE
    return DYNAMIC_FEE_TYPE


def fill(node: Node, request: FillRequest) -> Filled:
    """`request` with what a wallet fills: chain id, pending nonce, fees and estimated gas."""
    call = request.call
    chain_id = node.params.chain_id
    if request.chain_id is not None and request.chain_id != chain_id:
        raise InvalidRequest(f"chainId {hex(request.chain_id)} is not this chain's ({hex(chain_id)})")
    check_call_gas(node, call)
    kind = _type_of(request)
    gas_price = tip = fee_cap = None
    if kind == DYNAMIC_FEE_TYPE:
        tip = call.max_priority_fee_per_gas
        if tip is None:
            suggested = node.suggested_tip()
            tip = suggested if call.max_fee_per_gas is None else min(suggested, call.max_fee_per_gas)
        fee_cap = call.max_fee_per_gas
        if fee_cap is None:
            fee_cap = max(2 * node.enclave.next_base_fee() + tip, node.minimum_gas_price())
    else:
        gas_price = call.gas_price
        if gas_price is None:
            gas_price = max(node.enclave.next_base_fee() + node.suggested_tip(), node.minimum_gas_price())
    sender = call.sender or ZERO_ADDRESS
    return Filled(
        type=kind,
        chain_id=chain_id,
        nonce=call.nonce if call.nonce is not None else node.pending_nonce(sender),
        gas=call.gas
        if call.gas is not None
        else node.enclave.estimate_gas(call_request(node, call), node.head.number),
        to=call.to,
        value=call.value,
        data=call.data,
        access_list=call.access_list,
        gas_price=gas_price,
        max_fee_per_gas=fee_cap,
        max_priority_fee_per_gas=tip,
    )


def unsigned_transaction(filled: Filled) -> SignedTransactionAPI:
    """The filled transaction with a zero signature (v, r, s = 0), as geth encodes one unsigned."""
    to = filled.to or b""
    if filled.type == LEGACY_TYPE:
        return _builder.new_transaction(
            filled.nonce, filled.gas_price, filled.gas, to, filled.value, filled.data, 0, 0, 0
        )
    if filled.type == ACCESS_LIST_TYPE:
        return _builder.new_access_list_transaction(
            filled.chain_id,
            filled.nonce,
            filled.gas_price,
            filled.gas,
            to,
            filled.value,
            filled.data,
            filled.access_list,
            0,
            0,
            0,
        )
    return _builder.new_dynamic_fee_transaction(
        filled.chain_id,
        filled.nonce,
        filled.max_priority_fee_per_gas,
        filled.max_fee_per_gas,
        filled.gas,
        to,
        filled.value,
        filled.data,
        filled.access_list,
        0,
        0,
        0,
    )


def _eth_account_fields(filled: Filled) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "chainId": filled.chain_id,
        "nonce": filled.nonce,
        "gas": filled.gas,
        "value": filled.value,
        "data": filled.data,
    }
    if filled.to is not None:
        fields["to"] = to_checksum_address(filled.to)
    if filled.type != LEGACY_TYPE:
        fields["type"] = filled.type
        fields["accessList"] = [
            {"address": to_checksum_address(address), "storageKeys": [f"0x{slot:064x}" for slot in slots]}
            for address, slots in filled.access_list
        ]
    if filled.type == DYNAMIC_FEE_TYPE:
        fields["maxPriorityFeePerGas"] = filled.max_priority_fee_per_gas
        fields["maxFeePerGas"] = filled.max_fee_per_gas
    else:
        fields["gasPrice"] = filled.gas_price
    return fields


@rpc("eth_fillTransaction", Param("transaction", fill_request))
def eth_fill_transaction(node: Node, request: FillRequest) -> dict[str, Any]:
    tx = unsigned_transaction(fill(node, request))
    view: Json = transaction_view(
        tx,
        sender=request.call.sender or ZERO_ADDRESS,
        block_hash=None,
        block_number=None,
        block_timestamp=None,
        index=None,
        base_fee=None,
    )
    for context in ("blockHash", "blockNumber", "blockTimestamp", "transactionIndex"):
        del view[context]
    return {"raw": data(tx.encode()), "tx": view}


# -- signing with the dev accounts ----------------------------------------------------


def _key_of(node: Node, account: bytes) -> bytes:
    for address, key in zip(node.config.dev_accounts, node.config.dev_keys, strict=False):
        if address == account:
            return key
    raise InvalidRequest(
        f"unknown account {to_checksum_address(account)}: only the dev accounts (eth_accounts) are unlocked"
    )


def _signed(node: Node, request: FillRequest) -> bytes:
    """The raw transaction a wallet would make of `request`, signed by its dev account."""
    if request.call.sender is None:
        raise InvalidRequest('missing "from": name the dev account that signs')
    key = _key_of(node, request.call.sender)
    fields = _eth_account_fields(fill(node, request))
    return bytes(Account.sign_transaction(fields, key).raw_transaction)


@rpc("eth_sendTransaction", Param("transaction", fill_request), dev_only=True)
def eth_send_transaction(node: Node, request: FillRequest) -> str:
    return data(node.send_raw_transaction(_signed(node, request)))


@rpc("eth_signTransaction", Param("transaction", fill_request), dev_only=True)
def eth_sign_transaction(node: Node, request: FillRequest) -> dict[str, Any]:
    raw = _signed(node, request)
    return {"raw": data(raw), "tx": pending_view(decode_signed_transaction(raw, node.params.chain_id))}


def _sign_message(node: Node, account: bytes, message: bytes) -> str:
    signed = Account.sign_message(encode_defunct(primitive=message), _key_of(node, account))
    return data(bytes(signed.signature))


@rpc("eth_sign", Param("address", p.address), Param("message", p.data), dev_only=True)
def eth_sign(node: Node, account: bytes, message: bytes) -> str:
    return _sign_message(node, account, message)


@rpc("personal_sign", Param("message", p.data), Param("address", p.address), dev_only=True)
def personal_sign(node: Node, message: bytes, account: bytes) -> str:
    return _sign_message(node, account, message)


def _typed_data(value: Any) -> dict[str, Any]:
    """EIP-712 typed data, as an object or as its JSON text (MetaMask sends text)."""
    if isinstance(value, str):
        if len(value) > MAX_TYPED_DATA_BYTES:
            raise ValueError(f"typed data is larger than {MAX_TYPED_DATA_BYTES} bytes")
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"typed data given as text must be JSON: {exc}") from None
    if not isinstance(value, dict) or not {"types", "primaryType", "domain", "message"} <= set(value):
        raise ValueError("expected EIP-712 typed data with types, primaryType, domain and message")
    return value


@rpc("eth_signTypedData_v4", Param("address", p.address), Param("typedData", _typed_data), dev_only=True)
def eth_sign_typed_data_v4(node: Node, account: bytes, typed: dict[str, Any]) -> str:
    key = _key_of(node, account)
    try:
        message = encode_typed_data(full_message=typed)
    except (ValueError, TypeError, KeyError, ValidationError) as exc:
        raise InvalidRequest(f"invalid typed data: {exc}") from None
    return data(bytes(Account.sign_message(message, key).signature))
