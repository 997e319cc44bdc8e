"""commit certificates of blocks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 07:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "block_certificates",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("certificate", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["block_number"], ["blocks.number"]),
        sa.PrimaryKeyConstraint("block_number"),
    )


def downgrade() -> None:
    op.drop_table("block_certificates")
