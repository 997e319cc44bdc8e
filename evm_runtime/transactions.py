"""Decoding signed transactions and checking them against the chain's rules.

`decode_signed_transaction` does everything that needs no state: size, RLP, type, chain
id, signature and intrinsic gas. `check_admissible` adds the checks that need the sender's
account and the next block's base fee. Both are pure and raise the typed errors of
`exceptions`, whose messages say what to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import rlp
from eth.abc import SignedTransactionAPI
from eth.vm.spoof import SpoofTransaction
from eth_hash.auto import keccak
from eth_utils import ValidationError

from .chain import VM
from .exceptions import (
    FeeTooLow,
    GasLimitExceeded,
    InsufficientFunds,
    IntrinsicGasTooLow,
    InvalidRequest,
    NonceTooLow,
    PriorityFeeAboveMaxFee,
    UnsupportedTransactionType,
)
from .signatures import InvalidSignature, recover_sender, signing_hash
from .types import Address

MAX_TRANSACTION_BYTES = 128 * 1024
"""Largest encoded transaction admitted, as geth's pool does."""

MAX_NONCE = 2**64 - 1

LEGACY_TYPE = 0
ACCESS_LIST_TYPE = 1
DYNAMIC_FEE_TYPE = 2
BLOB_TYPE = 3
SET_CODE_TYPE = 4
TYPED = frozenset({ACCESS_LIST_TYPE, DYNAMIC_FEE_TYPE, SET_CODE_TYPE})
"""The EIP-2718 types admitted; a legacy transaction's encoding starts at 0xc0."""

_builder = VM.get_transaction_builder()


def transaction_type(tx: SignedTransactionAPI) -> int:
    """The EIP-2718 type of a transaction; 0 for legacy ones."""
    return getattr(tx, "type_id", None) or LEGACY_TYPE


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int) -> int:
    """What the sender pays per unit of gas in a block with `base_fee`."""
    if transaction_type(tx) in (LEGACY_TYPE, ACCESS_LIST_TYPE):
        return tx.gas_price
    return min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)


def max_cost(tx: SignedTransactionAPI) -> int:
    """The most a transaction can take from its sender: gas * max fee + value."""
    return tx.gas * tx.max_fee_per_gas + tx.value


@dataclass(frozen=True, slots=True)
class DecodedTransaction:
    """A signed transaction with its sender recovered once."""

    tx: SignedTransactionAPI
    sender: Address
    raw: bytes
    private_for: tuple[Address, ...] | None = None
    """Who else may see it, if it was sent as confidential (`evm_runtime.confidential`);
    None: it was sent as public."""
    seal: bytes = b""
    """The enclave's MAC over raw bytes, sender and `private_for`, when it came from an
    enclave process (`enclave.messages`): given back, it shows that the enclave settled them."""

    @property
    def hash(self) -> bytes:
        return self.tx.hash

    @property
    def nonce(self) -> int:
        return self.tx.nonce


def decode_signed_transaction(raw: bytes, chain_id: int) -> DecodedTransaction:
    """Decode and statelessly validate an encoded signed transaction."""
    if not raw:
        raise InvalidRequest("empty transaction: expected RLP- or EIP-2718-encoded bytes")
    if len(raw) > MAX_TRANSACTION_BYTES:
        raise InvalidRequest(f"oversized transaction: {len(raw)} bytes, the limit is {MAX_TRANSACTION_BYTES}")
    if raw[0] <= 0x7F and raw[0] not in TYPED:
        if raw[0] == BLOB_TYPE:
            raise UnsupportedTransactionType(
                "blob transactions (type 3) are not supported: Conclave keeps no blob data"
            )
        raise UnsupportedTransactionType(f"unknown transaction type {raw[0]}")
    try:
        tx = _builder.decode(raw)
    except (rlp.DecodingError, rlp.DeserializationError, ValidationError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"undecodable transaction: {exc}") from exc
    if _canonical_encoding(tx, raw[0]) != raw:
        raise InvalidRequest("undecodable transaction: the encoding is not canonical RLP")

    tx_chain_id = tx.chain_id
    if tx_chain_id is None:
        raise InvalidRequest(
            f"transaction is not replay-protected: sign it with EIP-155 and chain id {chain_id}"
        )
    if tx_chain_id != chain_id:
        raise InvalidRequest(f"invalid chain id {tx_chain_id}: this chain's id is {chain_id}")

    try:
        sender = recover_sender(signing_hash(raw, tx_chain_id), tx.y_parity, tx.r, tx.s)
    except InvalidSignature as exc:
        raise InvalidRequest(f"invalid signature: {exc}") from exc
    # Prime py-evm's cached properties: the sender is never recovered again.
    tx.__dict__["sender"] = sender
    if raw[0] < 0xC0:
        tx.__dict__["hash"] = keccak(raw)

    if transaction_type(tx) not in (LEGACY_TYPE, ACCESS_LIST_TYPE):
        if tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
            raise PriorityFeeAboveMaxFee(
                f"max priority fee per gas ({tx.max_priority_fee_per_gas}) is higher "
                f"than max fee per gas ({tx.max_fee_per_gas})"
            )
    intrinsic = tx.intrinsic_gas
    if tx.gas < intrinsic:
        raise IntrinsicGasTooLow(f"intrinsic gas too low: gas {tx.gas}, minimum needed {intrinsic}")
    _check_field_ranges(tx)
    return DecodedTransaction(tx=tx, sender=sender, raw=raw)


