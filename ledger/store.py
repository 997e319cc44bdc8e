"""The ledger repository: the only code that reads or writes the ledger's tables.

Rule: one block is one database transaction. `append_block` writes the block, its
transactions, receipts, logs and the state nodes its execution created together, or
nothing at all, so a crash at any instant leaves the ledger at a block boundary.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, and_, bindparam, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from evm_runtime.types import Address, ExecutedTransaction, Hash32

from .models import (
    Block,
    BlockCertificate,
    ChainSetting,
    ConsensusLock,
    Log,
    Receipt,
    SealedTransaction,
    StateNode,
    Transaction,
)

MAX_ANCESTORS = 256


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """A sealed block as storage keeps it."""

    number: int
    hash: Hash32
    parent_hash: Hash32
    header: bytes
    timestamp: int
    transactions: tuple[ExecutedTransaction, ...] = ()
    state_writes: dict[bytes, bytes] | None = None
    certificate: bytes | None = None
    """The commit certificate the validators made it final with (encoded by `ledger.consensus`)."""


@dataclass(frozen=True, slots=True)
class StoredBlock:
    number: int
    hash: Hash32
    parent_hash: Hash32
    header: bytes
    timestamp: int
    transaction_count: int


@dataclass(frozen=True, slots=True)
class StoredTransaction:
    hash: Hash32
    block_number: int
    block_hash: Hash32
    transaction_index: int
    sender: Address
    raw: bytes


@dataclass(frozen=True, slots=True)
class StoredLog:
    block_number: int
    block_hash: Hash32
    block_timestamp: int
    log_index: int
    transaction_hash: Hash32
    transaction_index: int
    address: Address
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    transaction_hash: Hash32
    block_number: int
    block_hash: Hash32
    transaction_index: int
    sender: Address
    recipient: Address | None
    tx_type: int
    status: int
    gas_used: int
    cumulative_gas_used: int
    effective_gas_price: int
    contract_address: Address | None
    first_log_index: int
    encoded: bytes


@dataclass(frozen=True, slots=True)
class SealedRow:
    """A confidential transaction as stored: where it is, and the rest sealed."""

    hash: Hash32
    block_number: int
    transaction_index: int
    sealed: bytes


@dataclass(frozen=True, slots=True)
class LogQuery:
    """A log filter: an inclusive block range, addresses (any of) and topic positions.

    `topics[i]` is None to match anything at position i, or a tuple of accepted values.
    """

    from_block: int
    to_block: int
    addresses: tuple[bytes, ...] = ()
    topics: tuple[tuple[bytes, ...] | None, ...] = ()


class LogCriteria(Protocol):
    addresses: tuple[bytes, ...]
    topics: tuple[tuple[bytes, ...] | None, ...]


def log_matches(criteria: LogCriteria, address: bytes, topics: tuple[bytes, ...]) -> bool:
    """Whether a log passes a filter's address set and topic positions (None: any topic),
    as `LedgerStore.logs` selects them."""
    if criteria.addresses and address not in criteria.addresses:
        return False
    for position, accepted in enumerate(criteria.topics):
        if accepted is None:
            continue
        if position >= len(topics) or topics[position] not in accepted:
            return False
    return True


class LedgerStore:
    """Reads and writes one node's ledger through a SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert_ignore = _insert_ignoring_duplicates(engine)
        self._node_readers = threading.local()
        self._all_node_readers: list[Connection] = []
        self._readers_lock = threading.Lock()
        self._node_query = select(StateNode.value).where(StateNode.key == bindparam("key"))

    # -- chain settings -------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(ChainSetting.name, ChainSetting.value)).all()
        return {name: value for name, value in rows}

    def save_settings(self, conn: Connection, settings: dict[str, str]) -> None:
        conn.execute(
            ChainSetting.__table__.insert(),
            [{"name": name, "value": value} for name, value in sorted(settings.items())],
        )

    # -- writes ---------------------------------------------------------------------

    def append_block(self, block: BlockRecord, settings: dict[str, str] | None = None) -> None:
        """Store a block and everything it produced in one database transaction."""
        with self.engine.begin() as conn:
            if settings:
                self.save_settings(conn, settings)
            conn.execute(
                Block.__table__.insert(),
                {
                    "number": block.number,
                    "hash": block.hash,
                    "parent_hash": block.parent_hash,
                    "header": block.header,
                    "timestamp": block.timestamp,
                    "transaction_count": len(block.transactions),
                },
            )
            if block.certificate is not None:
                conn.execute(
                    BlockCertificate.__table__.insert(),
                    {"block_number": block.number, "certificate": block.certificate},
                )
            if block.state_writes:
                conn.execute(
                    self._insert_ignore(StateNode.__table__),
                    [{"key": k, "value": v} for k, v in block.state_writes.items()],
                )
            sealed = [tx for tx in block.transactions if tx.sealed is not None]
            if sealed:
                conn.execute(
                    SealedTransaction.__table__.insert(),
                    [
                        {
                            "hash": tx.hash,
                            "block_number": block.number,
                            "transaction_index": tx.index,
                            "sealed": tx.sealed,
                        }
                        for tx in sealed
                    ],
                )
            public = [tx for tx in block.transactions if tx.sealed is None]
            if not public:
                return
            conn.execute(
                Transaction.__table__.insert(),
                [
                    {
                        "hash": tx.hash,
                        "block_number": block.number,
                        "transaction_index": tx.index,
                        "sender": tx.sender,
                        "recipient": tx.to,
                        "nonce": tx.nonce,
                        "raw": tx.raw,
                    }
                    for tx in public
                ],
            )
            conn.execute(
                Receipt.__table__.insert(),
                [
                    {
                        "transaction_hash": tx.hash,
                        "block_number": block.number,
                        "transaction_index": tx.index,
                        "tx_type": tx.tx_type,
                        "status": tx.status,
                        "gas_used": tx.gas_used,
                        "cumulative_gas_used": tx.cumulative_gas_used,
                        "effective_gas_price": str(tx.effective_gas_price),
                        "contract_address": tx.contract_address,
                        "first_log_index": tx.logs[0].log_index if tx.logs else 0,
                        "encoded": tx.receipt_rlp,
                    }
                    for tx in public
                ],
            )
            logs = [
                {
                    "block_number": block.number,
                    "log_index": log.log_index,
                    "transaction_hash": tx.hash,
                    "transaction_index": tx.index,
                    "address": log.address,
                    **{f"topic{i}": (log.topics[i] if i < len(log.topics) else None) for i in range(4)},
                    "data": log.data,
                }
                for tx in public
                for log in tx.logs
            ]
            if logs:
                conn.execute(Log.__table__.insert(), logs)

    # -- state ----------------------------------------------------------------------

    def get_node(self, key: bytes) -> bytes | None:
        # State nodes are read often and one at a time: one connection per thread is kept
        # for them, in autocommit mode so that every read sees the latest committed block.
        reader: Connection | None = getattr(self._node_readers, "connection", None)
        if reader is None:
            reader = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._node_readers.connection = reader
            with self._readers_lock:
                self._all_node_readers.append(reader)
        return reader.execute(self._node_query, {"key": key}).scalar()

    def close(self) -> None:
        with self._readers_lock:
            readers, self._all_node_readers = self._all_node_readers, []
        for reader in readers:
            reader.close()
        self._node_readers = threading.local()

    # -- blocks ---------------------------------------------------------------------

    def head(self) -> StoredBlock | None:
        with self.engine.connect() as conn:
            row = conn.execute(_block_columns().order_by(Block.number.desc()).limit(1)).first()
        return _stored_block(row) if row else None

    def block_by_number(self, number: int) -> StoredBlock | None:
        with self.engine.connect() as conn:
            row = conn.execute(_block_columns().where(Block.number == number)).first()
        return _stored_block(row) if row else None

    def block_by_hash(self, block_hash: bytes) -> StoredBlock | None:
        with self.engine.connect() as conn:
            row = conn.execute(_block_columns().where(Block.hash == block_hash)).first()
        return _stored_block(row) if row else None

    def ancestor_hashes(self, number: int, count: int = MAX_ANCESTORS) -> list[Hash32]:
        """Hashes of block `number` and the blocks before it, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Block.hash)
                .where(Block.number <= number, Block.number > number - count)
                .order_by(Block.number.desc())
            ).scalars()
            return [Hash32(h) for h in rows]

    # -- transactions and receipts --------------------------------------------------

    def transactions_of_block(self, number: int) -> list[StoredTransaction]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                _transaction_columns()
                .where(Transaction.block_number == number)
                .order_by(Transaction.transaction_index)
            ).all()
        return [_stored_transaction(row) for row in rows]

    def transaction(self, tx_hash: bytes) -> StoredTransaction | None:
        with self.engine.connect() as conn:
            row = conn.execute(_transaction_columns().where(Transaction.hash == tx_hash)).first()
        return _stored_transaction(row) if row else None

    def transaction_at(self, number: int, index: int) -> StoredTransaction | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                _transaction_columns().where(
                    Transaction.block_number == number, Transaction.transaction_index == index
                )
            ).first()
        return _stored_transaction(row) if row else None

    def receipt(self, tx_hash: bytes) -> StoredReceipt | None:
        with self.engine.connect() as conn:
            row = conn.execute(_receipt_columns().where(Receipt.transaction_hash == tx_hash)).first()
        return _stored_receipt(row) if row else None

    def receipts_of_block(self, number: int) -> list[StoredReceipt]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                _receipt_columns().where(Receipt.block_number == number).order_by(Receipt.transaction_index)
            ).all()
        return [_stored_receipt(row) for row in rows]

    def logs_of_transaction(self, tx_hash: bytes) -> list[StoredLog]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                _log_columns().where(Log.transaction_hash == tx_hash).order_by(Log.log_index)
            ).all()
        return [_stored_log(row) for row in rows]

    def logs_of_block(self, number: int) -> list[StoredLog]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                _log_columns().where(Log.block_number == number).order_by(Log.log_index)
            ).all()
        return [_stored_log(row) for row in rows]

    def logs(self, query: LogQuery, limit: int) -> list[StoredLog]:
        """Logs matching `query` in chain order; at most `limit` + 1 are read."""
        conditions = [Log.block_number >= query.from_block, Log.block_number <= query.to_block]
        if query.addresses:
            conditions.append(Log.address.in_(query.addresses))
        topic_columns = (Log.topic0, Log.topic1, Log.topic2, Log.topic3)
        for column, accepted in zip(topic_columns, query.topics, strict=False):
            if accepted:
                conditions.append(column.in_(accepted))
        with self.engine.connect() as conn:
            rows = conn.execute(
                _log_columns()
                .where(and_(*conditions))
                .order_by(Log.block_number, Log.log_index)
                .limit(limit + 1)
            ).all()
        return [_stored_log(row) for row in rows]

    def count_transactions_from(self, sender: bytes) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(Transaction).where(Transaction.sender == sender)
            ).scalar_one()

    def certificate(self, number: int) -> bytes | None:
        """The commit certificate stored with block `number` (None: none, as for a single
        validator's blocks before consensus stored them)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(BlockCertificate.certificate).where(BlockCertificate.block_number == number)
            ).first()
        return None if row is None else bytes(row[0])

    # -- the consensus lock -----------------------------------------------------------

    def save_consensus_lock(self, height: int, lock: bytes) -> None:
        """Keep what this validator said at `height` (durably, before it is sent)."""
        with self.engine.begin() as conn:
            conn.execute(ConsensusLock.__table__.delete())
            conn.execute(ConsensusLock.__table__.insert(), {"id": 1, "height": height, "lock": lock})

    def consensus_lock(self) -> tuple[int, bytes] | None:
        """The last saved lock and its height; None if none was saved."""
        with self.engine.connect() as conn:
            row = conn.execute(select(ConsensusLock.height, ConsensusLock.lock)).first()
        return None if row is None else (int(row[0]), bytes(row[1]))

    # -- confidential transactions (sealed; only the enclave opens them) ----------------

    def sealed_transaction(self, tx_hash: bytes) -> SealedRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(_sealed_columns().where(SealedTransaction.hash == tx_hash)).first()
        return None if row is None else SealedRow(*row)

    def sealed_transactions(self, first: int, last: int) -> list[SealedRow]:
        """The sealed transactions of blocks `first`..`last`, in chain order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                _sealed_columns()
                .where(SealedTransaction.block_number.between(first, last))
                .order_by(SealedTransaction.block_number, SealedTransaction.transaction_index)
            ).all()
        return [SealedRow(*row) for row in rows]

    def has_sealed_transactions(self, first: int, last: int) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    select(SealedTransaction.hash)
                    .where(SealedTransaction.block_number.between(first, last))
                    .limit(1)
                ).first()
                is not None
            )

    def receipt_encodings(self, number: int) -> list[bytes]:
        """The EIP-2718 encodings of a block's receipts, in transaction order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Receipt.encoded)
                .where(Receipt.block_number == number)
                .order_by(Receipt.transaction_index)
            ).all()
        return [bytes(row[0]) for row in rows]

    def truncate_after(self, number: int) -> int:
        """Delete the blocks after `number` with all they hold, in one transaction; how many.

        State nodes stay: they are content-addressed, and shared with the blocks that remain.
        """
        with self.engine.begin() as conn:
            for model in (Log, Receipt, Transaction, SealedTransaction, BlockCertificate):
                conn.execute(model.__table__.delete().where(model.block_number > number))
            return conn.execute(Block.__table__.delete().where(Block.number > number)).rowcount or 0

    def state_nodes(self, page: int = 10_000) -> Iterator[tuple[bytes, bytes]]:
        """Every stored state node as (key, value), in key order, read a page at a time."""
        after = b""
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(StateNode.key, StateNode.value)
                    .where(StateNode.key > after)
                    .order_by(StateNode.key)
                    .limit(page)
                ).all()
            for key, value in rows:
                yield bytes(key), bytes(value)
            if len(rows) < page:
                return
            after = bytes(rows[-1][0])


