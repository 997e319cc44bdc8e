"""The stored recovery sets (`models.RecoverySetRow`): appended by the host, read by the
enclave and the recovery endpoints. Opaque bytes here: `enclave.recovery` gives them meaning."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from .models import RecoverySetRow


def save_recovery_set(engine: Engine, block_number: int, content: bytes) -> int:
    """Append a recovery set issued at `block_number`; its id (one more than the newest)."""
    with engine.begin() as conn:
        newest = conn.execute(select(func.max(RecoverySetRow.id))).scalar_one_or_none()
        row_id = 1 if newest is None else newest + 1
        conn.execute(
            RecoverySetRow.__table__.insert(),
            {"id": row_id, "block_number": block_number, "content": content},
        )
    return row_id


def latest_recovery_set(engine: Engine) -> tuple[int, bytes] | None:
    """The newest recovery set's block number and content; None if none was issued."""
    with engine.connect() as conn:
        row = conn.execute(
            select(RecoverySetRow.block_number, RecoverySetRow.content)
            .order_by(RecoverySetRow.id.desc())
            .limit(1)
        ).first()
    return None if row is None else (row.block_number, row.content)
