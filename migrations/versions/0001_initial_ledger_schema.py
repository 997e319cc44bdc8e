"""initial ledger schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 18:55:36.483371
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blocks",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("parent_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("header", sa.LargeBinary(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("transaction_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("number"),
        sa.UniqueConstraint("hash"),
    )
    op.create_table(
        "chain_settings",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=1024), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "state_nodes",
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "logs",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("transaction_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("transaction_index", sa.Integer(), nullable=False),
        sa.Column("address", sa.LargeBinary(length=20), nullable=False),
        sa.Column("topic0", sa.LargeBinary(length=32), nullable=True),
        sa.Column("topic1", sa.LargeBinary(length=32), nullable=True),
        sa.Column("topic2", sa.LargeBinary(length=32), nullable=True),
        sa.Column("topic3", sa.LargeBinary(length=32), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["block_number"],
            ["blocks.number"],
        ),
        sa.PrimaryKeyConstraint("block_number", "log_index"),
    )
    with op.batch_alter_table("logs", schema=None) as batch_op:
        batch_op.create_index("ix_logs_address_block", ["address", "block_number"], unique=False)
        batch_op.create_index("ix_logs_topic0_block", ["topic0", "block_number"], unique=False)
        batch_op.create_index("ix_logs_topic1_block", ["topic1", "block_number"], unique=False)
        batch_op.create_index("ix_logs_topic2_block", ["topic2", "block_number"], unique=False)
        batch_op.create_index("ix_logs_topic3_block", ["topic3", "block_number"], unique=False)

    op.create_table(
        "transactions",
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("transaction_index", sa.Integer(), nullable=False),
        sa.Column("sender", sa.LargeBinary(length=20), nullable=False),
        sa.Column("recipient", sa.LargeBinary(length=20), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["block_number"],
            ["blocks.number"],
        ),
        sa.PrimaryKeyConstraint("hash"),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_transactions_block_position", ["block_number", "transaction_index"], unique=True
        )
        batch_op.create_index("ix_transactions_sender_nonce", ["sender", "nonce"], unique=False)

    op.create_table(
        "receipts",
        sa.Column("transaction_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("transaction_index", sa.Integer(), nullable=False),
        sa.Column("tx_type", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("gas_used", sa.BigInteger(), nullable=False),
        sa.Column("cumulative_gas_used", sa.BigInteger(), nullable=False),
        sa.Column("effective_gas_price", sa.String(length=80), nullable=False),
        sa.Column("contract_address", sa.LargeBinary(length=20), nullable=True),
        sa.Column("first_log_index", sa.Integer(), nullable=False),
        sa.Column("encoded", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["block_number"],
            ["blocks.number"],
        ),
        sa.ForeignKeyConstraint(
            ["transaction_hash"],
            ["transactions.hash"],
        ),
        sa.PrimaryKeyConstraint("transaction_hash"),
    )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_receipts_block_number"), ["block_number"], unique=False)



def downgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipts_block_number"))

    op.drop_table("receipts")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_sender_nonce")
        batch_op.drop_index("ix_transactions_block_position")

    op.drop_table("transactions")
    with op.batch_alter_table("logs", schema=None) as batch_op:
        batch_op.drop_index("ix_logs_topic3_block")
        batch_op.drop_index("ix_logs_topic2_block")
        batch_op.drop_index("ix_logs_topic1_block")
        batch_op.drop_index("ix_logs_topic0_block")
        batch_op.drop_index("ix_logs_address_block")

    op.drop_table("logs")
    op.drop_table("state_nodes")
    op.drop_table("chain_settings")
    op.drop_table("blocks")
