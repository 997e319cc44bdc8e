"""The method table: dev-only methods exist for `conclave dev` alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.rpc import METHODS, rpc
from tests.gateway.inprocess import call, error_of, make_node, request


@pytest.fixture
def dev_only_method() -> Iterator[str]:
    name = "test_devOnlyEcho"

    @rpc(name, dev_only=True)
    def echo(node: object) -> str:
        return "served"

    yield name
    del METHODS[name]


def test_a_production_node_refuses_dev_only_methods(dev_only_method: str) -> None:
    error = error_of(make_node(dev_mode=False), request(dev_only_method, []))
    assert error["code"] == -32601
    assert dev_only_method in error["message"]


def test_a_dev_node_serves_dev_only_methods(dev_only_method: str) -> None:
    assert call(make_node(dev_mode=True), dev_only_method) == "served"


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        rpc("eth_chainId")(lambda node: None)
