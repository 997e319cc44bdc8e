"""Block access lists (EIP-7928) recorded by replaying blocks of an in-memory chain."""

from __future__ import annotations

import rlp
from eth._utils.address import generate_contract_address

from evm_runtime.block_access_list import (
    AccountChanges,
    BlockAccessList,
    block_access_list,
    encode_block_access_list,
)
from evm_runtime.chain import VM, GenesisAccount
from evm_runtime.state_db import StateOverlay
from evm_runtime.state_patch import SetBalance, SetNonce, SetStorage, StatePatch, build_patch_block
from evm_runtime.transactions import DecodedTransaction
from evm_runtime.types import ZERO_ADDRESS, Address
from tests.evm_runtime.chainkit import ACCOUNTS, ETHER, GWEI, MemoryChain, address_of, decoded, recipient

ALICE, BOB = ACCOUNTS[:2]
WATCHED = Address(bytes(19) + b"\x99")
"""An account the contract only asks the balance of."""
CONTRACT = Address(bytes(19) + b"\xcc")
CONTRACT_CODE = bytes.fromhex(
    "602a600055"  # SSTORE(0, 42): a write
    "60015450"  # SLOAD(1): a read
    "6007600255"  # SSTORE(2, 7) where 7 is stored already: a read
    "73" + WATCHED.hex() + "3150"  # BALANCE(WATCHED): an access without change
    "00"
)
REVERTER = Address(bytes(19) + b"\xdd")
REVERTER_CODE = bytes.fromhex("6001600055600080fd")  # SSTORE(0, 1), then REVERT
INIT_CODE = bytes.fromhex("6001600c60003960016000f300")  # deploys the one-byte code STOP
SHA256_PRECOMPILE = Address(bytes(19) + b"\x02")


def _chain() -> MemoryChain:
    alloc = {address_of(account): GenesisAccount(balance=1_000 * ETHER) for account in ACCOUNTS}
    alloc[CONTRACT] = GenesisAccount(code=CONTRACT_CODE, storage={2: 7})
    alloc[REVERTER] = GenesisAccount(code=REVERTER_CODE)
    return MemoryChain(alloc=alloc)


def _replayed(chain: MemoryChain, batch: list[DecodedTransaction]) -> BlockAccessList:
    parent = chain.head
    built = chain.build(batch)
    assert len(built.transactions) == len(batch)
    ancestors = list(reversed(chain.hashes[: parent.block_number + 1]))
    return block_access_list(parent, built.header, batch, chain.params, chain.cache, ancestors)


def _by_address(accesses: BlockAccessList) -> dict[Address, AccountChanges]:
    return {account.address: account for account in accesses}


def _address(text: str) -> Address:
    return Address(bytes.fromhex(text[2:]))


def test_each_transaction_records_its_writes_reads_and_changes_at_its_index() -> None:
    chain = _chain()
    accesses = _replayed(
        chain,
        [
            decoded(ALICE, nonce=0, to="0x" + CONTRACT.hex(), value=5, gas=100_000),
            decoded(ALICE, nonce=1, to=recipient(1), value=1),
            decoded(BOB, nonce=0, to=recipient(2)),
        ],
    )
    assert [account.address for account in accesses] == sorted(account.address for account in accesses)
    found = _by_address(accesses)
    assert found[CONTRACT] == AccountChanges(
        address=CONTRACT,
        storage_changes=((0, ((1, 42),)),),
        storage_reads=(1, 2),
        balance_changes=((1, 5),),
    )
    assert found[WATCHED] == AccountChanges(address=WATCHED)
    alice = found[address_of(ALICE)]
    assert [index for index, _ in alice.balance_changes] == [1, 2]
    assert alice.nonce_changes == ((1, 1), (2, 2))
    assert found[_address(recipient(1))].balance_changes == ((2, 1),)
    # A zero-value recipient is listed, with no change.
    assert found[_address(recipient(2))] == AccountChanges(address=_address(recipient(2)))
    bob = found[address_of(BOB)]
    assert bob.nonce_changes == ((3, 1),) and bob.balance_changes[0][0] == 3
    # The coinbase earns each transaction's tip, after each one.
    tips = found[ZERO_ADDRESS].balance_changes
    assert [index for index, _ in tips] == [1, 2, 3] and tips[0][1] > 0
    assert set(found) == {
        CONTRACT,
        WATCHED,
        address_of(ALICE),
        address_of(BOB),
        _address(recipient(1)),
        _address(recipient(2)),
        ZERO_ADDRESS,
    }


def test_a_creation_records_the_new_code_and_nonce() -> None:
    chain = _chain()
    accesses = _by_address(_replayed(chain, [decoded(ALICE, nonce=0, to=None, data=INIT_CODE, gas=100_000)]))
    created = Address(generate_contract_address(address_of(ALICE), 0))
    assert accesses[created] == AccountChanges(
        address=created, nonce_changes=((1, 1),), code_changes=((1, b"\x00"),)
    )


