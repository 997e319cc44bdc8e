"""The SQL schema of a node's ledger (SQLAlchemy 2 declarative models).

Public transactions, receipts and logs have tables of their own, indexed for queries; a
confidential transaction is one row of `sealed_transactions` and nothing else, so nothing
of it is in the public tables.

Hashes, addresses and other byte strings are stored as raw bytes. Amounts that can
exceed 64 bits (gas prices) are stored as decimal strings. Log topics have a column each
so that `eth_getLogs` filters by index. State trie nodes are content-addressed: a row is
written once and never changed.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Block(Base):
    __tablename__ = "blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    parent_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    header: Mapped[bytes] = mapped_column(LargeBinary)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    transaction_count: Mapped[int] = mapped_column(Integer)


class Transaction(Base):
    __tablename__ = "transactions"

    hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, ForeignKey("blocks.number"))
    transaction_index: Mapped[int] = mapped_column(Integer)
    sender: Mapped[bytes] = mapped_column(LargeBinary(20))
    recipient: Mapped[bytes | None] = mapped_column(LargeBinary(20))
    nonce: Mapped[int] = mapped_column(BigInteger)
    raw: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_transactions_block_position", "block_number", "transaction_index", unique=True),
        Index("ix_transactions_sender_nonce", "sender", "nonce"),
    )


class Receipt(Base):
    __tablename__ = "receipts"

    transaction_hash: Mapped[bytes] = mapped_column(
        LargeBinary(32), ForeignKey("transactions.hash"), primary_key=True
    )
    block_number: Mapped[int] = mapped_column(BigInteger, ForeignKey("blocks.number"), index=True)
    transaction_index: Mapped[int] = mapped_column(Integer)
    tx_type: Mapped[int] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(Integer)
    gas_used: Mapped[int] = mapped_column(BigInteger)
    cumulative_gas_used: Mapped[int] = mapped_column(BigInteger)
    effective_gas_price: Mapped[str] = mapped_column(String(80))
    contract_address: Mapped[bytes | None] = mapped_column(LargeBinary(20))
    first_log_index: Mapped[int] = mapped_column(Integer)
    encoded: Mapped[bytes] = mapped_column(LargeBinary)


class Log(Base):
    __tablename__ = "logs"

    block_number: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("blocks.number"), primary_key=True, autoincrement=False
    )
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    transaction_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    transaction_index: Mapped[int] = mapped_column(Integer)
    address: Mapped[bytes] = mapped_column(LargeBinary(20))
    topic0: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    topic1: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    topic2: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    topic3: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_logs_address_block", "address", "block_number"),
        Index("ix_logs_topic0_block", "topic0", "block_number"),
        Index("ix_logs_topic1_block", "topic1", "block_number"),
        Index("ix_logs_topic2_block", "topic2", "block_number"),
        Index("ix_logs_topic3_block", "topic3", "block_number"),
    )


class BlockCertificate(Base):
    """The commit certificate of a block: the quorum of validator signatures that made it
    final (`ledger.consensus`), encoded by the consensus layer. Beside the header, not in
    it, so the block hash is the one execution computed."""

    __tablename__ = "block_certificates"

    block_number: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("blocks.number"), primary_key=True, autoincrement=False
    )
    certificate: Mapped[bytes] = mapped_column(LargeBinary)


class ConsensusLock(Base):
    """What this validator said in the height it is deciding (`ledger.consensus.qbft.LockState`,
    encoded): one row, overwritten before each message that depends on it is sent."""

    __tablename__ = "consensus_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    height: Mapped[int] = mapped_column(BigInteger)
    lock: Mapped[bytes] = mapped_column(LargeBinary)


class SealedTransaction(Base):
    """A confidential transaction: its hash and place in the clear (so it can be found),
    everything else (payload, receipt, logs, parties) sealed by the enclave."""

    __tablename__ = "sealed_transactions"

    hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, ForeignKey("blocks.number"))
    transaction_index: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_sealed_transactions_block_position", "block_number", "transaction_index", unique=True),
    )


class StateNode(Base):
    __tablename__ = "state_nodes"

    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class ChainSetting(Base):
    """Facts fixed when the ledger was created (chain id, genesis hash)."""

    __tablename__ = "chain_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(1024))


# -- disaster recovery (docs/recovery.md) --------------------------------------------------


class RecoverySetRow(Base):
    """The ledger secrets wrapped with a recovery key, and that key's Shamir shares each
    encrypted to its member (`enclave.recovery.RecoverySet`, encoded): public-safe, kept with
    the ledger so it survives with it. A new row whenever members or the threshold change;
    the newest is the one recovery uses."""

    __tablename__ = "recovery_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    """The head when it was issued."""
    content: Mapped[bytes] = mapped_column(LargeBinary)
