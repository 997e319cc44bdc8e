"""Fixtures of the end-to-end tests: the shared dev node and a web3.py client for it."""

from __future__ import annotations

import pytest
from web3 import Web3

from tests.e2e.chain_helpers import connect
from tests.support.devnode import DevNode


@pytest.fixture(scope="module")
def node(dev_node: DevNode) -> DevNode:
    """The shared dev node (a test module may override this with a node of its own)."""
    return dev_node


@pytest.fixture(scope="module")
def w3(node: DevNode) -> Web3:
    return connect(node)
