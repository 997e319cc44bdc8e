"""Shared fixtures: real `conclave dev` processes on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import DATABASES, DatabaseUrls
from tests.support.devnode import DevNode, start_dev_node
from tests.support.postgres import PostgresServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", help="run the long versions (more crash-harness kills)")


@pytest.fixture(scope="session")
def dev_node() -> Iterator[DevNode]:
    """One shared dev node for tests that do not depend on a fresh chain."""
    node = start_dev_node("--ephemeral")
    yield node
    assert node.stop() == 0


@pytest.fixture
def fresh_node() -> Iterator[DevNode]:
    """A dev node of the test's own, on a new chain."""
    node = start_dev_node("--ephemeral")
    yield node
    node.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test process's own, on loopback."""
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> DatabaseUrls:
    return DatabaseUrls(tmp_path_factory, request)


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, database_urls: DatabaseUrls) -> str:
    """A new, empty database: each test using it runs on SQLite and on PostgreSQL."""
    return database_urls.new(request.param)