def _sealed_columns():  # type: ignore[no-untyped-def]
    return select(
        SealedTransaction.hash,
        SealedTransaction.block_number,
        SealedTransaction.transaction_index,
        SealedTransaction.sealed,
    )


def _block_columns():  # type: ignore[no-untyped-def]
    return select(
        Block.number,
        Block.hash,
        Block.parent_hash,
        Block.header,
        Block.timestamp,
        Block.transaction_count,
    )


def _stored_block(row) -> StoredBlock:  # type: ignore[no-untyped-def]
    return StoredBlock(
        number=row.number,
        hash=Hash32(row.hash),
        parent_hash=Hash32(row.parent_hash),
        header=row.header,
        timestamp=row.timestamp,
        transaction_count=row.transaction_count,
    )


def _transaction_columns():  # type: ignore[no-untyped-def]
    return select(
        Transaction.hash,
        Transaction.block_number,
        Block.hash.label("block_hash"),
        Transaction.transaction_index,
        Transaction.sender,
        Transaction.raw,
    ).join(Block, Block.number == Transaction.block_number)


def _stored_transaction(row) -> StoredTransaction:  # type: ignore[no-untyped-def]
    return StoredTransaction(
        hash=Hash32(row.hash),
        block_number=row.block_number,
        block_hash=Hash32(row.block_hash),
        transaction_index=row.transaction_index,
        sender=Address(row.sender),
        raw=row.raw,
    )


