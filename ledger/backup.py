"""Copying a whole ledger from one database to another: backups and new nodes.

The rule: the copy is one consistent snapshot of the source (a single read transaction:
a WAL read on SQLite, REPEATABLE READ on PostgreSQL), so a node may keep committing
blocks while it is exported; it is written to the target in one transaction, so an
interrupted import leaves the target empty. The target must hold no ledger yet.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from .models import Base

PAGE_ROWS = 2_000


class TargetNotEmpty(Exception):
    """The target database already holds ledger rows."""


def _snapshot_connection(engine: Engine) -> Connection:
    """A connection whose reads all see one snapshot until it is closed."""
    if engine.dialect.name == "postgresql":
        conn = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        conn.begin()
        return conn
    conn = engine.connect()
    conn.exec_driver_sql("BEGIN")  # the driver opens none for reads by itself
    return conn


def row_counts(conn: Connection) -> dict[str, int]:
    return {
        table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
        for table in Base.metadata.sorted_tables
    }


def copy_ledger(
    source: Engine, target: Engine, *, on_rows: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Copy every ledger table of `source` into the empty, migrated `target`; rows by table."""
    copied: dict[str, int] = {}
    read = _snapshot_connection(source)
    try:
        with target.begin() as write:
            if any(row_counts(write).values()):
                raise TargetNotEmpty("the target database already holds a ledger: import into an empty one")
            for table in Base.metadata.sorted_tables:
                copied[table.name] = 0
                rows = read.execution_options(yield_per=PAGE_ROWS).execute(
                    select(table).order_by(*table.primary_key.columns)
                )
                for page in rows.partitions():
                    write.execute(table.insert(), [row._asdict() for row in page])
                    copied[table.name] += len(page)
                    if on_rows is not None:
                        on_rows(table.name, len(page))
    finally:
        read.rollback()
        read.close()
    return copied
