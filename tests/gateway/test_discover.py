"""rpc.discover: an OpenRPC document of exactly what the node serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.node import Node
from gateway.rpc import METHODS
from tests.gateway.inprocess import call, make_node

REPO_ROOT = Path(__file__).resolve().parents[2]


def _names(document: dict) -> set[str]:  # type: ignore[type-arg]
    return {method["name"] for method in document["methods"]}


def test_a_production_node_lists_what_it_serves(shared_node: Node) -> None:
    document = call(shared_node, "rpc.discover")
    assert document["openrpc"].startswith("1.") and document["info"]["title"]
    served = {name for name, method in METHODS.items() if not method.dev_only}
    assert _names(document) == served | {"eth_subscribe", "eth_unsubscribe"}
    by_name = {method["name"]: method for method in document["methods"]}
    assert by_name["eth_getBalance"]["result"]["schema"] == {"$ref": "#/components/schemas/uint"}
    assert "uint" in document["components"]["schemas"]
    assert [param["name"] for param in by_name["txpool_inspect"]["params"]] == []
    assert "WebSocket" in by_name["eth_subscribe"]["description"]


def test_a_dev_node_lists_its_dev_methods_too() -> None:
    document = call(make_node(dev_mode=True), "rpc.discover")
    assert {"eth_sendTransaction", "evm_snapshot", "evm_revert"} <= _names(document)


def test_every_reference_resolves_inside_the_document(shared_node: Node) -> None:
    document = call(shared_node, "rpc.discover")
    schemas = document["components"]["schemas"]
    text = str(document["methods"]) + str(schemas)
    for reference in set(part.split("'")[0] for part in text.split("#/components/schemas/")[1:]):
        assert reference in schemas, reference


def test_the_committed_document_matches_the_spec() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "build_openrpc.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
