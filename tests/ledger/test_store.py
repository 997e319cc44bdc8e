"""The ledger repository (`ledger.store`) on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError

from evm_runtime.types import Address, ExecutedTransaction, Hash32, LogRecord
from ledger.database import make_engine
from ledger.models import Block, Log, Receipt, StateNode, Transaction
from ledger.store import BlockRecord, LedgerStore, LogQuery
from migrations import upgrade_to_head
from tests.support.databases import DATABASES, DatabaseUrls

ADDRESSES = [Address(bytes([0xA0 + i]) * 20) for i in range(3)]
TOPICS = [bytes([0x70 + i]) * 32 for i in range(4)]
SENDER = Address(b"\x5e" * 20)


def _hash(*parts: object) -> Hash32:
    return Hash32(keccak(repr(parts).encode()))


def _transaction(
    number: int, index: int, logs: tuple[LogRecord, ...] = (), **overrides: object
) -> ExecutedTransaction:
    fields: dict[str, object] = dict(
        hash=_hash("tx", number, index),
        raw=b"raw-%d-%d" % (number, index),
        sender=SENDER,
        to=ADDRESSES[0],
        nonce=index,
        index=index,
        tx_type=2,
        status=1,
        gas_used=21_000,
        cumulative_gas_used=21_000 * (index + 1),
        effective_gas_price=10**9,
        contract_address=None,
        logs=logs,
        logs_bloom=bytes(256),
        receipt_rlp=b"receipt-%d-%d" % (number, index),
    )
    fields.update(overrides)
    return ExecutedTransaction(**fields)  # type: ignore[arg-type]


def _block(
    number: int,
    transactions: tuple[ExecutedTransaction, ...] = (),
    state_writes: dict[bytes, bytes] | None = None,
) -> BlockRecord:
    return BlockRecord(
        number=number,
        hash=_hash("block", number),
        parent_hash=_hash("block", number - 1) if number else Hash32(bytes(32)),
        header=b"header-%d" % number,
        timestamp=1_000 + 12 * number,
        transactions=transactions,
        state_writes=state_writes,
    )


def _log(
    index: int, address: bytes = ADDRESSES[0], topics: tuple[bytes, ...] = (), data: bytes = b""
) -> LogRecord:
    return LogRecord(address=Address(address), topics=topics, data=data, log_index=index)


def _engine(url: str) -> Engine:
    engine = make_engine(url)
    upgrade_to_head(engine)
    return engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = _engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> LedgerStore:
    store = LedgerStore(engine)
    store.append_block(_block(0, state_writes={b"\x01" * 32: b"genesis node"}), settings={"chain_id": "1337"})
    return store


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            model.__tablename__: conn.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Block, Transaction, Receipt, Log, StateNode)
        }


# -- round trips ----------------------------------------------------------------------------


def test_a_block_round_trips(store: LedgerStore) -> None:
    logs_a = (_log(0, ADDRESSES[1], (TOPICS[0], TOPICS[1]), b"data"),)
    logs_b = (_log(1, ADDRESSES[2], TOPICS, b""), _log(2, ADDRESSES[2], (), b"\x00" * 40))
    big_price = 2**200 + 7
    first = _transaction(1, 0, logs_a, effective_gas_price=big_price)
    second = _transaction(
        1,
        1,
        logs_b,
        to=None,
        contract_address=ADDRESSES[2],
        status=0,
        tx_type=0,
        gas_used=50_000,
        cumulative_gas_used=71_000,
    )
    record = _block(1, (first, second), state_writes={b"\x02" * 32: b"node two"})
    store.append_block(record)

    head = store.head()
    assert head is not None and head.number == 1
    assert head.hash == record.hash and head.parent_hash == record.parent_hash
    assert head.header == record.header and head.timestamp == record.timestamp
    assert head.transaction_count == 2
    assert store.block_by_number(1) == head
    assert store.block_by_hash(record.hash) == head
    assert store.block_by_number(2) is None
    assert store.block_by_hash(b"\x00" * 32) is None

    stored = store.transactions_of_block(1)
    assert [tx.hash for tx in stored] == [first.hash, second.hash]
    assert [tx.raw for tx in stored] == [first.raw, second.raw]
    assert all(tx.block_hash == record.hash and tx.block_number == 1 and tx.sender == SENDER for tx in stored)
    assert store.transaction(second.hash) == stored[1]
    assert store.transaction_at(1, 1) == stored[1]
    assert store.transaction_at(1, 2) is None
    assert store.transaction(b"\x00" * 32) is None

    receipt = store.receipt(first.hash)
    assert receipt is not None
    assert receipt.effective_gas_price == big_price
    assert (receipt.status, receipt.tx_type, receipt.gas_used, receipt.cumulative_gas_used) == (
        1,
        2,
        21_000,
        21_000,
    )
    assert receipt.recipient == ADDRESSES[0] and receipt.contract_address is None
    assert receipt.first_log_index == 0 and receipt.encoded == first.receipt_rlp
    creation = store.receipt(second.hash)
    assert creation is not None
    assert creation.recipient is None and creation.contract_address == ADDRESSES[2]
    assert (creation.status, creation.tx_type, creation.first_log_index) == (0, 0, 1)
    assert [r.transaction_hash for r in store.receipts_of_block(1)] == [first.hash, second.hash]

    block_logs = store.logs_of_block(1)
    assert [entry.log_index for entry in block_logs] == [0, 1, 2]
    assert [entry.topics for entry in block_logs] == [(TOPICS[0], TOPICS[1]), tuple(TOPICS), ()]
    assert [entry.data for entry in block_logs] == [b"data", b"", b"\x00" * 40]
    assert [entry.transaction_index for entry in block_logs] == [0, 1, 1]
    assert all(
        entry.block_hash == record.hash and entry.block_timestamp == record.timestamp for entry in block_logs
    )
    assert store.logs_of_transaction(second.hash) == block_logs[1:]

    assert store.get_node(b"\x02" * 32) == b"node two"
    assert store.get_node(b"\x01" * 32) == b"genesis node"
    assert store.get_node(b"\x03" * 32) is None
    assert store.settings() == {"chain_id": "1337"}
    assert store.count_transactions_from(SENDER) == 2


def test_the_ledger_survives_reopening(database_url: str) -> None:
    engine = _engine(database_url)
    LedgerStore(engine).append_block(_block(0), settings={"chain_id": "7"})
    LedgerStore(engine).append_block(_block(1, (_transaction(1, 0),)))
    engine.dispose()
    again = _engine(database_url)
    try:
        store = LedgerStore(again)
        assert store.settings() == {"chain_id": "7"}
        assert store.head() is not None and store.head().number == 1
        assert len(store.transactions_of_block(1)) == 1
    finally:
        again.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(database_urls: DatabaseUrls) -> None:
    engine = _engine(database_urls.new("sqlite"))
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    engine.dispose()


def test_an_empty_block_stores_no_rows_but_its_own(store: LedgerStore, engine: Engine) -> None:
    before = _counts(engine)
    store.append_block(_block(1))
    after = _counts(engine)
    assert after == {**before, "blocks": before["blocks"] + 1}
    assert store.transactions_of_block(1) == [] and store.logs_of_block(1) == []


def test_a_sealed_transaction_is_one_row_of_its_own_and_nothing_in_the_public_tables(
    store: LedgerStore, engine: Engine
) -> None:
    public = _transaction(1, 0, (_log(0),))
    sealed = _transaction(1, 1, raw=b"", logs=(), receipt_rlp=b"", sealed=b"opaque sealed record")
    before = _counts(engine)
    store.append_block(_block(1, (public, sealed)))
    after = _counts(engine)
    assert after == {
        **before,
        "blocks": before["blocks"] + 1,
        "transactions": before["transactions"] + 1,
        "receipts": before["receipts"] + 1,
        "logs": before["logs"] + 1,
    }
    assert [tx.hash for tx in store.transactions_of_block(1)] == [public.hash]
    assert store.transaction(sealed.hash) is None and store.receipt(sealed.hash) is None
    row = store.sealed_transaction(sealed.hash)
    assert row is not None and (row.block_number, row.transaction_index, row.sealed) == (1, 1, sealed.sealed)
    assert store.sealed_transactions(0, 1) == [row] and store.sealed_transactions(2, 9) == []
    assert store.has_sealed_transactions(1, 1) and not store.has_sealed_transactions(0, 0)
    store.truncate_after(0)
    assert store.sealed_transaction(sealed.hash) is None


def test_a_block_keeps_its_commit_certificate(store: LedgerStore) -> None:
    store.append_block(dataclasses.replace(_block(1), certificate=b"quorum of seals"))
    assert store.certificate(1) == b"quorum of seals" and store.certificate(0) is None
    store.truncate_after(0)
    assert store.certificate(1) is None


def test_state_nodes_written_twice_do_not_fail(store: LedgerStore, engine: Engine) -> None:
    node = {b"\x09" * 32: b"same node"}
    store.append_block(_block(1, state_writes=dict(node)))
    store.append_block(_block(2, state_writes={**node, b"\x0a" * 32: b"other"}))
    store.append_block(_block(3, state_writes={b"\x01" * 32: b"genesis node"}))
    assert store.get_node(b"\x09" * 32) == b"same node"
    assert store.get_node(b"\x0a" * 32) == b"other"
    assert _counts(engine)["state_nodes"] == 3


# -- atomicity ------------------------------------------------------------------------------


def _assert_nothing_of_block_1(store: LedgerStore, engine: Engine, before: dict[str, int]) -> None:
    assert _counts(engine) == before
    assert store.block_by_number(1) is None
    assert store.head() is not None and store.head().number == 0
    assert store.get_node(b"\x0b" * 32) is None
    assert store.transaction(_hash("tx", 1, 0)) is None
    assert store.receipt(_hash("tx", 1, 0)) is None
    assert store.logs_of_block(1) == []


def test_a_block_whose_second_transaction_repeats_the_first_hash_is_not_stored_at_all(
    store: LedgerStore, engine: Engine
) -> None:
    before = _counts(engine)
    first = _transaction(1, 0, (_log(0),))
    duplicate = _transaction(1, 1, (_log(1),), hash=first.hash)
    with pytest.raises(IntegrityError):
        store.append_block(_block(1, (first, duplicate), state_writes={b"\x0b" * 32: b"node"}))
    _assert_nothing_of_block_1(store, engine, before)
    # The ledger is still usable: the corrected block goes in.
    store.append_block(_block(1, (first, _transaction(1, 1)), state_writes={b"\x0b" * 32: b"node"}))
    assert store.block_by_number(1) is not None


def test_a_failure_in_the_last_write_leaves_no_trace(store: LedgerStore, engine: Engine) -> None:
    before = _counts(engine)
    clashing_logs = (_transaction(1, 0, (_log(0),)), _transaction(1, 1, (_log(0),)))  # log index 0 twice
    with pytest.raises(IntegrityError):
        store.append_block(_block(1, clashing_logs, state_writes={b"\x0b" * 32: b"node"}))
    _assert_nothing_of_block_1(store, engine, before)


def test_a_block_number_already_taken_leaves_no_trace(store: LedgerStore, engine: Engine) -> None:
    store.append_block(_block(1))
    before = _counts(engine)
    clash = BlockRecord(
        number=1,
        hash=_hash("another block 1"),
        parent_hash=_hash("block", 0),
        header=b"other",
        timestamp=5,
        transactions=(_transaction(9, 0, (_log(0),)),),
        state_writes={b"\x0c" * 32: b"orphan"},
    )
    with pytest.raises(IntegrityError):
        store.append_block(clash)
    assert _counts(engine) == before
    assert store.get_node(b"\x0c" * 32) is None


def test_settings_are_written_with_their_block(engine: Engine) -> None:
    store = LedgerStore(engine)
    store.append_block(_block(0), settings={"chain_id": "1"})
    with pytest.raises(IntegrityError):
        store.append_block(_block(0), settings={"genesis_hash": "ab"})
    assert store.settings() == {"chain_id": "1"}


# -- ancestors ------------------------------------------------------------------------------


def test_ancestor_hashes_are_newest_first_and_bounded(store: LedgerStore) -> None:
    for number in range(1, 10):
        store.append_block(_block(number))
    assert store.ancestor_hashes(9) == [_hash("block", n) for n in range(9, -1, -1)]
    assert store.ancestor_hashes(5, count=3) == [_hash("block", n) for n in (5, 4, 3)]
    assert store.ancestor_hashes(0) == [_hash("block", 0)]
    assert store.ancestor_hashes(2, count=1) == [_hash("block", 2)]
    assert store.ancestor_hashes(9, count=0) == []
    assert len(store.ancestor_hashes(9, count=256)) == 10


# -- log queries ----------------------------------------------------------------------------

LAST_BLOCK = 6


def _log_corpus() -> list[BlockRecord]:
    rng = random.Random(20261124)
    blocks = []
    for number in range(1, LAST_BLOCK + 1):
        transactions = []
        log_index = 0
        for index in range(0 if number == 2 else rng.randint(1, 3)):  # block 2 is empty
            logs = []
            for _ in range(rng.randint(0, 4)):
                topics = tuple(rng.choice(TOPICS) for _ in range(rng.randint(0, 4)))
                logs.append(_log(log_index, rng.choice(ADDRESSES), topics, bytes([log_index])))
                log_index += 1
            transactions.append(_transaction(number, index, tuple(logs)))
        blocks.append(_block(number, tuple(transactions)))
    return blocks


@pytest.fixture(scope="module", params=DATABASES)
def log_store(
    request: pytest.FixtureRequest, database_urls: DatabaseUrls
) -> Iterator[tuple[LedgerStore, list[tuple[int, LogRecord]]]]:
    engine = _engine(database_urls.new(request.param))
    store = LedgerStore(engine)
    store.append_block(_block(0))
    corpus = _log_corpus()
    for record in corpus:
        store.append_block(record)
    flat = [(record.number, entry) for record in corpus for tx in record.transactions for entry in tx.logs]
    assert len(flat) > 15
    yield store, flat
    engine.dispose()


def _reference(flat: list[tuple[int, LogRecord]], query: LogQuery, limit: int) -> list[tuple[int, int]]:
    found = []
    for number, entry in flat:
        if not query.from_block <= number <= query.to_block:
            continue
        if query.addresses and entry.address not in query.addresses:
            continue
        if any(
            accepted and (position >= len(entry.topics) or entry.topics[position] not in accepted)
            for position, accepted in enumerate(query.topics)
        ):
            continue
        found.append((number, entry.log_index))
    return sorted(found)[: limit + 1]


_positions = st.one_of(
    st.none(),
    st.lists(st.sampled_from([*TOPICS, b"\xee" * 32]), min_size=1, max_size=3, unique=True).map(tuple),
)
_queries = st.builds(
    LogQuery,
    from_block=st.integers(0, LAST_BLOCK + 1),
    to_block=st.integers(0, LAST_BLOCK + 1),
    addresses=st.lists(st.sampled_from([*ADDRESSES, b"\xdd" * 20]), max_size=3, unique=True).map(tuple),
    topics=st.lists(_positions, max_size=4).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(query=_queries, limit=st.integers(0, 40))
def test_logs_match_the_reference_filter(log_store, query: LogQuery, limit: int) -> None:
    store, flat = log_store
    found = store.logs(query, limit)
    assert [(entry.block_number, entry.log_index) for entry in found] == _reference(flat, query, limit)
    assert len(found) <= limit + 1


def test_logs_filter_by_address_set(log_store) -> None:
    store, flat = log_store
    found = store.logs(LogQuery(0, LAST_BLOCK, addresses=(ADDRESSES[0], ADDRESSES[2])), 1_000)
    assert found and all(entry.address in (ADDRESSES[0], ADDRESSES[2]) for entry in found)
    assert len(found) == sum(1 for _, entry in flat if entry.address != ADDRESSES[1])


def test_logs_filter_by_topic_alternatives_and_wildcards(log_store) -> None:
    store, flat = log_store
    query = LogQuery(0, LAST_BLOCK, topics=(None, (TOPICS[1], TOPICS[2])))
    found = store.logs(query, 1_000)
    assert found and all(len(entry.topics) >= 2 and entry.topics[1] in TOPICS[1:3] for entry in found)
    assert len(found) == len(_reference(flat, query, 1_000))


def test_logs_respect_the_block_range_and_order(log_store) -> None:
    store, _ = log_store
    found = store.logs(LogQuery(2, 4), 1_000)
    assert found and {entry.block_number for entry in found} <= {2, 3, 4}
    keys = [(entry.block_number, entry.log_index) for entry in found]
    assert keys == sorted(keys)
    assert store.logs(LogQuery(5, 2), 1_000) == []


def test_logs_read_at_most_limit_plus_one(log_store) -> None:
    store, flat = log_store
    assert len(store.logs(LogQuery(0, LAST_BLOCK), 3)) == 4
    assert len(store.logs(LogQuery(0, LAST_BLOCK), 0)) == 1
    assert len(store.logs(LogQuery(0, LAST_BLOCK), len(flat))) == len(flat)