def _receipt_columns():  # type: ignore[no-untyped-def]
    return (
        select(
            Receipt.transaction_hash,
            Receipt.block_number,
            Block.hash.label("block_hash"),
            Receipt.transaction_index,
            Transaction.sender,
            Transaction.recipient,
            Receipt.tx_type,
            Receipt.status,
            Receipt.gas_used,
            Receipt.cumulative_gas_used,
            Receipt.effective_gas_price,
            Receipt.contract_address,
            Receipt.first_log_index,
            Receipt.encoded,
        )
        .join(Block, Block.number == Receipt.block_number)
        .join(Transaction, Transaction.hash == Receipt.transaction_hash)
    )


def _stored_receipt(row) -> StoredReceipt:  # type: ignore[no-untyped-def]
    return StoredReceipt(
        transaction_hash=Hash32(row.transaction_hash),
        block_number=row.block_number,
        block_hash=Hash32(row.block_hash),
        transaction_index=row.transaction_index,
        sender=Address(row.sender),
        recipient=Address(row.recipient) if row.recipient else None,
        tx_type=row.tx_type,
        status=row.status,
        gas_used=row.gas_used,
        cumulative_gas_used=row.cumulative_gas_used,
        effective_gas_price=int(row.effective_gas_price),
        contract_address=Address(row.contract_address) if row.contract_address else None,
        first_log_index=row.first_log_index,
        encoded=row.encoded,
    )


