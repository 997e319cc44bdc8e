"""New, empty databases of either kind the ledger supports, for tests."""

from __future__ import annotations

import uuid

import pytest

from tests.support.postgres import PostgresServer

DATABASES = ("sqlite", "postgresql")


class DatabaseUrls:
    """URLs of new, empty databases of either kind (PostgreSQL started on first use)."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> None:
        self._tmp = tmp_path_factory
        self._request = request

    def new(self, kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{self._tmp.mktemp('db') / 'ledger.sqlite'}"
        server: PostgresServer = self._request.getfixturevalue("postgres")
        return server.url(f"t{uuid.uuid4().hex}")
