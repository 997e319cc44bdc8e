"""Shared fixtures: real `conclave dev` processes on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.devnode import DevNode, start_dev_node


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
