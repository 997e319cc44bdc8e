"""Dev-chain state patches: canonical encoding, the patch block, and finding it again."""

from __future__ import annotations

import pytest
from eth_utils import to_canonical_address

from evm_runtime.calls import state_at
from evm_runtime.exceptions import InvalidRequest
from evm_runtime.state_patch import (
    MAX_CODE_BYTES,
    PATCH_MAGIC,
    SetBalance,
    SetCode,
    SetNonce,
    SetStorage,
    StatePatch,
    build_patch_block,
    decode_patch,
    encode_patch,
    stored_patch,
)
from evm_runtime.trie_root import BLANK_ROOT
from evm_runtime.types import ZERO_ADDRESS, Address
from tests.evm_runtime.chainkit import ACCOUNTS, address_of, funded_chain, recipient

TARGET = Address(to_canonical_address(recipient(1)))
PATCH = StatePatch(
    (
        SetBalance(TARGET, 10**30),
        SetNonce(TARGET, 3),
        SetCode(TARGET, b"\x60\x00"),
        SetStorage(TARGET, 2**255, 7),
        SetBalance(TARGET, 5),  # changes apply in order: the last balance wins
    )
)


def test_the_encoding_round_trips_and_refuses_what_is_not_a_patch() -> None:
    encoded = encode_patch(PATCH)
    assert encoded.startswith(PATCH_MAGIC) and decode_patch(encoded) == PATCH
    assert decode_patch(encoded[len(PATCH_MAGIC) :]) is None
    assert decode_patch(PATCH_MAGIC + b"\xff") is None
    assert decode_patch(PATCH_MAGIC + bytes.fromhex("c3c20901")) is None  # unknown kind 9


def test_a_patch_block_carries_the_patch_and_nothing_else() -> None:
    chain = funded_chain()
    built = build_patch_block(
        chain.head, PATCH, chain.params, ZERO_ADDRESS, chain.head.timestamp + 1, chain.cache
    )
    header = built.header
    assert header.parent_hash == chain.head.hash and header.block_number == 1
    assert (header.transaction_root, header.receipt_root, header.gas_used) == (BLANK_ROOT, BLANK_ROOT, 0)
    chain.source.update(built.state_writes)
    state = state_at(header, chain.params, chain.cache)
    assert state.get_balance(TARGET) == 5 and state.get_nonce(TARGET) == 3
    assert state.get_code(TARGET) == b"\x60\x00" and state.get_storage(TARGET, 2**255) == 7
    assert state.get_balance(address_of(ACCOUNTS[0])) == state_at(
        chain.head, chain.params, chain.cache
    ).get_balance(address_of(ACCOUNTS[0]))
    assert stored_patch(header, chain.cache) == PATCH
    assert stored_patch(chain.head, chain.cache) is None
    again = build_patch_block(chain.head, PATCH, chain.params, ZERO_ADDRESS, header.timestamp, chain.cache)
    assert again.hash == built.hash  # deterministic: a replay gives the same block


@pytest.mark.parametrize(
    "change",
    [
        SetBalance(TARGET, 2**256),
        SetNonce(TARGET, 2**64),
        SetCode(TARGET, bytes(MAX_CODE_BYTES + 1)),
        SetStorage(TARGET, 2**256, 0),
        SetBalance(Address(b"\x01"), 1),
    ],
)
def test_out_of_range_changes_are_refused(change: SetBalance | SetNonce | SetCode | SetStorage) -> None:
    chain = funded_chain()
    with pytest.raises(InvalidRequest):
        build_patch_block(chain.head, StatePatch((change,)), chain.params, ZERO_ADDRESS, 2_000, chain.cache)
