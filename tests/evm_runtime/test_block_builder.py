"""Building blocks from ordered batches (`evm_runtime.block_builder`)."""

from __future__ import annotations

import pytest
import rlp
from eth_bloom import BloomFilter
from eth_hash.auto import keccak

from evm_runtime.calls import state_at
from evm_runtime.chain import ChainParams, next_base_fee
from evm_runtime.trie_root import ordered_trie_root
from tests.support.artifacts import load_artifact

from .chainkit import ACCOUNTS, GWEI, MemoryChain, address_of, calldata, decoded, funded_chain, recipient

ALICE, BOB, CAROL = ACCOUNTS[:3]
COINBASE = bytes.fromhex("00000000000000000000000000000000000c0ffe")
PROBE = load_artifact("Probe")


def _contract_address(sender: bytes, nonce: int) -> bytes:
    return keccak(rlp.encode([sender, nonce]))[12:]


def _balance(chain: MemoryChain, header, account: bytes) -> int:
    return state_at(header, chain.params, chain.cache).get_balance(account)


def _deploy_probe(chain: MemoryChain, account=ALICE, nonce: int = 0) -> bytes:
    built = chain.build([decoded(account, nonce=nonce, to=None, data=PROBE["bytecode"], gas=3_000_000)])
    (executed,) = built.transactions
    assert executed.status == 1
    return executed.contract_address


@pytest.fixture
def chain() -> MemoryChain:
    return funded_chain()


# -- a block of transfers -----------------------------------------------------------------


def test_a_block_of_transfers(chain: MemoryChain) -> None:
    base_fee = next_base_fee(chain.genesis)
    batch = [
        decoded(ALICE, nonce=0, to=recipient(1), value=10, maxFeePerGas=5 * GWEI, maxPriorityFeePerGas=GWEI),
        decoded(
            ALICE, nonce=1, to=recipient(2), value=20, maxFeePerGas=5 * GWEI, maxPriorityFeePerGas=2 * GWEI
        ),
        # the fee cap binds: min(maxFee, baseFee + tip) = maxFee
        decoded(BOB, nonce=0, to=recipient(1), value=30, maxFeePerGas=base_fee + 5, maxPriorityFeePerGas=10),
        decoded(CAROL, nonce=0, type=0, gasPrice=3 * GWEI, to=recipient(3), value=40),
    ]
    built = chain.build(batch, coinbase=COINBASE, commit=False)
    header = built.header

    assert built.number == 1
    assert header.parent_hash == chain.genesis.hash
    assert header.base_fee_per_gas == base_fee
    assert header.gas_used == 4 * 21_000
    assert header.coinbase == COINBASE
    assert built.deferred == () and built.dropped == ()

    assert [tx.hash for tx in built.transactions] == [item.hash for item in batch]
    assert [tx.index for tx in built.transactions] == [0, 1, 2, 3]
    assert [tx.status for tx in built.transactions] == [1, 1, 1, 1]
    assert [tx.gas_used for tx in built.transactions] == [21_000] * 4
    assert [tx.cumulative_gas_used for tx in built.transactions] == [21_000, 42_000, 63_000, 84_000]
    assert [tx.effective_gas_price for tx in built.transactions] == [
        base_fee + GWEI,
        base_fee + 2 * GWEI,
        base_fee + 5,
        3 * GWEI,
    ]
    assert [tx.tx_type for tx in built.transactions] == [2, 2, 2, 0]
    assert [tx.sender for tx in built.transactions] == [address_of(a) for a in (ALICE, ALICE, BOB, CAROL)]
    assert [tx.nonce for tx in built.transactions] == [0, 1, 0, 0]
    assert all(tx.logs == () and tx.contract_address is None for tx in built.transactions)
    assert [tx.raw for tx in built.transactions] == [item.raw for item in batch]

    assert header.transaction_root == ordered_trie_root([item.raw for item in batch])
    assert header.receipt_root == ordered_trie_root([tx.receipt_rlp for tx in built.transactions])
    receipt = rlp.decode(
        built.transactions[1].receipt_rlp[1:]
    )  # typed receipt: [status, cumulative, bloom, logs]
    assert receipt[0] == b"\x01"
    assert int.from_bytes(receipt[1], "big") == 42_000

    chain.source.update(built.state_writes)
    assert _balance(chain, header, bytes.fromhex(recipient(1)[2:])) == 40
    assert _balance(chain, header, bytes.fromhex(recipient(3)[2:])) == 40
    paid = sum(
        tx.gas_used * tx.effective_gas_price for tx in built.transactions if tx.sender == address_of(ALICE)
    )
    assert (
        _balance(chain, header, address_of(ALICE))
        == _balance(chain, chain.genesis, address_of(ALICE)) - 30 - paid
    )
    tips = sum(tx.gas_used * (tx.effective_gas_price - base_fee) for tx in built.transactions)
    assert _balance(chain, header, COINBASE) == tips


def test_an_empty_block(chain: MemoryChain) -> None:
    built = chain.build([])
    assert built.header.gas_used == 0
    assert built.header.state_root == chain.genesis.state_root
    assert built.header.transaction_root == ordered_trie_root([])
    assert built.header.bloom == 0


