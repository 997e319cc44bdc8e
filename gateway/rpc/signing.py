"""Signing with the dev accounts' keys (`conclave dev` only, as Anvil and Hardhat do).

eth_sendTransaction and eth_signTransaction fill what the caller left out as a wallet
would: the pending nonce, an estimated gas limit, and fees (EIP-1559 unless `gasPrice` is
given: tip 1 gwei, fee cap twice the next base fee plus the tip). eth_sign and
personal_sign sign EIP-191 personal messages; eth_signTypedData_v4 signs EIP-712 data.
Only the dev accounts (eth_accounts) are unlocked; others are refused.
"""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils import ValidationError, to_checksum_address

from evm_runtime.exceptions import InvalidRequest
from evm_runtime.fees import DEFAULT_PRIORITY_FEE
from evm_runtime.transactions import decode_signed_transaction

from .. import params as p
from ..hexcodec import data
from ..node import Node
from ..views import pending_view
from .registry import Param, rpc
from .state import call_request, check_call_gas

MAX_TYPED_DATA_BYTES = 64 * 1024


def _key_of(node: Node, account: bytes) -> bytes:
    for address, key in zip(node.config.dev_accounts, node.config.dev_keys, strict=False):
        if address == account:
            return key
    raise InvalidRequest(
        f"unknown account {to_checksum_address(account)}: only the dev accounts (eth_accounts) are unlocked"
    )


def _signed(node: Node, call: p.CallObject) -> bytes:
    """The raw transaction a wallet would make of `call`, signed by its dev account."""
    if call.sender is None:
        raise InvalidRequest('missing "from": name the dev account that signs')
    key = _key_of(node, call.sender)
    check_call_gas(node, call)
    fields: dict[str, Any] = {
        "chainId": node.params.chain_id,
        "nonce": call.nonce if call.nonce is not None else node.pending_nonce(call.sender),
        "value": call.value,
        "data": call.data,
    }
    if call.to is not None:
        fields["to"] = to_checksum_address(call.to)
    if call.access_list:
        fields["accessList"] = [
            {"address": to_checksum_address(address), "storageKeys": [f"0x{slot:064x}" for slot in slots]}
            for address, slots in call.access_list
        ]
    if call.gas_price is not None and call.max_fee_per_gas is None and call.max_priority_fee_per_gas is None:
        fields["gasPrice"] = call.gas_price
    else:
        tip = (
            call.max_priority_fee_per_gas
            if call.max_priority_fee_per_gas is not None
            else DEFAULT_PRIORITY_FEE
        )
        fee_cap = call.max_fee_per_gas
        fields["maxPriorityFeePerGas"] = tip
        fields["maxFeePerGas"] = fee_cap if fee_cap is not None else 2 * node.enclave.next_base_fee() + tip
    fields["gas"] = (
        call.gas
        if call.gas is not None
        else node.enclave.estimate_gas(call_request(node, call), node.head.number)
    )
    return bytes(Account.sign_transaction(fields, key).raw_transaction)


@rpc("eth_sendTransaction", Param("transaction", p.call_object), dev_only=True)
def eth_send_transaction(node: Node, call: p.CallObject) -> str:
    return data(node.send_raw_transaction(_signed(node, call)))


@rpc("eth_signTransaction", Param("transaction", p.call_object), dev_only=True)
def eth_sign_transaction(node: Node, call: p.CallObject) -> dict[str, Any]:
    raw = _signed(node, call)
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