def test_a_reverted_write_is_a_read_and_access_lists_are_not_copied() -> None:
    chain = _chain()
    untouched = Address(bytes(19) + b"\x77")
    batch = [
        decoded(ALICE, nonce=0, to="0x" + REVERTER.hex(), gas=100_000),
        decoded(
            ALICE,
            nonce=1,
            to="0x" + SHA256_PRECOMPILE.hex(),
            data=b"abc",
            gas=100_000,
            accessList=[{"address": "0x" + untouched.hex(), "storageKeys": ["0x" + "00" * 31 + "05"]}],
        ),
    ]
    accesses = _by_address(_replayed(chain, batch))
    assert accesses[REVERTER] == AccountChanges(address=REVERTER, storage_reads=(0,))
    assert accesses[SHA256_PRECOMPILE] == AccountChanges(address=SHA256_PRECOMPILE)
    assert untouched not in accesses


def test_a_slot_written_anywhere_in_the_block_is_not_a_read() -> None:
    chain = _chain()
    first = decoded(ALICE, nonce=0, to="0x" + CONTRACT.hex(), gas=100_000)
    again = decoded(ALICE, nonce=1, to="0x" + CONTRACT.hex(), gas=100_000)  # writes 42 over 42
    contract = _by_address(_replayed(chain, [first, again]))[CONTRACT]
    assert contract.storage_changes == ((0, ((1, 42),)),)
    assert contract.storage_reads == (1, 2)


def test_the_final_values_rebuild_the_block_state_from_its_parent() -> None:
    chain = _chain()
    parent = chain.head
    batch = [
        decoded(ALICE, nonce=0, to="0x" + CONTRACT.hex(), value=5, gas=100_000),
        decoded(ALICE, nonce=1, to=None, data=INIT_CODE, gas=100_000),
        decoded(BOB, nonce=0, to=recipient(4), value=3 * GWEI),
        decoded(BOB, nonce=1, to="0x" + REVERTER.hex(), gas=100_000),
    ]
    accesses = _replayed(chain, batch)
    state = VM.build_state(StateOverlay(chain.cache), parent, chain.params.context, ())
    for account in accesses:
        for _, balance in account.balance_changes[-1:]:
            state.set_balance(account.address, balance)
        for _, nonce in account.nonce_changes[-1:]:
            state.set_nonce(account.address, nonce)
        for _, code in account.code_changes[-1:]:
            state.set_code(account.address, code)
        for slot, changes in account.storage_changes:
            state.set_storage(account.address, slot, changes[-1][1])
    state.persist()
    assert state.state_root == chain.head.state_root


def test_an_empty_block_and_the_genesis_have_an_empty_list() -> None:
    chain = _chain()
    assert _replayed(chain, []) == ()
    assert block_access_list(None, chain.genesis, [], chain.params, chain.cache, []) == ()
    assert encode_block_access_list(()) == bytes.fromhex("c0")


def test_a_state_patch_block_changes_at_index_zero() -> None:
    chain = _chain()
    parent = chain.head
    patch = StatePatch(
        (
            SetBalance(WATCHED, 9),
            SetNonce(address_of(BOB), 4),
            SetStorage(CONTRACT, 3, 8),
            SetStorage(CONTRACT, 2, 7),  # the value it holds: a read
        )
    )
    built = build_patch_block(parent, patch, chain.params, ZERO_ADDRESS, parent.timestamp + 1, chain.cache)
    chain.source.update(built.state_writes)
    accesses = block_access_list(parent, built.header, [], chain.params, chain.cache, [])
    assert accesses == (
        AccountChanges(address=WATCHED, balance_changes=((0, 9),)),
        AccountChanges(address=CONTRACT, storage_changes=((3, ((0, 8),)),), storage_reads=(2,)),
        AccountChanges(address=address_of(BOB), nonce_changes=((0, 4),)),
    )


def test_the_encoding_is_eip_7928s_rlp() -> None:
    accesses = (
        AccountChanges(
            address=CONTRACT,
            storage_changes=((0, ((1, 42),)),),
            storage_reads=(1, 2),
            balance_changes=((1, 5),),
            nonce_changes=((2, 1),),
            code_changes=((2, b"\x00"),),
        ),
    )
    assert rlp.decode(encode_block_access_list(accesses)) == [
        [
            CONTRACT,
            [[b"", [[b"\x01", b"\x2a"]]]],
            [b"\x01", b"\x02"],
            [[b"\x01", b"\x05"]],
            [[b"\x02", b"\x01"]],
            [[b"\x02", b"\x00"]],
        ]
    ]