def test_state_writes_are_what_the_next_block_needs(chain: MemoryChain) -> None:
    first = chain.build([decoded(ALICE, nonce=0)])
    assert first.state_writes  # new account trie nodes
    # A fresh cache over only the stored nodes reads the new state.
    fresh = MemoryChain(alloc=chain.alloc)
    fresh.source.update(chain.source)
    assert state_at(first.header, fresh.params, fresh.cache).get_nonce(address_of(ALICE)) == 1


# -- determinism ----------------------------------------------------------------------------


def test_the_same_batch_on_the_same_parent_gives_the_same_block(chain: MemoryChain) -> None:
    batch = [decoded(ALICE, nonce=0, value=1), decoded(BOB, nonce=0, value=2)]
    first = chain.build(batch, timestamp=5_000, commit=False)
    second = chain.build(batch, timestamp=5_000, commit=False)
    assert first.hash == second.hash
    assert first.state_writes == second.state_writes
    assert first.transactions == second.transactions


def test_another_order_gives_another_block(chain: MemoryChain) -> None:
    batch = [decoded(ALICE, nonce=0, value=1), decoded(BOB, nonce=0, value=2)]
    first = chain.build(batch, timestamp=5_000, commit=False)
    swapped = chain.build(batch[::-1], timestamp=5_000, commit=False)
    assert first.hash != swapped.hash
    assert first.header.state_root == swapped.header.state_root
    assert first.header.transaction_root != swapped.header.transaction_root


def test_the_timestamp_always_moves_past_the_parent(chain: MemoryChain) -> None:
    built = chain.build([], timestamp=chain.genesis.timestamp - 100, commit=False)
    assert built.header.timestamp == chain.genesis.timestamp + 1


# -- dropped and deferred ----------------------------------------------------------------


def test_a_transaction_with_a_wrong_nonce_is_dropped_with_a_reason(chain: MemoryChain) -> None:
    good = decoded(ALICE, nonce=0)
    too_high = decoded(BOB, nonce=5)
    built = chain.build([too_high, good])
    assert [tx.hash for tx in built.transactions] == [good.hash]
    ((dropped, reason),) = built.dropped
    assert dropped is too_high
    assert "nonce" in reason.lower()
    assert built.transactions[0].index == 0

    replayed = chain.build([good])
    assert replayed.transactions == ()
    ((dropped, reason),) = replayed.dropped
    assert dropped is good and "nonce" in reason.lower()


def test_a_sender_who_can_no_longer_pay_is_dropped(chain: MemoryChain) -> None:
    everything = _balance(chain, chain.genesis, address_of(ALICE))
    spend = decoded(ALICE, nonce=0, value=everything - 21_000 * 2 * GWEI, to=recipient(1))
    broke = decoded(ALICE, nonce=1, value=1)
    built = chain.build([spend, broke])
    assert [tx.hash for tx in built.transactions] == [spend.hash]
    ((dropped, reason),) = built.dropped
    assert dropped is broke and reason


def test_transactions_beyond_the_block_gas_limit_are_deferred() -> None:
    chain = funded_chain(params=ChainParams(gas_limit=100_000))
    # The block's gas pool shrinks by the gas each transaction used (21,000 here), not by
    # its limit: 21,000 + 80,000 > 100,000, but 21,000 + 50,000 fits.
    first = decoded(ALICE, nonce=0, gas=50_000)
    too_big = decoded(BOB, nonce=0, gas=80_000)
    fits = decoded(CAROL, nonce=0, gas=50_000)
    built = chain.build([first, too_big, fits])
    assert [tx.hash for tx in built.transactions] == [first.hash, fits.hash]
    assert built.deferred == (too_big,)
    assert built.dropped == ()
    assert built.header.gas_used == 42_000

    following = chain.build(list(built.deferred))
    assert [tx.hash for tx in following.transactions] == [too_big.hash]


def test_a_transaction_filling_the_block_exactly_is_included() -> None:
    chain = funded_chain(params=ChainParams(gas_limit=42_000))
    batch = [decoded(ALICE, nonce=0), decoded(BOB, nonce=0), decoded(CAROL, nonce=0)]
    built = chain.build(batch)
    assert len(built.transactions) == 2
    assert built.deferred == (batch[2],)


def test_the_successors_of_a_deferred_transaction_wait_with_it() -> None:
    chain = funded_chain(params=ChainParams(gas_limit=100_000))
    first = decoded(BOB, nonce=0, gas=50_000)
    too_big = decoded(ALICE, nonce=0, gas=80_000)
    successor = decoded(ALICE, nonce=1, gas=21_000)
    built = chain.build([first, too_big, successor])
    assert built.dropped == ()
    assert built.deferred == (too_big, successor)


# -- contracts -----------------------------------------------------------------------------


def test_contract_creation_gives_the_contract_address(chain: MemoryChain) -> None:
    chain.build([decoded(ALICE, nonce=0)])  # the address depends on the nonce
    built = chain.build([decoded(ALICE, nonce=1, to=None, data=PROBE["bytecode"], gas=3_000_000)])
    (executed,) = built.transactions
    assert executed.status == 1
    assert executed.to is None
    assert executed.contract_address == _contract_address(address_of(ALICE), 1)
    code = state_at(built.header, chain.params, chain.cache).get_code(executed.contract_address)
    assert code == bytes.fromhex(PROBE["deployedBytecode"][2:])


