"""sealed confidential transactions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 07:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sealed_transactions",
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("transaction_index", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["block_number"], ["blocks.number"]),
        sa.PrimaryKeyConstraint("hash"),
    )
    op.create_index(
        "ix_sealed_transactions_block_position",
        "sealed_transactions",
        ["block_number", "transaction_index"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_sealed_transactions_block_position", table_name="sealed_transactions")
    op.drop_table("sealed_transactions")
