"""Fixtures of the gateway tests: in-process nodes (see `tests.gateway.inprocess`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.node import Node
from tests.gateway.inprocess import make_node


@pytest.fixture
def node() -> Iterator[Node]:
    node = make_node()
    yield node
    node.engine.dispose()


@pytest.fixture(scope="module")
def shared_node() -> Iterator[Node]:
    """A node for tests that only read (and never change what other tests read)."""
    node = make_node()
    yield node
    node.engine.dispose()


@pytest.fixture
def dev() -> Iterator[Node]:
    """A dev node (`conclave dev`'s methods served: unlocked accounts, evm_*)."""
    node = make_node(dev_mode=True)
    yield node
    node.engine.dispose()