def _log_columns():  # type: ignore[no-untyped-def]
    return select(
        Log.block_number,
        Block.hash.label("block_hash"),
        Block.timestamp,
        Log.log_index,
        Log.transaction_hash,
        Log.transaction_index,
        Log.address,
        Log.topic0,
        Log.topic1,
        Log.topic2,
        Log.topic3,
        Log.data,
    ).join(Block, Block.number == Log.block_number)


def _stored_log(row) -> StoredLog:  # type: ignore[no-untyped-def]
    # Unpacked by position, in `_log_columns` order: reading a Row's fields by name costs
    # more than the rest of the conversion (eth_getLogs converts up to 10,000 rows a query).
    number, block_hash, timestamp, log_index, tx_hash, tx_index, address, *topic_columns, payload = row
    return StoredLog(
        block_number=number,
        block_hash=Hash32(block_hash),
        block_timestamp=timestamp,
        log_index=log_index,
        transaction_hash=Hash32(tx_hash),
        transaction_index=tx_index,
        address=Address(address),
        topics=tuple(t for t in topic_columns if t is not None),
        data=payload,
    )


def _insert_ignoring_duplicates(engine: Engine):  # type: ignore[no-untyped-def]
    """An INSERT that skips rows whose primary key exists (state nodes repeat)."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        return lambda table: sqlite.insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        return lambda table: postgresql.insert(table).on_conflict_do_nothing()
    raise ValueError(f"unsupported database dialect {dialect!r}: use SQLite or PostgreSQL")


def configure_sqlite(engine: Engine) -> None:
    """WAL journal, full sync at commit, foreign keys on, for every SQLite connection."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


__all__ = [
    "BlockRecord",
    "LedgerStore",
    "LogQuery",
    "StoredBlock",
    "StoredLog",
    "StoredReceipt",
    "StoredTransaction",
    "configure_sqlite",
]
