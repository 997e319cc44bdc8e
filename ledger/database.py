"""Opening a ledger database: an engine per URL, with SQLite set up for durability."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool

from .store import configure_sqlite


def make_engine(database_url: str) -> Engine:
    """An engine for `database_url`: SQLite in WAL mode with full sync, PostgreSQL pooled."""
    if database_url in ("sqlite://", "sqlite:///:memory:"):
        engine = create_engine(database_url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif database_url.startswith("sqlite"):
        engine = create_engine(database_url)
    else:
        engine = create_engine(database_url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    configure_sqlite(engine)
    return engine


def is_in_memory(database_url: str) -> bool:
    """Whether the database lives in this process's memory (no other process can open it)."""
    return database_url in ("sqlite://", "sqlite:///:memory:")