def test_a_failed_creation_has_no_contract_address(chain: MemoryChain) -> None:
    # Init code that reverts at once: PUSH1 0 PUSH1 0 REVERT.
    built = chain.build([decoded(ALICE, nonce=0, to=None, data=bytes.fromhex("60006000fd"), gas=100_000)])
    (executed,) = built.transactions
    assert executed.status == 0
    assert executed.contract_address is None


def test_a_reverted_transaction_is_included_with_status_0_and_pays_its_gas(chain: MemoryChain) -> None:
    probe = _deploy_probe(chain)
    before = chain.head
    reverting = decoded(BOB, nonce=0, to=probe, data=calldata("revertWithReason()"), gas=100_000)
    after_it = decoded(BOB, nonce=1, to=probe, data=calldata("set(uint256)", 7), gas=100_000)
    built = chain.build([reverting, after_it])
    failed, succeeded = built.transactions
    assert failed.status == 0
    assert 21_000 < failed.gas_used < 100_000
    assert failed.logs == ()
    assert succeeded.status == 1
    assert succeeded.cumulative_gas_used == failed.gas_used + succeeded.gas_used
    state = state_at(built.header, chain.params, chain.cache)
    assert state.get_nonce(address_of(BOB)) == 2
    spent = sum(tx.gas_used * tx.effective_gas_price for tx in built.transactions)
    assert state.get_balance(address_of(BOB)) == _balance(chain, before, address_of(BOB)) - spent
    assert state.get_storage(probe, 0) == 7


def test_logs_get_block_wide_increasing_indexes_and_the_bloom_holds_them(chain: MemoryChain) -> None:
    probe = _deploy_probe(chain)
    batch = [
        decoded(ALICE, nonce=1, to=probe, data=calldata("set(uint256)", 42), gas=200_000),
        decoded(BOB, nonce=0, to=probe, data=calldata("revertWithReason()"), gas=100_000),
        decoded(BOB, nonce=1, to=probe, data=calldata("emitMany(uint256)", 2), gas=200_000),
        decoded(CAROL, nonce=0, to=probe, data=calldata("deposit()"), value=5, gas=100_000),
    ]
    built = chain.build(batch)
    counts = [len(tx.logs) for tx in built.transactions]
    assert counts == [1, 0, 5, 1]
    indexes = [entry.log_index for tx in built.transactions for entry in tx.logs]
    assert indexes == list(range(7))

    set_log = built.transactions[0].logs[0]
    assert set_log.address == probe
    assert set_log.topics[0] == keccak(b"ValueSet(address,uint256,string)")
    assert set_log.topics[1] == address_of(ALICE).rjust(32, b"\x00")
    assert set_log.topics[2] == (42).to_bytes(32, "big")
    anonymous = built.transactions[2].logs[-1]
    assert anonymous.topics == ((2).to_bytes(32, "big"),)  # Marker(count): no signature topic

    bloom = BloomFilter(built.header.bloom)
    for tx in built.transactions:
        tx_bloom = BloomFilter(int.from_bytes(tx.logs_bloom, "big"))
        for entry in tx.logs:
            for item in (entry.address, *entry.topics):
                assert item in bloom
                assert item in tx_bloom
    assert keccak(b"never logged") not in bloom
    assert built.transactions[1].logs_bloom == bytes(256)


# -- the base fee ----------------------------------------------------------------------------


def _eip1559_base_fee(parent_base_fee: int, gas_used: int, gas_limit: int) -> int:
    target = gas_limit // 2
    if gas_used == target:
        return parent_base_fee
    if gas_used > target:
        return parent_base_fee + max(parent_base_fee * (gas_used - target) // target // 8, 1)
    return parent_base_fee - parent_base_fee * (target - gas_used) // target // 8


@pytest.mark.parametrize(
    "gas_limit,transfers",
    [(30_000_000, 0), (84_000, 1), (84_000, 2), (84_000, 3), (84_000, 4), (10_000_000, 1)],
)
def test_the_next_base_fee_follows_eip_1559(gas_limit: int, transfers: int) -> None:
    chain = funded_chain(params=ChainParams(gas_limit=gas_limit))
    built = chain.build([decoded(ACCOUNTS[i], nonce=0) for i in range(transfers)])
    assert built.header.gas_used == 21_000 * transfers
    expected = _eip1559_base_fee(built.header.base_fee_per_gas, built.header.gas_used, gas_limit)
    assert next_base_fee(built.header) == expected
    assert chain.build([]).header.base_fee_per_gas == expected


def test_the_base_fee_falls_an_eighth_per_empty_block(chain: MemoryChain) -> None:
    fees = [chain.head.base_fee_per_gas]
    for _ in range(3):
        fees.append(chain.build([]).header.base_fee_per_gas)
    assert fees == [10**9, 875_000_000, 765_625_000, 669_921_875]