def _canonical_encoding(tx: SignedTransactionAPI, first_byte: int) -> bytes:
    """The transaction encoded afresh from its fields (rlp would reuse the input bytes)."""
    if first_byte >= 0xC0:
        return rlp.encode(type(tx).serialize(tx))
    inner = tx._inner  # typed transactions wrap their payload
    return bytes([first_byte]) + rlp.encode(type(inner).serialize(inner))


def _check_field_ranges(tx: SignedTransactionAPI) -> None:
    """Field bounds: nonce below 2**64 - 1 (EIP-2681), amounts within 256 bits."""
    if tx.nonce >= MAX_NONCE:
        raise InvalidRequest(f"invalid transaction: nonce must be below 2**64 - 1, got {tx.nonce}")
    if transaction_type(tx) == LEGACY_TYPE:
        amounts = {"gas": tx.gas, "gasPrice": tx.gas_price, "value": tx.value}
    else:
        try:
            tx.validate()  # typed transactions: field checks only, no signature check
        except ValidationError as exc:
            raise InvalidRequest(f"invalid transaction: {exc}") from exc
        return
    for name, value in amounts.items():
        if value >= 2**256:
            raise InvalidRequest(f"invalid transaction: {name} does not fit in 256 bits")


def check_admissible(
    decoded: DecodedTransaction,
    *,
    account_nonce: int,
    balance: int,
    base_fee: int,
    block_gas_limit: int,
) -> None:
    """Refuse a transaction that cannot be included on top of the current state."""
    tx = decoded.tx
    if tx.nonce < account_nonce:
        raise NonceTooLow(f"nonce too low: next nonce {account_nonce}, tx nonce {tx.nonce}")
    if tx.gas > block_gas_limit:
        raise GasLimitExceeded(f"exceeds block gas limit: tx gas {tx.gas}, block gas limit {block_gas_limit}")
    if tx.max_fee_per_gas < base_fee:
        raise FeeTooLow(
            f"max fee per gas less than block base fee: maxFeePerGas {tx.max_fee_per_gas}, baseFee {base_fee}"
        )
    cost = max_cost(tx)
    if balance < cost:
        raise InsufficientFunds(
            f"insufficient funds for gas * price + value: balance {balance}, "
            f"tx cost {cost}, overshot {cost - balance}"
        )


@dataclass(frozen=True, slots=True)
class CallRequest:
    """An unsigned message to execute against a state (eth_call, eth_estimateGas)."""

    sender: Address
    to: Address | None
    gas: int
    value: int = 0
    data: bytes = b""
    gas_price: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    access_list: Sequence[tuple[Address, Sequence[int]]] = ()
    nonce: int | None = None

    @property
    def pays_fees(self) -> bool:
        return any(
            fee is not None for fee in (self.gas_price, self.max_fee_per_gas, self.max_priority_fee_per_gas)
        )


def make_call_transaction(call: CallRequest, *, chain_id: int, nonce: int, gas: int) -> SignedTransactionAPI:
    """An unsigned transaction carrying `call`, spoofed to come from its sender."""
    to = call.to or b""
    access_list = [(address, list(slots)) for address, slots in call.access_list]
    if call.gas_price is not None:
        unsigned = _builder.new_unsigned_access_list_transaction(
            chain_id, nonce, call.gas_price, gas, to, call.value, call.data, access_list
        )
    else:
        max_fee = call.max_fee_per_gas or 0
        priority = call.max_priority_fee_per_gas or 0
        unsigned = _builder.new_unsigned_dynamic_fee_transaction(
            chain_id,
            nonce,
            min(priority, max_fee),
            max_fee,
            gas,
            to,
            call.value,
            call.data,
            access_list,
        )
    return SpoofTransaction(unsigned, from_=call.sender)


def decode_recovered(raw: bytes, sender: Address) -> DecodedTransaction:
    """A transaction `decode_signed_transaction` accepted before, with its known sender.

    Only for bytes that came from the enclave: nothing is validated or recovered again.
    """
    tx = _builder.decode(raw)
    tx.__dict__["sender"] = sender
    if raw[0] < 0xC0:
        tx.__dict__["hash"] = keccak(raw)
    return DecodedTransaction(tx=tx, sender=sender, raw=raw)
