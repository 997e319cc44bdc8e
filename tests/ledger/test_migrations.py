"""The Alembic migrations against the models they must produce, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from ledger.database import make_engine
from ledger.models import Base
from migrations import alembic_config, upgrade_to_head


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _differences(engine: Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, Base.metadata)


def _schema(engine: Engine) -> dict[str, object]:
    inspector = inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
            ),
            inspector.get_pk_constraint(table)["constrained_columns"],
            sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                for fk in inspector.get_foreign_keys(table)
            ),
            sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


def _head_revision(engine: Engine) -> str:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None
    return head


def _current_revisions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def test_the_migrations_produce_exactly_the_models(engine: Engine) -> None:
    upgrade_to_head(engine)
    assert _differences(engine) == []
    assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}


def test_the_migrated_database_is_at_the_head_revision(engine: Engine) -> None:
    upgrade_to_head(engine)
    assert _current_revisions(engine) == [_head_revision(engine)]


def test_upgrading_again_changes_nothing(engine: Engine) -> None:
    upgrade_to_head(engine)
    schema = _schema(engine)
    upgrade_to_head(engine)
    upgrade_to_head(engine)
    assert _schema(engine) == schema
    assert _current_revisions(engine) == [_head_revision(engine)]
    assert _differences(engine) == []


def test_upgrading_keeps_the_data(engine: Engine) -> None:
    upgrade_to_head(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO chain_settings (name, value) VALUES ('chain_id', '1337')"))
    upgrade_to_head(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM chain_settings")).scalar() == "1337"


def test_an_in_memory_database_migrates_too() -> None:
    engine = make_engine("sqlite://")
    try:
        upgrade_to_head(engine)
        assert _differences(engine) == []
    finally:
        engine.dispose()
